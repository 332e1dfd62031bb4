"""1-D convolutional waveform autoencoder (SEANet / EnCodec family) with a factorized entropy model.

Encoder: a 7-tap input conv, then per stride s a block of dilated residual units and a strided
conv that doubles the channels; strides 2·4·5·8 = 320 give a 75 Hz latent frame rate at 24 kHz.
The decoder mirrors it with transposed convs. No recurrent layers, so both halves export to ONNX
as plain convolutions. Quantisation and rate follow the image model: per-level gain vectors on
the latent, uniform noise in training, a learned per-channel factorized density (shared
`FactorizedDensity`), so the same integer-table export applies.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .model import FactorizedDensity

SAMPLE_RATE = 24_000
# rate points (λ on the distortion, rate in kbps); one gain vector each. Spaced ×3 because the rate
# grows slowly with λ (≈ +2.5 kbps per doubling near 12 kbps); spans ≈ 5…25 kbps
DEFAULT_AUDIO_LAMBDAS = (2.0, 6.0, 18.0, 54.0, 160.0, 480.0)


@dataclass
class AudioConfig:
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
    def from_dict(cls, d: dict) -> "AudioConfig":
        return cls(channels=int(d["channels"]), latent=int(d["latent"]), strides=tuple(d["strides"]),
                   lambdas=tuple(d["lambdas"]), sample_rate=int(d.get("sample_rate", SAMPLE_RATE)))


class ResidualUnit(nn.Module):
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


def _mel_basis(n_fft: int, n_mels: int, sample_rate: int, device) -> torch.Tensor:
    """Triangular filters on the HTK mel scale, (n_mels, n_fft // 2 + 1)."""
    mel = torch.linspace(0.0, 2595.0 * math.log10(1.0 + sample_rate / 2 / 700.0), n_mels + 2, dtype=torch.float64)
    edges = 700.0 * (10 ** (mel / 2595.0) - 1.0)
    freqs = torch.linspace(0.0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    fb = torch.minimum((freqs - lo) / (mid - lo).clamp_min(1e-9), (hi - freqs) / (hi - mid).clamp_min(1e-9))
    return fb.clamp_min(0.0).float().to(device)


def multi_resolution_mel_loss(x_hat: torch.Tensor, x: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Per-sample L1 between log10 mel magnitude spectrograms, averaged over MEL_RESOLUTIONS (N,).

    Log-mel with a floor (as in DAC) rather than spectral convergence: a per-sample SC term divides
    by the target's energy and blew up training on near-silent segments (loss ×100 in 600 steps).
    Magnitudes are scaled by 1/sum(window) so the 1e-5 floor is ~-100 dB re full scale.
    """
    total = 0.0
    a, b = x_hat.squeeze(1), x.squeeze(1)
    for n_fft, n_mels in MEL_RESOLUTIONS:
        win = torch.hann_window(n_fft, device=x.device)
        fb = _mel_basis(n_fft, n_mels, sample_rate, x.device)
        sa = torch.stft(a, n_fft, n_fft // 4, window=win, return_complex=True).abs() / win.sum()
        sb = torch.stft(b, n_fft, n_fft // 4, window=win, return_complex=True).abs() / win.sum()
        ma = torch.log10((fb @ sa).clamp_min(1e-5))
        mb = torch.log10((fb @ sb).clamp_min(1e-5))
        total = total + (ma - mb).abs().mean(dim=(1, 2))
    return total / len(MEL_RESOLUTIONS)


class AudioCodecModel(nn.Module):
    def __init__(self, cfg: AudioConfig):
        super().__init__()
        self.config = cfg
        self.encoder = AudioEncoder(cfg)
        self.decoder = AudioDecoder(cfg)
        self.density = FactorizedDensity(cfg.latent)
        k = len(cfg.lambdas)
        self.log_gains = nn.Parameter(
            torch.linspace(math.log(0.5), math.log(4.0), k)[:, None].repeat(1, cfg.latent).contiguous())
        self.register_buffer("lambdas", torch.tensor(cfg.lambdas, dtype=torch.float32))
        # bfloat16 autocast for the conv transforms in training (trainer --bf16); entropy model and losses stay float32
        self.transform_dtype: torch.dtype | None = None

    def _autocast(self, x: torch.Tensor):
        enabled = self.transform_dtype is not None and self.training
        return torch.autocast(x.device.type, dtype=self.transform_dtype or torch.bfloat16, enabled=enabled)

    def forward(self, x: torch.Tensor, level: torch.Tensor) -> dict[str, torch.Tensor]:
        with self._autocast(x):
            y = self.encoder(x)
        y = y.float()
        gain = torch.exp(self.log_gains[level])[:, :, None]
        v = y * gain
        if self.training:
            noisy = v + torch.empty_like(v).uniform_(-0.5, 0.5)
            rounded = v + (torch.round(v) - v).detach()
        else:
            noisy = rounded = torch.round(v)
        b, c, f = v.shape
        centre = (noisy / gain).permute(1, 0, 2).reshape(c, 1, -1)
        half = (0.5 / gain).permute(1, 0, 2).expand(c, b, f).reshape(c, 1, -1)
        lik = self.density.bin_probability(centre - half, centre + half).clamp_min(1e-9)
        bits = -torch.log2(lik).reshape(c, b, f).sum(dim=(0, 2))
        with self._autocast(x):
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


def audio_macs_per_second(model: AudioCodecModel) -> dict[str, float]:
    """Multiply-accumulates per second of 24 kHz audio, counted from layer shapes."""

    def count(seq: nn.Sequential, length: int) -> tuple[float, int]:
        macs = 0.0
        for layer in seq:
            if isinstance(layer, ResidualUnit):
                m, _ = count(layer.block, length)
                macs += m
            elif isinstance(layer, nn.Conv1d):
                length = (length + 2 * layer.padding[0] - layer.dilation[0] * (layer.kernel_size[0] - 1) - 1) \
                    // layer.stride[0] + 1
                macs += length * layer.in_channels * layer.out_channels * layer.kernel_size[0]
            elif isinstance(layer, nn.ConvTranspose1d):
                macs += length * layer.in_channels * layer.out_channels * layer.kernel_size[0]
                length = length * layer.stride[0]
        return macs, length

    sr = model.config.sample_rate
    enc, frames = count(model.encoder.net, sr)
    dec, _ = count(model.decoder.net, frames)
    return {"encoder_mmac_per_s": enc / 1e6, "decoder_mmac_per_s": dec / 1e6}


def pad_to_hop(x: torch.Tensor, hop: int) -> torch.Tensor:
    t = x.shape[-1]
    return F.pad(x, (0, (-t) % hop)) if t % hop else x
