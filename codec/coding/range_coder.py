"""Range coding of integer symbols with integer frequency tables (constriction).

A `FrequencyTables` holds T tables; table t has frequencies summing to 2**precision over the
symbols offset[t], offset[t]+1, ..., offset[t]+L[t]-2 plus one escape symbol (the last). A stream
is a sequence of groups, each a run of symbols coded with one table; values outside a table's
range are coded as its escape symbol, and after all groups, in the same order, each escaped value
as sign, bit length and the bits below the leading one (16 at a time, uniform). The tables come
from the model bundle; nothing here is derived from float network outputs, so encoder and decoder
agree bit for bit on every machine. (FORMAT.md, "Range-coded streams".)
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import constriction
import numpy as np

from ..errors import FormatError

_Categorical = constriction.stream.model.Categorical
_Uniform = constriction.stream.model.Uniform

_SIGN = _Uniform(2)
_NBITS = _Uniform(33)  # bit length of the overflow magnitude, 0..32
_CHUNK = 1 << 16
_CHUNK_MODEL = _Uniform(_CHUNK)


class FrequencyTables:
    """T integer tables; thread-safe cache of the constriction models built from them."""

    def __init__(self, freqs: np.ndarray, lengths: np.ndarray, offsets: np.ndarray, precision: int,
                 cache_size: int = 4096):
        # freqs: (T, Lmax); lengths, offsets: (T,)
        if freqs.ndim != 2 or lengths.shape != freqs.shape[:1] or offsets.shape != freqs.shape[:1]:
            raise ValueError("inconsistent entropy tables")
        if lengths.size and (lengths.min() < 2 or lengths.max() > freqs.shape[1]):
            raise ValueError("inconsistent entropy tables (alphabet sizes)")
        self.freqs = freqs
        self.lengths = lengths.astype(np.int64)
        self.offsets = offsets.astype(np.int64)
        self.precision = int(precision)
        self._cache: OrderedDict[int, object] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()  # shared by the threads that use one bundle

    def __len__(self) -> int:
        return len(self.lengths)

    def model(self, table: int):
        """constriction model of one table (built once, then cached)."""
        with self._lock:
            if table in self._cache:
                self._cache.move_to_end(table)
                return self._cache[table]
        f = self.freqs[table, : self.lengths[table]].astype(np.float64) / float(1 << self.precision)
        model = _Categorical(f, perfect=False)
        with self._lock:
            self._cache[table] = model
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return model

    def encode(self, groups: Sequence[tuple[int, np.ndarray]]) -> bytes:
        """Groups of (table index, integer symbols) -> one range-coded stream (little-endian 32-bit words)."""
        enc = constriction.stream.queue.RangeEncoder()
        overflow: list[tuple[int, int]] = []
        for table, symbols in groups:
            values = np.asarray(symbols).reshape(-1).astype(np.int64)
            lo = int(self.offsets[table])
            escape = int(self.lengths[table]) - 1
            hi = lo + escape - 1
            idx = values - lo
            is_escape = (idx < 0) | (idx >= escape)
            if is_escape.any():
                idx[is_escape] = escape
                for v in values[is_escape].tolist():
                    overflow.append((1, v - hi - 1) if v > hi else (0, lo - 1 - v))
            enc.encode(idx.astype(np.int32), self.model(table))
        for sign, magnitude in overflow:
            _encode_overflow(enc, sign, magnitude)
        return enc.get_compressed().astype("<u4").tobytes()

    def decode(self, payload: bytes, groups: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        """A stream and its groups of (table index, count) -> int32 symbols per group.

        Raises FormatError on malformed input (constriction's own errors included).
        """
        if len(payload) % 4:
            raise FormatError("corrupt latent section (length not a multiple of 4)")
        words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
        out: list[np.ndarray] = []
        escaped: list[tuple[int, int, np.ndarray]] = []
        try:
            dec = constriction.stream.queue.RangeDecoder(words)
            for g, (table, count) in enumerate(groups):
                idx = dec.decode(self.model(table), count) if count else np.zeros(0, np.int32)
                escape = int(self.lengths[table]) - 1
                hit = np.flatnonzero(idx == escape)
                if hit.size:
                    escaped.append((g, table, hit))
                out.append((np.asarray(idx, np.int64) + int(self.offsets[table])).astype(np.int32))
            for g, table, positions in escaped:
                lo = int(self.offsets[table])
                hi = lo + int(self.lengths[table]) - 2
                for pos in positions.tolist():
                    sign = int(dec.decode(_SIGN))
                    nbits = int(dec.decode(_NBITS))
                    mag = (1 << (nbits - 1)) if nbits else 0
                    for shift in range(0, max(nbits - 1, 0), 16):
                        mag += int(dec.decode(_CHUNK_MODEL)) << shift
                    value = hi + 1 + mag if sign else lo - 1 - mag
                    if not -(1 << 31) <= value < (1 << 31):
                        raise FormatError("corrupt latent stream (value out of range)")
                    out[g][pos] = value
        except FormatError:
            raise
        except Exception as e:  # constriction signals malformed streams with various errors
            raise FormatError(f"corrupt latent stream ({type(e).__name__})") from None
        return out


def _encode_overflow(enc, sign: int, magnitude: int) -> None:
    if magnitude >= 1 << 32:
        raise ValueError("latent value out of range")
    enc.encode(sign, _SIGN)
    nbits = magnitude.bit_length()
    enc.encode(nbits, _NBITS)
    rest = magnitude - (1 << (nbits - 1)) if nbits else 0  # the leading 1 bit is implied
    for shift in range(0, max(nbits - 1, 0), 16):
        enc.encode((rest >> shift) & (_CHUNK - 1), _CHUNK_MODEL)
