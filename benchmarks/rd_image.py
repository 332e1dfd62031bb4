"""Rate–distortion of aecodec against Pillow's JPEG, WebP and AVIF on a folder of images.

aecodec is measured through its command line, as a user would run it (one `compress` and one
`decompress` process per image and quality). Per setting: mean bpp over the images (whole
file, header included) and mean of per-image PSNR on 8-bit RGB; BD-rate of aecodec against
each peer (pchip, see bdrate.py). Writes JSON with per-image rows and prints a table.

    python benchmarks/rd_image.py [--images ../shared/data/kodak] [--out bench-out/rd_image.json]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, features

sys.path.insert(0, str(Path(__file__).parent))
from bdrate import bd_psnr, bd_rate  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = REPO.parent / "shared" / "data" / "kodak"

PEERS = {
    # name: (Pillow format, qualities, extra save args)
    "jpeg": ("JPEG", [5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95], {"subsampling": "4:2:0", "optimize": True}),
    "webp": ("WEBP", [0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95], {"method": 6}),
    "avif": ("AVIF", [10, 20, 30, 40, 50, 60, 70, 80, 90], {"speed": 6}),
}
DEFAULT_AEC_QUALITIES = [1, 15, 29, 43, 57, 71, 86, 100]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse)) if mse > 0 else 100.0


def run_peer(name: str, images: list[Path]) -> list[dict]:
    fmt, qualities, extra = PEERS[name]
    rows = []
    for q in qualities:
        for path in images:
            ref = Image.open(path).convert("RGB")
            buf = io.BytesIO()
            ref.save(buf, format=fmt, quality=q, **extra)
            data = buf.getvalue()
            out = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            rows.append({"codec": name, "quality": q, "image": path.name, "bytes": len(data),
                         "bpp": 8 * len(data) / (ref.width * ref.height), "psnr": psnr(np.asarray(ref), out)})
    return rows


def run_aecodec_cli(images: list[Path], qualities: list[int], model: str | None) -> list[dict]:
    rows = []
    model_args = ["--model", model] if model else []
    with tempfile.TemporaryDirectory() as tmp:
        for q in qualities:
            for path in images:
                aec, png = Path(tmp) / "x.aec", Path(tmp) / "x.png"
                subprocess.run([sys.executable, "-m", "aecodec", "compress", str(path), "-o", str(aec), "-q", str(q),
                                "-f", "--quiet", *model_args], check=True)
                subprocess.run([sys.executable, "-m", "aecodec", "decompress", str(aec), "-o", str(png), "-f",
                                "--quiet", *model_args], check=True)
                ref = np.asarray(Image.open(path).convert("RGB"))
                out = np.asarray(Image.open(png).convert("RGB"))
                assert out.shape == ref.shape, (out.shape, ref.shape)
                n = aec.stat().st_size
                rows.append({"codec": "aecodec", "quality": q, "image": path.name, "bytes": n,
                             "bpp": 8 * n / (ref.shape[0] * ref.shape[1]), "psnr": psnr(ref, out)})
            print(f"  aecodec q{q}: done", file=sys.stderr, flush=True)
    return rows


def curve(rows: list[dict], codec: str) -> list[dict]:
    points = []
    for q in sorted({r["quality"] for r in rows if r["codec"] == codec}):
        sel = [r for r in rows if r["codec"] == codec and r["quality"] == q]
        points.append({"quality": q, "bpp": float(np.mean([r["bpp"] for r in sel])),
                       "psnr": float(np.mean([r["psnr"] for r in sel])), "images": len(sel)})
    return points


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", default=str(DEFAULT_IMAGES))
    p.add_argument("--qualities", type=int, nargs="+", default=DEFAULT_AEC_QUALITIES)
    p.add_argument("--peers", nargs="*", default=list(PEERS))
    p.add_argument("--model", help="aecodec model bundle (default: shipped)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N images")
    p.add_argument("--out", default=str(REPO / "bench-out" / "rd_image.json"))
    args = p.parse_args(argv)

    images = sorted(Path(args.images).glob("*.png"))[: args.limit or None]
    if not images:
        print(f"no PNG images in {args.images}", file=sys.stderr)
        return 1
    peers = [n for n in args.peers if n != "avif" or features.check("avif")]
    t0 = time.time()
    rows = run_aecodec_cli(images, args.qualities, args.model)
    for name in peers:
        rows += run_peer(name, images)
        print(f"  {name}: done", file=sys.stderr, flush=True)
    curves = {c: curve(rows, c) for c in ["aecodec", *peers]}
    a = curves["aecodec"]
    bd = {}
    for name in peers:
        c = curves[name]
        try:
            bd[name] = {
                "bd_rate_percent": bd_rate([x["bpp"] for x in c], [x["psnr"] for x in c],
                                           [x["bpp"] for x in a], [x["psnr"] for x in a]),
                "bd_psnr_db": bd_psnr([x["bpp"] for x in c], [x["psnr"] for x in c],
                                      [x["bpp"] for x in a], [x["psnr"] for x in a]),
            }
        except ValueError as e:
            bd[name] = {"error": str(e)}
    import aecodec
    from PIL import __version__ as pil_version

    result = {
        "images": str(args.images), "num_images": len(images), "curves": curves, "bd_vs_peers": bd, "rows": rows,
        "aecodec_model": aecodec.load_bundle(args.model).model_id,
        "machine": {"python": platform.python_version(), "pillow": pil_version, "cpu_count": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
        "peer_settings": {k: {"qualities": v[1], **{kk: str(vv) for kk, vv in v[2].items()}} for k, v in PEERS.items()},
        "seconds": round(time.time() - t0, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"\n{len(images)} images from {args.images}\n")
    print("| codec | quality | bpp | PSNR dB |\n|---|---|---|---|")
    for name, c in curves.items():
        for x in c:
            print(f"| {name} | {x['quality']} | {x['bpp']:.4f} | {x['psnr']:.2f} |")
    print("\n| aecodec vs | BD-rate | BD-PSNR |\n|---|---|---|")
    for name, v in bd.items():
        if "error" in v:
            print(f"| {name} | {v['error']} | |")
        else:
            print(f"| {name} | {v['bd_rate_percent']:+.1f} % | {v['bd_psnr_db']:+.2f} dB |")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
