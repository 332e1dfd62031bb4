"""Framing inside sections: what the bytes of the alpha, ICC and audio latent sections look like.

Like container.py, this knows bytes only. Entropy-coded streams are opaque here (coding/ makes them).
"""
from __future__ import annotations

import struct
import zlib

from ..errors import FormatError

_LENGTH = struct.Struct("<I")


def deflate(payload: bytes) -> bytes:
    return zlib.compress(payload, 9)


def inflate(payload: bytes, expected_size: int, what: str) -> bytes:
    """zlib-inflate at most expected_size bytes; refuse anything else (no decompression bombs)."""
    try:
        d = zlib.decompressobj()
        out = d.decompress(payload, expected_size + 1)
    except zlib.error as e:
        raise FormatError(f"corrupt {what} section ({e})") from None
    if expected_size >= 0 and len(out) != expected_size:
        raise FormatError(f"corrupt {what} section (size {len(out)}, expected {expected_size})")
    return out


def pack_alpha(alpha: bytes) -> bytes:
    """Alpha section: the H×W alpha plane, row-major, deflated."""
    return deflate(alpha)


def unpack_alpha(payload: bytes, width: int, height: int) -> bytes:
    return inflate(payload, width * height, "alpha")


def pack_icc(profile: bytes) -> bytes:
    """ICC section: uint32 length of the profile, then the deflated profile."""
    return _LENGTH.pack(len(profile)) + deflate(profile)


def unpack_icc(payload: bytes, max_bytes: int) -> bytes:
    if len(payload) < _LENGTH.size:
        raise FormatError("corrupt icc section")
    (n,) = _LENGTH.unpack_from(payload)
    if n > max_bytes:
        raise FormatError("corrupt icc section (too large)")
    return inflate(payload[_LENGTH.size :], n, "icc")


def pack_streams(streams: list[bytes]) -> bytes:
    """Several byte streams in one section: each as uint32 length + bytes (audio: one per channel)."""
    return b"".join(_LENGTH.pack(len(s)) + s for s in streams)


def unpack_streams(payload: bytes, count: int, what: str) -> list[bytes]:
    """Exactly `count` length-prefixed streams filling the whole payload."""
    pos, streams = 0, []
    for _ in range(count):
        if pos + _LENGTH.size > len(payload):
            raise FormatError(f"corrupt {what} section (truncated)")
        (n,) = _LENGTH.unpack_from(payload, pos)
        if pos + _LENGTH.size + n > len(payload):
            raise FormatError(f"corrupt {what} section (truncated)")
        streams.append(payload[pos + _LENGTH.size : pos + _LENGTH.size + n])
        pos += _LENGTH.size + n
    if pos != len(payload):
        raise FormatError(f"corrupt {what} section (trailing bytes)")
    return streams
