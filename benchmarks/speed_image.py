"""Encode / decode time per megapixel of the aecodec run time, split by stage.

Stages: preprocess, encoder network, quantise + entropy encode (+ container) on the encode
side; entropy decode (+ dequantise), decoder network, postprocess on the decode side. Runs
the public API (array in -> bytes -> array out) after a warm-up; reports the median of
--repeats runs per image and quality, with ONNX Runtime on --threads threads. Peers (Pillow
JPEG / WebP / AVIF, same images, same process) give speed ratios measured side by side.

    python benchmarks/speed_image.py [--images ../shared/data/kodak] [--threads 2]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, features

REPO = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = REPO.parent / "shared" / "data" / "kodak"


def time_aecodec(images: list[np.ndarray], quality: int, repeats: int, threads: int) -> dict:
    import aecodec
    from aecodec.bundle import DEFAULT_IMAGE_MODEL, MODELS_DIR, ModelBundle

    bundle = ModelBundle(MODELS_DIR / DEFAULT_IMAGE_MODEL, providers="cpu", threads=threads)
    stages: dict[str, list[float]] = {}
    totals = {"encode": [], "decode": []}
    mp = []
    for img in images:
        for _ in range(2):  # warm-up
            aecodec.decompress(aecodec.compress(img, quality, model=bundle), model=bundle, as_array=True)
        per = {"encode": [], "decode": []}
        per_stage: dict[str, list[float]] = {}
        for _ in range(repeats):
            t_enc: dict = {}
            t0 = time.perf_counter()
            data = aecodec.compress(img, quality, model=bundle, timings=t_enc)
            t1 = time.perf_counter()
            t_dec: dict = {}
            aecodec.decompress(data, model=bundle, as_array=True, timings=t_dec)
            t2 = time.perf_counter()
            per["encode"].append(t1 - t0)
            per["decode"].append(t2 - t1)
            for k, v in {**t_enc, **t_dec}.items():
                per_stage.setdefault(k, []).append(v)
        megapixels = img.shape[0] * img.shape[1] / 1e6
        mp.append(megapixels)
        for k in per:
            totals[k].append(statistics.median(per[k]) / megapixels)
        for k, v in per_stage.items():
            stages.setdefault(k, []).append(statistics.median(v) / megapixels)
    return {
        "quality": quality,
        "encode_s_per_mp": float(np.mean(totals["encode"])),
        "decode_s_per_mp": float(np.mean(totals["decode"])),
        "stages_s_per_mp": {k: float(np.mean(v)) for k, v in stages.items()},
    }


def time_peer(images: list[np.ndarray], fmt: str, quality: int, repeats: int, extra: dict) -> dict:
    enc, dec = [], []
    for img in images:
        pil = Image.fromarray(img)
        megapixels = img.shape[0] * img.shape[1] / 1e6
        te, td = [], []
        for i in range(repeats + 1):
            buf = io.BytesIO()
            t0 = time.perf_counter()
            pil.save(buf, format=fmt, quality=quality, **extra)
            t1 = time.perf_counter()
            np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
            t2 = time.perf_counter()
            if i:
                te.append(t1 - t0)
                td.append(t2 - t1)
        enc.append(statistics.median(te) / megapixels)
        dec.append(statistics.median(td) / megapixels)
    return {"encode_s_per_mp": float(np.mean(enc)), "decode_s_per_mp": float(np.mean(dec))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", default=str(DEFAULT_IMAGES))
    p.add_argument("--limit", type=int, default=6, help="first N images (default 6)")
    p.add_argument("--qualities", type=int, nargs="+", default=[25, 75])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    p.add_argument("--out", default=str(REPO / "bench-out" / "speed_image.json"))
    args = p.parse_args(argv)
    paths = sorted(Path(args.images).glob("*.png"))[: args.limit]
    if not paths:
        print(f"no PNG images in {args.images}", file=sys.stderr)
        return 1
    images = [np.asarray(Image.open(x).convert("RGB")) for x in paths]
    results = {"aecodec": [time_aecodec(images, q, args.repeats, args.threads) for q in args.qualities]}
    peers = {"jpeg": ("JPEG", 75, {"subsampling": "4:2:0", "optimize": True}), "webp": ("WEBP", 75, {"method": 6}),
             "avif": ("AVIF", 60, {"speed": 6})}
    for name, (fmt, q, extra) in peers.items():
        if name == "avif" and not features.check("avif"):
            results[name] = "unavailable"
            continue
        results[name] = {"quality": q, **time_peer(images, fmt, q, args.repeats, extra)}
    out = {
        "images": [x.name for x in paths], "threads_onnxruntime": args.threads, "repeats": args.repeats,
        "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version()},
        "note": "Pillow codecs run single-threaded; aecodec's networks use --threads ONNX Runtime threads",
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"{len(paths)} images ({images[0].shape[1]}x{images[0].shape[0]}), median of {args.repeats}, "
          f"ONNX Runtime threads {args.threads}\n")
    print("| codec | q | encode s/MP | decode s/MP | encode MP/s | decode MP/s |\n|---|---|---|---|---|---|")
    for r in results["aecodec"]:
        print(f"| aecodec | {r['quality']} | {r['encode_s_per_mp']:.3f} | {r['decode_s_per_mp']:.3f} | "
              f"{1 / r['encode_s_per_mp']:.2f} | {1 / r['decode_s_per_mp']:.2f} |")
    for name in peers:
        r = results[name]
        if isinstance(r, str):
            print(f"| {name} | | {r} | | | |")
        else:
            print(f"| {name} | {r['quality']} | {r['encode_s_per_mp']:.4f} | {r['decode_s_per_mp']:.4f} | "
                  f"{1 / r['encode_s_per_mp']:.1f} | {1 / r['decode_s_per_mp']:.1f} |")
    print("\naecodec stages, s/MP:\n\n| q | " + " | ".join(results["aecodec"][0]["stages_s_per_mp"]) + " |")
    print("|---" * (1 + len(results["aecodec"][0]["stages_s_per_mp"])) + "|")
    for r in results["aecodec"]:
        print(f"| {r['quality']} | " + " | ".join(f"{v:.4f}" for v in r["stages_s_per_mp"].values()) + " |")
    ref = results["aecodec"][-1]
    for name in ("jpeg", "webp", "avif"):
        r = results[name]
        if not isinstance(r, str):
            print(f"aecodec q{ref['quality']} / {name}: encode time x{ref['encode_s_per_mp'] / r['encode_s_per_mp']:.1f}, "
                  f"decode time x{ref['decode_s_per_mp'] / r['decode_s_per_mp']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
