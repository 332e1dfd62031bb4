"""1-D convolutional waveform autoencoder (SEANet / EnCodec family) with a factorized entropy model.

Encoder: a 7-tap input conv, then per stride s a block of dilated residual units and a strided
conv that doubles the channels; strides 2·4·5·8 = 320 give a 75 Hz latent frame rate at 24 kHz.
The decoder mirrors it with transposed convs. No recurrent layers, so both halves export to ONNX
as plain convolutions. Quantisation and rate follow the factorized image model (`GainedLatentModel`: per-level gain
vectors on the latent, uniform noise in training; a learned per-channel `FactorizedDensity`), so
the same integer-table export applies.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from aecodec.metrics import mel_filterbank

from .entropy_models import FactorizedDensity, gained_likelihood
from .rate_ladder import GainedLatentModel

SAMPLE_RATE = 24_000
# rate points (λ on the distortion, rate in kbps); one gain vector each. Spaced ×3 because the rate
# grows slowly with λ (≈ +2.5 kbps per doubling near 12 kbps); spans ≈ 5…25 kbps
DEFAULT_AUDIO_LAMBDAS = (2.0, 6.0, 18.0, 54.0, 160.0, 480.0)


@dataclass
class AudioConfig:
    """Audio model; checkpoints also carry "modality": "audio" next to this dict."""

    channels: int = 16  # width after the input conv; doubles at each stride
    latent: int = 64
    strides: tuple[int, ...] = (2, 4, 5, 8)
    lambdas: tuple[float, ...] = field(default_factory=lambda: DEFAULT_AUDIO_LAMBDAS)
    sample_rate: int = SAMPLE_RATE

    @property
    def hop(self) -> int:
        return math.prod(self.strides)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    def to_dict(self) -> dict:
        d = asdict(self)
        d["strides"], d["lambdas"] = list(self.strides), list(self.lambdas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> AudioConfig:
        return cls(channels=int(d["channels"]), latent=int(d["latent"]), strides=tuple(d["strides"]),
                   lambdas=tuple(d["lambdas"]), sample_rate=int(d.get("sample_rate", SAMPLE_RATE)))


class ResidualUnit(nn.Module):
    """x + (ELU, dilated 7-tap conv to half width, ELU, 1×1 conv back)."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.ELU(), nn.Conv1d(channels, channels // 2, 7, dilation=dilation, padding=3 * dilation),
            nn.ELU(), nn.Conv1d(channels // 2, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class AudioEncoder(nn.Module):
    """Waveform N×1×T (T a multiple of the hop) -> latent N×D×T/hop."""

    def __init__(self, cfg: AudioConfig):
        super().__init__()
        c = cfg.channels
        layers: list[nn.Module] = [nn.Conv1d(1, c, 7, padding=3)]
        for s in cfg.strides:
            layers += [ResidualUnit(c, 1), ResidualUnit(c, 3), nn.ELU(),
                       nn.Conv1d(c, 2 * c, 2 * s, stride=s, padding=(s + 1) // 2)]
            c *= 2
        layers += [nn.ELU(), nn.Conv1d(c, cfg.latent, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class AudioDecoder(nn.Module):
    """Dequantised latent N×D×F -> waveform N×1×F·hop (unclipped)."""

    def __init__(self, cfg: AudioConfig):
        super().__init__()
        c = cfg.channels * 2 ** len(cfg.strides)
        layers: list[nn.Module] = [nn.Conv1d(cfg.latent, c, 7, padding=3)]
        for s in reversed(cfg.strides):
            layers += [nn.ELU(), nn.ConvTranspose1d(c, c // 2, 2 * s, stride=s, padding=(s + 1) // 2,
                                                    output_padding=s % 2)]
            c //= 2
            layers += [ResidualUnit(c, 1), ResidualUnit(c, 3)]
        layers += [nn.ELU(), nn.Conv1d(c, 1, 7, padding=3)]
        self.net = nn.Sequential(*layers)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.net(y)


MEL_RESOLUTIONS = ((256, 32), (512, 64), (1024, 80), (2048, 128))  # (n_fft, mel bands)


@lru_cache(maxsize=32)
def mel_basis(n_fft: int, n_mels: int, sample_rate: int) -> torch.Tensor:
    """`aecodec.metrics.mel_filterbank` as a float32 tensor (built once per resolution, not per step)."""
    return torch.from_numpy(mel_filterbank(sample_rate, n_fft, n_mels)).float()


def multi_resolution_mel_loss(x_hat: torch.Tensor, x: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Per-sample L1 between log10 mel magnitude spectrograms, averaged over MEL_RESOLUTIONS (N,).

    Log-mel with a floor (as in DAC) rather than spectral convergence: a per-sample SC term divides
    by the target's energy and blew up training on near-silent segments (loss ×100 in 600 steps).
    Magnitudes are scaled by 1/sum(window) so the 1e-5 floor is ~-100 dB re full scale.
    """
    total: torch.Tensor | None = None
    a, b = x_hat.squeeze(1), x.squeeze(1)
    for n_fft, n_mels in MEL_RESOLUTIONS:
        win = torch.hann_window(n_fft, device=x.device)
        fb = mel_basis(n_fft, n_mels, sample_rate).to(x.device)
        sa = torch.stft(a, n_fft, n_fft // 4, window=win, return_complex=True).abs() / win.sum()
        sb = torch.stft(b, n_fft, n_fft // 4, window=win, return_complex=True).abs() / win.sum()
        ma = torch.log10((fb @ sa).clamp_min(1e-5))
        mb = torch.log10((fb @ sb).clamp_min(1e-5))
        term = (ma - mb).abs().mean(dim=(1, 2))
        total = term if total is None else total + term
    assert total is not None
    return total / len(MEL_RESOLUTIONS)


class AudioCodecModel(GainedLatentModel):
    """Encoder, decoder, factorized density and per-level gains; rate in kbps, distortion log-mel + L1."""

    def __init__(self, cfg: AudioConfig):
        super().__init__()
        self.config = cfg
        self.encoder = AudioEncoder(cfg)
        self.decoder = AudioDecoder(cfg)
        self.density = FactorizedDensity(cfg.latent)
        self.init_rate_ladder(cfg.lambdas, cfg.latent)

    def forward(self, x: torch.Tensor, level: torch.Tensor) -> dict[str, torch.Tensor]:
        with self.autocast(x):
            y = self.encoder(x)
        y = y.float()
        gain = self.gain(level, 3)
        noisy, rounded = self.quantize(y * gain)
        lik = gained_likelihood(self.density, noisy, gain)
        bits = -torch.log2(lik).sum(dim=(1, 2))
        with self.autocast(x):
            x_hat = self.decoder(rounded / gain)
        x_hat = x_hat.float()
        seconds = x.shape[-1] / self.config.sample_rate
        return {"x_hat": x_hat, "kbps": bits / seconds / 1000,
                "mel": multi_resolution_mel_loss(x_hat, x, self.config.sample_rate), "l1": (x_hat - x).abs().mean(dim=(1, 2))}

    def loss(self, out: dict[str, torch.Tensor], level: torch.Tensor) -> torch.Tensor:
        # D + R/(10 λ): the optimum of λ·D + R/10, with every level's distortion gradient on the
        # shared transforms at the same scale (λ spans 240×: high levels would otherwise dominate)
        distortion = out["mel"] + 10.0 * out["l1"]
        return (distortion + out["kbps"] / (10.0 * self.lambdas[level])).mean()


def pad_to_hop(x: torch.Tensor, hop: int) -> torch.Tensor:
    """Zero-pad the end of N×1×T to a multiple of the hop (the encoder's total stride)."""
    t = x.shape[-1]
    return F.pad(x, (0, (-t) % hop)) if t % hop else x
