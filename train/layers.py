"""Layers and gradient tricks shared by every model: GDN, straight-through bounds and rounding, mixed precision.

These are the pieces whose exact forward arithmetic export and the run time depend on, so they
exist once: changing one changes every model (and its checkpoints) the same way.
"""
from __future__ import annotations

from contextlib import AbstractContextManager

import torch
import torch.nn.functional as F
from torch import nn


class LowerBoundSTE(torch.autograd.Function):
    """max(x, bound) whose gradient still flows when it pushes x back above the bound."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, bound: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, bound)
        return torch.maximum(x, bound)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        x, bound = ctx.saved_tensors
        pass_through = (x >= bound) | (grad < 0)
        return pass_through.type_as(grad) * grad, None


def lower_bound(x: torch.Tensor, bound: float) -> torch.Tensor:
    """max(x, bound); a parameter stuck below its bound would otherwise never receive a gradient again."""
    b = torch.tensor(bound, dtype=x.dtype, device=x.device)
    if torch.is_grad_enabled() and x.requires_grad:
        return LowerBoundSTE.apply(x, b)
    return torch.maximum(x, b)


class ClipPassBack(torch.autograd.Function):
    """clamp(x, lo, hi) with CompressAI's LowerBound gradient rule on both sides."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return x.clamp(lo, hi)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        inside = (x >= ctx.lo) & (x <= ctx.hi)
        back_in = ((x < ctx.lo) & (grad < 0)) | ((x > ctx.hi) & (grad > 0))
        return grad * (inside | back_in).type_as(grad), None, None


def clip_ste(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Clip whose gradient passes where it would move x back into range (a hard clip would freeze it)."""
    if torch.is_grad_enabled() and x.requires_grad:
        return ClipPassBack.apply(x, lo, hi)
    return x.clamp(lo, hi)


def round_half_up_ste(x: torch.Tensor) -> torch.Tensor:
    """floor(x + 1/2) forward (what the integer run time computes, not round-half-even), identity gradient."""
    return x + (torch.floor(x + 0.5) - x).detach()


def transform_autocast(x: torch.Tensor, dtype: torch.dtype | None, training: bool) -> AbstractContextManager:
    """Mixed precision for the conv transforms only, and only in training.

    The entropy models stay float32 (their CDFs need the precision) and evaluation / export always
    run float32, so a bf16-trained checkpoint exports exactly like a float32 one.
    """
    enabled = dtype is not None and training
    return torch.autocast(x.device.type, dtype=dtype or torch.bfloat16, enabled=enabled)


class GDN(nn.Module):
    """Generalized divisive normalization (Ballé 2016); inverse=True multiplies instead."""

    _pedestal = 2.0**-36

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = inverse
        self._beta_bound = (beta_min + self._pedestal) ** 0.5
        self._gamma_bound = self._pedestal**0.5
        self.beta = nn.Parameter(torch.sqrt(torch.ones(channels) + self._pedestal))
        self.gamma = nn.Parameter(torch.sqrt(gamma_init * torch.eye(channels) + self._pedestal))

    def effective_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        """beta, gamma as the layer uses them (reparametrised: squared, bounded away from zero)."""
        beta = lower_bound(self.beta, self._beta_bound) ** 2 - self._pedestal
        gamma = lower_bound(self.gamma, self._gamma_bound) ** 2 - self._pedestal
        return beta, gamma

    @torch.no_grad()
    def grow_from(self, beta: torch.Tensor, gamma: torch.Tensor) -> None:
        """Take a narrower GDN's parameters for the first channels; old and new channels do not
        normalize each other (zero cross terms), so the old channels' outputs are unchanged."""
        old = beta.shape[0]
        if old > self.beta.shape[0] or gamma.shape != (old, old):
            raise ValueError(f"cannot grow a GDN of {old} channels into {self.beta.shape[0]}")
        self.beta[:old] = beta
        zero = self._gamma_bound  # the parameter value of an effective 0
        self.gamma[:old, old:] = zero
        self.gamma[old:, :old] = zero
        self.gamma[:old, :old] = gamma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta, gamma = self.effective_params()
        c = gamma.shape[0]
        norm = torch.sqrt(F.conv2d(x * x, gamma.view(c, c, 1, 1), beta))
        return x * norm if self.inverse else x / norm


def grow_weight(old: torch.Tensor, new: torch.Tensor, transposed: bool, zero_new_inputs: bool = True) -> torch.Tensor:
    """A convolution weight grown Net2Net-style: `old` in the leading slice of `new`'s initialisation, and the
    weights from new input channels to old output channels zeroed, so the old outputs are unchanged and the
    new channels start learning from random weights (`zero_new_inputs=False` where the new inputs are known to
    start at zero). Conv weights are out×in×k…, transposed ones in×out×k…."""
    if old.shape[2:] != new.shape[2:] or any(o > n for o, n in zip(old.shape, new.shape)):
        raise ValueError(f"cannot grow {tuple(old.shape)} into {tuple(new.shape)}")
    out_dim, in_dim = (1, 0) if transposed else (0, 1)
    grown = new.detach().clone()
    index: list[slice] = [slice(None)] * new.dim()
    index[out_dim], index[in_dim] = slice(0, old.shape[out_dim]), slice(old.shape[in_dim], None)
    if zero_new_inputs:
        grown[tuple(index)] = 0.0
    grown[tuple(slice(0, d) for d in old.shape)] = old
    return grown
