"""Entropy models: the learned factorized density and the discretized Gaussian with its scale table.

Training evaluates them in float32 as likelihoods; export evaluates the same functions in float64
to build the integer tables the run time codes with, so there is one definition of each.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LIKELIHOOD_FLOOR = 1e-9  # keeps -log2(p) finite in training; export works with unfloored masses

# Gaussian conditional: SCALE_LEVELS scales spaced evenly in log between SCALE_MIN and SCALE_MAX.
# The run time reads them from the bundle's manifest; changing them changes the bitstream.
SCALE_MIN, SCALE_MAX, SCALE_LEVELS = 0.11, 256.0, 64

_SQRT2 = math.sqrt(2.0)


class FactorizedDensity(nn.Module):
    """Per-channel learned cumulative c(x) (Ballé et al. 2018, appendix 6.1).

    `logits_cdf(x)` takes x of shape C×1×K and returns logit(c(x)), same shape.
    """

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0):
        super().__init__()
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) + 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.empty(channels, dims[i + 1], 1).uniform_(-0.5, 0.5)))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))

    def logits_cdf(self, x: torch.Tensor) -> torch.Tensor:
        logits = x
        for i, matrix in enumerate(self.matrices):
            logits = torch.matmul(F.softplus(matrix), logits) + self.biases[i]
            if i < len(self.factors):
                logits = logits + torch.tanh(self.factors[i]) * torch.tanh(logits)
        return logits

    def bin_probability(self, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
        """P(lower < Y <= upper) per channel; inputs C×1×K. Numerically careful in both tails."""
        lo = self.logits_cdf(lower)
        hi = self.logits_cdf(upper)
        sign = -torch.sign(lo + hi).detach()
        return torch.abs(torch.sigmoid(sign * hi) - torch.sigmoid(sign * lo))


def gained_likelihood(density: FactorizedDensity, v: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """Likelihood of a gained latent v = y·g (B×C×…): P of the unit bin around v, measured in y units.

    The density models y, the coder codes round(v): the bin of v is [v − ½, v + ½], i.e. a bin of
    width 1/g around v/g. Works for images (B×C×H×W) and audio (B×C×F); returns v's shape.
    """
    b, c = v.shape[:2]
    rest = tuple(v.shape[2:])
    order = (1, 0, *range(2, v.ndim))  # channels first (swapping 0 and 1 is its own inverse)
    if v.ndim == 4:
        # a no-op for shapes (gain is B×C×1×1 already), but it is a node of the autograd graph and
        # with it the image models' gain gradients accumulate in the order they always did: their
        # training stays bit-identical to the runs before this module existed (audio never had it)
        gain = gain.expand(b, c, 1, 1)
    centre = (v / gain).permute(order).reshape(c, 1, -1)
    half = (0.5 / gain).permute(order).expand(c, b, *rest).reshape(c, 1, -1)
    p = density.bin_probability(centre - half, centre + half)
    return p.reshape(c, b, *rest).permute(order).clamp_min(LIKELIHOOD_FLOOR)


def unit_bin_likelihood(density: FactorizedDensity, z: torch.Tensor) -> torch.Tensor:
    """Likelihood of z (B×C×H×W) under `density` with bins of width 1 around z (no gain: the hyper latent)."""
    b, c, h, w = z.shape
    flat = z.permute(1, 0, 2, 3).reshape(c, 1, -1)
    p = density.bin_probability(flat - 0.5, flat + 0.5)
    return p.reshape(c, b, h, w).permute(1, 0, 2, 3).clamp_min(LIKELIHOOD_FLOOR)


def scale_table() -> torch.Tensor:
    """The SCALE_LEVELS Gaussian scales the hyper-synthesis indexes (float32, as in training)."""
    return torch.exp(torch.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), SCALE_LEVELS))


def scale_from_index(index: torch.Tensor) -> torch.Tensor:
    """Table scale for an (integer-valued, straight-through) index, differentiable in the index."""
    step = math.log(SCALE_MAX / SCALE_MIN) / (SCALE_LEVELS - 1)
    return SCALE_MIN * torch.exp(index * step)


def gaussian_bin_mass(residual: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """P(unit bin around residual) under N(0, sigma²), via erfc of |residual| (accurate far out in the tail)."""
    r = residual.abs()
    upper = 0.5 * torch.erfc(-(0.5 - r) / (sigma * _SQRT2))
    lower = 0.5 * torch.erfc(-(-0.5 - r) / (sigma * _SQRT2))
    return upper - lower


def gaussian_bin_probability(residual: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """`gaussian_bin_mass` floored for training (-log2 of it is the rate)."""
    return gaussian_bin_mass(residual, sigma).clamp_min(LIKELIHOOD_FLOOR)
