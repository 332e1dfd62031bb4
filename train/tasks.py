"""What the generic training loop needs to know about a modality: config, model, batches, metrics, validation.

A task never touches the optimizer or the schedule (trainer.py); the trainer never looks inside a
model. Both image architectures share `ImageTask`; the model family comes from --arch on a new run
and from the checkpoint's config on resume.
"""
from __future__ import annotations

import argparse
import math
from typing import Protocol

import torch
import torch.nn.functional as F

from aecodec.metrics import si_sdr

from .audio_model import AudioCodecModel, AudioConfig, pad_to_hop
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
    def val_items(self) -> list[torch.Tensor]: ...
    @property
    def warm_started(self) -> list[str]: ...

    def build_model(self) -> AnyModel: ...
    def batch(self, n: int) -> torch.Tensor: ...
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
            if args.arch == "hyperprior":
                self.config = HyperpriorConfig(channels=channels, latent=latent, hyper=args.hyper or 64,
                                               lambdas=base.lambdas)
            else:
                self.config = ModelConfig(channels=channels, latent=latent, lambdas=base.lambdas)
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
            self.warm_started = model.warm_start(state.get("model", state))
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
    modality = "audio"

    def __init__(self, args: argparse.Namespace, resume_config: dict | None, rank: int):
        from .audio_data import SegmentSampler, list_audio, load_mono

        if args.init and not resume_config:
            raise SystemExit("--init (warm start) applies to image models only")
        self.config: AudioConfig
        if resume_config:
            config = config_from_dict(resume_config, "audio")
            assert isinstance(config, AudioConfig)
            self.config = config
        else:
            base = AudioConfig()
            self.config = AudioConfig(channels=args.channels or base.channels, latent=args.latent or base.latent)
        self.warm_started: list[str] = []
        self.sampler = SegmentSampler(args.data, args.segment_seconds, self.config.sample_rate,
                                      seed=args.seed * 1000 + rank, multiple=self.config.hop)
        self.val_items = ([torch.from_numpy(load_mono(p, self.config.sample_rate)) for p in list_audio(args.val)]
                          if args.val else [])

    def build_model(self) -> AnyModel:
        return build_model(self.config)

    def batch(self, n: int) -> torch.Tensor:
        return self.sampler.batch(n)

    def metrics(self, out: dict[str, torch.Tensor]) -> dict[str, float]:
        return {"kbps": out["kbps"].mean().item(), "mel": out["mel"].mean().item()}

    @torch.no_grad()
    def validate(self, model: AnyModel, device: torch.device) -> dict:
        """Real rate (rounded latents, model likelihood), SI-SDR and log-mel distance per validated level."""
        assert isinstance(model, AudioCodecModel)
        model.eval()
        out = {}
        for level in validated_levels(len(self.config.lambdas)):
            kbps, sdr, mel = [], [], []
            for clip in self.val_items:
                x = clip.to(device)[None, None]
                n = x.shape[-1]
                res = model(pad_to_hop(x, self.config.hop), torch.tensor([level], device=device))
                padded = res["x_hat"].shape[-1]
                kbps.append(res["kbps"].item() * padded / n)
                sdr.append(si_sdr(res["x_hat"][0, 0, :n].clamp(-1, 1).cpu().numpy(), x[0, 0].cpu().numpy()))
                mel.append(res["mel"].item())
            out[f"L{level}"] = {"kbps": sum(kbps) / len(kbps), "si_sdr": sum(sdr) / len(sdr),
                                "mel": sum(mel) / len(mel)}
        model.train()
        return out

    def score(self, val: dict) -> float:
        """Mean of the training loss's D + R/(10 λ) over the validated levels (lower is better)."""
        total = 0.0
        for key, v in val.items():
            total += v["mel"] + v["kbps"] / (10.0 * self.config.lambdas[int(key[1:])])
        return total / len(val)

    def describe(self, val: dict) -> str:
        return " ".join(f"{k}: {v['kbps']:.2f} kbps SI-SDR {v['si_sdr']:.2f} dB mel {v['mel']:.3f}"
                        for k, v in val.items())


TASKS: dict[str, type[ImageTask] | type[AudioTask]] = {"image": ImageTask, "audio": AudioTask}
