"""Checkpoint -> model bundle: encoder.onnx, decoder.onnx, tables.npz, manifest.json.

The encoder and decoder are separate graphs with dynamic batch/height/width; padding and
cropping stay outside them. The decoder's transposed convolutions are exported in their
equivalent sub-pixel form (subpixel.py), which ONNX Runtime runs several times faster. Export runs ONNX Runtime against PyTorch on fixed inputs and
raises ExportParityError if outputs differ beyond tolerance or any rounded latent flips at
any quality level, except values that sit on a rounding boundary to within float32 noise
(ties, counted and reported; they flip between any two correct conv implementations).
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from aecodec.bundle import compute_model_id
from aecodec.train.model import DOWNSAMPLE, FactorizedCodecModel, ModelConfig, count_macs_per_pixel, parameter_counts

from .subpixel import subpixel_synthesis
from .tables import NUM_QUALITIES, build_tables

OPSET = 17
LATENT_TOLERANCE = 1e-3  # max |Δ| of the float latent, ORT vs PyTorch
IMAGE_TOLERANCE = 2e-3  # max |Δ| of the reconstruction on the [0, 1] scale
TIE_BAND = 1e-4  # |frac(y·g) − ½| within this is a rounding tie at float32 precision (|Δ| seen: ~1e-6)
TIE_LIMIT = 1e-5  # ties may flip in at most this fraction of the checked latents


class ExportParityError(RuntimeError):
    pass


def load_checkpoint(path: str | Path) -> tuple[FactorizedCodecModel, dict]:
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = FactorizedCodecModel(ModelConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, ckpt


def _export_graph(module: nn.Module, example: torch.Tensor, path: Path, in_name: str, out_name: str) -> None:
    dynamic = {in_name: {0: "batch", 2: "height", 3: "width"}, out_name: {0: "batch", 2: "height", 3: "width"}}
    torch.onnx.export(
        module, (example,), str(path), input_names=[in_name], output_names=[out_name], dynamic_axes=dynamic,
        opset_version=OPSET, do_constant_folding=True, dynamo=False,
    )


def parity_inputs(seed: int = 0) -> list[np.ndarray]:
    """Deterministic test images: a smooth gradient with texture, and noise, at non-square sizes."""
    rng = np.random.default_rng(seed)
    h, w = 96, 160
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    smooth = np.stack([xx / w, yy / h, 0.5 + 0.4 * np.sin(xx / 7) * np.cos(yy / 5)])
    smooth = np.clip(smooth + 0.05 * rng.standard_normal(smooth.shape), 0, 1)
    noise = rng.random((3, 64, 48), dtype=np.float32)
    return [smooth[None].astype(np.float32), noise[None].astype(np.float32)]


def check_parity(model: FactorizedCodecModel, folder: Path, gains: np.ndarray) -> dict:
    import onnxruntime as ort

    so = ort.SessionOptions()
    enc = ort.InferenceSession(str(folder / "encoder.onnx"), so, providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(folder / "decoder.onnx"), so, providers=["CPUExecutionProvider"])
    report = {"latent_max_abs_diff": 0.0, "image_max_abs_diff": 0.0, "rounded_latent_flips": 0,
              "rounded_latent_ties": 0, "latents_checked": 0}
    for x in parity_inputs():
        with torch.no_grad():
            y_t = model.analysis(torch.from_numpy(x)).numpy()
        y_o = enc.run(None, {"image": x})[0]
        report["latent_max_abs_diff"] = max(report["latent_max_abs_diff"], float(np.abs(y_t - y_o).max()))
        # A rounding flip is a discrepancy unless the value sat on a rounding boundary to within the
        # float noise of two correct convolution implementations (TIE_BAND): such ties flip between any
        # two conforming encoders and are counted separately. Any other flip fails the export.
        for g in gains:
            gc = g[None, :, None, None]
            a, b = y_t * gc, y_o * gc
            flipped = np.rint(a) != np.rint(b)
            tie = np.abs(np.abs(a - np.floor(a)) - 0.5) <= TIE_BAND
            report["rounded_latent_ties"] += int((flipped & tie).sum())
            report["rounded_latent_flips"] += int((flipped & ~tie).sum())
            report["latents_checked"] += y_t.size
        y_hat = (np.rint(y_o * gains[-1][None, :, None, None]) / gains[-1][None, :, None, None]).astype(np.float32)
        with torch.no_grad():
            x_t = model.synthesis(torch.from_numpy(y_hat)).numpy()
        x_o = dec.run(None, {"latent": y_hat})[0]
        report["image_max_abs_diff"] = max(report["image_max_abs_diff"], float(np.abs(x_t - x_o).max()))
    problems = []
    if report["latent_max_abs_diff"] > LATENT_TOLERANCE:
        problems.append(f"encoder differs by {report['latent_max_abs_diff']:.2e} > {LATENT_TOLERANCE}")
    if report["image_max_abs_diff"] > IMAGE_TOLERANCE:
        problems.append(f"decoder differs by {report['image_max_abs_diff']:.2e} > {IMAGE_TOLERANCE}")
    if report["rounded_latent_flips"]:
        problems.append(f"{report['rounded_latent_flips']} rounded latents flip between PyTorch and ONNX Runtime "
                        f"away from a rounding tie")
    if report["rounded_latent_ties"] > TIE_LIMIT * report["latents_checked"]:
        problems.append(f"{report['rounded_latent_ties']} rounding ties flip, more than float noise explains")
    if problems:
        raise ExportParityError("export parity check failed: " + "; ".join(problems))
    return report


def export_bundle(checkpoint: str | Path, out: str | Path, *, name: str = "image-edge", profile: str = "edge",
                  default_quality: int = 75, card_notes: str = "", force: bool = False,
                  low_quality_position: float = 0.0) -> dict:
    """Write a complete bundle to `out` (atomically: built in a temp folder, then moved)."""
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists (use --force to replace it)")
    model, ckpt = load_checkpoint(checkpoint)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out.parent if out.parent.exists() else None))
    try:
        _n, m = model.config.channels, model.config.latent
        _export_graph(model.analysis, torch.rand(1, 3, 64, 64), tmp / "encoder.onnx", "image", "latent")
        _export_graph(subpixel_synthesis(model.synthesis), torch.rand(1, m, 4, 4), tmp / "decoder.onnx", "latent", "reconstruction")
        tables = build_tables(model, NUM_QUALITIES, low_quality_position)
        np.savez_compressed(tmp / "tables.npz", **tables)
        parity = check_parity(model, tmp, tables["gains"])
        model_id = compute_model_id(tmp)
        history = ckpt.get("history", [])
        manifest = {
            "model_id": model_id,
            "name": name,
            "profile": profile,
            "modality": "image",
            "architecture": "bmshj2018-factorized (GDN), per-level gain vectors",
            "config": model.config.to_dict(),
            "downsample": DOWNSAMPLE,
            "latent_channels": m,
            "qualities": NUM_QUALITIES,
            "default_quality": default_quality,
            "precision_bits": int(tables["precision"]),
            "quality_ladder": {"quality_1_position": low_quality_position,
                               "quality_100_position": len(model.config.lambdas) - 1,
                               "interpolation": "log-linear between trained gain vectors, linear in quality"},
            "inputs": {"encoder": "image: float32 N×3×H×W, RGB in [0,1], H,W multiples of 16",
                       "decoder": "latent: float32 N×M×H/16×W/16 (symbols / gain)"},
            "complexity": {**count_macs_per_pixel(model), **parameter_counts(model)},
            "training": {"steps": ckpt.get("step"), "wall_hours": round(ckpt.get("wall_seconds", 0) / 3600, 3),
                         "last_validation": history[-1] if history else None, "args": ckpt.get("args")},
            "parity": parity,
            "export": {"opset": OPSET, "torch": torch.__version__, "python": platform.python_version()},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if card_notes:
            (tmp / "MODEL_CARD.md").write_text(card_notes)
        elif (out / "MODEL_CARD.md").exists():
            shutil.copy(out / "MODEL_CARD.md", tmp / "MODEL_CARD.md")
        os.chmod(tmp, 0o755)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
