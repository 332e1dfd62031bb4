"""Model bundles: encoder.onnx + decoder.onnx + tables.npz + manifest.json in one folder.

The model id is a content hash of the three payload files, so a .aec file can name the exact
model it needs. `Manifest` is the schema of manifest.json: the keys the run time reads, checked
when a bundle is opened. ONNX Runtime sessions are created lazily (a decoder never loads the
encoder) and reused.

Precision variants (INT8, FP16) and ORT-format graphs for mobile are extra graph files listed in
the manifest under "variants"; they never enter the model id, because the entropy path (tables.npz
and, for hyperprior models, the integer h_s) is the same for every variant: a file encoded with one
variant decodes with any other, only the reconstruction differs slightly.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..coding import CheckerboardContext, FactorizedCoding, FrequencyTables, HyperpriorCoding, HyperSynthesis
from ..errors import AecError
from .runtime import PRECISIONS, ShapeProfile, backend_of, create_session, graph_inputs, select_providers, tensorrt_profile

PAYLOAD_FILES = ("encoder.onnx", "decoder.onnx", "tables.npz")
LATENT_CODINGS = ("factorized", "hyperprior", "hyperprior-checkerboard")
GRAPHS = ("encoder", "decoder")
GRAPH_FORMATS = ("onnx", "ort")

_precision: contextvars.ContextVar[str | None] = contextvars.ContextVar("aecodec_precision", default=None)


def requested_precision(precision: str | None = None) -> str:
    """The precision asked for: the argument, else `use_precision`'s, else $AECODEC_PRECISION, else "auto"."""
    chosen = precision or _precision.get() or os.environ.get("AECODEC_PRECISION") or "auto"
    if chosen not in PRECISIONS:
        raise AecError(f"unknown precision {chosen!r} (choose from {', '.join(PRECISIONS)})")
    return chosen


@contextlib.contextmanager
def use_precision(precision: str | None) -> Iterator[None]:
    """Bundles loaded inside this block (by name or id, e.g. by aecodec.compress) use this precision
    (None: whatever an enclosing block or the environment says)."""
    token = _precision.set(requested_precision(precision) if precision else _precision.get())
    try:
        yield
    finally:
        _precision.reset(token)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compute_model_id(folder: str | Path) -> str:
    """SHA-256 over the payload files (name, length, bytes), first 16 bytes as hex."""
    h = hashlib.sha256()
    for name in PAYLOAD_FILES:
        data = (Path(folder) / name).read_bytes()
        h.update(name.encode() + b"\0" + len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:32]


@dataclass(frozen=True)
class Manifest:
    """What the run time needs from manifest.json (the exporter writes more: training, parity, ...)."""

    model_id: str
    name: str
    modality: str  # "image" or "audio"
    downsample: int  # input samples per latent element along each axis
    latent_channels: int
    latent_coding: str = "factorized"
    pad_multiple: int = 0  # images are padded to a multiple of this (0: downsample)
    default_quality: int = 75
    sample_rate: int = 0  # audio models
    hyper_channels: int = 0  # hyperprior models
    hyper_synthesis: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: dict, where: str) -> "Manifest":
        try:
            m = cls(model_id=str(d["model_id"]), name=str(d.get("name", "")), modality=str(d.get("modality", "image")),
                    downsample=int(d["downsample"]), latent_channels=int(d["latent_channels"]),
                    latent_coding=str(d.get("latent_coding", "factorized")), pad_multiple=int(d.get("pad_multiple", 0)),
                    default_quality=int(d.get("default_quality", 75)), sample_rate=int(d.get("sample_rate", 0)),
                    hyper_channels=int(d.get("hyper_channels", 0)), hyper_synthesis=dict(d.get("hyper_synthesis", {})),
                    raw=d)
            bytes.fromhex(m.model_id)
        except (KeyError, TypeError, ValueError) as e:
            raise AecError(f"invalid manifest.json in {where} ({type(e).__name__}: {e})") from None
        if m.modality not in ("image", "audio") or m.latent_coding not in LATENT_CODINGS or len(m.model_id) != 32:
            raise AecError(f"invalid manifest.json in {where} (modality / latent_coding / model_id)")
        if m.modality == "audio" and m.sample_rate <= 0:
            raise AecError(f"invalid manifest.json in {where} (audio model without sample_rate)")
        return m

    @property
    def padding(self) -> int:
        return self.pad_multiple or self.downsample

    @property
    def variants(self) -> dict[str, "Variant"]:
        """Every graph variant the manifest names, plus the payload graphs as "fp32" (files may be absent:
        a mobile bundle ships .ort graphs only)."""
        found = {"fp32": Variant("fp32", "fp32", "onnx", {"encoder": "encoder.onnx", "decoder": "decoder.onnx"}, {})}
        for name, v in (self.raw.get("variants") or {}).items():
            found[name] = Variant.from_dict(name, v)
        return found


@dataclass(frozen=True)
class Variant:
    """One set of graphs of a bundle: its precision, file format and files (sha256 from the manifest).

    `default_for`: the backends ("cpu", "cuda", "tensorrt") on which precision "auto" picks this variant,
    written by the exporter only where it measured the variant to win. `backends`: the backends on which a
    precision picks it (empty: any); the CPU-tuned INT8 graphs ("int8": asymmetric uint8 activations) are not
    for TensorRT, and TensorRT's ("int8-trt": symmetric int8 QDQ, TensorRT's explicit INT8) are not picked on
    the CPU. Naming a variant (ModelBundle(variant=...)) runs it on any backend."""

    name: str
    precision: str
    format: str
    files: dict[str, str]
    sha256: dict[str, str]
    default_for: tuple[str, ...] = ()
    backends: tuple[str, ...] = ()
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, name: str, d: dict) -> "Variant":
        try:
            v = cls(name, str(d["precision"]), str(d.get("format", "onnx")),
                    {k: str(d["files"][k]) for k in GRAPHS}, {str(k): str(h) for k, h in (d.get("sha256") or {}).items()},
                    tuple(str(b) for b in d.get("default_for", ())), tuple(str(b) for b in d.get("backends", ())), d)
        except (KeyError, TypeError, AttributeError) as e:
            raise AecError(f"invalid variant {name!r} in manifest.json ({type(e).__name__}: {e})") from None
        if v.precision not in PRECISIONS[1:] or v.format not in GRAPH_FORMATS:
            raise AecError(f"invalid variant {name!r} in manifest.json (precision {v.precision}, format {v.format})")
        if any(Path(f).name != f for f in v.files.values()):
            raise AecError(f"invalid variant {name!r} in manifest.json (files must lie in the bundle folder)")
        return v

    def present(self, folder: Path) -> bool:
        return all((folder / f).is_file() for f in self.files.values())


def choose_variant(manifest: Manifest, folder: Path, precision: str, backend: str,
                   graph_format: str | None = None, name: str | None = None) -> tuple[Variant, str]:
    """(variant, precision the engine runs at) for a requested precision on a backend.

    "auto": the variant whose manifest entry names this backend in `default_for`, else fp32. An explicit
    precision the bundle lacks is an error, except fp16 on TensorRT, which builds FP16 engines from the
    fp32 graphs. `graph_format`: "onnx" or "ort" (default: .onnx where its files are present, else .ort).
    `name`: exactly that variant, on any backend (`backends` is not checked; e.g. the TensorRT INT8 graphs on
    the CPU, to measure them); `precision` must then be "auto" or the variant's."""
    if graph_format not in (None, *GRAPH_FORMATS):
        raise AecError(f"unknown graph format {graph_format!r} (onnx or ort)")
    if name is not None:
        named = manifest.variants.get(name)
        if named is None or not named.present(folder):
            have = sorted(n for n, v in manifest.variants.items() if v.present(folder)) or ["none"]
            raise AecError(f"model {manifest.name or folder.name} has no variant {name!r} (it has: {', '.join(have)})")
        if precision not in ("auto", named.precision) or graph_format not in (None, named.format):
            raise AecError(f"variant {name!r} is {named.precision} .{named.format}, not {precision}"
                           + (f" .{graph_format}" if graph_format else ""))
        return named, named.precision
    variants = [v for v in manifest.variants.values() if v.present(folder) and (not v.backends or backend in v.backends)]
    formats = [graph_format] if graph_format else list(GRAPH_FORMATS)

    def best(candidates: list[Variant]) -> Variant | None:
        for fmt in formats:
            for v in candidates:
                if v.format == fmt:
                    return v
        return None

    if precision == "auto":
        chosen = best([v for v in variants if backend in v.default_for])
        if chosen is not None:
            return chosen, chosen.precision
        precision = "fp32"
    chosen = best([v for v in variants if v.precision == precision])
    if chosen is not None:
        return chosen, precision
    if precision == "fp16" and backend == "tensorrt":
        fp32 = best([v for v in variants if v.precision == "fp32"])
        if fp32 is not None:
            return fp32, "fp16"
    have = sorted({f"{v.precision}" + (" (.ort)" if v.format == "ort" else "") for v in variants}) or ["none"]
    where = (f" as .{graph_format}" if graph_format else "") + f" for the {backend} backend"
    raise AecError(f"model {manifest.name or folder.name} has no {precision} variant{where} "
                   f"(it has: {', '.join(have)}; make one with python -m aecodec.export.variants)")


def precisions_for(manifest: Manifest, folder: Path, backend: str) -> tuple[list[str], str]:
    """(precisions that can run on a backend, the one "auto" picks there), without creating a session."""
    found = []
    for p in PRECISIONS[1:]:
        try:
            choose_variant(manifest, folder, p, backend)
            found.append(p)
        except AecError:
            continue
    try:
        auto = choose_variant(manifest, folder, "auto", backend)[1]
    except AecError:
        auto = "none"
    return found, auto


def _load_coding(tables_path: Path, manifest: Manifest) -> FactorizedCoding | HyperpriorCoding:
    with np.load(tables_path) as t:
        precision = int(t["precision"])
        if manifest.latent_coding.startswith("hyperprior"):
            hyper = HyperSynthesis.from_tables(t, manifest.latent_channels, manifest.hyper_synthesis)
            context = (CheckerboardContext.from_tables(t, hyper)
                       if manifest.latent_coding == "hyperprior-checkerboard" else None)
            return HyperpriorCoding(
                t["gains"], FrequencyTables(t["z_freqs"], t["z_lengths"], t["z_offsets"], precision),
                FrequencyTables(t["y_freqs"], t["y_lengths"], t["y_offsets"], precision), hyper, context)
        freqs = t["freqs"]  # (Q, C, L): table (q, c) is row q·C + c
        q, c, length = freqs.shape
        tables = FrequencyTables(freqs.reshape(q * c, length), t["lengths"].reshape(-1), t["offsets"].reshape(-1),
                                 precision)
        return FactorizedCoding(t["gains"], tables)


class ModelBundle:
    """One loaded model at one precision. Thread-safe lazy session creation; sessions reused across calls.

    `precision`: "auto" (default; $AECODEC_PRECISION or `use_precision` can set it), "fp32", "int8" or
    "fp16"; `graph_format`: "onnx" / "ort" (default: .onnx where present). `variant`: a variant by its manifest
    name ("fp32", "int8", "int8-trt", ...), on any backend, instead of choosing by precision (the precision
    argument, if given, must match it; $AECODEC_PRECISION is then ignored). `max_batch`: the largest batch
    TensorRT engines are built for (the codec runs batch 1)."""

    def __init__(self, folder: str | Path, providers: str | list[str] | None = None, threads: int = 0, *,
                 precision: str | None = None, graph_format: str | None = None, max_batch: int = 1,
                 variant: str | None = None):
        self.folder = Path(folder)
        manifest_path = self.folder / "manifest.json"
        if not manifest_path.is_file():
            raise AecError(f"no model bundle at {self.folder} (manifest.json missing)")
        self.manifest = Manifest.from_dict(json.loads(manifest_path.read_text()), str(self.folder))
        self.model_id = self.manifest.model_id
        self.model_id_bytes = bytes.fromhex(self.model_id)
        self._providers_requested = providers
        self._threads = threads
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._sessions: dict[str, object] = {}
        self._profiles: dict[str, ShapeProfile | None] = {}
        try:
            self.coding = _load_coding(self.folder / "tables.npz", self.manifest)
        except (KeyError, ValueError, OSError) as e:
            raise AecError(f"inconsistent model bundle at {self.folder} ({e})") from None
        if self.coding.channels != self.manifest.latent_channels:
            raise AecError(f"inconsistent model bundle at {self.folder}")
        self.requested_precision = requested_precision(precision if variant is None else precision or "auto")
        self.providers = select_providers(providers)
        self.backend = backend_of(self.providers)
        self.variant, self.precision = choose_variant(self.manifest, self.folder, self.requested_precision,
                                                      self.backend, graph_format, name=variant)

    @property
    def num_qualities(self) -> int:
        return self.coding.num_qualities

    @property
    def is_hyperprior(self) -> bool:
        return isinstance(self.coding, HyperpriorCoding)

    def verify(self) -> None:
        """Recompute the content hash (where the .onnx payload is present) and every present variant file's
        sha256; raise if anything does not match the manifest."""
        if all((self.folder / f).is_file() for f in PAYLOAD_FILES):
            actual = compute_model_id(self.folder)
            if actual != self.model_id:
                raise AecError(f"model bundle {self.folder} is damaged (id {actual} != manifest {self.model_id})")
        refiner = self.manifest.raw.get("refiner") or {}
        if self.has_refiner and refiner.get("sha256") and file_sha256(self.folder / refiner["file"]) != refiner["sha256"]:
            raise AecError(f"model bundle {self.folder}: {refiner['file']} does not match its manifest entry; "
                           "re-run python -m aecodec.export.refiner")
        for v in self.manifest.variants.values():
            for f in v.files.values():
                if f in v.sha256 and (self.folder / f).is_file() and file_sha256(self.folder / f) != v.sha256[f]:
                    raise AecError(f"model bundle {self.folder}: {f} does not match its manifest entry (variant {v.name}); "
                                   "re-run python -m aecodec.export.variants")

    def graph_path(self, which: str) -> Path:
        """The file the session for 'encoder' / 'decoder' runs (of the chosen variant)."""
        return self.folder / self.variant.files[which]

    def session(self, which: str):
        """ONNX Runtime session for 'encoder' or 'decoder', created on first use."""
        with self._lock:
            if which not in self._sessions:
                path = self.graph_path(which)
                expected = self.variant.sha256.get(path.name)
                if expected and file_sha256(path) != expected:
                    raise AecError(f"{path.name} in {self.folder} does not match its manifest entry (variant "
                                   f"{self.variant.name}); re-run python -m aecodec.export.variants")
                profile = None
                if self.backend == "tensorrt":
                    profile = tensorrt_profile(graph_inputs(path), 1 if which == "encoder" else self.manifest.downsample,
                                               max_batch=self._max_batch)
                self._profiles[which] = profile
                self._sessions[which] = create_session(path, self.providers, self._threads, self.model_id,
                                                       precision=self.precision, profile=profile)
            return self._sessions[which]

    def _run(self, which: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        sess = self.session(which)
        profile = self._profiles.get(which)
        if profile is not None and not profile.fits({k: tuple(v.shape) for k, v in feeds.items()}):
            sess = self._fallback_session(which)  # TensorRT refuses shapes outside its engine's profile
        return sess.run(None, feeds)  # type: ignore[attr-defined]

    def _fallback_session(self, which: str):
        """The same graph without TensorRT (CUDA if present, else CPU), for inputs outside the profile."""
        key = which + "-fallback"
        with self._lock:
            if key not in self._sessions:
                rest = [p for p in self.providers if p != "TensorrtExecutionProvider"]
                self._sessions[key] = create_session(self.graph_path(which), rest, self._threads, self.model_id,
                                                     precision=self.precision)
            return self._sessions[key]

    def input_names(self, which: str) -> list[str]:
        return [i.name for i in self.session(which).get_inputs()]  # type: ignore[attr-defined]

    def run_encoder(self, x: np.ndarray, gain: np.ndarray | None = None) -> list[np.ndarray]:
        """Encoder graph outputs. Factorized: [y] for x. Hyperprior: [v, z] for x and the (1, M, 1, 1) gain."""
        names = self.input_names("encoder")
        feeds = {names[0]: x}
        if gain is not None:
            feeds[names[1]] = np.ascontiguousarray(gain.reshape(1, -1, 1, 1), dtype=np.float32)
        return self._run("encoder", feeds)

    def run_decoder(self, y: np.ndarray) -> np.ndarray:
        return self._run("decoder", {self.input_names("decoder")[0]: y})[0]

    @property
    def has_refiner(self) -> bool:
        """Whether the bundle lists refiner.onnx (g_s's gradient, for `refine=`) and the file is there."""
        entry = self.manifest.raw.get("refiner")
        return isinstance(entry, dict) and (self.folder / str(entry.get("file", ""))).is_file()

    def run_refiner(self, latent: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
        """(∂/∂ŷ Σ(g_s(ŷ) − target)², that sum) for ŷ 1×M×h×w and the padded image 1×3×16h×16w, in float32
        on the CPU (an encoder-side search: it never changes what a file decodes to)."""
        with self._lock:
            if "refiner" not in self._sessions:
                entry = self.manifest.raw.get("refiner") or {}
                path = self.folder / str(entry.get("file", "refiner.onnx"))
                if not self.has_refiner:
                    raise AecError(f"model {self.manifest.name} {self.model_id} has no refiner graph "
                                   "(python -m aecodec.export.refiner adds one to a hyperprior bundle)")
                if entry.get("sha256") and file_sha256(path) != entry["sha256"]:
                    raise AecError(f"{path.name} in {self.folder} does not match its manifest entry")
                self._sessions["refiner"] = create_session(path, "cpu", self._threads, self.model_id)
            session = self._sessions["refiner"]
        gradient, sse = session.run(None, {"latent": latent, "target": target})  # type: ignore[attr-defined]
        return gradient, float(sse[0])
