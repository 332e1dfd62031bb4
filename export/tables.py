"""Everything in a bundle's tables.npz: gains per quality, integer CDF tables, the integer h_s.

Quality q in 1..100 maps to a fractional position on the ladder of trained rate points; its gain
vector is the log-linear interpolation of the neighbouring trained gains. Entropy tables are
probabilities of integer symbols quantised to integer frequencies summing to 2**PRECISION (each
≥ 1), one row per (context, channel), the last symbol of each row an escape for values outside
the table and the row's offset the value of symbol 0. They are computed once here in float64;
the run time only ever reads the integers.

- factorized models (image, audio): "freqs" (Q, C, L) per quality and channel, from the learned
  density at the quality's gain: P(k) = c((k+½)/g) − c((k−½)/g).
- hyperprior image model: "z_*" (Hc, L) from the hyper density with unit bins (ẑ has no gain);
  "y_*" (SCALE_LEVELS, L) zero-mean discretized Gaussians, one per scale of the scale table;
  "hs_kernel_i" / "hs_bias_i" / "hs_exponent_i" the integer hyper-synthesis layers, and for a
  checkerboard-context model "cx_kernel_i" / "cx_bias_i" / "cx_exponent_i" its integer context network.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from aecodec.train.audio_model import AudioCodecModel
from aecodec.train.checkpoint_io import AnyModel
from aecodec.train.entropy_models import (
    SCALE_LEVELS,
    SCALE_MAX,
    SCALE_MIN,
    FactorizedDensity,
    gaussian_bin_mass,
)
from aecodec.train.factorized import FactorizedCodecModel
from aecodec.train.hyperprior import HyperpriorCodecModel

NUM_QUALITIES = 100
PRECISION = 16
TAIL_MASS = 1e-7  # probability mass left outside a table row (coded through the escape symbol)
MAX_ALPHABET = 2048  # symbols per row, escape included
GAUSSIAN_MAX_BOUND = (MAX_ALPHABET - 2) // 2  # 1023: rows cover k in [-K, K], K ≤ this


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
def tail_bounds(density: FactorizedDensity, channels: int, mass: float) -> tuple[np.ndarray, np.ndarray]:
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


def pack_rows(rows: list[list[tuple[int, np.ndarray]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[context][channel] -> (offset, frequencies) rows packed as (freqs uint16 (X, C, L), lengths, offsets)."""
    lmax = max(2, max(len(f) for row in rows for _, f in row))
    freqs = np.zeros((len(rows), len(rows[0]), lmax), dtype=np.uint16)
    lengths = np.zeros((len(rows), len(rows[0])), dtype=np.int32)
    offsets = np.zeros((len(rows), len(rows[0])), dtype=np.int32)
    for q, row in enumerate(rows):
        for c, (offset, f) in enumerate(row):
            # uint16 suffices: every alphabet has >= 2 symbols of frequency >= 1, so none exceeds 2**16 - 1
            freqs[q, c, : len(f)] = f
            lengths[q, c] = len(f)
            offsets[q, c] = offset
    return freqs, lengths, offsets


@torch.no_grad()
def density_rows(density: FactorizedDensity, y_lo: np.ndarray, y_hi: np.ndarray,
                 gain: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Per channel (offset, frequencies) of round(y·g) under the density of y: bins of width 1/g.

    The row spans the tail bounds scaled by the gain, at most MAX_ALPHABET symbols (escape included)
    centred on the bulk of the mass.
    """
    g = gain.astype(np.float64)
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
    probs_np = probs[:, 0, :].numpy()
    rows = []
    for c in range(len(g)):
        p = probs_np[c, : kmax[c] - kmin[c] + 1]
        escape = max(0.0, 1.0 - float(p.sum()))
        rows.append((int(kmin[c]), quantize_pmf(np.append(p, escape))))
    return rows


def factorized_tables(density: FactorizedDensity, log_gains: np.ndarray, num_qualities: int = NUM_QUALITIES,
                      low: float = 0.0, high: float | None = None) -> dict[str, np.ndarray]:
    """Gains and per-(quality, channel) tables of a factorized model (image or audio)."""
    channels = log_gains.shape[1]
    gains = quality_gains(log_gains, num_qualities, low, high)
    density.double()  # evaluated in float64 (in place; restored below, losslessly)
    try:
        y_lo, y_hi = tail_bounds(density, channels, TAIL_MASS)
        rows = [density_rows(density, y_lo, y_hi, gains[q]) for q in range(num_qualities)]
    finally:
        density.float()
    freqs, lengths, offsets = pack_rows(rows)
    return {"gains": gains, "freqs": freqs, "lengths": lengths, "offsets": offsets,
            "precision": np.array(PRECISION, dtype=np.int32)}


def gaussian_tail_factor(mass: float = TAIL_MASS) -> float:
    """T with 2·Φ(−T) = erfc(T/√2) ≤ mass: a row over |k| ≤ σ·T leaves less than `mass` outside."""
    lo, hi = 0.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if math.erfc(mid / math.sqrt(2.0)) > mass:
            lo = mid
        else:
            hi = mid
    return hi


def scale_table_float64() -> np.ndarray:
    """σ_i = exp(linspace(ln SCALE_MIN, ln SCALE_MAX, SCALE_LEVELS)) in float64."""
    return np.exp(np.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), SCALE_LEVELS))


@torch.no_grad()
def gaussian_tables() -> dict[str, np.ndarray]:
    """One row per scale index i: P(k) = Φ((k+½)/σ_i) − Φ((k−½)/σ_i) for |k| ≤ K_i, then the escape.

    K_i = min(ceil(σ_i·T), GAUSSIAN_MAX_BOUND) with T from `gaussian_tail_factor`; the residual
    coded is round(v − mean), so every row is centred on 0 (offset −K_i).
    """
    t = gaussian_tail_factor(TAIL_MASS)
    rows = []
    for sigma in scale_table_float64():
        k_max = min(math.ceil(sigma * t), GAUSSIAN_MAX_BOUND)
        ks = torch.arange(-k_max, k_max + 1, dtype=torch.float64)
        p = gaussian_bin_mass(ks, torch.tensor(sigma, dtype=torch.float64)).numpy()
        escape = max(0.0, 1.0 - float(p.sum()))
        rows.append((-k_max, quantize_pmf(np.append(p, escape))))
    freqs, lengths, offsets = pack_rows([rows])
    return {"y_freqs": freqs[0], "y_lengths": lengths[0], "y_offsets": offsets[0]}


@torch.no_grad()
def integer_layer_tables(layers, prefix: str) -> dict[str, np.ndarray]:
    """Integer layers exactly as `IntegerConv.integer_parameters()` gives them: {prefix}_kernel_i (int8),
    {prefix}_bias_i and {prefix}_exponent_i (int64); the run time adds h_s's mean shift itself."""
    out = {}
    for i, layer in enumerate(layers):
        p = layer.integer_parameters()
        out[f"{prefix}_kernel_{i}"] = p["kernel"].numpy().astype(np.int8)
        out[f"{prefix}_bias_{i}"] = p["bias"].numpy().astype(np.int64)
        out[f"{prefix}_exponent_{i}"] = p["exponent"].numpy().astype(np.int64)
    return out


def hyperprior_tables(model: HyperpriorCodecModel, num_qualities: int = NUM_QUALITIES, low: float = 0.0,
                      high: float | None = None) -> dict[str, np.ndarray]:
    """Gains per quality, z tables (hyper density, unit bins), y Gaussian tables, integer h_s."""
    density = model.hyper_density
    channels = model.config.hyper
    density.double()
    try:
        z_lo, z_hi = tail_bounds(density, channels, TAIL_MASS)
        z_rows = density_rows(density, z_lo, z_hi, np.ones(channels))
    finally:
        density.float()
    z_freqs, z_lengths, z_offsets = pack_rows([z_rows])
    log_gains = model.log_gains.detach().double().numpy()
    return {"gains": quality_gains(log_gains, num_qualities, low, high),
            "precision": np.array(PRECISION, dtype=np.int32),
            "z_freqs": z_freqs[0], "z_lengths": z_lengths[0], "z_offsets": z_offsets[0],
            **gaussian_tables(), **integer_layer_tables(model.hyper_synthesis.layers, "hs"),
            **(integer_layer_tables(model.hyper_context.layers, "cx") if model.hyper_context is not None else {})}


@torch.no_grad()
def build_tables(model: AnyModel, num_qualities: int = NUM_QUALITIES, low: float = 0.0,
                 high: float | None = None) -> dict[str, np.ndarray]:
    """tables.npz of any model family."""
    if isinstance(model, HyperpriorCodecModel):
        return hyperprior_tables(model, num_qualities, low, high)
    assert isinstance(model, (FactorizedCodecModel, AudioCodecModel))
    return factorized_tables(model.density, model.log_gains.detach().double().numpy(), num_qualities, low, high)
