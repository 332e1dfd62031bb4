"""How fast are the audio decoder (or, --encoder, encoder) families in ONNX Runtime? (issue 18: ≥ 50× real time)

Builds each candidate network with random weights (only the speed means anything), exports it through the shipped
exporter and times it on the same input, the candidates interleaved so that they share the machine's load; or
times shipped bundles' decoder.onnx / encoder.onnx (--bundles). Run it with training paused:

    python benchmarks/audio_decoder_speed.py [--encoder] [--seconds 20] [--threads 2] [--runs 6] [--bundles DIR ...]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

CANDIDATES = {  # name: AudioConfig fields of the decoder
    "conv ELU (audio-edge 0.4 dev)": {},
    "conv LeakyReLU 0.2": {"activation": "leaky_relu"},
    "Fourier 256/768 x6": {"decoder": "fourier"},
    "Fourier 384/1152 x6": {"decoder": "fourier", "fourier_dim": 384, "fourier_hidden": 1152},
    "Fourier 512/1536 x6": {"decoder": "fourier", "fourier_dim": 512, "fourier_hidden": 1536},
}
ENCODER_CANDIDATES = {  # name: AudioConfig fields of the encoder (issue 18, session 14: the framed encoder)
    "SEANet ELU (audio-edge to 0.4 dev)": {"decoder": "fourier"},
    "SEANet LeakyReLU": {"decoder": "fourier", "activation": "leaky_relu"},
    "LeakyReLU patch 2": {"decoder": "fourier", "activation": "leaky_relu", "encoder_patch": 2},
    "LeakyReLU patch 8": {"decoder": "fourier", "activation": "leaky_relu", "encoder_patch": 8},
    "LeakyReLU patch 8, 1 unit": {"decoder": "fourier", "activation": "leaky_relu", "encoder_patch": 8,
                                  "residual_units": 1},
    "LeakyReLU patch 40": {"decoder": "fourier", "activation": "leaky_relu", "encoder_patch": 40},
    # session 15: the teacher's strided convs and activations at 24 / 12 kHz without their residual units
    "ELU bare 2": {"decoder": "fourier", "encoder_bare": 2},
    "LeakyReLU bare 2": {"decoder": "fourier", "activation": "leaky_relu", "encoder_bare": 2},
    "LeakyReLU bare 1": {"decoder": "fourier", "activation": "leaky_relu", "encoder_bare": 1},
}


def session_of(onnx_bytes: bytes, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    return ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=6)
    p.add_argument("--bundles", nargs="*", help="time these bundles' graphs instead of the candidates")
    p.add_argument("--encoder", action="store_true", help="time the encoders (on a waveform) instead of the decoders")
    a = p.parse_args()
    part = "encoder" if a.encoder else "decoder"

    sessions: dict[str, object] = {}
    sizes: dict[str, str] = {}
    latent_channels = 64
    if a.bundles:
        import json

        for folder in a.bundles:
            manifest = json.loads((Path(folder) / "manifest.json").read_text())
            latent_channels = manifest["latent_channels"]
            name = f"{Path(folder).name} {manifest['model_id'][:8]}"
            sessions[name] = session_of((Path(folder) / f"{part}.onnx").read_bytes(), a.threads)
            sizes[name] = f"{manifest['complexity'][f'{part}_params'] / 1e6:.2f} M params"
    else:
        import torch

        from aecodec.export.complexity import complexity
        from aecodec.export.graphs import export_graphs
        from aecodec.train.audio_model import AudioCodecModel, AudioConfig

        torch.manual_seed(0)
        for name, fields in (ENCODER_CANDIDATES if a.encoder else CANDIDATES).items():
            model = AudioCodecModel(AudioConfig(**fields)).eval()
            with tempfile.TemporaryDirectory() as tmp:
                export_graphs(model, Path(tmp))  # the shipped export path (the Fourier basis folded at load)
                sessions[name] = session_of((Path(tmp) / f"{part}.onnx").read_bytes(), a.threads)
            c = complexity(model)
            sizes[name] = f"{c[f'{part}_params'] / 1e6:.2f} M params, {c[f'{part}_mmac_per_s']:.0f} MMAC/s"
    frames = int(round(a.seconds * 75))
    rng = np.random.default_rng(0)
    feed = {"audio": (0.1 * rng.standard_normal((1, 1, frames * 320))).astype(np.float32)} if a.encoder else \
        {"latent": rng.standard_normal((1, latent_channels, frames)).astype(np.float32)}
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for s in sessions.values():
        s.run(None, feed)  # type: ignore[attr-defined]
    for _ in range(a.runs):
        for name, s in sessions.items():
            t = time.perf_counter()
            s.run(None, feed)  # type: ignore[attr-defined]
            times[name].append(time.perf_counter() - t)
    print(f"{part}s, {a.seconds:g} s of audio, ONNX Runtime CPU, {a.threads} threads, {a.runs} interleaved runs")
    for name, ts in times.items():
        ts = sorted(ts)
        med = ts[len(ts) // 2]
        print(f"{name}: {sizes[name]}; min {ts[0] * 1e3:.0f} ms, median {med * 1e3:.0f} ms -> "
              f"{a.seconds / ts[0]:.0f}x / {a.seconds / med:.0f}x real time")


if __name__ == "__main__":
    main()
