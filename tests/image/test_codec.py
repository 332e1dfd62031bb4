"""Behaviour of the public image API with the shipped default model."""
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms

import aecodec
from aecodec.errors import FormatError, InputError, ModelMismatchError

from tests.conftest import natural_image


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / max(mse, 1e-10))


@pytest.mark.parametrize("h,w", [(1, 1), (1, 37), (17, 3), (33, 65), (2, 300), (64, 48)])
def test_round_trip_keeps_exact_size(h, w):
    img = natural_image(h, w, seed=h * 1000 + w)
    out = aecodec.decompress(aecodec.compress(img, quality=60), as_array=True)
    assert out.shape == img.shape and out.dtype == np.uint8


def test_reconstruction_is_close_and_improves_with_quality(photo):
    lo = aecodec.decompress(aecodec.compress(photo, quality=5), as_array=True)
    hi = aecodec.decompress(aecodec.compress(photo, quality=100), as_array=True)
    assert psnr(photo, hi) > psnr(photo, lo)
    assert psnr(photo, hi) > 26


def test_file_size_grows_with_quality(photo):
    sizes = [len(aecodec.compress(photo, quality=q)) for q in range(1, 101, 9)]
    assert sizes == sorted(sizes), sizes
    assert sizes[-1] > 2 * sizes[0]


def test_same_input_same_bytes(photo):
    a = aecodec.compress(photo, quality=70)
    b = aecodec.compress(photo.copy(), quality=70)
    assert a == b
    assert np.array_equal(aecodec.decompress(a, as_array=True), aecodec.decompress(b, as_array=True))


def test_pil_and_numpy_inputs_agree(photo):
    assert aecodec.compress(Image.fromarray(photo), quality=30) == aecodec.compress(photo, quality=30)


def test_grayscale_comes_back_grayscale():
    grey = natural_image(40, 50, channels=1)[:, :, 0]
    img = aecodec.decompress(aecodec.compress(Image.fromarray(grey, "L")))
    assert img.mode == "L" and img.size == (50, 40)
    arr = aecodec.decompress(aecodec.compress(grey), as_array=True)
    assert arr.shape == (40, 50)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_kept_losslessly(mode):
    rgba = natural_image(30, 41, channels=4)
    img = Image.fromarray(rgba, "RGBA").convert(mode)
    out = aecodec.decompress(aecodec.compress(img))
    assert out.mode == mode
    assert np.array_equal(np.asarray(out)[..., -1], np.asarray(img)[..., -1])


def test_palette_and_bilevel_images_are_accepted():
    p = Image.fromarray(natural_image(20, 20)).convert("P")
    assert aecodec.decompress(aecodec.compress(p)).mode == "RGB"
    b = Image.fromarray(natural_image(20, 20)).convert("1")
    assert aecodec.decompress(aecodec.compress(b)).mode == "L"


def test_icc_profile_is_carried_over():
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img = Image.fromarray(natural_image(16, 16))
    img.info["icc_profile"] = icc
    assert aecodec.decompress(aecodec.compress(img)).info["icc_profile"] == icc


def test_bad_inputs_give_clear_errors(photo):
    with pytest.raises(InputError, match="quality"):
        aecodec.compress(photo, quality=0)
    with pytest.raises(InputError, match="quality"):
        aecodec.compress(photo, quality=101)
    with pytest.raises(InputError, match="uint8"):
        aecodec.compress(photo.astype(np.float32))
    with pytest.raises(InputError, match="shape"):
        aecodec.compress(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(InputError, match="empty"):
        aecodec.compress(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(InputError, match="mode"):
        aecodec.compress(Image.new("F", (4, 4)))
    with pytest.raises(InputError):
        aecodec.compress(12345)
    with pytest.raises(FileNotFoundError):
        aecodec.compress("no/such/image.png")  # strings are paths


def test_corrupt_and_truncated_files_are_refused(photo):
    data = aecodec.compress(photo, quality=20)
    with pytest.raises(FormatError):
        aecodec.decompress(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 1
    with pytest.raises(FormatError, match="CRC"):
        aecodec.decompress(bytes(flipped))
    with pytest.raises(FormatError, match="magic"):
        aecodec.decompress(b"hello world, this is no aec file")


def test_unknown_model_is_refused(photo):
    data = bytearray(aecodec.compress(photo, quality=20))
    data[8:24] = b"\xee" * 16
    body = bytes(data[:-4])
    with pytest.raises(ModelMismatchError, match="eeee"):
        aecodec.decompress(body + struct.pack("<I", zlib.crc32(body)))


def test_info_reads_header(photo):
    data = aecodec.compress(photo, quality=33)
    facts = aecodec.info(data)
    assert facts["width"] == 128 and facts["height"] == 96 and facts["quality"] == 33
    assert facts["model_id"] == aecodec.load_bundle().model_id
    assert facts["bytes"] == len(data)


def test_shipped_bundle_is_intact():
    bundle = aecodec.load_bundle()
    bundle.verify()
    m = bundle.manifest.raw
    assert m["complexity"]["decoder_kmac_per_px"] <= 25
    assert m["parity"]["rounded_latent_flips"] == 0


def test_timings_are_reported(photo):
    t = {}
    aecodec.decompress(aecodec.compress(photo, timings=t), timings=t)
    assert {"encoder_net", "entropy_encode", "entropy_decode", "decoder_net"} <= set(t)


def test_file_helpers(tmp_path, photo):
    src = tmp_path / "in.png"
    Image.fromarray(photo).save(src)
    n = aecodec.compress_file(src, tmp_path / "x.aec", quality=50)
    assert n == (tmp_path / "x.aec").stat().st_size
    aecodec.decompress_file(tmp_path / "x.aec", tmp_path / "out.png")
    assert Image.open(tmp_path / "out.png").size == (128, 96)
    with pytest.raises(aecodec.AecError):
        aecodec.compress_file(src, tmp_path / "x.aec")  # exists, no overwrite
