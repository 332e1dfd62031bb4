"""Model bundles: encoder.onnx + decoder.onnx + tables.npz + manifest.json in one folder.

The model id is a content hash of the three payload files, so a .aec file can name the
exact model it needs. ONNX Runtime sessions are created lazily (a decoder never loads
the encoder) and reused.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .entropy import LatentCoder
from .errors import AecError, ModelMismatchError

MODELS_DIR = Path(__file__).parent / "models"
DEFAULT_IMAGE_MODEL = "image-edge"
PAYLOAD_FILES = ("encoder.onnx", "decoder.onnx", "tables.npz")

_PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
}


def compute_model_id(folder: str | Path) -> str:
    """SHA-256 over the payload files (name, length, bytes), first 16 bytes as hex."""
    h = hashlib.sha256()
    for name in PAYLOAD_FILES:
        data = (Path(folder) / name).read_bytes()
        h.update(name.encode() + b"\0" + len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:32]


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
            name = _PROVIDER_ALIASES.get(r.lower(), r)
            if name not in available:
                raise AecError(f"ONNX Runtime provider {r!r} is not available here (available: {', '.join(available)})")
            if name not in chosen:
                chosen.append(name)
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


def tensorrt_cache_dir(model_id: str, base: str | Path | None = None) -> Path:
    """Engine cache folder keyed by model id: engines of one model never serve another."""
    root = Path(base) if base else Path(os.environ.get("AECODEC_TRT_CACHE") or Path.home() / ".cache" / "aecodec" / "trt")
    return root / model_id


def _provider_options(providers: list[str], model_id: str) -> list:
    opts: list = []
    for p in providers:
        if p == "TensorrtExecutionProvider":
            cache = tensorrt_cache_dir(model_id)
            opts.append((p, {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
                             "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache)}))
        else:
            opts.append(p)
    return opts


@dataclass
class BundleInfo:
    model_id: str
    name: str
    manifest: dict
    folder: Path


class ModelBundle:
    """One loaded model. Thread-safe lazy session creation; sessions reused across calls."""

    def __init__(self, folder: str | Path, providers: str | list[str] | None = None, threads: int = 0):
        self.folder = Path(folder)
        manifest_path = self.folder / "manifest.json"
        if not manifest_path.is_file():
            raise AecError(f"no model bundle at {self.folder} (manifest.json missing)")
        self.manifest = json.loads(manifest_path.read_text())
        self.model_id: str = self.manifest["model_id"]
        self.model_id_bytes = bytes.fromhex(self.model_id)
        self.downsample: int = int(self.manifest["downsample"])
        self.latent_channels: int = int(self.manifest["latent_channels"])
        self.default_quality: int = int(self.manifest.get("default_quality", 75))
        self._providers_requested = providers
        self._threads = threads
        self._lock = threading.Lock()
        self._sessions: dict[str, object] = {}
        with np.load(self.folder / "tables.npz") as t:
            self.gains = t["gains"].astype(np.float32)  # (Q, C)
            self.coder = LatentCoder(t["freqs"], t["lengths"], t["offsets"], int(t["precision"]))
        if self.gains.shape != (self.coder.num_qualities, self.latent_channels):
            raise AecError(f"inconsistent model bundle at {self.folder}")

    @property
    def num_qualities(self) -> int:
        return self.coder.num_qualities

    def verify(self) -> None:
        """Recompute the content hash; raise if the files do not match the manifest."""
        actual = compute_model_id(self.folder)
        if actual != self.model_id:
            raise AecError(f"model bundle {self.folder} is damaged (id {actual} != manifest {self.model_id})")

    def session(self, which: str):
        """ONNX Runtime session for 'encoder' or 'decoder', created on first use."""
        with self._lock:
            if which not in self._sessions:
                import onnxruntime as ort

                so = ort.SessionOptions()
                so.intra_op_num_threads = self._threads
                so.inter_op_num_threads = 1
                so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                # The encoder and decoder sessions have their own thread pools; spinning idle
                # workers of one would steal the cores from the other (measured: up to 1.6x slower
                # round trips on 2 cores).
                so.add_session_config_entry("session.intra_op.allow_spinning", "0")
                providers = select_providers(self._providers_requested)
                self._sessions[which] = ort.InferenceSession(
                    str(self.folder / f"{which}.onnx"), sess_options=so,
                    providers=_provider_options(providers, self.model_id),
                )
            return self._sessions[which]

    def run_encoder(self, x: np.ndarray) -> np.ndarray:
        """x: float32 N×3×H×W in [0, 1], H and W multiples of `downsample` -> float32 latent."""
        sess = self.session("encoder")
        return sess.run(None, {sess.get_inputs()[0].name: x})[0]

    def run_decoder(self, y: np.ndarray) -> np.ndarray:
        sess = self.session("decoder")
        return sess.run(None, {sess.get_inputs()[0].name: y})[0]


_registry_lock = threading.Lock()
_loaded: dict[tuple, ModelBundle] = {}


def shipped_bundles() -> list[Path]:
    if not MODELS_DIR.is_dir():
        return []
    return sorted(p for p in MODELS_DIR.iterdir() if (p / "manifest.json").is_file())


def load_bundle(model: str | Path | ModelBundle | None = None, providers=None) -> ModelBundle:
    """A bundle by folder path or shipped name (default: the image model), cached per process."""
    if isinstance(model, ModelBundle):
        return model
    folder = Path(model) if model and Path(model).is_dir() else MODELS_DIR / (model or DEFAULT_IMAGE_MODEL)
    if not (folder / "manifest.json").is_file():
        names = ", ".join(p.name for p in shipped_bundles()) or "none"
        raise AecError(f"model {model!r} not found (shipped models: {names})")
    key = (str(folder.resolve()), str(providers))
    with _registry_lock:
        if key not in _loaded:
            _loaded[key] = ModelBundle(folder, providers=providers)
        return _loaded[key]


def bundle_for_id(model_id: bytes, preferred: str | Path | ModelBundle | None = None, providers=None) -> ModelBundle:
    """The bundle whose id matches a file's; the preferred one first, then every shipped one."""
    candidates = []
    if preferred is not None:
        candidates.append(load_bundle(preferred, providers))
    for folder in shipped_bundles():
        json_id = json.loads((folder / "manifest.json").read_text()).get("model_id", "")
        if json_id == model_id.hex():
            candidates.append(load_bundle(folder, providers))
    for b in candidates:
        if b.model_id_bytes == model_id:
            return b
    raise ModelMismatchError(
        f"file needs model {model_id.hex()}, which is not available"
        + (f" (given model is {candidates[0].model_id})" if preferred is not None else "")
        + "; pass the matching bundle with --model"
    )
