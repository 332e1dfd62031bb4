"""Audio checkpoint -> bundle: encoder.onnx / decoder.onnx (dynamic batch and length) + tables + manifest.

Same contract as the image bundle (bundle_export.py): separate graphs, integer CDF tables from the
factorized density, parity of ONNX Runtime against PyTorch, model id = content hash. The run time
for audio (chunked coding, .aec audio format) is not built yet; this exporter lets it be developed
against real bundles.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from aecodec.bundle import compute_model_id
from aecodec.train.audio_model import AudioCodecModel, AudioConfig, audio_macs_per_second

from .bundle_export import LATENT_TOLERANCE, OPSET, TIE_BAND, ExportParityError
from .tables import NUM_QUALITIES, build_tables

WAVE_TOLERANCE = 1e-3


def load_audio_checkpoint(path: str | Path) -> tuple[AudioCodecModel, dict]:
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if ckpt.get("modality") != "audio":
        raise ValueError(f"{path} is not an audio checkpoint")
    model = AudioCodecModel(AudioConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt


def _export(module, example, path: Path, in_name: str, out_name: str) -> None:
    dynamic = {in_name: {0: "batch", 2: "length"}, out_name: {0: "batch", 2: "length"}}
    torch.onnx.export(module, (example,), str(path), input_names=[in_name], output_names=[out_name],
                      dynamic_axes=dynamic, opset_version=OPSET, do_constant_folding=True, dynamo=False)


def check_audio_parity(model: AudioCodecModel, folder: Path, gains: np.ndarray) -> dict:
    import onnxruntime as ort

    enc = ort.InferenceSession(str(folder / "encoder.onnx"), providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(folder / "decoder.onnx"), providers=["CPUExecutionProvider"])
    hop = model.config.hop
    rng = np.random.default_rng(0)
    t = np.arange(hop * 40) / model.config.sample_rate
    x = (0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)[None, None]
    with torch.no_grad():
        y_t = model.encoder(torch.from_numpy(x)).numpy()
    y_o = enc.run(None, {"audio": x})[0]
    report = {"latent_max_abs_diff": float(np.abs(y_t - y_o).max()), "rounded_latent_flips": 0,
              "rounded_latent_ties": 0, "latents_checked": 0}
    for g in gains:
        a, b = y_t * g[None, :, None], y_o * g[None, :, None]
        flipped = np.rint(a) != np.rint(b)
        tie = np.abs(np.abs(a - np.floor(a)) - 0.5) <= TIE_BAND
        report["rounded_latent_ties"] += int((flipped & tie).sum())
        report["rounded_latent_flips"] += int((flipped & ~tie).sum())
        report["latents_checked"] += y_t.size
    y_hat = (np.rint(y_o * gains[-1][None, :, None]) / gains[-1][None, :, None]).astype(np.float32)
    with torch.no_grad():
        w_t = model.decoder(torch.from_numpy(y_hat)).numpy()
    w_o = dec.run(None, {"latent": y_hat})[0]
    report["wave_max_abs_diff"] = float(np.abs(w_t - w_o).max())
    problems = []
    if report["latent_max_abs_diff"] > LATENT_TOLERANCE:
        problems.append(f"encoder differs by {report['latent_max_abs_diff']:.2e}")
    if report["wave_max_abs_diff"] > WAVE_TOLERANCE:
        problems.append(f"decoder differs by {report['wave_max_abs_diff']:.2e}")
    if report["rounded_latent_flips"]:
        problems.append(f"{report['rounded_latent_flips']} rounded latents flip away from a rounding tie")
    if problems:
        raise ExportParityError("audio export parity check failed: " + "; ".join(problems))
    return report


def export_audio_bundle(checkpoint: str | Path, out: str | Path, *, name: str = "audio-edge",
                        force: bool = False, low: float = 0.0, high: float | None = None) -> dict:
    """low / high: ladder positions of quality 1 / 100 (beyond 0 / K-1 they extrapolate the gains)."""
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists (use --force to replace it)")
    model, ckpt = load_audio_checkpoint(checkpoint)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out.parent if out.parent.exists() else None))
    try:
        cfg = model.config
        _export(model.encoder, torch.zeros(1, 1, cfg.hop * 4), tmp / "encoder.onnx", "audio", "latent")
        _export(model.decoder, torch.zeros(1, cfg.latent, 4), tmp / "decoder.onnx", "latent", "audio")
        tables = build_tables(model, NUM_QUALITIES, low=low, high=high)
        np.savez_compressed(tmp / "tables.npz", **tables)
        parity = check_audio_parity(model, tmp, tables["gains"])
        manifest = {
            "model_id": compute_model_id(tmp), "name": name, "modality": "audio", "profile": "edge",
            "config": cfg.to_dict(), "low_quality_position": low,
            "high_quality_position": len(cfg.lambdas) - 1 if high is None else high,
            "sample_rate": cfg.sample_rate, "hop": cfg.hop, "frame_rate": cfg.frame_rate, "latent_channels": cfg.latent,
            "downsample": cfg.hop, "qualities": NUM_QUALITIES, "precision_bits": int(tables["precision"]),
            "complexity": {**audio_macs_per_second(model),
                           "encoder_params": sum(p.numel() for p in model.encoder.parameters()),
                           "decoder_params": sum(p.numel() for p in model.decoder.parameters())},
            "training": {"steps": ckpt.get("step"), "wall_hours": ckpt.get("wall_seconds", 0.0) / 3600,
                         "args": ckpt.get("args"), "last_validation": (ckpt.get("history") or [None])[-1]},
            "parity": parity, "export": {"opset": OPSET, "torch": torch.__version__},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        os.chmod(tmp, 0o755)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
