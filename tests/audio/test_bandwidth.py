"""Band-limited audio (format v5, section 11): the detector, the decoder's low-pass, and the codec end to end."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aecodec.audio.bandwidth import BandwidthMeter, LowPass, bandwidth_hz, cutoff_for, lowpass_taps

RATE = 24_000


def band_limited_noise(seconds: float, top_hz: float | None, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """White noise, band-limited by zeroing its spectrum above top_hz (None: full band); peak about 0.5."""
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal(int(seconds * rate)))
    if top_hz is not None:
        spec[np.fft.rfftfreq(int(seconds * rate), 1 / rate) > top_hz] = 0
    x = np.fft.irfft(spec, int(seconds * rate))
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def response_db(taps: np.ndarray, rate: int, hz: float) -> float:
    n = np.arange(len(taps)) - (len(taps) - 1) / 2
    return float(20 * np.log10(abs(np.sum(taps * np.exp(-2j * np.pi * hz / rate * n))) + 1e-30))


@pytest.mark.parametrize("rate, cutoff", [(24_000, 8160), (48_000, 11_250), (16_000, 3650), (8000, 3000)])
def test_the_filter_passes_below_its_cutoff_and_stops_above(rate, cutoff):
    taps = lowpass_taps(rate, cutoff)
    assert len(taps) == 2 * -(-rate // 200) + 1 and np.isclose(taps.sum(), 1.0)
    assert np.allclose(taps, taps[::-1])  # linear phase, no delay once centred
    assert abs(response_db(taps, rate, cutoff - 300)) < 0.01
    assert abs(response_db(taps, rate, cutoff) + 6.02) < 0.1
    assert max(response_db(taps, rate, f) for f in np.arange(cutoff + 300, rate / 2, 50)) < -75


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 3000), min_size=1, max_size=8))
def test_the_streamed_filter_equals_one_convolution_whatever_the_blocks(sizes):
    x = np.random.default_rng(len(sizes)).standard_normal((sum(sizes), 2))
    taps = lowpass_taps(RATE, 5000)
    half = (len(taps) - 1) // 2
    expected = np.convolve(x[:, 0], taps)[half : half + len(x)]
    lowpass, out, pos = LowPass(RATE, [5000, 0]), [], 0
    for i, n in enumerate(sizes):
        out.append(lowpass.push(x[pos : pos + n], last=i == len(sizes) - 1))
        pos += n
    y = np.concatenate(out)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.abs(y[:, 0] - expected).max() < 1e-5
    assert np.array_equal(y[:, 1], x[:, 1].astype(np.float32))  # cutoff 0: unchanged, in step


def test_the_detector_finds_the_old_nyquist_of_resampled_audio_and_nothing_in_full_band_audio():
    assert abs(bandwidth_hz(band_limited_noise(3, 8000), RATE) - 8000) < 300
    assert abs(bandwidth_hz(band_limited_noise(3, 4000), RATE) - 4000) < 300
    assert bandwidth_hz(band_limited_noise(3, None), RATE) == RATE / 2
    assert bandwidth_hz(np.zeros(RATE, np.float32), RATE) == RATE / 2  # silence: nothing to cut
    assert bandwidth_hz(np.ones(100, np.float32), RATE) == RATE / 2  # too short to tell
    assert cutoff_for(RATE / 2, RATE) == 0 and cutoff_for(7910.2, RATE) == 8160


def test_the_streamed_meter_measures_what_the_whole_clip_shows():
    x = np.stack([band_limited_noise(40, 6000), band_limited_noise(40, None, seed=1)], axis=1)
    meter = BandwidthMeter(2, len(x), RATE)
    for i in range(0, len(x), 65_536):
        meter.push(x[i : i + 65_536])
    assert meter.finish() == [bandwidth_hz(x[:, 0], RATE), bandwidth_hz(x[:, 1], RATE)]
    assert meter.finish()[1] == RATE / 2


def top_band_db(x: np.ndarray, above_hz: float, rate: int = RATE) -> float:
    """Energy above above_hz relative to the whole signal's, dB."""
    spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    return float(10 * np.log10(spec[np.fft.rfftfreq(len(x), 1 / rate) > above_hz].sum() / spec.sum() + 1e-30))


def test_a_band_limited_input_decodes_without_noise_above_its_band():
    pytest.importorskip("soxr")
    import aecodec
    from aecodec.format import container

    x = 0.5 * band_limited_noise(2, 7000)  # cut at 7422 Hz: the detected edge (spread by smoothing) + 250 Hz
    data = aecodec.compress_audio(x, RATE, quality=60)
    f = container.unpack(data)
    assert data[4] == container.AUDIO_BANDWIDTH_FORMAT_VERSION == 5
    assert aecodec.info(data)["sections"]["audio bandwidth"] == 4
    y = aecodec.decompress_audio(data)[0]
    assert len(y) == len(x)
    # what remains is mostly the level corrections' gain steps (0.5 dB every 0.2 s), not the model
    assert top_band_db(y, 7800) < -55
    # without the section (the same latent, decoded as before): the model's own output fills the band
    del f.sections[container.SECTION_AUDIO_BANDWIDTH]
    unfiltered = aecodec.decompress_audio(container.pack(f))[0]
    assert top_band_db(unfiltered, 7800) > top_band_db(y, 7800) + 40
    below = np.abs(np.fft.rfft(y)) ** 2 / np.abs(np.fft.rfft(unfiltered)) ** 2
    assert abs(10 * np.log10(below[np.fft.rfftfreq(len(x), 1 / RATE) < 6500].mean())) < 0.5  # the band is kept


def test_full_band_and_native_low_rate_inputs_get_no_section():
    pytest.importorskip("soxr")
    import aecodec
    from aecodec.format import container

    full = aecodec.compress_audio(band_limited_noise(1, None), RATE, quality=30)
    assert container.SECTION_AUDIO_BANDWIDTH not in container.unpack(full).sections and full[4] in (2, 3)
    native = band_limited_noise(1, None, rate=16_000)  # full band at its own rate
    data = aecodec.compress_audio(native, 16_000, quality=30)
    assert container.SECTION_AUDIO_BANDWIDTH not in container.unpack(data).sections
