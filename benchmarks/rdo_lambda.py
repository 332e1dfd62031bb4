"""The encoder's rate-distortion rounding: BD-rate of each λ against plain rounding on a folder of images.

    python benchmarks/rdo_lambda.py [--images ../shared/data/images-val] [--lambdas 4 8 16 32 48 64 96 160]

Picks `aecodec.coding.latent.RDO_LAMBDA` (encoder's choice; decoders are unaffected). Select on the validation
images, never on Kodak. Every λ codes the same images at the same qualities through `aecodec.image.codec`; bpp is
the whole file, PSNR 8-bit RGB, averaged per quality, then BD-rate (pchip) against λ = ∞ (round to nearest).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PLAIN = 1e12  # large enough that the bits never outweigh the error: round to nearest


def measure(images: list[np.ndarray], qualities: list[int], lam: float, model) -> np.ndarray:
    """(len(qualities), 2): mean bpp and mean PSNR at each quality with RDO_LAMBDA = lam."""
    import aecodec.coding.latent as latent
    from aecodec.image import codec
    from aecodec.metrics import psnr

    saved, latent.RDO_LAMBDA = latent.RDO_LAMBDA, lam
    try:
        out = np.zeros((len(qualities), 2))
        for img in images:
            for i, q in enumerate(qualities):
                data = codec.compress(img, q, model=model)
                out[i] += (8 * len(data) / (img.shape[0] * img.shape[1]),
                           psnr(codec.decode_to_array(data, model=model)[0], img))
        return out / len(images)
    finally:
        latent.RDO_LAMBDA = saved


def main(argv=None) -> int:
    from PIL import Image

    import aecodec
    from aecodec.metrics import bd_rate

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", default=str(REPO.parent / "shared" / "data" / "images-val"))
    p.add_argument("--model", default=None, help="hyperprior bundle (default: the shipped image-hyperprior)")
    p.add_argument("--lambdas", type=float, nargs="+", default=[4, 8, 16, 32, 48, 64, 96, 160])
    p.add_argument("--qualities", type=int, nargs="+", default=[8, 20, 35, 50, 65, 80, 95])
    p.add_argument("--out-dir", default=str(REPO / "bench-out" / "rdo"))
    args = p.parse_args(argv)
    files = sorted(f for f in Path(args.images).iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg", ".ppm"))
    if not files:
        print(f"no images in {args.images}", file=sys.stderr)
        return 1
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    model = aecodec.load_bundle(args.model or "image-hyperprior")
    start = time.time()
    base = measure(images, args.qualities, PLAIN, model)
    rows = {"plain": base.tolist()}
    print(f"{len(images)} images, qualities {args.qualities}\n\n| λ | BD-rate vs plain rounding | bpp / PSNR per quality |")
    print("|---|---|---|")
    print("| ∞ (plain) | 0 | " + " ".join(f"{b:.4f}/{q:.2f}" for b, q in base) + " |", flush=True)
    result = {}
    for lam in args.lambdas:
        r = measure(images, args.qualities, lam, model)
        result[lam] = bd_rate(base[:, 0], base[:, 1], r[:, 0], r[:, 1])
        rows[str(lam)] = r.tolist()
        print(f"| {lam:g} | {result[lam]:+.2f} % | " + " ".join(f"{b:.4f}/{q:.2f}" for b, q in r) + " |", flush=True)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rdo_lambda.json").write_text(json.dumps({"images": len(images), "qualities": args.qualities,
                                                     "bd_rate_percent": result, "curves": rows,
                                                     "model": model.model_id}, indent=1))
    print(f"\nwrote {out / 'rdo_lambda.json'} ({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
