"""Batch coding with `--ray` (a local Ray cluster) against the plain folder mode, on the same inputs, in one run.

Inputs: the 24 Kodak photos (../shared/data/kodak) if present, else 24 generated 768×512 photo-like images, written
to a temp folder (`--copies N` repeats them under new names for a longer job). Each mode runs through the CLI in a
child process, as a user runs it (`aecodec compress DIR -o OUT` and the same with `--ray`, which starts and stops a
local cluster), then both directions once more as Ray jobs inside one process whose cluster is already up (what a
long job converges to: no cluster start). Outputs must be byte-identical across the modes. Reports wall time, MP/s,
the ratio to the plain mode, the time to the first result (actor start) and the mean coding time per file inside
the workers.

    python benchmarks/ray_batch.py [--images DIR] [--copies N] [--quality Q] [--out-dir bench-out]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
KODAK = REPO.parent / "shared" / "data" / "kodak"


def photo(h: int, w: int, seed: int) -> np.ndarray:
    """A photo-like image (smooth gradients, an edge, texture), as tests/conftest.py makes them."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([128 + 90 * np.sin(xx / w * 3.1 + c + seed) * np.cos(yy / h * 2.3 - c) for c in range(3)], axis=-1)
    img[(xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (min(h, w) / 4) ** 2] += 40
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_inputs(folder: Path, images: Path | None, copies: int) -> tuple[str, float]:
    """(description, megapixels) of the inputs written to folder."""
    folder.mkdir(parents=True)
    sources = sorted(images.glob("*.png")) if images and images.is_dir() else []
    if sources:
        what = f"{len(sources)} photos of {os.path.relpath(images, REPO)}"
        for c in range(copies):
            for p in sources:
                shutil.copyfile(p, folder / f"{p.stem}_{c}.png")
    else:
        what = "24 generated 768×512 photos"
        for c in range(copies):
            for i in range(24):
                Image.fromarray(photo(512, 768, seed=i)).save(folder / f"gen{i:02d}_{c}.png")
    mp = sum(np.prod(Image.open(p).size) for p in folder.iterdir()) / 1e6
    return what + (f", {copies} copies" if copies > 1 else ""), float(mp)


def cli(*args: str) -> float:
    """Wall seconds of one `aecodec` command in a child process (it must succeed)."""
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "aecodec", "-q", *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"aecodec {' '.join(args)} failed:\n{res.stderr}")
    return wall


def same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names)


def warm_job(fn, src: Path, out: Path, **kwargs) -> dict:
    """One Ray job on the running cluster: wall, time to the first result, mean coding seconds per file."""
    first: list[float] = []
    t0 = time.perf_counter()
    results = fn([src], out, progress=lambda r: first.append(time.perf_counter() - t0) if not first else None,
                 **kwargs)
    wall = time.perf_counter() - t0
    if any(r["status"] != "done" for r in results):
        raise SystemExit(f"ray job failed: {[r['error'] for r in results if r['status'] != 'done'][:3]}")
    return {"wall_s": wall, "first_result_s": first[0], "mean_file_s": float(np.mean([r["seconds"] for r in results])),
            "workers": len({r["worker"] for r in results}), "files_after_first": len(results) - 1}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=Path, default=KODAK, help="folder of PNG photos (default ../shared/data/kodak)")
    p.add_argument("--copies", type=int, default=1, help="repeat the inputs N times (a longer job)")
    p.add_argument("--quality", type=int, default=75)
    p.add_argument("--out-dir", type=Path, default=REPO / "bench-out")
    args = p.parse_args(argv)
    import ray
    import ray.data

    import aecodec.distributed as ad

    tmp = Path(tempfile.mkdtemp(prefix="ray_batch_"))
    load_before = os.getloadavg()
    try:
        what, mp = make_inputs(tmp / "in", args.images, args.copies)
        n = len(list((tmp / "in").iterdir()))
        q = ["-q", str(args.quality)]
        rows = []
        t = cli("compress", str(tmp / "in"), "-o", str(tmp / "plain"), *q)
        rows.append({"mode": "plain folder mode (CLI)", "direction": "compress", "wall_s": t})
        t = cli("compress", str(tmp / "in"), "-o", str(tmp / "ray"), *q, "--ray")
        rows.append({"mode": "--ray, local cluster (CLI)", "direction": "compress", "wall_s": t})
        assert same_files(tmp / "plain", tmp / "ray"), "--ray wrote different bytes"
        t = cli("decompress", str(tmp / "plain"), "-o", str(tmp / "plain-dec"))
        rows.append({"mode": "plain folder mode (CLI)", "direction": "decompress", "wall_s": t})
        t = cli("decompress", str(tmp / "plain"), "-o", str(tmp / "ray-dec"), "--ray")
        rows.append({"mode": "--ray, local cluster (CLI)", "direction": "decompress", "wall_s": t})
        assert same_files(tmp / "plain-dec", tmp / "ray-dec"), "--ray decoded different bytes"
        t0 = time.perf_counter()
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        cluster_start = time.perf_counter() - t0
        ray.data.DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        try:
            job = warm_job(ad.compress_files, tmp / "in", tmp / "warm", quality=args.quality)
            rows.append({"mode": "Ray job, cluster already up", "direction": "compress", **job})
            job = warm_job(ad.decompress_files, tmp / "warm", tmp / "warm-dec")
            rows.append({"mode": "Ray job, cluster already up", "direction": "decompress", **job})
            cpus = int(ray.cluster_resources().get("CPU", 0))
        finally:
            ray.shutdown()
        assert same_files(tmp / "plain", tmp / "warm") and same_files(tmp / "plain-dec", tmp / "warm-dec")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    plain = {r["direction"]: r["wall_s"] for r in rows if r["mode"].startswith("plain")}
    for r in rows:
        r["mp_per_s"] = mp / r["wall_s"]
        r["vs_plain"] = plain[r["direction"]] / r["wall_s"]
        if "first_result_s" in r:  # once the actors are up: the rate a long job converges to
            r["steady_mp_per_s"] = mp * r["files_after_first"] / n / (r["wall_s"] - r["first_result_s"])
    report = {"inputs": what, "files": n, "megapixels": mp, "quality": args.quality, "cpus": cpus,
              "command": "python benchmarks/ray_batch.py" + (f" --copies {args.copies}" if args.copies > 1 else ""),
              "ray_version": ray.__version__, "cluster_start_s": cluster_start, "rows": rows,
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "date": time.strftime("%Y-%m-%d")}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    name = "ray_batch.json" if args.copies == 1 else f"ray_batch_x{args.copies}.json"
    (args.out_dir / name).write_text(json.dumps(report, indent=1))
    sys.path.insert(0, str(Path(__file__).parent))
    from report import ray_batch_section

    print(ray_batch_section([report]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
