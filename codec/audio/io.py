"""Audio files through libsndfile (soundfile) and sample-format conversion; one-line errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import AecError, InputError

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".caf"}
OUTPUT_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".oga": "OGG"}


def looks_like_audio(head: bytes) -> bool:
    """Whether bytes start like an audio file libsndfile reads (WAV, RF64, W64, FLAC, Ogg, AIFF, AU, CAF, MP3):
    how a pipe on stdin is told from an image."""
    if head[:4] in (b"fLaC", b"OggS", b".snd", b"caff", b"ID3\x03", b"ID3\x04", b"ID3\x02"):
        return True
    if head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
        return True
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return True
    if head[:4] == b"riff" and head[24:28] == b"wave":  # Sony Wave64
        return True
    return len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06 != 0  # MPEG audio frame


def soundfile():
    """The soundfile module, or a one-line error naming the extra to install."""
    try:
        import soundfile as sf
    except ImportError:
        raise AecError("audio needs the soundfile package: pip install 'aecodec[audio]'") from None
    return sf


def as_float(block: np.ndarray) -> np.ndarray:
    """int16 / int32 / float samples -> float32 in [-1, 1) scale."""
    if block.dtype == np.int16:
        return block.astype(np.float32) / 32768.0
    if block.dtype == np.int32:
        return block.astype(np.float32) / 2147483648.0
    return block.astype(np.float32, copy=False)


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode an audio file with libsndfile (wav, flac, ogg/vorbis/opus, mp3...), one-line errors."""
    sf = soundfile()
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except sf.LibsndfileError as e:
        raise InputError(f"cannot read audio {path}: {e}") from None
    if data.shape[0] == 0:
        raise InputError(f"audio file {path} has no samples")
    return data, rate


def write_audio(path_or_file, data: np.ndarray, samplerate: int, fmt: str | None = None) -> None:
    """Write with libsndfile; format from the extension (wav, flac, ogg) or fmt."""
    sf = soundfile()
    if fmt is None and isinstance(path_or_file, (str, Path)):
        fmt = OUTPUT_FORMATS.get(Path(path_or_file).suffix.lower())
    if fmt is None:
        raise InputError("unknown audio output format; use .wav, .flac or .ogg")
    subtype = "PCM_16" if fmt in ("WAV", "FLAC") else None
    sf.write(path_or_file, data, samplerate, format=fmt, subtype=subtype)
