"""The latent layer: the one place that maps quality -> gains -> tables, quantises and dequantises.

Two codings, chosen by the bundle's manifest ("latent_coding"):

- `FactorizedCoding` (image-edge, audio-edge; format versions 1 and 2): symbols = rint(y · g_q)
  per channel, coded channel by channel with that quality's table of the channel.
- `HyperpriorCoding` (format version 3): the encoder graph gives v = y · g_q and z; ẑ = floor(z + ½)
  is coded with one table per channel; the integer h_s (coding/hyper.py) turns ẑ into a mean code
  and a scale index for every element of v; symbols (v − mean rounded down or up, whichever costs less in
  bits + RDO_LAMBDA · squared error) are coded grouped by scale index. Every probability comes from integers, so encoder and decoder agree on every machine.
  With a checkerboard context (format version 4) the anchors are coded first and the other half with
  parameters that also see them (coding/context.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FormatError, InputError
from .context import CheckerboardContext
from .hyper import HyperSynthesis, anchor_mask
from .range_coder import FrequencyTables

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# Encoder's choice (not normative): rounding v − mean down or up costs bits + RDO_LAMBDA · error² (error in units of the
# quantisation step). 32 was best of 4..160 on images-val (BD-rate −2.4 % vs plain rounding; benchmarks/rdo_lambda.py).
RDO_LAMBDA = 32.0
_RDO_CHUNK = 1 << 14  # elements per step of the rounding choice
_ESCAPE_EXTRA_BITS = 6.0  # sign and bit length of an escaped value, before its magnitude bits


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
    """The streams of a hyperprior latent: ẑ (section 5), y (section 6; with a checkerboard context only the
    anchors) and the non-anchors of a context model (section 10; empty without a context)."""

    hyper: bytes
    conditional: bytes
    context: bytes = b""


class HyperpriorCoding:
    """ẑ with per-channel tables; v − mean with Gaussian tables chosen by the integer h_s (and, in a
    checkerboard-context model, for the non-anchors by h_s plus the integer context network)."""

    def __init__(self, gains: np.ndarray, hyper_tables: FrequencyTables, scale_tables: FrequencyTables,
                 hyper_synthesis: HyperSynthesis, context: CheckerboardContext | None = None):
        self.gains = gains.astype(np.float32)  # (Q, M)
        self.num_qualities, self.channels = self.gains.shape
        self.hyper_tables = hyper_tables
        self.scale_tables = scale_tables
        self.hyper_synthesis = hyper_synthesis
        self.context = context
        if len(hyper_tables) != hyper_synthesis.hyper_channels:
            raise ValueError("hyper tables do not match the hyper-synthesis")
        if len(scale_tables) != hyper_synthesis.scale_levels or hyper_synthesis.latent_channels != self.channels:
            raise ValueError("scale tables do not match the hyper-synthesis")
        self.mean_step = np.float32(2.0**-hyper_synthesis.mean_shift)
        self._bits = _bit_costs(scale_tables)  # what the encoder's rounding choice reads
        self._offsets, self._escapes = scale_tables.offsets, scale_tables.lengths - 1

    @property
    def hyper_channels(self) -> int:
        return self.hyper_synthesis.hyper_channels

    def gain(self, quality: int) -> np.ndarray:
        """(M, 1, 1) float32 gain of a quality: the encoder graph's second input, and ŷ = v̂ / gain."""
        return self.gains[quality - 1][:, None, None]

    def parameters(self, z_hat: np.ndarray, symbols: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """ẑ (Hc, h, w) -> (means float32 (M, 4h, 4w), scale indices uint8) of every element: exact integers
        inside. With a checkerboard context the non-anchors' depend on the anchors' `symbols` (required then)."""
        if self.context is None:
            mean_codes, index = self.hyper_synthesis(z_hat)
        else:
            if symbols is None:
                raise ValueError("a checkerboard-context model's parameters depend on the anchors' symbols")
            mean_codes, index = self.hyper_synthesis(z_hat, part="anchors")
            anchors = np.broadcast_to(anchor_mask(*index.shape[1:]), index.shape)
            other_codes, other_index = self._others(z_hat, symbols, mean_codes, anchors)
            mean_codes, index = np.where(anchors, mean_codes, other_codes), np.where(anchors, index, other_index)
        return mean_codes.astype(np.float32) * self.mean_step, index

    def _others(self, z_hat: np.ndarray, symbols: np.ndarray, mean_codes: np.ndarray,
                anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Second pass: mean codes and scale indices of the non-anchors, from h_s and the context network, which
        reads clip(16·v̂) = clip(2^μ·n + m) of the decoded anchors."""
        limit = self.hyper_synthesis.mean_max_code
        codes = (symbols.astype(np.int64) << self.hyper_synthesis.mean_shift) + mean_codes
        anchor_codes = np.where(anchors, np.clip(codes, -limit, limit), 0).astype(np.int32)
        return self.hyper_synthesis(z_hat, self.context, anchor_codes, part="others")

    def encode(self, v: np.ndarray, z: np.ndarray) -> tuple[HyperStreams, np.ndarray]:
        """Gained latent v (M, h, w) and z (Hc, h/4, w/4), floats from the encoder graph -> streams and
        the symbols (for tests and rate estimates)."""
        z_hat = np.clip(np.floor(z + 0.5), INT32_MIN, INT32_MAX).astype(np.int32)
        hyper = self.hyper_tables.encode([(c, z_hat[c]) for c in range(z_hat.shape[0])])
        mean_codes, index = self.hyper_synthesis(z_hat, part="all" if self.context is None else "anchors")
        if mean_codes.shape != v.shape:
            raise ValueError(f"latent {v.shape} and hyper-latent {z.shape} do not match")
        symbols = self._symbols(v, mean_codes, index)
        if self.context is None:
            return HyperStreams(hyper, _encode_grouped(self.scale_tables, symbols, index)), symbols
        anchors = np.broadcast_to(anchor_mask(*v.shape[1:]), v.shape)
        conditional = _encode_grouped(self.scale_tables, symbols[anchors], index[anchors])
        other_codes, other_index = self._others(z_hat, symbols, mean_codes, anchors)
        symbols = np.where(anchors, symbols, self._symbols(v, other_codes, other_index))
        context = _encode_grouped(self.scale_tables, symbols[~anchors], other_index[~anchors])
        return HyperStreams(hyper, conditional, context), symbols

    def _symbols(self, v: np.ndarray, mean_codes: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Rate-distortion optimised rounding: of n = floor(r) and n + 1, r = v − m·2^−μ, the one with fewer
        bits(n | scale table) + RDO_LAMBDA · (r − n)² (the encoder's choice; only the decoder's steps are
        normative). A few channels at a time, so that huge images need no large temporaries."""
        means = mean_codes.astype(np.float32) * self.mean_step
        out = np.empty(v.shape, np.int32)
        lam = np.float32(RDO_LAMBDA)
        step = max(1, _RDO_CHUNK // max(1, v[0].size))
        for c in range(0, v.shape[0], step):
            r = v[c : c + step] - means[c : c + step]
            low = np.clip(np.floor(r), INT32_MIN, INT32_MAX - 1)
            table = index[c : c + step].astype(np.intp)
            n = low.astype(np.int64)
            pos = n - self._offsets[table]
            escape = self._escapes[table]
            row = table * self._bits.shape[1]
            cost_low = self._symbol_bits(row, pos, escape) + lam * np.square(r - low)
            cost_high = self._symbol_bits(row, pos + 1, escape) + lam * np.square(r - low - 1)
            out[c : c + step] = n + (cost_high < cost_low)
        return out

    def symbol_bits(self, symbols: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Bits each symbol costs in its scale index's table (float32, the shape of `symbols`): what the range
        coder spends, to within its rounding, for the encoder's searches."""
        table = index.astype(np.intp)
        pos = symbols.astype(np.int64) - self._offsets[table]
        return self._symbol_bits(table * self._bits.shape[1], pos, self._escapes[table])

    def _symbol_bits(self, row: np.ndarray, pos: np.ndarray, escape: np.ndarray) -> np.ndarray:
        """Bits of symbols at positions `pos` of their tables (rows of the flattened cost table); escaped values
        cost the escape plus their magnitude's bits."""
        inside = (pos >= 0) & (pos < escape)
        if inside.all():
            return self._bits.ravel()[row + pos]
        cost = self._bits.ravel()[row + np.where(inside, pos, self._bits.shape[1] - 1)]
        beyond = np.maximum(np.where(pos < 0, -pos, pos - escape + 1), 0).astype(np.float32)
        return np.where(inside, cost, cost + np.log2(beyond + 1))

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
        if self.context is None:
            mean_codes, index = self.hyper_synthesis(z_hat)
            symbols = _decode_grouped(self.scale_tables, streams.conditional, index).reshape(index.shape)
        else:
            mean_codes, index = self.hyper_synthesis(z_hat, part="anchors")
            anchors = np.broadcast_to(anchor_mask(h, w), index.shape)
            symbols = np.zeros(index.shape, np.int32)
            symbols[anchors] = _decode_grouped(self.scale_tables, streams.conditional, index[anchors])
            other_codes, other_index = self._others(z_hat, symbols, mean_codes, anchors)
            mean_codes, index = np.where(anchors, mean_codes, other_codes), np.where(anchors, index, other_index)
            symbols[~anchors] = _decode_grouped(self.scale_tables, streams.context, other_index[~anchors])
        means = mean_codes.astype(np.float32) * self.mean_step
        return DecodedHyperLatent(z_hat, index, means, symbols, symbols.astype(np.float32) + means)


def _bit_costs(tables: FrequencyTables) -> np.ndarray:
    """(T, L + 1) float32: −log2 p of every in-range symbol of every table, the escape's cost (+ sign and length)
    last."""
    freqs = tables.freqs.astype(np.float64)
    cost = tables.precision - np.log2(np.maximum(freqs, 1))
    bits = np.full((len(tables), freqs.shape[1] + 1), 64.0)
    for t, length in enumerate(tables.lengths.tolist()):
        bits[t, : length - 1] = cost[t, : length - 1]
        bits[t, -1] = cost[t, length - 1] + _ESCAPE_EXTRA_BITS
    return bits.astype(np.float32)


def _encode_grouped(tables: FrequencyTables, symbols: np.ndarray, index: np.ndarray) -> bytes:
    """One stream: a group per scale index that occurs, in increasing index, each the symbols with that index
    in their given (row-major) order."""
    flat_index = index.reshape(-1)
    order = np.argsort(flat_index, kind="stable")
    counts = np.bincount(flat_index, minlength=len(tables))
    flat = symbols.reshape(-1)[order]
    groups, start = [], 0
    for table, count in enumerate(counts.tolist()):
        if count:
            groups.append((table, flat[start : start + count]))
            start += count
    return tables.encode(groups)


def _decode_grouped(tables: FrequencyTables, payload: bytes, index: np.ndarray) -> np.ndarray:
    """The inverse of `_encode_grouped`: int32 symbols in the order of `index` (flattened)."""
    flat_index = index.reshape(-1)
    order = np.argsort(flat_index, kind="stable")
    counts = np.bincount(flat_index, minlength=len(tables))
    decoded = tables.decode(payload, [(t, c) for t, c in enumerate(counts.tolist()) if c])
    flat = np.empty(flat_index.size, np.int32)
    flat[order] = np.concatenate(decoded) if decoded else np.zeros(0, np.int32)
    return flat


@dataclass
class DecodedHyperLatent:
    z_hat: np.ndarray  # int32 (Hc, h/4, w/4)
    index: np.ndarray  # uint8 (M, h, w) scale-table index of every element
    means: np.ndarray  # float32 (M, h, w)
    symbols: np.ndarray  # int32 (M, h, w)
    v_hat: np.ndarray  # float32 (M, h, w) = symbols + means
