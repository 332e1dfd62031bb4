"""python -m aecodec.export CHECKPOINT --out BUNDLE_DIR [--name NAME] [--force] ...

One exporter for every model family: the modality (image / audio) and the architecture
(factorized / hyperprior) are read from the checkpoint.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .bundle import ExportOptions, export_model
from .parity import ExportParityError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m aecodec.export", description="training checkpoint -> model bundle "
                                "(encoder.onnx, decoder.onnx, tables.npz, manifest.json, MODEL_CARD.md)")
    p.add_argument("checkpoint", help="training checkpoint (.pt) of any model family, e.g. runs/edge/best.pt")
    p.add_argument("--out", required=True, help="bundle folder, e.g. codec/models/image-edge")
    p.add_argument("--name", help="bundle name (default: <modality>-<profile>, e.g. image-edge)")
    p.add_argument("--profile", default="edge", help="profile recorded in the manifest")
    p.add_argument("--default-quality", type=int, default=75, help="image bundles: quality when none is given")
    p.add_argument("--force", action="store_true", help="replace an existing bundle")
    p.add_argument("--low-quality-position", type=float, default=0.0,
                   help="ladder position of quality 1 (0 = lowest trained rate point; <0 extrapolates lower)")
    p.add_argument("--high-quality-position", type=float,
                   help="ladder position of quality 100 (default: the highest trained rate point; larger extrapolates)")
    p.add_argument("--train-command", default="", help="the training command, for the model card")
    p.add_argument("--hardware", default="", help="where it was trained, for the model card")
    p.add_argument("--card-notes", default="", help="extra text for the model card")
    p.add_argument("--weights-out", help="also write the PyTorch weights (no optimizer state) here")
    p.add_argument("--fp16-storage", action="store_true",
                   help="round the weights to float16 and store them so (graphs: large conv weights + a Cast folded "
                        "at load, computed in float32; --weights-out: every float tensor): half the bytes")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    from aecodec.train.checkpoint_io import load_checkpoint

    opts = ExportOptions(name=args.name, profile=args.profile, default_quality=args.default_quality,
                         low_quality_position=args.low_quality_position,
                         high_quality_position=args.high_quality_position, train_command=args.train_command,
                         hardware=args.hardware, card_notes=args.card_notes, force=args.force,
                         fp16_storage=args.fp16_storage)
    try:
        model, ckpt = load_checkpoint(args.checkpoint)
        manifest = export_model(model, ckpt, args.out, opts)
    except (ExportParityError, FileExistsError, FileNotFoundError, ValueError) as e:
        print(f"export: error: {e}", file=sys.stderr)
        return 1
    if args.weights_out:
        Path(args.weights_out).parent.mkdir(parents=True, exist_ok=True)
        state = model.state_dict()
        if args.fp16_storage:  # exact: the weights were rounded to float16 before the export
            state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        torch.save({"config": ckpt["config"], "modality": manifest["modality"], "model": state,
                    "step": ckpt.get("step"), "model_id": manifest["model_id"]}, args.weights_out)
    print(json.dumps({k: manifest[k] for k in ("model_id", "complexity", "parity", "training")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
