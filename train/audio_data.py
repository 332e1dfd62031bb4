"""Audio folders for training: decoded once to 24 kHz mono float32, sampled as random segments."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .image_data import list_files

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif"}


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


class SegmentSampler:
    """Random fixed-length segments with a random gain (−12..+3 dB), clips shorter than a segment zero-padded."""

    def __init__(self, folder: str | Path, seconds: float, sample_rate: int, seed: int, multiple: int = 1):
        self.length = max(1, int(round(seconds * sample_rate / multiple))) * multiple
        self.clips = [torch.from_numpy(load_mono(p, sample_rate)) for p in list_audio(folder)]
        self.weights = torch.tensor([max(len(c), 1) for c in self.clips], dtype=torch.float64)
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.clips)

    def batch(self, size: int) -> torch.Tensor:
        idx = torch.multinomial(self.weights, size, replacement=True, generator=self.generator)
        out = torch.zeros(size, 1, self.length)
        for row, i in enumerate(idx.tolist()):
            clip = self.clips[i]
            if len(clip) > self.length:
                start = int(torch.randint(0, len(clip) - self.length + 1, (1,), generator=self.generator))
                seg = clip[start : start + self.length]
            else:
                seg = clip
            gain_db = float(torch.empty(1).uniform_(-12.0, 3.0, generator=self.generator))
            out[row, 0, : len(seg)] = seg * 10 ** (gain_db / 20)
        return out.clamp_(-1.0, 1.0)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
