"""ONNX Runtime: which execution providers to use and how sessions are created.

Kept apart from the bundle so that a new backend (CUDA, TensorRT, INT8 variants) changes one module.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import AecError

BACKENDS = ("auto", "cpu", "cuda", "tensorrt")
# ONNX Runtime wheels that all install the same `onnxruntime` module: with two of them installed,
# which one Python loads depends on the order they were installed in.
ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino",
                     "onnxruntime-qnn", "onnxruntime-training")

PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
}


def select_providers(requested: str | list[str] | None = None, available: list[str] | None = None) -> list[str]:
    """ONNX Runtime providers to use, best first, always ending in CPU.

    `requested`: None/"auto" (env AECODEC_PROVIDER or TensorRT > CUDA > CPU, whatever
    is available), or names/aliases ("cpu", "cuda", "tensorrt"). Asking for a provider
    that is not available is an error rather than a silent CPU run.
    """
    if available is None:
        import onnxruntime as ort

        available = ort.get_available_providers()
    if requested is None:
        requested = os.environ.get("AECODEC_PROVIDER") or "auto"
    if isinstance(requested, str):
        requested = [r.strip() for r in requested.split(",") if r.strip()]
    if requested == ["auto"]:
        chosen = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available]
    else:
        chosen = []
        for r in requested:
            name = PROVIDER_ALIASES.get(r.lower(), r)
            if name not in available:
                raise AecError(f"ONNX Runtime provider {r!r} is not available here (available: {', '.join(available)})")
            if name not in chosen:
                chosen.append(name)
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


def installed_onnxruntimes() -> dict[str, str]:
    """Installed ONNX Runtime distributions and their versions (from package metadata, no import)."""
    from importlib import metadata

    found = {}
    for name in ORT_DISTRIBUTIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def install_warnings(installed: dict[str, str] | None = None) -> list[str]:
    """Problems of the ONNX Runtime installation a user should fix (one line each)."""
    installed = installed_onnxruntimes() if installed is None else installed
    if len(installed) > 1:
        names = " and ".join(f"{k} {v}" for k, v in installed.items())
        return [f"{names} are both installed and ship the same module, so which one loads is an accident; "
                f"fix: pip uninstall -y {' '.join(installed)} && pip install onnxruntime-gpu (GPU) or onnxruntime (CPU)"]
    return []


def backend_report(available: list[str] | None = None) -> dict:
    """What this machine offers: ONNX Runtime build(s), providers per backend, and what `auto` picks."""
    import onnxruntime as ort

    available = ort.get_available_providers() if available is None else available
    backends = {}
    for name in BACKENDS[1:]:
        provider = PROVIDER_ALIASES[name]
        backends[name] = {"provider": provider, "available": provider in available}
    auto = select_providers("auto", available)[0]
    return {"onnxruntime": ort.__version__, "device": ort.get_device(), "installed": installed_onnxruntimes(),
            "providers": available, "backends": backends,
            "auto": next(k for k, v in PROVIDER_ALIASES.items() if v == auto), "warnings": install_warnings()}


def tensorrt_cache_dir(model_id: str, base: str | Path | None = None) -> Path:
    """Engine cache folder keyed by model id: engines of one model never serve another."""
    root = Path(base) if base else Path(os.environ.get("AECODEC_TRT_CACHE") or Path.home() / ".cache" / "aecodec" / "trt")
    return root / model_id


def provider_options(providers: list[str], model_id: str) -> list:
    """Providers with their options, as ONNX Runtime takes them (TensorRT gets its engine cache)."""
    opts: list = []
    for p in providers:
        if p == "TensorrtExecutionProvider":
            cache = tensorrt_cache_dir(model_id)
            opts.append((p, {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
                             "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache)}))
        else:
            opts.append(p)
    return opts


def create_session(path: Path, providers: str | list[str] | None, threads: int, model_id: str):
    """An InferenceSession with the run time's settings."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # The encoder and decoder sessions have their own thread pools; spinning idle workers of one
    # would steal the cores from the other (measured: up to 1.6x slower round trips on 2 cores).
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=so,
                                providers=provider_options(select_providers(providers), model_id))
