"""The latent layer: the one place that maps quality -> gains -> tables, quantises and dequantises.

Two codings, chosen by the bundle's manifest ("latent_coding"):

- `FactorizedCoding` (image-edge, audio-edge; format versions 1 and 2): symbols = rint(y · g_q)
  per channel, coded channel by channel with that quality's table of the channel.
- `HyperpriorCoding` (format version 3): the encoder graph gives v = y · g_q and z; ẑ = floor(z + ½)
  is coded with one table per channel; the integer h_s (coding/hyper.py) turns ẑ into a mean code
  and a scale index for every element of v; symbols = floor(v − mean + ½) are coded grouped by scale
  index. Every probability comes from integers, so encoder and decoder agree on every machine.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FormatError, InputError
from .hyper import HyperSynthesis
from .range_coder import FrequencyTables

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def check_quality(quality: object, num_qualities: int = 100) -> int:
    """The quality as an int in 1..num_qualities, or InputError."""
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= int(quality) <= num_qualities:
        raise InputError(f"quality must be an integer 1..{num_qualities}, got {quality!r}")
    return int(quality)


def _per_channel(values: np.ndarray, ndim: int) -> np.ndarray:
    """(C,) -> (C, 1, ...) broadcasting over the latent's other ndim - 1 axes."""
    return values.reshape((-1,) + (1,) * (ndim - 1))


class FactorizedCoding:
    """Per-channel tables for every quality: table (q - 1) · C + c codes channel c at quality q."""

    def __init__(self, gains: np.ndarray, tables: FrequencyTables):
        self.gains = gains.astype(np.float32)  # (Q, C)
        self.num_qualities, self.channels = self.gains.shape
        if len(tables) != self.num_qualities * self.channels:
            raise ValueError("entropy tables do not match the gains")
        self.tables = tables

    def gain(self, quality: int) -> np.ndarray:
        return self.gains[quality - 1]

    def quantise(self, latent: np.ndarray, quality: int) -> np.ndarray:
        """float latent (C, ...) -> int32 symbols rint(y · g)."""
        g = _per_channel(self.gain(quality), latent.ndim)
        return np.clip(np.rint(latent * g), INT32_MIN, INT32_MAX).astype(np.int32)

    def dequantise(self, symbols: np.ndarray, quality: int) -> np.ndarray:
        """int symbols (C, ...) -> float32 ŷ = symbols / g, what the decoder network takes."""
        return symbols.astype(np.float32) / _per_channel(self.gain(quality), symbols.ndim)

    def encode(self, symbols: np.ndarray, quality: int) -> bytes:
        """int (C, ...) -> range-coded bytes, channel by channel in row-major order."""
        if symbols.shape[0] != self.channels:
            raise ValueError(f"latent has {symbols.shape[0]} channels, tables have {self.channels}")
        base = (quality - 1) * self.channels
        return self.tables.encode([(base + c, symbols[c]) for c in range(self.channels)])

    def decode(self, payload: bytes, quality: int, shape: tuple[int, ...]) -> np.ndarray:
        """Bytes -> int32 (C, *shape)."""
        if not 1 <= quality <= self.num_qualities:
            raise FormatError(f"quality {quality} not in this model (1..{self.num_qualities})")
        n = int(np.prod(shape))
        base = (quality - 1) * self.channels
        groups = self.tables.decode(payload, [(base + c, n) for c in range(self.channels)])
        return np.stack(groups).reshape((self.channels, *shape))


@dataclass
class HyperStreams:
    """The two streams of a hyperprior latent (sections 5 and 6)."""

    hyper: bytes
    conditional: bytes


class HyperpriorCoding:
    """ẑ with per-channel tables; v − mean with Gaussian tables chosen by the integer h_s."""

    def __init__(self, gains: np.ndarray, hyper_tables: FrequencyTables, scale_tables: FrequencyTables,
                 hyper_synthesis: HyperSynthesis):
        self.gains = gains.astype(np.float32)  # (Q, M)
        self.num_qualities, self.channels = self.gains.shape
        self.hyper_tables = hyper_tables
        self.scale_tables = scale_tables
        self.hyper_synthesis = hyper_synthesis
        if len(hyper_tables) != hyper_synthesis.hyper_channels:
            raise ValueError("hyper tables do not match the hyper-synthesis")
        if len(scale_tables) != hyper_synthesis.scale_levels or hyper_synthesis.latent_channels != self.channels:
            raise ValueError("scale tables do not match the hyper-synthesis")
        self.mean_step = np.float32(2.0**-hyper_synthesis.mean_shift)

    @property
    def hyper_channels(self) -> int:
        return self.hyper_synthesis.hyper_channels

    def gain(self, quality: int) -> np.ndarray:
        """(M, 1, 1) float32 gain of a quality: the encoder graph's second input, and ŷ = v̂ / gain."""
        return self.gains[quality - 1][:, None, None]

    def parameters(self, z_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ẑ (Hc, h, w) -> (means float32 (M, 4h, 4w), scale indices uint8): exact integers inside."""
        mean_codes, index = self.hyper_synthesis(z_hat)
        return mean_codes.astype(np.float32) * self.mean_step, index

    def encode(self, v: np.ndarray, z: np.ndarray) -> tuple[HyperStreams, np.ndarray]:
        """Gained latent v (M, h, w) and z (Hc, h/4, w/4), floats from the encoder graph -> streams and
        the symbols (for tests and rate estimates)."""
        z_hat = np.clip(np.floor(z + 0.5), INT32_MIN, INT32_MAX).astype(np.int32)
        hyper = self.hyper_tables.encode([(c, z_hat[c]) for c in range(z_hat.shape[0])])
        means, index = self.parameters(z_hat)
        if means.shape != v.shape:
            raise ValueError(f"latent {v.shape} and hyper-latent {z.shape} do not match")
        symbols = np.clip(np.floor(v - means + np.float32(0.5)), INT32_MIN, INT32_MAX).astype(np.int32)
        order = np.argsort(index.reshape(-1), kind="stable")
        counts = np.bincount(index.reshape(-1), minlength=len(self.scale_tables))
        flat = symbols.reshape(-1)[order]
        groups, start = [], 0
        for table, count in enumerate(counts.tolist()):
            if count:
                groups.append((table, flat[start : start + count]))
                start += count
        return HyperStreams(hyper, self.scale_tables.encode(groups)), symbols

    def decode(self, streams: HyperStreams, latent_shape: tuple[int, int]) -> np.ndarray:
        """Streams -> v̂ = symbols + mean, float32 (M, h, w) (divide by the gain for the decoder graph)."""
        return self.decode_symbols(streams, latent_shape).v_hat

    def decode_symbols(self, streams: HyperStreams, latent_shape: tuple[int, int]) -> "DecodedHyperLatent":
        """Streams -> ẑ, scale indices, means, symbols and v̂ (what the decoder derives, for checks)."""
        h, w = latent_shape
        if h % 4 or w % 4:
            raise FormatError("hyperprior latent size must be a multiple of 4")
        zh, zw = h // 4, w // 4
        z_groups = self.hyper_tables.decode(streams.hyper, [(c, zh * zw) for c in range(self.hyper_channels)])
        z_hat = np.stack(z_groups).reshape(self.hyper_channels, zh, zw)
        means, index = self.parameters(z_hat)
        order = np.argsort(index.reshape(-1), kind="stable")
        counts = np.bincount(index.reshape(-1), minlength=len(self.scale_tables))
        groups = [(t, c) for t, c in enumerate(counts.tolist()) if c]
        decoded = self.scale_tables.decode(streams.conditional, groups)
        flat = np.empty(index.size, np.int32)
        flat[order] = np.concatenate(decoded) if decoded else np.zeros(0, np.int32)
        symbols = flat.reshape(means.shape)
        return DecodedHyperLatent(z_hat, index, means, symbols, symbols.astype(np.float32) + means)


@dataclass
class DecodedHyperLatent:
    z_hat: np.ndarray  # int32 (Hc, h/4, w/4)
    index: np.ndarray  # uint8 (M, h, w) scale-table index of every element
    means: np.ndarray  # float32 (M, h, w)
    symbols: np.ndarray  # int32 (M, h, w)
    v_hat: np.ndarray  # float32 (M, h, w) = symbols + means
