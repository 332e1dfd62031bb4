"""The integer checkerboard context: decoded anchors -> better means and scales for the other half of y.

A checkerboard-context model codes y in two passes: the *anchors* ((row + column) even) with h_s's
parameters alone, then the *non-anchors* with h_s's output accumulator plus this network's, which
sees the decoded anchors around each element (He et al. 2021). Like h_s (hyper.py) it is all
integers, so encoder and decoder agree on every probability on every machine:

    hidden = clip(floor(A·2^ea + B·2^eb + 1/2), 0, A_max)    A = 5×5 conv of anchor codes (16·v̂), B = 1×1
                                                              conv of h_s's last hidden activation
    ctx    = 1×1 conv of hidden                                 (accumulator, exponent ec)

and ctx·2^ec is added to h_s's last accumulator before its rounding (only at non-anchors). Sums of
terms with different exponents are formed on the finer grid; the bundle is refused unless every such
sum provably stays below 2^53, so float64 arithmetic is exact in any order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import AecError
from .hyper import HyperSynthesis, IntegerLayer, aligned_sum, exact_sum_fits

CONTEXT_KERNEL = 5
# Taps of the 5×5 window that land on anchors when centred on a non-anchor: (dy + dx) odd. The others
# see only non-anchors, which the context never reads (they are zero in training too).
_ANCHOR_TAPS = tuple((dy, dx) for dy in range(CONTEXT_KERNEL) for dx in range(CONTEXT_KERNEL) if (dy + dx) % 2)


@dataclass(frozen=True)
class CheckerboardContext:
    """The three integer layers of a bundle's context network (tables `cx_*_j`, j = 0, 1, 2)."""

    anchors: IntegerLayer  # (K, M, 5, 5): codes of the decoded anchors
    hyper: IntegerLayer  # (K, mid, 1, 1): h_s's last hidden activation
    out: IntegerLayer  # (2M, K, 1, 1): added to h_s's last accumulator
    activation_max_code: int
    mean_max_code: int

    @classmethod
    def from_tables(cls, tables, hyper_synthesis: HyperSynthesis) -> "CheckerboardContext":
        latent_channels, last = hyper_synthesis.latent_channels, hyper_synthesis.layers[2]
        hyper_mid = int(last.kernel.shape[1])
        layers = []
        for j, (kernel_size, cin) in enumerate(((CONTEXT_KERNEL, latent_channels), (1, hyper_mid), (1, None))):
            try:
                kernel = np.asarray(tables[f"cx_kernel_{j}"]).astype(np.int64)
                bias = np.asarray(tables[f"cx_bias_{j}"]).astype(np.int64)
                exponent = np.asarray(tables[f"cx_exponent_{j}"]).astype(np.int64)
            except KeyError as e:
                raise AecError(f"the model bundle's context network lacks {e.args[0]}") from None
            if kernel.ndim != 4 or kernel.shape[2:] != (kernel_size, kernel_size) \
                    or (cin is not None and kernel.shape[1] != cin) or bias.shape != kernel.shape[:1] \
                    or exponent.shape != kernel.shape[:1] or np.abs(kernel).max(initial=0) > 127 \
                    or np.abs(exponent).max(initial=0) > 60 or np.abs(bias).max(initial=0) >= 2**50:
                raise AecError(f"inconsistent context layer {j} in the model bundle")
            layers.append(IntegerLayer(kernel, bias, exponent))
        a, h, o = layers
        if h.kernel.shape[0] != a.kernel.shape[0] or o.kernel.shape[1] != a.kernel.shape[0] \
                or o.kernel.shape[0] != 2 * latent_channels:
            raise AecError("context layers do not fit together or do not match the latent channels")
        amax, mmax = hyper_synthesis.activation_max_code, hyper_synthesis.mean_max_code
        if not (exact_sum_fits((a, mmax), (h, amax)) and exact_sum_fits((last, amax), (o, amax))):
            raise AecError("the context network's sums could exceed 2^53 (bundle refused: decoding would not be exact)")
        return cls(a, h, o, amax, mmax)

    @property
    def channels(self) -> int:
        return int(self.anchors.kernel.shape[0])

    def __post_init__(self) -> None:
        # float64 matrices laid out for BLAS once (a strided kernel slice makes numpy skip BLAS: ~20× slower)
        # (K, taps·M): one matrix product over the 12 anchor taps (im2col order: tap, then input channel)
        taps = np.concatenate([self.anchors.kernel[:, :, dy, dx] for dy, dx in _ANCHOR_TAPS], axis=1)
        object.__setattr__(self, "_tap_matrix", np.ascontiguousarray(taps, np.float64))
        object.__setattr__(self, "_hyper_matrix", np.ascontiguousarray(self.hyper.kernel[:, :, 0, 0], np.float64))
        object.__setattr__(self, "_out_matrix", np.ascontiguousarray(self.out.kernel[:, :, 0, 0], np.float64))

    def accumulate(self, anchor_codes: np.ndarray, hidden: np.ndarray, r0: int, c0: int) -> np.ndarray:
        """Output accumulator (2M, n) float64 integers (exponent `out.exponent`) at the non-anchors of rows r0, r0 + 2,
        ... and columns c0, c0 + 2, ... (n of them, row-major).

        anchor_codes: int (M, h, w), clip(16·v̂) on the anchors and 0 elsewhere; hidden: h_s's last hidden
        activation codes (mid, h, w) as float64; zero padding outside the map.
        """
        pad = CONTEXT_KERNEL // 2
        m, h, w = anchor_codes.shape
        oh, ow = len(range(r0, h, 2)), len(range(c0, w, 2))
        codes = np.zeros((m, h + 2 * pad, w + 2 * pad))
        codes[:, pad:-pad, pad:-pad] = np.clip(anchor_codes, -self.mean_max_code, self.mean_max_code)
        cols = np.empty((len(_ANCHOR_TAPS), m, oh, ow))
        for t, (dy, dx) in enumerate(_ANCHOR_TAPS):
            cols[t] = codes[:, r0 + dy : r0 + dy + 2 * (oh - 1) + 1 : 2, c0 + dx : c0 + dx + 2 * (ow - 1) + 1 : 2]
        acc_a = self._tap_matrix @ cols.reshape(-1, oh * ow)  # type: ignore[attr-defined]
        acc_a += self.anchors.bias.astype(np.float64)[:, None]
        acc_h = self._hyper_matrix @ hidden[:, r0::2, c0::2].reshape(hidden.shape[0], -1)  # type: ignore[attr-defined]
        acc_h += self.hyper.bias.astype(np.float64)[:, None]
        total, exponent = aligned_sum(acc_a, self.anchors.exponent, acc_h, self.hyper.exponent)
        codes_hidden = np.clip(np.floor(total * np.ldexp(1.0, exponent)[:, None] + 0.5), 0, self.activation_max_code)
        out = self._out_matrix @ codes_hidden  # type: ignore[attr-defined]
        out += self.out.bias.astype(np.float64)[:, None]
        return out
