"""Inputs the model cannot code as they are: CMYK and ICC (colour management), 16-bit, frames, .aec files."""
import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms

import aecodec
from aecodec.errors import AecNotice, InputError
from aecodec.image import pixels

from tests.conftest import natural_image
from tests.image.profiles import cmyk_profile, tiff16


def notices(fn, *args, **kwargs):
    """(result, notice messages) of a call."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    return result, [str(w.message) for w in caught if issubclass(w.category, AecNotice)]


def cmyk_jpeg(icc: bytes | None) -> bytes:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (16, 24, 4), dtype=np.uint8), "CMYK")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, **({"icc_profile": icc} if icc else {}))
    return buf.getvalue()


def test_cmyk_with_a_profile_is_colour_managed_into_srgb():
    icc = cmyk_profile()
    data = cmyk_jpeg(icc)
    (arr, mode, out_icc), found = notices(lambda: pixels.to_pixels(aecodec.open_image(data)))
    assert mode == "RGB" and not found
    reference = Image.open(io.BytesIO(data))
    srgb = ImageCms.ImageCmsProfile(io.BytesIO(pixels.srgb_profile()))
    managed = ImageCms.profileToProfile(reference, ImageCms.ImageCmsProfile(io.BytesIO(icc)), srgb, outputMode="RGB")
    assert np.array_equal(arr, np.asarray(managed))
    assert not np.array_equal(arr, np.asarray(reference.convert("RGB")))  # not Pillow's naive formula
    assert ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(out_icc))).strip() == "sRGB built-in"
    back = aecodec.decompress(aecodec.compress(io.BytesIO(data), lossless=True))
    assert back.info["icc_profile"] == pixels.srgb_profile() and np.array_equal(np.asarray(back), arr)


def test_srgb_profile_is_deterministic():
    assert pixels.srgb_profile() == pixels.srgb_profile()


def test_cmyk_without_a_profile_says_so():
    (arr, mode, icc), found = notices(lambda: pixels.to_pixels(aecodec.open_image(cmyk_jpeg(None), name="x.jpg")))
    assert mode == "RGB" and icc is None
    assert len(found) == 1 and "x.jpg" in found[0] and "without colour management" in found[0]


def _png16(arr: np.ndarray, colour_type: int) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit RGB)."""
    h, w = arr.shape[:2]
    raw = b"".join(b"\0" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _sixteen_bit_inputs():
    rng = np.random.default_rng(3)
    grey = rng.integers(0, 65536, (6, 7), dtype=np.uint16)
    grey_alpha = rng.integers(0, 65536, (6, 7, 2), dtype=np.uint16)
    rgb = rng.integers(0, 65536, (6, 7, 3), dtype=np.uint16)
    rgba = rng.integers(0, 65536, (6, 7, 4), dtype=np.uint16)
    grey_tiff = io.BytesIO()
    Image.fromarray(grey).save(grey_tiff, "TIFF")
    return {
        "grey.png": (_png16(grey, 0), grey, "L"), "grey_alpha.png": (_png16(grey_alpha, 4), grey_alpha, "LA"),
        "rgb.png": (_png16(rgb, 2), rgb, "RGB"), "rgba.png": (_png16(rgba, 6), rgba, "RGBA"),
        "grey.tif": (grey_tiff.getvalue(), grey, "L"), "rgb.tif": (tiff16(rgb), rgb, "RGB"),
        "rgba.tif": (tiff16(rgba), rgba, "RGBA"),
    }


@pytest.mark.parametrize("name", list(_sixteen_bit_inputs()))
def test_every_16_bit_input_is_reduced_with_one_notice(name):
    data, samples, mode = _sixteen_bit_inputs()[name]
    (arr, got_mode, _), found = notices(lambda: pixels.to_pixels(aecodec.open_image(data, name=name)))
    assert got_mode == mode
    assert np.array_equal(arr.reshape(samples.shape), (samples >> 8).astype(np.uint8))  # the high byte
    assert len(found) == 1 and name in found[0] and "16-bit" in found[0]


def test_16_bit_arrays_and_images_get_the_same_treatment():
    samples = np.random.default_rng(4).integers(0, 65536, (5, 6, 3), dtype=np.uint16)
    (arr, mode, _), found = notices(pixels.to_pixels, samples)
    assert mode == "RGB" and np.array_equal(arr, samples >> 8) and len(found) == 1
    (arr, mode, _), found = notices(pixels.to_pixels, Image.fromarray(samples[:, :, 0]))
    assert mode == "L" and np.array_equal(arr[:, :, 0], samples[:, :, 0] >> 8) and len(found) == 1
    (arr, mode, _), found = notices(pixels.to_pixels, Image.fromarray(natural_image(4, 4)))
    assert not found


def _animation(fmt: str, frames: int = 3) -> bytes:
    images = [Image.fromarray(natural_image(10, 12, seed=i)) for i in range(frames)]
    buf = io.BytesIO()
    images[0].save(buf, fmt, save_all=True, append_images=images[1:])
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF", "TIFF"])
def test_multi_frame_inputs_are_refused_naming_the_count(fmt):
    data = _animation(fmt, 3)
    with pytest.raises(InputError, match="3 frames.*first-frame"):
        aecodec.compress(io.BytesIO(data))
    with pytest.raises(InputError, match="3 frames"):
        aecodec.compress(Image.open(io.BytesIO(data)))
    first = aecodec.decompress(aecodec.compress(io.BytesIO(data), first_frame=True, lossless=True), as_array=True)
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert first.shape == (10, 12, 3) and np.array_equal(first, expected)


def test_an_aec_file_is_not_re_encoded(tmp_path):
    p = tmp_path / "x.png"  # an .aec file under another name
    p.write_bytes(aecodec.compress(natural_image(8, 8)))
    with pytest.raises(InputError, match="already an .aec file"):
        aecodec.compress(p)
