"""The Pillow plugin: open, save, registered extension."""
import numpy as np
import pytest
from PIL import Image, ImageCms

import aecodec  # noqa: F401  (registers the plugin)

from .conftest import natural_image


def test_extension_is_registered():
    assert Image.registered_extensions()[".aec"] == "AEC"


def test_save_and_open_round_trip(tmp_path):
    img = Image.fromarray(natural_image(37, 51))
    path = tmp_path / "x.aec"
    img.save(path, quality=60)
    assert path.read_bytes()[:4] == b"\x89AEC"
    with Image.open(path) as back:
        assert back.format == "AEC" and back.size == (51, 37) and back.mode == "RGB"
        assert back.info["quality"] == 60
        arr = np.asarray(back)
    assert arr.shape == (37, 51, 3)
    assert np.array_equal(arr, aecodec.decompress(path.read_bytes(), as_array=True))


def test_quality_option_changes_size(tmp_path):
    img = Image.fromarray(natural_image(64, 64))
    img.save(tmp_path / "lo.aec", quality=5)
    img.save(tmp_path / "hi.aec", quality=95)
    assert (tmp_path / "lo.aec").stat().st_size < (tmp_path / "hi.aec").stat().st_size


def test_modes_and_icc_through_pillow(tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgba = Image.fromarray(natural_image(20, 20, channels=4), "RGBA")
    rgba.save(tmp_path / "a.aec", icc_profile=icc)
    with Image.open(tmp_path / "a.aec") as back:
        assert back.mode == "RGBA"
        back.load()
        assert back.info["icc_profile"] == icc
        assert np.array_equal(np.asarray(back)[..., 3], np.asarray(rgba)[..., 3])
    Image.fromarray(natural_image(9, 9)[:, :, 0]).save(tmp_path / "g.aec")
    with Image.open(tmp_path / "g.aec") as g:
        assert g.mode == "L" and g.convert("RGB").size == (9, 9)


def test_corrupt_file_is_not_identified(tmp_path):
    p = tmp_path / "bad.aec"
    p.write_bytes(b"\x89AEC\x01" + b"\0" * 40)
    with pytest.raises((Image.UnidentifiedImageError, ValueError)):
        Image.open(p)
