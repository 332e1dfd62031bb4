"""Graph transforms behind a bundle's precision variants (no torch): constant folding, GDN-aware channel
equalization, INT8 static quantization (ONNX Runtime, QDQ) and FP16 conversion.

INT8 on CPUs without VNNI: ONNX Runtime's u8·s8 kernels add pairs of products in 16 bits, which
saturates with full 8-bit weights (measured here: -2 dB from one layer), so weights are quantized to
7 bits (`reduce_range`). Activations are quantized per tensor, so channels with a small range lose
resolution; GDN layers let us rescale every channel exactly (the producing convolution's output
channel, the GDN's β and γ, the consuming convolution's input channel), which equalizes the ranges
before quantization. GDN itself (x², its 1×1 convolution, sqrt, divide) stays in float.

Two INT8 targets (`Int8Options.target`):
- "cpu": ONNX Runtime's CPU kernels: asymmetric uint8 activations, 7-bit per-channel int8 weights, Q/DQ also
  on the convolutions' outputs (ORT fuses DQ → Conv → Q into QLinearConv), int32 biases.
- "tensorrt": TensorRT's explicit quantization: symmetric signed int8 activations and symmetric per-channel
  int8 weights (every zero point 0 and int8), full 8-bit weights (TensorRT accumulates in int32: no
  saturation), float biases, Q/DQ only on the convolutions' inputs (their outputs feed GDN, which stays in
  float), one dedicated Q/DQ pair per consumer. `trt_qdq_problems` checks a graph for all of it.
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MAX_CHANNEL_SCALE = 32.0  # equalization never scales a channel up by more (nearly dead channels)


def fold_constants(src: Path, dst: Path) -> None:
    """ONNX Runtime's basic, platform-independent optimizations (constant folding: GDN's reparametrized β, γ
    become plain initializers) saved as a plain ONNX graph."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), sess_options=so, providers=["CPUExecutionProvider"])


def initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {i.name: i for i in model.graph.initializer}


def producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {o: n for n in model.graph.node for o in n.output}


def consumers(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    found: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for i in dict.fromkeys(n.input):  # a node reading a tensor twice (x·x) counts once
            found.setdefault(i, []).append(n)
    return found


def load_float32_weights(path: Path) -> onnx.ModelProto:
    """The graph with weights stored as float16 (`store_weights_fp16`: a float16 initializer and a Cast)
    turned back into the float32 initializers they stand for (exact), so tools that look for a convolution's
    weight initializer (quantization) see it."""
    model = onnx.load(str(path))
    inits = initializers(model)
    for n in list(model.graph.node):
        if (n.op_type == "Cast" and n.input[0] in inits and inits[n.input[0]].data_type == TensorProto.FLOAT16
                and n.attribute[0].i == TensorProto.FLOAT):
            half = inits.pop(n.input[0])
            model.graph.initializer.remove(half)
            model.graph.initializer.append(
                numpy_helper.from_array(numpy_helper.to_array(half).astype(np.float32), n.output[0]))
            model.graph.node.remove(n)
    return model


def conv_weight_names(path: Path) -> list[str]:
    """Weight initializer names of the convolutions of the exported graph that have stored weights: the
    transforms' own layers (GDN's 1×1 convolution computes its weights from β, γ parameters)."""
    model = onnx.load(str(path))
    inits = initializers(model)
    return [n.input[1] for n in model.graph.node if n.op_type == "Conv" and n.input[1] in inits]


def downstream(model: onnx.ModelProto, tensor: str) -> set[str]:
    """Names of the nodes that depend on a tensor."""
    users = consumers(model)
    seen: set[str] = set()
    todo = [tensor]
    while todo:
        for n in users.get(todo.pop(), []):
            if n.name not in seen:
                seen.add(n.name)
                todo.extend(n.output)
    return seen


@dataclass(frozen=True)
class ConvInfo:
    """A convolution with stored weights in the folded graph."""

    node: str
    weight: str
    in_channels: int
    out_channels: int
    on_hyper_path: bool  # computes z from the latent (encoder of a hyperprior model)
    reads_graph_input: bool
    writes_graph_output: bool  # through at most a DepthToSpace / a Mul by the gain


def main_convs(model: onnx.ModelProto, weights: Iterable[str]) -> list[ConvInfo]:
    inits = initializers(model)
    prods = producers(model)
    users = consumers(model)
    graph_inputs = {i.name for i in model.graph.input}
    graph_outputs = [o.name for o in model.graph.output]
    hyper = downstream(model, graph_outputs[0]) if len(graph_outputs) > 1 else set()
    wanted = set(weights)
    found = []
    for n in model.graph.node:
        if n.op_type != "Conv" or n.input[1] not in wanted:
            continue
        w = inits[n.input[1]]
        out = n.output[0]
        nxt = users.get(out, [])
        writes = out in graph_outputs or any(m.op_type in ("DepthToSpace", "Mul") and m.output[0] in graph_outputs
                                             for m in nxt)
        found.append(ConvInfo(n.name, n.input[1], int(w.dims[1]), int(w.dims[0]), n.name in hyper,
                              n.input[0] in graph_inputs or n.input[0] not in prods, writes))
    return found


@dataclass(frozen=True)
class GdnBlock:
    """conv P -> [DepthToSpace] -> GDN / IGDN -> conv N, as the exporter writes it (after constant folding):
    x = P(...) [D2S]; norm = Conv(x·x, γ, β); y = x / sqrt(norm) (GDN) or x · sqrt(norm) (IGDN); N(y)."""

    producer: str  # node names
    depth_to_space: str | None
    block: int
    crd: bool
    norm: str
    out: str
    inverse: bool
    consumer: str
    x: str  # tensor names
    y: str


def gdn_blocks(model: onnx.ModelProto) -> list[GdnBlock]:
    inits = initializers(model)
    prods = producers(model)
    users = consumers(model)
    blocks = []
    for n in model.graph.node:
        if n.op_type not in ("Div", "Mul") or len(n.input) != 2:
            continue
        x, s = n.input
        sq = prods.get(s)
        if sq is None or sq.op_type != "Sqrt":
            continue
        norm = prods.get(sq.input[0])
        if norm is None or norm.op_type != "Conv" or norm.input[1] not in inits or len(norm.input) < 3 \
                or norm.input[2] not in inits:
            continue
        square = prods.get(norm.input[0])
        if square is None or square.op_type != "Mul" or list(square.input) != [x, x]:
            continue
        d2s, block, crd = None, 1, True
        p = prods.get(x)
        if p is not None and p.op_type == "DepthToSpace":
            d2s = p
            attrs = {a.name: helper.get_attribute_value(a) for a in p.attribute}
            block = int(attrs.get("blocksize", 1))
            crd = attrs.get("mode", b"DCR") in (b"CRD", "CRD")
            p = prods.get(p.input[0])
        if p is None or p.op_type != "Conv" or p.input[1] not in inits:
            continue
        nxt = users.get(n.output[0], [])
        if len(nxt) != 1 or nxt[0].op_type != "Conv" or nxt[0].input[0] != n.output[0] or nxt[0].input[1] not in inits:
            continue
        if len(users.get(x, [])) != 2 or (d2s is not None and len(users.get(d2s.input[0], [])) != 1):
            continue  # x feeds only the GDN (its square and its numerator / factor)
        blocks.append(GdnBlock(p.name, d2s.name if d2s is not None else None, block, crd, norm.name, n.name,
                               n.op_type == "Mul", nxt[0].name, x, n.output[0]))
    return blocks


def channel_ranges(model: onnx.ModelProto, tensors: list[str], feeds: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-channel max |value| of intermediate tensors (axis 1) over the feeds, on the CPU."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    have = {o.name for o in probe.graph.output}
    for t in tensors:
        if t not in have:
            probe.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    ranges: dict[str, np.ndarray] = {}
    for feed in feeds:
        for t, v in zip(tensors, sess.run(tensors, feed)):
            m = np.abs(v).max(axis=tuple(a for a in range(v.ndim) if a != 1))
            ranges[t] = np.maximum(ranges[t], m) if t in ranges else m
    return ranges


def equal_range_scales(r: np.ndarray) -> np.ndarray:
    """Per-channel factors that bring every channel's range up to the widest one (at most MAX_CHANNEL_SCALE)."""
    r = np.maximum(r.astype(np.float64), 1e-12)
    return np.clip(r.max() / r, 1.0, MAX_CHANNEL_SCALE)


def _set(model: onnx.ModelProto, name: str, value: np.ndarray) -> None:
    init = initializers(model)[name]
    init.CopyFrom(numpy_helper.from_array(value.astype(numpy_helper.to_array(init).dtype), name))


def equalize(model: onnx.ModelProto, blocks: list[GdnBlock], ranges: dict[str, np.ndarray]) -> onnx.ModelProto:
    """Rescale each GDN block's channels so that x (the producer's output) and y (the GDN's output) have equal
    per-channel ranges. Exact in real arithmetic: P's output channel c ×t_c, γ and β absorb it and the output
    factor u_c, N's input channel c ×1/u_c."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    unique_initializers(out)  # constant folding may share equal tensors (e.g. untrained GDN parameters)
    nodes = {n.name: n for n in out.graph.node}
    inits = initializers(out)
    for b in blocks:
        t = equal_range_scales(ranges[b.x])
        u = equal_range_scales(ranges[b.y])
        s = u / t
        p, norm, n = nodes[b.producer], nodes[b.norm], nodes[b.consumer]
        w_p = numpy_helper.to_array(inits[p.input[1]]).astype(np.float64)
        per_out = np.repeat(t, b.block * b.block) if b.crd else np.tile(t, b.block * b.block)
        _set(out, p.input[1], w_p * per_out[:, None, None, None])
        if len(p.input) > 2 and p.input[2] in inits:
            _set(out, p.input[2], numpy_helper.to_array(inits[p.input[2]]).astype(np.float64) * per_out)
        gamma = numpy_helper.to_array(inits[norm.input[1]]).astype(np.float64)
        beta = numpy_helper.to_array(inits[norm.input[2]]).astype(np.float64)
        k = s ** 2 if b.inverse else 1.0 / s ** 2
        _set(out, norm.input[1], gamma / (t ** 2)[None, :, None, None] * k[:, None, None, None])
        _set(out, norm.input[2], beta * k)
        w_n = numpy_helper.to_array(inits[n.input[1]]).astype(np.float64)
        _set(out, n.input[1], w_n / u[None, :, None, None])
    return out


def unique_initializers(model: onnx.ModelProto) -> None:
    """Give every initializer that more than one node reads its own copy (so rescaling one never changes another)."""
    inits = initializers(model)
    seen: set[str] = set()
    for n in model.graph.node:
        for i, name in enumerate(n.input):
            if name in inits:
                if name in seen:
                    copy = numpy_helper.from_array(numpy_helper.to_array(inits[name]), f"{name}__{n.name}")
                    model.graph.initializer.append(copy)
                    n.input[i] = copy.name
                seen.add(name)


class FeedReader:
    """ONNX Runtime calibration reader over a list of feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]):
        self.feeds = feeds
        self.it: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.it, None)

    def rewind(self) -> None:
        self.it = iter(self.feeds)


INT8_TARGETS = ("cpu", "tensorrt")


@dataclass
class Int8Options:
    """How a graph is quantized (recorded in the manifest)."""

    target: str = "cpu"  # "cpu" (ONNX Runtime's CPU kernels) or "tensorrt" (symmetric int8; see the module doc)
    skip_latent_convs: bool = True  # convs reading / writing the latent: its resolution is the bitstream's
    min_channels: int = 16  # convs with fewer input or output channels stay float (no faster, least accurate)
    reduce_range: bool = True  # 7-bit weights: no u8·s8 saturation on CPUs without VNNI (target cpu only)
    equalize: bool = True
    calibrate_method: str = "Percentile"  # measured on Kodak: 99.99 % halves the decoder's cost against MinMax
    percentile: float = 99.99
    convs: tuple[str, ...] = ()  # weight names of the convs to quantize (empty: the rule above)
    float_weights_fp16: bool = True  # store the float convs' weights as float16 (+ a Cast, folded at load)


def select_convs(convs: list[ConvInfo], opts: Int8Options) -> list[ConvInfo]:
    if opts.convs:
        return [c for c in convs if c.weight in opts.convs]
    return [c for c in convs if not c.on_hyper_path and min(c.in_channels, c.out_channels) >= opts.min_channels
            and not (opts.skip_latent_convs and (c.reads_graph_input or c.writes_graph_output))]


def quantize_int8(src: Path, dst: Path, feeds: list[dict[str, np.ndarray]], opts: Int8Options) -> dict:
    """fp32 graph -> QDQ INT8 graph (static, per-channel weights) calibrated on `feeds`; returns what was done."""
    import onnxruntime
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if opts.target not in INT8_TARGETS:
        raise ValueError(f"unknown INT8 target {opts.target!r} (choose from {', '.join(INT8_TARGETS)})")
    trt = opts.target == "tensorrt"
    graph_name = src.name
    with tempfile.TemporaryDirectory() as tmp:
        unpacked = Path(tmp) / "float32.onnx"  # a bundle exported with --fp16-storage stores its weights so
        onnx.save(load_float32_weights(src), str(unpacked))
        src = unpacked
        weights = conv_weight_names(src)
        folded = Path(tmp) / "folded.onnx"
        fold_constants(src, folded)
        model = onnx.load(str(folded))
        unique_initializers(model)
        convs = main_convs(model, weights)
        chosen = select_convs(convs, opts)
        if not chosen:  # (ONNX Runtime would read an empty list as "every convolution")
            raise ValueError(f"{graph_name}: no convolution to quantize (--int8-convs names none of its weights "
                             f"{', '.join(c.weight for c in convs)}, or the rule leaves none)")
        blocks = gdn_blocks(model) if opts.equalize else []
        if blocks:
            ranges = channel_ranges(model, sorted({t for b in blocks for t in (b.x, b.y)}), feeds)
            model = equalize(model, blocks, ranges)
        prepared = Path(tmp) / "prepared.onnx"
        onnx.save(model, str(prepared))
        method = getattr(CalibrationMethod, opts.calibrate_method)
        extra: dict = {"CalibPercentile": opts.percentile} if opts.calibrate_method == "Percentile" else {}
        if trt:
            extra.update({"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
                          "DedicatedQDQPair": True, "OpTypesToExcludeOutputQuantization": ["Conv"]})
        reduce_range = opts.reduce_range and not trt
        quantize_static(str(prepared), str(dst), FeedReader(feeds), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=["Conv"], per_channel=True, reduce_range=reduce_range,
                        activation_type=QuantType.QInt8 if trt else QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_quantize=[c.node for c in chosen], calibrate_method=method,
                        extra_options=extra)
    stored_fp16 = store_weights_fp16(dst) if opts.float_weights_fp16 else []
    if trt:
        drop_unused_opsets(dst)  # constant folding imports ORT's own domains; TensorRT's parser needs none
        problems = trt_qdq_problems(onnx.load(str(dst)))
        if problems:
            raise ValueError(f"{dst.name} is not a TensorRT explicit-INT8 graph: {'; '.join(problems[:3])}")
    return {"tool": "onnxruntime.quantization.quantize_static", "onnxruntime": onnxruntime.__version__,
            "target": opts.target, "format": "QDQ",
            "activations": "int8 per tensor, symmetric (zero point 0)" if trt else "uint8 per tensor",
            "weights": "int8 per channel" + (", symmetric (zero point 0)" if trt else "")
            + (" (7-bit range)" if reduce_range else ""),
            "bias": "float" if trt else "int32", "qdq_on_conv_outputs": not trt,
            "calibration_method": opts.calibrate_method
            + (f" {opts.percentile}" if opts.calibrate_method == "Percentile" else ""),
            "quantized_convs": [c.weight for c in chosen],
            "float_convs": [c.weight for c in convs if c not in chosen],
            "gdn_equalized": len(blocks), "float_ops": "GDN (x², 1×1 conv, sqrt, div / mul), DepthToSpace, the float convs",
            "float_weights_stored_fp16": stored_fp16}


def drop_unused_opsets(path: Path) -> None:
    """Remove the opset imports of domains no node uses (the standard domain always stays)."""
    model = onnx.load(str(path))
    used = {n.domain for n in model.graph.node} | {""}
    keep = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def trt_qdq_problems(model: onnx.ModelProto) -> list[str]:
    """What keeps a QDQ graph from TensorRT's explicit INT8 (empty: nothing). Every QuantizeLinear and
    DequantizeLinear is standard ONNX with a stored int8 zero point that is 0 everywhere (symmetric) and a
    stored positive scale; a DequantizeLinear reads int8 weights or a QuantizeLinear (no int32 bias)."""
    inits = initializers(model)
    prods = producers(model)
    problems = []
    seen = {"QuantizeLinear": 0, "DequantizeLinear": 0}
    for n in model.graph.node:
        if n.op_type not in seen:
            continue
        seen[n.op_type] += 1
        if n.domain not in ("", "ai.onnx"):
            problems.append(f"{n.name}: {n.op_type} of domain {n.domain}, not standard ONNX")
        if len(n.input) < 3 or n.input[2] not in inits:
            problems.append(f"{n.name}: {n.op_type} without a stored zero point (that means uint8)")
            continue
        zp, scale = inits[n.input[2]], inits.get(n.input[1])
        if zp.data_type != TensorProto.INT8:
            problems.append(f"{n.name}: zero point of type {TensorProto.DataType.Name(zp.data_type)}, not INT8")
        elif np.any(numpy_helper.to_array(zp) != 0):
            problems.append(f"{n.name}: zero point not 0 (asymmetric)")
        if scale is None or np.any(numpy_helper.to_array(scale) <= 0):
            problems.append(f"{n.name}: scale not a stored positive constant")
        if n.op_type == "DequantizeLinear":
            x = n.input[0]
            if x in inits and inits[x].data_type != TensorProto.INT8:
                problems.append(f"{n.name}: dequantizes {TensorProto.DataType.Name(inits[x].data_type)}, not INT8")
            elif x not in inits and (x not in prods or prods[x].op_type != "QuantizeLinear"):
                problems.append(f"{n.name}: reads neither int8 weights nor a QuantizeLinear")
    problems += [f"no {op}" for op, k in seen.items() if k == 0]
    return problems


MIN_FP16_STORED = 16384  # elements: smaller float weights (GDN's γ, biases) stay float32


def store_weights_fp16(path: Path) -> list[str]:
    """Halve the file size of the convolutions left in float: their weights stored as float16 and cast back to
    float32 by a Cast node that ONNX Runtime folds when the session is created (computation stays float32)."""
    model = onnx.load(str(path))
    inits = initializers(model)
    # weights the exporter wrote as Constant nodes (a module's non-persistent buffer, e.g. a fixed basis)
    constants = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant" and n.attribute[0].name == "value"}
    done = []
    casts = []
    for n in model.graph.node:
        if n.op_type != "Conv" or len(n.input) < 2 or n.input[1] in done:
            continue
        name = n.input[1]
        w = inits[name] if name in inits else constants[name].attribute[0].t if name in constants else None
        if w is None or w.data_type != TensorProto.FLOAT or int(np.prod(w.dims)) < MIN_FP16_STORED:
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(w).astype(np.float16), f"{name}__fp16")
        if name in inits:
            model.graph.initializer.remove(w)
        else:
            model.graph.node.remove(constants[name])
        model.graph.initializer.append(half)
        casts.append(helper.make_node("Cast", [half.name], [name], to=TensorProto.FLOAT, name=f"{name}__cast"))
        done.append(name)
    nodes = casts + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, str(path))
    return done


def convert_fp16(src: Path, dst: Path) -> dict:
    """fp32 graph -> float16 initializers and compute, float32 inputs and outputs (a Cast at each end).

    Our own few lines rather than onnxconverter-common: its converter (1.16) mis-types a graph output
    that is also read inside the graph (the hyperprior encoder's latent feeds h_a)."""
    with tempfile.TemporaryDirectory() as tmp:
        folded = Path(tmp) / "folded.onnx"
        fold_constants(src, folded)
        model = onnx.load(str(folded))
    g = model.graph
    for init in g.initializer:
        if init.data_type == TensorProto.FLOAT:
            a = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array(np.clip(a, -65504, 65504).astype(np.float16), init.name))
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == TensorProto.FLOAT:
                a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16), a.t.name))
            if n.op_type == "Cast" and a.name == "to" and a.i == TensorProto.FLOAT:
                a.i = TensorProto.FLOAT16
    renamed: dict[str, str] = {}
    casts_in = []
    for i in g.input:
        if i.type.tensor_type.elem_type == TensorProto.FLOAT:
            renamed[i.name] = f"{i.name}__fp16"
            casts_in.append(helper.make_node("Cast", [i.name], [renamed[i.name]], to=TensorProto.FLOAT16,
                                             name=f"{i.name}__to_fp16"))
    casts_out = []
    for o in g.output:
        if o.type.tensor_type.elem_type == TensorProto.FLOAT:
            renamed[o.name] = f"{o.name}__fp16"
            casts_out.append(helper.make_node("Cast", [renamed[o.name]], [o.name], to=TensorProto.FLOAT,
                                              name=f"{o.name}__to_fp32"))
    for n in g.node:
        n.input[:] = [renamed.get(x, x) for x in n.input]
        n.output[:] = [renamed.get(x, x) for x in n.output]
    nodes = casts_in + list(g.node) + casts_out
    del g.node[:]
    g.node.extend(nodes)
    del g.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return {"tool": "aecodec.export.precision.convert_fp16", "weights": "float16", "compute": "float16",
            "inputs_outputs": "float32 (Cast at each end)"}
