"""python -m aecodec.export CHECKPOINT --out BUNDLE_DIR [--force]"""
import argparse
import json
import sys

from .bundle_export import ExportParityError, export_bundle


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m aecodec.export", description="checkpoint -> ONNX model bundle")
    p.add_argument("checkpoint", help="training checkpoint (.pt), e.g. runs/edge/best.pt")
    p.add_argument("--out", required=True, help="bundle folder, e.g. codec/models/image-edge")
    p.add_argument("--name", default="image-edge")
    p.add_argument("--profile", default="edge")
    p.add_argument("--default-quality", type=int, default=75)
    p.add_argument("--force", action="store_true", help="replace an existing bundle")
    p.add_argument("--low-quality-position", type=float, default=0.0,
                   help="ladder position of quality 1 (0 = lowest trained rate point; <0 extrapolates lower)")
    p.add_argument("--train-command", default="", help="the training command, for the model card")
    p.add_argument("--hardware", default="", help="where it was trained, for the model card")
    p.add_argument("--card-notes", default="", help="extra text for the model card")
    p.add_argument("--weights-out", help="also write the PyTorch weights (no optimizer state) here")
    args = p.parse_args(argv)
    try:
        manifest = export_bundle(args.checkpoint, args.out, name=args.name, profile=args.profile,
                                 default_quality=args.default_quality, force=args.force,
                                 low_quality_position=args.low_quality_position)
    except (ExportParityError, FileExistsError, FileNotFoundError) as e:
        print(f"export: error: {e}", file=sys.stderr)
        return 1
    from pathlib import Path

    from .model_card import render

    if args.weights_out:
        import torch

        from .bundle_export import load_checkpoint

        model, ckpt = load_checkpoint(args.checkpoint)
        Path(args.weights_out).parent.mkdir(parents=True, exist_ok=True)
        torch.save({"config": ckpt["config"], "model": model.state_dict(), "step": ckpt.get("step"),
                    "model_id": manifest["model_id"]}, args.weights_out)
    card = render(manifest, args.train_command or "(not given)", args.hardware or "(not given)", args.card_notes)
    (Path(args.out) / "MODEL_CARD.md").write_text(card)
    print(json.dumps({k: manifest[k] for k in ("model_id", "complexity", "parity", "training")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
