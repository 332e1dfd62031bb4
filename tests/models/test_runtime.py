"""Provider selection, TensorRT engine-cache keys and profiles, and the CPU fallback (GPU paths, tested without a GPU)."""
from pathlib import Path

import pytest

from aecodec.models.runtime import provider_options, select_providers, tensorrt_cache_dir
from aecodec.models import RETIRED_MODELS, bundle_for_id
from aecodec.errors import AecError

ALL = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_auto_prefers_tensorrt_then_cuda_then_cpu(monkeypatch):
    monkeypatch.delenv("AECODEC_PROVIDER", raising=False)
    assert select_providers(None, ALL) == ALL
    assert select_providers("auto", ALL[1:]) == ALL[1:]
    assert select_providers("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_explicit_choice_and_aliases():
    assert select_providers("cuda", ALL) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert select_providers("trt,cuda", ALL) == ALL
    assert select_providers(["cpu"], ALL) == ["CPUExecutionProvider"]
    assert select_providers("tensorrt", ALL) == ALL  # CUDA for what TensorRT does not take
    assert select_providers("tensorrt", [ALL[0], ALL[2]]) == [ALL[0], ALL[2]]


def test_unavailable_provider_is_an_error_not_a_silent_fallback():
    with pytest.raises(AecError, match="not available"):
        select_providers("cuda", ["CPUExecutionProvider"])


def test_environment_variable(monkeypatch):
    monkeypatch.setenv("AECODEC_PROVIDER", "cpu")
    assert select_providers(None, ALL) == ["CPUExecutionProvider"]


def test_tensorrt_engine_cache_is_keyed_by_model_gpu_version_and_precision(tmp_path):
    key = dict(gpu="NVIDIA H100 80GB HBM3", trt_version="10.3.0")
    a = tensorrt_cache_dir("aa" * 16, tmp_path, **key)
    assert a == tmp_path / ("aa" * 16) / "NVIDIA-H100-80GB-HBM3_trt10.3.0_fp32"
    others = [tensorrt_cache_dir("bb" * 16, tmp_path, **key),
              tensorrt_cache_dir("aa" * 16, tmp_path, gpu="NVIDIA L4", trt_version="10.3.0"),
              tensorrt_cache_dir("aa" * 16, tmp_path, gpu=key["gpu"], trt_version="8.6.1"),
              tensorrt_cache_dir("aa" * 16, tmp_path, precision="fp16", **key)]
    assert len({a, *others}) == 5 and all(o.parent.parent == tmp_path for o in others)
    opts = provider_options(["TensorrtExecutionProvider", "CPUExecutionProvider"], "cc" * 16, "fp16")
    name, trt = opts[0]
    assert name == "TensorrtExecutionProvider" and trt["trt_engine_cache_enable"] and trt["trt_timing_cache_enable"]
    assert trt["trt_fp16_enable"] and not trt["trt_int8_enable"]
    assert Path(trt["trt_engine_cache_path"]).name.endswith("_fp16") and ("cc" * 16) in trt["trt_engine_cache_path"]
    assert opts[1] == "CPUExecutionProvider"
    assert provider_options(["TensorrtExecutionProvider"], "cc" * 16, "int8")[0][1]["trt_int8_enable"]


def test_gpu_name_and_tensorrt_version_never_fail_without_a_gpu():
    from aecodec.models.runtime import gpu_name, tensorrt_version

    assert isinstance(gpu_name(), str) and gpu_name()
    assert isinstance(tensorrt_version(), str) and tensorrt_version()


def test_tensorrt_profiles_use_the_graphs_input_names_and_cover_tiles(hyperprior_bundle):
    from aecodec.image.tiling import HALO, HYPER_HALO, TILE
    from aecodec.models.runtime import graph_inputs, tensorrt_options, tensorrt_profile

    folder = hyperprior_bundle[0]
    enc = tensorrt_profile(graph_inputs(folder / "encoder.onnx"), 1, max_batch=8, opt_batch=4)
    dec = tensorrt_profile(graph_inputs(folder / "decoder.onnx"), 16, max_batch=8)
    assert enc.option("min") == "image:1x3x64x64,gain:1x16x1x1"
    assert enc.option("opt") == "image:4x3x1088x1920,gain:1x16x1x1"
    assert dec.option("min") == "latent:1x16x4x4" and dec.option("opt") == "latent:1x16x68x120"
    side = enc.max["image"][2]
    assert side >= TILE + 2 * HYPER_HALO and side >= 1920 and dec.max["latent"][2] == side // 16
    assert enc.fits({"image": (2, 3, TILE + 2 * HYPER_HALO, TILE + 2 * HYPER_HALO), "gain": (1, 16, 1, 1)})
    assert dec.fits({"latent": (1, 16, (TILE + 2 * HALO) // 16, (TILE + 2 * HALO) // 16)})
    assert not dec.fits({"latent": (9, 16, 8, 8)}) and not enc.fits({"image": (1, 3, 64, side + 64)})
    opts = tensorrt_options("dd" * 16, "fp32", enc)
    assert opts["trt_profile_max_shapes"] == f"image:8x3x{side}x{side},gain:1x16x1x1"


def test_without_a_gpu_auto_runs_on_cpu_and_tensorrt_is_a_one_line_error(hyperprior_bundle, monkeypatch):
    from aecodec.models import ModelBundle
    from aecodec.models.bundle import choose_variant
    from aecodec.models.runtime import backend_of

    monkeypatch.delenv("AECODEC_PROVIDER", raising=False)
    assert backend_of(select_providers("auto", ["CPUExecutionProvider"])) == "cpu"
    assert backend_of(select_providers("auto", ALL)) == "tensorrt"
    folder = hyperprior_bundle[0]
    b = ModelBundle(folder)
    if b.backend == "cpu":  # this machine has no GPU build of ONNX Runtime
        with pytest.raises(AecError, match="not available"):
            ModelBundle(folder, providers="tensorrt")
    # fp16 needs no fp16 graph on TensorRT (it builds FP16 engines from fp32), anywhere else it does
    variant, engine = choose_variant(b.manifest, folder, "fp16", "tensorrt")
    assert variant.name == "fp32" and engine == "fp16"
    with pytest.raises(AecError, match="has no fp16 variant"):
        choose_variant(b.manifest, folder, "fp16", "cpu")
    with pytest.raises(AecError, match="has no int8 variant"):
        ModelBundle(folder, providers="cpu", precision="int8")
    with pytest.raises(AecError, match="unknown precision"):
        ModelBundle(folder, precision="int4")


def test_inputs_outside_the_tensorrt_profile_run_on_the_fallback_session(hyperprior_bundle):
    """TensorRT refuses shapes outside its engine's profile: those inputs go to a session without it."""
    import numpy as np

    from aecodec.models import ModelBundle
    from aecodec.models.runtime import ShapeProfile

    b = ModelBundle(hyperprior_bundle[0], providers="cpu")
    y = np.zeros((1, 16, 8, 8), np.float32)
    ref = b.run_decoder(y)
    b._profiles["decoder"] = ShapeProfile({"latent": (1, 16, 1, 1)}, {"latent": (1, 16, 4, 4)}, {"latent": (1, 16, 4, 4)})
    assert np.array_equal(b.run_decoder(y), ref) and "decoder-fallback" in b._sessions
    assert "decoder-fallback" not in ModelBundle(hyperprior_bundle[0], providers="cpu")._sessions


def test_double_onnxruntime_install_is_reported():
    from aecodec.models.runtime import install_warnings

    assert install_warnings({"onnxruntime": "1.20.0"}) == []
    (warning,) = install_warnings({"onnxruntime": "1.20.0", "onnxruntime-gpu": "1.20.0"})
    assert "both installed" in warning and "pip uninstall -y onnxruntime onnxruntime-gpu" in warning


def test_backend_report_names_what_auto_picks():
    from aecodec.models.runtime import backend_report

    report = backend_report(ALL)
    assert report["auto"] == "tensorrt" and all(b["available"] for b in report["backends"].values())
    report = backend_report(["CPUExecutionProvider"])
    assert report["auto"] == "cpu" and not report["backends"]["cuda"]["available"]


@pytest.mark.parametrize("model_id", sorted(RETIRED_MODELS))
def test_retired_model_ids_are_refused_by_name(model_id):
    """Files of a model replaced under the same name name that model and its release, not an anonymous id."""
    with pytest.raises(AecError, match=rf"{model_id}.*no longer ships"):
        bundle_for_id(bytes.fromhex(model_id))
