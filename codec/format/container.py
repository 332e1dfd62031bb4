"""The .aec container: fixed header, tagged sections, CRC32 trailer (see FORMAT.md).

This module knows bytes only; it never touches models or pixels. What is inside a section is
the business of format/sections.py (framing) and coding/ (entropy-coded streams).
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from ..errors import FormatError, UnsupportedVersionError

MAGIC = b"\x89AEC"
# A file carries the lowest version that defines its content: images of factorized models are
# version 1 (unchanged), audio needs version 2, images of hyperprior models (sections 5 and 6)
# version 3, lossless images (section 7) and audio with level or silence sections (8, 9) version 3,
# images of checkerboard-context models (section 10) version 4, audio with a bandwidth section (11) version 5.
# Decoders read every version listed here.
FORMAT_VERSION = 1
AUDIO_FORMAT_VERSION = 2
HYPERPRIOR_FORMAT_VERSION = 3
LOSSLESS_FORMAT_VERSION = 3
AUDIO_LEVEL_FORMAT_VERSION = 3
CONTEXT_FORMAT_VERSION = 4
AUDIO_BANDWIDTH_FORMAT_VERSION = 5
SUPPORTED_VERSIONS = (1, 2, 3, 4, 5)
# a lossless image needs no model: its model id field holds 16 zero bytes
NO_MODEL_ID = bytes(16)

MODALITY_IMAGE = 1
MODALITY_AUDIO = 2
MODALITY_NAMES = {MODALITY_IMAGE: "image", MODALITY_AUDIO: "audio"}

# colour modes of the original image (what decode gives back)
MODE_CODES = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}
MODE_NAMES = {v: k for k, v in MODE_CODES.items()}

# section tags; tags >= 128 are optional and skipped by decoders that do not know them
SECTION_LATENT = 1
SECTION_ALPHA = 2
SECTION_ICC = 3
SECTION_AUDIO_LATENT = 4
SECTION_HYPER_LATENT = 5  # ẑ of a hyperprior model (version 3)
SECTION_CONDITIONAL_LATENT = 6  # y symbols coded with the scales that ẑ gives (version 3)
SECTION_LOSSLESS = 7  # the whole image in a lossless coding, no model (version 3)
SECTION_AUDIO_LEVEL = 8  # per-block gain and DC corrections of each audio channel (version 3)
SECTION_AUDIO_SILENCE = 9  # runs of exact digital silence of each audio channel (version 3)
SECTION_CONTEXT_LATENT = 10  # the non-anchor y symbols of a checkerboard-context model (version 4)
SECTION_AUDIO_BANDWIDTH = 11  # per audio channel, the cutoff of the decoder's low-pass (version 5)
SECTION_NAMES = {SECTION_LATENT: "latent", SECTION_ALPHA: "alpha", SECTION_ICC: "icc",
                 SECTION_AUDIO_LATENT: "audio latent", SECTION_HYPER_LATENT: "hyper latent",
                 SECTION_CONDITIONAL_LATENT: "conditional latent", SECTION_LOSSLESS: "lossless",
                 SECTION_AUDIO_LEVEL: "audio level", SECTION_AUDIO_SILENCE: "audio silence",
                 SECTION_CONTEXT_LATENT: "context latent", SECTION_AUDIO_BANDWIDTH: "audio bandwidth"}
KNOWN_IMAGE_SECTIONS = {SECTION_LATENT, SECTION_ALPHA, SECTION_ICC, SECTION_HYPER_LATENT, SECTION_CONDITIONAL_LATENT,
                        SECTION_LOSSLESS, SECTION_CONTEXT_LATENT}
KNOWN_AUDIO_SECTIONS = {SECTION_AUDIO_LATENT, SECTION_AUDIO_LEVEL, SECTION_AUDIO_SILENCE, SECTION_AUDIO_BANDWIDTH}
AUDIO_CORRECTION_SECTIONS = {SECTION_AUDIO_LEVEL, SECTION_AUDIO_SILENCE}

_HEADER = struct.Struct("<4sBBBB16sIIBB")  # magic, version, modality, flags, quality, model id, w, h, mode, nsect
_AUDIO_HEADER = struct.Struct("<4sBBBB16sIQBB")  # ..., model id, sample rate, samples per channel, channels, nsect
_SECTION = struct.Struct("<BI")
_CRC = struct.Struct("<I")
HEADER_SIZE = _HEADER.size
MAX_DIMENSION = 1 << 20  # per side; the pixel budget is enforced by the codec
MAX_SAMPLE_RATE = 768_000
MAX_CHANNELS = 16
MAX_SAMPLES = 1 << 40


@dataclass
class ImageHeader:
    quality: int
    model_id: bytes  # 16 raw bytes
    width: int
    height: int
    mode: str
    modality: int = MODALITY_IMAGE
    version: int = FORMAT_VERSION


@dataclass
class AudioHeader:
    quality: int
    model_id: bytes
    sample_rate: int  # of the original
    num_samples: int  # per channel, of the original
    channels: int
    modality: int = MODALITY_AUDIO
    version: int = AUDIO_FORMAT_VERSION


@dataclass
class AecFile:
    header: ImageHeader | AudioHeader
    sections: dict[int, bytes] = field(default_factory=dict)


def _pack_sections(sections: dict[int, bytes]) -> bytes:
    parts = []
    for tag in sorted(sections):
        parts.append(_SECTION.pack(tag, len(sections[tag])))
        parts.append(sections[tag])
    return b"".join(parts)


def _seal(body: bytes) -> bytes:
    return body + _CRC.pack(zlib.crc32(body) & 0xFFFFFFFF)


def image_version(sections: dict[int, bytes]) -> int:
    """The format version an image file with these sections carries."""
    hyperprior = SECTION_CONDITIONAL_LATENT in sections or SECTION_HYPER_LATENT in sections
    if SECTION_LOSSLESS in sections:
        return LOSSLESS_FORMAT_VERSION
    if SECTION_CONTEXT_LATENT in sections:
        return CONTEXT_FORMAT_VERSION
    return HYPERPRIOR_FORMAT_VERSION if hyperprior else FORMAT_VERSION


def audio_version(sections: dict[int, bytes]) -> int:
    """The format version an audio file with these sections carries: 5 with a bandwidth section, else 3 with
    level or silence sections, else 2."""
    if SECTION_AUDIO_BANDWIDTH in sections:
        return AUDIO_BANDWIDTH_FORMAT_VERSION
    return AUDIO_LEVEL_FORMAT_VERSION if AUDIO_CORRECTION_SECTIONS & set(sections) else AUDIO_FORMAT_VERSION


def is_lossless(f: AecFile) -> bool:
    """An image file coded without a model (section 7)."""
    return isinstance(f.header, ImageHeader) and SECTION_LOSSLESS in f.sections


def pack(f: AecFile) -> bytes:
    h = f.header
    if isinstance(h, AudioHeader):
        if len(h.model_id) != 16 or SECTION_AUDIO_LATENT not in f.sections:
            raise FormatError("an audio file needs a 16-byte model id and an audio latent section")
        unknown = set(f.sections) - KNOWN_AUDIO_SECTIONS
        if any(tag < 128 for tag in unknown):
            raise FormatError(f"sections {sorted(unknown)} are not audio sections")
        head = _AUDIO_HEADER.pack(MAGIC, audio_version(f.sections), MODALITY_AUDIO, 0, h.quality, h.model_id,
                                  h.sample_rate, h.num_samples, h.channels, len(f.sections))
        return _seal(head + _pack_sections(f.sections))
    if h.mode not in MODE_CODES:
        raise FormatError(f"cannot store colour mode {h.mode!r}")
    if len(h.model_id) != 16:
        raise FormatError("model id must be 16 bytes")
    _check_latent_sections(f.sections, image_version(f.sections), h.model_id)
    head = _HEADER.pack(MAGIC, image_version(f.sections), h.modality, 0, h.quality, h.model_id, h.width, h.height,
                        MODE_CODES[h.mode], len(f.sections))
    return _seal(head + _pack_sections(f.sections))


def _check_latent_sections(sections: dict[int, bytes], version: int, model_id: bytes) -> None:
    """Version 1 files code the latent in one section; version 3 files in a hyper and a conditional one, or
    the whole image in a lossless section (no latent, no alpha section, no model); version 4 files in a
    hyper, a conditional and a context one."""
    if SECTION_CONTEXT_LATENT in sections and version < CONTEXT_FORMAT_VERSION:
        raise FormatError(f"the context latent section needs format version {CONTEXT_FORMAT_VERSION}")
    if SECTION_LOSSLESS in sections:
        if version < LOSSLESS_FORMAT_VERSION:
            raise FormatError(f"the lossless section needs format version {LOSSLESS_FORMAT_VERSION}")
        if {SECTION_LATENT, SECTION_HYPER_LATENT, SECTION_CONDITIONAL_LATENT, SECTION_CONTEXT_LATENT} & set(sections):
            raise FormatError("a lossless file cannot also hold latent sections")
        if SECTION_ALPHA in sections:
            raise FormatError("a lossless file holds its alpha inside the lossless section")
        if model_id != NO_MODEL_ID:
            raise FormatError("a lossless file must have an all-zero model id")
    elif version >= HYPERPRIOR_FORMAT_VERSION:
        if SECTION_HYPER_LATENT not in sections or SECTION_CONDITIONAL_LATENT not in sections:
            raise FormatError("missing hyper or conditional latent section")
        if SECTION_LATENT in sections:
            raise FormatError("a hyperprior file cannot also hold a factorized latent section")
        if version >= CONTEXT_FORMAT_VERSION and SECTION_CONTEXT_LATENT not in sections:
            raise FormatError(f"a version {version} image file needs a context latent section")
    else:
        if SECTION_LATENT not in sections:
            raise FormatError("missing latent section")
        if SECTION_HYPER_LATENT in sections or SECTION_CONDITIONAL_LATENT in sections:
            raise FormatError(f"hyperprior sections need format version {HYPERPRIOR_FORMAT_VERSION}")


def unpack(data: bytes) -> AecFile:
    """Parse and validate a whole file. Raises FormatError with a one-line reason."""
    data = bytes(data)
    if len(data) < 5 or data[:4] != MAGIC:
        raise FormatError("not an .aec file (bad magic)")
    version = data[4]
    if version not in SUPPORTED_VERSIONS:
        raise UnsupportedVersionError(
            f"unsupported .aec format version {version} (this aecodec reads version "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}); upgrade aecodec"
        )
    if len(data) < HEADER_SIZE + _CRC.size:
        raise FormatError("truncated .aec file (header incomplete)")
    body, (crc,) = data[:-4], _CRC.unpack(data[-4:])
    if zlib.crc32(body) & 0xFFFFFFFF != crc:
        raise FormatError("corrupt or truncated .aec file (CRC mismatch)")
    modality = body[5]
    if modality not in MODALITY_NAMES:
        raise FormatError(f"unknown modality {modality}")
    if modality == MODALITY_AUDIO:
        return _unpack_audio(body, version)
    magic, version, modality, flags, quality, model_id, width, height, mode, nsect = _HEADER.unpack_from(body)
    if mode not in MODE_NAMES:
        raise FormatError(f"unknown colour mode code {mode}")
    if not (1 <= quality <= 100):
        raise FormatError(f"quality {quality} out of range 1..100")
    if not (1 <= width <= MAX_DIMENSION and 1 <= height <= MAX_DIMENSION):
        raise FormatError(f"invalid image size {width}x{height}")
    if version > CONTEXT_FORMAT_VERSION:
        raise FormatError(f"format version {version} defines no image file (images are version 1, 3 or 4)")
    sections = _parse_sections(body, HEADER_SIZE, nsect, KNOWN_IMAGE_SECTIONS)
    _check_latent_sections(sections, version, model_id)
    header = ImageHeader(quality=quality, model_id=model_id, width=width, height=height,
                         mode=MODE_NAMES[mode], modality=modality, version=version)
    return AecFile(header, sections)


def _unpack_audio(body: bytes, version: int) -> AecFile:
    if version < AUDIO_FORMAT_VERSION:
        raise FormatError(f"audio needs format version {AUDIO_FORMAT_VERSION}, the file says {version}")
    if len(body) < _AUDIO_HEADER.size:
        raise FormatError("truncated .aec file (header incomplete)")
    _, _, _, _, quality, model_id, rate, samples, channels, nsect = _AUDIO_HEADER.unpack_from(body)
    if not (1 <= quality <= 100):
        raise FormatError(f"quality {quality} out of range 1..100")
    if not (1 <= rate <= MAX_SAMPLE_RATE):
        raise FormatError(f"invalid sample rate {rate}")
    if not (1 <= channels <= MAX_CHANNELS):
        raise FormatError(f"invalid channel count {channels}")
    if not (1 <= samples <= MAX_SAMPLES):
        raise FormatError(f"invalid length {samples} samples")
    sections = _parse_sections(body, _AUDIO_HEADER.size, nsect, KNOWN_AUDIO_SECTIONS)
    if SECTION_AUDIO_LATENT not in sections:
        raise FormatError("missing audio latent section")
    expected = audio_version(sections)
    if expected != version:
        if version not in (AUDIO_FORMAT_VERSION, AUDIO_LEVEL_FORMAT_VERSION, AUDIO_BANDWIDTH_FORMAT_VERSION):
            raise FormatError(f"format version {version} defines no audio file (audio is version 2, 3 or 5)")
        if version == AUDIO_BANDWIDTH_FORMAT_VERSION:
            raise FormatError(f"a version {version} audio file needs a bandwidth section")
        if expected == AUDIO_BANDWIDTH_FORMAT_VERSION:
            raise FormatError(f"the audio bandwidth section needs format version {AUDIO_BANDWIDTH_FORMAT_VERSION}")
        if version < AUDIO_LEVEL_FORMAT_VERSION:
            raise FormatError(f"audio level and silence sections need format version {AUDIO_LEVEL_FORMAT_VERSION}")
        raise FormatError(f"a version {version} audio file needs a level or silence section")
    return AecFile(AudioHeader(quality=quality, model_id=model_id, sample_rate=rate, num_samples=samples,
                               channels=channels, version=version), sections)


def _parse_sections(body: bytes, pos: int, nsect: int, known: set[int]) -> dict[int, bytes]:
    sections: dict[int, bytes] = {}
    for _ in range(nsect):
        if pos + _SECTION.size > len(body):
            raise FormatError("truncated .aec file (section header)")
        tag, length = _SECTION.unpack_from(body, pos)
        pos += _SECTION.size
        if pos + length > len(body):
            raise FormatError("truncated .aec file (section payload)")
        if tag in sections:
            raise FormatError(f"duplicate section {tag}")
        if tag < 128 and tag not in known:
            raise FormatError(f"unknown required section {tag}; upgrade aecodec")
        if tag in known:
            sections[tag] = body[pos : pos + length]
        pos += length
    if pos != len(body):
        raise FormatError("trailing bytes after the last section")
    return sections
