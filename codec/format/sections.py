"""Framing inside sections: what the bytes of the alpha, ICC, lossless, audio latent, audio level and audio
silence sections look like.

Like container.py, this knows bytes only. Entropy-coded streams and the lossless image codings are opaque
here (coding/ and image/lossless.py make them).
"""
from __future__ import annotations

import struct
import zlib

import numpy as np

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


# --- lossless image (section 7) ---------------------------------------------------------------------------

LOSSLESS_DEFLATE = 1  # the raw samples of the header's mode, row-major, interleaved, zlib
LOSSLESS_WEBP = 2  # a lossless WebP file (RIFF, one VP8L chunk)
LOSSLESS_KINDS = {LOSSLESS_DEFLATE: "deflate", LOSSLESS_WEBP: "webp"}


def pack_lossless(kind: int, payload: bytes) -> bytes:
    """Lossless section: one byte naming the coding, then its bytes."""
    if kind not in LOSSLESS_KINDS:
        raise ValueError(f"unknown lossless coding {kind}")
    return bytes([kind]) + payload


def unpack_lossless(payload: bytes) -> tuple[int, bytes]:
    if len(payload) < 2 or payload[0] not in LOSSLESS_KINDS:
        raise FormatError("corrupt lossless section (unknown coding)")
    return payload[0], payload[1:]


# --- audio level (section 8) and silence (section 9) ------------------------------------------------------

LEVEL_MIN_BLOCK = 64
LEVEL_MAX_BLOCK = 1 << 24
_RUN = struct.Struct("<QQ")


def level_blocks(num_samples: int, block: int) -> int:
    return -(-num_samples // block)


def pack_level(block: int, gains: list[np.ndarray], dcs: list[np.ndarray]) -> bytes:
    """Level section: u32 block length B, then per channel a length-prefixed zlib stream of the block codes:
    the int8 gain codes, then the int16 DC codes, each stored as the difference from the previous block's
    code (wrapping; the first block's difference is from 0). Differences keep steady levels cheap."""
    if not LEVEL_MIN_BLOCK <= block <= LEVEL_MAX_BLOCK:
        raise ValueError(f"level block length {block} out of range")
    streams = []
    for g, d in zip(gains, dcs):
        dg = np.diff(g.astype(np.int8), prepend=np.int8(0)).astype(np.int8)  # wraps modulo 256
        dd = np.diff(d.astype(np.int16), prepend=np.int16(0)).astype("<i2")  # wraps modulo 65536
        streams.append(deflate(dg.tobytes() + dd.tobytes()))
    return _LENGTH.pack(block) + pack_streams(streams)


def unpack_level(payload: bytes, channels: int, num_samples: int) -> tuple[int, list[np.ndarray], list[np.ndarray]]:
    """-> (block length, per-channel int8 gain codes, per-channel int16 DC codes)."""
    if len(payload) < _LENGTH.size:
        raise FormatError("corrupt audio level section (truncated)")
    (block,) = _LENGTH.unpack_from(payload)
    if not LEVEL_MIN_BLOCK <= block <= LEVEL_MAX_BLOCK:
        raise FormatError(f"corrupt audio level section (block length {block})")
    n = level_blocks(num_samples, block)
    gains, dcs = [], []
    for stream in unpack_streams(payload[_LENGTH.size :], channels, "audio level"):
        raw = inflate(stream, 3 * n, "audio level")
        with np.errstate(over="ignore"):
            gains.append(np.cumsum(np.frombuffer(raw[:n], np.int8), dtype=np.int8))
            dcs.append(np.cumsum(np.frombuffer(raw[n:], "<i2"), dtype=np.int16))
    return block, gains, dcs


def pack_silence(runs: list[np.ndarray]) -> bytes:
    """Silence section: per channel a length-prefixed stream: u32 run count K, then K runs (u64 start, u64
    length) zlib-compressed, in increasing order, disjoint, non-empty. Those samples decode to exact zeros."""
    streams = []
    for r in runs:
        r = np.asarray(r, np.int64).reshape(-1, 2)
        streams.append(_LENGTH.pack(len(r)) + deflate(r.astype("<u8").tobytes()))
    return pack_streams(streams)


def unpack_silence(payload: bytes, channels: int, num_samples: int) -> list[np.ndarray]:
    """-> per channel an int64 (K, 2) array of (start, length), validated against the length of the audio."""
    out = []
    for stream in unpack_streams(payload, channels, "audio silence"):
        if len(stream) < _LENGTH.size:
            raise FormatError("corrupt audio silence section (truncated)")
        (k,) = _LENGTH.unpack_from(stream)
        if k > num_samples:
            raise FormatError("corrupt audio silence section (too many runs)")
        raw = inflate(stream[_LENGTH.size :], k * _RUN.size, "audio silence")
        runs = np.frombuffer(raw, "<u8").reshape(k, 2)
        if k and (runs.max() > num_samples or np.any(runs[:, 1] == 0)
                  or np.any(runs[:-1, 0] + runs[:-1, 1] > runs[1:, 0]) or runs[-1, 0] + runs[-1, 1] > num_samples):
            raise FormatError("corrupt audio silence section (runs out of order or out of range)")
        out.append(runs.astype(np.int64))
    return out


def pack_bandwidth(cutoffs: list[int]) -> bytes:
    """Bandwidth section: per channel a u32 cutoff in Hz of the decoder's low-pass (0: that channel unfiltered)."""
    return b"".join(_LENGTH.pack(int(c)) for c in cutoffs)


def unpack_bandwidth(payload: bytes, channels: int, sample_rate: int) -> list[int]:
    """-> per channel the cutoff in Hz (0 = none), each below half the sample rate."""
    if len(payload) != channels * _LENGTH.size:
        raise FormatError(f"corrupt audio bandwidth section ({len(payload)} bytes for {channels} channels)")
    cutoffs = [c for (c,) in _LENGTH.iter_unpack(payload)]
    for c in cutoffs:
        if c and not 2 * c < sample_rate:
            raise FormatError(f"corrupt audio bandwidth section (cutoff {c} Hz at {sample_rate} Hz)")
    return cutoffs
