"""What the generic training loop needs to know about a modality: model, batches, metrics, validation."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .model import DOWNSAMPLE, PROFILES, FactorizedCodecModel, ModelConfig


def _pad_to_multiple(x: torch.Tensor, multiple: int = DOWNSAMPLE) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


def _validated_levels(k: int) -> list[int]:
    return sorted({0, k // 2, k - 1})


class ImageTask:
    modality = "image"

    def __init__(self, args, resume_config: dict | None, rank: int):
        from .data import CropSampler, list_images, load_rgb

        from .hyperprior import HyperpriorConfig

        self.config: ModelConfig | HyperpriorConfig
        if resume_config:
            if resume_config.get("arch", "factorized") == "hyperprior":
                self.config = HyperpriorConfig.from_dict(resume_config)
            else:
                self.config = ModelConfig.from_dict(resume_config)
        else:
            base = PROFILES[args.profile]
            channels, latent = args.channels or base.channels, args.latent or base.latent
            if args.arch == "hyperprior":
                self.config = HyperpriorConfig(channels=channels, latent=latent, hyper=args.hyper or 64,
                                               lambdas=base.lambdas)
            else:
                self.config = ModelConfig(channels=channels, latent=latent, lambdas=base.lambdas)
        self.init_from = None if resume_config else args.init
        self.sampler = CropSampler(args.data, args.crop, seed=args.seed * 1000 + rank)
        self.val_items = ([torch.from_numpy(load_rgb(p)).permute(2, 0, 1) for p in list_images(args.val)]
                          if args.val else [])
        self.channels_last = args.channels_last

    def build_model(self):
        from .hyperprior import HyperpriorCodecModel, HyperpriorConfig

        if isinstance(self.config, HyperpriorConfig):
            model = HyperpriorCodecModel(self.config)
            if self.init_from:
                state = torch.load(self.init_from, map_location="cpu", weights_only=False)
                model.warm_start(state.get("model", state))
            return model
        return FactorizedCodecModel(self.config)

    def batch(self, n: int) -> torch.Tensor:
        x = self.sampler.batch(n)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    @staticmethod
    def metrics(out: dict) -> dict[str, float]:
        m = {"bpp": out["bpp"].mean().item(),
             "psnr": (10 * torch.log10(1.0 / out["mse"].clamp_min(1e-10))).mean().item()}
        if "z_bpp" in out:
            m["z_bpp"] = out["z_bpp"].mean().item()
        return m

    @torch.no_grad()
    def validate(self, model, device) -> dict:
        """Real rate (rounded latents, model likelihood) and PSNR per validated level, mean over images."""
        model.eval()
        out = {}
        for level in _validated_levels(len(self.config.lambdas)):
            bpps, psnrs = [], []
            for img in self.val_items:
                x = img.to(device)[None].float() / 255.0
                h, w = x.shape[-2:]
                res = model(_pad_to_multiple(x, getattr(model, "pad_multiple", DOWNSAMPLE)),
                            torch.tensor([level], device=device))
                x_hat = res["x_hat"][..., :h, :w].clamp(0, 1)
                mse = F.mse_loss(torch.round(x_hat * 255), torch.round(x * 255)).item()
                bpps.append(res["bpp"].item() * res["x_hat"].shape[-2] * res["x_hat"].shape[-1] / (h * w))
                psnrs.append(10 * math.log10(255.0**2 / max(mse, 1e-10)))
            out[f"L{level}"] = {"bpp": sum(bpps) / len(bpps), "psnr": sum(psnrs) / len(psnrs)}
        model.train()
        return out

    def score(self, val: dict) -> float:
        """Mean R + λD over the validated levels (lower is better): picks the best checkpoint."""
        total = 0.0
        for key, v in val.items():
            lam = self.config.lambdas[int(key[1:])]
            total += v["bpp"] + lam * 255.0**2 / 10 ** (v["psnr"] / 10)
        return total / len(val)

    @staticmethod
    def describe(val: dict) -> str:
        return " ".join(f"{key}: {v['bpp']:.3f} bpp {v['psnr']:.2f} dB" for key, v in val.items())


def si_sdr(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (1-D tensors)."""
    ref = reference - reference.mean()
    est = estimate - estimate.mean()
    scale = (est @ ref) / (ref @ ref).clamp_min(1e-12)
    target = scale * ref
    return float(10 * torch.log10((target @ target).clamp_min(1e-12) / ((est - target) @ (est - target)).clamp_min(1e-12)))


class AudioTask:
    modality = "audio"

    def __init__(self, args, resume_config: dict | None, rank: int):
        from .audio_data import SegmentSampler, list_audio, load_mono
        from .audio_model import AudioConfig

        if resume_config:
            self.config = AudioConfig.from_dict(resume_config)
        else:
            base = AudioConfig()
            self.config = AudioConfig(channels=args.channels or base.channels, latent=args.latent or base.latent)
        self.sampler = SegmentSampler(args.data, args.segment_seconds, self.config.sample_rate,
                                      seed=args.seed * 1000 + rank, multiple=self.config.hop)
        self.val_items = ([torch.from_numpy(load_mono(p, self.config.sample_rate)) for p in list_audio(args.val)]
                          if args.val else [])

    def build_model(self):
        from .audio_model import AudioCodecModel

        return AudioCodecModel(self.config)

    def batch(self, n: int) -> torch.Tensor:
        return self.sampler.batch(n)

    @staticmethod
    def metrics(out: dict) -> dict[str, float]:
        return {"kbps": out["kbps"].mean().item(), "mel": out["mel"].mean().item()}

    @torch.no_grad()
    def validate(self, model, device) -> dict:
        from .audio_model import pad_to_hop

        model.eval()
        out = {}
        for level in _validated_levels(len(self.config.lambdas)):
            kbps, sdr, mel = [], [], []
            for clip in self.val_items:
                x = clip.to(device)[None, None]
                n = x.shape[-1]
                res = model(pad_to_hop(x, self.config.hop), torch.tensor([level], device=device))
                padded = res["x_hat"].shape[-1]
                kbps.append(res["kbps"].item() * padded / n)
                sdr.append(si_sdr(res["x_hat"][0, 0, :n].clamp(-1, 1), x[0, 0]))
                mel.append(res["mel"].item())
            out[f"L{level}"] = {"kbps": sum(kbps) / len(kbps), "si_sdr": sum(sdr) / len(sdr),
                                "mel": sum(mel) / len(mel)}
        model.train()
        return out

    def score(self, val: dict) -> float:
        total = 0.0
        for key, v in val.items():
            total += v["mel"] + v["kbps"] / (10.0 * self.config.lambdas[int(key[1:])])
        return total / len(val)

    @staticmethod
    def describe(val: dict) -> str:
        return " ".join(f"{k}: {v['kbps']:.2f} kbps SI-SDR {v['si_sdr']:.2f} dB mel {v['mel']:.3f}"
                        for k, v in val.items())


TASKS = {"image": ImageTask, "audio": AudioTask}
