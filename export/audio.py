"""python -m aecodec.export.audio CHECKPOINT --out BUNDLE_DIR [--force]: audio checkpoint -> bundle."""
import argparse
import json
import sys

from .audio_export import export_audio_bundle
from .bundle_export import ExportParityError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m aecodec.export.audio", description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True)
    p.add_argument("--name", default="audio-edge")
    p.add_argument("--force", action="store_true")
    p.add_argument("--low-quality-position", type=float, default=0.0,
                   help="ladder position of quality 1 (0 = lowest trained rate; negative extrapolates lower)")
    p.add_argument("--high-quality-position", type=float,
                   help="ladder position of quality 100 (default: the highest trained rate; larger extrapolates)")
    args = p.parse_args(argv)
    try:
        manifest = export_audio_bundle(args.checkpoint, args.out, name=args.name, force=args.force,
                                       low=args.low_quality_position,
                                       high=args.high_quality_position)
    except (ExportParityError, FileExistsError, FileNotFoundError, ValueError) as e:
        print(f"export: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps({k: manifest[k] for k in ("model_id", "complexity", "parity")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
