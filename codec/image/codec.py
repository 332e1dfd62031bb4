"""Image compression: pixels -> network input -> latent -> range-coded sections -> .aec bytes, and back.

One call goes down this module once: `compress` normalises the input (pixels.py), runs the encoder
graph whole or in tiles (tiling.py), hands the latent to the bundle's coding (coding/latent.py)
and frames the result (format/). `decompress` mirrors it.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..coding import FactorizedCoding, HyperpriorCoding, HyperStreams, check_quality
from ..errors import FormatError, InputError
from ..fileio import Source, read_source
from ..format import container, sections
from ..format.container import AecFile, ImageHeader
from ..metrics import psnr
from ..models import ModelBundle, bundle_for_id, load_bundle
from . import lossless as lossless_coding
from .pixels import (MAX_ICC_BYTES, MAX_PIXELS, ImageLike, check_size, join_planes, open_image, split_alpha, to_image,
                     to_pixels)
from .refine import refine_latent
from .tiling import HALO, HYPER_HALO, TILE, latent_tiles, padded_size, tile_input, to_network_input, to_uint8, uses_tiles

DEFAULT_QUALITY = 75


@contextmanager
def _timed(timings: dict | None, stage: str):
    t0 = time.perf_counter()
    yield
    if timings is not None:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - t0


def latent_shape(bundle: ModelBundle, width: int, height: int) -> tuple[int, int]:
    """Latent rows and columns of an image: its size padded to the model's multiple, over the stride."""
    ph, pw = padded_size(height, width, bundle.manifest.padding)
    return ph // bundle.manifest.downsample, pw // bundle.manifest.downsample


def _encode_factorized(bundle: ModelBundle, coding: FactorizedCoding, rgb: np.ndarray, quality: int,
                       timings: dict | None) -> dict[int, bytes]:
    s = bundle.manifest.downsample
    lh, lw = latent_shape(bundle, rgb.shape[1], rgb.shape[0])
    if not uses_tiles(lh * s, lw * s):
        with _timed(timings, "preprocess"):
            x = to_network_input(rgb, s)
        with _timed(timings, "encoder_net"):
            y = bundle.run_encoder(x)[0][0]
        with _timed(timings, "entropy_encode"):
            symbols = coding.quantise(y, quality)
    else:
        symbols = np.empty((coding.channels, lh, lw), np.int32)
        for t in latent_tiles(lh, lw, TILE // s, HALO // s):
            with _timed(timings, "preprocess"):
                x = tile_input(rgb, t.a0 * s, t.a1 * s, t.b0 * s, t.b1 * s)
            with _timed(timings, "encoder_net"):
                y = bundle.run_encoder(x)[0][0]
            with _timed(timings, "entropy_encode"):
                core = y[:, t.r0 - t.a0 : t.r1 - t.a0, t.c0 - t.b0 : t.c1 - t.b0]
                symbols[:, t.r0 : t.r1, t.c0 : t.c1] = coding.quantise(core, quality)
    with _timed(timings, "entropy_encode"):
        return {container.SECTION_LATENT: coding.encode(symbols, quality)}


def _encode_hyperprior(bundle: ModelBundle, coding: HyperpriorCoding, rgb: np.ndarray, quality: int,
                       timings: dict | None, refine: int = 0) -> dict[int, bytes]:
    s = bundle.manifest.downsample
    gain = coding.gain(quality)
    lh, lw = latent_shape(bundle, rgb.shape[1], rgb.shape[0])
    if not uses_tiles(lh * s, lw * s):
        with _timed(timings, "preprocess"):
            x = to_network_input(rgb, bundle.manifest.padding)
        with _timed(timings, "encoder_net"):
            v, z = (a[0] for a in bundle.run_encoder(x, gain))
        if refine:
            with _timed(timings, "refine"):
                v = refine_latent(bundle, coding, x, v, z, quality, refine)
    else:  # (no refinement: the search needs the whole latent at once)  # z of each tile's core is exact: the halo covers what h_a sees; cores and halos are multiples of 4
        v = np.empty((coding.channels, lh, lw), np.float32)
        z = np.empty((coding.hyper_channels, lh // 4, lw // 4), np.float32)
        for t in latent_tiles(lh, lw, TILE // s, HYPER_HALO // s):
            with _timed(timings, "preprocess"):
                x = tile_input(rgb, t.a0 * s, t.a1 * s, t.b0 * s, t.b1 * s)
            with _timed(timings, "encoder_net"):
                tv, tz = (a[0] for a in bundle.run_encoder(x, gain))
            v[:, t.r0 : t.r1, t.c0 : t.c1] = tv[:, t.r0 - t.a0 : t.r1 - t.a0, t.c0 - t.b0 : t.c1 - t.b0]
            z[:, t.r0 // 4 : t.r1 // 4, t.c0 // 4 : t.c1 // 4] = tz[:, (t.r0 - t.a0) // 4 : (t.r1 - t.a0) // 4,
                                                                   (t.c0 - t.b0) // 4 : (t.c1 - t.b0) // 4]
    with _timed(timings, "entropy_encode"):
        streams, _ = coding.encode(v, z)
        sections = {container.SECTION_HYPER_LATENT: streams.hyper, container.SECTION_CONDITIONAL_LATENT: streams.conditional}
        if coding.context is not None:
            sections[container.SECTION_CONTEXT_LATENT] = streams.context
        return sections


def encode_latent_sections(bundle: ModelBundle, rgb: np.ndarray, quality: int,
                           timings: dict | None = None, refine: int = 0) -> dict[int, bytes]:
    """RGB uint8 H×W×3 -> the latent section(s) of a file at this quality (`refine`: steps of the encoder's
    latent search, refine.py; hyperprior models with a refiner graph only)."""
    coding = bundle.coding
    if refine and not (isinstance(coding, HyperpriorCoding) and bundle.has_refiner):
        raise InputError(f"model {bundle.manifest.name or bundle.model_id} cannot refine its latent "
                         "(no refiner graph); use image-hyperprior or leave out --refine")
    if isinstance(coding, HyperpriorCoding):
        return _encode_hyperprior(bundle, coding, rgb, quality, timings, refine)
    return _encode_factorized(bundle, coding, rgb, quality, timings)


def _synthesize(bundle: ModelBundle, latent_window, lh: int, lw: int, height: int, width: int,
                timings: dict | None) -> np.ndarray:
    """Decoder graph over ŷ (whole or tiled); latent_window(a0, a1, b0, b1) gives float32 ŷ of a window."""
    s = bundle.manifest.downsample
    if not uses_tiles(lh * s, lw * s):
        with _timed(timings, "entropy_decode"):
            y = np.ascontiguousarray(latent_window(0, lh, 0, lw)[None])
        with _timed(timings, "decoder_net"):
            x = bundle.run_decoder(y)[0]
        with _timed(timings, "postprocess"):
            return np.ascontiguousarray(to_uint8(x[:, :height, :width]))
    out = np.empty((height, width, 3), np.uint8)
    for t in latent_tiles(lh, lw, TILE // s, HALO // s):
        py0, px0 = t.r0 * s, t.c0 * s
        py1, px1 = min(t.r1 * s, height), min(t.c1 * s, width)
        if py0 >= height or px0 >= width:
            continue  # a tile of padding only
        with _timed(timings, "entropy_decode"):
            y = np.ascontiguousarray(latent_window(t.a0, t.a1, t.b0, t.b1)[None])
        with _timed(timings, "decoder_net"):
            x = bundle.run_decoder(y)[0]
        with _timed(timings, "postprocess"):
            oy, ox = (t.r0 - t.a0) * s, (t.c0 - t.b0) * s
            out[py0:py1, px0:px1] = to_uint8(x[:, oy : oy + py1 - py0, ox : ox + px1 - px0])
    return out


def hyper_streams(f: AecFile) -> HyperStreams:
    """The range-coded streams of a hyperprior image file (sections 5, 6 and, with a checkerboard context, 10)."""
    return HyperStreams(f.sections[container.SECTION_HYPER_LATENT], f.sections[container.SECTION_CONDITIONAL_LATENT],
                        f.sections.get(container.SECTION_CONTEXT_LATENT, b""))


def decode_latent_sections(bundle: ModelBundle, f: AecFile, timings: dict | None = None) -> np.ndarray:
    """The latent section(s) of a parsed image file -> RGB uint8 height×width×3."""
    hdr = f.header
    assert isinstance(hdr, ImageHeader)
    coding = bundle.coding
    if hdr.quality > coding.num_qualities:
        raise FormatError(f"quality {hdr.quality} not in model {bundle.model_id}")
    lh, lw = latent_shape(bundle, hdr.width, hdr.height)
    if isinstance(coding, HyperpriorCoding):
        if container.SECTION_CONDITIONAL_LATENT not in f.sections:
            raise FormatError(f"model {bundle.model_id} is a hyperprior model; the file has no hyperprior sections")
        if (coding.context is None) != (container.SECTION_CONTEXT_LATENT not in f.sections):
            raise FormatError(f"model {bundle.model_id} {'has' if coding.context else 'has no'} checkerboard context; "
                              f"the file {'lacks' if coding.context else 'has'} a context latent section")
        with _timed(timings, "entropy_decode"):
            streams = hyper_streams(f)
            v_hat = coding.decode(streams, (lh, lw))
            gain = coding.gain(hdr.quality)
        return _synthesize(bundle, lambda a0, a1, b0, b1: v_hat[:, a0:a1, b0:b1] / gain, lh, lw,
                           hdr.height, hdr.width, timings)
    if container.SECTION_LATENT not in f.sections:
        raise FormatError(f"model {bundle.model_id} is a factorized model; the file has no latent section")
    with _timed(timings, "entropy_decode"):
        symbols = coding.decode(f.sections[container.SECTION_LATENT], hdr.quality, (lh, lw))
    return _synthesize(bundle, lambda a0, a1, b0, b1: coding.dequantise(symbols[:, a0:a1, b0:b1], hdr.quality),
                       lh, lw, hdr.height, hdr.width, timings)


def compress(image: ImageLike | str | Path | BinaryIO, quality: int = DEFAULT_QUALITY, *,
             model: str | Path | ModelBundle | None = None, timings: dict | None = None,
             max_pixels: int | None = None, lossless: bool | None = None, first_frame: bool = False,
             refine: int = 0) -> bytes:
    """Compress an image to .aec bytes.

    `image`: a PIL image, a uint8 numpy array (H×W, H×W×1..4), an image file path or a binary
    file object. quality 1..100: higher is better quality and a bigger file. `timings`, if
    given, receives seconds per stage (preprocess, encoder_net, entropy_encode, lossless).
    `lossless`: None (default) codes tiny images and graphics exactly where that is smaller or the
    learned codec would fall below a quality floor (photos are never affected), unless a `model` is
    named (then that model codes, as asked: tests, benchmarks, model comparisons); True always codes
    exactly; False never does. `first_frame`: code the first frame of an animation or multi-page
    file (refused otherwise). `refine`: steps of the encoder's latent search (refine.py; 0 = off; each
    step costs about three decoder passes; images up to 1536² run it, bigger ones are coded without it).

    >>> import numpy as np, aecodec
    >>> data = aecodec.compress(np.full((20, 30, 3), 128, np.uint8), quality=50)
    >>> data[:4], aecodec.info(data)["width"]
    (b'\\x89AEC', 30)
    """
    quality = check_quality(quality)
    if isinstance(image, (str, Path)) or hasattr(image, "read"):
        image = open_image(image.read() if hasattr(image, "read") else image, max_pixels=max_pixels,  # type: ignore[union-attr]
                           first_frame=first_frame)
    with _timed(timings, "preprocess"):
        arr, mode, icc = to_pixels(image, first_frame=first_frame)  # type: ignore[arg-type]
        h, w = arr.shape[:2]
        check_size(w, h, max_pixels)
        if icc is not None and len(icc) > MAX_ICC_BYTES:
            raise InputError("ICC profile too large")
    if lossless:
        return _pack_lossless(arr, mode, icc, quality, timings)
    bundle = load_bundle(model)
    with _timed(timings, "preprocess"):
        rgb, alpha = split_alpha(arr, mode)
    if refine < 0:
        raise InputError(f"refine must be 0 or more steps, got {refine}")
    found = encode_latent_sections(bundle, rgb, quality, timings, refine)
    with _timed(timings, "entropy_encode"):
        if alpha is not None:
            found[container.SECTION_ALPHA] = sections.pack_alpha(np.ascontiguousarray(alpha).tobytes())
        if icc is not None:
            found[container.SECTION_ICC] = sections.pack_icc(icc)
        header = ImageHeader(quality=quality, model_id=bundle.model_id_bytes, width=w, height=h, mode=mode)
        learned = container.pack(AecFile(header, found))
    if lossless is None and model is None and lossless_coding.is_candidate(arr):
        exact = _pack_lossless(arr, mode, icc, quality, timings)
        if len(exact) <= len(learned):
            return exact
        with _timed(timings, "lossless"):
            decoded = join_planes(decode_latent_sections(bundle, container.unpack(learned)), mode, None)
            colours = arr.shape[2] - (alpha is not None)
            if psnr(decoded, arr[:, :, :colours]) < lossless_coding.quality_floor(quality):
                return exact
    return learned


def _pack_lossless(arr: np.ndarray, mode: str, icc: bytes | None, quality: int, timings: dict | None) -> bytes:
    """A version-3 file holding the image exactly (section 7; no model: the model id is all zeros)."""
    with _timed(timings, "lossless"):
        found = {container.SECTION_LOSSLESS: lossless_coding.encode(arr, mode)}
        if icc is not None:
            found[container.SECTION_ICC] = sections.pack_icc(icc)
        h, w = arr.shape[:2]
        header = ImageHeader(quality=quality, model_id=container.NO_MODEL_ID, width=w, height=h, mode=mode)
        return container.pack(AecFile(header, found))


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
    icc = None
    if container.SECTION_ICC in f.sections:
        icc = sections.unpack_icc(f.sections[container.SECTION_ICC], MAX_ICC_BYTES)
    if container.is_lossless(f):  # no model needed
        with _timed(timings, "lossless"):
            arr = lossless_coding.decode(f.sections[container.SECTION_LOSSLESS], hdr.width, hdr.height, hdr.mode)
        return arr, hdr.mode, icc
    bundle = bundle_for_id(hdr.model_id, model)
    rgb = decode_latent_sections(bundle, f, timings)
    with _timed(timings, "postprocess"):
        alpha = None
        if hdr.mode in ("LA", "RGBA"):
            if container.SECTION_ALPHA not in f.sections:
                raise FormatError("missing alpha section")
            raw = sections.unpack_alpha(f.sections[container.SECTION_ALPHA], hdr.width, hdr.height)
            alpha = np.frombuffer(raw, np.uint8).reshape(hdr.height, hdr.width)
        arr = join_planes(rgb, hdr.mode, alpha)
    return arr, hdr.mode, icc


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
    arr, mode, icc = decode_to_array(read_source(data), model=model, timings=timings, max_pixels=max_pixels)
    if as_array:
        return arr[:, :, 0] if arr.shape[2] == 1 else arr
    return to_image(arr, mode, icc)
