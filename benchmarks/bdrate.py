"""Bjøntegaard delta rate / PSNR with piecewise-cubic (pchip) interpolation.

Convention (as CompressAI publishes): interpolate ln(rate) over PSNR (BD-rate) or PSNR over
ln(rate) (BD-PSNR) with a monotone pchip, integrate over the overlapping range, and report
the mean difference. Negative BD-rate = fewer bits than the anchor for the same quality.
"""
from __future__ import annotations

import numpy as np
from scipy.interpolate import PchipInterpolator


def _sorted(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    order = np.argsort(x)
    x, y = x[order], y[order]
    keep = np.concatenate([[True], np.diff(x) > 0])  # pchip needs strictly increasing x
    return x[keep], y[keep]


def _mean_over(x_a, y_a, x_b, y_b) -> tuple[float, float, float]:
    lo, hi = max(x_a.min(), x_b.min()), min(x_a.max(), x_b.max())
    if hi <= lo:
        raise ValueError("curves do not overlap")
    grid = np.linspace(lo, hi, 1001)
    fa, fb = PchipInterpolator(x_a, y_a)(grid), PchipInterpolator(x_b, y_b)(grid)
    return float(np.trapezoid(fb - fa, grid) / (hi - lo)), lo, hi


def bd_rate(rate_anchor, psnr_anchor, rate_test, psnr_test) -> float:
    """Percent rate change of test vs anchor at equal PSNR."""
    pa, la = _sorted(psnr_anchor, np.log(rate_anchor))
    pt, lt = _sorted(psnr_test, np.log(rate_test))
    diff, _, _ = _mean_over(pa, la, pt, lt)
    return float((np.exp(diff) - 1) * 100)


def bd_psnr(rate_anchor, psnr_anchor, rate_test, psnr_test) -> float:
    """dB PSNR change of test vs anchor at equal rate."""
    la, pa = _sorted(np.log(rate_anchor), psnr_anchor)
    lt, pt = _sorted(np.log(rate_test), psnr_test)
    diff, _, _ = _mean_over(la, pa, lt, pt)
    return diff
