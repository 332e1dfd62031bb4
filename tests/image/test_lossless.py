"""Lossless mode (format section 7): exact round trips, the automatic policy, files that need no model."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

import aecodec
from aecodec.errors import FormatError
from aecodec.format import container, sections
from aecodec.image import lossless

from tests.conftest import natural_image


def graphic(h: int = 60, w: int = 80, mode: str = "RGB") -> Image.Image:
    """A chart-like image: flat background, a few coloured shapes and lines (a handful of colours)."""
    img = Image.new("RGBA", (w, h), (250, 250, 245, 255))
    d = ImageDraw.Draw(img)
    d.rectangle([w // 8, h // 6, w // 2, h // 2], fill=(200, 30, 30, 255))
    d.ellipse([w // 3, h // 3, w - 4, h - 4], fill=(20, 90, 200, 128 if "A" in mode else 255))
    d.line([(0, h - 1), (w - 1, 0)], fill=(0, 0, 0, 255), width=2)
    return img.convert(mode)


def _sections(data: bytes) -> set:
    return set(container.unpack(data).sections)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
@pytest.mark.parametrize("size", [(1, 1), (7, 5), (60, 80)])
def test_forced_lossless_is_exact_in_every_mode(mode, size):
    img = graphic(*size, mode=mode) if size[0] > 1 else Image.new(mode, (1, 1), 200 if mode in ("L", "LA") else None)
    data = aecodec.compress(img, lossless=True)
    assert data[4] == container.LOSSLESS_FORMAT_VERSION == 3
    assert _sections(data) == {container.SECTION_LOSSLESS}
    back = aecodec.decompress(data)
    assert back.mode == mode and np.array_equal(np.asarray(back), np.asarray(img))


def test_both_codings_round_trip_and_the_smaller_is_kept():
    noise = np.random.default_rng(0).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    flat = np.asarray(graphic(120, 160))
    for arr, kind in ((noise, sections.LOSSLESS_DEFLATE), (flat, sections.LOSSLESS_WEBP)):
        payload = lossless.encode(arr, "RGB")
        assert payload[0] == kind
        assert np.array_equal(lossless.decode(payload, arr.shape[1], arr.shape[0], "RGB"), arr)
    # RGB under fully transparent pixels is kept too (WebP's `exact`)
    rgba = np.asarray(graphic(64, 64, "RGBA")).copy()
    rgba[:8, :8] = [17, 99, 3, 0]
    payload = lossless.encode(rgba, "RGBA")
    assert np.array_equal(lossless.decode(payload, 64, 64, "RGBA"), rgba)


def test_graphics_and_tiny_images_are_coded_losslessly_automatically():
    chart = graphic(90, 120)
    auto = aecodec.compress(chart)
    learned = aecodec.compress(chart, lossless=False)
    assert _sections(auto) == {container.SECTION_LOSSLESS} and len(auto) < len(learned)
    assert np.array_equal(aecodec.decompress(auto, as_array=True), np.asarray(chart))
    icon = Image.fromarray(np.random.default_rng(1).integers(0, 4, (7, 7), dtype=np.uint8) * 80)  # 7x7, 4 greys
    assert _sections(aecodec.compress(icon)) == {container.SECTION_LOSSLESS}
    bilevel = Image.fromarray(np.random.default_rng(2).random((40, 40)) > 0.5).convert("1")
    assert aecodec.info(aecodec.compress(bilevel))["coding"].startswith("lossless")


def test_photos_are_unchanged_by_the_policy(photo):
    """Photos (and tiny photo crops) give the same bytes as with lossless=False: the learned codec."""
    for img, q in ((photo, 75), (natural_image(24, 31, seed=4, channels=4), 60), (natural_image(33, 40, seed=3), 5)):
        auto = aecodec.compress(img, quality=q)
        assert auto == aecodec.compress(img, quality=q, lossless=False)
        assert container.SECTION_LOSSLESS not in _sections(auto)


def test_quality_floor_grows_with_quality():
    assert lossless.quality_floor(1) == 12 and lossless.quality_floor(100) == 24
    assert not lossless.is_candidate(natural_image(96, 128))
    assert lossless.is_candidate(np.asarray(graphic(300, 300))[:, :, :3])


def test_lossless_files_need_no_model(tmp_path):
    data = aecodec.compress(graphic(30, 40, "RGBA"), lossless=True)
    facts = aecodec.info(data)
    assert facts["model_id"] == "0" * 32 and facts["coding"] in ("lossless (webp)", "lossless (deflate)")
    out = aecodec.decompress(data, model=tmp_path / "no-such-bundle")  # the model argument is not even looked at
    assert out.size == (40, 30)


def test_icc_profile_is_kept_with_lossless():
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img = graphic(20, 20)
    img.info["icc_profile"] = icc
    data = aecodec.compress(img, lossless=True)
    assert _sections(data) == {container.SECTION_LOSSLESS, container.SECTION_ICC}
    assert aecodec.decompress(data).info["icc_profile"] == icc


def _reseal(hdr: container.ImageHeader, secs: dict) -> bytes:
    body = container.pack(container.AecFile(hdr, secs))[:-4]
    return body + struct.pack("<I", zlib.crc32(body))


def test_corrupt_lossless_sections_are_format_errors():
    hdr = container.ImageHeader(quality=75, model_id=bytes(16), width=4, height=3, mode="RGB")
    good = sections.pack_lossless(sections.LOSSLESS_DEFLATE, zlib.compress(bytes(36)))
    assert aecodec.decompress(_reseal(hdr, {container.SECTION_LOSSLESS: good}), as_array=True).shape == (3, 4, 3)
    webp_header = b"RIFF\x10\0\0\0WEBPVP8L" + b"\0" * 8
    wrong_size, lossy = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (5, 3)).save(wrong_size, "WEBP", lossless=True)
    Image.new("RGB", (4, 3)).save(lossy, "WEBP", quality=50)
    for bad in (b"\x01", b"\x09abc", sections.pack_lossless(sections.LOSSLESS_DEFLATE, zlib.compress(bytes(35))),
                b"\x01" + b"not zlib", b"\x02" + b"GIF89a" + b"\0" * 30, b"\x02" + webp_header,
                b"\x02" + wrong_size.getvalue(), b"\x02" + lossy.getvalue()):
        with pytest.raises(FormatError):
            aecodec.decompress(_reseal(hdr, {container.SECTION_LOSSLESS: bad}))
