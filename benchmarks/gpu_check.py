"""The prepared GPU check (run by benchmarks/gpu_check.sh): parity with the CPU and throughput at 1080p.

For every GPU backend found (ONNX Runtime CUDA; ONNX Runtime TensorRT at fp16 and fp32; PyTorch CUDA from
the training checkpoint, fp32 and fp16 autocast):

- parity: 1080p photos coded on the GPU and on the CPU: share of latent symbols that differ, and the PSNR of
  each file decoded on the other side (a file from either decodes on either: the entropy path is exact);
- network throughput: the encoder and decoder graphs on batches of 1080p images (padded to 1088×1920);
- end to end: aecodec.compress / decompress of 1080p images, `--workers` images at a time (sessions are
  thread-safe; entropy coding runs on the CPU).

Backends that are missing are reported as "not available" with the reason. A run stays within --budget
seconds (steps that would start after it are reported as skipped). Without any GPU backend it runs a dry
pass on the CPU at a small size, so the script itself is checked anywhere. No network access is needed.

    benchmarks/gpu_check.sh [--batch 8] [--budget 330] [--dry-run]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def ensure_aecodec_importable() -> None:
    """Use an installed aecodec, else this checkout (the GPU machine may have the tree but no install)."""
    try:
        import aecodec  # noqa: F401
        return
    except ImportError:
        pass
    shim = Path(tempfile.mkdtemp(prefix="aecodec-shim-"))
    (shim / "aecodec").symlink_to(REPO / "codec")
    sys.path.insert(0, str(shim))
    import aecodec

    aecodec.__path__.append(str(REPO))  # aecodec.train, aecodec.export: the checkout's train/, export/


ensure_aecodec_importable()
sys.path.insert(0, str(Path(__file__).resolve().parent))

from aecodec.image import compress, decompress  # noqa: E402
from aecodec.image.tiling import to_network_input  # noqa: E402
from aecodec.metrics import psnr  # noqa: E402
from aecodec.models import DEFAULT_IMAGE_MODEL, MODELS_DIR, ModelBundle  # noqa: E402

FOLDER = MODELS_DIR / DEFAULT_IMAGE_MODEL


class Budget:
    def __init__(self, seconds: float):
        self.end = time.time() + seconds

    def left(self) -> float:
        return self.end - time.time()


def photos(width: int, height: int, count: int) -> list[np.ndarray]:
    """Kodak photos resized to the size where the data is beside the checkout, else synthetic ones."""
    from PIL import Image

    kodak = REPO.parent / "shared" / "data" / "kodak"
    files = sorted(kodak.glob("kodim*.png"))[:count] if kodak.is_dir() else []
    if files:
        return [np.asarray(Image.open(f).convert("RGB").resize((width, height), Image.LANCZOS)) for f in files]
    from aecodec.cli.bench import synthetic_photo

    return [synthetic_photo(height, width, seed=i) for i in range(count)]


def timed(fn, repeats: int) -> float:
    fn()  # warm-up (TensorRT builds or loads its engine here)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def network_rates(bundle, images: list[np.ndarray], batch: int, repeats: int) -> tuple[float, float]:
    """Encoder and decoder graph megapixels per second on a batch (the images' pixels, not the padding)."""
    x = np.ascontiguousarray(np.concatenate([to_network_input(images[i % len(images)], bundle.manifest.padding)
                                             for i in range(batch)]))
    gain = bundle.coding.gain(75) if bundle.is_hyperprior else None
    y = bundle.run_encoder(x, gain)[0]
    if gain is not None:
        y = y / gain.reshape(1, -1, 1, 1)
    y = np.ascontiguousarray(np.rint(y * 4) / 4, dtype=np.float32)
    mp = batch * images[0].shape[0] * images[0].shape[1] / 1e6
    return mp / timed(lambda: bundle.run_encoder(x, gain), repeats), mp / timed(lambda: bundle.run_decoder(y), repeats)


def end_to_end(bundle, images: list[np.ndarray], workers: int, quality: int = 75) -> tuple[float, float, list[bytes]]:
    mp = sum(i.shape[0] * i.shape[1] for i in images) / 1e6
    compress(images[0], quality=quality, model=bundle, lossless=False)  # warm-up
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        t0 = time.perf_counter()
        files = list(pool.map(lambda im: compress(im, quality=quality, model=bundle, lossless=False), images))
        t1 = time.perf_counter()
        list(pool.map(lambda d: decompress(d, model=bundle, as_array=True), files))
        t2 = time.perf_counter()
    return mp / (t1 - t0), mp / (t2 - t1), files


def parity(gpu, cpu, images: list[np.ndarray], gpu_files: list[bytes], cpu_files: list[bytes]) -> str:
    """Symbols that differ between GPU and CPU encodes, and PSNR of cross decodes against same-side decodes."""
    from aecodec.format import container
    from aecodec.image.codec import hyper_streams

    diff, total, worst = 0, 0, float("inf")
    for img, g, c in zip(images, gpu_files, cpu_files):
        if gpu.is_hyperprior:
            fg, fc = container.unpack(g), container.unpack(c)
            h, w = img.shape[:2]
            shape = (-(-h // 64) * 4, -(-w // 64) * 4)
            sg = cpu.coding.decode_symbols(hyper_streams(fg), shape)
            sc = cpu.coding.decode_symbols(hyper_streams(fc), shape)
            diff += int(np.sum(sg.symbols != sc.symbols)) + int(np.sum(sg.z_hat != sc.z_hat))
            total += sg.symbols.size + sg.z_hat.size
        for data in (g, c):
            a = decompress(data, model=gpu, as_array=True)
            b = decompress(data, model=cpu, as_array=True)
            worst = min(worst, psnr(a, b))
    share = f"{100 * diff / total:.3f} % symbols differ" if total else "symbols n/a"
    return f"{share}; cross-decode PSNR >= {worst:.1f} dB"


def ort_rows(args, images, budget: Budget, cpu) -> list[dict]:
    import onnxruntime as ort

    rows = []
    available = ort.get_available_providers()
    for backend, provider, precision in (("onnxruntime-cuda", "CUDAExecutionProvider", "fp32"),
                                         ("onnxruntime-tensorrt", "TensorrtExecutionProvider", "fp16"),
                                         ("onnxruntime-tensorrt", "TensorrtExecutionProvider", "fp32")):
        row = {"backend": backend, "precision": precision}
        rows.append(row)
        if provider not in available:
            row["note"] = f"not available ({provider} not in onnxruntime {ort.__version__} providers {available})"
            continue
        if budget.left() < 45:
            row["note"] = "skipped (time budget)"
            continue
        try:
            b = ModelBundle(FOLDER, providers=provider, precision=precision, max_batch=max(args.batch, args.workers))
            row["network_encode"], row["network_decode"] = network_rates(b, images, args.batch, args.repeats)
            row["e2e_encode"], row["e2e_decode"], files = end_to_end(b, images, args.workers)
            cpu_files = [compress(im, quality=75, model=cpu, lossless=False) for im in images[:2]]
            row["parity"] = parity(b, cpu, images[:2], files[:2], cpu_files)
        except Exception as e:  # noqa: BLE001 - a broken backend is a row, not a crash
            row["note"] = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
    return rows


def torch_rows(args, images, budget: Budget, dry: bool) -> list[dict]:
    """PyTorch from the training checkpoint on CUDA; in a dry run the same code on the CPU (bfloat16 for fp16)."""
    rows = [{"backend": "pytorch-cuda", "precision": "fp32"}, {"backend": "pytorch-cuda", "precision": "fp16"}]
    checkpoint = REPO / "train" / "checkpoints" / DEFAULT_IMAGE_MODEL / "last.pt"
    try:
        import torch
    except ImportError as e:
        for r in rows:
            r["note"] = f"not available (torch: {e})"
        return rows
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        for r in rows:
            r["note"] = f"not available (torch {torch.__version__}: CUDA not available)"
        if not dry:
            return rows
        rows += [{"backend": "pytorch-cpu (dry stand-in)", "precision": "fp32"},
                 {"backend": "pytorch-cpu (dry stand-in)", "precision": "bf16"}]
    if not checkpoint.exists():
        for r in rows:
            r["note"] = f"not available (no checkpoint {checkpoint.relative_to(REPO)})"
        return rows
    from aecodec.train.evaluate import load_model

    model, _ = load_model(checkpoint)
    model = model.to(device).eval()
    m = model.config.latent

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    for row in rows:
        if "note" in row:
            continue
        if budget.left() < 30:
            row["note"] = "skipped (time budget)"
            continue
        try:
            half = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(row["precision"])
            x = torch.from_numpy(np.concatenate([to_network_input(images[i % len(images)], 64)
                                                 for i in range(args.batch)])).to(device)
            gain = torch.ones(1, m, 1, 1, device=device)
            mp = args.batch * images[0].shape[0] * images[0].shape[1] / 1e6

            def enc():
                with torch.inference_mode(), torch.autocast(device, dtype=half or torch.float32, enabled=half is not None):
                    v = model.analysis(x) * gain
                    if hasattr(model, "hyper_analysis"):
                        model.hyper_analysis(v)
                sync()

            with torch.inference_mode():
                y = torch.round(model.analysis(x))

            def dec():
                with torch.inference_mode(), torch.autocast(device, dtype=half or torch.float32, enabled=half is not None):
                    model.synthesis(y)
                sync()

            row["network_encode"], row["network_decode"] = mp / timed(enc, args.repeats), mp / timed(dec, args.repeats)
            if half is None:
                from throughput import torch_backend

                tb = torch_backend(device, 1, checkpoint)
                row["e2e_encode"], row["e2e_decode"], _ = end_to_end(tb, images, args.workers)
        except Exception as e:  # noqa: BLE001
            row["note"] = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
    return rows


def cpu_row(args, images, cpu) -> dict:
    row = {"backend": "onnxruntime-cpu", "precision": cpu.precision}
    row["network_encode"], row["network_decode"] = network_rates(cpu, images, 1, args.repeats)
    row["e2e_encode"], row["e2e_decode"], files = end_to_end(cpu, images[:2], 1)
    row["parity"] = parity(cpu, cpu, images[:1], files[:1], files[:1])
    row["note"] = "reference (1 image at a time)"
    return row


def gpu_present() -> bool:
    import onnxruntime as ort

    if {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(ort.get_available_providers()):
        return True
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def print_table(rows: list[dict], header: str) -> None:
    print(header)
    print("| backend | precision | network encode MP/s | network decode MP/s | end-to-end encode MP/s | "
          "end-to-end decode MP/s | parity with the CPU | note |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        def f(k: str) -> str:
            return f"{r[k]:.1f}" if isinstance(r.get(k), float) else "-"
        print(f"| {r['backend']} | {r['precision']} | {f('network_encode')} | {f('network_decode')} | {f('e2e_encode')} | "
              f"{f('e2e_decode')} | {r.get('parity', '-')} | {r.get('note', '')} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8, help="1080p images per network batch (default 8)")
    p.add_argument("--workers", type=int, default=8, help="images coded at a time end to end (default 8)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--budget", type=float, default=330, help="seconds for the whole run (default 330)")
    p.add_argument("--dry-run", action="store_true", help="CPU only, small images: checks the script itself")
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args(argv)
    budget = Budget(args.budget)
    import onnxruntime as ort

    dry = args.dry_run or not gpu_present()
    if dry:
        args.batch, args.workers, args.repeats = 2, 2, 1
        width, height = 256, 144
    else:
        width, height = 1920, 1080
    images = photos(width, height, max(2, args.workers))
    cpu = ModelBundle(FOLDER, providers="cpu", precision="fp32", threads=min(8, os.cpu_count() or 1))
    rows = [cpu_row(args, images, cpu)]
    rows += ort_rows(args, images, budget, cpu)
    rows += torch_rows(args, images, budget, dry)
    from aecodec.models.runtime import gpu_name, tensorrt_version

    header = (f"gpu_check: {'DRY RUN on the CPU (no GPU backend found), ' if dry else ''}{width}x{height}, batch "
              f"{args.batch}, {args.workers} workers end to end; GPU {gpu_name()}, TensorRT {tensorrt_version()}, "
              f"onnxruntime {ort.__version__} {ort.get_available_providers()}; {args.budget - budget.left():.0f} s")
    print_table(rows, header)
    if args.json:
        Path(args.json).write_text(json.dumps({"header": header, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
