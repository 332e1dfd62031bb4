import zlib

import pytest

from aecodec.errors import FormatError
from aecodec.format import sections


def test_inflate_refuses_bombs():
    with pytest.raises(FormatError):
        sections.inflate(zlib.compress(b"\0" * 10_000), 100, "alpha")


def test_icc_and_streams_round_trip():
    icc = bytes(range(256)) * 3
    assert sections.unpack_icc(sections.pack_icc(icc), 1 << 20) == icc
    with pytest.raises(FormatError, match="too large"):
        sections.unpack_icc(sections.pack_icc(icc), 100)
    streams = [b"", b"abc", bytes(1000)]
    packed = sections.pack_streams(streams)
    assert sections.unpack_streams(packed, 3, "x") == streams
    for bad in (packed[:-1], packed + b"!"):
        with pytest.raises(FormatError):
            sections.unpack_streams(bad, 3, "x")


def test_lossless_framing():
    assert sections.unpack_lossless(sections.pack_lossless(sections.LOSSLESS_WEBP, b"RIFF")) == (2, b"RIFF")
    for bad in (b"", b"\x02", b"\x00abc", b"\x07abc"):
        with pytest.raises(FormatError):
            sections.unpack_lossless(bad)


def test_level_section_round_trip_and_layout():
    import numpy as np

    gains = [np.array([0, 3, 3, -128, 127, 5], np.int8), np.array([-1] * 6, np.int8)]
    dcs = [np.array([0, -32768, 32767, 1, 1, 1], np.int16), np.zeros(6, np.int16)]
    payload = sections.pack_level(100, gains, dcs)
    assert payload[:4] == (100).to_bytes(4, "little")
    block, g, d = sections.unpack_level(payload, 2, 600)
    assert block == 100 and all(np.array_equal(a, b) for a, b in zip(g + d, gains + dcs))
    first = zlib.decompress(sections.unpack_streams(payload[4:], 2, "x")[0])  # differences, wrapping
    assert list(np.frombuffer(first[:6], np.int8)) == [0, 3, 0, 125, -1, -122]
    for bad in (payload[:3], payload[:-1], (10).to_bytes(4, "little") + payload[4:]):
        with pytest.raises(FormatError):
            sections.unpack_level(bad, 2, 600)
    with pytest.raises(FormatError):
        sections.unpack_level(payload, 2, 601)  # 7 blocks expected, 6 coded


def test_silence_section_round_trip_and_validation():
    import numpy as np

    runs = [np.array([[0, 10], [50, 5]]), np.zeros((0, 2), np.int64)]
    out = sections.unpack_silence(sections.pack_silence(runs), 2, 100)
    assert all(np.array_equal(a, b) for a, b in zip(out, runs))
    for bad in ([[0, 10], [5, 10]], [[0, 0]], [[95, 10]], [[50, 5], [0, 10]], [[2**63, 1]]):
        with pytest.raises(FormatError):
            sections.unpack_silence(sections.pack_silence([np.array(bad, np.uint64).astype(np.int64), runs[1]]), 2, 100)
