"""Audio compression: waveform <-> model-rate chunks <-> latent <-> range-coded .aec bytes (format v2).

Each channel is resampled (soxr) to the model's rate, run through the encoder in chunks with a
halo of latent frames on both sides (so chunk borders are seamless and memory is bounded),
quantised with the quality's gains and range coded with the same integer tables as images. The
decoder mirrors it and resamples back to the original rate and exact length.
Mirrors soundfile's convention: compress_audio(data, samplerate), decompress_audio(...) -> (data, samplerate).
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from . import container
from .bundle import ModelBundle, bundle_for_id, load_bundle
from .container import AecFile, AudioHeader
from .errors import AecError, FormatError, InputError

DEFAULT_AUDIO_MODEL = "audio-edge"
DEFAULT_AUDIO_QUALITY = 50
CHUNK_FRAMES = 1500  # latent frames per network call (20 s at 75 Hz)
HALO_FRAMES = 8  # context frames each side (the transforms reach about 3)
# Longest audio accepted (per call: max_seconds=...; CLI --max-seconds). Decoding also refuses
# more than MAX_SECONDS × 48 kHz × 2 channels samples in total, whatever the header's rate, so a
# hostile header cannot make it allocate more than ~4 GB of float32 output.
MAX_SECONDS = 3 * 3600
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".caf"}


def _audio_bundle(model) -> ModelBundle:
    if model is None:
        try:
            return load_bundle(DEFAULT_AUDIO_MODEL)
        except AecError:
            raise AecError("no audio model ships with this version of aecodec yet; pass model=PATH "
                           "(CLI: --model) with a bundle from `python -m aecodec.export.audio`") from None
    bundle = load_bundle(model)
    if bundle.manifest.get("modality") != "audio":
        raise AecError(f"model {bundle.model_id} is not an audio model")
    return bundle


def _resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    if rate_in == rate_out:
        return x.astype(np.float32)
    try:
        import soxr
    except ImportError:
        raise AecError("audio needs the soxr package: pip install 'aecodec[audio]'") from None
    return soxr.resample(x.astype(np.float32), rate_in, rate_out, quality="VHQ").astype(np.float32)


def _encode_channel(bundle: ModelBundle, wave: np.ndarray, gains: np.ndarray) -> np.ndarray:
    hop = bundle.downsample
    frames = -(-len(wave) // hop)
    padded = np.zeros(frames * hop, np.float32)
    padded[: len(wave)] = wave
    symbols = np.empty((bundle.latent_channels, frames), np.int32)
    for f0 in range(0, frames, CHUNK_FRAMES):
        f1 = min(frames, f0 + CHUNK_FRAMES)
        a0, a1 = max(0, f0 - HALO_FRAMES), min(frames, f1 + HALO_FRAMES)
        y = bundle.run_encoder(np.ascontiguousarray(padded[a0 * hop : a1 * hop])[None, None])[0]
        symbols[:, f0:f1] = np.clip(np.rint(y[:, f0 - a0 : f1 - a0] * gains), -(2**31), 2**31 - 1)
    return symbols


def _decode_channel(bundle: ModelBundle, symbols: np.ndarray, gains: np.ndarray) -> np.ndarray:
    hop = bundle.downsample
    frames = symbols.shape[1]
    out = np.empty(frames * hop, np.float32)
    for f0 in range(0, frames, CHUNK_FRAMES):
        f1 = min(frames, f0 + CHUNK_FRAMES)
        a0, a1 = max(0, f0 - HALO_FRAMES), min(frames, f1 + HALO_FRAMES)
        y = np.ascontiguousarray((symbols[:, a0:a1].astype(np.float32) / gains)[None])
        w = bundle.run_decoder(y)[0, 0]
        out[f0 * hop : f1 * hop] = w[(f0 - a0) * hop : (f1 - a0) * hop]
    return out


def compress_audio(data: np.ndarray, samplerate: int, quality: int = DEFAULT_AUDIO_QUALITY, *, model=None,
                   bitrate: float | None = None, max_seconds: float | None = None) -> bytes:
    """float or int16 samples, shape (n,) or (n, channels), at any sample rate -> .aec bytes.

    bitrate (kbps, whole file): instead of quality, the highest quality whose file stays at or under
    it (binary search over qualities: about 7 encodes; the lowest quality if none fits).
    """
    from .image import _check_quality

    if bitrate is not None:
        if not bitrate > 0:
            raise InputError(f"bitrate must be positive, got {bitrate!r}")
        seconds = np.shape(data)[0] / samplerate if samplerate else 0
        lo, hi, best = 1, 100, None
        while lo <= hi:
            mid = (lo + hi) // 2
            out = compress_audio(data, samplerate, mid, model=model, max_seconds=max_seconds)
            if seconds and 8 * len(out) / seconds / 1000 <= bitrate:
                best, lo = out, mid + 1
            else:
                hi = mid - 1
        return best if best is not None else compress_audio(data, samplerate, 1, model=model, max_seconds=max_seconds)
    quality = _check_quality(quality)
    arr = np.asarray(data)
    if arr.dtype == np.int16:
        arr = arr.astype(np.float32) / 32768.0
    elif arr.dtype == np.int32:
        arr = arr.astype(np.float32) / 2147483648.0
    elif not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"audio samples must be float or int16/int32, got {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < 1 or not 1 <= arr.shape[1] <= container.MAX_CHANNELS:
        raise InputError(f"audio must be (samples,) or (samples, 1..{container.MAX_CHANNELS} channels), got {np.shape(data)}")
    if not isinstance(samplerate, (int, np.integer)) or not 1 <= samplerate <= container.MAX_SAMPLE_RATE:
        raise InputError(f"invalid sample rate {samplerate!r}")
    limit = max_seconds or MAX_SECONDS
    if arr.shape[0] > limit * samplerate:
        raise InputError(f"audio longer than {limit:g} s (raise the limit with max_seconds / --max-seconds)")
    if not np.all(np.isfinite(arr)):
        raise InputError("audio contains NaN or infinite samples")
    bundle = _audio_bundle(model)
    rate = int(bundle.manifest["sample_rate"])
    gains = bundle.gains[quality - 1][:, None]
    payload = []
    for ch in range(arr.shape[1]):
        wave = np.clip(_resample(arr[:, ch], int(samplerate), rate), -1.0, 1.0)
        stream = bundle.coder.encode(_encode_channel(bundle, wave, gains), quality)
        payload.append(struct.pack("<I", len(stream)) + stream)
    header = AudioHeader(quality=quality, model_id=bundle.model_id_bytes, sample_rate=int(samplerate),
                         num_samples=arr.shape[0], channels=arr.shape[1])
    return container.pack(AecFile(header, {container.SECTION_AUDIO_LATENT: b"".join(payload)}))


def decompress_audio(data, *, model=None, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """.aec bytes (or path / file object) -> (float32 samples (n,) or (n, channels), original sample rate)."""
    from .image import _read_source

    f = container.unpack(_read_source(data))
    hdr = f.header
    if not isinstance(hdr, AudioHeader):
        raise FormatError("this .aec file holds an image, not audio (use aecodec.decompress)")
    limit = max_seconds or MAX_SECONDS
    if hdr.num_samples > limit * hdr.sample_rate or hdr.num_samples * hdr.channels > limit * 96_000:
        # checked before anything is allocated
        raise FormatError(f"audio longer than {limit:g} s (raise the limit with max_seconds / --max-seconds)")
    bundle = bundle_for_id(hdr.model_id, model)
    rate = int(bundle.manifest["sample_rate"])
    hop = bundle.downsample
    model_len = int(np.ceil(hdr.num_samples * rate / hdr.sample_rate))
    frames = -(-model_len // hop)
    gains = bundle.gains[hdr.quality - 1][:, None]
    payload = f.sections[container.SECTION_AUDIO_LATENT]
    pos, out = 0, np.zeros((hdr.num_samples, hdr.channels), np.float32)
    for ch in range(hdr.channels):
        if pos + 4 > len(payload):
            raise FormatError("corrupt audio latent section (truncated)")
        (n,) = struct.unpack_from("<I", payload, pos)
        if pos + 4 + n > len(payload):
            raise FormatError("corrupt audio latent section (truncated)")
        symbols = bundle.coder.decode(payload[pos + 4 : pos + 4 + n], hdr.quality, 1, frames).reshape(-1, frames)
        pos += 4 + n
        wave = _decode_channel(bundle, symbols, gains)[:model_len]
        wave = _resample(wave, rate, hdr.sample_rate)
        k = min(len(wave), hdr.num_samples)
        out[:k, ch] = np.clip(wave[:k], -1.0, 1.0)
    if pos != len(payload):
        raise FormatError("corrupt audio latent section (trailing bytes)")
    return (out[:, 0] if hdr.channels == 1 else out), hdr.sample_rate


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode an audio file with libsndfile (wav, flac, ogg/vorbis/opus, mp3...), one-line errors."""
    try:
        import soundfile as sf
    except ImportError:
        raise AecError("audio needs the soundfile package: pip install 'aecodec[audio]'") from None
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except sf.LibsndfileError as e:
        raise InputError(f"cannot read audio {path}: {e}") from None
    if data.shape[0] == 0:
        raise InputError(f"audio file {path} has no samples")
    return data, rate


def write_audio(path_or_file, data: np.ndarray, samplerate: int, fmt: str | None = None) -> None:
    """Write with libsndfile; format from the extension (wav, flac, ogg) or fmt."""
    import soundfile as sf

    if fmt is None and isinstance(path_or_file, (str, Path)):
        fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".oga": "OGG"}.get(Path(path_or_file).suffix.lower())
    if fmt is None:
        raise InputError("unknown audio output format; use .wav, .flac or .ogg")
    subtype = "PCM_16" if fmt in ("WAV", "FLAC") else None
    sf.write(path_or_file, data, samplerate, format=fmt, subtype=subtype)
