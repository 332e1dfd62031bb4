"""What both image models share: g_a / g_s, the 16× downsampling, padding and the rate–distortion loss."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import GDN, grow_weight
from .rate_ladder import GainedLatentModel, grow_log_gains

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

    @torch.no_grad()
    def warm_start(self, state: dict[str, torch.Tensor], lambdas: tuple[float, ...] | None = None) -> list[str]:
        """Start from another image checkpoint of the same or a smaller width; returns the keys taken.

        g_a and g_s carry over, grown Net2Net-style when this model's hidden width N or latent width M is larger
        (the old channels compute exactly what they did, the new ones start from random weights that the old
        ones do not see yet: a model grown in N starts with the old model's rate and distortion; one grown in M
        with its distortion, its new latent channels costing what they cost until training uses or silences
        them). The gains carry over; for a
        rate point not in the old ladder (`lambdas`, the old λs; default this model's) they are inter- or
        extrapolated log-linearly in log λ. A hyperprior's entropy model (h_a, h_s, the z density) when both
        models are hyperpriors of the same M and H. From a factorized model (the hyperprior's stage 1) only the
        transforms and gains carry over; the entropy model is learnt afresh.
        """
        if "log_gains" in state and state["log_gains"].shape[1] > self.log_gains.shape[1]:
            raise ValueError(f"the checkpoint has more latent channels ({state['log_gains'].shape[1]}) than this "
                             f"model ({self.log_gains.shape[1]}): widths can only grow")
        taken: list[str] = []
        for prefix, transform in (("analysis", self.analysis), ("synthesis", self.synthesis)):
            for name, module in transform.named_modules():
                key = f"{prefix}.{name}"
                if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and f"{key}.weight" in state:
                    try:
                        module.weight.copy_(grow_weight(state[f"{key}.weight"], module.weight,
                                                        isinstance(module, nn.ConvTranspose2d)))
                    except ValueError as exc:
                        raise ValueError(f"{key}: {exc}") from None
                    taken.append(f"{key}.weight")
                    if module.bias is not None and f"{key}.bias" in state:
                        module.bias[: state[f"{key}.bias"].shape[0]] = state[f"{key}.bias"]
                        taken.append(f"{key}.bias")
                elif isinstance(module, GDN) and f"{key}.beta" in state:
                    module.grow_from(state[f"{key}.beta"], state[f"{key}.gamma"])
                    taken += [f"{key}.beta", f"{key}.gamma"]
        own = self.state_dict()
        same = {k: v for k, v in state.items() if k.startswith("hyper_") and k in own and own[k].shape == v.shape}
        self.load_state_dict(same, strict=False)
        taken += self.grow_entropy_model(state)
        if "log_gains" in state:
            old_lambdas = tuple(lambdas) if lambdas is not None else tuple(self.lambdas.tolist())
            if len(old_lambdas) != state["log_gains"].shape[0]:
                raise ValueError(f"{len(old_lambdas)} λs for {state['log_gains'].shape[0]} trained gain vectors")
            self.log_gains.copy_(grow_log_gains(state["log_gains"], old_lambdas, tuple(self.lambdas.tolist()),
                                                self.log_gains.shape[1]))
            taken.append("log_gains")
        return sorted(taken + list(same))

    def grow_entropy_model(self, state: dict[str, torch.Tensor]) -> list[str]:
        """Entropy-model tensors of a checkpoint with fewer latent channels, grown into this model (keys taken).
        None here; the hyperprior overrides it."""
        return []
