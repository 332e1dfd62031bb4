"""The integer hyper-synthesis h_s: ẑ -> (mean codes, scale-table indices), exactly, on any machine.

Every probability the y stream is coded with is derived from these integers, so they must be the
same in the encoder and the decoder whatever the BLAS, thread count or CPU. The network is a
stack of 3×3 convolutions with int8 kernels and integer biases (trained with fake quantization,
train/hyperprior.py). Each layer computes

    acc  = conv(codes_in, kernel) + bias            (exact integers)
    code = floor(acc · 2^exponent + 1/2)            (per output channel exponent, may be negative)

followed by depth-to-space (×2) and a clip to [0, ACTIVATION_MAX_CODE] for the two hidden layers;
the last layer's first M channels are mean codes (value = code · 2^-mean_shift, clipped to
±MEAN_MAX_CODE) and its other M channels scale indices (clipped to 0..levels-1).

The convolutions run as float64 matrix products: every operand and partial sum is an integer
below 2^53, so the result is exact in any summation order (inputs are clipped so that this holds
for hostile files too).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import AecError

if TYPE_CHECKING:
    from .context import CheckerboardContext

# |ẑ| is clipped to this before h_s: with int8 kernels over 64·9 taps the partial sums stay < 2^53.
Z_INPUT_LIMIT = 1 << 30
# Big ẑ maps run in bands of BAND_ROWS rows with BAND_HALO rows of context on each side (the three
# 3×3 layers reach less than 2 rows of ẑ), so memory stays bounded and the result is the same.
BAND_ROWS = 32
BAND_HALO = 2


@dataclass(frozen=True)
class IntegerLayer:
    kernel: np.ndarray  # (Cout, Cin, 3, 3) int8 values
    bias: np.ndarray  # (Cout,) int64, accumulator units
    exponent: np.ndarray  # (Cout,) int64


@dataclass(frozen=True)
class HyperSynthesis:
    """Integer h_s of one bundle (three layers; sub-pixel upsampling after the first two)."""

    layers: tuple[IntegerLayer, IntegerLayer, IntegerLayer]
    latent_channels: int
    activation_max_code: int
    mean_shift: int
    mean_max_code: int
    scale_levels: int

    @classmethod
    def from_tables(cls, tables, latent_channels: int, constants: dict) -> "HyperSynthesis":
        layers = []
        for i in range(3):
            kernel = np.asarray(tables[f"hs_kernel_{i}"]).astype(np.int64)
            bias = np.asarray(tables[f"hs_bias_{i}"]).astype(np.int64)
            exponent = np.asarray(tables[f"hs_exponent_{i}"]).astype(np.int64)
            if kernel.ndim != 4 or kernel.shape[2:] != (3, 3) or bias.shape != kernel.shape[:1] \
                    or exponent.shape != kernel.shape[:1] or np.abs(kernel).max(initial=0) > 127 \
                    or np.abs(exponent).max(initial=0) > 60 or np.abs(bias).max(initial=0) >= 2**50:
                raise AecError(f"inconsistent hyper-synthesis layer {i} in the model bundle")
            layers.append(IntegerLayer(kernel, bias, exponent))
        if layers[2].kernel.shape[0] != 2 * latent_channels:
            raise AecError("hyper-synthesis output does not match the latent channels")
        return cls(tuple(layers), latent_channels, int(constants["activation_max_code"]),  # type: ignore[arg-type]
                   int(constants["mean_shift"]), int(constants["mean_max_code"]), int(constants["scale_levels"]))

    @property
    def hyper_channels(self) -> int:
        return int(self.layers[0].kernel.shape[1])

    def __call__(self, z_hat: np.ndarray, context: "CheckerboardContext | None" = None,
                 anchor_codes: np.ndarray | None = None, part: str = "all") -> tuple[np.ndarray, np.ndarray]:
        """z_hat: int (H, h, w) -> (mean codes int32 (M, 4h, 4w), scale indices uint8 (M, 4h, 4w)).

        part: "all" positions, or only the checkerboard's "anchors" ((row + column) even) or "others" (the
        rest left 0; the last layer, most of the work, runs only where asked). With a context and the
        anchors' codes (int (M, 4h, 4w), clip(16·v̂) on the anchors, 0 elsewhere), the others' parameters
        include the context's (context.py)."""
        if z_hat.ndim != 3 or z_hat.shape[0] != self.hyper_channels:
            raise ValueError(f"ẑ must be ({self.hyper_channels}, h, w), got {z_hat.shape}")
        if part not in ("all", "anchors", "others"):
            raise ValueError(f"part must be all, anchors or others, got {part!r}")
        rows = z_hat.shape[1]
        if context is not None and (part != "others" or anchor_codes is None or anchor_codes.shape != (
                self.latent_channels, 4 * rows, 4 * z_hat.shape[2])):
            raise ValueError("a context computes the other positions from the anchor codes of the whole latent")
        if rows <= BAND_ROWS + 2 * BAND_HALO:
            return self._run(z_hat, part, context, anchor_codes)
        m, w = self.latent_channels, z_hat.shape[2]
        means = np.empty((m, 4 * rows, 4 * w), np.int32)
        index = np.empty((m, 4 * rows, 4 * w), np.uint8)
        for r0 in range(0, rows, BAND_ROWS):
            r1 = min(rows, r0 + BAND_ROWS)
            a0, a1 = max(0, r0 - BAND_HALO), min(rows, r1 + BAND_HALO)
            # the context reaches 2 latent rows: inside the halo (8 latent rows), so the cut is invisible
            band_anchors = None if anchor_codes is None else anchor_codes[:, 4 * a0 : 4 * a1]
            band_means, band_index = self._run(z_hat[:, a0:a1], part, context, band_anchors)
            keep = slice(4 * (r0 - a0), 4 * (r1 - a0))
            means[:, 4 * r0 : 4 * r1] = band_means[:, keep]
            index[:, 4 * r0 : 4 * r1] = band_index[:, keep]
        return means, index

    def _run(self, z_hat: np.ndarray, part: str, context: "CheckerboardContext | None" = None,
             anchor_codes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        a = np.clip(z_hat.astype(np.float64), -Z_INPUT_LIMIT, Z_INPUT_LIMIT)
        for layer in self.layers[:2]:
            a = _depth_to_space(_requantize(_conv3x3(a, layer), layer.exponent))
            np.clip(a, 0, self.activation_max_code, out=a)
        last = self.layers[2]
        m, (h, w) = self.latent_channels, a.shape[1:]
        if part == "all":
            return self._outputs(_conv3x3(a, last), last.exponent)
        means, index = np.zeros((m, h, w), np.int32), np.zeros((m, h, w), np.uint8)
        # bands start at even latent rows (4 per ẑ row), so the local checkerboard is the global one
        for r0, c0 in checkerboard_phases(part):
            acc = _conv3x3(a, last, (r0, c0))  # (2M, ⌈(h−r0)/2⌉, ⌈(w−c0)/2⌉)
            shape = acc.shape
            acc, exponent = acc.reshape(shape[0], -1), last.exponent
            if context is not None and anchor_codes is not None:
                acc, exponent = aligned_sum(acc, exponent, context.accumulate(anchor_codes, a, r0, c0),
                                            context.out.exponent)
            means[:, r0::2, c0::2], index[:, r0::2, c0::2] = self._outputs(acc.reshape(shape), exponent)
        return means, index

    def _outputs(self, acc: np.ndarray, exponent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Last layer's accumulator (2M, ...) -> (mean codes int32, scale indices uint8) (M, ...)."""
        m = self.latent_channels
        means = np.clip(_requantize(acc[:m], exponent[:m] + self.mean_shift), -self.mean_max_code,
                        self.mean_max_code)
        index = np.clip(_requantize(acc[m:], exponent[m:]), 0, self.scale_levels - 1)
        return means.astype(np.int32), index.astype(np.uint8)


def checkerboard_phases(part: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """The two (first row, first column) of the every-second-row-and-column sub-grids that make up the anchors
    ((row + column) even) or the others."""
    p = 0 if part == "anchors" else 1
    return (0, p), (1, 1 - p)


def anchor_mask(height: int, width: int) -> np.ndarray:
    """bool (height, width): True on a checkerboard context's anchors ((row + column) even), coded first."""
    return (np.add.outer(np.arange(height), np.arange(width)) % 2) == 0


def exact_sum_fits(*terms: tuple[IntegerLayer, int]) -> bool:
    """Whether Σ_t acc_t·2^e_t, formed on the finest grid, stays below 2^53 for every output channel, with
    acc_t = bias + Σ kernel·input and |input| ≤ the term's bound (the check that makes float64 exact)."""
    for o in range(int(terms[0][0].kernel.shape[0])):
        low = min(int(layer.exponent[o]) for layer, _ in terms)
        total = 0
        for layer, bound in terms:
            peak = int(np.abs(layer.kernel[o]).sum()) * bound + abs(int(layer.bias[o]))
            total += peak << (int(layer.exponent[o]) - low)
        if total >= 2**53:
            return False
    return True


def aligned_sum(acc_a: np.ndarray, exp_a: np.ndarray, acc_b: np.ndarray,
                exp_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """acc_a·2^exp_a + acc_b·2^exp_b (row o with exponents [o]) as (an integer accumulator on the finer grid,
    its exponent): exact whenever `exact_sum_fits` accepted the layers."""
    low = np.minimum(exp_a, exp_b)
    total = acc_a * np.ldexp(1.0, exp_a - low)[:, None] + acc_b * np.ldexp(1.0, exp_b - low)[:, None]
    return total, low


def _conv3x3(x: np.ndarray, layer: IntegerLayer, phase: tuple[int, int] | None = None) -> np.ndarray:
    """Zero-padded 3×3 convolution (cross-correlation, as PyTorch) of float64 integer codes, plus bias: (Cout, h, w),
    or with phase (r0, c0) only at rows r0, r0 + 2, ... and columns c0, c0 + 2, ...."""
    cin, h, w = x.shape
    padded = np.zeros((cin, h + 2, w + 2), np.float64)
    padded[:, 1:-1, 1:-1] = x
    (r0, c0), step = (phase, 2) if phase else ((0, 0), 1)
    oh, ow = len(range(r0, h, step)), len(range(c0, w, step))
    # im2col: (cin·9, oh·ow) with the same (cin, ky, kx) order as the kernel's flattening
    cols = np.empty((cin, 3, 3, oh, ow), np.float64)
    for ky in range(3):
        for kx in range(3):
            cols[:, ky, kx] = padded[:, ky + r0 : ky + r0 + step * (oh - 1) + 1 : step,
                                     kx + c0 : kx + c0 + step * (ow - 1) + 1 : step]
    kernel = layer.kernel.reshape(layer.kernel.shape[0], -1).astype(np.float64)
    out = kernel @ cols.reshape(cin * 9, oh * ow)
    out += layer.bias.astype(np.float64)[:, None]
    return out.reshape(-1, oh, ow)


def _requantize(acc: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """floor(acc · 2^e + 1/2) per channel; exact in float64 (power-of-two scaling, integers < 2^52)."""
    scale = np.ldexp(1.0, exponent.astype(np.int64))[:, None, None]
    return np.floor(acc * scale + 0.5)


def _depth_to_space(x: np.ndarray) -> np.ndarray:
    """(4C, h, w) -> (C, 2h, 2w) as torch.nn.functional.pixel_shuffle(·, 2)."""
    c4, h, w = x.shape
    c = c4 // 4
    return x.reshape(c, 2, 2, h, w).transpose(0, 3, 1, 4, 2).reshape(c, 2 * h, 2 * w)
