"""`aecodec bench`: how fast this machine runs the shipped models, in a minute, with no data needed.

Times end-to-end encode and decode (median of --repeat runs after one warm-up) of the given images,
or of a generated photo-like 768×512 image, and of generated audio when an audio model is present.
It is the quick check a user runs on their own hardware; benchmarks/throughput.py is the full,
side-by-side study with peer codecs.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Any

import numpy as np

from .. import __version__
from ..errors import AecError


def synthetic_photo(height: int = 512, width: int = 768, seed: int = 0) -> np.ndarray:
    """Smooth gradients, a sharp-edged disc and mild noise: entropy close to a photo's (uint8 H×W×3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([128 + 90 * np.sin(xx / width * 3.1 + c) * np.cos(yy / height * 2.3 - c) for c in range(3)], -1)
    img[(xx - width / 2) ** 2 + (yy - height / 2) ** 2 < (min(height, width) / 4) ** 2] += 40
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def synthetic_audio(seconds: float = 10.0, rate: int = 24_000, seed: int = 0) -> np.ndarray:
    """Harmonic tones with vibrato plus a little noise (float32 mono)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = sum(0.15 / k * np.sin(2 * np.pi * 220 * k * t + 3 * np.sin(2 * np.pi * 5 * t)) for k in range(1, 6))
    return (x + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def median_time(fn, repeat: int, warmup: int = 1) -> float:
    """Median wall seconds of `repeat` calls after `warmup` untimed ones (session creation, allocations)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_bench(images: list[str] | None = None, *, quality: int = 75, repeat: int = 3, model=None,
              audio_model=None, audio: bool = True, progress=None) -> dict[str, Any]:
    """Measure; returns a JSON-ready dict (rows per input plus machine facts)."""
    from ..audio import audio_bundle, compress_audio, decompress_audio
    from ..image import compress, decompress, open_image
    from ..models import load_bundle

    bundle = load_bundle(model) if model else load_bundle()
    rows: list[dict[str, Any]] = []
    inputs = [(p, np.asarray(open_image(p).convert("RGB"))) for p in images] if images else \
        [("synthetic 768x512", synthetic_photo())]
    for name, arr in inputs:
        if progress:
            progress(f"image {name}")
        data = compress(arr, quality=quality, model=bundle)
        mp = arr.shape[0] * arr.shape[1] / 1e6
        t_enc = median_time(lambda: compress(arr, quality=quality, model=bundle), repeat)
        t_dec = median_time(lambda: decompress(data, model=bundle, as_array=True), repeat)
        rows.append({"input": name, "modality": "image", "model_id": bundle.model_id, "precision": bundle.precision,
                     "variant": bundle.variant.name, "quality": quality,
                     "width": arr.shape[1], "height": arr.shape[0], "bytes": len(data),
                     "bpp": 8 * len(data) / (mp * 1e6), "encode_s": t_enc, "decode_s": t_dec,
                     "encode_mp_per_s": mp / t_enc, "decode_mp_per_s": mp / t_dec})
    if audio:
        try:
            abundle = audio_bundle(audio_model)
        except AecError as e:
            rows.append({"input": "synthetic 10 s audio", "modality": "audio", "skipped": str(e)})
        else:
            if progress:
                progress("audio synthetic 10 s")
            rate = abundle.manifest.sample_rate
            wave = synthetic_audio(10.0, rate)
            data = compress_audio(wave, rate, model=abundle)
            t_enc = median_time(lambda: compress_audio(wave, rate, model=abundle), repeat)
            t_dec = median_time(lambda: decompress_audio(data, model=abundle), repeat)
            rows.append({"input": "synthetic 10 s audio", "modality": "audio", "model_id": abundle.model_id,
                         "sample_rate": rate, "bytes": len(data), "kbps": 8 * len(data) / 10.0 / 1000,
                         "encode_s": t_enc, "decode_s": t_dec,
                         "encode_x_realtime": 10.0 / t_enc, "decode_x_realtime": 10.0 / t_dec})
    import onnxruntime as ort

    providers = bundle.session("decoder").get_providers()
    return {"aecodec": __version__, "onnxruntime": ort.__version__, "providers": providers,
            "machine": platform.machine(), "cpus": os.cpu_count(), "repeat": repeat, "rows": rows}


def format_bench(report: dict[str, Any]) -> str:
    lines = [f"aecodec {report['aecodec']}, onnxruntime {report['onnxruntime']} "
             f"({', '.join(report['providers'])}), {report['cpus']} CPUs, median of {report['repeat']}"]
    for r in report["rows"]:
        if "skipped" in r:
            lines.append(f"{r['input']}: skipped ({r['skipped']})")
        elif r["modality"] == "image":
            lines.append(f"{r['input']} ({r['width']}x{r['height']}, q {r['quality']}, {r.get('precision', 'fp32')}, "
                         f"{r['bpp']:.3f} bpp): "
                         f"encode {r['encode_mp_per_s']:.2f} MP/s ({1000 * r['encode_s']:.0f} ms), "
                         f"decode {r['decode_mp_per_s']:.2f} MP/s ({1000 * r['decode_s']:.0f} ms)")
        else:
            lines.append(f"{r['input']} ({r['kbps']:.1f} kbps): encode {r['encode_x_realtime']:.0f}x real time, "
                         f"decode {r['decode_x_realtime']:.0f}x real time")
    return "\n".join(lines)


__all__ = ["run_bench", "format_bench", "median_time", "synthetic_photo", "synthetic_audio"]
