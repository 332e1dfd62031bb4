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
