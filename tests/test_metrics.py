"""BD-rate and the rate ratio along the curve: the figures every RD comparison in the benchmarks rests on."""
import numpy as np
import pytest

from aecodec.metrics import bd_psnr, bd_rate, rate_ratio_at

pytest.importorskip("scipy")

RATE = np.array([0.1, 0.2, 0.4, 0.8, 1.6])
PSNR = np.array([26.0, 29.0, 32.0, 35.0, 38.0])


def test_a_curve_needing_20_percent_more_bits_everywhere():
    assert bd_rate(RATE, PSNR, 1.2 * RATE, PSNR) == pytest.approx(20.0, abs=1e-6)
    assert bd_psnr(RATE, PSNR, 1.2 * RATE, PSNR) < 0
    ratios = rate_ratio_at(RATE, PSNR, 1.2 * RATE, PSNR, range(20, 45))
    assert sorted(ratios) == list(range(26, 39))  # only where both curves reach
    assert all(r == pytest.approx(1.2) for r in ratios.values())


def test_the_ratio_shows_where_the_gap_is():
    test_rate = RATE * np.array([1.6, 1.3, 1.0, 1.0, 1.0])  # loses at low rates only
    ratios = rate_ratio_at(RATE, PSNR, test_rate, PSNR, [26, 29, 32, 35, 38])
    assert ratios[26] == pytest.approx(1.6) and ratios[29] == pytest.approx(1.3)
    assert ratios[35] == pytest.approx(1.0) and ratios[38] == pytest.approx(1.0)
    assert bd_rate(RATE, PSNR, test_rate, PSNR) > 0
