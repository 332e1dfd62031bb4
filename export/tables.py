"""Integer CDF tables from the trained factorized density, one set per quality level.

Quality q in 1..100 maps to a fractional position between the trained rate points; its
gain vector is the log-linear interpolation of the neighbouring trained gains. For each
(quality, channel) the probability of every integer symbol k is c((k+½)/g) − c((k−½)/g),
quantised to integer frequencies summing to 2**precision (each ≥ 1), plus one escape
symbol for values outside the table. Computed once here in float64; the run time only
ever reads the integers.
"""
from __future__ import annotations

import numpy as np
import torch

from aecodec.train.model import FactorizedCodecModel

NUM_QUALITIES = 100
PRECISION = 16
TAIL_MASS = 1e-7
MAX_ALPHABET = 2048


def quality_gains(log_gains: np.ndarray, num_qualities: int = NUM_QUALITIES, low: float = 0.0,
                  high: float | None = None) -> np.ndarray:
    """(K, C) trained log-gains -> (Q, C) float32 gains.

    Quality 1 sits at position `low` on the ladder of trained rate points (0 = the lowest trained
    point; negative values extrapolate the first segment to coarser quantisation, for lower rates
    than any trained point), the top quality at `high` (default K - 1, the highest trained point;
    larger values extrapolate the last segment to finer quantisation); linear in between.
    """
    k = log_gains.shape[0]
    pos = np.linspace(low, k - 1 if high is None else high, num_qualities)
    i = np.clip(np.floor(pos).astype(int), 0, k - 2)
    a = (pos - i)[:, None]
    return np.exp((1 - a) * log_gains[i] + a * log_gains[i + 1]).astype(np.float32)


@torch.no_grad()
def _tail_bounds(density, channels: int, mass: float) -> tuple[np.ndarray, np.ndarray]:
    """Per channel y_lo, y_hi with c(y_lo) = mass and c(y_hi) = 1 - mass (bisection on the monotone CDF)."""
    target = float(np.log(mass / (1 - mass)))
    out = []
    for sign in (1.0, -1.0):  # lower tail: logit(c(y)) = target; upper: logit = -target
        lo = torch.full((channels, 1, 1), -1e4, dtype=torch.float64)
        hi = torch.full((channels, 1, 1), 1e4, dtype=torch.float64)
        goal = target * sign
        for _ in range(80):
            mid = (lo + hi) / 2
            above = density.logits_cdf(mid) > goal
            hi = torch.where(above, mid, hi)
            lo = torch.where(above, lo, mid)
        out.append(((lo + hi) / 2).reshape(-1).numpy())
    return out[0], out[1]


def quantize_pmf(p: np.ndarray, precision: int = PRECISION) -> np.ndarray:
    """Float probabilities (any non-negative, last = escape) -> uint32 frequencies ≥ 1 summing to 2**precision."""
    total = 1 << precision
    n = len(p)
    if n > total // 2:
        raise ValueError("alphabet too large for the precision")
    p = np.maximum(p, 0) / max(p.sum(), 1e-300)
    scaled = p * (total - n)
    f = np.floor(scaled).astype(np.int64) + 1
    remainder = total - int(f.sum())
    order = np.argsort(-(scaled - np.floor(scaled)), kind="stable")
    f[order[:remainder]] += 1
    assert f.sum() == total and f.min() >= 1
    return f.astype(np.uint32)


@torch.no_grad()
def build_tables(model: FactorizedCodecModel, num_qualities: int = NUM_QUALITIES,
                 low: float = 0.0, high: float | None = None) -> dict[str, np.ndarray]:
    density = model.density.double().eval()
    log_gains = model.log_gains.detach().double().numpy()
    channels = log_gains.shape[1]
    gains = quality_gains(log_gains, num_qualities, low, high)
    y_lo, y_hi = _tail_bounds(density, channels, TAIL_MASS)
    per_q = []
    lmax = 2
    for q in range(num_qualities):
        g = gains[q].astype(np.float64)
        kmin = np.floor(y_lo * g).astype(np.int64)
        kmax = np.ceil(y_hi * g).astype(np.int64)
        centre = np.round((kmin + kmax) / 2).astype(np.int64)
        half = (MAX_ALPHABET - 2) // 2
        kmin = np.maximum(kmin, centre - half)
        kmax = np.minimum(kmax, centre + half)
        width = int((kmax - kmin).max()) + 1
        ks = torch.from_numpy(kmin[:, None] + np.arange(width)[None, :]).double()  # (C, width)
        gt = torch.from_numpy(g)[:, None]
        probs = density.bin_probability(((ks - 0.5) / gt)[:, None, :], ((ks + 0.5) / gt)[:, None, :])
        probs = probs[:, 0, :].numpy()
        rows = []
        for c in range(channels):
            p = probs[c, : kmax[c] - kmin[c] + 1]
            escape = max(0.0, 1.0 - float(p.sum()))
            freqs = quantize_pmf(np.append(p, escape))
            rows.append((int(kmin[c]), freqs))
            lmax = max(lmax, len(freqs))
        per_q.append(rows)
    freqs = np.zeros((num_qualities, channels, lmax), dtype=np.uint16)
    lengths = np.zeros((num_qualities, channels), dtype=np.int32)
    offsets = np.zeros((num_qualities, channels), dtype=np.int32)
    for q, rows in enumerate(per_q):
        for c, (offset, f) in enumerate(rows):
            freqs[q, c, : len(f)] = f
            lengths[q, c] = len(f)
            offsets[q, c] = offset
    # uint16 suffices: every alphabet has >= 2 symbols of frequency >= 1, so none exceeds 2**16 - 1
    return {"gains": gains, "freqs": freqs, "lengths": lengths, "offsets": offsets,
            "precision": np.array(PRECISION, dtype=np.int32)}
