import numpy as np
import pytest

from aecodec.coding import FactorizedCoding, FrequencyTables
from aecodec.errors import FormatError


def laplace_tables(num_tables: int) -> FrequencyTables:
    """Tables of a discretised Laplacian, wider for higher table numbers, last symbol = escape."""
    lmax = 2 * (8 * num_tables) + 2
    freqs = np.zeros((num_tables, lmax), np.uint16)
    lengths = np.zeros(num_tables, np.int32)
    offsets = np.zeros(num_tables, np.int32)
    for t in range(num_tables):
        half = 4 + 2 * t
        k = np.arange(-half, half + 1)
        p = np.exp(-np.abs(k) / (1 + t / 2))
        f = np.floor(p / p.sum() * (65536 - len(k) - 1)).astype(np.int64) + 1
        f = np.append(f, 1)
        f[half] += 65536 - f.sum()
        freqs[t, : len(f)] = f
        lengths[t] = len(f)
        offsets[t] = -half
    return FrequencyTables(freqs, lengths, offsets, 16)


def coding(num_q=3, channels=4) -> FactorizedCoding:
    gains = np.exp(np.linspace(0, 1, num_q))[:, None].repeat(channels, 1).astype(np.float32)
    return FactorizedCoding(gains, laplace_tables(num_q * channels))


def test_round_trip_with_escapes():
    c = coding()
    rng = np.random.default_rng(1)
    sym = rng.laplace(0, 3, size=(4, 5, 7)).round().astype(np.int32)
    sym[0, 0, 0] = 100_000  # far outside the table: escape path
    sym[3, 4, 6] = -70_000
    sym[1, 2, 3] = 2**31 - 1
    for q in (1, 2, 3):
        data = c.encode(sym, q)
        assert np.array_equal(c.decode(data, q, (5, 7)), sym)


def test_groups_of_any_tables_and_sizes():
    tables = laplace_tables(5)
    rng = np.random.default_rng(2)
    groups = [(3, rng.integers(-9, 9, 17)), (0, np.zeros(0, np.int64)), (3, rng.integers(-3, 3, 4)),
              (4, np.array([123456]))]
    data = tables.encode(groups)
    out = tables.decode(data, [(t, len(v)) for t, v in groups])
    assert all(np.array_equal(a, b) for a, (_, b) in zip(out, groups))


def test_deterministic_and_compact():
    c = coding()
    sym = np.zeros((4, 16, 16), np.int32)
    a, b = c.encode(sym, 2), c.encode(sym.copy(), 2)
    assert a == b
    # the range coder stays within a few words of the information content under the tables
    t = c.tables
    bits = sum(-np.log2(t.freqs[4 + ch, -t.offsets[4 + ch]] / 65536) * 256 for ch in range(4))
    assert bits / 8 <= len(a) <= bits / 8 * 1.01 + 8


def test_quantise_and_dequantise_use_the_quality_gain():
    c = coding()
    y = np.linspace(-3, 3, 4 * 6, dtype=np.float32).reshape(4, 6)
    sym = c.quantise(y, 3)
    assert np.array_equal(sym, np.rint(y * c.gains[2][:, None]).astype(np.int32))
    assert np.allclose(c.dequantise(sym, 3) * c.gains[2][:, None], sym)


def test_garbage_never_crashes():
    c = coding()
    rng = np.random.default_rng(0)
    for n in (0, 4, 8, 64):
        payload = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        try:
            out = c.decode(payload, 1, (3, 3))
            assert out.shape == (4, 3, 3)
        except FormatError:
            pass
    with pytest.raises(FormatError):
        c.decode(b"abc", 1, (2, 2))
    with pytest.raises(FormatError):
        c.decode(b"", 9, (2, 2))
