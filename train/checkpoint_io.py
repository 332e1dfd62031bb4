"""Checkpoint → model: which model family a saved config dict describes, and loading it.

Checkpoints store plain dicts ("config", "model" state dict, "modality", …), never pickled classes,
so this mapping is the only place that knows the classes: the trainer (resume), evaluation and
export all go through it.

Families: ("image", "factorized") — config without "arch"; ("image", "hyperprior") — config with
"arch": "hyperprior"; ("audio", "factorized") — checkpoints with "modality": "audio".
"""
from __future__ import annotations

from pathlib import Path
import torch

from .audio_model import AudioCodecModel, AudioConfig
from .factorized import FactorizedCodecModel, ModelConfig
from .hyperprior import HyperpriorCodecModel, HyperpriorConfig

ImageConfig = ModelConfig | HyperpriorConfig
AnyConfig = ModelConfig | HyperpriorConfig | AudioConfig
ImageModel = FactorizedCodecModel | HyperpriorCodecModel
AnyModel = FactorizedCodecModel | HyperpriorCodecModel | AudioCodecModel


def config_from_dict(d: dict, modality: str = "image") -> AnyConfig:
    """The config a checkpoint's "config" dict describes (old factorized dicts have no "arch")."""
    if modality == "audio":
        return AudioConfig.from_dict(d)
    if modality != "image":
        raise ValueError(f"unknown modality {modality!r}")
    arch = d.get("arch", "factorized")
    if arch == "hyperprior":
        return HyperpriorConfig.from_dict(d)
    if arch == "factorized":
        return ModelConfig.from_dict(d)
    raise ValueError(f"unknown image architecture {arch!r}")


def build_model(config: AnyConfig) -> AnyModel:
    """A freshly initialised model for `config` (draws from torch's global RNG)."""
    if isinstance(config, AudioConfig):
        return AudioCodecModel(config)
    if isinstance(config, HyperpriorConfig):
        return HyperpriorCodecModel(config)
    return FactorizedCodecModel(config)


def family(model: AnyModel) -> tuple[str, str]:
    """(modality, architecture) of a model: what export and the run time dispatch on."""
    if isinstance(model, AudioCodecModel):
        return "audio", "factorized"
    if isinstance(model, HyperpriorCodecModel):
        return "image", "hyperprior"
    return "image", "factorized"


def load_checkpoint(path: str | Path) -> tuple[AnyModel, dict]:
    """(model with the checkpoint's weights, in eval mode, the checkpoint dict)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if "config" not in ckpt or "model" not in ckpt:
        raise ValueError(f"{path} is not an aecodec training checkpoint (no config / model)")
    model = build_model(config_from_dict(ckpt["config"], ckpt.get("modality", "image")))
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt
