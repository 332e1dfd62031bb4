"""What both image models share: g_a / g_s, the 16× downsampling, padding and the rate–distortion loss."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import GDN
from .rate_ladder import GainedLatentModel

DOWNSAMPLE = 16  # four stride-2 stages


def pad_to_multiple(x: torch.Tensor, multiple: int = DOWNSAMPLE) -> torch.Tensor:
    """Replicate-pad the bottom and right edges of N×C×H×W to multiples of `multiple` (as the run time does)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


def conv_down(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 5, stride=2, padding=2)


def deconv_up(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, 5, stride=2, padding=2, output_padding=1)


class Analysis(nn.Module):
    """g_a: RGB in [0, 1], N×3×H×W (H, W multiples of 16) -> latent N×M×H/16×W/16."""

    def __init__(self, n: int, m: int):
        super().__init__()
        self.net = nn.Sequential(
            conv_down(3, n), GDN(n), conv_down(n, n), GDN(n), conv_down(n, n), GDN(n), conv_down(n, m)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Synthesis(nn.Module):
    """g_s: dequantized latent -> RGB (unclipped, nominally [0, 1])."""

    def __init__(self, n: int, m: int):
        super().__init__()
        self.net = nn.Sequential(
            deconv_up(m, n), GDN(n, inverse=True), deconv_up(n, n), GDN(n, inverse=True),
            deconv_up(n, n), GDN(n, inverse=True), deconv_up(n, 3),
        )

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.net(y)


class ImageCodecModel(GainedLatentModel):
    """Base of the image models: g_a, g_s, gains; the loss λ·255²·MSE + bpp (MSE on a [0, 1] scale)."""

    analysis: Analysis
    synthesis: Synthesis
    pad_multiple = DOWNSAMPLE  # input sides must be multiples of this

    def loss(self, out: dict[str, torch.Tensor], level: torch.Tensor) -> torch.Tensor:
        lam = self.lambdas[level]
        return (lam * 255.0**2 * out["mse"] + out["bpp"]).mean()

    def warm_start(self, state: dict[str, torch.Tensor]) -> list[str]:
        """Load g_a, g_s and the gains of another image checkpoint (same N, M); returns the keys taken.

        Used to start a hyperprior run from a trained factorized model: the transforms and gains
        carry over, the entropy model is learnt afresh.
        """
        own = self.state_dict()
        taken = {k: v for k, v in state.items()
                 if (k.startswith(("analysis.", "synthesis.")) or k == "log_gains")
                 and k in own and own[k].shape == v.shape}
        self.load_state_dict(taken, strict=False)
        return sorted(taken)
