"""Level, DC and digital silence (format sections 8 and 9) with the shipped audio-edge model."""
import warnings

import numpy as np
import pytest

pytest.importorskip("soxr")

import aecodec  # noqa: E402
from aecodec.audio import level  # noqa: E402
from aecodec.errors import AecNotice, InputError  # noqa: E402
from aecodec.format import container  # noqa: E402

RATE = 24_000


def db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.asarray(x, np.float64) ** 2) + 1e-30))


def music(seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """Notes with harmonics, vibrato and a decay: something like an instrument line (peak about 0.5)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    out = np.zeros_like(t)
    for start in np.arange(0, seconds, 0.25):
        f0 = 110 * 2 ** (rng.integers(0, 24) / 12)
        env = np.where(t >= start, np.exp(-(t - start) * 4), 0)
        for k in range(1, 6):
            out += env * np.sin(2 * np.pi * k * f0 * t + 0.3 * np.sin(2 * np.pi * 5 * t)) / k
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def codec(x: np.ndarray, rate: int = RATE, **kw) -> tuple[bytes, np.ndarray]:
    data = aecodec.compress_audio(x, rate, **kw)
    return data, aecodec.decompress_audio(data)[0]


def test_digital_silence_decodes_to_exact_zeros_and_costs_almost_nothing():
    x = np.zeros(2 * RATE, np.float32)
    data, y = codec(x)
    assert not np.any(y) and aecodec.info(data)["kbps"] < 0.5
    assert container.SECTION_AUDIO_SILENCE in container.unpack(data).sections
    _, y = codec(np.zeros((5, 2), np.float32), 8000)  # shorter than a run: a file of zeros is still zeros
    assert not np.any(y)


def test_silence_inside_sound_is_exact_and_the_sound_keeps_its_level():
    x = np.zeros(3 * RATE, np.float32)
    x[RATE : 2 * RATE] = music(1.0)
    data, y = codec(x)
    assert not np.any(y[: RATE - 1]) and not np.any(y[2 * RATE + 1 :])
    assert abs(db(y[RATE : 2 * RATE]) - db(x[RATE : 2 * RATE])) < 1.0
    assert container.unpack(data).header.version == 3


def test_quiet_samples_are_never_cut():
    """Only exact zeros are silence: a passage at -80 dBFS comes back at its level, not zeroed, not raised."""
    rng = np.random.default_rng(0)
    x = np.concatenate([music(1.0), (rng.normal(0, 1e-4, RATE)).astype(np.float32), music(1.0, seed=1)])
    _, y = codec(x)
    quiet = slice(RATE + RATE // 4, 2 * RATE - RATE // 4)
    assert np.count_nonzero(y[quiet]) > 0.99 * (RATE // 2)
    assert abs(db(y[quiet]) - db(x[quiet])) < 3.0


@pytest.mark.parametrize("level_db", [-90, -70])
def test_near_silent_channels_are_not_raised(level_db):
    rng = np.random.default_rng(1)
    x = (rng.normal(0, 10 ** (level_db / 20), (RATE, 2))).astype(np.float32)
    _, y = codec(x)
    for ch in range(2):
        assert abs(db(y[:, ch]) - db(x[:, ch])) < 1.5


def test_level_and_mean_are_kept():
    x = music(2.0)
    x_dc = x + np.float32(0.01)  # a real DC in the input stays
    for signal in (x, x_dc):
        data, y = codec(signal)
        assert abs(db(y) - db(signal)) < 1.0
        assert abs(float(np.mean(y.astype(np.float64) - signal))) < 1e-4
    t = np.arange(RATE) / RATE  # a high-pitched chirp, which the model alone returns ~12 dB quieter
    chirp = (0.3 * np.sin(2 * np.pi * (5000 * t + 500 * np.sin(2 * np.pi * 4 * t)))).astype(np.float32)
    assert abs(db(codec(chirp)[1]) - db(chirp)) < 1.0


def test_stereo_at_another_rate_and_the_file_path_give_the_same_bytes(tmp_path):
    sf = pytest.importorskip("soundfile")
    x = np.stack([music(1.0, 44_100), np.zeros(44_100, np.float32)], -1)
    x[20_000:30_000, 0] = 0
    data, y = codec(x, 44_100)
    assert y.shape == x.shape and not np.any(y[:, 1]) and not np.any(y[20_010:29_990, 0])
    sf.write(tmp_path / "a.wav", x, 44_100, subtype="FLOAT")
    assert aecodec.compress_audio_file(tmp_path / "a.wav") == data


def test_files_without_the_new_sections_still_decode_as_before():
    """Version 2 files (the model's output alone) stay readable: strip section 8 from a new file."""
    data = aecodec.compress_audio(music(0.5), RATE)
    f = container.unpack(data)
    assert set(f.sections) == {container.SECTION_AUDIO_LATENT, container.SECTION_AUDIO_LEVEL}
    del f.sections[container.SECTION_AUDIO_LEVEL]
    plain = container.pack(f)
    assert plain[4] == 2
    corrected, raw = aecodec.decompress_audio(data)[0], aecodec.decompress_audio(plain)[0]
    assert not np.array_equal(corrected, raw) and raw.shape == corrected.shape


def test_corrections_are_interpolated_between_block_centres():
    corr = level.Corrections(block=100, gains=[np.array([0, 40], np.int8)], dcs=[np.array([0, 655], np.int16)])
    y = next(level.apply(iter([np.full((200, 1), 0.05, np.float32)]), corr))[:, 0]
    assert y[49] == pytest.approx(0.05) and y[150] == pytest.approx(0.5 + 655 / 65536)
    assert np.all(np.diff(y) >= 0)  # a ramp between the centres, no step at the border


def test_bitrate_out_of_reach_gives_a_notice_and_quality_with_bitrate_is_refused():
    x = music(1.0)
    for target, word in ((0.1, "below"), (1000, "above")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            aecodec.compress_audio(x, RATE, bitrate=target)
        assert [w for w in caught if issubclass(w.category, AecNotice) and word in str(w.message)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = aecodec.compress_audio(x, RATE, bitrate=12)
    assert not caught and aecodec.info(data)["kbps"] <= 12
    with pytest.raises(InputError, match="not both"):
        aecodec.compress_audio(x, RATE, quality=50, bitrate=12)


def test_silence_finder_joins_runs_across_blocks():
    finder = level.SilenceFinder(1, min_run=4)
    for block in ([1, 0, 0], [0, 0, 0], [0, 2, 0, 0, 0], [0, 5, 0]):
        finder.push(np.array(block, np.float32)[:, None])
    assert finder.finish()[0].tolist() == [[1, 6], [8, 4]]
