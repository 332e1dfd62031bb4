"""Mean bpp and PSNR at every quality 1..100 on a folder of images: checks the ladder is monotonic.

    python benchmarks/quality_ladder.py [--images ../shared/data/kodak] [--step 1]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


def _rel(path) -> str:
    """A path as written relative to the repository (no machine-specific absolute paths in outputs)."""
    import os

    return os.path.relpath(os.path.abspath(path), REPO)


def main(argv=None) -> int:
    import aecodec

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", default=str(REPO.parent / "shared" / "data" / "kodak"))
    p.add_argument("--step", type=int, default=1)
    p.add_argument("--model")
    p.add_argument("--no-psnr", action="store_true", help="sizes only (no decoding)")
    p.add_argument("--out", default=str(REPO / "bench-out" / "quality_ladder.json"))
    args = p.parse_args(argv)
    paths = sorted(Path(args.images).glob("*.png"))
    images = [np.asarray(Image.open(x).convert("RGB")) for x in paths]
    rows = []
    for q in range(1, 101, args.step):
        bpp, psnr = [], []
        for img in images:
            data = aecodec.compress(img, quality=q, model=args.model)
            bpp.append(8 * len(data) / (img.shape[0] * img.shape[1]))
            if not args.no_psnr:
                out = aecodec.decompress(data, model=args.model, as_array=True)
                mse = np.mean((out.astype(np.float64) - img) ** 2)
                psnr.append(10 * np.log10(255**2 / mse))
        rows.append({"quality": q, "bpp": float(np.mean(bpp)), "psnr": float(np.mean(psnr)) if psnr else None})
    sizes = [r["bpp"] for r in rows]
    monotonic = all(b > a for a, b in zip(sizes, sizes[1:]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"images": _rel(args.images), "rows": rows, "strictly_increasing": monotonic}, indent=1))
    print(f"{len(images)} images; qualities {rows[0]['quality']}..{rows[-1]['quality']} step {args.step}; "
          f"mean bpp {sizes[0]:.3f} .. {sizes[-1]:.3f}; strictly increasing: {monotonic}")
    for r in rows[:: max(1, 10 // args.step)]:
        print(f"  q{r['quality']:3d}  {r['bpp']:.4f} bpp" + (f"  {r['psnr']:.2f} dB" if r["psnr"] else ""))
    return 0 if monotonic else 1


if __name__ == "__main__":
    sys.exit(main())
