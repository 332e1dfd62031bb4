"""Audio run time with a small exported model: exact length/rate/channels, chunk borders, bad input."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("soxr")

import aecodec  # noqa: E402
from aecodec import audio as aa  # noqa: E402
from aecodec.audio import codec as audio_codec  # noqa: E402
from aecodec.audio import stream as audio_stream  # noqa: E402
from aecodec.errors import AecError, FormatError, InputError  # noqa: E402


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from aecodec.export.bundle import export_bundle
    from aecodec.train.audio_model import AudioCodecModel, AudioConfig

    root = tmp_path_factory.mktemp("audio")
    torch.manual_seed(0)
    cfg = AudioConfig(channels=4, latent=8)
    model = AudioCodecModel(cfg)
    torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "modality": "audio", "step": 0}, root / "a.pt")
    export_bundle(root / "a.pt", root / "bundle")
    return str(root / "bundle")


def tone(n: int, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(n) / rate
    x = np.stack([0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)], axis=-1)
    return x[:, 0].astype(np.float32) if channels == 1 else x.astype(np.float32)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_round_trip_keeps_rate_length_channels(bundle, rate, channels):
    x = tone(rate // 3 + 7, rate, channels)
    data = aecodec.compress_audio(x, rate, quality=60, model=bundle)
    y, r = aecodec.decompress_audio(data, model=bundle)
    assert r == rate and y.shape == x.shape and y.dtype == np.float32
    assert aecodec.info(data)["samples"] == len(x) and aecodec.info(data)["modality"] == "audio"


@pytest.mark.parametrize("n", [1, 2, 319, 321])
def test_tiny_and_odd_lengths(bundle, n):
    y, r = aecodec.decompress_audio(aecodec.compress_audio(tone(n, 24000), 24000, model=bundle), model=bundle)
    assert y.shape == (n,) and r == 24000


def test_deterministic(bundle):
    x = tone(5000, 24000)
    assert aecodec.compress_audio(x, 24000, model=bundle) == aecodec.compress_audio(x.copy(), 24000, model=bundle)


def test_chunked_coding_is_seamless(bundle, monkeypatch):
    """Chunks with a halo give the same symbols and samples as one pass: no discontinuity at the borders."""
    x = tone(24000 * 2, 24000)
    whole = aecodec.compress_audio(x, 24000, model=bundle)
    ref, _ = aecodec.decompress_audio(whole, model=bundle)
    monkeypatch.setattr(audio_stream, "CHUNK_FRAMES", 16)
    chunked = aecodec.compress_audio(x, 24000, model=bundle)
    assert chunked == whole
    y, _ = aecodec.decompress_audio(whole, model=bundle)
    assert np.max(np.abs(y - ref)) < 1e-5
    border = 16 * 320
    step = np.abs(np.diff(y))
    assert step[border - 2 : border + 2].max() <= step.max() + 1e-6


def test_int16_input_and_bad_inputs(bundle):
    pcm = (tone(4000, 16000) * 32767).astype(np.int16)
    y, r = aecodec.decompress_audio(aecodec.compress_audio(pcm, 16000, model=bundle), model=bundle)
    assert y.shape == (4000,) and r == 16000
    with pytest.raises(InputError, match="sample rate"):
        aecodec.compress_audio(tone(100, 8000), 0, model=bundle)
    with pytest.raises(InputError, match="NaN"):
        aecodec.compress_audio(np.full(100, np.nan, np.float32), 8000, model=bundle)
    with pytest.raises(InputError):
        aecodec.compress_audio(np.zeros((0,), np.float32), 8000, model=bundle)
    with pytest.raises(InputError):
        aecodec.compress_audio(np.zeros((10, 3, 2), np.float32), 8000, model=bundle)
    with pytest.raises(AecError, match="not an audio model"):
        aecodec.compress_audio(tone(100, 8000), 8000, model="image-edge")


def test_modalities_do_not_mix(bundle):
    audio = aecodec.compress_audio(tone(1000, 8000), 8000, model=bundle)
    with pytest.raises(FormatError, match="audio"):
        aecodec.decompress(audio)
    image = aecodec.compress(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(FormatError, match="image"):
        aecodec.decompress_audio(image)


def test_every_truncation_and_bit_flip_is_detected(bundle):
    data = aecodec.compress_audio(tone(600, 8000), 8000, model=bundle)
    for n in range(len(data)):
        with pytest.raises(FormatError):
            aecodec.decompress_audio(data[:n], model=bundle)
    for i in range(0, len(data) * 8, 7):
        bad = bytearray(data)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises(FormatError):
            aecodec.decompress_audio(bytes(bad), model=bundle)


def test_cli_audio_round_trip(bundle, tmp_path):
    import subprocess
    import sys

    import soundfile as sf

    src = tmp_path / "song.flac"
    sf.write(src, tone(22050, 44100, 2), 44100)
    run = lambda *a: subprocess.run([sys.executable, "-m", "aecodec", *a], capture_output=True, timeout=120)  # noqa: E731
    res = run("compress", str(src), "-o", str(tmp_path / "song.aec"), "--model", bundle)
    assert res.returncode == 0, res.stderr
    res = run("decompress", str(tmp_path / "song.aec"), "--model", bundle)  # default output: song.wav
    assert res.returncode == 0, res.stderr
    y, r = sf.read(tmp_path / "song.wav")
    assert r == 44100 and y.shape == (22050, 2)
    assert run("info", str(tmp_path / "song.aec")).stdout.count(b"44100") == 1
    res = run("compress", str(src), "-o", str(tmp_path / "x.aec"), "-b", "40")  # the shipped audio-edge (2 channels)
    assert res.returncode == 0, res.stderr
    meta = aecodec.info(str(tmp_path / "x.aec"))
    assert meta["model_id"] == aecodec.load_bundle("audio-edge").model_id and 14 < meta["kbps"] <= 40
    res = run("decompress", str(tmp_path / "x.aec"), "-o", str(tmp_path / "x.flac"))
    assert res.returncode == 0 and sf.info(str(tmp_path / "x.flac")).frames == 22050
    (tmp_path / "bad.wav").write_bytes(b"RIFF....WAVEjunk")
    res = run("compress", str(tmp_path / "bad.wav"), "-o", str(tmp_path / "bad.aec"), "--model", bundle)
    assert res.returncode == 1 and res.stderr.startswith(b"aecodec: error: ") and b"Traceback" not in res.stderr


def test_bitrate_mode_is_monotonic_and_respected(bundle):
    x = tone(24000, 24000)
    sizes = [len(aecodec.compress_audio(x, 24000, quality=q, model=bundle)) for q in (1, 50, 100)]
    assert sizes == sorted(sizes)
    target = 8 * sizes[1] / 1000  # kbps of quality 50 for this one-second clip
    data = aecodec.compress_audio(x, 24000, bitrate=target, model=bundle)
    assert 8 * len(data) / 1000 <= target and aecodec.info(data)["quality"] >= 50


def test_audio_benchmark_runs_with_a_model(bundle, tmp_path, monkeypatch):
    import json
    from pathlib import Path

    import soundfile as sf

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import rd_audio

    clips = tmp_path / "clips"
    clips.mkdir()
    sf.write(clips / "speech_x.flac", tone(24000, 24000), 24000)
    assert rd_audio.main(["--clips", str(clips), "--targets", "12", "--model", bundle, "--out-dir", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "rd_audio.json").read_text())
    assert {s["codec"] for s in report["summary"]} == {"opus", "aecodec"}


def test_length_limit_is_checked_from_the_header(bundle):
    data = aecodec.compress_audio(tone(8000, 8000), 8000, model=bundle)
    with pytest.raises(FormatError, match="longer than"):
        aecodec.decompress_audio(data, model=bundle, max_seconds=0.5)
    with pytest.raises(InputError, match="longer than"):
        aecodec.compress_audio(tone(8000, 8000), 8000, model=bundle, max_seconds=0.5)


def test_fuzzed_audio_files_fail_cleanly(bundle):
    """Mutations of a valid audio file, re-sealed with a correct CRC: only AecError or a well-formed result."""
    import struct
    import zlib

    data = aecodec.compress_audio(tone(2000, 16000, 2), 16000, model=bundle)
    rng = np.random.default_rng(0)
    for _ in range(300):
        body = bytearray(data[:-4])
        for _ in range(rng.integers(1, 6)):
            pos = int(rng.integers(0, len(body)))
            op = rng.integers(0, 3)
            if op == 0:
                body[pos] ^= int(rng.integers(1, 256))
            elif op == 1:
                del body[pos : pos + int(rng.integers(1, 8))]
            else:
                body[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 8)), dtype=np.uint8).tobytes()
        sealed = bytes(body) + struct.pack("<I", zlib.crc32(body))
        try:
            y, r = aecodec.decompress_audio(sealed, model=bundle, max_seconds=60)
        except AecError:
            continue
        assert y.dtype == np.float32 and r >= 1


def test_streaming_file_path_matches_the_array_api(bundle, tmp_path, monkeypatch):
    """Reading the file in blocks (bounded memory) gives the same bytes as coding the decoded array,
    and decoding straight into a file gives the same samples (to 16-bit PCM) as decoding to an array."""
    import soundfile as sf

    x = tone(44100 * 3 + 11, 44100, 2)
    src = tmp_path / "in.flac"
    sf.write(src, x, 44100, subtype="PCM_24")
    decoded, _ = sf.read(src, dtype="float32")
    reference = aecodec.compress_audio(decoded, 44100, quality=70, model=bundle)
    monkeypatch.setattr(audio_codec, "READ_BLOCK", 5000)  # many blocks, not aligned to hops or chunks
    monkeypatch.setattr(audio_stream, "CHUNK_FRAMES", 37)
    assert aecodec.compress_audio_file(src, quality=70, model=bundle) == reference
    assert aecodec.compress_audio(decoded, 44100, quality=70, model=bundle) == reference
    y, rate = aecodec.decompress_audio(reference, model=bundle)
    n, ch, r = aecodec.decompress_audio_to_file(reference, str(tmp_path / "out.wav"), "WAV", model=bundle)
    z, _ = sf.read(tmp_path / "out.wav", dtype="float32")
    assert (n, ch, r) == (len(x), 2, 44100) and z.shape == y.shape
    assert np.max(np.abs(z - y)) <= 1.0 / 32768 + 1e-6


def test_bitrate_search_runs_the_encoder_network_once(bundle, monkeypatch):
    calls = []
    b = aa.audio_bundle(bundle)
    original = type(b).run_encoder
    monkeypatch.setattr(type(b), "run_encoder", lambda self, x, gain=None: calls.append(1) or original(self, x, gain))
    aecodec.compress_audio(tone(24000, 24000), 24000, bitrate=3.0, model=b)
    assert len(calls) == 1
