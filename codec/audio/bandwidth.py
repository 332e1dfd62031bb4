"""Audio bandwidth: find where an input's spectrum ends, and cut the decoder's output there (format v5, section 11).

A recording made at a lower rate (16 kHz speech, 22 kHz music, telephone audio) and resampled up has nothing
above its old Nyquist frequency. The model has no reason to keep that band empty: it fills it with faint noise,
which is both audible hiss and, in log-spectral terms, a large error. The encoder measures the input's
bandwidth once (a mean power spectrum over a few hundred frames, streamed) and stores a cutoff per channel;
the decoder runs a fixed linear-phase low-pass (a Kaiser-windowed sinc, FORMAT.md section 11) at that cutoff.
Full-band inputs get no section and decode as before.
"""
from __future__ import annotations

import math

import numpy as np

# Detection: the highest frequency whose smoothed level is within RANGE_DB of the loudest region, if the
# spectrum falls off a cliff there (at least CLIFF_DB from 1 kHz below to 1 kHz above: the anti-alias filter of
# a lower-rate source, not a natural roll-off); a bandwidth of FULL_BAND_FRACTION of Nyquist or more is full band.
RANGE_DB = 70.0
CLIFF_DB = 25.0
SMOOTH_HZ = 250.0
FULL_BAND_FRACTION = 0.9
N_FFT = 2048
MAX_FRAMES = 400  # frames spread evenly over the input: enough for a mean spectrum, cheap for an hour
# The filter (normative, FORMAT.md): half length ⌈rate / 200⌉ taps (a transition about 500 Hz wide at any rate),
# Kaiser window β = 8 (stop band below about −80 dB), unit gain at DC.
TAPS_PER_HZ = 1 / 200
KAISER_BETA = 8.0
# The encoder puts the filter's centre this far above the last frequency with content, so the pass band keeps it.
CUTOFF_MARGIN_HZ = 250.0


def _frame_starts(num_samples: int, n_fft: int = N_FFT) -> np.ndarray:
    """Start of each analysis frame: Hann frames at 50 % overlap, at most MAX_FRAMES of them spread evenly."""
    if num_samples < n_fft:
        return np.zeros(0, np.int64)
    hop = n_fft // 2
    count = (num_samples - n_fft) // hop + 1
    index = np.arange(count) if count <= MAX_FRAMES else np.linspace(0, count - 1, MAX_FRAMES).astype(np.int64)
    return index.astype(np.int64) * hop


def bandwidth_from_power(power: np.ndarray, sample_rate: int, n_fft: int = N_FFT) -> float:
    """The bandwidth (Hz) that a mean power spectrum (n_fft // 2 + 1 bins) shows; Nyquist for full band or silence."""
    nyquist = sample_rate / 2
    width = max(1, int(round(SMOOTH_HZ / (sample_rate / n_fft))))
    smooth = np.convolve(power, np.ones(width) / width, mode="same")
    if not smooth.max() > 0:
        return nyquist
    level = 10 * np.log10(np.maximum(smooth, 1e-30) / smooth.max())
    edge = int(np.nonzero(level > -RANGE_DB)[0][-1])
    k = int(round(1000 / (sample_rate / n_fft)))
    cliff = level[max(0, edge - k)] - level[min(len(level) - 1, edge + k)]
    band = edge * sample_rate / n_fft
    return nyquist if band >= FULL_BAND_FRACTION * nyquist or cliff < CLIFF_DB else band


def bandwidth_hz(clip: np.ndarray, sample_rate: int, n_fft: int = N_FFT) -> float:
    """Highest frequency with content in a mono clip (Nyquist for full band, or too short or silent to tell)."""
    starts = _frame_starts(len(clip), n_fft)
    if not len(starts):
        return sample_rate / 2
    frames = np.stack([clip[s : s + n_fft] for s in starts]).astype(np.float64)
    power = (np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2).mean(axis=0)
    return bandwidth_from_power(power, sample_rate, n_fft)


class BandwidthMeter:
    """bandwidth_hz of every channel, measured on the blocks of a stream as they pass (the same frames)."""

    def __init__(self, channels: int, num_samples: int, sample_rate: int):
        self.sample_rate = sample_rate
        self._starts = list(_frame_starts(num_samples))
        self._power = np.zeros((channels, N_FFT // 2 + 1))
        self._window = np.hanning(N_FFT)
        self._buffer = np.zeros((0, channels), np.float64)
        self._buffer_start = 0  # stream position of self._buffer[0]

    def push(self, block: np.ndarray) -> None:
        """Next (n, channels) block of the stream."""
        self._buffer = np.concatenate([self._buffer, block.astype(np.float64)])
        end = self._buffer_start + len(self._buffer)
        while self._starts and self._starts[0] + N_FFT <= end:
            at = int(self._starts.pop(0)) - self._buffer_start
            frame = self._buffer[at : at + N_FFT].T * self._window
            self._power += np.abs(np.fft.rfft(frame, axis=1)) ** 2
        keep_from = (int(self._starts[0]) - self._buffer_start) if self._starts else len(self._buffer)
        self._buffer = self._buffer[max(0, min(keep_from, len(self._buffer))):]
        self._buffer_start = end - len(self._buffer)

    def finish(self) -> list[float]:
        """Per channel, the bandwidth in Hz (Nyquist: full band)."""
        return [bandwidth_from_power(p, self.sample_rate) for p in self._power]


def cutoff_for(bandwidth: float, sample_rate: int) -> int:
    """The cutoff (Hz) the encoder stores for a channel of this bandwidth; 0 (no filter) for full band."""
    if bandwidth >= sample_rate / 2:
        return 0
    cutoff = int(round(bandwidth + CUTOFF_MARGIN_HZ))
    return cutoff if 1 <= cutoff < FULL_BAND_FRACTION * sample_rate / 2 else 0


def lowpass_taps(sample_rate: int, cutoff: int) -> np.ndarray:
    """The normative filter h[−M..M] (FORMAT.md section 11): windowed sinc, unit DC gain, float64."""
    half = math.ceil(sample_rate * TAPS_PER_HZ)
    n = np.arange(-half, half + 1, dtype=np.float64)
    ideal = 2 * cutoff / sample_rate * np.sinc(2 * cutoff / sample_rate * n)
    window = np.i0(KAISER_BETA * np.sqrt(np.maximum(0.0, 1 - (n / half) ** 2))) / np.i0(KAISER_BETA)
    taps = ideal * window
    return taps / taps.sum()


class LowPass:
    """The section-11 filter over a stream of (n, channels) blocks, zero outside the signal, no delay: each
    push returns the samples that are final so far (the last push all the rest); in total exactly the input's
    length. Channels with cutoff 0 pass unchanged (in step with the others)."""

    def __init__(self, sample_rate: int, cutoffs: list[int]):
        self._filters = [lowpass_taps(sample_rate, c) if c else None for c in cutoffs]
        self._half = math.ceil(sample_rate * TAPS_PER_HZ)
        # the inputs from the next output's window on (at first: half zeros, the signal is zero before its start)
        self._history = np.zeros((self._half, len(cutoffs)), np.float64)

    def push(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        half = self._half
        tail = np.zeros((half if last else 0, block.shape[1]))
        x = np.concatenate([self._history, block.astype(np.float64), tail])
        count = len(x) - 2 * half  # outputs whose full window is known
        if count <= 0:
            self._history = x
            return np.zeros((0, block.shape[1]), np.float32)
        out = np.empty((count, block.shape[1]), np.float32)
        size = 1 << max(1, (len(x) - 1).bit_length())
        for ch, taps in enumerate(self._filters):
            if taps is None:
                out[:, ch] = x[half : half + count, ch]
                continue
            y = np.fft.irfft(np.fft.rfft(x[:, ch], size) * np.fft.rfft(taps, size), size)
            out[:, ch] = y[2 * half : 2 * half + count]
        self._history = x[count:]
        return out
