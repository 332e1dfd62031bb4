"""Mean-scale hyperprior image model (Minnen et al. 2018, no autoregression) with an integer h_s.

Why an integer hyper-synthesis: the decoder must derive *exactly* the probabilities the encoder
used. A float h_s gives scale indices that differ by backend, thread count or CPU (CompressAI's
cross-machine decoding failures). Here h_s is trained with fake quantization that the run time
reproduces in exact integer arithmetic (Ballé, Johnston & Minnen 2019): int8 weights with a
power-of-two scale per output channel, integer biases, activations as 12-bit codes on a fixed
power-of-two grid (clipped ReLU), and rounding written as floor(x + 1/2). Its outputs are integer
indices into a table of Gaussian scales and means on a 1/16 grid.

Variable rate: as in the factorized model, the latent y is multiplied by a learned per-channel gain
of the rate point before quantization; the hyperprior models the *gained* latent v = y·g, so the
side information shrinks with the rate too.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .model import DEFAULT_LAMBDAS, Analysis, FactorizedDensity, Synthesis

# Integer hyper-synthesis constants: the run time (codec) reads them from the bundle's manifest.
ACTIVATION_SHIFT = 8  # hidden activations are codes k·2^-8
ACTIVATION_MAX_CODE = 4095  # 12-bit codes: values in [0, 16)
MEAN_SHIFT = 4  # predicted means are m·2^-4
MEAN_MAX_CODE = 2**15 - 1
WEIGHT_MAX = 127
# Gaussian scale table: SCALE_LEVELS scales spaced evenly in log between SCALE_MIN and SCALE_MAX
SCALE_MIN, SCALE_MAX, SCALE_LEVELS = 0.11, 256.0, 64


def scale_table() -> torch.Tensor:
    return torch.exp(torch.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), SCALE_LEVELS))


@dataclass
class HyperpriorConfig:
    channels: int = 64  # N: width of g_a / g_s
    latent: int = 160  # M: latent channels
    hyper: int = 64  # H: channels of z (1/64 resolution)
    lambdas: tuple[float, ...] = field(default_factory=lambda: DEFAULT_LAMBDAS)
    arch: str = "hyperprior"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lambdas"] = list(self.lambdas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "HyperpriorConfig":
        return cls(channels=int(d["channels"]), latent=int(d["latent"]), hyper=int(d["hyper"]),
                   lambdas=tuple(d["lambdas"]))


def _round_half_up_ste(x: torch.Tensor) -> torch.Tensor:
    """floor(x + 1/2) forward (what the integer run time computes), identity gradient."""
    return x + (torch.floor(x + 0.5) - x).detach()


def _clip_ste(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Clip whose gradient passes where it would move x back into range (as CompressAI's LowerBound)."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _ClipPassBack.apply(x, lo, hi)
    return x.clamp(lo, hi)


class _ClipPassBack(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return x.clamp(lo, hi)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        inside = (x >= ctx.lo) & (x <= ctx.hi)
        back_in = ((x < ctx.lo) & (grad < 0)) | ((x > ctx.hi) & (grad > 0))
        return grad * (inside | back_in).type_as(grad), None, None


class IntegerConv(nn.Module):
    """3×3 convolution whose forward pass is exactly representable in integers.

    in_shift / out_shift: input and output codes are k·2^-shift. The weight of each output channel
    is an int8 times a power of two, the bias an integer in accumulator units, so the requantization
    (accumulator → output code) is a multiplication by a power of two and a floor(x + 1/2).
    """

    def __init__(self, cin: int, cout: int, in_shift: int, out_shift: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.in_shift, self.out_shift = in_shift, out_shift

    def weight_exponent(self) -> torch.Tensor:
        """Per output channel e with weight = int8 · 2^e."""
        w = self.conv.weight.detach()
        peak = w.abs().amax(dim=(1, 2, 3)).clamp_min(1e-12)
        return torch.ceil(torch.log2(peak / WEIGHT_MAX))

    def integer_parameters(self) -> dict[str, torch.Tensor]:
        """int8 kernel, integer bias (accumulator units) and the requantization exponent per channel."""
        e = self.weight_exponent()
        scale = torch.exp2(e)[:, None, None, None]
        kernel = torch.floor(self.conv.weight.detach() / scale + 0.5).clamp(-WEIGHT_MAX, WEIGHT_MAX)
        acc_unit = torch.exp2(e - self.in_shift)  # value of one accumulator unit
        bias = torch.floor(self.conv.bias.detach() / acc_unit + 0.5)
        # output code = floor(acc · 2^(e - in_shift + out_shift) + 1/2)
        return {"kernel": kernel.to(torch.int64), "bias": bias.to(torch.int64),
                "exponent": (e - self.in_shift + self.out_shift).to(torch.int64)}

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """Integer-valued input codes -> real-valued accumulator scaled to output code units (not rounded)."""
        e = self.weight_exponent()
        scale = torch.exp2(e)[:, None, None, None]
        w = self.conv.weight
        w_q = scale * _clip_ste(_round_half_up_ste(w / scale), -WEIGHT_MAX, WEIGHT_MAX)
        acc_unit = torch.exp2(e - self.in_shift)
        b_q = acc_unit * _round_half_up_ste(self.conv.bias / acc_unit)
        x = codes * 2.0**-self.in_shift
        return F.conv2d(x, w_q, b_q, padding=1) * 2.0**self.out_shift


class IntegerHyperSynthesis(nn.Module):
    """h_s: integer ẑ (H channels, 1/64 res) -> mean codes and scale indices of v (M channels, 1/16 res).

    Two sub-pixel upsampling stages (3×3 conv to 4C channels + depth-to-space) with clipped ReLU,
    then a 3×3 conv to 2M channels: means (1/16 grid) and scale-table indices.
    """

    def __init__(self, hyper: int, latent: int):
        super().__init__()
        mid = hyper * 3 // 2
        self.up1 = IntegerConv(hyper, 4 * hyper, 0, ACTIVATION_SHIFT)
        self.up2 = IntegerConv(hyper, 4 * mid, ACTIVATION_SHIFT, ACTIVATION_SHIFT)
        self.out = IntegerConv(mid, 2 * latent, ACTIVATION_SHIFT, 0)
        self.latent = latent

    def forward(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (mean, scale index as float with straight-through gradients), both B×M×h×w."""
        a = _clip_ste(_round_half_up_ste(F.pixel_shuffle(self.up1(z_hat), 2)), 0, ACTIVATION_MAX_CODE)
        a = _clip_ste(_round_half_up_ste(F.pixel_shuffle(self.up2(a), 2)), 0, ACTIVATION_MAX_CODE)
        out = self.out(a)  # output units: means at 2^0 → rescale below
        mean_acc, index_acc = out[:, : self.latent], out[:, self.latent:]
        mean_code = _clip_ste(_round_half_up_ste(mean_acc * 2.0**MEAN_SHIFT), -MEAN_MAX_CODE, MEAN_MAX_CODE)
        index = _clip_ste(_round_half_up_ste(index_acc), 0, SCALE_LEVELS - 1)
        return mean_code * 2.0**-MEAN_SHIFT, index


class HyperAnalysis(nn.Module):
    """h_a: gained latent v (M, 1/16 res) -> z (H, 1/64 res); float, runs inside the encoder graph."""

    def __init__(self, latent: int, hyper: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(latent, hyper, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hyper, hyper, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(hyper, hyper, 5, stride=2, padding=2),
        )

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.net(v)


_SQRT2 = math.sqrt(2.0)


def gaussian_bin_probability(residual: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """P(unit bin around residual) under N(0, sigma²), evaluated in the far-from-zero-safe tail."""
    r = residual.abs()
    upper = 0.5 * torch.erfc(-(0.5 - r) / (sigma * _SQRT2))
    lower = 0.5 * torch.erfc(-(-0.5 - r) / (sigma * _SQRT2))
    return (upper - lower).clamp_min(1e-9)


class HyperpriorCodecModel(nn.Module):
    """Transforms, per-level gains, hyper transforms, factorized prior for z, Gaussian conditional for v."""

    def __init__(self, config: HyperpriorConfig):
        super().__init__()
        self.config = config
        n, m, h, k = config.channels, config.latent, config.hyper, len(config.lambdas)
        self.analysis = Analysis(n, m)
        self.synthesis = Synthesis(n, m)
        self.hyper_analysis = HyperAnalysis(m, h)
        self.hyper_synthesis = IntegerHyperSynthesis(h, m)
        self.hyper_density = FactorizedDensity(h)
        self.log_gains = nn.Parameter(
            torch.linspace(math.log(0.5), math.log(4.0), k)[:, None].repeat(1, m).contiguous()
        )
        self.register_buffer("lambdas", torch.tensor(config.lambdas, dtype=torch.float32))
        self.register_buffer("scales", scale_table())
        self.transform_dtype: torch.dtype | None = None
        self.pad_multiple = 64  # g_a (16) × h_a (4)

    def _autocast(self, x: torch.Tensor):
        enabled = self.transform_dtype is not None and self.training
        return torch.autocast(x.device.type, dtype=self.transform_dtype or torch.bfloat16, enabled=enabled)

    def z_likelihood(self, z: torch.Tensor) -> torch.Tensor:
        b, c, h, w = z.shape
        flat = z.permute(1, 0, 2, 3).reshape(c, 1, -1)
        p = self.hyper_density.bin_probability(flat - 0.5, flat + 0.5)
        return p.reshape(c, b, h, w).permute(1, 0, 2, 3).clamp_min(1e-9)

    def scale_from_index(self, index: torch.Tensor) -> torch.Tensor:
        """Table scale for an (integer-valued, straight-through) index, differentiable in the index."""
        step = math.log(SCALE_MAX / SCALE_MIN) / (SCALE_LEVELS - 1)
        return SCALE_MIN * torch.exp(index * step)

    def forward(self, x: torch.Tensor, level: torch.Tensor) -> dict[str, torch.Tensor]:
        with self._autocast(x):
            y = self.analysis(x)
        y = y.float()
        gain = torch.exp(self.log_gains[level])[:, :, None, None]
        v = y * gain
        z = self.hyper_analysis(v)
        if self.training:
            z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5)
            z_hat = _round_half_up_ste(z)
        else:
            z_noisy = z_hat = torch.floor(z + 0.5)
        mean, index = self.hyper_synthesis(z_hat)
        sigma = self.scale_from_index(index)
        if self.training:
            residual = v - mean + torch.empty_like(v).uniform_(-0.5, 0.5)
            v_hat = _round_half_up_ste(v - mean) + mean
        else:
            residual = torch.floor(v - mean + 0.5)
            v_hat = residual + mean
        y_lik = gaussian_bin_probability(residual, sigma)
        z_lik = self.z_likelihood(z_noisy)
        with self._autocast(x):
            x_hat = self.synthesis(v_hat / gain)
        x_hat = x_hat.float()
        num_pixels = x.shape[2] * x.shape[3]
        y_bits = -torch.log2(y_lik).sum(dim=(1, 2, 3))
        z_bits = -torch.log2(z_lik).sum(dim=(1, 2, 3))
        bpp = (y_bits + z_bits) / num_pixels
        mse = F.mse_loss(x_hat, x, reduction="none").mean(dim=(1, 2, 3))
        return {"x_hat": x_hat, "bpp": bpp, "mse": mse, "z_bpp": z_bits / num_pixels}

    def loss(self, out: dict[str, torch.Tensor], level: torch.Tensor) -> torch.Tensor:
        lam = self.lambdas[level]
        return (lam * 255.0**2 * out["mse"] + out["bpp"]).mean()

    def warm_start(self, state: dict[str, torch.Tensor]) -> list[str]:
        """Load g_a, g_s and the gains of a trained factorized model (same N, M); returns the keys taken."""
        taken = {k: v for k, v in state.items()
                 if k.startswith(("analysis.", "synthesis.")) or k == "log_gains"}
        own = self.state_dict()
        taken = {k: v for k, v in taken.items() if k in own and own[k].shape == v.shape}
        self.load_state_dict(taken, strict=False)
        return sorted(taken)
