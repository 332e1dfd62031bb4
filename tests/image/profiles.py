"""A small CMYK ICC profile made in code (no profile files in the repository): ICC v2, device class 'prtr',
CMYK -> Lab with one lut8 A2B0 tag over a 5-point grid. Its conversion is not Pillow's naive formula (ink
gains and a warm black), so a test can tell colour-managed conversion from the naive one."""
from __future__ import annotations

import struct

import numpy as np


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (0..1) -> CIE Lab (D50), as lut8 bytes: L·255/100, a + 128, b + 128."""
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4360747, 0.3850649, 0.1430804], [0.2225045, 0.7168786, 0.0606169],
                  [0.0139322, 0.0971045, 0.7141733]])  # sRGB -> XYZ (D50, Bradford)
    xyz = lin @ m.T / np.array([0.9642, 1.0, 0.8249])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    lab = np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)
    return np.clip(np.rint(np.stack([lab[..., 0] * 255 / 100, lab[..., 1] + 128, lab[..., 2] + 128], -1)), 0, 255)


def _text(tag_type: bytes, text: str) -> bytes:
    if tag_type == b"desc":
        body = text.encode() + b"\0"
        return b"desc\0\0\0\0" + struct.pack(">I", len(body)) + body + b"\0" * 12 + b"\0" * 67
    return b"text\0\0\0\0" + text.encode() + b"\0"


def cmyk_profile(grid: int = 5) -> bytes:
    """The profile's bytes."""
    steps = np.linspace(0, 1, grid)
    c, m, y, k = np.meshgrid(steps, steps, steps, steps, indexing="ij")
    ink = lambda v, gain: v ** gain  # noqa: E731  (dot gain)
    rgb = np.stack([(1 - ink(c, 0.8)) * (1 - ink(k, 0.9)) * 0.97, (1 - ink(m, 0.8)) * (1 - ink(k, 0.9)) * 0.95,
                    (1 - ink(y, 0.8)) * (1 - ink(k, 0.9)) * 0.90], -1)
    clut = _lab(rgb).astype(np.uint8).reshape(-1, 3)
    ramp = bytes(range(256))
    lut = (b"mft1\0\0\0\0" + bytes([4, 3, grid, 0]) + b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
           + ramp * 4 + clut.tobytes() + ramp * 3)
    tags = [(b"desc", _text(b"desc", "aecodec test CMYK")), (b"cprt", _text(b"text", "no copyright")),
            (b"wtpt", b"XYZ \0\0\0\0" + _s15(0.9642) + _s15(1.0) + _s15(0.8249)), (b"A2B0", lut)]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, payload in tags:
        payload += b"\0" * (-len(payload) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(payload))
        data += payload
    body = struct.pack(">I", len(tags)) + table + data
    size = 128 + len(body)
    header = (struct.pack(">I", size) + b"\0\0\0\0" + bytes([2, 0x10, 0, 0]) + b"prtr" + b"CMYK" + b"Lab "
              + bytes([0x07, 0xEA, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]) + b"acsp" + b"\0" * 4 + b"\0" * 4 + b"\0" * 8
              + b"\0" * 8 + struct.pack(">I", 0) + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + b"\0" * 4 + b"\0" * 16
              + b"\0" * 28)
    assert len(header) == 128
    return header + body


def tiff16(arr: np.ndarray) -> bytes:
    """An uncompressed 16-bit RGB(A) TIFF written by hand."""
    h, w, c = arr.shape
    data = arr.astype("<u2").tobytes()
    entries = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, c, 8), (259, 3, 1, 1), (262, 3, 1, 2), (273, 4, 1, 0),
               (277, 3, 1, c), (278, 3, 1, h), (279, 4, 1, len(data))] + ([(338, 3, 1, 2)] if c == 4 else [])
    ifd = 8 + 2 * c
    start = ifd + 2 + 12 * len(entries) + 4
    out = b"II*\0" + struct.pack("<I", ifd) + struct.pack("<" + "H" * c, *[16] * c) + struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        value = start if tag == 273 else value
        packed = struct.pack("<HH", value, 0) if kind == 3 and count == 1 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, kind, count) + packed
    return out + b"\0\0\0\0" + data
