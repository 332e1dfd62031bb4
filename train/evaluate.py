"""Validation rate–distortion of a training checkpoint against WebP on the same images.

The model side uses the model's own likelihoods on rounded latents (no entropy coder, so it
needs no export); WebP (Pillow, method 6) is encoded for real. Used to compare pilots and to log
the validation curve of a run:

    python -m aecodec.train.evaluate RUN/last.pt --images ../shared/data/images-val [--json OUT]
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from aecodec.metrics import bd_rate, psnr

from .checkpoint_io import ImageModel, load_checkpoint
from .image_base import ImageCodecModel, pad_to_multiple
from .image_data import list_images, load_rgb

WEBP_QUALITIES = (0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)


def load_model(path: str | Path) -> tuple[ImageModel, dict]:
    """An image checkpoint of either architecture, in eval mode, and the checkpoint dict."""
    model, ckpt = load_checkpoint(path)
    if not isinstance(model, ImageCodecModel):
        raise SystemExit(f"{path} is not an image checkpoint")
    return model, ckpt


@torch.no_grad()
def model_curve(model: ImageModel, images: list[np.ndarray]) -> list[tuple[float, float]]:
    """(mean bpp, mean PSNR) per trained rate point."""
    curve = []
    for level in range(len(model.config.lambdas)):
        bpps, psnrs = [], []
        for img in images:
            x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
            h, w = x.shape[-2:]
            padded = pad_to_multiple(x, model.pad_multiple)
            out = model(padded, torch.tensor([level]))
            rec = (out["x_hat"][0, :, :h, :w].clamp(0, 1) * 255).round().permute(1, 2, 0).numpy()
            bpps.append(out["bpp"].item() * padded.shape[2] * padded.shape[3] / (h * w))
            psnrs.append(psnr(rec, img))
        curve.append((float(np.mean(bpps)), float(np.mean(psnrs))))
    return curve


def webp_curve(images: list[np.ndarray]) -> list[tuple[float, float]]:
    curve = []
    for q in WEBP_QUALITIES:
        bpps, psnrs = [], []
        for img in images:
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, "WEBP", quality=q, method=6)
            rec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
            bpps.append(8 * buf.tell() / (img.shape[0] * img.shape[1]))
            psnrs.append(psnr(rec, img))
        curve.append((float(np.mean(bpps)), float(np.mean(psnrs))))
    return curve


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m aecodec.train.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--images", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="write the curves and BD-rates here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    images = [load_rgb(path) for path in list_images(args.images)]
    webp = webp_curve(images)
    report: dict = {"webp": webp, "models": {}}
    for path in args.checkpoints:
        model, ckpt = load_model(path)
        curve = model_curve(model, images)
        bd = bd_rate([r for r, _ in webp], [q for _, q in webp], [r for r, _ in curve], [q for _, q in curve])
        report["models"][str(path)] = {"step": ckpt.get("step"), "wall_hours": ckpt.get("wall_seconds", 0) / 3600,
                                       "curve": curve, "bd_rate_vs_webp": bd}
        points = " ".join(f"{r:.3f}/{q:.2f}" for r, q in curve)
        print(f"{path}: step {ckpt.get('step')} BD-rate vs WebP {bd:+.1f} %  (bpp/PSNR: {points})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
