"""Lossless coding of whole images (format section 7), for what the learned model should not code.

The model was trained on photos: tiny images pay its padding and fixed costs, and graphics with few
colours (icons, scans, charts, screenshots) come back blurred at more bits than an exact copy costs.
Such images are coded exactly with a well-kept lossless coder that is already a dependency: WebP
lossless (libwebp through Pillow) or, for tiny images where its container costs too much, zlib over
the raw samples. codec.py decides when (`is_candidate`, `quality_floor`); this module only codes.
"""
from __future__ import annotations

import io
import zlib

import numpy as np
from PIL import Image

from ..errors import FormatError
from ..format import sections
from ..format.sections import LOSSLESS_DEFLATE, LOSSLESS_WEBP

WEBP_MAX_SIDE = 16383  # libwebp's limit per side
WEBP_MAX_PIXELS = 89_478_485  # Pillow's decompression-bomb warning threshold: larger ones use zlib
TINY_PIXELS = 64 * 64  # at most this many pixels: always compare with an exact copy
DEFLATE_MAX_PIXELS = 256 * 256  # zlib over raw samples is tried up to here (and where WebP cannot be used)
FEW_COLOURS = 256  # graphics: palette-sized colour counts
FLAT_FRACTION = 0.5  # graphics: at least this share of pixels equal their left neighbour (photos: ~0)
CHANNELS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}


def is_candidate(arr: np.ndarray) -> bool:
    """Whether an exact copy may beat the learned codec: tiny, few colours, or mostly flat (graphics).

    Cheap on photos (the colour count stops at 257 colours, flatness looks at every 8th row), so coding a
    photo costs no extra time and gives the same bytes as before."""
    h, w = arr.shape[:2]
    if h * w <= TINY_PIXELS:
        return True
    rows = arr[:: max(1, h // 256)] if h > 256 else arr
    if w > 1 and float(np.mean(np.all(rows[:, 1:] == rows[:, :-1], axis=2))) >= FLAT_FRACTION:
        return True
    image = Image.fromarray(np.ascontiguousarray(arr[:, :, 0] if arr.shape[2] == 1 else arr))
    return image.getcolors(FEW_COLOURS) is not None


def quality_floor(quality: int) -> float:
    """PSNR (dB) below which the learned result is not worth its bytes: 12 dB at quality 1 to 24 dB at 100.

    Photos never come near it (Kodak crops of 6..96 px: ≥ 18 dB at quality 1, ≥ 25 dB at 75); graphics
    the model was not trained for do (9 dB for palette icons)."""
    return 12.0 + 12.0 * (quality - 1) / 99.0


def encode(arr: np.ndarray, mode: str) -> bytes:
    """H×W×C uint8 pixels of `mode` -> the lossless section payload: the smaller of zlib and WebP lossless.

    zlib is tried on small images only (where WebP's container costs more than its prediction saves) and
    where WebP cannot be used: on big ones it loses and costs seconds."""
    h, w = arr.shape[:2]
    arr = np.ascontiguousarray(arr)
    candidates = []
    if max(h, w) <= WEBP_MAX_SIDE and h * w <= WEBP_MAX_PIXELS:
        webp = _webp(arr, mode)
        if webp is not None:
            candidates.append(sections.pack_lossless(LOSSLESS_WEBP, webp))
    if not candidates or h * w <= DEFLATE_MAX_PIXELS:
        candidates.append(sections.pack_lossless(LOSSLESS_DEFLATE, zlib.compress(arr.tobytes(), 9)))
    return min(candidates, key=len)


def _webp(arr: np.ndarray, mode: str) -> bytes | None:
    """WebP lossless of the pixels (grey as three equal channels), checked by decoding it again."""
    colour = np.repeat(arr[:, :, :1], 3, axis=2) if mode in ("L", "LA") else arr[:, :, :3]
    planes = np.concatenate([colour, arr[:, :, -1:]], axis=2) if mode in ("LA", "RGBA") else colour
    image = Image.fromarray(np.ascontiguousarray(planes))
    buf = io.BytesIO()
    try:  # method 4 / quality 75: within a few % of libwebp's slowest setting at 1/100 of its time
        image.save(buf, "WEBP", lossless=True, quality=75, method=4, exact=True)
        data = buf.getvalue()
        if np.array_equal(decode(bytes([LOSSLESS_WEBP]) + data, w=arr.shape[1], h=arr.shape[0], mode=mode), arr):
            return data
    except (OSError, ValueError, FormatError):
        pass
    return None  # libwebp missing or not exact: zlib it is


def decode(payload: bytes, w: int, h: int, mode: str) -> np.ndarray:
    """The lossless section payload -> H×W×C uint8 pixels of `mode`; FormatError for anything malformed."""
    kind, data = sections.unpack_lossless(payload)
    channels = CHANNELS[mode]
    if kind == LOSSLESS_DEFLATE:
        raw = sections.inflate(data, w * h * channels, "lossless")
        return np.frombuffer(raw, np.uint8).reshape(h, w, channels).copy()
    if len(data) < 21 or data[:4] != b"RIFF" or data[8:16] != b"WEBPVP8L":
        raise FormatError("corrupt lossless section (not a lossless WebP)")
    try:  # (no warnings.catch_warnings here: it is not thread-safe; aecodec never writes WebP above the
        # decompression-bomb warning size)
        image = Image.open(io.BytesIO(data), formats=["WEBP"])
        if image.size != (w, h) or getattr(image, "n_frames", 1) != 1:
            raise FormatError(f"corrupt lossless section (WebP is {image.size[0]}x{image.size[1]}, "
                              f"header says {w}x{h})")
        image.load()
    except FormatError:
        raise
    except Image.DecompressionBombError:
        raise FormatError("lossless WebP too large for this decoder") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise FormatError(f"corrupt lossless section ({e})") from None
    has_alpha = mode in ("LA", "RGBA")
    rgb = np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
    colour = rgb[:, :, :1] if mode in ("L", "LA") else rgb[:, :, :3]  # grey: WebP holds three equal channels
    return np.ascontiguousarray(np.concatenate([colour, rgb[:, :, 3:]], axis=2) if has_alpha else colour)
