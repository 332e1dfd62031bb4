import numpy as np
import pytest

from aecodec.entropy import LatentCoder
from aecodec.errors import FormatError


def _coder(num_q=3, channels=4) -> LatentCoder:
    """Tables of a discretised Laplacian, width growing with quality, last symbol = escape."""
    lmax = 2 * (8 * num_q) + 2
    freqs = np.zeros((num_q, channels, lmax), np.uint16)
    lengths = np.zeros((num_q, channels), np.int32)
    offsets = np.zeros((num_q, channels), np.int32)
    for q in range(num_q):
        for c in range(channels):
            half = 4 * (q + 1) + c
            k = np.arange(-half, half + 1)
            p = np.exp(-np.abs(k) / (1 + q + c / 2))
            f = np.floor(p / p.sum() * (65536 - len(k) - 1)).astype(np.int64) + 1
            f = np.append(f, 1)
            f[half] += 65536 - f.sum()
            freqs[q, c, : len(f)] = f
            lengths[q, c] = len(f)
            offsets[q, c] = -half
    return LatentCoder(freqs, lengths, offsets, 16)


def test_round_trip_with_escapes():
    coder = _coder()
    rng = np.random.default_rng(1)
    sym = rng.laplace(0, 3, size=(4, 5, 7)).round().astype(np.int32)
    sym[0, 0, 0] = 100_000  # far outside the table: escape path
    sym[3, 4, 6] = -70_000
    sym[1, 2, 3] = 2**31 - 1
    for q in (1, 2, 3):
        data = coder.encode(sym, q)
        assert np.array_equal(coder.decode(data, q, 5, 7), sym)


def test_deterministic_and_compact():
    coder = _coder()
    sym = np.zeros((4, 16, 16), np.int32)
    a, b = coder.encode(sym, 2), coder.encode(sym.copy(), 2)
    assert a == b
    # the range coder stays within a few words of the information content under the tables
    bits = sum(-np.log2(coder.freqs[1, c, -coder.offsets[1, c]] / 65536) * 256 for c in range(4))
    assert bits / 8 <= len(a) <= bits / 8 * 1.01 + 8


def test_garbage_never_crashes():
    coder = _coder()
    rng = np.random.default_rng(0)
    for n in (0, 4, 8, 64):
        payload = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        try:
            out = coder.decode(payload, 1, 3, 3)
            assert out.shape == (4, 3, 3)
        except FormatError:
            pass
    with pytest.raises(FormatError):
        coder.decode(b"abc", 1, 2, 2)
