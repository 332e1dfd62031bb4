"""What users hand in and get back: Pillow images, uint8 arrays and files <-> H×W×C uint8 pixels.

Colour: L and RGB are coded through the RGB model (grey comes back grey); an alpha channel is
kept losslessly; the ICC profile is carried over.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image

from ..errors import InputError

ImageLike = Union[Image.Image, np.ndarray]

# A header (or an input image) claiming more pixels is refused before anything is allocated. Big
# images are coded in tiles, so memory is about 1 GB plus ~8 bytes per pixel (3.2 GB peak measured
# at 200 MP, benchmarks/scale_image.py). Raise per call with max_pixels=... (CLI: --max-pixels).
MAX_PIXELS = 256_000_000
MAX_ICC_BYTES = 1 << 24

_ARRAY_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def to_pixels(image: ImageLike) -> tuple[np.ndarray, str, bytes | None]:
    """Normalise user input to (H×W×C uint8 array, mode in L/LA/RGB/RGBA, ICC profile or None)."""
    if isinstance(image, Image.Image):
        icc = image.info.get("icc_profile") or None
        mode = image.mode
        if mode in ("1", "L", "LA", "RGB", "RGBA"):
            pass
        elif mode in ("P", "PA"):
            has_alpha = mode == "PA" or "transparency" in image.info
            image = image.convert("RGBA" if has_alpha else "RGB")
        elif mode in ("La",):
            image = image.convert("LA")
        elif mode in ("RGBa", "RGBX"):
            image = image.convert("RGBA" if mode == "RGBa" else "RGB")
        elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            image = image.convert("RGB")
            icc = None  # the profile described the old colour space
        else:
            raise InputError(f"unsupported image mode {mode!r} (8-bit L, LA, RGB, RGBA or palette images only)")
        if image.mode == "1":
            image = image.convert("L")
        arr = np.asarray(image, dtype=np.uint8)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        return arr, image.mode, icc
    if isinstance(image, np.ndarray):
        arr = image
        if arr.dtype == np.bool_:
            arr = arr.astype(np.uint8) * 255
        if arr.dtype != np.uint8:
            raise InputError(f"numpy images must be uint8, got {arr.dtype}")
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3 or arr.shape[2] not in _ARRAY_MODES:
            raise InputError(f"numpy image must be H×W or H×W×C with C in 1..4, got shape {image.shape}")
        return np.ascontiguousarray(arr), _ARRAY_MODES[arr.shape[2]], None
    raise InputError(f"expected a PIL image or a numpy array, got {type(image).__name__}")


def check_size(width: int, height: int, max_pixels: int | None, name: str = "image") -> None:
    limit = max_pixels or MAX_PIXELS
    if width < 1 or height < 1:
        raise InputError(f"{name} is empty ({width}x{height})")
    if width * height > limit:
        raise InputError(f"{name} too large ({width}x{height} > {limit} pixels; raise the limit with "
                         "max_pixels / --max-pixels)")


def split_alpha(arr: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(RGB uint8 H×W×3, alpha H×W or None): what the model codes, and what is kept losslessly."""
    alpha = arr[:, :, -1] if mode in ("LA", "RGBA") else None
    colour = arr[:, :, :1] if mode in ("L", "LA") else arr[:, :, :3]
    if colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
    return colour, alpha


def join_planes(rgb: np.ndarray, mode: str, alpha: np.ndarray | None) -> np.ndarray:
    """Decoded RGB (+ alpha) -> H×W×C in the original mode (grey comes back grey)."""
    if mode in ("L", "LA"):
        grey = np.asarray(Image.fromarray(np.ascontiguousarray(rgb), "RGB").convert("L"))
        planes = [grey[:, :, None]]
    else:
        planes = [rgb]
    if alpha is not None:
        planes.append(alpha[:, :, None])
    return planes[0] if len(planes) == 1 else np.ascontiguousarray(np.concatenate(planes, axis=2))


def to_image(arr: np.ndarray, mode: str, icc: bytes | None) -> Image.Image:
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr, mode)
    if icc:
        img.info["icc_profile"] = icc
    return img


def open_image(source: str | Path | bytes, name: str | None = None, max_pixels: int | None = None) -> Image.Image:
    """Open an image file (or bytes) with Pillow, with a one-line error on failure.

    The size in the file's header is checked against max_pixels before any pixel is decoded.
    """
    from PIL import UnidentifiedImageError

    if name is None:
        name = "<bytes>" if isinstance(source, (bytes, bytearray)) else str(source)

    try:
        im = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
        limit = max_pixels or MAX_PIXELS
        if im.width * im.height > limit:
            raise InputError(f"image {name} too large ({im.width}x{im.height} > {limit} pixels; "
                             "raise the limit with --max-pixels)")
        if getattr(im, "n_frames", 1) > 1:
            im.seek(0)  # animated: the first frame is coded (documented)
        im.load()
    except (FileNotFoundError, InputError):
        raise
    except UnidentifiedImageError:
        raise InputError(f"not a recognised image: {name}") from None
    except Image.DecompressionBombError:
        raise InputError(f"image {name} is too large (decompression bomb limit)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise InputError(f"cannot read image {name} ({e})") from None
    try:
        from PIL import ImageOps

        exif_orientation = im.getexif().get(0x0112, 1)
        if exif_orientation != 1:
            icc = im.info.get("icc_profile")
            im = ImageOps.exif_transpose(im)  # type: ignore[assignment]
            if icc:
                im.info["icc_profile"] = icc
    except Exception:
        pass
    return im
