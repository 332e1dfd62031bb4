"""One model for many rates: a learned per-channel gain vector per trained rate point (λ).

The latent y is multiplied by the gain of the sample's rate point before quantization, v = y·g,
and divided by it after: a larger gain means finer quantization. Export interpolates the trained
gains log-linearly into the bundle's quality ladder. Every model (factorized and hyperprior image
models, the audio model) shares this logic through `GainedLatentModel`.
"""
from __future__ import annotations

import math
from contextlib import AbstractContextManager

import torch
from torch import nn

from .layers import transform_autocast


def initial_log_gains(levels: int, channels: int) -> nn.Parameter:
    """log gains spaced evenly from 0.5 (coarsest rate point) to 4 (finest), the same for every channel."""
    return nn.Parameter(torch.linspace(math.log(0.5), math.log(4.0), levels)[:, None].repeat(1, channels).contiguous())


def grow_log_gains(old: torch.Tensor, old_lambdas: tuple[float, ...], new_lambdas: tuple[float, ...],
                   channels: int) -> torch.Tensor:
    """K_old×C_old log gains -> K_new×channels: rows of λs in both ladders as they were, others by log-linear
    inter/extrapolation in log λ; new channels at the median of the old ones per rate point."""
    log_old = torch.log(torch.tensor(old_lambdas, dtype=torch.float64))
    rows = []
    for lam in new_lambdas:
        same = [i for i, o in enumerate(old_lambdas) if math.isclose(o, lam, rel_tol=1e-6)]
        if same:  # a trained rate point keeps its gains exactly
            rows.append(old[same[0]].double())
            continue
        x = math.log(lam)
        hi = int(torch.searchsorted(log_old, torch.tensor(x, dtype=torch.float64)).clamp(1, len(old_lambdas) - 1))
        lo = hi - 1
        t = (x - float(log_old[lo])) / float(log_old[hi] - log_old[lo]) if len(old_lambdas) > 1 else 0.0
        rows.append(old[lo] + (old[hi] - old[lo]) * t)
    grown = torch.stack(rows).float()
    extra = grown.median(dim=1, keepdim=True).values.expand(-1, channels - grown.shape[1])
    return torch.cat([grown, extra], dim=1)


class GainedLatentModel(nn.Module):
    """Base of the codec models: gains per rate point, λ per rate point, noisy/rounded quantization.

    Subclasses call `init_rate_ladder` after building their transforms (the registration order
    fixes the optimizer's parameter order, which saved optimizer states depend on).
    """

    log_gains: nn.Parameter  # (K, C)
    lambdas: torch.Tensor  # (K,) buffer

    def init_rate_ladder(self, lambdas: tuple[float, ...], channels: int) -> None:
        self.log_gains = initial_log_gains(len(lambdas), channels)
        self.register_buffer("lambdas", torch.tensor(lambdas, dtype=torch.float32))
        # bfloat16 autocast of the transforms in training (trainer --bf16); None = float32
        self.transform_dtype: torch.dtype | None = None

    def parameter_groups(self) -> list[dict]:
        """Optimizer parameter groups; a group's "lr_scale" multiplies the scheduled LR (default: one group).

        The group count is part of a saved optimizer state: the trainer restarts the optimizer
        (fresh warm-up) when a checkpoint's count differs.
        """
        return [{"params": list(self.parameters())}]

    def autocast(self, x: torch.Tensor) -> AbstractContextManager:
        """Context for running the conv transforms (see layers.transform_autocast)."""
        return transform_autocast(x, self.transform_dtype, self.training)

    def gain(self, level: torch.Tensor, ndim: int) -> torch.Tensor:
        """Gain vectors of the rate points `level` (B,), shaped B×C×1… to multiply an ndim-d latent."""
        g = torch.exp(self.log_gains[level])
        return g.view(*g.shape, *([1] * (ndim - 2)))

    def quantize(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(v for the rate term, v for the decoder): uniform noise and straight-through rounding in
        training, round(v) for both in evaluation (round half to even, as the run time's np.rint)."""
        if self.training:
            noisy = v + torch.empty_like(v).uniform_(-0.5, 0.5)
            rounded = v + (torch.round(v) - v).detach()
            return noisy, rounded
        r = torch.round(v)
        return r, r
