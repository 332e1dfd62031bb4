"""Audio for training: folders decoded once to 24 kHz mono float32, held-out files, weighted random segments.

Several folders (sources) can be mixed: a batch row first draws a source by its weight, then a clip
of that source in proportion to its length, then a random segment with a random gain. A clip's
kind (speech / music / env) is its file-name prefix, as in shared/data; validation reports each
kind apart. Each clip's bandwidth is detected once at load (`bandwidth_hz`) so the loss can leave
the empty band of up-sampled 16 kHz speech out instead of teaching the model that it is empty (the
run time's detector, which also decides where the decoder cuts such inputs).
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aecodec.audio.bandwidth import bandwidth_hz

from .image_data import list_files

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif"}
KINDS = ("speech", "music", "env")


def list_audio(folder: str | Path) -> list[Path]:
    return list_files(folder, AUDIO_SUFFIXES, "audio")


def load_mono(path: Path, sample_rate: int) -> np.ndarray:
    """Decode with libsndfile, mix to mono, resample with soxr (VHQ) to sample_rate."""
    import soundfile as sf
    import soxr

    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    if sr != sample_rate:
        mono = soxr.resample(mono, sr, sample_rate, quality="VHQ").astype(np.float32)
    return np.ascontiguousarray(mono)


def clip_kind(path: Path) -> str:
    """speech / music / env from the file-name prefix (shared/data's convention), else "other"."""
    prefix = path.name.split("_")[0].lower()
    return prefix if prefix in KINDS else "other"


def clip_group(path: Path) -> str:
    """Files of one recording / speaker / piece share a group: the stem without a trailing "_a", "_b", …

    (shared/data cuts long sources into `name_a`, `name_b`, …); a hold-out takes whole groups.
    """
    return re.sub(r"_[a-z]$", "", path.stem)


def holdout(paths: list[Path], fraction: float) -> tuple[list[Path], list[Path]]:
    """(train, held out): per kind, whole groups (`clip_group`) in the order of a hash of their name until
    `fraction` of the kind's files are held out; a kind with fewer than 3 groups keeps all for training.

    The hash makes the split independent of the machine, the listing order and of files added later
    (an added group is held out or not on its own hash)."""
    if fraction <= 0:
        return list(paths), []
    held: set[Path] = set()
    for kind in sorted({clip_kind(p) for p in paths}):
        files = [p for p in paths if clip_kind(p) == kind]
        groups: dict[str, list[Path]] = {}
        for p in files:
            groups.setdefault(clip_group(p), []).append(p)
        if len(groups) < 3:
            continue
        want = max(1, round(fraction * len(files)))
        order = sorted(groups, key=lambda g: hashlib.sha1(g.encode()).hexdigest())
        taken = 0
        for g in order:
            if taken >= want:
                break
            held.update(groups[g])
            taken += len(groups[g])
    return [p for p in paths if p not in held], [p for p in paths if p in held]


@dataclass
class Clip:
    """One decoded file: samples at the model rate, its kind, its detected bandwidth and its source."""

    audio: torch.Tensor
    kind: str
    band_hz: float
    source: int
    name: str


def load_clips(paths: list[Path], sample_rate: int, source: int) -> list[Clip]:
    clips = []
    for p in paths:
        mono = load_mono(p, sample_rate)
        clips.append(Clip(torch.from_numpy(mono), clip_kind(p), bandwidth_hz(mono, sample_rate), source, p.name))
    return clips


def validation_excerpt(clip: Clip, seconds: float, sample_rate: int) -> Clip:
    """The middle `seconds` of a held-out clip (whole clips would make validation of long tracks slow)."""
    n = min(len(clip.audio), int(round(seconds * sample_rate)))
    start = (len(clip.audio) - n) // 2
    return Clip(clip.audio[start : start + n].clone(), clip.kind, clip.band_hz, clip.source, clip.name)


class SegmentSampler:
    """Random fixed-length segments with a random gain (−12..+3 dB), clips shorter than a segment zero-padded.

    `sources`: lists of clips, one per source, drawn with probability ∝ `weights` (default: ∝ their
    duration, i.e. every clip ∝ its length, as with one folder). With one source the random stream is
    the one the single-folder sampler drew, so earlier runs resume unchanged.
    """

    def __init__(self, sources: list[list[Clip]], seconds: float, sample_rate: int, seed: int, multiple: int = 1,
                 weights: list[float] | None = None):
        self.length = max(1, int(round(seconds * sample_rate / multiple))) * multiple
        self.sources = [s for s in sources if s]
        if not self.sources:
            raise SystemExit("no training audio (every source is empty or held out)")
        self.sample_rate = sample_rate
        self.clip_weights = [torch.tensor([max(len(c.audio), 1) for c in s], dtype=torch.float64) for s in self.sources]
        if weights is None:
            weights = [float(w.sum()) for w in self.clip_weights]
        else:
            weights = [w for s, w in zip(sources, weights) if s]
        self.source_weights = torch.tensor(weights, dtype=torch.float64)
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def clips(self) -> list[Clip]:
        return [c for s in self.sources for c in s]

    def __len__(self) -> int:
        return sum(len(s) for s in self.sources)

    def shares(self) -> dict[str, float]:
        """Expected share of the batch rows per kind (for the log: what the weights make of the mix)."""
        out: dict[str, float] = {}
        total = float(self.source_weights.sum())
        for s, sw, cw in zip(self.sources, self.source_weights.tolist(), self.clip_weights):
            for c, w in zip(s, cw.tolist()):
                out[c.kind] = out.get(c.kind, 0.0) + sw / total * w / float(cw.sum())
        return out

    def draw(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(N×1×length segments, N bandwidths in Hz)."""
        if len(self.sources) == 1:
            picks = [(0, i) for i in torch.multinomial(self.clip_weights[0], size, replacement=True,
                                                        generator=self.generator).tolist()]
        else:
            src = torch.multinomial(self.source_weights, size, replacement=True, generator=self.generator).tolist()
            picks = [(s, int(torch.multinomial(self.clip_weights[s], 1, generator=self.generator))) for s in src]
        out = torch.zeros(size, 1, self.length)
        band = torch.empty(size)
        for row, (s, i) in enumerate(picks):
            clip = self.sources[s][i]
            audio = clip.audio
            if len(audio) > self.length:
                start = int(torch.randint(0, len(audio) - self.length + 1, (1,), generator=self.generator))
                seg = audio[start : start + self.length]
            else:
                seg = audio
            gain_db = float(torch.empty(1).uniform_(-12.0, 3.0, generator=self.generator))
            out[row, 0, : len(seg)] = seg * 10 ** (gain_db / 20)
            band[row] = clip.band_hz
        return out.clamp_(-1.0, 1.0), band

    def batch(self, size: int) -> torch.Tensor:
        return self.draw(size)[0]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


def describe_sources(folders: list[str], sources: list[list[Clip]], held: list[list[Clip]],
                     sample_rate: int) -> str:
    """One line per source for the log: clips, minutes per kind, band-limited clips, held-out files."""
    lines = []
    for folder, clips, val in zip(folders, sources, held):
        minutes: dict[str, float] = {}
        for c in clips:
            minutes[c.kind] = minutes.get(c.kind, 0.0) + len(c.audio) / sample_rate / 60
        limited = sum(1 for c in clips if c.band_hz < sample_rate / 2)
        kinds = ", ".join(f"{k} {m:.1f} min" for k, m in sorted(minutes.items()))
        lines.append(f"{folder}: {len(clips)} clips ({kinds}; {limited} band-limited), {len(val)} held out")
    return "\n".join(lines)


def total_minutes(clips: list[Clip], sample_rate: int) -> float:
    return math.fsum(len(c.audio) for c in clips) / sample_rate / 60
