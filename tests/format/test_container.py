import struct
import zlib

import pytest

from aecodec.format import container, sections
from aecodec.format.container import AecFile, ImageHeader
from aecodec.errors import FormatError, UnsupportedVersionError


def _file() -> bytes:
    hdr = ImageHeader(quality=42, model_id=bytes(range(16)), width=33, height=7, mode="RGBA")
    secs = {container.SECTION_LATENT: b"\x01\x02\x03\x04", container.SECTION_ALPHA: b"alpha"}
    return container.pack(AecFile(hdr, secs))


def _recrc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_round_trip_header_and_sections():
    f = container.unpack(_file())
    assert (f.header.width, f.header.height, f.header.mode, f.header.quality) == (33, 7, "RGBA", 42)
    assert f.header.model_id == bytes(range(16))
    assert f.sections[container.SECTION_LATENT] == b"\x01\x02\x03\x04"
    assert f.sections[container.SECTION_ALPHA] == b"alpha"


def test_layout_is_as_documented():
    data = _file()
    assert data[:4] == b"\x89AEC" and data[4] == 1 and data[5] == 1  # magic, version, modality image
    assert data[7] == 42 and data[8:24] == bytes(range(16))
    assert struct.unpack_from("<II", data, 24) == (33, 7)
    assert data[32] == container.MODE_CODES["RGBA"] and data[33] == 2
    assert struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])


def test_bad_magic():
    with pytest.raises(FormatError, match="bad magic"):
        container.unpack(b"PNG\x00" + _file()[4:])


def test_newer_version_is_refused_clearly():
    data = bytearray(_file())
    data[4] = 9
    with pytest.raises(UnsupportedVersionError, match="version 9"):
        container.unpack(_recrc(bytes(data[:-4])))


def test_every_truncation_is_an_error():
    data = _file()
    for n in range(len(data)):
        with pytest.raises(FormatError):
            container.unpack(data[:n])


def test_bit_flip_is_detected():
    data = bytearray(_file())
    data[40] ^= 0x10
    with pytest.raises(FormatError, match="CRC"):
        container.unpack(bytes(data))


def test_unknown_required_section_is_refused_but_optional_skipped():
    with pytest.raises(FormatError, match="unknown required section"):
        container.unpack(_with_section(77))
    f = container.unpack(_with_section(200))
    assert 200 not in f.sections


def _with_section(tag: int) -> bytes:
    hdr = ImageHeader(quality=1, model_id=b"\0" * 16, width=1, height=1, mode="L")
    body = container.pack(AecFile(hdr, {container.SECTION_LATENT: b"abcd"}))[:-4]
    body = bytearray(body)
    body[33] += 1
    body += struct.pack("<BI", tag, 3) + b"xyz"
    return _recrc(bytes(body))


def test_invalid_header_fields():
    hdr = bytearray(_file()[:-4])
    for offset, value, message in ((7, 0, "quality"), (32, 9, "colour mode"), (5, 9, "modality")):
        bad = bytearray(hdr)
        bad[offset] = value
        with pytest.raises(FormatError, match=message):
            container.unpack(_recrc(bytes(bad)))
    bad = bytearray(hdr)
    struct.pack_into("<I", bad, 24, 0)
    with pytest.raises(FormatError, match="size"):
        container.unpack(_recrc(bytes(bad)))


def test_audio_header_round_trip_and_version_rule():
    hdr = container.AudioHeader(quality=50, model_id=b"\x01" * 16, sample_rate=44100, num_samples=12345, channels=2)
    data = container.pack(AecFile(hdr, {container.SECTION_AUDIO_LATENT: b"\0" * 8}))
    assert data[4] == 2 and data[5] == 2  # audio is format version 2; images stay version 1
    f = container.unpack(data)
    assert (f.header.sample_rate, f.header.num_samples, f.header.channels) == (44100, 12345, 2)
    bad = bytearray(data[:-4])
    bad[4] = 1  # audio in a version-1 file is invalid
    with pytest.raises(FormatError, match="version 2"):
        container.unpack(_recrc(bytes(bad)))
    bad = bytearray(data[:-4])
    struct.pack_into("<I", bad, 24, 0)
    with pytest.raises(FormatError, match="sample rate"):
        container.unpack(_recrc(bytes(bad)))


def test_hyperprior_files_are_version_3_with_both_latent_sections():
    hdr = ImageHeader(quality=5, model_id=bytes(16), width=64, height=64, mode="RGB")
    secs = {container.SECTION_HYPER_LATENT: b"zz", container.SECTION_CONDITIONAL_LATENT: b"yyyy"}
    data = container.pack(AecFile(hdr, secs))
    assert data[4] == container.HYPERPRIOR_FORMAT_VERSION == 3
    f = container.unpack(data)
    assert f.header.version == 3 and f.sections == secs
    for missing in secs:  # one of the two alone is not a file
        with pytest.raises(FormatError, match="missing hyper or conditional"):
            container.pack(AecFile(hdr, {k: v for k, v in secs.items() if k != missing}))
    with pytest.raises(FormatError, match="cannot also hold"):
        container.pack(AecFile(hdr, {**secs, container.SECTION_LATENT: b"x"}))


def test_context_files_are_version_4_with_hyper_conditional_and_context_sections():
    hdr = ImageHeader(quality=5, model_id=bytes(16), width=64, height=64, mode="RGB")
    secs = {container.SECTION_HYPER_LATENT: b"zz", container.SECTION_CONDITIONAL_LATENT: b"yyyy",
            container.SECTION_CONTEXT_LATENT: b"cccc"}
    data = container.pack(AecFile(hdr, secs))
    assert data[4] == container.CONTEXT_FORMAT_VERSION == 4
    f = container.unpack(data)
    assert f.header.version == 4 and f.sections == secs
    with pytest.raises(FormatError, match="missing hyper or conditional"):
        container.pack(AecFile(hdr, {container.SECTION_CONTEXT_LATENT: b"c", container.SECTION_HYPER_LATENT: b"z"}))
    body = bytearray(data[:-4])
    body[4] = 3  # a version 3 file may not carry the context section
    with pytest.raises(FormatError, match="needs format version 4"):
        container.unpack(_recrc(bytes(body)))
    with pytest.raises(FormatError, match="cannot also hold|needs format version 4"):  # lossless files are v3
        container.pack(AecFile(ImageHeader(quality=5, model_id=bytes(16), width=2, height=2, mode="RGB"),
                               {container.SECTION_LOSSLESS: b"x", container.SECTION_CONTEXT_LATENT: b"c"}))


def test_version_1_file_may_not_carry_hyperprior_sections():
    body = bytearray(_file()[:-4])
    # turn the alpha section (tag 2) into a hyper section (tag 5): version 1 files cannot have it
    pos = body.index(b"alpha") - 5
    body[pos] = container.SECTION_HYPER_LATENT
    with pytest.raises(FormatError, match="need format version 3"):
        container.unpack(_recrc(bytes(body)))


def test_lossless_files_are_version_3_without_model_latent_or_alpha():
    hdr = ImageHeader(quality=75, model_id=container.NO_MODEL_ID, width=3, height=2, mode="RGBA")
    secs = {container.SECTION_LOSSLESS: b"\x01zz", container.SECTION_ICC: b"icc"}
    data = container.pack(AecFile(hdr, secs))
    assert data[4] == container.LOSSLESS_FORMAT_VERSION == 3
    f = container.unpack(data)
    assert container.is_lossless(f) and f.sections == secs
    for extra, message in ((container.SECTION_ALPHA, "alpha"), (container.SECTION_LATENT, "latent"),
                           (container.SECTION_HYPER_LATENT, "latent")):
        with pytest.raises(FormatError, match=message):
            container.pack(AecFile(hdr, {**secs, extra: b"x"}))
    with pytest.raises(FormatError, match="all-zero model id"):
        container.pack(AecFile(ImageHeader(quality=75, model_id=b"\x01" * 16, width=3, height=2, mode="RGB"), secs))
    bad = bytearray(data[:-4])
    bad[4] = 1  # a version-1 file cannot carry the lossless section
    with pytest.raises(FormatError, match="need format version 3|needs format version 3"):
        container.unpack(_recrc(bytes(bad)))


def test_audio_with_level_or_silence_sections_is_version_3_and_plain_audio_stays_2():
    hdr = container.AudioHeader(quality=50, model_id=b"\x01" * 16, sample_rate=8000, num_samples=100, channels=1)
    plain = {container.SECTION_AUDIO_LATENT: b"\0" * 8}
    assert container.pack(AecFile(hdr, plain))[4] == 2
    for extra in (container.SECTION_AUDIO_LEVEL, container.SECTION_AUDIO_SILENCE):
        data = container.pack(AecFile(hdr, {**plain, extra: b"x"}))
        assert data[4] == container.AUDIO_LEVEL_FORMAT_VERSION == 3
        assert set(container.unpack(data).sections) == {container.SECTION_AUDIO_LATENT, extra}
        bad = bytearray(data[:-4])
        bad[4] = 2  # version 2 does not know sections 8 and 9
        with pytest.raises(FormatError, match="need format version 3"):
            container.unpack(_recrc(bytes(bad)))
    bad = bytearray(container.pack(AecFile(hdr, plain))[:-4])
    bad[4] = 3  # a version-3 audio file without them should have been version 2
    with pytest.raises(FormatError, match="level or silence"):
        container.unpack(_recrc(bytes(bad)))
    with pytest.raises(FormatError, match="not audio sections"):
        container.pack(AecFile(hdr, {**plain, container.SECTION_LOSSLESS: b"x"}))


def test_audio_with_a_bandwidth_section_is_version_5():
    hdr = container.AudioHeader(quality=50, model_id=b"\x01" * 16, sample_rate=24_000, num_samples=100, channels=2)
    secs = {container.SECTION_AUDIO_LATENT: b"\0" * 8,
            container.SECTION_AUDIO_BANDWIDTH: sections.pack_bandwidth([8160, 0])}
    for extra in ({}, {container.SECTION_AUDIO_LEVEL: b"x"}):
        data = container.pack(AecFile(hdr, {**secs, **extra}))
        assert data[4] == container.AUDIO_BANDWIDTH_FORMAT_VERSION == 5
        f = container.unpack(data)
        assert sections.unpack_bandwidth(f.sections[container.SECTION_AUDIO_BANDWIDTH], 2, 24_000) == [8160, 0]
    bad = bytearray(data[:-4])
    bad[4] = 3  # version 3 does not know section 11
    with pytest.raises(FormatError, match="needs format version 5"):
        container.unpack(_recrc(bytes(bad)))
    bad = bytearray(container.pack(AecFile(hdr, {container.SECTION_AUDIO_LATENT: b"\0" * 8}))[:-4])
    bad[4] = 5  # a version-5 audio file without it should have been version 2
    with pytest.raises(FormatError, match="needs a bandwidth section"):
        container.unpack(_recrc(bytes(bad)))
    for payload, rate in ((sections.pack_bandwidth([8160]), 24_000), (sections.pack_bandwidth([12_000, 0]), 24_000)):
        with pytest.raises(FormatError, match="audio bandwidth"):
            sections.unpack_bandwidth(payload, 2, rate)


def test_version_5_defines_no_image():
    hdr = ImageHeader(quality=75, model_id=container.NO_MODEL_ID, width=3, height=2, mode="RGB")
    bad = bytearray(container.pack(AecFile(hdr, {container.SECTION_LOSSLESS: b"\x01zz"}))[:-4])
    bad[4] = 5
    with pytest.raises(FormatError, match="defines no image"):
        container.unpack(_recrc(bytes(bad)))
