"""Time and peak memory of aecodec against image size (tiled coding keeps memory near-linear).

Each size runs in a fresh process (so its peak RSS is its own): compress an RGB image of that
many megapixels, then decompress it, through the public API. Prints a table and writes JSON.

    python benchmarks/scale_image.py [--sizes 1 4 16 64] [--model BUNDLE] [--out-dir bench-out]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
import numpy as np
import aecodec
mp = float(sys.argv[1])
model = sys.argv[2] if len(sys.argv) > 2 else None
w = int((mp * 1e6 * 1.5) ** 0.5) // 16 * 16
h = int(mp * 1e6 / w)
rng = np.random.default_rng(0)
yy = np.linspace(0, 40, h, dtype=np.float32)[:, None]
xx = np.linspace(0, 60, w, dtype=np.float32)[None, :]
base = (127 + 100 * np.sin(xx) * np.cos(yy)).astype(np.uint8)
img = np.stack([base, base[::-1], np.roll(base, 17, axis=1)], axis=-1)
img += rng.integers(0, 8, (1, w, 3), dtype=np.uint8)
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
data = aecodec.compress(img, quality=75, max_pixels=10**10, model=model)
t1 = time.perf_counter()
out = aecodec.decompress(data, as_array=True, max_pixels=10**10, model=model)
t2 = time.perf_counter()
assert out.shape == img.shape
print(json.dumps({"megapixels": w * h / 1e6, "width": w, "height": h, "bytes": len(data),
                  "encode_s": t1 - t0, "decode_s": t2 - t1,
                  "rss_before_coding_mb": rss0 / 1024, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=float, nargs="+", default=[1, 4, 16, 64])
    p.add_argument("--model", help="image model bundle (default: the shipped default)")
    p.add_argument("--out-dir", default=str(REPO / "bench-out"))
    args = p.parse_args(argv)
    rows = []
    for mp in args.sizes:
        res = subprocess.run([sys.executable, "-c", CHILD, str(mp)] + ([args.model] if args.model else []),
                             capture_output=True, text=True)
        if res.returncode:
            print(res.stderr[-2000:], file=sys.stderr)
            return 1
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(f"  {mp} MP done", file=sys.stderr, flush=True)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale_image.json").write_text(json.dumps(rows, indent=1))
    print("| MP | size | encode s | decode s | s/MP (enc+dec) | peak RSS MB | RSS before coding MB | bytes/px of peak |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        mp = r["megapixels"]
        print(f"| {mp:.1f} | {r['width']}x{r['height']} | {r['encode_s']:.1f} | {r['decode_s']:.1f} | "
              f"{(r['encode_s'] + r['decode_s']) / mp:.2f} | {r['peak_rss_mb']:.0f} | {r['rss_before_coding_mb']:.0f} | "
              f"{r['peak_rss_mb'] * 2**20 / (mp * 1e6):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
