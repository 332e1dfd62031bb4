"""Checkerboard context for the hyperprior (He et al. 2021), in integers like h_s.

The latent v is coded in two passes over a checkerboard: the *anchors* ((row + column) even) with the
hyperprior's parameters alone, then the other half with parameters that also see the decoded anchors
around them. The decoder has the anchors before it needs the rest, so this costs one extra pass of a
small network, not a serial autoregression.

The context network is integer-exact for the same reason as h_s (integer_hyper.py): decoded anchors are
v̂ = residual + mean, on the 1/16 grid, so 16·v̂ is an integer code; a 5×5 integer convolution of those
codes (non-anchors zeroed, so it sees anchors only) and a 1×1 integer convolution of h_s's last hidden
activation are summed and rounded to clipped 12-bit codes, and a 1×1 integer convolution of those adds to
h_s's output accumulator before its rounding to means and scale indices. That last convolution starts at
zero, so a context model warm-started from a trained hyperprior starts with its exact rates.
"""
from __future__ import annotations

import torch
from torch import nn

from .integer_hyper import ACTIVATION_MAX_CODE, ACTIVATION_SHIFT, MEAN_MAX_CODE, MEAN_SHIFT, IntegerConv
from .layers import clip_ste, round_half_up_ste

CONTEXT_KERNEL = 5


def anchor_mask(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """1×1×H×W float mask, 1 on the anchors ((row + column) even), which are coded first."""
    rows = torch.arange(height, device=device)[:, None]
    cols = torch.arange(width, device=device)[None, :]
    return ((rows + cols) % 2 == 0).float()[None, None]


class CheckerboardContext(nn.Module):
    """Decoded anchors (M channels) and h_s's hidden activation (mid channels) -> an addition to h_s's output
    accumulator (2M channels: mean, scale index) for the non-anchors."""

    def __init__(self, latent: int, hyper_mid: int, channels: int):
        super().__init__()
        self.anchors = IntegerConv(latent, channels, MEAN_SHIFT, ACTIVATION_SHIFT, kernel=CONTEXT_KERNEL)
        self.hyper = IntegerConv(hyper_mid, channels, ACTIVATION_SHIFT, ACTIVATION_SHIFT, kernel=1)
        self.out = IntegerConv(channels, 2 * latent, ACTIVATION_SHIFT, 0, kernel=1)
        nn.init.zeros_(self.out.conv.weight)
        assert self.out.conv.bias is not None
        nn.init.zeros_(self.out.conv.bias)

    @property
    def layers(self) -> tuple[IntegerConv, IntegerConv, IntegerConv]:
        return self.anchors, self.hyper, self.out

    def forward(self, v_hat_anchors: torch.Tensor, hyper_hidden: torch.Tensor) -> torch.Tensor:
        """v_hat_anchors: decoded latent, zero off the anchors; hyper_hidden: h_s's last activation codes."""
        codes = clip_ste(round_half_up_ste(v_hat_anchors * 2.0**MEAN_SHIFT), -MEAN_MAX_CODE, MEAN_MAX_CODE)
        hidden = self.anchors(codes) + self.hyper(hyper_hidden)
        hidden = clip_ste(round_half_up_ste(hidden), 0, ACTIVATION_MAX_CODE)
        return self.out(hidden)
