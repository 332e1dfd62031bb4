"""Ballé-style factorized-prior autoencoder with per-level gain vectors (variable rate).

The transforms (`Analysis`, `Synthesis`) and the entropy model (`FactorizedDensity`)
are separate modules: export turns the transforms into ONNX graphs and the density
into integer CDF tables, so the run time never evaluates the density in float.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

# Rate points the single model is trained for (CompressAI's λ ladder for MSE on a 0..255 scale,
# extended by one point above), each with its own learned gain vector on the latent.
DEFAULT_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)

DOWNSAMPLE = 16  # four stride-2 stages


@dataclass
class ModelConfig:
    channels: int = 64  # N: width of the hidden layers
    latent: int = 160  # M: latent channels
    lambdas: tuple[float, ...] = field(default_factory=lambda: DEFAULT_LAMBDAS)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lambdas"] = list(self.lambdas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(channels=int(d["channels"]), latent=int(d["latent"]), lambdas=tuple(d["lambdas"]))


PROFILES = {"edge": ModelConfig(channels=64, latent=160)}


class _LowerBoundSTE(torch.autograd.Function):
    """max(x, bound) whose gradient still flows when it pushes x back above the bound."""

    @staticmethod
    def forward(ctx, x, bound):
        ctx.save_for_backward(x, bound)
        return torch.maximum(x, bound)

    @staticmethod
    def backward(ctx, grad):
        x, bound = ctx.saved_tensors
        pass_through = (x >= bound) | (grad < 0)
        return pass_through.type_as(grad) * grad, None


def _lower_bound(x: torch.Tensor, bound: float) -> torch.Tensor:
    b = torch.tensor(bound, dtype=x.dtype, device=x.device)
    if torch.is_grad_enabled() and x.requires_grad:
        return _LowerBoundSTE.apply(x, b)
    return torch.maximum(x, b)


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
        beta = _lower_bound(self.beta, self._beta_bound) ** 2 - self._pedestal
        gamma = _lower_bound(self.gamma, self._gamma_bound) ** 2 - self._pedestal
        return beta, gamma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta, gamma = self.effective_params()
        c = gamma.shape[0]
        norm = torch.sqrt(F.conv2d(x * x, gamma.view(c, c, 1, 1), beta))
        return x * norm if self.inverse else x / norm


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 5, stride=2, padding=2)


def _deconv(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, 5, stride=2, padding=2, output_padding=1)


class Analysis(nn.Module):
    """g_a: RGB in [0, 1], N×3×H×W (H, W multiples of 16) -> latent N×M×H/16×W/16."""

    def __init__(self, n: int, m: int):
        super().__init__()
        self.net = nn.Sequential(
            _conv(3, n), GDN(n), _conv(n, n), GDN(n), _conv(n, n), GDN(n), _conv(n, m)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Synthesis(nn.Module):
    """g_s: dequantized latent -> RGB (unclipped, nominally [0, 1])."""

    def __init__(self, n: int, m: int):
        super().__init__()
        self.net = nn.Sequential(
            _deconv(m, n), GDN(n, inverse=True), _deconv(n, n), GDN(n, inverse=True),
            _deconv(n, n), GDN(n, inverse=True), _deconv(n, 3),
        )

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.net(y)


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


class FactorizedCodecModel(nn.Module):
    """The whole trainable model: transforms, per-level gains and the factorized density."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        n, m, k = config.channels, config.latent, len(config.lambdas)
        self.analysis = Analysis(n, m)
        self.synthesis = Synthesis(n, m)
        self.density = FactorizedDensity(m)
        # log of the per-channel quantization gain for each trained rate point
        self.log_gains = nn.Parameter(
            torch.linspace(math.log(0.5), math.log(4.0), k)[:, None].repeat(1, m).contiguous()
        )
        self.register_buffer("lambdas", torch.tensor(config.lambdas, dtype=torch.float32))
        # Mixed precision for the transforms only (the entropy model stays float32: its CDFs need
        # the precision). bfloat16 is ~1.8x faster on CPUs with AVX512_BF16; set by the trainer.
        self.transform_dtype: torch.dtype | None = None

    def likelihood(self, v: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        """Likelihood of (noisy or rounded) scaled latent v = y·g: P of the unit bin around v, in y units."""
        b, c, h, w = v.shape
        gain = gain.expand(b, c, 1, 1)
        centre = (v / gain).permute(1, 0, 2, 3).reshape(c, 1, -1)
        half = (0.5 / gain).permute(1, 0, 2, 3).expand(c, b, h, w).reshape(c, 1, -1)
        p = self.density.bin_probability(centre - half, centre + half)
        p = p.reshape(c, b, h, w).permute(1, 0, 2, 3)
        return torch.clamp(p, min=1e-9)

    def forward(self, x: torch.Tensor, level: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training pass: `level` (B,) indexes the rate point of each sample."""
        with self._autocast(x):
            y = self.analysis(x)
        y = y.float()
        gain = torch.exp(self.log_gains[level])[:, :, None, None]
        v = y * gain
        if self.training:
            noisy = v + torch.empty_like(v).uniform_(-0.5, 0.5)
            rounded = v + (torch.round(v) - v).detach()  # straight-through for the decoder
        else:
            noisy = rounded = torch.round(v)
        lik = self.likelihood(noisy, gain)
        with self._autocast(x):
            x_hat = self.synthesis(rounded / gain)
        x_hat = x_hat.float()
        num_pixels = x.shape[2] * x.shape[3]
        bpp = -torch.log2(lik).sum(dim=(1, 2, 3)) / num_pixels
        mse = F.mse_loss(x_hat, x, reduction="none").mean(dim=(1, 2, 3))
        return {"x_hat": x_hat, "bpp": bpp, "mse": mse}

    def _autocast(self, x: torch.Tensor):
        enabled = self.transform_dtype is not None and self.training
        return torch.autocast(x.device.type, dtype=self.transform_dtype or torch.bfloat16, enabled=enabled)

    def loss(self, out: dict[str, torch.Tensor], level: torch.Tensor) -> torch.Tensor:
        lam = self.lambdas[level]
        return (lam * 255.0**2 * out["mse"] + out["bpp"]).mean()


def count_macs_per_pixel(model: FactorizedCodecModel) -> dict[str, float]:
    """Multiply-accumulates per input pixel of encoder and decoder, counted from the layer shapes."""

    def count(module: nn.Module, in_shape: tuple[int, int, int, int]) -> tuple[float, tuple[int, ...]]:
        macs = 0.0
        shape = in_shape
        for layer in module.net:
            b, c, h, w = shape
            if isinstance(layer, nn.Conv2d):
                oh, ow = (h + 1) // 2, (w + 1) // 2
                k = layer.kernel_size[0] * layer.kernel_size[1]
                macs += oh * ow * layer.out_channels * layer.in_channels * k
                shape = (b, layer.out_channels, oh, ow)
            elif isinstance(layer, nn.ConvTranspose2d):
                k = layer.kernel_size[0] * layer.kernel_size[1]
                macs += h * w * layer.out_channels * layer.in_channels * k  # each input tap scatters k
                shape = (b, layer.out_channels, h * 2, w * 2)
            elif isinstance(layer, GDN):
                macs += h * w * c * c
        return macs, shape

    h = w = 256
    enc, lat = count(model.analysis, (1, 3, h, w))
    dec, _ = count(model.synthesis, lat)
    return {"encoder_kmac_per_px": enc / (h * w) / 1e3, "decoder_kmac_per_px": dec / (h * w) / 1e3}


def parameter_counts(model: FactorizedCodecModel) -> dict[str, int]:
    return {
        "encoder_params": sum(p.numel() for p in model.analysis.parameters()),
        "decoder_params": sum(p.numel() for p in model.synthesis.parameters()),
        "entropy_params": sum(p.numel() for p in model.density.parameters()) + model.log_gains.numel(),
    }
