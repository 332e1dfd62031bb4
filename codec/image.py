"""Image compression: pixels <-> padded float tensor <-> latent <-> range-coded .aec bytes.

Colour: L and RGB are coded through the RGB model (grey comes back grey); an alpha
channel is kept losslessly in a deflated section; the ICC profile is carried over.
Any size >= 1×1 is edge-padded to a multiple of the model's stride and cropped back.
"""
from __future__ import annotations

import io
import struct
import time
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image

from . import container
from .bundle import ModelBundle, bundle_for_id, load_bundle
from .container import AecFile, ImageHeader
from .errors import FormatError, InputError

ImageLike = Union[Image.Image, np.ndarray]
Source = Union[str, Path, bytes, bytearray, memoryview, "BinaryIO"]

# A header (or an input image) claiming more pixels is refused before anything is allocated. Big
# images are coded in tiles, so memory is about 1 GB plus ~8 bytes per pixel (3.2 GB peak measured
# at 200 MP, benchmarks/scale_image.py). Raise per call with max_pixels=... (CLI: --max-pixels).
MAX_PIXELS = 256_000_000
MAX_ICC_BYTES = 1 << 24
DEFAULT_QUALITY = 75

_ARRAY_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


@contextmanager
def _timed(timings: dict | None, stage: str):
    t0 = time.perf_counter()
    yield
    if timings is not None:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - t0


def _check_quality(quality: int) -> int:
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= int(quality) <= 100:
        raise InputError(f"quality must be an integer 1..100, got {quality!r}")
    return int(quality)


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


def _split_alpha(arr: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(RGB uint8 H×W×3, alpha H×W or None)."""
    alpha = arr[:, :, -1] if mode in ("LA", "RGBA") else None
    colour = arr[:, :, :1] if mode in ("L", "LA") else arr[:, :, :3]
    if colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
    return colour, alpha


def _pad_nchw(rgb: np.ndarray, multiple: int) -> np.ndarray:
    h, w, _ = rgb.shape
    ph, pw = (-h) % multiple, (-w) % multiple
    x = rgb.astype(np.float32).transpose(2, 0, 1)[None] * np.float32(1 / 255)
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="edge")
    return np.ascontiguousarray(x)


# Big images run through the networks in tiles: TILE×TILE pixels of output per tile, computed from the
# tile plus HALO pixels of context on each side (more than half the transforms' receptive field,
# 61 px for the analysis), so tiles join without seams. The tiling depends on the image size only,
# never on the machine, so a file decodes the same everywhere.
TILE = 1024
HALO = 64
TILE_ABOVE_PIXELS = 1536 * 1536  # images up to this padded size run as one tensor (about 1.2 GB peak)


def _uses_tiles(padded_h: int, padded_w: int) -> bool:
    return padded_h * padded_w > TILE_ABOVE_PIXELS


def _tile_input(rgb: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Rows y0:y1, cols x0:x1 of the edge-padded image, as float32 1×3×h×w in [0, 1]."""
    h, w, _ = rgb.shape
    rows = np.minimum(np.arange(y0, y1), h - 1)
    cols = np.minimum(np.arange(x0, x1), w - 1)
    t = rgb[rows[:, None], cols[None, :]]
    return np.ascontiguousarray(t.astype(np.float32).transpose(2, 0, 1)[None] * np.float32(1 / 255))


def _quantise(y: np.ndarray, gains: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(y * gains), -(2**31), 2**31 - 1).astype(np.int32)


def encode_symbols(bundle: ModelBundle, rgb: np.ndarray, quality: int, timings: dict | None = None) -> np.ndarray:
    """RGB uint8 H×W×3 -> quantised latent int32 C×h×w (tiled for big images)."""
    s = bundle.downsample
    h, w, _ = rgb.shape
    ph, pw = -(-h // s) * s, -(-w // s) * s
    gains = bundle.gains[quality - 1][:, None, None]
    if not _uses_tiles(ph, pw):
        with _timed(timings, "preprocess"):
            x = _pad_nchw(rgb, s)
        with _timed(timings, "encoder_net"):
            y = bundle.run_encoder(x)[0]
        with _timed(timings, "entropy_encode"):
            return _quantise(y, gains)
    symbols = np.empty((bundle.latent_channels, ph // s, pw // s), np.int32)
    for ty in range(0, ph, TILE):
        for tx in range(0, pw, TILE):
            y0, y1 = max(0, ty - HALO), min(ph, ty + TILE + HALO)
            x0, x1 = max(0, tx - HALO), min(pw, tx + TILE + HALO)
            with _timed(timings, "preprocess"):
                x = _tile_input(rgb, y0, y1, x0, x1)
            with _timed(timings, "encoder_net"):
                y = bundle.run_encoder(x)[0]
            with _timed(timings, "entropy_encode"):
                th, tw = (min(ty + TILE, ph) - ty) // s, (min(tx + TILE, pw) - tx) // s
                cy, cx = (ty - y0) // s, (tx - x0) // s
                symbols[:, ty // s : ty // s + th, tx // s : tx // s + tw] = _quantise(
                    y[:, cy : cy + th, cx : cx + tw], gains)
    return symbols


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """C×h×w float reconstruction -> h×w×C uint8."""
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def decode_symbols(bundle: ModelBundle, symbols: np.ndarray, quality: int, height: int, width: int,
                   timings: dict | None = None) -> np.ndarray:
    """Quantised latent int32 C×h×w -> RGB uint8 height×width×3 (tiled for big images)."""
    s = bundle.downsample
    _, lh, lw = symbols.shape
    gains = bundle.gains[quality - 1][:, None, None]
    if not _uses_tiles(lh * s, lw * s):
        with _timed(timings, "entropy_decode"):
            y = np.ascontiguousarray((symbols.astype(np.float32) / gains)[None])
        with _timed(timings, "decoder_net"):
            x = bundle.run_decoder(y)[0]
        with _timed(timings, "postprocess"):
            return np.ascontiguousarray(_to_uint8(x[:, :height, :width]))
    out = np.empty((height, width, 3), np.uint8)
    t, halo = TILE // s, HALO // s
    for ly in range(0, lh, t):
        for lx in range(0, lw, t):
            py0, px0 = ly * s, lx * s
            py1, px1 = min((ly + t) * s, height), min((lx + t) * s, width)
            if py0 >= height or px0 >= width:
                continue
            a0, a1 = max(0, ly - halo), min(lh, ly + t + halo)
            b0, b1 = max(0, lx - halo), min(lw, lx + t + halo)
            with _timed(timings, "entropy_decode"):
                y = np.ascontiguousarray((symbols[:, a0:a1, b0:b1].astype(np.float32) / gains)[None])
            with _timed(timings, "decoder_net"):
                x = bundle.run_decoder(y)[0]
            with _timed(timings, "postprocess"):
                oy, ox = (ly - a0) * s, (lx - b0) * s
                out[py0:py1, px0:px1] = _to_uint8(x[:, oy : oy + py1 - py0, ox : ox + px1 - px0])
    return out


def latent_shape(bundle: ModelBundle, width: int, height: int) -> tuple[int, int]:
    s = bundle.downsample
    return -(-height // s), -(-width // s)


def compress(image: ImageLike | str | Path | BinaryIO, quality: int = DEFAULT_QUALITY, *,
             model: str | Path | ModelBundle | None = None, timings: dict | None = None,
             max_pixels: int | None = None) -> bytes:
    """Compress an image to .aec bytes.

    `image`: a PIL image, a uint8 numpy array (H×W, H×W×1..4), an image file path or a binary
    file object. quality 1..100: higher is better quality and a bigger file. `timings`, if
    given, receives seconds per stage (preprocess, encoder_net, entropy_encode).

    >>> import numpy as np, aecodec
    >>> data = aecodec.compress(np.full((20, 30, 3), 128, np.uint8), quality=50)
    >>> data[:4], aecodec.info(data)["width"]
    (b'\\x89AEC', 30)
    """
    quality = _check_quality(quality)
    if isinstance(image, (str, Path)) or hasattr(image, "read"):
        image = open_image(image.read() if hasattr(image, "read") else image, max_pixels=max_pixels)
    bundle = load_bundle(model)
    with _timed(timings, "preprocess"):
        arr, mode, icc = to_pixels(image)
        h, w = arr.shape[:2]
        if h < 1 or w < 1:
            raise InputError(f"image is empty ({w}x{h})")
        limit = max_pixels or MAX_PIXELS
        if h * w > limit:
            raise InputError(f"image too large ({w}x{h} > {limit} pixels; raise the limit with max_pixels / --max-pixels)")
        if icc is not None and len(icc) > MAX_ICC_BYTES:
            raise InputError("ICC profile too large")
        rgb, alpha = _split_alpha(arr, mode)
    symbols = encode_symbols(bundle, rgb, quality, timings)
    with _timed(timings, "entropy_encode"):
        latent = bundle.coder.encode(symbols, quality)
        sections = {container.SECTION_LATENT: latent}
        if alpha is not None:
            sections[container.SECTION_ALPHA] = container.deflate(np.ascontiguousarray(alpha).tobytes())
        if icc is not None:
            sections[container.SECTION_ICC] = struct.pack("<I", len(icc)) + container.deflate(icc)
        header = ImageHeader(quality=quality, model_id=bundle.model_id_bytes, width=w, height=h, mode=mode)
        return container.pack(AecFile(header, sections))


def decode_to_array(data: bytes, *, model: str | Path | ModelBundle | None = None,
                    timings: dict | None = None, max_pixels: int | None = None) -> tuple[np.ndarray, str, bytes | None]:
    """.aec bytes -> (H×W×C uint8 array, mode, ICC profile or None)."""
    f = container.unpack(data)
    hdr = f.header
    if not isinstance(hdr, ImageHeader):
        raise FormatError("this .aec file holds audio, not an image (use aecodec.decompress_audio)")
    limit = max_pixels or MAX_PIXELS
    if hdr.width * hdr.height > limit:  # checked before anything is allocated
        raise FormatError(f"image too large ({hdr.width}x{hdr.height} > {limit} pixels; raise the limit with "
                          "max_pixels / --max-pixels)")
    bundle = bundle_for_id(hdr.model_id, model)
    if hdr.quality > bundle.num_qualities:
        raise FormatError(f"quality {hdr.quality} not in model {bundle.model_id}")
    lh, lw = latent_shape(bundle, hdr.width, hdr.height)
    with _timed(timings, "entropy_decode"):
        symbols = bundle.coder.decode(f.sections[container.SECTION_LATENT], hdr.quality, lh, lw)
    rgb = decode_symbols(bundle, symbols, hdr.quality, hdr.height, hdr.width, timings)
    del symbols
    with _timed(timings, "postprocess"):
        if hdr.mode in ("L", "LA"):
            grey = np.asarray(Image.fromarray(np.ascontiguousarray(rgb), "RGB").convert("L"))
            planes = [grey[:, :, None]]
        else:
            planes = [rgb]
        if hdr.mode in ("LA", "RGBA"):
            if container.SECTION_ALPHA not in f.sections:
                raise FormatError("missing alpha section")
            raw = container.inflate(f.sections[container.SECTION_ALPHA], hdr.width * hdr.height, "alpha")
            planes.append(np.frombuffer(raw, np.uint8).reshape(hdr.height, hdr.width, 1))
        icc = None
        if container.SECTION_ICC in f.sections:
            payload = f.sections[container.SECTION_ICC]
            if len(payload) < 4:
                raise FormatError("corrupt icc section")
            (n,) = struct.unpack_from("<I", payload)
            if n > MAX_ICC_BYTES:
                raise FormatError("corrupt icc section (too large)")
            icc = container.inflate(payload[4:], n, "icc")
        arr = planes[0] if len(planes) == 1 else np.ascontiguousarray(np.concatenate(planes, axis=2))
    return arr, hdr.mode, icc


def _read_source(source: Source) -> bytes:
    """bytes-like as is; a path is read; a file object is read to its end."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, Path)):
        return Path(source).read_bytes()
    if hasattr(source, "read"):
        return source.read()
    raise InputError(f"expected bytes, a path or a file object, got {type(source).__name__}")


def decompress(data: Source, *, model: str | Path | ModelBundle | None = None, as_array: bool = False,
               timings: dict | None = None, max_pixels: int | None = None) -> ImageLike:
    """Decode .aec data (bytes, a path or a binary file object) to an image.

    Returns a PIL image (default; the ICC profile in `img.info`) or a numpy array (as_array=True;
    H×W for grey, else H×W×C), always at the original size.

    >>> import numpy as np, aecodec
    >>> data = aecodec.compress(np.zeros((7, 5), np.uint8))
    >>> aecodec.decompress(data).mode, aecodec.decompress(data, as_array=True).shape
    ('L', (7, 5))
    """
    arr, mode, icc = decode_to_array(_read_source(data), model=model, timings=timings, max_pixels=max_pixels)
    if as_array:
        return arr[:, :, 0] if arr.shape[2] == 1 else arr
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


def info(data: Source) -> dict:
    """Header facts of an .aec file given as bytes, path or file object (validates the CRC; needs no model)."""
    data = _read_source(data)
    f = container.unpack(data)
    h = f.header
    if not isinstance(h, ImageHeader):
        return {
            "format_version": h.version, "modality": "audio", "sample_rate": h.sample_rate,
            "channels": h.channels, "samples": h.num_samples, "seconds": h.num_samples / h.sample_rate,
            "quality": h.quality, "model_id": h.model_id.hex(), "bytes": len(data),
            "kbps": 8 * len(data) / (h.num_samples / h.sample_rate) / 1000,
            "sections": {container.SECTION_NAMES.get(t, str(t)): len(p) for t, p in f.sections.items()},
        }
    return {
        "format_version": h.version,
        "modality": container.MODALITY_NAMES[h.modality],
        "width": h.width,
        "height": h.height,
        "mode": h.mode,
        "quality": h.quality,
        "model_id": h.model_id.hex(),
        "bytes": len(data),
        "bpp": 8 * len(data) / (h.width * h.height),
        "sections": {container.SECTION_NAMES.get(t, str(t)): len(p) for t, p in f.sections.items()},
    }
