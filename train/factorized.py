"""Ballé-style factorized-prior image model (bmshj2018-factorized, GDN) with per-rate-point gains.

The transforms (g_a, g_s) and the entropy model (one learned `FactorizedDensity` per latent
channel) are separate modules: export turns the transforms into ONNX graphs and the density into
integer CDF tables, so the run time never evaluates the density in float.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from .entropy_models import FactorizedDensity, gained_likelihood
from .image_base import Analysis, ImageCodecModel, Synthesis

# Rate points the single model is trained for (CompressAI's λ ladder for MSE on a 0..255 scale,
# extended by one point above), each with its own learned gain vector on the latent.
DEFAULT_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)


@dataclass
class ModelConfig:
    """Factorized image model; saved in checkpoints as a dict without "arch" (= "factorized")."""

    channels: int = 64  # N: width of the hidden layers
    latent: int = 160  # M: latent channels
    lambdas: tuple[float, ...] = field(default_factory=lambda: DEFAULT_LAMBDAS)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lambdas"] = list(self.lambdas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        return cls(channels=int(d["channels"]), latent=int(d["latent"]), lambdas=tuple(d["lambdas"]))


PROFILES = {"edge": ModelConfig(channels=64, latent=160)}


class FactorizedCodecModel(ImageCodecModel):
    """The whole trainable model: transforms, per-level gains and the factorized density."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        n, m = config.channels, config.latent
        self.analysis = Analysis(n, m)
        self.synthesis = Synthesis(n, m)
        self.density = FactorizedDensity(m)
        self.init_rate_ladder(config.lambdas, m)

    def forward(self, x: torch.Tensor, level: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training pass: `level` (B,) indexes the rate point of each sample."""
        with self.autocast(x):
            y = self.analysis(x)
        y = y.float()
        gain = self.gain(level, 4)
        noisy, rounded = self.quantize(y * gain)
        lik = gained_likelihood(self.density, noisy, gain)
        with self.autocast(x):
            x_hat = self.synthesis(rounded / gain)
        x_hat = x_hat.float()
        num_pixels = x.shape[2] * x.shape[3]
        bpp = -torch.log2(lik).sum(dim=(1, 2, 3)) / num_pixels
        mse = F.mse_loss(x_hat, x, reduction="none").mean(dim=(1, 2, 3))
        return {"x_hat": x_hat, "bpp": bpp, "mse": mse}
