"""Level, DC and digital silence of decoded audio: format sections 8 (level) and 9 (silence).

The audio model alone loses level (0.3–4 dB on music and speech, 12 dB on high-pitched sounds), adds a
DC offset (about 1e-3), turns digital silence into a −54 dBFS hum and raises near-silent passages by up
to 30 dB. The encoder fixes all of it with data, not with a guess in the decoder: it finds the runs of
exact zeros in the input (those samples decode to exact zeros: real quiet sounds are never cut), then runs
the decoder on its own output and stores, per channel and per block of B samples at the original rate,
an integer gain code (0.5 dB steps) and DC code (2^-16 steps) that give each block the input's mean and
RMS. The decoder interpolates both linearly between block centres, so nothing steps at block borders.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..format.sections import LEVEL_MAX_BLOCK, LEVEL_MIN_BLOCK, level_blocks
from .stream import HALO_FRAMES

BLOCK_SECONDS = 0.2  # encoder's choice (the file stores B): about 130 bit/s per channel, level kept within 0.3 dB
MIN_SILENCE_SECONDS = 0.01  # shorter runs of zeros are left to the model (they cost more to list than to code)
GAIN_STEP = 40.0  # gain = 10 ** (code / 40): 0.5 dB per code
DC_SCALE = float(1 << 16)  # DC = code / 2^16
MAX_GAIN_CODE = 60  # encoder's choice: at most +30 dB (the model's output of very high pitches is faint)
MIN_GAIN_CODE = -128  # -64 dB (a near-silent channel the model fills with its own noise)
# latent frames kept around a silent stretch: the run time's chunk halo, which every audio decoder's reach stays
# under (tested for each profile; the Fourier decoder reaches 7 frames, the conv one about 3)
SILENT_FRAME_MARGIN = HALO_FRAMES


def block_length(rate: int) -> int:
    """Level block length B (samples at the original rate) the encoder uses."""
    return int(np.clip(round(rate * BLOCK_SECONDS), LEVEL_MIN_BLOCK, LEVEL_MAX_BLOCK))


def gains_of(codes: np.ndarray) -> np.ndarray:
    return np.power(10.0, codes.astype(np.float64) / GAIN_STEP)


class SilenceFinder:
    """Runs of exact zeros (at least min_run samples) per channel, found block by block as the input streams."""

    def __init__(self, channels: int, min_run: int):
        self.min_run = max(1, min_run)
        self.runs: list[list[tuple[int, int]]] = [[] for _ in range(channels)]
        self.open: list[int | None] = [None] * channels  # start of a run that reached the end of the last block
        self.pos = 0

    def push(self, block: np.ndarray) -> None:
        n = len(block)
        for ch in range(block.shape[1]):
            zero = np.concatenate([[False], block[:, ch] == 0, [False]])
            edges = np.diff(zero.astype(np.int8))
            local = list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))
            carried = self.open[ch]
            if carried is not None:
                if local and local[0][0] == 0:
                    local[0] = (carried - self.pos, local[0][1])
                else:
                    self._close(ch, carried, self.pos)
            self.open[ch] = None
            if local and local[-1][1] == n:
                self.open[ch] = local.pop()[0] + self.pos
            for start, end in local:
                self._close(ch, start + self.pos, end + self.pos)
        self.pos += n

    def _close(self, ch: int, start: int, end: int, at_end: bool = False) -> None:
        """Keep a run if long enough; a file of nothing but zeros decodes to zeros at any length."""
        if end - start >= self.min_run or (start == 0 and at_end):
            self.runs[ch].append((start, end - start))

    def finish(self) -> list[np.ndarray]:
        """Per channel an int64 (K, 2) array of (start, length)."""
        for ch, start in enumerate(self.open):
            if start is not None:
                self._close(ch, start, self.pos, at_end=True)
        return [np.array(r, np.int64).reshape(-1, 2) for r in self.runs]


def silence_mask(runs: np.ndarray, start: int, n: int) -> np.ndarray:
    """Boolean (n,): which of samples start..start+n-1 lie in a silent run."""
    mask = np.zeros(n, bool)
    if len(runs):
        first = max(0, int(np.searchsorted(runs[:, 0] + runs[:, 1], start, side="right")))
        for s, length in runs[first:].tolist():
            if s >= start + n:
                break
            mask[max(0, s - start) : min(n, s + length - start)] = True
    return mask


class BlockStats:
    """Per channel and level block: sample count, sum and sum of squares (float64)."""

    def __init__(self, channels: int, num_samples: int, block: int):
        self.block = block
        nb = level_blocks(num_samples, block)
        self.count = np.zeros((channels, nb))
        self.sum = np.zeros((channels, nb))
        self.sumsq = np.zeros((channels, nb))

    def add(self, samples: np.ndarray, start: int, runs: list[np.ndarray] | None = None) -> None:
        """(n, channels) samples from global index start; samples in silent runs are left out."""
        n = len(samples)
        if n == 0:
            return
        ids = (start + np.arange(n)) // self.block
        first = int(ids[0])
        ids -= first
        span = int(ids[-1]) + 1
        x = np.clip(samples.astype(np.float64), -1.0, 1.0)
        for ch in range(x.shape[1]):
            keep = np.ones(n) if runs is None else (~silence_mask(runs[ch], start, n)).astype(np.float64)
            self.count[ch, first : first + span] += np.bincount(ids, keep, span)
            self.sum[ch, first : first + span] += np.bincount(ids, x[:, ch] * keep, span)
            self.sumsq[ch, first : first + span] += np.bincount(ids, x[:, ch] ** 2 * keep, span)

    def leave_out(self, runs: list[np.ndarray]) -> None:
        """Subtract the silent samples from the counts (their values are 0: sums are unchanged)."""
        for ch, r in enumerate(runs):
            for s, length in r.tolist():
                e = s + length
                for b in range(s // self.block, (e - 1) // self.block + 1):
                    self.count[ch, b] -= min(e, (b + 1) * self.block) - max(s, b * self.block)


def level_codes(source: BlockStats, decoded: BlockStats) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per channel int8 gain codes and int16 DC codes that give each block the source's RMS and mean.

    Blocks with no non-silent sample take their neighbour's codes (they decode to zeros anyway)."""
    gains, dcs = [], []
    for ch in range(source.count.shape[0]):
        n = source.count[ch]
        valid = n > 0
        safe = np.maximum(n, 1)
        mx, my = source.sum[ch] / safe, decoded.sum[ch] / safe
        vx = np.maximum(source.sumsq[ch] / safe - mx**2, 0.0)
        vy = np.maximum(decoded.sumsq[ch] / safe - my**2, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            code = GAIN_STEP / 2 * (np.log10(vx) - np.log10(vy))
        code = np.where(vx <= 1e-30, MIN_GAIN_CODE, np.where(vy <= 1e-30, MAX_GAIN_CODE, code))
        g = np.clip(np.rint(np.nan_to_num(code)), MIN_GAIN_CODE, MAX_GAIN_CODE)
        d = np.clip(np.rint((mx - gains_of(g) * my) * DC_SCALE), -32768, 32767)
        gains.append(_fill(g, valid).astype(np.int8))
        dcs.append(_fill(d, valid).astype(np.int16))
    return gains, dcs


def _fill(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Copy each invalid entry from the nearest valid one before it (or after it, at the start)."""
    if not valid.any():
        return np.zeros_like(values)
    idx = np.where(valid, np.arange(len(values)), -1)
    idx = np.maximum.accumulate(idx)
    idx[idx < 0] = int(np.flatnonzero(valid)[0])
    return values[idx]


def silent_frames(runs: np.ndarray, num_samples: int, rate: int, model_rate: int, hop: int,
                  frames: int) -> np.ndarray:
    """Boolean (frames,): latent frames whose whole reach (± SILENT_FRAME_MARGIN frames) lies in a silent run.

    Their symbols can be anything (the decoder zeroes those samples): the encoder gives them the cheapest."""
    out = np.zeros(frames, bool)
    per_frame = hop * rate  # original samples per frame, times model_rate
    for s, length in runs.tolist():
        e = s + length
        lo = 0 if s == 0 else -(-s * model_rate // per_frame) + SILENT_FRAME_MARGIN
        hi = frames if e >= num_samples else (e * model_rate) // per_frame - SILENT_FRAME_MARGIN
        if hi > lo:
            out[lo:hi] = True
    return out


@dataclass
class Corrections:
    """What sections 8 and 9 hold, decoded: the level codes (or None) and the silent runs (or None)."""

    block: int = 0
    gains: list[np.ndarray] | None = None
    dcs: list[np.ndarray] | None = None
    silence: list[np.ndarray] | None = None


def apply(blocks: Iterator[np.ndarray], corrections: Corrections) -> Iterator[np.ndarray]:
    """Decoded (n, channels) blocks at the original rate -> corrected blocks (FORMAT.md, *Audio level*)."""
    pos = 0
    centres = gain_values = dc_values = None
    if corrections.gains is not None and corrections.dcs is not None:
        b = corrections.block
        centres = np.arange(len(corrections.gains[0])) * b + (b - 1) / 2
        gain_values = [gains_of(g) for g in corrections.gains]
        dc_values = [d.astype(np.float64) / DC_SCALE for d in corrections.dcs]
    for block in blocks:
        n = len(block)
        if centres is not None and gain_values is not None and dc_values is not None:
            b = corrections.block
            lo, hi = max(0, pos // b - 1), min(len(centres), (pos + n) // b + 2)
            t = np.arange(pos, pos + n, dtype=np.float64)
            out = np.empty_like(block)
            for ch in range(block.shape[1]):
                g = np.interp(t, centres[lo:hi], gain_values[ch][lo:hi])
                d = np.interp(t, centres[lo:hi], dc_values[ch][lo:hi])
                out[:, ch] = np.clip(g * block[:, ch] + d, -1.0, 1.0)
            block = out
        if corrections.silence is not None:
            for ch, runs in enumerate(corrections.silence):
                block[silence_mask(runs, pos, n), ch] = 0.0
        pos += n
        yield block
