"""Mean-scale hyperprior image model (Minnen et al. 2018, no autoregression) with an integer h_s.

g_a / g_s and the per-rate-point gains are those of the factorized model (so a trained factorized
model warm-starts it). The hyperprior models the *gained* latent v = y·g, so the side information
shrinks with the rate too: h_a (float, inside the encoder graph) maps v to z at 1/64 resolution;
ẑ = floor(z + 1/2) is coded with a factorized density; the integer h_s (integer_hyper.py) maps ẑ
to a mean (1/16 grid) and a scale-table index per element of v, and v − mean is coded with a
discretized zero-mean Gaussian of that scale.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .context import CheckerboardContext, anchor_mask
from .entropy_models import (
    SCALE_LEVELS,
    SCALE_MAX,
    SCALE_MIN,
    FactorizedDensity,
    gaussian_bin_probability,
    scale_from_index,
    scale_table,
    unit_bin_likelihood,
)
from .factorized import DEFAULT_LAMBDAS
from .image_base import Analysis, ImageCodecModel, Synthesis
from .integer_hyper import (
    ACTIVATION_MAX_CODE,
    ACTIVATION_SHIFT,
    MEAN_MAX_CODE,
    MEAN_SHIFT,
    IntegerHyperSynthesis,
)
from .layers import grow_weight, round_half_up_ste

__all__ = [
    "ACTIVATION_MAX_CODE", "ACTIVATION_SHIFT", "MEAN_MAX_CODE", "MEAN_SHIFT", "SCALE_LEVELS", "SCALE_MAX",
    "SCALE_MIN", "HyperAnalysis", "HyperpriorCodecModel", "HyperpriorConfig", "hyper_synthesis_constants",
]

PAD_MULTIPLE = 64  # g_a (16) × h_a (4)


@dataclass
class HyperpriorConfig:
    """Hyperprior image model; saved in checkpoints as a dict with "arch": "hyperprior"."""

    channels: int = 64  # N: width of g_a / g_s
    latent: int = 160  # M: latent channels
    hyper: int = 64  # H: channels of z (1/64 resolution)
    context: int = 0  # K: channels of the checkerboard context network (0: none, one pass)
    lambdas: tuple[float, ...] = field(default_factory=lambda: DEFAULT_LAMBDAS)
    arch: str = "hyperprior"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lambdas"] = list(self.lambdas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> HyperpriorConfig:
        return cls(channels=int(d["channels"]), latent=int(d["latent"]), hyper=int(d["hyper"]),
                   context=int(d.get("context", 0)), lambdas=tuple(d["lambdas"]))


def hyper_synthesis_constants() -> dict[str, float | int]:
    """The fixed-point and scale-table constants the run time needs to reproduce h_s (manifest)."""
    return {"activation_max_code": ACTIVATION_MAX_CODE, "mean_shift": MEAN_SHIFT, "mean_max_code": MEAN_MAX_CODE,
            "scale_levels": SCALE_LEVELS, "scale_min": SCALE_MIN, "scale_max": SCALE_MAX}


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


class HyperpriorCodecModel(ImageCodecModel):
    """Transforms, per-level gains, hyper transforms, factorized prior for z, Gaussian conditional for v."""

    pad_multiple = PAD_MULTIPLE
    scales: torch.Tensor  # (SCALE_LEVELS,) buffer

    def __init__(self, config: HyperpriorConfig):
        super().__init__()
        self.config = config
        n, m, h = config.channels, config.latent, config.hyper
        self.analysis = Analysis(n, m)
        self.synthesis = Synthesis(n, m)
        self.hyper_analysis = HyperAnalysis(m, h)
        self.hyper_synthesis = IntegerHyperSynthesis(h, m)
        self.hyper_density = FactorizedDensity(h)
        self.hyper_context = (CheckerboardContext(m, self.hyper_synthesis.mid, config.context)
                              if config.context else None)
        self.init_rate_ladder(config.lambdas, m)
        self.register_buffer("scales", scale_table())

    def parameter_groups(self) -> list[dict]:
        """The z density learns at 10x the LR (as CompressAI's aux optimizer): at the base LR it stays as
        wide as its initialisation for thousands of steps (measured: z cost constant at 0.084 bpp over
        the first 300 steps)."""
        density = list(self.hyper_density.parameters())
        ids = {id(p) for p in density}
        rest = [p for p in self.parameters() if id(p) not in ids]
        return [{"params": rest, "lr_scale": 1.0}, {"params": density, "lr_scale": 10.0}]

    rate_only = False  # set by freeze_transforms()

    def freeze_transforms(self) -> None:
        """Train only the entropy model (h_a, h_s, z density) on the rate of a fixed latent.

        With g_a, g_s and the gains taken from a trained factorized model, the distortion hardly depends
        on the entropy model, so training skips g_s and the backward pass through g_a: a step costs about
        a third of a joint one, and a fresh hyperprior does not disturb the trained transforms while its
        rate estimates are still poor (measured: joint training from the warm start lost ~0.5 dB in
        the first 1500 steps). Joint training follows without this flag.
        """
        for module in (self.analysis, self.synthesis):
            module.requires_grad_(False)
        self.log_gains.requires_grad_(False)
        self.rate_only = True

    def freeze_decoder(self) -> None:
        """Train only the encoder side (g_a, h_a): g_s, h_s, the context, the z density and the gains stay fixed.

        The decoder and the entropy tables then stay bit-identical, so only encoder.onnx changes and every file the
        previous bundle wrote decodes unchanged. What such a run can gain is the amortization gap: the encoder's
        latent search (`--refine`) finds latents 8 % cheaper at equal quality for the same decoder.
        """
        for module in (self.synthesis, self.hyper_synthesis, self.hyper_density):
            module.requires_grad_(False)
        if self.hyper_context is not None:
            self.hyper_context.requires_grad_(False)
        self.log_gains.requires_grad_(False)

    @torch.no_grad()
    def grow_entropy_model(self, state: dict[str, torch.Tensor]) -> list[str]:
        """h_a, h_s and the context of a hyperprior with fewer latent channels M (same H and K).

        Inputs from new latent channels start at zero (h_a's z and the context's features are unchanged); of the
        2M outputs (means, then scale indices) the old rows keep their places in each half; the new channels'
        means start at zero and their scale indices copy old channels' rows (cyclically), so each new channel
        starts with a spatially varying scale like a trained one, which training then adapts.
        """
        old_m = state["log_gains"].shape[1] if "log_gains" in state else self.config.latent
        if old_m == self.config.latent:
            return []
        own = self.state_dict()
        taken: list[str] = []
        for key in ("hyper_analysis.net.0.weight", "hyper_context.anchors.conv.weight"):
            if key in state and key in own:
                own[key].copy_(grow_weight(state[key], own[key], transposed=False))
                taken.append(key)
        for prefix, copy_scales in (("hyper_synthesis.out.conv", True), ("hyper_context.out.conv", False)):
            if f"{prefix}.weight" not in state or f"{prefix}.weight" not in own:
                continue
            for name in ("weight", "bias"):
                old, new = state[f"{prefix}.{name}"], own[f"{prefix}.{name}"]
                m = new.shape[0] // 2
                grown = torch.zeros_like(new)
                grown[:old_m] = old[:old_m]
                grown[m : m + old_m] = old[old_m:]
                if copy_scales:
                    for c in range(old_m, m):
                        grown[m + c] = old[old_m + c % old_m]
                new.copy_(grown)
                taken.append(f"{prefix}.{name}")
        return taken

    def entropy_parameters(self, v: torch.Tensor, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and scale index of every element of v: h_s's, or with the checkerboard context, h_s's on the
        anchors and h_s's plus the context's (from the anchors as decoded) on the others."""
        if self.hyper_context is None:
            return self.hyper_synthesis(z_hat)
        hidden, acc = self.hyper_synthesis.features(z_hat)
        mean, index = self.hyper_synthesis.entropy_parameters(acc)
        anchors = anchor_mask(v.shape[2], v.shape[3], v.device)
        v_hat_anchors = (round_half_up_ste(v - mean) + mean) * anchors
        mean_ctx, index_ctx = self.hyper_synthesis.entropy_parameters(acc + self.hyper_context(v_hat_anchors, hidden))
        return (anchors * mean + (1 - anchors) * mean_ctx, anchors * index + (1 - anchors) * index_ctx)

    def forward(self, x: torch.Tensor, level: torch.Tensor) -> dict[str, torch.Tensor]:
        frozen = self.rate_only and self.training
        with self.autocast(x), torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            y = self.analysis(x)
        y = y.float()
        gain = self.gain(level, 4)
        v = y * gain
        z = self.hyper_analysis(v)
        if self.training:
            z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5)
            z_hat = round_half_up_ste(z)
        else:
            z_noisy = z_hat = torch.floor(z + 0.5)
        mean, index = self.entropy_parameters(v, z_hat)
        sigma = scale_from_index(index)
        if self.training:
            residual = v - mean + torch.empty_like(v).uniform_(-0.5, 0.5)
            v_hat = round_half_up_ste(v - mean) + mean
        else:
            residual = torch.floor(v - mean + 0.5)
            v_hat = residual + mean
        y_lik = gaussian_bin_probability(residual, sigma)
        z_lik = unit_bin_likelihood(self.hyper_density, z_noisy)
        num_pixels = x.shape[2] * x.shape[3]
        y_bits = -torch.log2(y_lik).sum(dim=(1, 2, 3))
        z_bits = -torch.log2(z_lik).sum(dim=(1, 2, 3))
        bpp = (y_bits + z_bits) / num_pixels
        if frozen:  # rate only: no synthesis, no distortion term
            return {"x_hat": x, "bpp": bpp, "mse": torch.zeros_like(bpp), "z_bpp": z_bits / num_pixels}
        with self.autocast(x):
            x_hat = self.synthesis(v_hat / gain)
        x_hat = x_hat.float()
        mse = F.mse_loss(x_hat, x, reduction="none").mean(dim=(1, 2, 3))
        return {"x_hat": x_hat, "bpp": bpp, "mse": mse, "z_bpp": z_bits / num_pixels}
