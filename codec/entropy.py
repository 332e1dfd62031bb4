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
        """symbols: int (C, H, W) quantized latent values -> range-coded bytes.

        Works channel by channel so that temporaries stay one channel in size.
        """
        c = symbols.shape[0]
        if c != self.channels:
            raise ValueError(f"latent has {c} channels, tables have {self.channels}")
        q = quality - 1
        models = self._models(quality)
        enc = constriction.stream.queue.RangeEncoder()
        overflow: list[tuple[int, int]] = []
        for ch in range(c):
            values = symbols[ch].reshape(-1).astype(np.int64)
            lo = int(self.offsets[q, ch])
            escape = int(self.lengths[q, ch]) - 1
            hi = lo + escape - 1
            idx = values - lo
            is_escape = (idx < 0) | (idx >= escape)
            if is_escape.any():
                idx[is_escape] = escape
                for v in values[is_escape].tolist():
                    overflow.append((1, v - hi - 1) if v > hi else (0, lo - 1 - v))
            enc.encode(idx.astype(np.int32), models[ch])
        for sign, magnitude in overflow:
            self._encode_overflow(enc, sign, magnitude)
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
        out = np.empty((self.channels, n), dtype=np.int32)
        escaped: list[tuple[int, np.ndarray]] = []
        try:
            dec = constriction.stream.queue.RangeDecoder(words)
            for ch in range(self.channels):
                idx = dec.decode(models[ch], n)
                escape = int(self.lengths[q, ch]) - 1
                hit = np.flatnonzero(idx == escape)
                if hit.size:
                    escaped.append((ch, hit))
                out[ch] = idx + int(self.offsets[q, ch])
            for ch, positions in escaped:
                lo = int(self.offsets[q, ch])
                hi = lo + int(self.lengths[q, ch]) - 2
                for pos in positions.tolist():
                    sign = int(dec.decode(_SIGN))
                    nbits = int(dec.decode(_NBITS))
                    mag = (1 << (nbits - 1)) if nbits else 0
                    for shift in range(0, max(nbits - 1, 0), 16):
                        mag += int(dec.decode(_CHUNK_MODEL)) << shift
                    value = hi + 1 + mag if sign else lo - 1 - mag
                    if not -(1 << 31) <= value < (1 << 31):
                        raise FormatError("corrupt latent stream (value out of range)")
                    out[ch, pos] = value
        except FormatError:
            raise
        except Exception as e:  # constriction signals malformed streams with various errors
            raise FormatError(f"corrupt latent stream ({type(e).__name__})") from None
        return out.reshape(self.channels, height, width)
