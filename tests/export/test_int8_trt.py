"""The TensorRT INT8 variant (python -m aecodec.export.variants --int8 --int8-target tensorrt) of the tiny random
hyperprior bundle: symmetric int8 QDQ graphs (every zero point 0), picked by precision int8 on TensorRT and
never on the CPU, yet runnable on the CPU by name, with the same entropy path as every other variant.
No GPU: backends are chosen with mock provider lists."""
import json
import shutil

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")  # the fixture bundle is exported from a torch model
pytest.importorskip("onnxruntime.quantization")

import onnx  # noqa: E402
from onnx import TensorProto, numpy_helper  # noqa: E402

import aecodec  # noqa: E402
from aecodec.errors import AecError  # noqa: E402
from aecodec.export import variants as V  # noqa: E402
from aecodec.export.precision import conv_weight_names, trt_qdq_problems  # noqa: E402
from aecodec.image.tiling import to_network_input  # noqa: E402
from aecodec.metrics import psnr  # noqa: E402
from aecodec.models import ModelBundle, choose_variant, precisions_for  # noqa: E402
from aecodec.models.bundle import compute_model_id  # noqa: E402
from aecodec.models.runtime import tensorrt_options  # noqa: E402

from tests.conftest import natural_image  # noqa: E402

IMAGES = [natural_image(h, w, seed=s) for s, (h, w) in enumerate([(64, 64), (96, 160)])]
GPU_PROVIDERS = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.fixture(scope="module")
def trt_bundle(hyperprior_bundle, tmp_path_factory):
    """A copy of the tiny hyperprior bundle with int8 (CPU, decoder) and int8-trt (TensorRT, both graphs)."""
    root = tmp_path_factory.mktemp("int8trt")
    folder = root / "bundle"
    shutil.copytree(hyperprior_bundle[0], folder)
    cal = root / "train-images"
    cal.mkdir()
    for i in range(3):
        Image.fromarray(natural_image(80, 96, seed=200 + i)).save(cal / f"t{i}.png")
    common = ["--int8-min-channels", "1", "--calibration", str(cal), "--calibration-images", "3", "--crop", "64"]
    assert V.main([str(folder), "--int8", *common]) == 0
    assert V.main([str(folder), "--int8", "--int8-target", "tensorrt", "--int8-graphs", "encoder,decoder",
                   "--ort-config-only", *common]) == 0
    return folder, hyperprior_bundle[1]


def test_trt_variant_is_symmetric_int8_qdq(trt_bundle):
    folder, original = trt_bundle
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["model_id"] == original["model_id"] == compute_model_id(folder)
    v = manifest["variants"]["int8-trt"]
    assert v["files"] == {"encoder": "encoder.int8-trt.onnx", "decoder": "decoder.int8-trt.onnx"}
    assert v["precision"] == "int8" and v["backends"] == ["tensorrt"] and v["default_for"] == []
    assert manifest["variants"]["int8"]["backends"] == ["cpu"]
    assert "--int8-target tensorrt" in v["made"]["command"]
    for graph in ("encoder", "decoder"):
        made = v["made"][graph]
        assert made["target"] == "tensorrt" and made["bias"] == "float" and made["quantized_convs"]
        model = onnx.load(str(folder / v["files"][graph]))
        inits = {i.name: i for i in model.graph.initializer}
        qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
        assert {n.op_type for n in qdq} == {"QuantizeLinear", "DequantizeLinear"}
        for n in qdq:
            zp = inits[n.input[2]]  # explicit: an absent zero point would mean uint8
            assert zp.data_type == TensorProto.INT8, (graph, n.name)
            assert not np.any(numpy_helper.to_array(zp)), (graph, n.name)
            if n.op_type == "DequantizeLinear" and n.input[0] in inits:  # weights
                assert inits[n.input[0]].data_type == TensorProto.INT8, (graph, n.name)
        assert trt_qdq_problems(model) == []
        onnx.checker.check_model(model)
        assert {o.domain for o in model.opset_import} == {""}  # no ONNX Runtime domains for TensorRT's parser
        assert not any(n.op_type == "QuantizeLinear" and n.input[0] in {c.output[0] for c in model.graph.node
                                                                      if c.op_type == "Conv"} for n in qdq)
    # the CPU variant is not for TensorRT, and the check says why
    assert any("not INT8" in p for p in trt_qdq_problems(onnx.load(str(folder / "decoder.int8.onnx"))))
    # mobile (.ort, the operator config) covers the CPU variants only
    assert "int8-trt" not in manifest["mobile"]["covers"] and "int8" in manifest["mobile"]["covers"]
    ModelBundle(folder, providers="cpu").verify()


def test_precision_int8_picks_the_trt_variant_on_tensorrt_only(trt_bundle, monkeypatch):
    folder, _ = trt_bundle
    m = ModelBundle(folder, providers="cpu").manifest
    assert choose_variant(m, folder, "int8", "cpu")[0].name == "int8"
    assert choose_variant(m, folder, "int8", "tensorrt") == (m.variants["int8-trt"], "int8")
    for backend in ("cpu", "tensorrt"):  # nothing measured on TensorRT: auto stays fp32
        assert choose_variant(m, folder, "auto", backend)[0].name == "fp32"
    with pytest.raises(AecError, match="no int8 variant for the cuda backend"):
        choose_variant(m, folder, "int8", "cuda")
    assert precisions_for(m, folder, "tensorrt") == (["fp32", "int8", "fp16"], "fp32")
    # a whole bundle on mock providers (sessions are made lazily: none here)
    monkeypatch.setattr("aecodec.models.bundle.select_providers", lambda requested=None: GPU_PROVIDERS)
    b = ModelBundle(folder, providers="tensorrt", precision="int8")
    assert b.backend == "tensorrt" and b.variant.name == "int8-trt" and b.precision == "int8"
    assert b.graph_path("decoder").name == "decoder.int8-trt.onnx"
    assert tensorrt_options(b.model_id, b.precision)["trt_int8_enable"] is True  # explicit INT8 (QDQ)
    assert ModelBundle(folder, providers="tensorrt").variant.name == "fp32"


def test_the_cpu_never_picks_the_trt_variant_unless_named(trt_bundle, tmp_path):
    folder = tmp_path / "b"
    shutil.copytree(trt_bundle[0], folder)
    V.main([str(folder), "--remove", "int8"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest["variants"]) == {"int8-trt"}
    with pytest.raises(AecError, match="no int8 variant for the cpu backend"):
        ModelBundle(folder, providers="cpu", precision="int8")
    assert ModelBundle(folder, providers="cpu").variant.name == "fp32"
    named = ModelBundle(folder, providers="cpu", variant="int8-trt")
    assert named.precision == "int8" and named.graph_path("encoder").name == "encoder.int8-trt.onnx"
    with pytest.raises(AecError, match="not fp16"):
        ModelBundle(folder, providers="cpu", variant="int8-trt", precision="fp16")
    with pytest.raises(AecError, match="no variant 'int8'"):
        ModelBundle(folder, providers="cpu", variant="int8")
    # measured figures never make a TensorRT variant the CPU default
    rd = {"pairs": {"int8-trt->int8-trt": {"mean_psnr_delta_db": -0.01}}}
    sp = {"variants": {"fp32": {"encode_mp_per_s": 1.0, "decode_mp_per_s": 1.0},
                       "int8-trt": {"encode_mp_per_s": 2.0, "decode_mp_per_s": 2.0}}}
    manifest["variants"]["int8-trt"]["measured"] = {"rd": rd, "speed": sp}
    why = V.decide_defaults(manifest)
    assert manifest["variants"]["int8-trt"]["default_for"] == [] and "never the CPU default" in why[0]


def _encode(bundle: ModelBundle, img: np.ndarray, quality: int):
    x = to_network_input(img, 64)
    v, z = (a[0] for a in bundle.run_encoder(x, bundle.coding.gain(quality)))
    streams, symbols = bundle.coding.encode(v, z)
    z_hat = np.floor(z + 0.5).astype(np.int32)
    _, index = bundle.coding.parameters(z_hat, symbols)
    return streams, symbols, z_hat, index, v.shape[1:]


def test_trt_variant_runs_on_the_cpu_and_cross_decodes_with_fp32(trt_bundle):
    folder, _ = trt_bundle
    fp32 = ModelBundle(folder, providers="cpu", precision="fp32")
    trt = ModelBundle(folder, providers="cpu", variant="int8-trt")
    assert trt.session("decoder").get_providers() == ["CPUExecutionProvider"]  # type: ignore[attr-defined]
    bundles = {"fp32": fp32, "int8-trt": trt}
    for enc_name, enc in bundles.items():
        for img in IMAGES:
            for quality in (5, 60, 100):
                streams, symbols, z_hat, index, shape = _encode(enc, img, quality)
                for dec_name, dec in bundles.items():  # the decoder derives exactly the encoder's ẑ, indices, symbols
                    got = dec.coding.decode_symbols(streams, shape)
                    assert np.array_equal(got.z_hat, z_hat), (enc_name, dec_name, quality)
                    assert np.array_equal(got.index, index), (enc_name, dec_name, quality)
                    assert np.array_equal(got.symbols, symbols), (enc_name, dec_name, quality)
    for img in IMAGES:  # whole files, both ways
        ref = aecodec.decompress(aecodec.compress(img, quality=60, model=fp32, lossless=False), model=fp32,
                                 as_array=True)
        for enc_name, enc in bundles.items():
            data = aecodec.compress(img, quality=60, model=enc, lossless=False)
            assert aecodec.info(data)["model_id"] == fp32.model_id
            for dec_name, dec in bundles.items():
                out = aecodec.decompress(data, model=dec, as_array=True)
                assert out.shape == img.shape and psnr(out, ref) > 30, (enc_name, dec_name, psnr(out, ref))


def test_int8_convs_naming_none_of_a_graphs_convs_is_an_error(trt_bundle, tmp_path, capfd):
    """ONNX Runtime reads an empty node list as "quantize every convolution": refused instead."""
    folder = tmp_path / "b"
    shutil.copytree(trt_bundle[0], folder)
    decoder_only = conv_weight_names(folder / "decoder.onnx")[1]
    assert decoder_only not in conv_weight_names(folder / "encoder.onnx")
    cal = tmp_path / "cal"
    cal.mkdir()
    Image.fromarray(natural_image(70, 70, seed=5)).save(cal / "a.png")
    assert V.main([str(folder), "--int8", "--int8-target", "tensorrt", "--int8-graphs", "encoder,decoder",
                   "--int8-convs", decoder_only, "--calibration", str(cal), "--crop", "64"]) == 1
    assert "encoder.onnx: no convolution to quantize" in capfd.readouterr().err
