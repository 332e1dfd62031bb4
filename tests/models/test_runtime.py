"""Provider selection and engine-cache keys (GPU paths, tested without a GPU)."""
import pytest

from aecodec.models.runtime import provider_options, select_providers, tensorrt_cache_dir
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


def test_unavailable_provider_is_an_error_not_a_silent_fallback():
    with pytest.raises(AecError, match="not available"):
        select_providers("cuda", ["CPUExecutionProvider"])


def test_environment_variable(monkeypatch):
    monkeypatch.setenv("AECODEC_PROVIDER", "cpu")
    assert select_providers(None, ALL) == ["CPUExecutionProvider"]


def test_tensorrt_engine_cache_is_keyed_by_model_id(tmp_path):
    a, b = tensorrt_cache_dir("aa" * 16, tmp_path), tensorrt_cache_dir("bb" * 16, tmp_path)
    assert a != b and a.parent == b.parent == tmp_path
    opts = provider_options(["TensorrtExecutionProvider", "CPUExecutionProvider"], "cc" * 16)
    name, trt = opts[0]
    assert name == "TensorrtExecutionProvider" and trt["trt_engine_cache_enable"]
    assert trt["trt_engine_cache_path"].endswith("cc" * 16)
    assert opts[1] == "CPUExecutionProvider"


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
