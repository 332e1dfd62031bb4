"""Multi-scale STFT discriminator (EnCodec's MS-STFTD) for an optional late adversarial fine-tune.

Each scale looks at the complex STFT (real and imaginary parts as two channels) of one resolution
with a small 2-D conv stack dilated along time; the losses are DAC's: least-squares GAN and an L1
feature matching over every intermediate map. Only training uses it; export drops it.

One optimizer step trains both players: `losses` returns the discriminator's loss on the detached
reconstruction (gradients reach only the discriminator) and the generator's adversarial and
feature-matching losses, computed while the discriminator's parameters do not require gradients
(gradients reach only the codec). Summing them into one loss is therefore the usual alternating
update done simultaneously, with no second optimizer or backward pass.
"""
from __future__ import annotations

import torch
from torch import nn

DISCRIMINATOR_FFTS = (2048, 1024, 512)  # hop n_fft/4, Hann, as EnCodec


class STFTScale(nn.Module):
    """One resolution: complex STFT (2 channels) -> conv maps -> a 1-channel real/fake score map."""

    def __init__(self, n_fft: int, channels: int):
        super().__init__()
        self.n_fft = n_fft
        c = channels
        self.convs = nn.ModuleList([
            nn.Conv2d(2, c, (3, 9), padding=(1, 4)),
            nn.Conv2d(c, c, (3, 9), stride=(1, 2), dilation=(1, 1), padding=(1, 4)),
            nn.Conv2d(c, c, (3, 9), stride=(1, 2), dilation=(2, 1), padding=(2, 4)),
            nn.Conv2d(c, c, (3, 9), stride=(1, 2), dilation=(4, 1), padding=(4, 4)),
            nn.Conv2d(c, c, (3, 3), padding=(1, 1)),
        ])
        self.out = nn.Conv2d(c, 1, (3, 3), padding=(1, 1))
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """N×1×T audio -> [feature maps..., score map], each N×C×frames×bins."""
        win = torch.hann_window(self.n_fft, device=x.device)
        spec = torch.stft(x.squeeze(1), self.n_fft, self.n_fft // 4, window=win, return_complex=True)
        h = torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)  # N×2×frames×bins
        maps = []
        for conv in self.convs:
            h = self.act(conv(h))
            maps.append(h)
        maps.append(self.out(h))
        return maps


class MultiScaleSTFTDiscriminator(nn.Module):
    """The scales of DISCRIMINATOR_FFTS; `channels` sets the cost (EnCodec uses 32; 16 is a quarter of that)."""

    def __init__(self, channels: int = 16):
        super().__init__()
        self.scales = nn.ModuleList([STFTScale(n, channels) for n in DISCRIMINATOR_FFTS])

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        return [scale(x) for scale in self.scales]

    def losses(self, x_hat: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"disc": discriminator loss, "adv_g": generator LSGAN loss, "feature": feature matching}, scalars."""
        real = self(x)
        fake_detached = self(x_hat.detach())
        disc = sum(((r[-1] - 1) ** 2).mean() + (f[-1] ** 2).mean() for r, f in zip(real, fake_detached))
        params = list(self.parameters())
        flags = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(False)
        try:
            fake = self(x_hat)
        finally:
            for p, flag in zip(params, flags):
                p.requires_grad_(flag)
        adv = sum(((f[-1] - 1) ** 2).mean() for f in fake)
        feature = sum((fm - rm.detach()).abs().mean() for f, r in zip(fake, real) for fm, rm in zip(f[:-1], r[:-1]))
        n = len(self.scales)
        return {"disc": torch.as_tensor(disc) / n, "adv_g": torch.as_tensor(adv) / n,
                "feature": torch.as_tensor(feature) / (n * (len(real[0]) - 1))}
