"""Rate–distortion of aecodec against JPEG, WebP, AVIF and JPEG 2000 on a folder of images.

aecodec is measured through its command line, as a user runs it (batch mode: one `compress`
and one `decompress` process per quality over all images). The peers run through Pillow in the same run.
Per setting: mean bpp over the images (whole file, header included), mean of per-image PSNR
on 8-bit RGB and mean MS-SSIM (pytorch-msssim, if installed). BD-rate and BD-PSNR of aecodec
against each peer (Bjøntegaard, pchip; aecodec.metrics). CompressAI's published Kodak curves for
bmshj2018-factorized and -hyperprior are drawn as reference lines (reference_curves.py).

Outputs (folder --out-dir, default bench-out/): rd_image.json (curves, BD figures, per-image
rows), rd_psnr.png, rd_msssim.png, crops.png (the same crop from every codec at matched bpp).

    python benchmarks/rd_image.py [--images ../shared/data/kodak] [--out-dir bench-out]
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

from aecodec.metrics import bd_psnr, bd_rate, psnr, rate_ratio_at

sys.path.insert(0, str(Path(__file__).parent))
from reference_curves import CURVES as REFERENCE_CURVES  # noqa: E402
from reference_curves import SOURCE as REFERENCE_SOURCE  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = REPO.parent / "shared" / "data" / "kodak"

# name: (Pillow format, settings, save-argument builder, feature needed)
PEERS = {
    "jpeg": ("JPEG", [5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95],
             lambda q: {"quality": q, "subsampling": "4:2:0", "optimize": True}, "jpg"),
    "webp": ("WEBP", [0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95], lambda q: {"quality": q, "method": 6}, "webp"),
    "avif": ("AVIF", [10, 20, 30, 40, 50, 60, 70, 80, 90], lambda q: {"quality": q, "speed": 6}, "avif"),
    # PSNR-targeted, like the anchors: the setting is the target PSNR in dB
    "jpeg2000": ("JPEG2000", [22, 24, 26, 28, 30, 32, 34, 36, 38, 40],
                 lambda q: {"quality_mode": "dB", "quality_layers": [q], "irreversible": True, "mct": 1}, "jpg_2000"),
}
DEFAULT_AEC_QUALITIES = [1, 15, 29, 43, 57, 71, 86, 100]


def _rel(path) -> str:
    """A path as written relative to the repository (no machine-specific absolute paths in outputs)."""
    import os

    return os.path.relpath(os.path.abspath(path), REPO)


class MsSsim:
    """MS-SSIM on 8-bit RGB (data_range 255) with pytorch-msssim; None where unavailable."""

    def __init__(self):
        try:
            import torch
            from pytorch_msssim import ms_ssim

            torch.set_num_threads(1)
            self._torch, self._fn = torch, ms_ssim
        except ImportError:
            self._fn = None

    @property
    def available(self) -> bool:
        return self._fn is not None

    def __call__(self, a: np.ndarray, b: np.ndarray) -> float | None:
        if self._fn is None or min(a.shape[:2]) <= 160:  # 4 downsamplings of an 11-tap window
            return None
        t = self._torch
        x = t.from_numpy(np.array(a, dtype=np.float32)).permute(2, 0, 1)[None]
        y = t.from_numpy(np.array(b, dtype=np.float32)).permute(2, 0, 1)[None]
        return float(self._fn(x, y, data_range=255.0, size_average=True))


def encode_peer(name: str, ref: Image.Image, setting) -> tuple[bytes, np.ndarray]:
    fmt, _, args, _ = PEERS[name]
    buf = io.BytesIO()
    ref.save(buf, format=fmt, **args(setting))
    data = buf.getvalue()
    return data, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def run_peer(name: str, images: list[Path], metric: MsSsim) -> list[dict]:
    rows = []
    for setting in PEERS[name][1]:
        for path in images:
            ref = Image.open(path).convert("RGB")
            data, out = encode_peer(name, ref, setting)
            a = np.asarray(ref)
            rows.append({"codec": name, "quality": setting, "image": path.name, "bytes": len(data),
                         "bpp": 8 * len(data) / (ref.width * ref.height), "psnr": psnr(a, out),
                         "ms_ssim": metric(a, out)})
    return rows


def aecodec_cli(path: Path, quality: int, tmp: Path, model: str | None, refine: int = 0) -> tuple[int, np.ndarray]:
    model_args = ["--model", model] if model else []
    refine_args = ["--refine", str(refine)] if refine else []
    aec, png = tmp / "x.aec", tmp / "x.png"
    subprocess.run([sys.executable, "-m", "aecodec", "compress", str(path), "-o", str(aec), "-q", str(quality),
                    "-f", "--quiet", *model_args, *refine_args], check=True)
    subprocess.run([sys.executable, "-m", "aecodec", "decompress", str(aec), "-o", str(png), "-f", "--quiet",
                    *model_args], check=True)
    return aec.stat().st_size, np.asarray(Image.open(png).convert("RGB"))


def run_aecodec(images: list[Path], qualities: list[int], model: str | None, metric: MsSsim,
                refine: int = 0) -> list[dict]:
    """The CLI in batch mode: one `compress` and one `decompress` process per quality for all images."""
    rows = []
    model_args = ["--model", model] if model else []
    refine_args = ["--refine", str(refine)] if refine else []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for path in images:  # the batch input: links to the chosen images only
            (src / path.name).symlink_to(path.resolve())
        for q in qualities:
            aec_dir, png_dir = Path(tmp) / f"q{q}", Path(tmp) / f"q{q}png"
            t = time.time()
            subprocess.run([sys.executable, "-m", "aecodec", "compress", str(src), "-o", str(aec_dir), "-q", str(q),
                            "--quiet", *model_args, *refine_args], check=True)
            encode_seconds = time.time() - t
            subprocess.run([sys.executable, "-m", "aecodec", "decompress", str(aec_dir), "-o", str(png_dir), "--quiet",
                            *model_args], check=True)
            for path in images:
                ref = np.asarray(Image.open(path).convert("RGB"))
                out = np.asarray(Image.open(png_dir / (path.stem + ".png")).convert("RGB"))
                if out.shape != ref.shape:
                    raise SystemExit(f"aecodec returned {out.shape} for {path.name} of {ref.shape}")
                n = (aec_dir / (path.stem + ".aec")).stat().st_size
                rows.append({"codec": "aecodec", "quality": q, "image": path.name, "bytes": n,
                             "bpp": 8 * n / (ref.shape[0] * ref.shape[1]), "psnr": psnr(ref, out),
                             "ms_ssim": metric(ref, out)})
            print(f"  aecodec q{q}: done (compress {encode_seconds:.0f} s for {len(images)} images)", file=sys.stderr,
                  flush=True)
    return rows


def curve(rows: list[dict], codec: str) -> list[dict]:
    points = []
    for q in sorted({r["quality"] for r in rows if r["codec"] == codec}):
        sel = [r for r in rows if r["codec"] == codec and r["quality"] == q]
        ms = [r["ms_ssim"] for r in sel if r["ms_ssim"] is not None]
        points.append({"quality": q, "bpp": float(np.mean([r["bpp"] for r in sel])),
                       "psnr": float(np.mean([r["psnr"] for r in sel])),
                       "ms_ssim": float(np.mean(ms)) if ms else None, "images": len(sel)})
    return points


def bd_table(curves: dict, peers: list[str]) -> dict:
    a = curves["aecodec"]
    out = {}
    for name in peers:
        c = curves[name]
        try:
            out[name] = {
                "bd_rate_percent": bd_rate([x["bpp"] for x in c], [x["psnr"] for x in c],
                                           [x["bpp"] for x in a], [x["psnr"] for x in a]),
                "bd_psnr_db": bd_psnr([x["bpp"] for x in c], [x["psnr"] for x in c],
                                      [x["bpp"] for x in a], [x["psnr"] for x in a]),
                # aecodec's rate / the peer's at every whole dB both curves reach
                "rate_ratio_by_psnr": rate_ratio_at([x["bpp"] for x in c], [x["psnr"] for x in c],
                                                    [x["bpp"] for x in a], [x["psnr"] for x in a], range(15, 60)),
            }
        except ValueError as e:
            out[name] = {"error": str(e)}
    return out


def plot_curves(curves: dict, out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for metric, label, fname in (("psnr", "PSNR (dB, RGB)", "rd_psnr.png"), ("ms_ssim", "MS-SSIM (RGB)", "rd_msssim.png")):
        fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
        any_points = False
        for name, c in curves.items():
            pts = [(x["bpp"], x[metric]) for x in c if x.get(metric) is not None]
            if pts:
                any_points = True
                style = "o-" if name == "aecodec" else ".-"
                ax.plot(*zip(*pts), style, label=name, lw=2.2 if name == "aecodec" else 1.2)
        for name, ref in REFERENCE_CURVES.items():
            ax.plot(ref["bpp"], ref[metric], "--", lw=1, label=name)
        if not any_points:
            plt.close(fig)
            continue
        ax.set_xlim(0, 2.0)
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title("Kodak, mean over images")
        fig.tight_layout()
        fig.savefig(out_dir / fname)
        plt.close(fig)
        written.append(fname)
    return written


def crop_comparison(image: Path, rows: list[dict], model: str | None, out_dir: Path, peers: list[str],
                    crop: tuple[int, int, int, int] = (300, 200, 200, 200), refine: int = 0) -> dict:
    """Same crop of one image from every codec, each at the setting whose bpp is closest to aecodec's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mine = [r for r in rows if r["codec"] == "aecodec" and r["image"] == image.name]
    target = sorted(mine, key=lambda r: r["bpp"])[len(mine) // 3]  # a low-to-mid rate point
    ref = Image.open(image).convert("RGB")
    x0, y0, w, h = crop
    w, h = min(w, ref.width), min(h, ref.height)
    x0, y0 = min(x0, ref.width - w), min(y0, ref.height - h)
    panels = [("original", np.asarray(ref), None)]
    with tempfile.TemporaryDirectory() as tmp:
        n, out = aecodec_cli(image, target["quality"], Path(tmp), model, refine)
        panels.append((f"aecodec q{target['quality']}", out, 8 * n / (ref.width * ref.height)))
    for name in peers:
        cands = [r for r in rows if r["codec"] == name and r["image"] == image.name]
        best = min(cands, key=lambda r: abs(r["bpp"] - target["bpp"]))
        data, out = encode_peer(name, ref, best["quality"])
        panels.append((f"{name} {best['quality']}", out, 8 * len(data) / (ref.width * ref.height)))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.0), dpi=110)
    for ax, (title, arr, bpp) in zip(axes, panels):
        ax.imshow(arr[y0 : y0 + h, x0 : x0 + w], interpolation="nearest")
        ax.set_title(title + (f"\n{bpp:.3f} bpp, {psnr(np.asarray(ref), arr):.2f} dB" if bpp else "\n"), fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out_dir / "crops.png")
    plt.close(fig)
    return {"image": image.name, "crop_xywh": [x0, y0, w, h], "target_bpp": target["bpp"],
            "panels": [{"codec": t, "bpp": b} for t, _, b in panels]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", default=str(DEFAULT_IMAGES))
    p.add_argument("--qualities", type=int, nargs="+", default=DEFAULT_AEC_QUALITIES)
    p.add_argument("--peers", nargs="*", default=list(PEERS))
    p.add_argument("--model", help="aecodec model bundle (default: shipped)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N images")
    p.add_argument("--crop-image", default="kodim23.png", help="image for the visual comparison")
    p.add_argument("--out-dir", default=str(REPO / "bench-out"))
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--refine", type=int, default=0, metavar="STEPS", help="aecodec compress --refine STEPS")
    args = p.parse_args(argv)

    images = sorted(Path(args.images).glob("*.png"))[: args.limit or None]
    if not images:
        print(f"no PNG images in {args.images}", file=sys.stderr)
        return 1
    unavailable = {n: f"Pillow lacks {PEERS[n][3]}" for n in args.peers if not features.check(PEERS[n][3])}
    peers = [n for n in args.peers if n not in unavailable]
    metric = MsSsim()
    t0 = time.time()
    rows = run_aecodec(images, args.qualities, args.model, metric, args.refine)
    for name in peers:
        rows += run_peer(name, images, metric)
        print(f"  {name}: done", file=sys.stderr, flush=True)
    curves = {c: curve(rows, c) for c in ["aecodec", *peers]}
    bd = bd_table(curves, peers)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots, crops = [], None
    if not args.no_plots:
        plots = plot_curves(curves, out_dir)
        crop_path = Path(args.images) / args.crop_image
        if crop_path.exists() and crop_path in images:
            crops = crop_comparison(crop_path, rows, args.model, out_dir, peers, refine=args.refine)
            plots.append("crops.png")

    import aecodec
    from PIL import __version__ as pil_version

    result = {
        "images": _rel(args.images), "num_images": len(images), "curves": curves, "bd_vs_peers": bd,
        "unavailable": unavailable, "aecodec_model": aecodec.load_bundle(args.model).model_id, "aecodec_refine": args.refine,
        "ms_ssim": "pytorch-msssim, data_range 255, RGB" if metric.available else "unavailable (pytorch-msssim missing)",
        "reference_curves": {"source": REFERENCE_SOURCE, "curves": REFERENCE_CURVES},
        "machine": {"python": platform.python_version(), "pillow": pil_version, "cpu_count": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
        "peer_settings": {k: {"format": v[0], "settings": v[1], "args_example": {kk: str(vv) for kk, vv in v[2](v[1][0]).items()}}
                          for k, v in PEERS.items()},
        "plots": plots, "crop_comparison": crops, "seconds": round(time.time() - t0, 1), "rows": rows,
    }
    (out_dir / "rd_image.json").write_text(json.dumps(result, indent=1))
    refined = f", --refine {args.refine}" if args.refine else ""
    print(f"\n{len(images)} images from {_rel(args.images)}; aecodec model {result['aecodec_model']}{refined}\n")
    print("| codec | setting | bpp | PSNR dB | MS-SSIM |\n|---|---|---|---|---|")
    for name, c in curves.items():
        for x in c:
            ms = f"{x['ms_ssim']:.4f}" if x["ms_ssim"] is not None else "-"
            print(f"| {name} | {x['quality']} | {x['bpp']:.4f} | {x['psnr']:.2f} | {ms} |")
    print("\n| aecodec vs | BD-rate | BD-PSNR |\n|---|---|---|")
    for name, v in bd.items():
        if "error" in v:
            print(f"| {name} | {v['error']} | |")
        else:
            print(f"| {name} | {v['bd_rate_percent']:+.1f} % | {v['bd_psnr_db']:+.2f} dB |")
    for name, why in unavailable.items():
        print(f"| {name} | unavailable: {why} | |")
    ratios = {name: v["rate_ratio_by_psnr"] for name, v in bd.items() if v.get("rate_ratio_by_psnr")}
    if ratios:
        grid = sorted({p for r in ratios.values() for p in r})
        print("\naecodec's bits / the peer's at equal PSNR (where the BD-rate is won or lost):\n")
        print("| peer | " + " | ".join(f"{p:.0f} dB" for p in grid) + " |\n|---|" + "---|" * len(grid))
        for name, r in ratios.items():
            print(f"| {name} | " + " | ".join(f"{r[p]:.2f}" if p in r else "" for p in grid) + " |")
    print(f"\nwrote {out_dir / 'rd_image.json'} and {', '.join(plots) or 'no plots'} ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
