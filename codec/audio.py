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


READ_BLOCK = 1 << 16  # samples per block read from a file / fed to the resampler


class _Resampler:
    """Streaming soxr (VHQ) resampler for (n, channels) blocks with an exact total output length.

    soxr's stream gives the same samples as its one-shot call however the input is split (checked
    in the tests), so the array API and the streaming file path produce identical bytes.
    """

    def __init__(self, rate_in: int, rate_out: int, channels: int, total_out: int):
        self.stream = None
        if rate_in != rate_out:
            try:
                import soxr
            except ImportError:
                raise AecError("audio needs the soxr package: pip install 'aecodec[audio]'") from None
            self.stream = soxr.ResampleStream(rate_in, rate_out, channels, dtype="float32", quality="VHQ")
        self.channels = channels
        self.remaining = total_out

    def push(self, block: np.ndarray, last: bool) -> np.ndarray:
        block = np.ascontiguousarray(block, dtype=np.float32)
        out = self.stream.resample_chunk(block, last=last) if self.stream is not None else block
        out = out.reshape(-1, self.channels)[: self.remaining]
        if last and len(out) < self.remaining:  # pad the tail to the length the decoder expects
            out = np.concatenate([out, np.zeros((self.remaining - len(out), self.channels), np.float32)])
        self.remaining -= len(out)
        return out


def _model_length(num_samples: int, rate_in: int, rate_model: int) -> int:
    """Samples at the model rate for num_samples at rate_in (both sides compute it from the header)."""
    return -(-num_samples * rate_model // rate_in)


class _LatentEncoder:
    """Model-rate samples in (any block sizes), latent frames out: CHUNK_FRAMES per network call with
    HALO_FRAMES of context each side, so memory stays one chunk of audio and chunk borders are seamless."""

    def __init__(self, bundle: ModelBundle, frames: int):
        self.bundle, self.frames, self.hop = bundle, frames, bundle.downsample
        self.latent = np.empty((bundle.latent_channels, frames), np.float32)
        self.buffer = np.zeros(0, np.float32)
        self.buffer_frame = 0  # frame index of buffer[0]
        self.next_frame = 0

    def push(self, samples: np.ndarray) -> None:
        self.buffer = np.concatenate([self.buffer, samples])
        self._run(final=False)

    def finish(self) -> np.ndarray:
        need = (self.frames - self.buffer_frame) * self.hop
        self.buffer = np.concatenate([self.buffer, np.zeros(max(0, need - len(self.buffer)), np.float32)])
        self._run(final=True)
        return self.latent

    def _run(self, final: bool) -> None:
        hop, frames = self.hop, self.frames
        while self.next_frame < frames:
            f0 = self.next_frame
            f1 = min(frames, f0 + CHUNK_FRAMES)
            a0, a1 = max(0, f0 - HALO_FRAMES), min(frames, f1 + HALO_FRAMES)
            if not final and self.buffer_frame + len(self.buffer) // hop < a1:
                return
            window = self.buffer[(a0 - self.buffer_frame) * hop : (a1 - self.buffer_frame) * hop]
            y = self.bundle.run_encoder(np.ascontiguousarray(window)[None, None])[0]
            self.latent[:, f0:f1] = y[:, f0 - a0 : f1 - a0]
            self.next_frame = f1
            keep = max(0, f1 - HALO_FRAMES)
            self.buffer = self.buffer[(keep - self.buffer_frame) * hop :]
            self.buffer_frame = keep


def _quantise(latent: np.ndarray, gains: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(latent * gains), -(2**31), 2**31 - 1).astype(np.int32)


def _decode_frames(bundle: ModelBundle, symbols: list[np.ndarray], gains: np.ndarray):
    """Yield (samples, channels) model-rate blocks, one network call per channel per chunk."""
    hop = bundle.downsample
    frames = symbols[0].shape[1]
    for f0 in range(0, frames, CHUNK_FRAMES):
        f1 = min(frames, f0 + CHUNK_FRAMES)
        a0, a1 = max(0, f0 - HALO_FRAMES), min(frames, f1 + HALO_FRAMES)
        block = np.empty(((f1 - f0) * hop, len(symbols)), np.float32)
        for ch, sym in enumerate(symbols):
            y = np.ascontiguousarray((sym[:, a0:a1].astype(np.float32) / gains)[None])
            block[:, ch] = bundle.run_decoder(y)[0, 0][(f0 - a0) * hop : (f1 - a0) * hop]
        yield block, f1 == frames


def _array_blocks(arr: np.ndarray):
    for i in range(0, arr.shape[0], READ_BLOCK):
        yield arr[i : i + READ_BLOCK]


def _as_float(block: np.ndarray) -> np.ndarray:
    if block.dtype == np.int16:
        return block.astype(np.float32) / 32768.0
    if block.dtype == np.int32:
        return block.astype(np.float32) / 2147483648.0
    return block.astype(np.float32, copy=False)


def _encode_latents(bundle: ModelBundle, blocks, num_samples: int, channels: int, samplerate: int,
                    progress=None) -> list[np.ndarray]:
    """Stream (n, channels) blocks at samplerate through resampler and encoder: per-channel latents (D, frames)."""
    rate = int(bundle.manifest["sample_rate"])
    model_len = _model_length(num_samples, samplerate, rate)
    frames = -(-model_len // bundle.downsample)
    resampler = _Resampler(samplerate, rate, channels, model_len)
    encoders = [_LatentEncoder(bundle, frames) for _ in range(channels)]
    seen = 0
    for block in blocks:
        block = _as_float(np.asarray(block)).reshape(-1, channels)
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
    gains = bundle.gains[quality - 1][:, None]
    payload = []
    for latent in latents:
        stream = bundle.coder.encode(_quantise(latent, gains), quality)
        payload.append(struct.pack("<I", len(stream)) + stream)
    header = AudioHeader(quality=quality, model_id=bundle.model_id_bytes, sample_rate=int(samplerate),
                         num_samples=num_samples, channels=len(latents))
    return container.pack(AecFile(header, {container.SECTION_AUDIO_LATENT: b"".join(payload)}))


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
    from .image import _check_quality

    _check_bitrate(bitrate)
    quality = _check_quality(quality)
    arr = np.asarray(data)
    if not (arr.dtype in (np.int16, np.int32) or np.issubdtype(arr.dtype, np.floating)):
        raise InputError(f"audio samples must be float or int16/int32, got {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InputError(f"audio must be (samples,) or (samples, channels), got shape {np.shape(data)}")
    _check_audio_shape(arr.shape[0], arr.shape[1], samplerate, max_seconds)
    bundle = _audio_bundle(model)
    return _compress_stream(bundle, _array_blocks(arr), arr.shape[0], arr.shape[1], int(samplerate),
                            quality, bitrate)


def compress_audio_file(path: str | Path, quality: int = DEFAULT_AUDIO_QUALITY, *, model=None,
                        bitrate: float | None = None, max_seconds: float | None = None, progress=None) -> bytes:
    """An audio file (wav/flac/ogg... via libsndfile) -> .aec bytes, read in blocks: memory stays
    bounded however long the file is. Same bytes as compress_audio on the decoded samples.
    progress: called with the fraction read so far (0..1)."""
    from .image import _check_quality

    _check_bitrate(bitrate)
    quality = _check_quality(quality)
    sf = _soundfile()
    try:
        with sf.SoundFile(str(path)) as f:
            num_samples, channels, rate = f.frames, f.channels, f.samplerate
            if num_samples == 0:
                raise InputError(f"audio file {path} has no samples")
            _check_audio_shape(num_samples, channels, rate, max_seconds)
            bundle = _audio_bundle(model)
            blocks = f.blocks(blocksize=READ_BLOCK, dtype="float32", always_2d=True)
            return _compress_stream(bundle, blocks, num_samples, channels, rate, quality, bitrate, progress)
    except sf.LibsndfileError as e:
        raise InputError(f"cannot read audio {path}: {e}") from None


def _decode_blocks(data, model, max_seconds: float | None):
    """Parse and entropy-decode; return (header, iterator of (n, channels) float32 blocks at the original rate)."""
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
    model_len = _model_length(hdr.num_samples, hdr.sample_rate, rate)
    frames = -(-model_len // bundle.downsample)
    gains = bundle.gains[hdr.quality - 1][:, None]
    payload = f.sections[container.SECTION_AUDIO_LATENT]
    pos, symbols = 0, []
    for _ in range(hdr.channels):
        if pos + 4 > len(payload):
            raise FormatError("corrupt audio latent section (truncated)")
        (n,) = struct.unpack_from("<I", payload, pos)
        if pos + 4 + n > len(payload):
            raise FormatError("corrupt audio latent section (truncated)")
        symbols.append(bundle.coder.decode(payload[pos + 4 : pos + 4 + n], hdr.quality, 1, frames).reshape(-1, frames))
        pos += 4 + n
    if pos != len(payload):
        raise FormatError("corrupt audio latent section (trailing bytes)")

    def blocks():
        resampler = _Resampler(rate, hdr.sample_rate, hdr.channels, hdr.num_samples)
        produced = 0
        for block, last in _decode_frames(bundle, symbols, gains):
            if produced + len(block) >= model_len:  # drop the padding of the last frame
                block, last = block[: model_len - produced], True
            produced += len(block)
            out = resampler.push(block, last=last)
            if len(out):
                yield np.clip(out, -1.0, 1.0)
            if last:
                return

    return hdr, blocks()


def decompress_audio(data, *, model=None, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """.aec bytes (or path / file object) -> (float32 samples (n,) or (n, channels), original sample rate)."""
    hdr, blocks = _decode_blocks(data, model, max_seconds)
    out = np.empty((hdr.num_samples, hdr.channels), np.float32)
    pos = 0
    for block in blocks:
        out[pos : pos + len(block)] = block
        pos += len(block)
    return (out[:, 0] if hdr.channels == 1 else out), hdr.sample_rate


def decompress_audio_to_file(data, path_or_file, fmt: str, *, model=None, max_seconds: float | None = None,
                             progress=None) -> tuple[int, int, int]:
    """Decode .aec audio straight into a WAV/FLAC/OGG file (path or seekable binary file) block by
    block, so memory stays bounded. Returns (samples, channels, sample rate).
    progress: called with the fraction written so far (0..1)."""
    hdr, blocks = _decode_blocks(data, model, max_seconds)
    sf = _soundfile()
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


def _soundfile():
    try:
        import soundfile as sf
    except ImportError:
        raise AecError("audio needs the soundfile package: pip install 'aecodec[audio]'") from None
    return sf


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
