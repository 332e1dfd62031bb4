"""Model bundles: encoder.onnx + decoder.onnx + tables.npz + manifest.json in one folder.

The model id is a content hash of the three payload files, so a .aec file can name the exact
model it needs. `Manifest` is the schema of manifest.json: the keys the run time reads, checked
when a bundle is opened. ONNX Runtime sessions are created lazily (a decoder never loads the
encoder) and reused.
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..coding import FactorizedCoding, FrequencyTables, HyperpriorCoding, HyperSynthesis
from ..errors import AecError
from .runtime import create_session

PAYLOAD_FILES = ("encoder.onnx", "decoder.onnx", "tables.npz")
LATENT_CODINGS = ("factorized", "hyperprior")


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


def _load_coding(tables_path: Path, manifest: Manifest) -> FactorizedCoding | HyperpriorCoding:
    with np.load(tables_path) as t:
        precision = int(t["precision"])
        if manifest.latent_coding == "hyperprior":
            hyper = HyperSynthesis.from_tables(t, manifest.latent_channels, manifest.hyper_synthesis)
            return HyperpriorCoding(
                t["gains"], FrequencyTables(t["z_freqs"], t["z_lengths"], t["z_offsets"], precision),
                FrequencyTables(t["y_freqs"], t["y_lengths"], t["y_offsets"], precision), hyper)
        freqs = t["freqs"]  # (Q, C, L): table (q, c) is row q·C + c
        q, c, length = freqs.shape
        tables = FrequencyTables(freqs.reshape(q * c, length), t["lengths"].reshape(-1), t["offsets"].reshape(-1),
                                 precision)
        return FactorizedCoding(t["gains"], tables)


class ModelBundle:
    """One loaded model. Thread-safe lazy session creation; sessions reused across calls."""

    def __init__(self, folder: str | Path, providers: str | list[str] | None = None, threads: int = 0):
        self.folder = Path(folder)
        manifest_path = self.folder / "manifest.json"
        if not manifest_path.is_file():
            raise AecError(f"no model bundle at {self.folder} (manifest.json missing)")
        self.manifest = Manifest.from_dict(json.loads(manifest_path.read_text()), str(self.folder))
        self.model_id = self.manifest.model_id
        self.model_id_bytes = bytes.fromhex(self.model_id)
        self._providers_requested = providers
        self._threads = threads
        self._lock = threading.Lock()
        self._sessions: dict[str, object] = {}
        try:
            self.coding = _load_coding(self.folder / "tables.npz", self.manifest)
        except (KeyError, ValueError, OSError) as e:
            raise AecError(f"inconsistent model bundle at {self.folder} ({e})") from None
        if self.coding.channels != self.manifest.latent_channels:
            raise AecError(f"inconsistent model bundle at {self.folder}")

    @property
    def num_qualities(self) -> int:
        return self.coding.num_qualities

    @property
    def is_hyperprior(self) -> bool:
        return isinstance(self.coding, HyperpriorCoding)

    def verify(self) -> None:
        """Recompute the content hash; raise if the files do not match the manifest."""
        actual = compute_model_id(self.folder)
        if actual != self.model_id:
            raise AecError(f"model bundle {self.folder} is damaged (id {actual} != manifest {self.model_id})")

    def session(self, which: str):
        """ONNX Runtime session for 'encoder' or 'decoder', created on first use."""
        with self._lock:
            if which not in self._sessions:
                self._sessions[which] = create_session(self.folder / f"{which}.onnx", self._providers_requested,
                                                       self._threads, self.model_id)
            return self._sessions[which]

    def run_encoder(self, x: np.ndarray, gain: np.ndarray | None = None) -> list[np.ndarray]:
        """Encoder graph outputs. Factorized: [y] for x. Hyperprior: [v, z] for x and the (1, M, 1, 1) gain."""
        sess = self.session("encoder")
        names = [i.name for i in sess.get_inputs()]
        feeds = {names[0]: x}
        if gain is not None:
            feeds[names[1]] = np.ascontiguousarray(gain.reshape(1, -1, 1, 1), dtype=np.float32)
        return sess.run(None, feeds)

    def run_decoder(self, y: np.ndarray) -> np.ndarray:
        sess = self.session("decoder")
        return sess.run(None, {sess.get_inputs()[0].name: y})[0]
