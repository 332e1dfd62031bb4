"""What does the encoder's latent search (`--refine STEPS`) buy, per number of steps? BD-rate against no search.

In-process (the API), on centre crops of a folder of images (default: images-val, the selection set; Kodak is for
the published figures, `rd_image.py --refine`). Per image: the rate–PSNR curve at each step count over the given
qualities, BD-rate against steps 0 (which already has the encoder's rate-distortion rounding), and the seconds
an encode took. Run it with training paused:

    python benchmarks/refine_steps.py [--images ../shared/data/images-val] [--limit 2] [--size 256]
                                      [--steps 0 50 100] [--qualities 10 35 60 85]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

import aecodec
from aecodec.metrics import bd_rate, psnr

REPO = Path(__file__).resolve().parent.parent


def centre_crop(path: Path, size: int) -> np.ndarray:
    img = Image.open(path).convert("RGB")
    w, h = img.size
    s = min(size, w, h)
    return np.asarray(img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", default=str(REPO.parent / "shared" / "data" / "images-val"))
    p.add_argument("--limit", type=int, default=2, help="first N images")
    p.add_argument("--size", type=int, default=256, help="centre crop side")
    p.add_argument("--steps", type=int, nargs="+", default=[0, 50, 100], help="first: the reference (usually 0)")
    p.add_argument("--qualities", type=int, nargs="+", default=[10, 35, 60, 85])
    p.add_argument("--model", help="image model bundle (default: image-hyperprior)")
    a = p.parse_args(argv)
    bundle = aecodec.load_bundle(a.model or "image-hyperprior")
    paths = sorted(Path(a.images).glob("*.png"))[: a.limit]
    if not paths:
        print(f"no PNG images in {a.images}", file=sys.stderr)
        return 1
    results: dict[int, list[float]] = {s: [] for s in a.steps[1:]}
    for path in paths:
        image = centre_crop(path, a.size)
        pixels = image.shape[0] * image.shape[1]
        curves: dict[int, list[tuple[float, float]]] = {s: [] for s in a.steps}
        for q in a.qualities:
            cells = []
            for steps in a.steps:
                t = time.perf_counter()
                data = aecodec.compress(image, q, model=bundle, refine=steps)
                seconds = time.perf_counter() - t
                point = (8 * len(data) / pixels, psnr(aecodec.decompress(data, model=bundle, as_array=True), image))
                curves[steps].append(point)
                cells.append(f"{steps} steps {point[0]:.4f} bpp {point[1]:.2f} dB {seconds:.1f} s")
            print(f"{path.name} q{q}: " + " | ".join(cells), flush=True)
        ref = np.array(curves[a.steps[0]])
        for steps in a.steps[1:]:
            test = np.array(curves[steps])
            results[steps].append(bd_rate(ref[:, 0], ref[:, 1], test[:, 0], test[:, 1]))
            print(f"  {path.name}: {steps} steps vs {a.steps[0]}: BD-rate {results[steps][-1]:+.2f} %", flush=True)
    print(f"\n{len(paths)} images ({a.size}² centre crops of {Path(a.images).name}), model {bundle.model_id}, "
          f"qualities {a.qualities}")
    for steps, values in results.items():
        print(f"{steps} steps vs {a.steps[0]}: mean BD-rate {np.mean(values):+.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
