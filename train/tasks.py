"""What the generic training loop needs to know about a modality: config, model, batches, metrics, validation.

A task never touches the optimizer or the schedule (trainer.py); the trainer never looks inside a
model. Both image architectures share `ImageTask`; the model family comes from --arch on a new run
and from the checkpoint's config on resume.
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Protocol

import torch
import torch.nn.functional as F


from .audio_model import AUDIO_PROFILES, AudioCodecModel, AudioConfig, AudioLoss
from .checkpoint_io import AnyConfig, AnyModel, ImageConfig, build_model, config_from_dict
from .factorized import PROFILES, ModelConfig
from .hyperprior import HyperpriorConfig
from .image_base import ImageCodecModel, pad_to_multiple


class Sampler(Protocol):
    def batch(self, size: int) -> torch.Tensor: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


class Task(Protocol):
    """The interface trainer.py uses (read-only attributes: a task may narrow their types)."""

    @property
    def modality(self) -> str: ...
    @property
    def config(self) -> AnyConfig: ...
    @property
    def sampler(self) -> Sampler: ...
    @property
    def val_items(self) -> Sequence[object]: ...
    @property
    def warm_started(self) -> list[str]: ...

    def build_model(self) -> AnyModel: ...
    def batch(self, n: int) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]: ...
    def metrics(self, out: dict[str, torch.Tensor]) -> dict[str, float]: ...
    def validate(self, model: AnyModel, device: torch.device) -> dict: ...
    def score(self, val: dict) -> float: ...
    def describe(self, val: dict) -> str: ...


def validated_levels(k: int) -> list[int]:
    """Rate points validated (lowest, middle, highest): enough to pick the best checkpoint, cheap."""
    return sorted({0, k // 2, k - 1})


class ImageTask:
    modality = "image"

    def __init__(self, args: argparse.Namespace, resume_config: dict | None, rank: int):
        from .image_data import CropSampler, list_images, load_rgb

        self.config: ImageConfig
        if resume_config:
            config = config_from_dict(resume_config, "image")
            assert isinstance(config, (ModelConfig, HyperpriorConfig))
            self.config = config
        else:
            base = PROFILES[args.profile]
            channels, latent = args.channels or base.channels, args.latent or base.latent
            lambdas = tuple(float(v) for v in args.lambdas) if getattr(args, "lambdas", None) else base.lambdas
            if list(lambdas) != sorted(set(lambdas)):
                raise SystemExit(f"--lambdas must be strictly ascending, got {list(lambdas)}")
            if args.arch == "hyperprior":
                self.config = HyperpriorConfig(channels=channels, latent=latent, hyper=args.hyper or 64,
                                               context=getattr(args, "context", 0) or 0,
                                               lambdas=lambdas)
            else:
                self.config = ModelConfig(channels=channels, latent=latent, lambdas=lambdas)
        self.init_from = None if resume_config else args.init
        self.warm_started: list[str] = []
        self.sampler = CropSampler(args.data, args.crop, seed=args.seed * 1000 + rank)
        self.val_items = ([torch.from_numpy(load_rgb(p)).permute(2, 0, 1) for p in list_images(args.val)]
                          if args.val else [])
        self.channels_last = args.channels_last
        # --val-bd-rate: validate every rate point and report BD-rate vs WebP on the validation images
        # (the curve the model card plots; WebP's curve is computed once per run)
        self.val_bd_rate = bool(getattr(args, "val_bd_rate", False))
        self._webp_curve: list[tuple[float, float]] | None = None

    def build_model(self) -> AnyModel:
        model = build_model(self.config)
        if self.init_from:
            assert isinstance(model, ImageCodecModel)
            state = torch.load(self.init_from, map_location="cpu", weights_only=False)
            old_lambdas = tuple(state["config"]["lambdas"]) if "config" in state else self.config.lambdas
            try:
                self.warm_started = model.warm_start(state.get("model", state), old_lambdas)
            except ValueError as exc:
                raise SystemExit(f"--init {self.init_from}: {exc}") from None
        return model

    def batch(self, n: int) -> torch.Tensor:
        x = self.sampler.batch(n)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def metrics(self, out: dict[str, torch.Tensor]) -> dict[str, float]:
        m = {"bpp": out["bpp"].mean().item(),
             "psnr": (10 * torch.log10(1.0 / out["mse"].clamp_min(1e-10))).mean().item()}
        if "z_bpp" in out:
            m["z_bpp"] = out["z_bpp"].mean().item()
        return m

    @torch.no_grad()
    def validate(self, model: AnyModel, device: torch.device) -> dict:
        """Real rate (rounded latents, model likelihood) and PSNR per validated level, mean over images."""
        assert isinstance(model, ImageCodecModel)
        model.eval()
        out = {}
        k = len(self.config.lambdas)
        for level in (range(k) if self.val_bd_rate else validated_levels(k)):
            bpps, psnrs = [], []
            for img in self.val_items:
                x = img.to(device)[None].float() / 255.0
                h, w = x.shape[-2:]
                res = model(pad_to_multiple(x, model.pad_multiple), torch.tensor([level], device=device))
                x_hat = res["x_hat"][..., :h, :w].clamp(0, 1)
                mse = F.mse_loss(torch.round(x_hat * 255), torch.round(x * 255)).item()
                bpps.append(res["bpp"].item() * res["x_hat"].shape[-2] * res["x_hat"].shape[-1] / (h * w))
                psnrs.append(10 * math.log10(255.0**2 / max(mse, 1e-10)))
            out[f"L{level}"] = {"bpp": sum(bpps) / len(bpps), "psnr": sum(psnrs) / len(psnrs)}
        if self.val_bd_rate:
            from aecodec.metrics import bd_rate

            from .evaluate import webp_curve

            if self._webp_curve is None:
                self._webp_curve = webp_curve([img.permute(1, 2, 0).numpy() for img in self.val_items])
            webp = self._webp_curve
            curve = [(v["bpp"], v["psnr"]) for v in out.values()]
            out["bd_rate_vs_webp"] = bd_rate([r for r, _ in webp], [q for _, q in webp],
                                             [r for r, _ in curve], [q for _, q in curve])
        model.train()
        return out

    def score(self, val: dict) -> float:
        """Mean R + λD over the levels of validated_levels (lower is better): picks the best checkpoint."""
        levels = validated_levels(len(self.config.lambdas))
        total = 0.0
        for level in levels:
            v = val[f"L{level}"]
            total += v["bpp"] + self.config.lambdas[level] * 255.0**2 / 10 ** (v["psnr"] / 10)
        return total / len(levels)

    def describe(self, val: dict) -> str:
        text = " ".join(f"{key}: {v['bpp']:.3f} bpp {v['psnr']:.2f} dB" for key, v in val.items() if key[0] == "L")
        if "bd_rate_vs_webp" in val:
            text += f" BD-rate vs WebP {val['bd_rate_vs_webp']:+.2f} %"
        return text


class AudioTask:
    """Audio: one or several training folders (--data, weighted by --data-weights), validation on --val or on
    files held out of the training folders (--val-fraction), reported per kind (speech / music / env)."""

    modality = "audio"

    def __init__(self, args: argparse.Namespace, resume_config: dict | None, rank: int):
        from .audio_data import (SegmentSampler, describe_sources, holdout, list_audio, load_clips,
                                 validation_excerpt)

        self.init_from = None if resume_config else args.init
        self.config: AudioConfig
        if resume_config:
            config = config_from_dict(resume_config, "audio")
            assert isinstance(config, AudioConfig)
            self.config = config
        else:
            self.config = new_audio_config(args)
        self.loss = audio_loss(args)
        self.disc_channels = int(getattr(args, "disc_channels", 16) or 16)
        self.warm_started: list[str] = []
        folders = [args.data] if isinstance(args.data, str) else list(args.data)
        weights = getattr(args, "data_weights", None)
        if weights is not None and len(weights) != len(folders):
            raise SystemExit(f"--data-weights: {len(weights)} weights for {len(folders)} --data folders")
        fraction = float(getattr(args, "val_fraction", 0.0) or 0.0)
        if fraction and args.val:
            raise SystemExit("--val and --val-fraction exclude each other: validate on a folder or on held-out files")
        rate = self.config.sample_rate
        sources, held = [], []
        for i, folder in enumerate(folders):
            train_files, val_files = holdout(list_audio(folder), fraction)
            sources.append(load_clips(train_files, rate, i))
            held.append(load_clips(val_files, rate, i))
        self.source_summary = describe_sources(folders, sources, held, rate)
        self.sampler = SegmentSampler(sources, args.segment_seconds, rate, seed=args.seed * 1000 + rank,
                                      multiple=self.config.hop, weights=weights)
        shares = ", ".join(f"{k} {v:.0%}" for k, v in sorted(self.sampler.shares().items()))
        self.source_summary += f"\nexpected share of batch rows: {shares}"
        seconds = float(getattr(args, "val_seconds", 0.0) or 0.0)
        val_clips = [c for h in held for c in h]
        if args.val:
            val_clips = load_clips(list_audio(args.val), rate, -1)
        self.val_items = [validation_excerpt(c, seconds, rate) if seconds else c for c in val_clips]

    def build_model(self) -> AnyModel:
        model = build_model(self.config)
        assert isinstance(model, AudioCodecModel)
        model.loss_weights = self.loss
        if self.init_from:
            state = torch.load(self.init_from, map_location="cpu", weights_only=False)
            old = config_from_dict(state["config"], "audio")
            assert isinstance(old, AudioConfig)
            if (old.strides, old.residual_units, old.decoder_units, old.encoder_patch) != (
                    self.config.strides, self.config.residual_units, self.config.decoder_units, self.config.encoder_patch):
                raise SystemExit(f"--init {self.init_from}: strides, depth and encoder patch must match the new run's")
            if self.config.encoder_bare < old.encoder_bare:  # units it dropped cannot come back trained
                raise SystemExit(f"--init {self.init_from}: its encoder has no residual units in its first "
                                 f"{old.encoder_bare} strides; --encoder-bare must be at least that")
            try:
                self.warm_started = model.warm_start(state.get("model", state), old.lambdas)
            except ValueError as exc:
                raise SystemExit(f"--init {self.init_from}: {exc}") from None
        if self.loss.uses_discriminator:
            model.attach_discriminator(self.disc_channels)
        return model

    def batch(self, n: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Segments and, as a keyword of the model's forward, each segment's bandwidth (for the band weights)."""
        x, band = self.sampler.draw(n)
        return x, {"band_hz": band}

    def metrics(self, out: dict[str, torch.Tensor]) -> dict[str, float]:
        m = {"kbps": out["kbps"].mean().item(), "mel": out["mel"].mean().item()}
        for key in ("stft", "sc"):
            if key in out:
                m[key] = out[key].mean().item()
        for key in ("adv_g", "feature", "disc"):
            if key in out:
                m[key] = float(out[key].item())
        return m

    @torch.no_grad()
    def validate(self, model: AnyModel, device: torch.device) -> dict:
        """Every rate point: real rate (rounded latents, model likelihood), SI-SDR and the benchmark's mel
        distance (`aecodec.metrics.mel_distance`), the mean over all clips ("kbps", "si_sdr", "mel") and per
        kind ("by_kind"). The encoder runs once per clip, the decoder once per clip and rate point."""
        from .audio_eval import evaluate_clips

        assert isinstance(model, AudioCodecModel)
        model.eval()
        out = evaluate_clips(model, self.val_items, device)
        model.train()
        return out

    def score(self, val: dict) -> float:
        """Mean over rate points of mel + kbps/(10 λ), each kind weighing the same (lower is better)."""
        total, n = 0.0, 0
        for key, v in val.items():
            if not key.startswith("L"):
                continue
            lam = self.config.lambdas[int(key[1:])]
            for kv in v.get("by_kind", {"all": v}).values():
                total += kv["mel"] + kv["kbps"] / (10.0 * lam)
                n += 1
        return total / max(n, 1)

    def describe(self, val: dict) -> str:
        parts = []
        for k, v in val.items():
            if not k.startswith("L"):
                continue
            kinds = " ".join(f"{kind} {kv['si_sdr']:.2f} dB/{kv['mel']:.3f}" for kind, kv in v.get("by_kind", {}).items())
            parts.append(f"{k}: {v['kbps']:.2f} kbps SI-SDR {v['si_sdr']:.2f} dB mel {v['mel']:.3f}"
                         + (f" ({kinds})" if kinds else ""))
        return " | ".join(parts)


def new_audio_config(args: argparse.Namespace) -> AudioConfig:
    """A new run's architecture: the --audio-profile preset, then explicit width / depth / ladder flags."""
    preset = dict(AUDIO_PROFILES[getattr(args, "audio_profile", None) or "edge"])
    for flag, key in (("channels", "channels"), ("latent", "latent"), ("decoder_channels", "decoder_channels"),
                      ("residual_units", "residual_units"), ("decoder_residual_units", "decoder_residual_units"),
                      ("fourier_dim", "fourier_dim"), ("fourier_hidden", "fourier_hidden"),
                      ("fourier_blocks", "fourier_blocks"), ("encoder_patch", "encoder_patch"),
                      ("encoder_bare", "encoder_bare")):
        value = getattr(args, flag, None)
        if value:
            preset[key] = value
    if getattr(args, "activation", None):
        preset["activation"] = args.activation
    lambdas = getattr(args, "lambdas", None)
    if lambdas:
        preset["lambdas"] = tuple(lambdas)
    if "lambdas" in preset:
        preset["lambdas"] = tuple(float(v) for v in preset["lambdas"])
    return AudioConfig(**preset)


def audio_loss(args: argparse.Namespace) -> AudioLoss:
    """The loss weights from the --loss-* flags (defaults: audio-edge's mel + 10·waveform L1)."""
    base = AudioLoss()
    values = {}
    for key in ("mel", "waveform", "stft", "sc", "adversarial", "feature"):
        value = getattr(args, f"loss_{key}", None)
        values[key] = getattr(base, key) if value is None else float(value)
    above = getattr(args, "above_band_weight", None)
    values["above_band"] = base.above_band if above is None else float(above)
    return AudioLoss(**values)


TASKS: dict[str, type[ImageTask] | type[AudioTask]] = {"image": ImageTask, "audio": AudioTask}
