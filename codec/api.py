"""The public entry points for whole files: one place that dispatches on modality.

An .aec file says what it holds (the header's modality byte), so decoding never guesses; an input
file's suffix says whether it is audio. The CLI, the Pillow plugin and batch jobs call these.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

from .audio import (AUDIO_SUFFIXES, OUTPUT_FORMATS, compress_audio_file, decompress_audio, decompress_audio_to_file,
                    looks_like_audio, write_audio)
from .errors import AecError, InputError
from .fileio import Source, atomic_output, read_source, write_atomic
from .format import container, sections
from .image import DEFAULT_QUALITY, compress, decompress, open_image
from .models import use_precision

IMAGE_OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
                        ".tiff": "TIFF", ".ppm": "PPM", ".pgm": "PPM", ".pnm": "PPM", ".tga": "TGA"}


def info(data: Source) -> dict:
    """Header facts of an .aec file given as bytes, path or file object (validates the CRC; needs no model)."""
    data = read_source(data)
    f = container.unpack(data)
    h = f.header
    found = {container.SECTION_NAMES.get(t, str(t)): len(p) for t, p in f.sections.items()}
    if isinstance(h, container.AudioHeader):
        seconds = h.num_samples / h.sample_rate
        return {"format_version": h.version, "modality": "audio", "sample_rate": h.sample_rate,
                "channels": h.channels, "samples": h.num_samples, "seconds": seconds, "quality": h.quality,
                "model_id": h.model_id.hex(), "bytes": len(data), "kbps": 8 * len(data) / seconds / 1000,
                "sections": found}
    return {"format_version": h.version, "modality": container.MODALITY_NAMES[h.modality], "width": h.width,
            "height": h.height, "mode": h.mode, "quality": h.quality, "coding": _image_coding(f),
            "model_id": h.model_id.hex(), "bytes": len(data), "bpp": 8 * len(data) / (h.width * h.height),
            "sections": found}


def _image_coding(f: container.AecFile) -> str:
    """'factorized', 'hyperprior', 'hyperprior-checkerboard' or 'lossless (webp)' / 'lossless (deflate)'."""
    if container.is_lossless(f):
        payload = f.sections[container.SECTION_LOSSLESS]
        return f"lossless ({sections.LOSSLESS_KINDS.get(payload[0] if payload else 0, '?')})"
    if container.SECTION_CONTEXT_LATENT in f.sections:
        return "hyperprior-checkerboard"
    return "hyperprior" if container.SECTION_HYPER_LATENT in f.sections else "factorized"


def modality_of(data: bytes) -> str:
    """'image' or 'audio' from an .aec header (after full validation)."""
    return container.MODALITY_NAMES[container.unpack(data).header.modality]


def is_audio_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in AUDIO_SUFFIXES


def encode_image_file(image, fmt: str) -> bytes:
    """A decoded PIL image in a standard format (PNG, JPEG, WEBP, ...), ICC profile kept."""
    save_args: dict[str, Any] = {}
    if image.info.get("icc_profile"):
        save_args["icc_profile"] = image.info["icc_profile"]
    if fmt == "JPEG" and image.mode in ("LA", "RGBA"):
        raise InputError("JPEG cannot store the alpha channel; write .png or .webp")
    if fmt in ("WEBP", "JPEG"):
        save_args["quality"] = 95
    buf = io.BytesIO()
    try:
        image.save(buf, format=fmt, **save_args)
    except (OSError, KeyError, ValueError) as e:
        raise AecError(f"cannot write {fmt}: {e}") from None
    return buf.getvalue()


def compress_to(source: str | bytes, output: str, *, quality: int | None = None, overwrite: bool = False,
                model=None, bitrate: float | None = None, max_pixels: int | None = None,
                max_seconds: float | None = None, name: str | None = None, timings: dict | None = None,
                progress=None, lossless: bool | None = None, first_frame: bool = False,
                precision: str | None = None, refine: int = 0) -> dict:
    """Compress an image or audio file (a path, or the bytes of a file) into `output` ('-' = stdout), atomically.

    Returns what was done: modality, bytes, quality, and size / length facts. An .aec input is refused:
    decoding and re-encoding a lossy file only adds loss. `precision` ("auto", "fp32", "int8", "fp16"):
    the model's graph variant (the file decodes with any variant). `refine`: steps of the encoder's latent
    search for images (slower encoding, smaller files at the same quality; `aecodec.compress`).
    """
    with use_precision(precision):
        return _compress_to(source, output, quality=quality, overwrite=overwrite, model=model, bitrate=bitrate,
                            max_pixels=max_pixels, max_seconds=max_seconds, name=name, timings=timings,
                            progress=progress, lossless=lossless, first_frame=first_frame, refine=refine)


def _compress_to(source: str | bytes, output: str, *, quality: int | None, overwrite: bool, model, bitrate: float | None,
                 max_pixels: int | None, max_seconds: float | None, name: str | None, timings: dict | None, progress,
                 lossless: bool | None, first_frame: bool, refine: int = 0) -> dict:
    label = name or (str(source) if isinstance(source, (str, Path)) else "input")
    if isinstance(source, (str, Path)) and Path(source).suffix.lower() == ".aec":
        raise InputError(f"{label} is already an .aec file (decompress it first; re-encoding only adds loss)")
    audio_source: str | Path | io.BytesIO | None = None
    raw = b""
    if isinstance(source, (str, Path)) and is_audio_path(source):
        if not Path(source).exists():
            raise FileNotFoundError(2, "no such file", str(source))
        audio_source = source
    else:
        raw = read_source(source)
        if not raw:
            raise InputError("input is empty")
        if raw[:4] == container.MAGIC:
            raise InputError(f"{label} is already an .aec file (decompress it first; re-encoding only adds loss)")
        if looks_like_audio(raw):
            audio_source = io.BytesIO(raw)
    if audio_source is not None:
        if lossless:
            raise InputError("lossless coding is for images; audio is always coded with the model")
        if refine:
            raise InputError(f"{label} is audio: the latent search (refine) is for images")
        data = compress_audio_file(audio_source, quality=quality, model=model, bitrate=bitrate,
                                   max_seconds=max_seconds, progress=progress, name=label)
        write_atomic(output, data, overwrite)
        return {**info(data), "bytes": len(data)}
    if bitrate is not None:
        raise InputError(f"{label} is an image: a bitrate (-b) applies to audio only; use the quality (-q)")
    image = open_image(raw, name=label, max_pixels=max_pixels, first_frame=first_frame)
    q = DEFAULT_QUALITY if quality is None else quality
    data = compress(image, quality=q, model=model, max_pixels=max_pixels, timings=timings, lossless=lossless,
                    first_frame=first_frame, refine=refine)
    write_atomic(output, data, overwrite)
    return info(data)


def decompress_to(data: bytes, output: str, *, fmt: str | None = None, overwrite: bool = False, model=None,
                  max_pixels: int | None = None, max_seconds: float | None = None, timings: dict | None = None,
                  progress=None, precision: str | None = None) -> dict:
    """Decode .aec bytes into `output` ('-' = stdout): an image in `fmt` (or the output's extension), or
    audio (WAV/FLAC/OGG from the extension; WAV on stdout). Written atomically; returns facts.
    `precision`: the model's graph variant, as for `compress_to`."""
    with use_precision(precision):
        return _decompress_to(data, output, fmt=fmt, overwrite=overwrite, model=model, max_pixels=max_pixels,
                              max_seconds=max_seconds, timings=timings, progress=progress)


def _decompress_to(data: bytes, output: str, *, fmt: str | None, overwrite: bool, model, max_pixels: int | None,
                   max_seconds: float | None, timings: dict | None, progress) -> dict:
    if modality_of(data) == "audio":
        if output == "-":  # a pipe cannot be seeked back to patch the WAV header: decode in memory
            samples, rate = decompress_audio(data, model=model, max_seconds=max_seconds)
            buf = io.BytesIO()
            write_audio(buf, samples, rate, fmt="WAV")
            write_atomic(output, buf.getvalue(), overwrite)
            n, channels = len(samples), 1 if samples.ndim == 1 else samples.shape[1]
        else:  # streamed block by block into a temp file beside the target, then renamed
            suffix = Path(output).suffix.lower()
            if suffix not in OUTPUT_FORMATS:
                raise InputError(f"audio output must be .wav, .flac or .ogg, not {suffix or '(none)'}")
            with atomic_output(output, overwrite) as tmp:
                n, channels, rate = decompress_audio_to_file(data, tmp, OUTPUT_FORMATS[suffix], model=model,
                                                             max_seconds=max_seconds, progress=progress)
        return {"modality": "audio", "samples": n, "channels": channels, "sample_rate": rate, "seconds": n / rate}
    if fmt is None:
        suffix = Path(output).suffix.lower() if output != "-" else ".png"
        fmt = IMAGE_OUTPUT_FORMATS.get(suffix)
        if fmt is None:
            raise InputError(f"unknown output format {suffix or '(no extension)'!r}; use .png, .jpg, .webp, .bmp, .tif")
    if output != "-" and Path(output).exists() and not overwrite:
        raise AecError(f"{output} already exists (use -f to overwrite)")
    image = decompress(data, model=model, max_pixels=max_pixels, timings=timings)
    assert isinstance(image, Image.Image)
    write_atomic(output, encode_image_file(image, fmt.upper()), overwrite)
    return {"modality": "image", "width": image.size[0], "height": image.size[1], "mode": image.mode}


def compress_file(src: str | Path, dst: str | Path, quality: int | None = None, *, overwrite: bool = False,
                  model=None, bitrate: float | None = None, lossless: bool | None = None,
                  first_frame: bool = False, refine: int = 0) -> int:
    """Compress an image or audio file to an .aec file; returns the number of bytes written."""
    return int(compress_to(str(src), str(dst), quality=quality, overwrite=overwrite, model=model,
                           bitrate=bitrate, lossless=lossless, first_frame=first_frame, refine=refine)["bytes"])


def decompress_file(src: str | Path, dst: str | Path, *, overwrite: bool = False, model=None) -> None:
    """Decompress an .aec file to an image (format from dst's extension) or audio file (.wav/.flac/.ogg)."""
    decompress_to(read_source(src), str(dst), overwrite=overwrite, model=model)
