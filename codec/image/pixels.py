"""What users hand in and get back: Pillow images, uint8 arrays and files <-> H×W×C uint8 pixels.

Colour: L and RGB are coded through the RGB model (grey comes back grey); an alpha channel is
kept losslessly; the ICC profile is carried over. Inputs the model cannot code as they are get one
documented treatment each, never a silent one: CMYK (and LAB) go through colour management (littleCMS)
into sRGB and the file carries an sRGB profile; 16-bit samples are reduced to 8 bits with a notice;
animations and multi-page files are refused unless the first frame is asked for.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image

from ..errors import InputError, notify

ImageLike = Union[Image.Image, np.ndarray]

# A header (or an input image) claiming more pixels is refused before anything is allocated. Big
# images are coded in tiles, so memory grows slowly with size (benchmarks/scale_image.py: the default
# hyperprior peaked at 2.5 GB at 16 MP and 3.6 GB at 64 MP; image-edge at 3.2 GB at 200 MP). Raise per
# call with max_pixels=... (CLI: --max-pixels).
MAX_PIXELS = 256_000_000
MAX_ICC_BYTES = 1 << 24

_ARRAY_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
PRECISION_NOTICE = "16-bit samples reduced to 8 bits (aecodec codes 8 bits per sample)"


def srgb_profile() -> bytes:
    """littleCMS's built-in sRGB profile with a fixed creation date, so equal inputs give equal files."""
    from PIL import ImageCms

    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    profile[24:36] = bytes([0x07, 0xEA, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0])  # 2026-01-01 00:00:00 (header dateTime)
    return bytes(profile)


def to_srgb(image: Image.Image, icc: bytes | None, name: str = "image") -> tuple[Image.Image, bytes | None]:
    """A CMYK or LAB image -> RGB in sRGB through its ICC profile (littleCMS, the profile's own rendering
    intent), and the sRGB profile the output carries. A CMYK image without a usable profile is converted
    naively (Pillow's formula) with a notice: there is no colour space to manage from."""
    from PIL import ImageCms

    source = None
    try:
        if icc:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        elif image.mode == "LAB":
            source = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB"))
    except (ImageCms.PyCMSError, OSError, ValueError) as e:
        notify(f"{name}: unreadable ICC profile ({e})")
    if source is not None:
        try:
            srgb = srgb_profile()
            target = ImageCms.ImageCmsProfile(io.BytesIO(srgb))
            intent = ImageCms.Intent(ImageCms.getDefaultIntent(source))
            if not ImageCms.isIntentSupported(source, intent, ImageCms.Direction.INPUT):
                intent = ImageCms.Intent.PERCEPTUAL
            converted = ImageCms.profileToProfile(image, source, target, renderingIntent=intent, outputMode="RGB")
            assert converted is not None
            return converted, srgb
        except (ImageCms.PyCMSError, OSError, ValueError) as e:
            notify(f"{name}: colour management failed ({e})")
    notify(f"{name}: {image.mode} image without a usable ICC profile converted to RGB without colour management")
    return image.convert("RGB"), None


def check_frames(image: Image.Image, first_frame: bool, name: str = "image") -> None:
    """Refuse animations and multi-page files (naming the frame count) unless the first frame is asked for.

    MPO (camera JPEGs with a preview or depth picture) is one image: its first frame is the photo."""
    frames = getattr(image, "n_frames", 1)
    if frames > 1 and image.format != "MPO":
        if not first_frame:
            raise InputError(f"{name} has {frames} frames (an animation or a multi-page file); aecodec codes one "
                             "still image: use --first-frame (API: first_frame=True) to code the first frame")
        image.seek(0)


def _reduce_16(image: Image.Image) -> Image.Image:
    """16-bit grey -> 8-bit L keeping the high byte, as Pillow itself does for 16-bit RGB(A)."""
    arr = np.asarray(image).astype(np.uint16)
    return Image.fromarray((arr >> 8).astype(np.uint8))


def to_pixels(image: ImageLike, first_frame: bool = False) -> tuple[np.ndarray, str, bytes | None]:
    """Normalise user input to (H×W×C uint8 array, mode in L/LA/RGB/RGBA, ICC profile or None)."""
    if isinstance(image, Image.Image):
        check_frames(image, first_frame)
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
        elif mode in ("CMYK", "LAB"):
            image, icc = to_srgb(image, icc)
        elif mode in ("YCbCr", "HSV"):
            image = image.convert("RGB")
            icc = None  # the profile described the old colour space
        elif mode in SIXTEEN_BIT_MODES:
            notify(f"image: {PRECISION_NOTICE}")
            image = _reduce_16(image)
        else:
            raise InputError(f"unsupported image mode {mode!r} (L, LA, RGB, RGBA, palette, CMYK or 16-bit images)")
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
        if arr.dtype == np.uint16:
            notify(f"image: {PRECISION_NOTICE}")
            arr = (arr >> 8).astype(np.uint8)
        if arr.dtype != np.uint8:
            raise InputError(f"numpy images must be uint8 (or uint16), got {arr.dtype}")
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


def source_bits(image: Image.Image) -> int:
    """Bits per sample of the file behind an opened, not yet loaded Pillow image.

    Pillow opens 16-bit RGB(A) and grey+alpha PNG and TIFF as 8-bit modes without a word; the raw mode
    of the file's tiles ('RGB;16B', 'I;16', ...), TIFF's BitsPerSample and PNM's maxval tell."""
    if image.mode in SIXTEEN_BIT_MODES:
        return 16
    tags = getattr(image, "tag_v2", None)
    if tags is not None:
        bits = tags.get(258)
        bits = max(bits) if isinstance(bits, tuple) and bits else bits
        if isinstance(bits, int) and bits > 8:
            return bits
    for tile in getattr(image, "tile", None) or []:
        args = tile.args if hasattr(tile, "args") else tile[3]
        raw = args if isinstance(args, str) else (args[0] if isinstance(args, tuple) and args else "")
        if isinstance(raw, str) and (";16" in raw or ";32" in raw):
            return 16 if ";16" in raw else 32
        if tile[0] == "ppm" and isinstance(args, tuple) and len(args) > 1 and isinstance(args[1], int) \
                and args[1] > 255:
            return 16
    return 8


def open_image(source: str | Path | bytes, name: str | None = None, max_pixels: int | None = None,
               first_frame: bool = False) -> Image.Image:
    """Open an image file (or bytes) with Pillow, with a one-line error on failure.

    The size in the file's header is checked against max_pixels before any pixel is decoded.
    Animations and multi-page files are refused unless first_frame; 16-bit files come back as 8-bit
    images with a notice; an .aec file is refused (re-encoding a lossy file only adds loss).
    """
    from PIL import UnidentifiedImageError

    if name is None:
        name = "<bytes>" if isinstance(source, (bytes, bytearray)) else str(source)

    im: Image.Image
    try:
        im = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
        if im.format == "AEC":
            raise InputError(f"{name} is already an .aec file (decompress it first; re-encoding only adds loss)")
        limit = max_pixels or MAX_PIXELS
        if im.width * im.height > limit:
            raise InputError(f"image {name} too large ({im.width}x{im.height} > {limit} pixels; "
                             "raise the limit with --max-pixels)")
        check_frames(im, first_frame, name)
        bits = source_bits(im)
        grey_alpha = any("LA;16" in str(t[3]) for t in getattr(im, "tile", None) or [])
        im.load()
    except (FileNotFoundError, InputError):
        raise
    except UnidentifiedImageError:
        raise InputError(f"not a recognised image: {name}") from None
    except Image.DecompressionBombError:
        raise InputError(f"image {name} is too large (decompression bomb limit)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise InputError(f"cannot read image {name} ({e})") from None
    if bits > 16:
        raise InputError(f"{name} has {bits}-bit samples (8- and 16-bit images only)")
    if bits > 8:
        notify(f"{name}: {PRECISION_NOTICE}")
        info = dict(im.info)
        if im.mode in SIXTEEN_BIT_MODES or im.mode == "I":
            im = _reduce_16(im)
        elif grey_alpha and im.mode == "RGBA":  # Pillow opens 16-bit grey+alpha as RGBA: grey stays grey
            im = im.convert("LA")
        im.info.update(info)
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
    if im.mode in ("CMYK", "LAB"):  # here rather than in to_pixels so that a notice names the file
        im, icc = to_srgb(im, im.info.get("icc_profile"), name)
        im.info.pop("icc_profile", None)  # the old profile described CMYK / LAB
        if icc:
            im.info["icc_profile"] = icc
    return im
