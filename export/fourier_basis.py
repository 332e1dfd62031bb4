"""The Fourier audio decoder's inverse-DFT matrix as a few ONNX nodes instead of 0.4 M stored numbers.

`OverlapAddSynthesis` multiplies each frame's spectrum by a fixed (2·hop) × (2·(hop+1)) matrix. Traced, that
matrix is a Constant of 1.6 MB (float32); here it is replaced by the nodes that compute it from its definition
(integer k·t mod n, cos / sin, the DC-and-Nyquist weights, the periodic Hann window). Every input of those nodes
is constant, so ONNX Runtime folds them once when the session is created: the file shrinks, the run time does
not change. Reducing k·t modulo n in integers first keeps the angles exact before the float32 cos / sin.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _basis_nodes(hop: int, out_name: str, prefix: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes computing the (2·hop) × (2·bins) × 1 convolution weight of OverlapAddSynthesis into `out_name`."""
    n, bins = 2 * hop, hop + 1
    weight = np.full((bins, 1), 2.0, np.float32)
    weight[0] = weight[-1] = 1.0

    def const(name: str, value: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(value, f"{prefix}{name}")

    inits = [const("k", np.arange(bins, dtype=np.int64).reshape(bins, 1)),
             const("t", np.arange(n, dtype=np.int64).reshape(1, n)),
             const("n", np.array(n, np.int64)),
             const("step", np.array(2 * math.pi / n, np.float32)),
             const("weight", weight),
             const("half", np.array(0.5, np.float32)),
             const("inv_n", np.array(1.0 / n, np.float32)),
             const("axes", np.array([2], np.int64))]
    p = prefix
    nodes = [
        helper.make_node("Mul", [f"{p}k", f"{p}t"], [f"{p}kt"]),
        helper.make_node("Mod", [f"{p}kt", f"{p}n"], [f"{p}kt_mod"]),  # exact: angles below 2π
        helper.make_node("Cast", [f"{p}kt_mod"], [f"{p}kt_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", [f"{p}kt_f", f"{p}step"], [f"{p}angle"]),
        helper.make_node("Cos", [f"{p}angle"], [f"{p}cos"]),
        helper.make_node("Sin", [f"{p}angle"], [f"{p}sin"]),
        helper.make_node("Mul", [f"{p}cos", f"{p}weight"], [f"{p}re"]),
        helper.make_node("Mul", [f"{p}sin", f"{p}weight"], [f"{p}im_pos"]),
        helper.make_node("Neg", [f"{p}im_pos"], [f"{p}im"]),
        helper.make_node("Concat", [f"{p}re", f"{p}im"], [f"{p}rows"], axis=0),  # (2·bins) × n
        helper.make_node("Cast", [f"{p}t"], [f"{p}t_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", [f"{p}t_f", f"{p}step"], [f"{p}t_angle"]),
        helper.make_node("Cos", [f"{p}t_angle"], [f"{p}t_cos"]),
        helper.make_node("Mul", [f"{p}t_cos", f"{p}half"], [f"{p}t_half_cos"]),
        helper.make_node("Sub", [f"{p}half", f"{p}t_half_cos"], [f"{p}window"]),  # periodic Hann, 1 × n
        helper.make_node("Mul", [f"{p}window", f"{p}inv_n"], [f"{p}scaled_window"]),
        helper.make_node("Mul", [f"{p}rows", f"{p}scaled_window"], [f"{p}windowed"]),
        helper.make_node("Transpose", [f"{p}windowed"], [f"{p}columns"], perm=[1, 0]),  # n × (2·bins)
        helper.make_node("Unsqueeze", [f"{p}columns", f"{p}axes"], [out_name]),
    ]
    return nodes, inits


def compute_basis_at_load(path: Path, basis: np.ndarray, hop: int) -> bool:
    """Replace the stored inverse-DFT weight (the Constant or initializer equal to `basis`, n × 2·bins × 1) of
    the decoder graph at `path` by nodes computing it. Returns whether it was found."""
    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    constants = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant" and n.attribute[0].name == "value"}
    for node in model.graph.node:
        if node.op_type != "Conv" or len(node.input) < 2:
            continue
        name = node.input[1]
        tensor = inits[name] if name in inits else constants[name].attribute[0].t if name in constants else None
        if tensor is None or tuple(tensor.dims) != basis.shape:
            continue
        if not np.allclose(numpy_helper.to_array(tensor), basis, rtol=0, atol=1e-7):
            continue
        if name in inits:
            model.graph.initializer.remove(tensor)
        else:
            model.graph.node.remove(constants[name])
        nodes, new_inits = _basis_nodes(hop, name, "fourier_basis/")
        rest = list(model.graph.node)
        del model.graph.node[:]
        model.graph.node.extend(nodes + rest)
        model.graph.initializer.extend(new_inits)
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
        return True
    return False
