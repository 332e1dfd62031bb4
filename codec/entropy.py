"""Range coding of quantized latents with integer frequency tables (constriction).

Each quality level has, for every latent channel, a table of integer frequencies summing
to 2**precision over the symbols offset, offset+1, ..., offset+L-2 plus one escape
symbol (the last). The tables come from the model bundle; nothing here is derived from
float network outputs, so encoder and decoder agree bit for bit on every machine.

Stream layout (FORMAT.md, "latent section"): channel by channel, row-major, one symbol
per latent element; then, for each escaped element in the same order, its overflow value.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import constriction
import numpy as np

from .errors import FormatError

_Categorical = constriction.stream.model.Categorical
_Uniform = constriction.stream.model.Uniform

_SIGN = _Uniform(2)
_NBITS = _Uniform(33)  # bit length of the overflow magnitude, 0..32
_CHUNK = 1 << 16
_CHUNK_MODEL = _Uniform(_CHUNK)


@dataclass(frozen=True)
class QualityTables:
    """Integer tables of one quality level."""

    freqs: np.ndarray  # (C, Lmax) uint32, zero-padded after each channel's length
    lengths: np.ndarray  # (C,) int32, alphabet size incl. the escape symbol
    offsets: np.ndarray  # (C,) int32, value of symbol 0
    precision: int


class LatentCoder:
    """Encodes/decodes int32 latents (C×H×W) for the quality levels of one bundle."""

    def __init__(self, freqs: np.ndarray, lengths: np.ndarray, offsets: np.ndarray, precision: int,
                 cache_size: int = 8):
        # freqs: (Q, C, Lmax); lengths, offsets: (Q, C)
        if freqs.ndim != 3 or lengths.shape != freqs.shape[:2] or offsets.shape != freqs.shape[:2]:
            raise ValueError("inconsistent entropy tables")
        self.freqs = freqs
        self.lengths = lengths.astype(np.int64)
        self.offsets = offsets.astype(np.int64)
        self.precision = precision
        self.num_qualities, self.channels = lengths.shape
        self._cache: OrderedDict[int, list] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()  # the cache is shared by threads using one bundle

    def _models(self, quality: int) -> list:
        """constriction models of one quality (built once, then cached)."""
        q = quality - 1
        with self._lock:
            if q in self._cache:
                self._cache.move_to_end(q)
                return self._cache[q]
        total = float(1 << self.precision)
        models = []
        for c in range(self.channels):
            f = self.freqs[q, c, : self.lengths[q, c]].astype(np.float64) / total
            models.append(_Categorical(f, perfect=False))
        with self._lock:
            self._cache[q] = models
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return models

    def encode(self, symbols: np.ndarray, quality: int) -> bytes:
        """symbols: int (C, H, W) quantized latent values -> range-coded bytes."""
        c, h, w = symbols.shape
        if c != self.channels:
            raise ValueError(f"latent has {c} channels, tables have {self.channels}")
        q = quality - 1
        models = self._models(quality)
        flat = symbols.reshape(c, -1).astype(np.int64)
        idx = flat - self.offsets[q][:, None]
        escape = self.lengths[q][:, None] - 1
        is_escape = (idx < 0) | (idx >= escape)
        idx = np.where(is_escape, escape, idx).astype(np.int32)
        enc = constriction.stream.queue.RangeEncoder()
        for ch in range(c):
            enc.encode(idx[ch], models[ch])
        if is_escape.any():
            ch_idx, pos = np.nonzero(is_escape)
            values = flat[ch_idx, pos]
            lo = self.offsets[q][ch_idx]
            hi = lo + escape[ch_idx, 0] - 1
            above = values > hi
            magnitude = np.where(above, values - hi - 1, lo - 1 - values)
            for sign, mag in zip(above.tolist(), magnitude.tolist()):
                self._encode_overflow(enc, int(sign), int(mag))
        return enc.get_compressed().astype("<u4").tobytes()

    @staticmethod
    def _encode_overflow(enc, sign: int, magnitude: int) -> None:
        if magnitude >= 1 << 32:
            raise ValueError("latent value out of range")
        enc.encode(sign, _SIGN)
        nbits = magnitude.bit_length()
        enc.encode(nbits, _NBITS)
        rest = magnitude - (1 << (nbits - 1)) if nbits else 0  # the leading 1 bit is implied
        for shift in range(0, max(nbits - 1, 0), 16):
            enc.encode((rest >> shift) & (_CHUNK - 1), _CHUNK_MODEL)

    def decode(self, payload: bytes, quality: int, height: int, width: int) -> np.ndarray:
        """Range-coded bytes -> int32 (C, H, W). Raises FormatError on malformed input."""
        if len(payload) % 4:
            raise FormatError("corrupt latent section (length not a multiple of 4)")
        q = quality - 1
        words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
        models = self._models(quality)
        n = height * width
        try:
            dec = constriction.stream.queue.RangeDecoder(words)
            idx = np.empty((self.channels, n), dtype=np.int64)
            for ch in range(self.channels):
                idx[ch] = dec.decode(models[ch], n)
            escape = self.lengths[q][:, None] - 1
            values = idx + self.offsets[q][:, None]
            is_escape = idx == escape
            if is_escape.any():
                ch_idx, pos = np.nonzero(is_escape)
                lo = self.offsets[q][ch_idx]
                hi = lo + escape[ch_idx, 0] - 1
                for i in range(len(ch_idx)):
                    sign = int(dec.decode(_SIGN))
                    nbits = int(dec.decode(_NBITS))
                    mag = (1 << (nbits - 1)) if nbits else 0
                    for shift in range(0, max(nbits - 1, 0), 16):
                        mag += int(dec.decode(_CHUNK_MODEL)) << shift
                    values[ch_idx[i], pos[i]] = hi[i] + 1 + mag if sign else lo[i] - 1 - mag
        except FormatError:
            raise
        except Exception as e:  # constriction signals malformed streams with various errors
            raise FormatError(f"corrupt latent stream ({type(e).__name__})") from None
        if np.abs(values).max(initial=0) > 1 << 31:
            raise FormatError("corrupt latent stream (value out of range)")
        return values.reshape(self.channels, height, width).astype(np.int32)
