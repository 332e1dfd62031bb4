"""ONNX Runtime: which execution providers to use and how sessions are created.

Kept apart from the bundle so that a new backend (CUDA, TensorRT, INT8 variants) changes one module.
TensorRT engines depend on the model, the GPU, the TensorRT version and the precision, so the engine
cache folder is keyed by all four; the GPU name and TensorRT version are looked up only when a
TensorRT session is made, and never fail (a machine without a GPU gets "unknown").
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import AecError

BACKENDS = ("auto", "cpu", "cuda", "tensorrt")
# ONNX Runtime wheels that all install the same `onnxruntime` module: with two of them installed,
# which one Python loads depends on the order they were installed in.
ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino",
                     "onnxruntime-qnn", "onnxruntime-training")

PRECISIONS = ("auto", "fp32", "int8", "fp16")
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
}


def select_providers(requested: str | list[str] | None = None, available: list[str] | None = None) -> list[str]:
    """ONNX Runtime providers to use, best first, always ending in CPU.

    `requested`: None/"auto" (env AECODEC_PROVIDER or TensorRT > CUDA > CPU, whatever
    is available), or names/aliases ("cpu", "cuda", "tensorrt"; TensorRT brings CUDA along where
    installed, for the nodes TensorRT does not take). Asking for a provider that is not available is
    an error rather than a silent CPU run.
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
    if chosen[:1] == ["TensorrtExecutionProvider"] and "CUDAExecutionProvider" in available \
            and "CUDAExecutionProvider" not in chosen:
        chosen.insert(1, "CUDAExecutionProvider")  # nodes TensorRT does not take stay on the GPU
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



def backend_of(providers: list[str]) -> str:
    """Backend name ("tensorrt", "cuda", "cpu", or the provider's own name) of the first provider of a list."""
    first = providers[0] if providers else "CPUExecutionProvider"
    for name in BACKENDS[1:]:
        if PROVIDER_ALIASES[name] == first:
            return name
    return first.removesuffix("ExecutionProvider").lower()


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "unknown"


@functools.lru_cache(maxsize=1)
def gpu_name() -> str:
    """Name of CUDA device 0 (driver API through ctypes, else nvidia-smi), or "unknown"; never raises."""
    import ctypes

    for lib in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            cuda = ctypes.CDLL(lib)
            device = ctypes.c_int()
            name = ctypes.create_string_buffer(256)
            if cuda.cuInit(0) == 0 and cuda.cuDeviceGet(ctypes.byref(device), 0) == 0 \
                    and cuda.cuDeviceGetName(name, 256, device) == 0:
                return name.value.decode(errors="replace").strip() or "unknown"
        except (OSError, AttributeError):
            continue
    try:
        import subprocess

        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", "0"],
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().splitlines()[0]
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return "unknown"


@functools.lru_cache(maxsize=1)
def tensorrt_version() -> str:
    """Version of the TensorRT library ONNX Runtime would load (package metadata, else libnvinfer), or "unknown"."""
    from importlib import metadata

    for dist in ("tensorrt", "tensorrt-cu12", "tensorrt-cu12-libs", "tensorrt-cu11", "tensorrt-libs"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    import ctypes

    for lib in ("libnvinfer.so.10", "libnvinfer.so.8", "libnvinfer.so", "nvinfer.dll", "nvinfer_10.dll"):
        try:
            v = int(ctypes.CDLL(lib).getInferLibVersion())
        except (OSError, AttributeError, ValueError):
            continue
        # TensorRT >= 10 encodes major*10000 + minor*100 + patch, older major*1000 + minor*100 + patch
        major, rest = (v // 10000, v % 10000) if v >= 100000 else (v // 1000, v % 1000)
        return f"{major}.{rest // 100}.{rest % 100}"
    return "unknown"


def tensorrt_cache_dir(model_id: str, base: str | Path | None = None, *, precision: str = "fp32",
                       gpu: str | None = None, trt_version: str | None = None) -> Path:
    """Engine cache folder: <root>/<model id>/<gpu>_trt<version>_<precision>. An engine built for one model,
    GPU, TensorRT version or precision is never loaded for another."""
    root = Path(base) if base else Path(os.environ.get("AECODEC_TRT_CACHE") or Path.home() / ".cache" / "aecodec" / "trt")
    gpu = gpu_name() if gpu is None else gpu
    trt_version = tensorrt_version() if trt_version is None else trt_version
    return root / model_id / f"{_safe(gpu)}_trt{_safe(trt_version)}_{_safe(precision)}"


@dataclass(frozen=True)
class GraphInput:
    """One input of a graph as the session reports it: name and shape (str or None for a dynamic axis)."""

    name: str
    shape: tuple


@dataclass(frozen=True)
class ShapeProfile:
    """A TensorRT optimization profile: per input name, the min / opt / max shapes."""

    min: dict[str, tuple[int, ...]]
    opt: dict[str, tuple[int, ...]]
    max: dict[str, tuple[int, ...]]

    def option(self, which: str) -> str:
        """The ORT TensorRT EP's string form, e.g. "image:1x3x64x64,gain:1x160x1x1"."""
        shapes = getattr(self, which)
        return ",".join(f"{name}:{'x'.join(str(d) for d in shape)}" for name, shape in shapes.items())

    def fits(self, shapes: dict[str, tuple[int, ...]]) -> bool:
        """Whether these input shapes are inside the profile (TensorRT refuses others at run time)."""
        for name, shape in shapes.items():
            lo, hi = self.min.get(name), self.max.get(name)
            if lo is None or hi is None or len(shape) != len(lo):
                return False
            if any(not a <= d <= b for a, d, b in zip(lo, shape, hi)):
                return False
        return True


# Image side lengths TensorRT engines are built for. Tiles are at most TILE + 2·HYPER_HALO = 1664 pixels
# a side (image/tiling.py); whole images of up to 1536² pixels run untiled, so the longest side an
# untiled image can have at a 1080p-like aspect is 2048, and 2688 covers up to about 3:1.
TRT_MIN_SIDE = 64
TRT_OPT_SIZE = (1088, 1920)  # 1080p padded to the hyperprior's multiple of 64
TRT_MAX_SIDE = 2688


def tensorrt_profile(inputs: list[GraphInput], pixels_per_step: int = 1, *, max_batch: int = 1, opt_batch: int = 1,
                     opt_size: tuple[int, int] = TRT_OPT_SIZE, max_side: int = TRT_MAX_SIDE) -> ShapeProfile:
    """Min / opt / max shapes of every input of a graph, for one TensorRT optimization profile.

    Axis 0 is the batch (1 .. max_batch); other dynamic axes are spatial, in pixels / `pixels_per_step`
    (1 for an encoder's image, the model's downsample for a decoder's latent), from 64 pixels to
    `max_side`, optimized for `opt_size` (height, width); fixed axes (channels, the gain) keep their size."""
    lo, opt, hi = {}, {}, {}
    for inp in inputs:
        mins, opts, maxs = [], [], []
        for axis, d in enumerate(inp.shape):
            if isinstance(d, int) and d > 0:
                lo_d, opt_d, hi_d = d, d, d
            elif axis == 0:
                lo_d, opt_d, hi_d = 1, max(1, min(opt_batch, max_batch)), max_batch
            else:
                want = opt_size[min(max(axis - 2, 0), len(opt_size) - 1)]
                lo_d = max(1, TRT_MIN_SIDE // pixels_per_step)
                opt_d = max(1, min(want, max_side) // pixels_per_step)
                hi_d = max(1, max_side // pixels_per_step)
            mins.append(lo_d)
            opts.append(opt_d)
            maxs.append(hi_d)
        lo[inp.name], opt[inp.name], hi[inp.name] = tuple(mins), tuple(opts), tuple(maxs)
    return ShapeProfile(lo, opt, hi)


def tensorrt_options(model_id: str, precision: str, profile: ShapeProfile | None = None,
                     cache_root: str | Path | None = None) -> dict:
    """ORT TensorRT EP options: engine and timing cache in the keyed folder, FP16 / INT8 per precision
    (an int8 variant for TensorRT must be a symmetric-int8 QDQ graph: TensorRT runs it as explicit INT8), and the
    profile."""
    cache = tensorrt_cache_dir(model_id, cache_root, precision=precision)
    opts: dict = {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
                  "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache),
                  "trt_fp16_enable": precision == "fp16", "trt_int8_enable": precision == "int8"}
    if profile is not None:
        opts.update({"trt_profile_min_shapes": profile.option("min"), "trt_profile_opt_shapes": profile.option("opt"),
                     "trt_profile_max_shapes": profile.option("max")})
    return opts


def provider_options(providers: list[str], model_id: str, precision: str = "fp32",
                     profile: ShapeProfile | None = None) -> list:
    """Providers with their options, as ONNX Runtime takes them (TensorRT gets its cache, precision and profile)."""
    opts: list = []
    for p in providers:
        if p == "TensorrtExecutionProvider":
            opts.append((p, tensorrt_options(model_id, precision, profile)))
        else:
            opts.append(p)
    return opts


def graph_inputs(path: Path) -> list[GraphInput]:
    """Inputs of a graph file (.onnx or .ort) read through a CPU session: what TensorRT profiles are built from."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    return [GraphInput(i.name, tuple(d if isinstance(d, int) else None for d in i.shape)) for i in sess.get_inputs()]


def create_session(path: Path, providers: str | list[str] | None, threads: int, model_id: str, *,
                   precision: str = "fp32", profile: ShapeProfile | None = None):
    """An InferenceSession with the run time's settings (.onnx or .ort: ONNX Runtime reads both)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # The encoder and decoder sessions have their own thread pools; spinning idle workers of one
    # would steal the cores from the other (measured: up to 1.6x slower round trips on 2 cores).
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if path.suffix == ".ort":
        so.add_session_config_entry("session.load_model_format", "ORT")
    chosen = providers if isinstance(providers, list) and "CPUExecutionProvider" in providers \
        else select_providers(providers)
    return ort.InferenceSession(str(path), sess_options=so,
                                providers=provider_options(chosen, model_id, precision, profile))
