"""Checkpoint -> model bundle folder, for every model family.

encoder.onnx, decoder.onnx (graphs.py), tables.npz (tables.py), manifest.json and MODEL_CARD.md
(model_card.py), after the parity check (parity.py) passed. The bundle is built in a temporary
folder next to the target and moved into place at the end, so a failed export never leaves a
half-written bundle. The model id is the run time's content hash of the three payload files.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from aecodec.models.bundle import compute_model_id
from aecodec.train.audio_model import AudioCodecModel
from aecodec.train.checkpoint_io import AnyModel, family, load_checkpoint
from aecodec.train.hyperprior import HyperpriorCodecModel, hyper_synthesis_constants
from aecodec.train.image_base import DOWNSAMPLE

from .complexity import complexity
from .graphs import OPSET, export_graphs, round_to_fp16
from .model_card import render
from .parity import check_parity
from .precision import store_weights_fp16
from .refiner import export_refiner
from .tables import NUM_QUALITIES, build_tables

ARCHITECTURES = {
    ("image", "factorized"): "bmshj2018-factorized (GDN), per-level gain vectors",
    ("image", "hyperprior"): "mean-scale hyperprior (Minnen 2018, no context model) with an integer h_s, "
                             "GDN transforms, per-level gain vectors",
    ("audio", "factorized"): "SEANet-style 1-D conv autoencoder, factorized density, per-level gain vectors",
}


def architecture_text(model: AnyModel) -> str:
    if isinstance(model, HyperpriorCodecModel) and model.config.context:
        return (f"mean-scale hyperprior (Minnen 2018) with a checkerboard context (He 2021; {model.config.context} "
                "channels), integer h_s and context network, GDN transforms, per-level gain vectors")
    if isinstance(model, AudioCodecModel) and model.config.decoder == "fourier":
        return ("SEANet-style 1-D conv encoder, Vocos-style Fourier decoder (ConvNeXt blocks at the latent rate, "
                "inverse STFT), factorized density, per-level gain vectors")
    return ARCHITECTURES[family(model)]


@dataclass
class ExportOptions:
    """What the exporter is told beyond the checkpoint (CLI flags of `python -m aecodec.export`)."""

    name: str | None = None  # default: "<modality>-<profile>"
    profile: str = "edge"
    default_quality: int = 75  # image bundles
    low_quality_position: float = 0.0  # ladder position of quality 1 (< 0 extrapolates to lower rates)
    high_quality_position: float | None = None  # of quality 100 (default: the highest trained rate point)
    train_command: str = ""
    hardware: str = ""
    card_notes: str = ""
    force: bool = False
    # weights rounded to float16 and the large ones stored so in the graphs (a Cast that ONNX Runtime folds at
    # load: computation stays float32); halves the files of a model too large for the model budget
    fp16_storage: bool = False


def training_summary(ckpt: dict) -> dict:
    history = ckpt.get("history") or []
    return {"steps": ckpt.get("step"), "wall_hours": round(ckpt.get("wall_seconds", 0.0) / 3600, 3),
            "last_validation": history[-1] if history else None, "args": ckpt.get("args"),
            "validation_curve": [{"step": h["step"], "bd_rate_vs_webp": round(h["val"]["bd_rate_vs_webp"], 2)}
                                 for h in history if "bd_rate_vs_webp" in h.get("val", {})]
            + [{"step": h["step"], **{k: {m: round(v[m], 3) for m in ("kbps", "si_sdr", "mel")}
                                      for k, v in h["val"].items() if k.startswith("L") and "si_sdr" in v}}
               for h in history if ckpt.get("modality") == "audio" and "val" in h]}


def build_manifest(model: AnyModel, ckpt: dict, tables: dict[str, np.ndarray], parity: dict, model_id: str,
                   opts: ExportOptions) -> dict:
    """manifest.json: what the run time reads (modality, latent coding, shapes, constants) and the record
    of where the model came from (config, training, parity, export versions)."""
    modality, arch = family(model)
    cfg = model.config
    levels = len(cfg.lambdas)
    high = levels - 1 if opts.high_quality_position is None else opts.high_quality_position
    manifest: dict = {
        "model_id": model_id,
        "name": opts.name or f"{modality}-{opts.profile}",
        "profile": opts.profile,
        "modality": modality,
        "architecture": architecture_text(model),
        "latent_coding": arch,
        "config": cfg.to_dict(),
    }
    if isinstance(model, AudioCodecModel):
        a = model.config
        manifest.update({
            "sample_rate": a.sample_rate, "hop": a.hop, "frame_rate": a.frame_rate, "downsample": a.hop,
            "low_quality_position": opts.low_quality_position, "high_quality_position": high,
            "inputs": {"encoder": "audio: float32 N×1×T, mono in [-1, 1], T a multiple of the hop -> latent N×D×T/hop",
                       "decoder": "latent: float32 N×D×F (symbols / gain) -> audio N×1×F·hop"},
        })
    else:
        manifest.update({"downsample": DOWNSAMPLE, "default_quality": opts.default_quality})
        if isinstance(model, HyperpriorCodecModel):
            if model.config.context:
                manifest["latent_coding"] = "hyperprior-checkerboard"
            manifest.update({
                "pad_multiple": model.pad_multiple,
                "context_channels": model.config.context,
                "hyper_channels": model.config.hyper,
                "hyper_synthesis": hyper_synthesis_constants(),
                "inputs": {"encoder": "image: float32 N×3×H×W, RGB in [0,1], H,W multiples of 64; gain: float32 "
                                      "1×M×1×1 (tables gains[q-1]) -> latent v = g_a(image)·gain N×M×H/16×W/16, "
                                      "hyper z = h_a(v) N×Hc×H/64×W/64",
                           "decoder": "latent: float32 N×M×h×w (v̂ / gain) -> image N×3×16h×16w (unclipped)"},
            })
        else:
            manifest["inputs"] = {"encoder": "image: float32 N×3×H×W, RGB in [0,1], H,W multiples of 16",
                                  "decoder": "latent: float32 N×M×H/16×W/16 (symbols / gain)"}
    manifest.update({
        "latent_channels": cfg.latent,
        "qualities": int(tables["gains"].shape[0]),
        "precision_bits": int(tables["precision"]),
        "quality_ladder": {"quality_1_position": opts.low_quality_position, "quality_100_position": high,
                           "interpolation": "log-linear between trained gain vectors, linear in quality"},
        "complexity": complexity(model),
        "training": training_summary(ckpt),
        "parity": parity,
        "export": {"opset": OPSET, "torch": torch.__version__, "python": platform.python_version()},
    })
    return manifest


def export_model(model: AnyModel, ckpt: dict, out: str | Path, opts: ExportOptions) -> dict:
    """Write the bundle of an already loaded model (eval mode); returns the manifest."""
    out = Path(out)
    if out.exists() and not opts.force:
        raise FileExistsError(f"{out} exists (use --force to replace it)")
    model.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out.parent))
    try:
        if opts.fp16_storage:
            round_to_fp16(model)
        export_graphs(model, tmp)
        stored_fp16 = {g: store_weights_fp16(tmp / f"{g}.onnx") for g in ("encoder", "decoder")} \
            if opts.fp16_storage else {}
        tables = build_tables(model, NUM_QUALITIES, opts.low_quality_position, opts.high_quality_position)
        np.savez_compressed(tmp / "tables.npz", **tables)  # type: ignore[arg-type]
        parity = check_parity(model, tmp, tables)
        manifest = build_manifest(model, ckpt, tables, parity, compute_model_id(tmp), opts)
        if isinstance(model, HyperpriorCodecModel):  # the encoder's latent search (not in the model id)
            ladder = manifest["quality_ladder"]
            manifest["refiner"] = export_refiner(model, tmp, opts.fp16_storage, ladder["quality_1_position"],
                                                 ladder["quality_100_position"])
        if opts.fp16_storage:
            manifest["weights_storage"] = {"dtype": "float16 (computed in float32)",
                                           "stored": {g: len(names) for g, names in stored_fp16.items()}}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        (tmp / "MODEL_CARD.md").write_text(render(manifest, opts.train_command or "(not given)",
                                                  opts.hardware or "(not given)", opts.card_notes))
        os.chmod(tmp, 0o755)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def export_bundle(checkpoint: str | Path, out: str | Path, opts: ExportOptions | None = None, **kwargs: object) -> dict:
    """Checkpoint of any family -> bundle folder `out`; options as ExportOptions or keywords."""
    if opts is None:
        opts = ExportOptions(**kwargs)  # type: ignore[arg-type]
    model, ckpt = load_checkpoint(checkpoint)
    return export_model(model, ckpt, out, opts)
