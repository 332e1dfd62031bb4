"""Audio compression: waveform <-> model-rate chunks <-> latent <-> range-coded .aec bytes (format v2 / v3 / v5).

Each channel is resampled (soxr) to the model's rate, run through the encoder in chunks
(stream.py), quantised with the quality's gains and range coded (coding/); the decoder mirrors it
and resamples back to the original rate and exact length. The encoder then runs the decoder on its own
output and stores level / DC corrections and the runs of digital silence (level.py; format v3, sections
8 and 9), so the output keeps the input's level and mean and silence decodes to exact zeros; an input with an
empty top band (up-sampled from a lower rate) gets a cutoff that the decoder's low-pass applies (bandwidth.py;
format v5, section 11), so the model's noise does not fill that band. Mirrors
soundfile's convention: compress_audio(data, samplerate), decompress_audio(...) -> (data, samplerate).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..coding import FactorizedCoding, check_quality
from ..errors import AecError, FormatError, InputError, notify
from ..fileio import Source, read_source
from ..format import container, sections
from ..format.container import AecFile, AudioHeader
from ..models import DEFAULT_AUDIO_MODEL, ModelBundle, bundle_for_id, load_bundle
from . import level
from .bandwidth import BandwidthMeter, LowPass, cutoff_for
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


class Encoded:
    """What one pass over the input gives: per-channel float latents, the input's block statistics, its
    silent runs and the decoder's low-pass cutoffs (0: none). Everything after it (quantisation, the decoder
    pass, corrections) needs no input."""

    def __init__(self, latents: list[np.ndarray], stats: level.BlockStats, silence: list[np.ndarray],
                 cutoffs: list[int], num_samples: int, samplerate: int):
        self.latents, self.stats, self.silence, self.cutoffs = latents, stats, silence, cutoffs
        self.num_samples, self.samplerate = num_samples, samplerate


def _encode_latents(bundle: ModelBundle, blocks, num_samples: int, channels: int, samplerate: int,
                    progress=None) -> Encoded:
    """Stream (n, channels) blocks at samplerate through resampler and encoder: per-channel latents (D, frames),
    and on the way the level statistics, silent runs and bandwidth of the input."""
    rate = bundle.manifest.sample_rate
    model_len = model_length(num_samples, samplerate, rate)
    frames = -(-model_len // bundle.manifest.downsample)
    resampler = Resampler(samplerate, rate, channels, model_len)
    encoders = [ChunkedEncoder(bundle, frames) for _ in range(channels)]
    stats = level.BlockStats(channels, num_samples, level.block_length(samplerate))
    finder = level.SilenceFinder(channels, round(samplerate * level.MIN_SILENCE_SECONDS))
    meter = BandwidthMeter(channels, num_samples, samplerate)
    seen = 0
    for block in blocks:
        block = as_float(np.asarray(block)).reshape(-1, channels)
        if not np.all(np.isfinite(block)):
            raise InputError("audio contains NaN or infinite samples")
        stats.add(block, seen)
        finder.push(block)
        meter.push(block)
        seen += len(block)
        resampled = np.clip(resampler.push(block, last=seen >= num_samples), -1.0, 1.0)
        for ch, enc in enumerate(encoders):
            enc.push(resampled[:, ch])
        if progress is not None:
            progress(seen / num_samples)
    if seen != num_samples:
        raise InputError(f"audio source gave {seen} samples, expected {num_samples}")
    silence = finder.finish()
    stats.leave_out(silence)
    cutoffs = [cutoff_for(band, samplerate) for band in meter.finish()]
    return Encoded([enc.finish() for enc in encoders], stats, silence, cutoffs, num_samples, samplerate)


def _quiet_frames(bundle: ModelBundle, silence: list[np.ndarray], num_samples: int, samplerate: int,
                  frames: int) -> list[np.ndarray]:
    """Per channel, the latent frames that only reach digital silence: not coded, zero at the decoder."""
    return [level.silent_frames(runs, num_samples, samplerate, bundle.manifest.sample_rate,
                                bundle.manifest.downsample, frames) for runs in silence]


def _symbols(bundle: ModelBundle, encoded: Encoded, quality: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Quantised latents (frames of digital silence set to 0, as the decoder will see them) and those frames."""
    coding = _coding(bundle)
    quiet = _quiet_frames(bundle, encoded.silence, encoded.num_samples, encoded.samplerate,
                          encoded.latents[0].shape[1])
    out = []
    for latent, skip in zip(encoded.latents, quiet):
        symbols = coding.quantise(latent, quality)
        symbols[:, skip] = 0
        out.append(symbols)
    return out, quiet


def _reconstruct(bundle: ModelBundle, symbols: list[np.ndarray], quality: int, samplerate: int,
                 num_samples: int, cutoffs: list[int]) -> Iterator[np.ndarray]:
    """Symbols -> (n, channels) float32 blocks at the original rate, low-passed where a channel has a cutoff,
    clipped (the model's output before the level and silence corrections)."""
    coding = _coding(bundle)
    rate = bundle.manifest.sample_rate
    channels = len(symbols)
    model_len = model_length(num_samples, samplerate, rate)
    frames = -(-model_len // bundle.manifest.downsample)
    resampler = Resampler(rate, samplerate, channels, num_samples)
    lowpass = LowPass(samplerate, cutoffs) if any(cutoffs) else None
    produced = 0
    window = lambda ch, a0, a1: coding.dequantise(symbols[ch][:, a0:a1], quality)  # noqa: E731
    for block, last in decode_chunks(bundle, channels, frames, window):
        if produced + len(block) >= model_len:  # drop the padding of the last frame
            block, last = block[: model_len - produced], True
        produced += len(block)
        out = resampler.push(block, last=last)
        if lowpass is not None:
            out = lowpass.push(out, last=last)
        if len(out):
            yield np.clip(out, -1.0, 1.0)
        if last:
            return


def _corrections(bundle: ModelBundle, encoded: Encoded, symbols: list[np.ndarray], quality: int) -> dict[int, bytes]:
    """Run the decoder on the coded symbols and derive the level and silence sections (empty if not needed)."""
    source = encoded.stats
    decoded = level.BlockStats(len(symbols), encoded.num_samples, source.block)
    pos = 0
    for block in _reconstruct(bundle, symbols, quality, encoded.samplerate, encoded.num_samples, encoded.cutoffs):
        decoded.add(block, pos, encoded.silence)
        pos += len(block)
    gains, dcs = level.level_codes(source, decoded)
    found = {}
    if any(g.any() for g in gains) or any(d.any() for d in dcs):
        found[container.SECTION_AUDIO_LEVEL] = sections.pack_level(source.block, gains, dcs)
    if any(len(r) for r in encoded.silence):
        found[container.SECTION_AUDIO_SILENCE] = sections.pack_silence(encoded.silence)
    return found


def _pack(bundle: ModelBundle, encoded: Encoded, quality: int, corrected: bool = True) -> bytes:
    coding = _coding(bundle)
    symbols, quiet = _symbols(bundle, encoded, quality)
    streams = [coding.encode(np.ascontiguousarray(s[:, ~skip]), quality) for s, skip in zip(symbols, quiet)]
    found = {container.SECTION_AUDIO_LATENT: sections.pack_streams(streams)}
    if any(encoded.cutoffs):
        found[container.SECTION_AUDIO_BANDWIDTH] = sections.pack_bandwidth(encoded.cutoffs)
    if corrected:
        found.update(_corrections(bundle, encoded, symbols, quality))
    elif any(len(r) for r in encoded.silence):  # the frames left out need the silence section
        found[container.SECTION_AUDIO_SILENCE] = sections.pack_silence(encoded.silence)
    header = AudioHeader(quality=quality, model_id=bundle.model_id_bytes, sample_rate=int(encoded.samplerate),
                         num_samples=encoded.num_samples, channels=len(symbols))
    return container.pack(AecFile(header, found))


def _level_bound(encoded: Encoded) -> int:
    """The most bytes the level corrections can add to a file: section 8 with its framing (tag u8, length u32,
    block u32, per channel a u32 length and the zlib stream of 3 bytes a block, at worst zlib's compressBound).
    The latent and silence sections do not depend on them."""
    raw = 3 * sections.level_blocks(encoded.num_samples, encoded.stats.block)
    worst = raw + (raw >> 12) + (raw >> 14) + (raw >> 25) + 13
    return 1 + 4 + 4 + len(encoded.latents) * (4 + worst)


def _search_bitrate(bundle: ModelBundle, encoded: Encoded, bitrate: float) -> bytes:
    """The highest quality whose corrected file stays at or under bitrate kbps (quality 1 if none does).

    The latents do not depend on the quality, and a corrected file is its uncorrected one (latent and silence
    sections: quantisation + entropy coding, cheap) plus the level section, which needs a decoder pass (the
    cost). Sizes grow with the quality. So: binary-search the uncorrected sizes, make the corrected file at the
    highest quality that fits even with the largest level section possible (one decoder pass; it fits), then,
    from what its corrections really took, try a higher quality only where one could fit as well (rare)."""
    seconds = encoded.num_samples / encoded.samplerate

    def fits(size: int) -> bool:
        return 8 * size / seconds / 1000 <= bitrate

    plain: dict[int, int] = {}  # quality -> bytes of the file without the level section

    def plain_size(quality: int) -> int:
        if quality not in plain:
            plain[quality] = len(_pack(bundle, encoded, quality, corrected=False))
        return plain[quality]

    def highest(lo: int, hi: int, extra: int, near_hi: bool = True) -> int | None:
        """Highest quality in lo..hi whose uncorrected file plus extra bytes fits (None: not even lo's). Sizes
        grow with the quality: a binary search, first galloping down from hi when the answer is likely near it."""
        if lo > hi:
            return None
        good, bad = lo - 1, hi + 1  # fits / does not fit (lo - 1: none known to)
        if near_hi:
            step = 1
            while bad > lo:
                q = max(lo, bad - step)
                if fits(plain_size(q) + extra):
                    good = q
                    break
                bad, step = q, 2 * step
        while bad - good > 1:
            mid = (good + bad) // 2
            if fits(plain_size(mid) + extra):
                good = mid
            else:
                bad = mid
        return good if good >= lo else None

    top = highest(1, 100, 0, near_hi=False) or 1  # the corrected file of any higher quality is larger still
    ok: tuple[int, bytes] | None = None  # highest quality known to fit and its file
    above = top + 1  # lowest quality known not to fit
    quality = highest(1, top, _level_bound(encoded)) or 1
    while True:
        out = _pack(bundle, encoded, quality)  # a decoder pass
        level_bytes = len(out) - plain_size(quality)
        if fits(len(out)):
            ok = quality, out
            # a higher quality's corrections take about as much (a few bytes either way): try one only where it
            # would fit with them a byte and 1/64 smaller than these
            nxt = highest(quality + 1, above - 1, level_bytes - 1 - level_bytes // 64)
        else:
            above = quality
            nxt = highest(1, quality - 1, level_bytes) or 1
            if ok is not None and nxt <= ok[0]:
                nxt = None
            elif nxt == quality:  # quality 1 and it does not fit
                nxt = None
        if nxt is None:
            break
        quality = nxt
    best, out = ok if ok is not None else (quality, out)
    if not fits(len(out)):
        notify(f"{bitrate:g} kbps is below the lowest rate this model reaches for this audio: coded at quality 1 "
               f"({8 * len(out) / seconds / 1000:.2f} kbps)")
    elif best == 100 and bitrate > 1.05 * 8 * len(out) / seconds / 1000:
        notify(f"{bitrate:g} kbps is above the highest rate this model reaches for this audio: coded at quality "
               f"100 ({8 * len(out) / seconds / 1000:.2f} kbps)")
    return out


def _compress_stream(bundle: ModelBundle, blocks, num_samples: int, channels: int, samplerate: int,
                     quality: int, bitrate: float | None, progress=None) -> bytes:
    encoded = _encode_latents(bundle, blocks, num_samples, channels, samplerate, progress)
    if bitrate is None:
        return _pack(bundle, encoded, quality)
    return _search_bitrate(bundle, encoded, bitrate)


def _check_audio_shape(num_samples: int, channels: int, samplerate, max_seconds: float | None) -> None:
    if num_samples < 1 or not 1 <= channels <= container.MAX_CHANNELS:
        raise InputError(f"audio must have 1.. samples and 1..{container.MAX_CHANNELS} channels, "
                         f"got {num_samples} samples x {channels} channels")
    if not isinstance(samplerate, (int, np.integer)) or not 1 <= samplerate <= container.MAX_SAMPLE_RATE:
        raise InputError(f"invalid sample rate {samplerate!r}")
    limit = max_seconds or MAX_SECONDS
    if num_samples > limit * samplerate:
        raise InputError(f"audio longer than {limit:g} s (raise the limit with max_seconds / --max-seconds)")


def _quality(quality: int | None, bitrate: float | None) -> int:
    """The quality to code at: given, or the default; a bitrate replaces it (both given is an error)."""
    if bitrate is not None:
        if quality is not None:
            raise InputError("give a quality or a bitrate, not both")
        if not bitrate > 0:
            raise InputError(f"bitrate must be positive, got {bitrate!r}")
    return check_quality(DEFAULT_AUDIO_QUALITY if quality is None else quality)


def compress_audio(data: np.ndarray, samplerate: int, quality: int | None = None, *, model=None,
                   bitrate: float | None = None, max_seconds: float | None = None) -> bytes:
    """float or int16/int32 samples, shape (n,) or (n, channels), at any sample rate -> .aec bytes.

    quality: 1..100 (default 50). bitrate (kbps, whole file): instead of quality, the highest quality
    whose file stays at or under it (the encoder network runs once; a binary search over quantisation +
    entropy coding, then the decoder for the corrections, once in the usual case; the lowest quality if none
    fits, with a notice, as when it is above the highest).
    """
    quality = _quality(quality, bitrate)
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


def compress_audio_file(path: str | Path | BinaryIO, quality: int | None = None, *, model=None,
                        bitrate: float | None = None, max_seconds: float | None = None, progress=None,
                        name: str | None = None) -> bytes:
    """An audio file (wav/flac/ogg... via libsndfile; a path or a binary file object) -> .aec bytes, read
    in blocks: memory stays bounded however long the file is. Same bytes as compress_audio on the decoded
    samples. progress: called with the fraction read so far (0..1)."""
    quality = _quality(quality, bitrate)
    sf = soundfile()
    name = name or str(path)
    try:
        with sf.SoundFile(path if hasattr(path, "read") else str(path)) as f:
            num_samples, channels, rate = f.frames, f.channels, f.samplerate
            if num_samples == 0:
                raise InputError(f"audio file {name} has no samples")
            _check_audio_shape(num_samples, channels, rate, max_seconds)
            bundle = audio_bundle(model)
            blocks = f.blocks(blocksize=READ_BLOCK, dtype="float32", always_2d=True)
            return _compress_stream(bundle, blocks, num_samples, channels, rate, quality, bitrate, progress)
    except sf.LibsndfileError as e:
        raise InputError(f"cannot read audio {name}: {e}") from None


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
    corrections = level.Corrections()
    if container.SECTION_AUDIO_LEVEL in f.sections:
        corrections.block, corrections.gains, corrections.dcs = sections.unpack_level(
            f.sections[container.SECTION_AUDIO_LEVEL], hdr.channels, hdr.num_samples)
    if container.SECTION_AUDIO_SILENCE in f.sections:
        corrections.silence = sections.unpack_silence(f.sections[container.SECTION_AUDIO_SILENCE], hdr.channels,
                                                      hdr.num_samples)
    cutoffs = [0] * hdr.channels
    if container.SECTION_AUDIO_BANDWIDTH in f.sections:
        cutoffs = sections.unpack_bandwidth(f.sections[container.SECTION_AUDIO_BANDWIDTH], hdr.channels,
                                            hdr.sample_rate)
    bundle = bundle_for_id(hdr.model_id, model)
    coding = _coding(bundle)
    frames = -(-model_length(hdr.num_samples, hdr.sample_rate, bundle.manifest.sample_rate)
               // bundle.manifest.downsample)
    streams = sections.unpack_streams(f.sections[container.SECTION_AUDIO_LATENT], hdr.channels, "audio latent")
    silence = corrections.silence or [np.zeros((0, 2), np.int64)] * hdr.channels
    symbols = []
    for stream, skip in zip(streams, _quiet_frames(bundle, silence, hdr.num_samples, hdr.sample_rate, frames)):
        full = np.zeros((coding.channels, frames), np.int32)  # frames of digital silence are not coded: 0
        full[:, ~skip] = coding.decode(stream, hdr.quality, (int(np.count_nonzero(~skip)),))
        symbols.append(full)
    blocks = _reconstruct(bundle, symbols, hdr.quality, hdr.sample_rate, hdr.num_samples, cutoffs)
    return hdr, level.apply(blocks, corrections)


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
