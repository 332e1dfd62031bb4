"""What a precision variant costs and gains: RD on a photo set (PSNR at equal quality, bpp, BD-rate against
the fp32 graphs) and end-to-end speed, both through the public API exactly as users run it.

Files are encoded by one variant and decoded by another (the bitstream is the same for every variant), so
the tables also show where a cost comes from: the encoder (a changed latent: other bits, other PSNR) or
the decoder (the same bits, another reconstruction). No torch.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from aecodec.image import compress, decompress
from aecodec.metrics import bd_psnr, bd_rate, psnr
from aecodec.models import ModelBundle

SPEED_SIZE = (768, 512)


def load_images(folder: str | Path, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".ppm", ".bmp"))
    return [(p.name, np.asarray(Image.open(p).convert("RGB"))) for p in files[:limit]]


def machine() -> dict:
    """CPU model and the instruction sets INT8 speed depends on."""
    model, flags = platform.processor() or platform.machine(), set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"cpu": model, "cpus": os.cpu_count(), "avx2": "avx2" in flags, "avx512": "avx512f" in flags,
            "vnni": bool({"avx512_vnni", "avx_vnni"} & flags)}


def rd_cost(folder: Path, variants: list[str], images: list[tuple[str, np.ndarray]], qualities: list[int],
            threads: int = 0) -> dict:
    """Every (encoder variant, decoder variant) pair on every image and quality, against fp32 / fp32. Variants
    by name, all on the CPU: a TensorRT INT8 variant too, whose QDQ graph (no Q/DQ after the convolutions)
    ONNX Runtime's CPU provider runs unfused, dequantize then float convolution: the values TensorRT's int8
    kernels compute (int8 products, int32 sums), up to float rounding, so its RD cost here is TensorRT's."""
    bundles = {v: ModelBundle(folder, providers="cpu", threads=threads, variant=v) for v in variants}
    rows = []
    for name, img in images:
        mp = img.shape[0] * img.shape[1]
        for q in qualities:
            files: dict[Path, bytes] = {}  # variants that share a graph file run it once
            pictures: dict[tuple[Path, Path], float] = {}
            for enc in variants:
                enc_graph = bundles[enc].graph_path("encoder")
                if enc_graph not in files:
                    files[enc_graph] = compress(img, quality=q, model=bundles[enc], lossless=False)
                data = files[enc_graph]
                for dec in variants:
                    key = (enc_graph, bundles[dec].graph_path("decoder"))
                    if key not in pictures:
                        pictures[key] = psnr(decompress(data, model=bundles[dec], as_array=True), img)
                    rows.append({"image": name, "quality": q, "encoder": enc, "decoder": dec,
                                 "bpp": 8 * len(data) / mp, "psnr": pictures[key]})
    return summarize_rd(rows, variants, qualities, len(images))


def summarize_rd(rows: list[dict], variants: list[str], qualities: list[int], n_images: int) -> dict:
    def curve(enc: str, dec: str) -> tuple[list[float], list[float]]:
        pts = [(float(np.mean([r["bpp"] for r in rows if r["quality"] == q and r["encoder"] == enc and r["decoder"] == dec])),
                float(np.mean([r["psnr"] for r in rows if r["quality"] == q and r["encoder"] == enc and r["decoder"] == dec])))
               for q in qualities]
        return [p[0] for p in pts], [p[1] for p in pts]

    base_rate, base_psnr = curve("fp32", "fp32")
    pairs = {}
    for enc in variants:
        for dec in variants:
            rate, quality = curve(enc, dec)
            entry: dict = {"bpp": [round(x, 4) for x in rate], "psnr": [round(x, 3) for x in quality],
                           "psnr_delta_db": [round(b - a, 3) for a, b in zip(base_psnr, quality)],
                           "bpp_delta_percent": [round(100 * (b / a - 1), 2) for a, b in zip(base_rate, rate)]}
            entry["mean_psnr_delta_db"] = round(float(np.mean(entry["psnr_delta_db"])), 3)
            if len(qualities) >= 4 and (enc, dec) != ("fp32", "fp32"):
                entry["bd_rate_percent"] = round(bd_rate(base_rate, base_psnr, rate, quality), 2)
                entry["bd_psnr_db"] = round(bd_psnr(base_rate, base_psnr, rate, quality), 3)
            pairs[f"{enc}->{dec}"] = entry
    return {"images": n_images, "qualities": qualities, "pairs": pairs,
            "note": "mean over images of PSNR (RGB) and bpp at each quality; deltas against fp32->fp32 "
                    "(encoder variant->decoder variant); BD-rate: bits at equal PSNR, negative = fewer"}


def speed(folder: Path, variants: list[str], image: np.ndarray, threads: int = 2, repeats: int = 7,
          quality: int = 75) -> dict:
    """End-to-end encode (array -> bytes) and decode (bytes -> array) megapixels per second of each variant,
    sessions warm, the variants' runs interleaved so that a noisy machine affects them alike; medians."""
    bundles = {v: ModelBundle(folder, providers="cpu", threads=threads, variant=v) for v in variants}
    mp = image.shape[0] * image.shape[1] / 1e6
    data = {v: compress(image, quality=quality, model=b, lossless=False) for v, b in bundles.items()}
    for v, b in bundles.items():
        decompress(data[v], model=b, as_array=True)
    times: dict[str, dict[str, list[float]]] = {v: {"encode": [], "decode": []} for v in variants}
    for _ in range(repeats):
        for v, b in bundles.items():
            t0 = time.perf_counter()
            compress(image, quality=quality, model=b, lossless=False)
            t1 = time.perf_counter()
            decompress(data[v], model=b, as_array=True)
            t2 = time.perf_counter()
            times[v]["encode"].append(t1 - t0)
            times[v]["decode"].append(t2 - t1)
    out: dict = {"machine": machine(), "threads": threads, "size": f"{image.shape[1]}x{image.shape[0]}",
                 "quality": quality, "repeats": repeats, "statistic": "median, end to end through aecodec.compress / "
                 "decompress, sessions warm", "variants": {}}
    for v in variants:
        enc, dec = statistics.median(times[v]["encode"]), statistics.median(times[v]["decode"])
        out["variants"][v] = {"encode_mp_per_s": round(mp / enc, 3), "decode_mp_per_s": round(mp / dec, 3)}
    return out


def speed_image(kodak: str | Path | None) -> np.ndarray:
    """A 768×512 photo (Kodak kodim23 when the folder is given) or the bench's synthetic photo."""
    if kodak and (Path(kodak) / "kodim23.png").is_file():
        img = Image.open(Path(kodak) / "kodim23.png").convert("RGB").resize(SPEED_SIZE, Image.Resampling.LANCZOS)
        return np.asarray(img)
    from aecodec.cli.bench import synthetic_photo

    return synthetic_photo(SPEED_SIZE[1], SPEED_SIZE[0])
