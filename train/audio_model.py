"""1-D convolutional waveform autoencoder (SEANet / EnCodec family) with a factorized entropy model.

Encoder: a 7-tap input conv, then per stride s a block of dilated residual units and a strided
conv that doubles the channels; strides 2·4·5·8 = 320 give a 75 Hz latent frame rate at 24 kHz.
The decoder mirrors it with transposed convs. No recurrent layers, so both halves export to ONNX
as plain convolutions. Quantisation and rate follow the factorized image model (`GainedLatentModel`: per-level gain
vectors on the latent, uniform noise in training; a learned per-channel `FactorizedDensity`), so
the same integer-table export applies.
"""
from __future__ import annotations

from collections.abc import Callable

import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from aecodec.metrics import mel_filterbank

from .audio_discriminator import MultiScaleSTFTDiscriminator
from .entropy_models import FactorizedDensity, gained_likelihood
from .layers import grow_weight
from .rate_ladder import GainedLatentModel, grow_log_gains

SAMPLE_RATE = 24_000
# rate points (λ on the distortion, rate in kbps); one gain vector each. Spaced ×3 because the rate
# grows slowly with λ (≈ +2.5 kbps per doubling near 12 kbps); spans ≈ 5…25 kbps
DEFAULT_AUDIO_LAMBDAS = (2.0, 6.0, 18.0, 54.0, 160.0, 480.0)


@dataclass
class AudioConfig:
    """Audio model; checkpoints also carry "modality": "audio" next to this dict.

    The width, depth and activation fields added after audio-edge (decoder_channels, residual_units,
    decoder_residual_units, activation) are written to the dict only when they differ from audio-edge's
    defaults, so the config of every earlier checkpoint and bundle reads and writes unchanged.
    """

    channels: int = 16  # encoder width after the input conv; doubles at each stride
    latent: int = 64
    strides: tuple[int, ...] = (2, 4, 5, 8)
    lambdas: tuple[float, ...] = field(default_factory=lambda: DEFAULT_AUDIO_LAMBDAS)
    sample_rate: int = SAMPLE_RATE
    decoder_channels: int = 0  # decoder width at its output end (0 = channels); doubles towards the latent
    residual_units: int = 2  # encoder residual units per stride, dilations 1, 3, 9, …
    decoder_residual_units: int = 0  # per stride in the decoder (0 = residual_units)
    # ELU (audio-edge) or a ReLU-family one that ONNX Runtime fuses into the convolution before it
    # (benchmarks/audio_activation_speed.py: decoder ×1.15–1.3 on an AVX2 CPU); no parameters, so a
    # checkpoint warm-starts across activations (the function changes: fine-tune after the swap)
    activation: str = "elu"
    # "conv": the mirrored transposed-conv decoder (audio-edge); "fourier": ConvNeXt blocks at the latent
    # frame rate and an inverse-STFT head (`FourierDecoder`): ~5× the decoder's parameters at about half
    # its ONNX Runtime time, because the work is dense 1×1 convolutions at 75 Hz, not thin ones at 24 kHz
    decoder: str = "conv"
    fourier_dim: int = 256  # width of the ConvNeXt blocks
    fourier_hidden: int = 768  # their inner (1×1 expansion) width
    fourier_blocks: int = 6
    # >1: the encoder's first strides (their product) are one framing conv (kernel 2·patch, stride patch)
    # straight to the width those stages would have reached: no thin 16/32-channel layers at 24 and 12 kHz,
    # which were most of the encoder's ONNX Runtime time for few of its MACs (issue 18: ≥ 50× real time)
    encoder_patch: int = 1
    # >0: the first `encoder_bare` strides (after any framing conv) keep their activation and strided conv but
    # not their residual units: the thin full-rate layers go, the nonlinearity before 3 kHz stays. Empty slots
    # (nn.Identity) keep every other layer's name, so such an encoder inherits all its weights from a full one
    encoder_bare: int = 0

    @property
    def hop(self) -> int:
        return math.prod(self.strides)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    @property
    def decoder_width(self) -> int:
        return self.decoder_channels or self.channels

    @property
    def decoder_units(self) -> int:
        return self.decoder_residual_units or self.residual_units

    def to_dict(self) -> dict:
        d = asdict(self)
        d["strides"], d["lambdas"] = list(self.strides), list(self.lambdas)
        for key in OPTIONAL_CONFIG_KEYS:  # audio-edge's dict had none of them
            if d[key] == getattr(AudioConfig, key):
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> AudioConfig:
        extra: dict = {key: int(d[key]) for key in OPTIONAL_CONFIG_KEYS if key in d and key not in TEXT_CONFIG_KEYS}
        if "activation" in d:
            extra["activation"] = activation_name(d["activation"])
        if "decoder" in d:
            extra["decoder"] = decoder_kind(d["decoder"])
        return cls(channels=int(d["channels"]), latent=int(d["latent"]), strides=tuple(d["strides"]),
                   lambdas=tuple(d["lambdas"]), sample_rate=int(d.get("sample_rate", SAMPLE_RATE)), **extra)


OPTIONAL_CONFIG_KEYS = ("decoder_channels", "residual_units", "decoder_residual_units", "activation", "decoder",
                        "fourier_dim", "fourier_hidden", "fourier_blocks", "encoder_patch", "encoder_bare")
TEXT_CONFIG_KEYS = ("activation", "decoder")
DECODERS = ("conv", "fourier")


def decoder_kind(name: str) -> str:
    """A known decoder family's name, or ValueError naming the choices."""
    if name not in DECODERS:
        raise ValueError(f"unknown audio decoder {name!r} (choices: {', '.join(DECODERS)})")
    return name

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"elu": nn.ELU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "relu": nn.ReLU}


def activation_name(name: str) -> str:
    """A known activation's name, or ValueError naming the choices."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown audio activation {name!r} (choices: {', '.join(ACTIVATIONS)})")
    return name

# rate points reaching above 24 kbps (issue 18: `-b 24` inside the trained range): audio-edge's ladder and
# one more point ×3 up; audio-edge measured 21.8–24.1 kbps at λ = 480 and +4.8 kbps per doubling of the gains
LADDER_ABOVE_24K = (2.0, 6.0, 18.0, 54.0, 160.0, 480.0, 1440.0)

# `--audio-profile` presets of a new run (trainer): audio-edge's shape, and issue 18's proposal: the decoder
# 25 % wider (+56 % decoder MACs: the diagnosis found the transforms, not the quantiser, limiting the top
# rates), a 128-channel latent (EnCodec's width at 75 Hz; +1 % MACs) and the ladder above 24 kbps
AUDIO_PROFILES: dict[str, dict] = {
    "edge": {},
    "edge-wide": {"decoder_channels": 20, "latent": 128, "lambdas": LADDER_ABOVE_24K},
    # audio-edge's encoder and latent with the Fourier decoder (issue 18: capacity at a lower run-time cost)
    "fourier": {"decoder": "fourier"},
}


class ResidualUnit(nn.Module):
    """x + (activation, dilated 7-tap conv to half width, activation, 1×1 conv back)."""

    def __init__(self, channels: int, dilation: int, activation: str = "elu"):
        super().__init__()
        act = ACTIVATIONS[activation]
        self.block = nn.Sequential(
            act(), nn.Conv1d(channels, channels // 2, 7, dilation=dilation, padding=3 * dilation),
            act(), nn.Conv1d(channels // 2, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def residual_stack(channels: int, units: int, activation: str = "elu") -> list[nn.Module]:
    """`units` residual units with dilations 1, 3, 9, …: each one triples the reach at that frame rate."""
    return [ResidualUnit(channels, 3**i, activation) for i in range(units)]


def patch_strides(strides: tuple[int, ...], patch: int) -> tuple[int, tuple[int, ...]]:
    """(how many leading strides a framing conv of stride `patch` replaces, the strides left), or ValueError."""
    product, count = 1, 0
    while product < patch and count < len(strides):
        product *= strides[count]
        count += 1
    if product != patch:
        raise ValueError(f"encoder patch {patch} is not a product of the leading strides {tuple(strides)}")
    return count, tuple(strides[count:])


class AudioEncoder(nn.Module):
    """Waveform N×1×T (T a multiple of the hop) -> latent N×D×T/hop."""

    def __init__(self, cfg: AudioConfig):
        super().__init__()
        act = ACTIVATIONS[cfg.activation]
        framed, strides = patch_strides(cfg.strides, cfg.encoder_patch)
        c = cfg.channels * 2**framed
        p = cfg.encoder_patch
        first = nn.Conv1d(1, c, 2 * p, stride=p, padding=(p + 1) // 2) if p > 1 else nn.Conv1d(1, c, 7, padding=3)
        if not 0 <= cfg.encoder_bare <= len(strides):
            raise ValueError(f"encoder_bare {cfg.encoder_bare} is not within 0..{len(strides)} (the strides left)")
        layers: list[nn.Module] = [first]
        for k, s in enumerate(strides):
            units = residual_stack(c, cfg.residual_units, cfg.activation)
            if k < cfg.encoder_bare:
                units = [nn.Identity() for _ in units]
            layers += [*units, act(), nn.Conv1d(c, 2 * c, 2 * s, stride=s, padding=(s + 1) // 2)]
            c *= 2
        layers += [act(), nn.Conv1d(c, cfg.latent, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class AudioDecoder(nn.Module):
    """Dequantised latent N×D×F -> waveform N×1×F·hop (unclipped)."""

    def __init__(self, cfg: AudioConfig):
        super().__init__()
        c, act = cfg.decoder_width * 2 ** len(cfg.strides), ACTIVATIONS[cfg.activation]
        layers: list[nn.Module] = [nn.Conv1d(cfg.latent, c, 7, padding=3)]
        for s in reversed(cfg.strides):
            layers += [act(), nn.ConvTranspose1d(c, c // 2, 2 * s, stride=s, padding=(s + 1) // 2,
                                                    output_padding=s % 2)]
            c //= 2
            layers += residual_stack(c, cfg.decoder_units, cfg.activation)
        layers += [act(), nn.Conv1d(c, 1, 7, padding=3)]
        self.net = nn.Sequential(*layers)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.net(y)


def channel_layer_norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """LayerNorm over the channels of N×C×T, frame by frame (no statistics across time: a chunk's output
    must not depend on how long the chunk is)."""
    mean = x.mean(dim=1, keepdim=True)
    centred = x - mean
    return centred * torch.rsqrt(centred.pow(2).mean(dim=1, keepdim=True) + eps)


class ConvNeXtBlock1d(nn.Module):
    """x + γ·(1×1 conv back ∘ GELU ∘ 1×1 conv out ∘ channel LayerNorm ∘ 3-tap depthwise conv)(x).

    Kept in N×C×T with 1×1 convolutions (ONNX Runtime runs them as GEMMs; no transposes); 3 taps so
    that a stack of blocks reaches one latent frame per block (the run time's chunk halo is 8 frames)."""

    def __init__(self, dim: int, hidden: int, layer_scale: float):
        super().__init__()
        self.depthwise = nn.Conv1d(dim, dim, 3, padding=1, groups=dim)
        self.norm_weight = nn.Parameter(torch.ones(dim, 1))
        self.norm_bias = nn.Parameter(torch.zeros(dim, 1))
        self.expand = nn.Conv1d(dim, hidden, 1)
        self.project = nn.Conv1d(hidden, dim, 1)
        self.gamma = nn.Parameter(torch.full((dim, 1), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = channel_layer_norm(self.depthwise(x)) * self.norm_weight + self.norm_bias
        return x + self.gamma * self.project(F.gelu(self.expand(h)))


class OverlapAddSynthesis(nn.Module):
    """Log-magnitude and phase of a 2·hop-point spectrum per latent frame -> waveform, by inverse DFT,
    a periodic Hann window and overlap-add at the hop (the windows sum to exactly 1).

    Frame k covers samples [k·hop − hop/2, k·hop + 3·hop/2), centred on the hop it decodes, so the
    output has exactly frames·hop samples and reaches one frame either side. The inverse DFT is a
    fixed matrix (a buffer, not a parameter: not in checkpoints, a constant in the ONNX graph)."""

    basis: torch.Tensor

    def __init__(self, hop: int):
        super().__init__()
        if hop % 2:
            raise ValueError(f"the Fourier decoder needs an even hop, got {hop}")
        n = 2 * hop
        bins = hop + 1
        k = torch.arange(bins, dtype=torch.float64).view(-1, 1)
        t = torch.arange(n, dtype=torch.float64).view(1, -1)
        window = 0.5 - 0.5 * torch.cos(2 * math.pi * t / n)  # periodic Hann: shifted copies at hop sum to 1
        weight = torch.full((bins, 1), 2.0, dtype=torch.float64)
        weight[0] = weight[-1] = 1.0  # DC and Nyquist appear once in the real inverse DFT
        angle = 2 * math.pi * k * t / n
        basis = torch.cat([weight * torch.cos(angle), -weight * torch.sin(angle)]) * window / n  # (2·bins)×n
        self.register_buffer("basis", basis.float().T.contiguous().unsqueeze(-1), persistent=False)  # n×2bins×1
        # a bin's magnitude is capped at n, i.e. a sinusoid of amplitude 2: enough for full scale, and exp() stays finite
        self.hop, self.bins, self.max_log_magnitude = hop, bins, math.log(n)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """spec: N×(2·bins)×F (log-magnitudes, then phases) -> N×1×F·hop."""
        log_mag, phase = spec[:, : self.bins], spec[:, self.bins:]
        mag = torch.exp(torch.clamp(log_mag, max=self.max_log_magnitude))
        coeffs = torch.cat([mag * torch.cos(phase), mag * torch.sin(phase)], dim=1)
        frames = F.conv1d(coeffs, self.basis)  # N×(2·hop)×F: one windowed frame per latent frame
        n, _, f = frames.shape
        q = self.hop // 2
        quarters = frames.reshape(n, 4, q, f)  # [k·hop − hop/2, k·hop), [k·hop, +hop/2), [+hop/2, +hop), [(k+1)·hop, +hop/2)
        first = quarters[:, 1] + F.pad(quarters[:, 3, :, :-1], (1, 0))  # + the tail of frame k−1
        second = quarters[:, 2] + F.pad(quarters[:, 0, :, 1:], (0, 1))  # + the head of frame k+1
        out = torch.stack([first, second], dim=1)  # N×2×q×F
        return out.permute(0, 3, 1, 2).reshape(n, 1, f * self.hop)


class FourierDecoder(nn.Module):
    """Dequantised latent N×D×F -> waveform N×1×F·hop: a 3-tap conv to `fourier_dim` channels, ConvNeXt
    blocks, channel LayerNorm, a 1×1 conv to a 2·hop-point spectrum per frame (`OverlapAddSynthesis`).

    All layers run at the latent frame rate (Vocos's design, here without its adversarial training):
    the upsampling is the inverse DFT. Reach: 1 + `fourier_blocks` + 1 latent frames."""

    def __init__(self, cfg: AudioConfig):
        super().__init__()
        self.embed = nn.Conv1d(cfg.latent, cfg.fourier_dim, 3, padding=1)
        self.blocks = nn.Sequential(*[ConvNeXtBlock1d(cfg.fourier_dim, cfg.fourier_hidden, 1.0 / cfg.fourier_blocks)
                                      for _ in range(cfg.fourier_blocks)])
        self.norm_weight = nn.Parameter(torch.ones(cfg.fourier_dim, 1))
        self.norm_bias = nn.Parameter(torch.zeros(cfg.fourier_dim, 1))
        self.head = nn.Conv1d(cfg.fourier_dim, 2 * (cfg.hop + 1), 1)
        with torch.no_grad():
            bias = self.head.bias
            assert bias is not None
            bias[: cfg.hop + 1] = -3.0  # start near silence (bin magnitudes ~0.05), not at full-band noise
        self.synthesis = OverlapAddSynthesis(cfg.hop)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.embed(y))
        spec = self.head(channel_layer_norm(h) * self.norm_weight + self.norm_bias)
        # the spectrum's exp / cos / sin and the inverse DFT in float32 also under bf16 autocast
        with torch.autocast(device_type=y.device.type, enabled=False):
            return self.synthesis(spec.float())


def build_decoder(cfg: AudioConfig) -> nn.Module:
    return FourierDecoder(cfg) if cfg.decoder == "fourier" else AudioDecoder(cfg)


MEL_RESOLUTIONS = ((256, 32), (512, 64), (1024, 80), (2048, 128))  # (n_fft, mel bands)


@lru_cache(maxsize=32)
def mel_basis(n_fft: int, n_mels: int, sample_rate: int) -> torch.Tensor:
    """`aecodec.metrics.mel_filterbank` as a float32 tensor (built once per resolution, not per step)."""
    return torch.from_numpy(mel_filterbank(sample_rate, n_fft, n_mels)).float()


LOG_FLOOR = 1e-5  # magnitude floor of every log spectrum: ~-100 dB re full scale (magnitudes / sum(window))
STFT_RESOLUTIONS = (512, 1024, 2048)  # n_fft of the multi-resolution STFT terms (hop n_fft/4, Hann)
# spectral convergence: the reference norm is floored at a spectrogram whose every bin is -60 dB re full scale,
# so a near-silent segment (the case that diverged) gives an absolute, not a relative, error
SC_FLOOR = 1e-3


def magnitudes(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    """|STFT| of N×T audio scaled by 1/sum(window) (a full-scale sine peaks near 0.5), N×(n_fft/2+1)×frames."""
    win = torch.hann_window(n_fft, device=x.device)
    return torch.stft(x, n_fft, n_fft // 4, window=win, return_complex=True).abs() / win.sum()


def band_weights(centres_hz: torch.Tensor, band_hz: torch.Tensor | None, above: float) -> torch.Tensor | None:
    """N×bins weights: 1 up to each sample's bandwidth, `above` over it (None = no band limit known).

    A 16 kHz source has nothing above 8 kHz; without weights the loss would teach that 8–12 kHz is empty.
    """
    if band_hz is None:
        return None
    return torch.where(centres_hz[None, :] <= band_hz[:, None], 1.0, above)


def weighted_mean(err: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Per-sample mean of N×bins×frames errors, bins weighted (N,); the weights' mean normalises it."""
    if weights is None:
        return err.mean(dim=(1, 2))
    return (err.mean(dim=2) * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1e-6)


@lru_cache(maxsize=32)
def mel_centres(n_fft: int, n_mels: int, sample_rate: int) -> torch.Tensor:
    """Centre frequency (Hz) of each mel band, the filter-weighted mean of its bins."""
    fb = mel_basis(n_fft, n_mels, sample_rate)
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    return (fb @ freqs) / fb.sum(dim=1).clamp_min(1e-9)


def multi_resolution_mel_loss(x_hat: torch.Tensor, x: torch.Tensor, sample_rate: int = SAMPLE_RATE,
                              band_hz: torch.Tensor | None = None, above_band: float = 0.0) -> torch.Tensor:
    """Per-sample L1 between log10 mel magnitude spectrograms, averaged over MEL_RESOLUTIONS (N,).

    Log-mel with a floor (as in DAC) rather than spectral convergence: a per-sample SC term divides
    by the target's energy and blew up training on near-silent segments (loss ×100 in 600 steps).
    Magnitudes are scaled by 1/sum(window) so the 1e-5 floor is ~-100 dB re full scale. With
    `band_hz` (N,), mel bands above a sample's bandwidth count `above_band` times.
    """
    total: torch.Tensor | None = None
    a, b = x_hat.squeeze(1), x.squeeze(1)
    for n_fft, n_mels in MEL_RESOLUTIONS:
        fb = mel_basis(n_fft, n_mels, sample_rate).to(x.device)
        ma = torch.log10((fb @ magnitudes(a, n_fft)).clamp_min(LOG_FLOOR))
        mb = torch.log10((fb @ magnitudes(b, n_fft)).clamp_min(LOG_FLOOR))
        weights = band_weights(mel_centres(n_fft, n_mels, sample_rate).to(x.device), band_hz, above_band)
        term = weighted_mean((ma - mb).abs(), weights)
        total = term if total is None else total + term
    assert total is not None
    return total / len(MEL_RESOLUTIONS)


def multi_resolution_stft_loss(x_hat: torch.Tensor, x: torch.Tensor, sample_rate: int = SAMPLE_RATE,
                               band_hz: torch.Tensor | None = None,
                               above_band: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-magnitude L1, spectral convergence) per sample (N,), each averaged over STFT_RESOLUTIONS.

    Log magnitude: L1 of log10 |STFT| floored at LOG_FLOOR (linear-frequency detail the mel bands
    pool away). Spectral convergence ‖|Ŝ| − |S|‖ / max(‖|S|‖, SC_FLOOR·√bins): relative error of the loud
    bins, bounded on near-silent segments. Band weights as in the mel loss (SC: the bins over the
    band are scaled by √above_band inside both norms).
    """
    a, b = x_hat.squeeze(1), x.squeeze(1)
    log_total = torch.zeros(x.shape[0], device=x.device)
    sc_total = torch.zeros(x.shape[0], device=x.device)
    for n_fft in STFT_RESOLUTIONS:
        sa, sb = magnitudes(a, n_fft), magnitudes(b, n_fft)
        freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, device=x.device)
        weights = band_weights(freqs, band_hz, above_band)
        log_err = (torch.log10(sa.clamp_min(LOG_FLOOR)) - torch.log10(sb.clamp_min(LOG_FLOOR))).abs()
        log_total = log_total + weighted_mean(log_err, weights)
        diff, ref = sa - sb, sb
        if weights is not None:
            root = weights.sqrt()[:, :, None]
            diff, ref = diff * root, ref * root
        floor = SC_FLOOR * float(sb.shape[1] * sb.shape[2]) ** 0.5
        sc_total = sc_total + diff.pow(2).sum(dim=(1, 2)).sqrt() / ref.pow(2).sum(dim=(1, 2)).sqrt().clamp_min(floor)
    return log_total / len(STFT_RESOLUTIONS), sc_total / len(STFT_RESOLUTIONS)


@dataclass
class AudioLoss:
    """Weights of the distortion terms (training options, not part of the architecture or the checkpoint config).

    D = mel·log-mel L1 + waveform·L1 + stft·log-|STFT| L1 + sc·spectral convergence
        + feature·feature matching + adversarial·LSGAN generator loss;
    loss = D + kbps / (10 λ). The defaults are audio-edge's loss. `above_band` weights the spectral
    bins over a clip's detected bandwidth (1 = no band-limit awareness).
    """

    mel: float = 1.0
    waveform: float = 10.0
    stft: float = 0.0
    sc: float = 0.0
    adversarial: float = 0.0
    feature: float = 0.0
    above_band: float = 1.0

    @property
    def uses_discriminator(self) -> bool:
        return self.adversarial > 0 or self.feature > 0


class AudioCodecModel(GainedLatentModel):
    """Encoder, decoder, factorized density and per-level gains; rate in kbps, distortion per `AudioLoss`.

    With adversarial or feature-matching weights a multi-scale STFT discriminator joins the model
    (`attach_discriminator`): it is trained by the same optimizer step (its loss reaches only its own
    parameters, the generator's adversarial loss only the codec's), is saved in training checkpoints
    and is dropped on export (only encoder and decoder are exported).
    """

    def __init__(self, cfg: AudioConfig, loss: AudioLoss | None = None):
        super().__init__()
        self.config = cfg
        self.encoder = AudioEncoder(cfg)
        self.decoder = build_decoder(cfg)
        self.density = FactorizedDensity(cfg.latent)
        self.init_rate_ladder(cfg.lambdas, cfg.latent)
        self.loss_weights = loss or AudioLoss()
        self.discriminator: MultiScaleSTFTDiscriminator | None = None

    def freeze_encoder(self) -> None:
        """Train the decoder alone: encoder, density and gains keep their (warm-started) values, so the latent,
        its rate and the entropy tables stay those of the model the run started from."""
        for module in (self.encoder, self.density):
            module.requires_grad_(False)
        self.log_gains.requires_grad_(False)

    def attach_discriminator(self, channels: int = 16) -> None:
        """Add the MS-STFT discriminator (after the codec's parameters: the codec's optimizer indices stay)."""
        self.discriminator = MultiScaleSTFTDiscriminator(channels)

    def parameter_groups(self) -> list[dict]:
        """One group, plus the discriminator's own group when it is attached (a new group count restarts Adam)."""
        if self.discriminator is None:
            return super().parameter_groups()
        disc = {id(p) for p in self.discriminator.parameters()}
        return [{"params": [p for p in self.parameters() if id(p) not in disc]},
                {"params": list(self.discriminator.parameters()), "lr_scale": 1.0}]

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # type: ignore[override]
        """A checkpoint without discriminator weights loads into a model with one (fine-tune start) and
        discriminator weights are ignored by a model without one (export, evaluation)."""
        state = dict(state_dict)
        if self.discriminator is None:
            state = {k: v for k, v in state.items() if not k.startswith("discriminator.")}
        elif not any(k.startswith("discriminator.") for k in state):
            state.update({f"discriminator.{k}": v for k, v in self.discriminator.state_dict().items()})
        return super().load_state_dict(state, strict=strict, assign=assign)

    @torch.no_grad()
    def warm_start(self, state: dict[str, torch.Tensor], lambdas: tuple[float, ...]) -> list[str]:
        """Start from a trained audio checkpoint of the same strides and depth, as wide or narrower (Net2Net-style).

        Every tensor of the old model is copied into the leading slice of the new one; the weights from a
        new input channel to an old output channel are zeroed, so the grown model computes exactly the old
        waveform at first and the new channels start learning from there. New latent channels take the
        median gains of the old ones; the gains of a rate point not in the old ladder (`lambdas`, the old
        λs) are inter- or extrapolated log-linearly in log λ. Returns the names of the tensors taken.
        """
        own = self.state_dict()
        taken: list[str] = []
        first_decoder = self.decoder.net[0] if isinstance(self.decoder, AudioDecoder) else None
        last_encoder = self.encoder.net[-1]
        for name, module in self.named_modules():
            if not isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)) or f"{name}.weight" not in state:
                continue
            old_w = state[f"{name}.weight"]
            try:
                # new inputs do not reach old outputs; the decoder's new latent inputs are zero (below), so
                # their weights stay random and the encoder's new rows receive gradients from the start
                grown = grow_weight(old_w, module.weight, isinstance(module, nn.ConvTranspose1d),
                                    zero_new_inputs=module is not first_decoder)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
            old_out = old_w.shape[0]  # (the last encoder layer is a Conv1d: out×in×k)
            if module is last_encoder:
                grown[old_out:] = 0.0  # new latent channels start at exactly 0: no bits, no change to the decoder
            module.weight.copy_(grown)
            taken.append(f"{name}.weight")
            if module.bias is not None and f"{name}.bias" in state:
                if module is last_encoder:
                    module.bias[old_out:] = 0.0
                module.bias[: state[f"{name}.bias"].shape[0]] = state[f"{name}.bias"]
                taken.append(f"{name}.bias")
        for name, value in own.items():  # the rest (e.g. a Fourier decoder's norms and layer scales): same name and shape
            if name not in taken and not name.startswith("density.") and name != "log_gains" and name in state \
                    and state[name].shape == value.shape:
                value.copy_(state[name])
                taken.append(name)
        old_channels = int(state["density.biases.0"].shape[0]) if "density.biases.0" in state else 0
        peaked = self._most_peaked_channel(state, lambdas) if 0 < old_channels < self.config.latent else 0
        for name, value in own.items():
            if name.startswith("density.") and name in state:
                old = state[name]
                if old.shape[1:] != value.shape[1:] or old.shape[0] > value.shape[0]:
                    raise ValueError(f"{name}: cannot grow {tuple(old.shape)} into {tuple(value.shape)}")
                value[: old.shape[0]] = old
                # new (all-zero) latent channels get the density of the old channel that codes 0 cheapest
                value[old.shape[0]:] = old[peaked]
                taken.append(name)
        if "log_gains" in state:
            self.log_gains.copy_(grow_log_gains(state["log_gains"], lambdas, tuple(self.lambdas.tolist()),
                                                self.log_gains.shape[1]))
            taken.append("log_gains")
        return taken

    @staticmethod
    def _most_peaked_channel(state: dict[str, torch.Tensor], lambdas: tuple[float, ...]) -> int:
        """Index of the old channel whose density gives the zero bin (at its lowest rate point's gain) the most mass."""
        channels = int(state["density.biases.0"].shape[0])
        density = FactorizedDensity(channels)
        density.load_state_dict({k[len("density."):]: v for k, v in state.items() if k.startswith("density.")})
        half = (0.5 / torch.exp(state["log_gains"][0])).view(channels, 1, 1)
        return int(density.bin_probability(-half, half).view(-1).argmax())

    def forward(self, x: torch.Tensor, level: torch.Tensor, band_hz: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Codec pass and the enabled distortion terms per sample; `band_hz` (N,) is each sample's bandwidth."""
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
        w = self.loss_weights
        band = band_hz if w.above_band < 1.0 else None
        out = {"x_hat": x_hat, "kbps": bits / seconds / 1000,
               "mel": multi_resolution_mel_loss(x_hat, x, self.config.sample_rate, band, w.above_band),
               "l1": (x_hat - x).abs().mean(dim=(1, 2))}
        if w.stft > 0 or w.sc > 0:
            out["stft"], out["sc"] = multi_resolution_stft_loss(x_hat, x, self.config.sample_rate, band, w.above_band)
        if self.discriminator is not None and self.training and w.uses_discriminator:
            out.update(self.discriminator.losses(x_hat, x))
        return out

    def loss(self, out: dict[str, torch.Tensor], level: torch.Tensor) -> torch.Tensor:
        # D + R/(10 λ): the optimum of λ·D + R/10, with every level's distortion gradient on the
        # shared transforms at the same scale (λ spans 240×: high levels would otherwise dominate)
        w = self.loss_weights
        distortion = w.mel * out["mel"] + w.waveform * out["l1"]
        if "stft" in out:
            distortion = distortion + w.stft * out["stft"] + w.sc * out["sc"]
        total = (distortion + out["kbps"] / (10.0 * self.lambdas[level])).mean()
        if "adv_g" in out:
            # the discriminator's own loss touches only its parameters (see audio_discriminator)
            total = total + w.adversarial * out["adv_g"] + w.feature * out["feature"] + out["disc"]
        return total


def pad_to_hop(x: torch.Tensor, hop: int) -> torch.Tensor:
    """Zero-pad the end of N×1×T to a multiple of the hop (the encoder's total stride)."""
    t = x.shape[-1]
    return F.pad(x, (0, (-t) % hop)) if t % hop else x
