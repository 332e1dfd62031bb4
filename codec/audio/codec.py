"""Audio compression: waveform <-> model-rate chunks <-> latent <-> range-coded .aec bytes (format v2).

Each channel is resampled (soxr) to the model's rate, run through the encoder in chunks
(stream.py), quantised with the quality's gains and range coded (coding/); the decoder mirrors it
and resamples back to the original rate and exact length. Mirrors soundfile's convention:
compress_audio(data, samplerate), decompress_audio(...) -> (data, samplerate).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..coding import FactorizedCoding, check_quality
from ..errors import AecError, FormatError, InputError
from ..fileio import Source, read_source
from ..format import container, sections
from ..format.container import AecFile, AudioHeader
from ..models import DEFAULT_AUDIO_MODEL, ModelBundle, bundle_for_id, load_bundle
from .io import as_float, soundfile
from .stream import ChunkedEncoder, Resampler, decode_chunks, model_length

DEFAULT_AUDIO_QUALITY = 50
# Longest audio accepted (per call: max_seconds=...; CLI --max-seconds). Decoding also refuses
# more than MAX_SECONDS × 48 kHz × 2 channels samples in total, whatever the header's rate, so a
# hostile header cannot make it allocate more than ~4 GB of float32 output.
MAX_SECONDS = 3 * 3600
READ_BLOCK = 1 << 16  # samples per block read from a file / fed to the resampler


def audio_bundle(model: str | Path | ModelBundle | None) -> ModelBundle:
    """The audio model to encode with (default: the shipped one), refusing image models."""
    bundle = load_bundle(model, default=DEFAULT_AUDIO_MODEL)
    if bundle.manifest.modality != "audio":
        raise AecError(f"model {bundle.model_id} is not an audio model")
    return bundle


def _coding(bundle: ModelBundle) -> FactorizedCoding:
    if not isinstance(bundle.coding, FactorizedCoding):
        raise AecError(f"model {bundle.model_id}: audio supports factorized latent coding only")
    return bundle.coding


def _array_blocks(arr: np.ndarray):
    for i in range(0, arr.shape[0], READ_BLOCK):
        yield arr[i : i + READ_BLOCK]


def _encode_latents(bundle: ModelBundle, blocks, num_samples: int, channels: int, samplerate: int,
                    progress=None) -> list[np.ndarray]:
    """Stream (n, channels) blocks at samplerate through resampler and encoder: per-channel latents (D, frames)."""
    rate = bundle.manifest.sample_rate
    model_len = model_length(num_samples, samplerate, rate)
    frames = -(-model_len // bundle.manifest.downsample)
    resampler = Resampler(samplerate, rate, channels, model_len)
    encoders = [ChunkedEncoder(bundle, frames) for _ in range(channels)]
    seen = 0
    for block in blocks:
        block = as_float(np.asarray(block)).reshape(-1, channels)
        if not np.all(np.isfinite(block)):
            raise InputError("audio contains NaN or infinite samples")
        seen += len(block)
        resampled = np.clip(resampler.push(block, last=seen >= num_samples), -1.0, 1.0)
        for ch, enc in enumerate(encoders):
            enc.push(resampled[:, ch])
        if progress is not None:
            progress(seen / num_samples)
    if seen != num_samples:
        raise InputError(f"audio source gave {seen} samples, expected {num_samples}")
    return [enc.finish() for enc in encoders]


def _pack(bundle: ModelBundle, latents: list[np.ndarray], quality: int, samplerate: int, num_samples: int) -> bytes:
    coding = _coding(bundle)
    streams = [coding.encode(coding.quantise(latent, quality), quality) for latent in latents]
    header = AudioHeader(quality=quality, model_id=bundle.model_id_bytes, sample_rate=int(samplerate),
                         num_samples=num_samples, channels=len(latents))
    return container.pack(AecFile(header, {container.SECTION_AUDIO_LATENT: sections.pack_streams(streams)}))


def _compress_stream(bundle: ModelBundle, blocks, num_samples: int, channels: int, samplerate: int,
                     quality: int, bitrate: float | None, progress=None) -> bytes:
    latents = _encode_latents(bundle, blocks, num_samples, channels, samplerate, progress)
    if bitrate is None:
        return _pack(bundle, latents, quality, samplerate, num_samples)
    # the latents do not depend on the quality: search over quantisation + entropy coding only
    seconds = num_samples / samplerate
    lo, hi, best = 1, 100, None
    while lo <= hi:
        mid = (lo + hi) // 2
        out = _pack(bundle, latents, mid, samplerate, num_samples)
        if 8 * len(out) / seconds / 1000 <= bitrate:
            best, lo = out, mid + 1
        else:
            hi = mid - 1
    return best if best is not None else _pack(bundle, latents, 1, samplerate, num_samples)


def _check_audio_shape(num_samples: int, channels: int, samplerate, max_seconds: float | None) -> None:
    if num_samples < 1 or not 1 <= channels <= container.MAX_CHANNELS:
        raise InputError(f"audio must have 1.. samples and 1..{container.MAX_CHANNELS} channels, "
                         f"got {num_samples} samples x {channels} channels")
    if not isinstance(samplerate, (int, np.integer)) or not 1 <= samplerate <= container.MAX_SAMPLE_RATE:
        raise InputError(f"invalid sample rate {samplerate!r}")
    limit = max_seconds or MAX_SECONDS
    if num_samples > limit * samplerate:
        raise InputError(f"audio longer than {limit:g} s (raise the limit with max_seconds / --max-seconds)")


def _check_bitrate(bitrate: float | None) -> None:
    if bitrate is not None and not bitrate > 0:
        raise InputError(f"bitrate must be positive, got {bitrate!r}")


def compress_audio(data: np.ndarray, samplerate: int, quality: int = DEFAULT_AUDIO_QUALITY, *, model=None,
                   bitrate: float | None = None, max_seconds: float | None = None) -> bytes:
    """float or int16/int32 samples, shape (n,) or (n, channels), at any sample rate -> .aec bytes.

    bitrate (kbps, whole file): instead of quality, the highest quality whose file stays at or under
    it (the encoder network runs once; a binary search over quantisation + entropy coding; the
    lowest quality if none fits).
    """
    _check_bitrate(bitrate)
    quality = check_quality(quality)
    arr = np.asarray(data)
    if not (arr.dtype in (np.int16, np.int32) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"audio samples must be float or int16/int32, got {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InputError(f"audio must be (samples,) or (samples, channels), got shape {np.shape(data)}")
    _check_audio_shape(arr.shape[0], arr.shape[1], samplerate, max_seconds)
    bundle = audio_bundle(model)
    return _compress_stream(bundle, _array_blocks(arr), arr.shape[0], arr.shape[1], int(samplerate),
                            quality, bitrate)


def compress_audio_file(path: str | Path, quality: int = DEFAULT_AUDIO_QUALITY, *, model=None,
                        bitrate: float | None = None, max_seconds: float | None = None, progress=None) -> bytes:
    """An audio file (wav/flac/ogg... via libsndfile) -> .aec bytes, read in blocks: memory stays
    bounded however long the file is. Same bytes as compress_audio on the decoded samples.
    progress: called with the fraction read so far (0..1)."""
    _check_bitrate(bitrate)
    quality = check_quality(quality)
    sf = soundfile()
    try:
        with sf.SoundFile(str(path)) as f:
            num_samples, channels, rate = f.frames, f.channels, f.samplerate
            if num_samples == 0:
                raise InputError(f"audio file {path} has no samples")
            _check_audio_shape(num_samples, channels, rate, max_seconds)
            bundle = audio_bundle(model)
            blocks = f.blocks(blocksize=READ_BLOCK, dtype="float32", always_2d=True)
            return _compress_stream(bundle, blocks, num_samples, channels, rate, quality, bitrate, progress)
    except sf.LibsndfileError as e:
        raise InputError(f"cannot read audio {path}: {e}") from None


def _decode_blocks(data: Source, model, max_seconds: float | None):
    """Parse and entropy-decode; return (header, iterator of (n, channels) float32 blocks at the original rate)."""
    f = container.unpack(read_source(data))
    hdr = f.header
    if not isinstance(hdr, AudioHeader):
        raise FormatError("this .aec file holds an image, not audio (use aecodec.decompress)")
    limit = max_seconds or MAX_SECONDS
    if hdr.num_samples > limit * hdr.sample_rate or hdr.num_samples * hdr.channels > limit * 96_000:
        # checked before anything is allocated
        raise FormatError(f"audio longer than {limit:g} s (raise the limit with max_seconds / --max-seconds)")
    bundle = bundle_for_id(hdr.model_id, model)
    coding = _coding(bundle)
    rate = bundle.manifest.sample_rate
    model_len = model_length(hdr.num_samples, hdr.sample_rate, rate)
    frames = -(-model_len // bundle.manifest.downsample)
    streams = sections.unpack_streams(f.sections[container.SECTION_AUDIO_LATENT], hdr.channels, "audio latent")
    symbols = [coding.decode(s, hdr.quality, (frames,)) for s in streams]

    def blocks():
        resampler = Resampler(rate, hdr.sample_rate, hdr.channels, hdr.num_samples)
        produced = 0
        window = lambda ch, a0, a1: coding.dequantise(symbols[ch][:, a0:a1], hdr.quality)  # noqa: E731
        for block, last in decode_chunks(bundle, hdr.channels, frames, window):
            if produced + len(block) >= model_len:  # drop the padding of the last frame
                block, last = block[: model_len - produced], True
            produced += len(block)
            out = resampler.push(block, last=last)
            if len(out):
                yield np.clip(out, -1.0, 1.0)
            if last:
                return

    return hdr, blocks()


def decompress_audio(data: Source, *, model=None, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """.aec bytes (or path / file object) -> (float32 samples (n,) or (n, channels), original sample rate)."""
    hdr, blocks = _decode_blocks(data, model, max_seconds)
    out = np.empty((hdr.num_samples, hdr.channels), np.float32)
    pos = 0
    for block in blocks:
        out[pos : pos + len(block)] = block
        pos += len(block)
    return (out[:, 0] if hdr.channels == 1 else out), hdr.sample_rate


def decompress_audio_to_file(data: Source, path_or_file, fmt: str, *, model=None, max_seconds: float | None = None,
                             progress=None) -> tuple[int, int, int]:
    """Decode .aec audio straight into a WAV/FLAC/OGG file (path or seekable binary file) block by
    block, so memory stays bounded. Returns (samples, channels, sample rate).
    progress: called with the fraction written so far (0..1)."""
    hdr, blocks = _decode_blocks(data, model, max_seconds)
    sf = soundfile()
    subtype = "PCM_16" if fmt in ("WAV", "FLAC") else None
    with sf.SoundFile(path_or_file, "w", samplerate=hdr.sample_rate, channels=hdr.channels, format=fmt,
                      subtype=subtype) as f:
        written = 0
        for block in blocks:
            f.write(block)
            written += len(block)
            if progress is not None:
                progress(written / hdr.num_samples)
    return hdr.num_samples, hdr.channels, hdr.sample_rate
