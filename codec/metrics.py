"""Quality and rate–distortion metrics shared by training, export checks and benchmarks.

numpy only at import time; `bd_rate` / `bd_psnr` need scipy (pchip) and `mel_distance` scipy.signal,
both imported when called, so the run time does not depend on scipy.
"""
from __future__ import annotations

import numpy as np


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB of two same-shaped arrays (8-bit samples by default); 100 dB when identical."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float(10 * np.log10(peak**2 / mse)) if mse > 0 else 100.0


def si_sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio in dB of two 1-D signals."""
    ref = np.asarray(reference, np.float64)
    est = np.asarray(estimate, np.float64)
    ref = ref - ref.mean()
    est = est - est.mean()
    target = (est @ ref) / max(float(ref @ ref), 1e-12) * ref
    noise = est - target
    return float(10 * np.log10(max(float(target @ target), 1e-12) / max(float(noise @ noise), 1e-12)))


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular mel filters on the HTK mel scale, shape (n_mels, n_fft // 2 + 1)."""
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(0), hz_to_mel(sample_rate / 2), n_mels + 2))
    bank = np.zeros((n_mels, len(freqs)))
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        rising = (freqs - lo) / max(mid - lo, 1e-9)
        falling = (hi - freqs) / max(hi - mid, 1e-9)
        bank[i] = np.clip(np.minimum(rising, falling), 0, None)
    return bank


def mel_distance(estimate: np.ndarray, reference: np.ndarray, sample_rate: int) -> float:
    """Mean L1 between log10 mel spectrograms at three resolutions (lower is better)."""
    from scipy.signal import stft

    total = 0.0
    for n_fft, n_mels in ((512, 64), (1024, 80), (2048, 128)):
        bank = mel_filterbank(sample_rate, n_fft, n_mels)
        specs = []
        for x in (estimate, reference):
            _, _, z = stft(x, fs=sample_rate, nperseg=n_fft, noverlap=n_fft - n_fft // 4, window="hann")
            specs.append(np.log10(np.maximum(bank @ np.abs(z), 1e-5)))
        total += float(np.mean(np.abs(specs[0] - specs[1])))
    return total / 3


def _sorted_strict(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, float), np.asarray(y, float)
    order = np.argsort(x)
    x, y = x[order], y[order]
    keep = np.concatenate([[True], np.diff(x) > 0])  # pchip needs strictly increasing x
    return x[keep], y[keep]


def _mean_difference(x_a, y_a, x_b, y_b) -> float:
    from scipy.interpolate import PchipInterpolator

    lo, hi = max(x_a.min(), x_b.min()), min(x_a.max(), x_b.max())
    if hi <= lo:
        raise ValueError("curves do not overlap")
    grid = np.linspace(lo, hi, 1001)
    fa, fb = PchipInterpolator(x_a, y_a)(grid), PchipInterpolator(x_b, y_b)(grid)
    return float(np.trapezoid(fb - fa, grid) / (hi - lo))


def bd_rate(rate_anchor, psnr_anchor, rate_test, psnr_test) -> float:
    """Bjøntegaard delta rate in percent of test vs anchor at equal PSNR (negative = fewer bits).

    The convention CompressAI publishes: ln(rate) interpolated over PSNR with a monotone pchip,
    integrated over the overlapping PSNR range.
    """
    pa, la = _sorted_strict(psnr_anchor, np.log(rate_anchor))
    pt, lt = _sorted_strict(psnr_test, np.log(rate_test))
    return float((np.exp(_mean_difference(pa, la, pt, lt)) - 1) * 100)


def rate_ratio_at(rate_anchor, psnr_anchor, rate_test, psnr_test, psnr_points) -> dict[float, float]:
    """test rate / anchor rate at equal PSNR, at each of `psnr_points` inside both curves (the same pchip of
    ln(rate) over PSNR as bd_rate): where along the curve a BD-rate figure is won or lost."""
    from scipy.interpolate import PchipInterpolator

    pa, la = _sorted_strict(psnr_anchor, np.log(rate_anchor))
    pt, lt = _sorted_strict(psnr_test, np.log(rate_test))
    lo, hi = max(pa.min(), pt.min()), min(pa.max(), pt.max())
    inside = [float(p) for p in psnr_points if lo <= p <= hi]
    fa, ft = PchipInterpolator(pa, la), PchipInterpolator(pt, lt)
    return {p: float(np.exp(ft(p) - fa(p))) for p in inside}


def bd_psnr(rate_anchor, psnr_anchor, rate_test, psnr_test) -> float:
    """Bjøntegaard delta PSNR in dB of test vs anchor at equal rate."""
    la, pa = _sorted_strict(np.log(rate_anchor), psnr_anchor)
    lt, pt = _sorted_strict(np.log(rate_test), psnr_test)
    return _mean_difference(la, pa, lt, pt)
