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


def test_refine_option_is_the_apis(tmp_path):
    arr = natural_image(64, 96, seed=2)
    Image.fromarray(arr).save(tmp_path / "r.aec", quality=60, refine=6)
    assert (tmp_path / "r.aec").read_bytes() == aecodec.compress(arr, 60, refine=6)


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


def test_corrupt_truncated_or_audio_files_are_not_identified(tmp_path):
    """Pillow's convention: Image.open raises UnidentifiedImageError (an OSError), never ValueError."""
    good = aecodec.compress(natural_image(9, 9))
    audio = aecodec.compress_audio(np.zeros(800, np.float32), 8000)
    flipped = bytearray(good)
    flipped[30] ^= 1
    for i, data in enumerate([b"\x89AEC\x01" + b"\0" * 40, good[:-1], good[:20], bytes(flipped), audio]):
        p = tmp_path / f"bad{i}.aec"
        p.write_bytes(data)
        with pytest.raises(Image.UnidentifiedImageError):
            Image.open(p)


def test_undecodable_file_raises_oserror_on_load(tmp_path):
    import struct
    import zlib

    body = bytearray(aecodec.compress(natural_image(40, 40), lossless=False)[:-4])
    body[8:24] = b"\xee" * 16  # a model nobody has: the header parses, the pixels cannot be decoded
    p = tmp_path / "x.aec"
    p.write_bytes(bytes(body) + struct.pack("<I", zlib.crc32(body)))
    with Image.open(p) as im:
        assert im.size == (40, 40)
        with pytest.raises(OSError, match="eeee"):
            im.load()


def test_info_is_complete_after_open(tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for lossless in (False, True):
        Image.fromarray(natural_image(20, 20)).save(tmp_path / "a.aec", icc_profile=icc, lossless=lossless)
        with Image.open(tmp_path / "a.aec") as im:
            assert im.info["icc_profile"] == icc and im.info["lossless"] is lossless  # before load()
            assert "quality" in im.info and "model_id" in im.info


def test_saving_an_animation_writes_the_current_frame(tmp_path):
    import io

    frames = [Image.new("RGB", (6, 5), (60 * i, 0, 0)) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    with Image.open(buf) as anim:
        anim.seek(1)
        anim.save(tmp_path / "f.aec", lossless=True)  # Pillow's convention without save_all
        with pytest.raises(OSError, match="one still image"):
            anim.save(tmp_path / "all.aec", save_all=True)
    with Image.open(tmp_path / "f.aec") as back:
        assert back.convert("RGB").getpixel((0, 0)) == (60, 0, 0)
