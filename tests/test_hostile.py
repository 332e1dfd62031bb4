"""Hostile input and failure: every corruption is a clean AecError, limits hold, threads agree."""
import os
import struct
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import aecodec
from aecodec.format import container
from aecodec.errors import AecError, FormatError, InputError

from .conftest import natural_image


@pytest.fixture(scope="module")
def small_file() -> bytes:
    return aecodec.compress(natural_image(5, 7, channels=4), quality=40, lossless=False)  # RGBA: latent + alpha


def test_every_single_bit_flip_is_detected(small_file):
    detected = 0
    for i in range(len(small_file) * 8):
        bad = bytearray(small_file)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises(FormatError):
            aecodec.decompress(bytes(bad))
        detected += 1
    assert detected == len(small_file) * 8


def test_every_truncation_is_detected(small_file):
    for n in range(len(small_file)):
        with pytest.raises(FormatError):
            aecodec.decompress(small_file[:n])


def test_trailing_garbage_is_refused(small_file):
    with pytest.raises(FormatError):
        aecodec.decompress(small_file + b"\0")


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_huge_claimed_size_is_refused_before_allocation(small_file):
    body = bytearray(small_file[:-4])
    struct.pack_into("<II", body, 24, 60000, 60000)
    with pytest.raises(FormatError, match="too large"):
        aecodec.decompress(_with_crc(bytes(body)))
    with pytest.raises(InputError, match="too large"):
        aecodec.compress(np.zeros((10, 10, 3), np.uint8), max_pixels=99)


def test_oversized_input_image_is_refused_from_its_header(tmp_path):
    p = tmp_path / "big.png"
    Image.new("L", (3000, 2000)).save(p)
    with pytest.raises(InputError, match="too large"):
        aecodec.open_image(p, max_pixels=1_000_000)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_files_fail_cleanly(small_file, data):
    """Mutations of a valid file, re-sealed with a correct CRC so the parser and decoder are reached."""
    body = bytearray(small_file[:-4])
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["flip", "set", "cut", "insert"]))
        pos = data.draw(st.integers(0, max(0, len(body) - 1)))
        if op == "flip" and body:
            body[pos] ^= data.draw(st.integers(1, 255))
        elif op == "set" and len(body) >= 4:
            pos = min(pos, len(body) - 4)
            struct.pack_into("<I", body, pos, data.draw(st.sampled_from([0, 1, 0xFFFF, 0xFFFFFFFF, 2**31])))
        elif op == "cut":
            del body[pos:pos + data.draw(st.integers(1, 16))]
        else:
            body[pos:pos] = data.draw(st.binary(min_size=1, max_size=16))
    try:
        out = aecodec.decompress(_with_crc(bytes(body)), as_array=True)
    except AecError:
        return
    assert out.dtype == np.uint8  # a mutation that still decodes must give a well-formed image


def test_unknown_mode_and_sections_in_resealed_files(small_file):
    body = bytearray(small_file[:-4])
    body[32] = container.MODE_CODES["RGB"]  # claims RGB but carries an alpha section: still decodable
    out = aecodec.decompress(_with_crc(bytes(body)))
    assert out.mode == "RGB"
    body[32] = container.MODE_CODES["LA"]
    body[33] = 1  # drop the alpha section from the count -> trailing bytes
    with pytest.raises(FormatError):
        aecodec.decompress(_with_crc(bytes(body)))


def test_threads_share_sessions_and_agree():
    images = [natural_image(24 + i, 40, seed=i) for i in range(4)]
    expected = [aecodec.compress(im, quality=30 + 10 * i) for i, im in enumerate(images)]

    def work(i):
        data = aecodec.compress(images[i % 4], quality=30 + 10 * (i % 4))
        return data, aecodec.decompress(data, as_array=True)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, range(24)))
    for i, (data, arr) in enumerate(results):
        assert data == expected[i % 4]
        assert arr.shape == images[i % 4].shape


@pytest.mark.parametrize("make", [
    lambda: Image.new("I", (8, 8)),
    lambda: Image.new("F", (8, 8)),
])
def test_unsupported_modes_are_refused(make):
    with pytest.raises(InputError, match="mode"):
        aecodec.compress(make())


def test_documented_conversions():
    cmyk = Image.new("CMYK", (9, 5), (10, 20, 30, 0))
    assert aecodec.decompress(aecodec.compress(cmyk)).mode == "RGB"
    pa = Image.new("PA", (9, 5))
    assert aecodec.decompress(aecodec.compress(pa)).mode == "RGBA"


def test_animated_input_is_refused_unless_the_first_frame_is_asked_for(tmp_path):
    frames = [Image.fromarray(natural_image(16, 16, seed=i)) for i in range(3)]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    with pytest.raises(InputError, match="3 frames"):
        aecodec.open_image(p)
    im = aecodec.open_image(p, first_frame=True)
    assert aecodec.decompress(aecodec.compress(im, first_frame=True)).size == (16, 16)


def test_sigkill_mid_write_never_leaves_partial_output(tmp_path):
    """Kill the CLI at random moments while it writes: the target keeps its old contents or is complete."""
    src = tmp_path / "in.png"
    Image.fromarray(natural_image(300, 400)).save(src)
    target = tmp_path / "out.aec"
    target.write_bytes(b"old contents")
    rng = np.random.default_rng(0)
    env = {**os.environ, "_AECODEC_TEST_WRITE_DELAY": "0.05"}  # ~0.4 s of writing in 4 KiB chunks
    for delay in rng.uniform(0.3, 2.5, 6):
        proc = subprocess.Popen([sys.executable, "-m", "aecodec", "compress", str(src), "-o", str(target), "-f",
                                 "--quiet"], env=env)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        data = target.read_bytes()
        assert data == b"old contents" or container.unpack(data).header.width == 400
        leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("in.png", "out.aec")]
        assert all(n.startswith(".out.aec.") and n.endswith(".part") for n in leftovers), leftovers
        assert len(leftovers) <= 1, leftovers  # each write removes what killed writers left behind
    res = subprocess.run([sys.executable, "-m", "aecodec", "compress", str(src), "-o", str(target), "-f", "--quiet"])
    assert res.returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.aec"]


def test_stale_temp_files_of_dead_writers_are_removed(tmp_path):
    from aecodec.fileio import host_name, write_atomic

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.aec.{host_name()}.{dead.pid}.abc123.part"
    live = tmp_path / f".out.aec.{host_name()}.{os.getppid()}.def456.part"  # a running process: kept
    other_host = tmp_path / f".out.aec.otherhost.{dead.pid}.ghi789.part"  # maybe alive elsewhere: kept
    other_target = tmp_path / f".other.aec.{host_name()}.{dead.pid}.jkl012.part"
    for p in (stale, live, other_host, other_target):
        p.write_bytes(b"partial")
    write_atomic(str(tmp_path / "out.aec"), b"new", force=False)
    assert (tmp_path / "out.aec").read_bytes() == b"new"
    assert not stale.exists() and live.exists() and other_host.exists() and other_target.exists()


def test_tiled_coding_matches_whole_image(monkeypatch):
    """Big images go through the networks in tiles with a halo: same bytes, same pixels as in one piece."""
    import aecodec.image.codec as image_codec

    img = natural_image(150, 230)
    whole = aecodec.compress(img, quality=70)
    ref = aecodec.decompress(whole, as_array=True)
    monkeypatch.setattr(image_codec, "TILE", 64)
    monkeypatch.setattr(image_codec, "uses_tiles", lambda h, w: True)
    assert aecodec.compress(img, quality=70) == whole
    assert np.array_equal(aecodec.decompress(whole, as_array=True), ref)
