"""Export parity: the exported graphs (ONNX Runtime, CPU) and the integer h_s against PyTorch.

Runs on fixed inputs and raises ExportParityError when outputs differ beyond tolerance or a
rounded latent flips at any quality, except values that sit on a rounding boundary to within
float32 noise (ties: counted and reported; they flip between any two correct conv
implementations, and at most TIE_LIMIT of the checked values may). For the hyperprior it also runs
the run time's exact integer h_s (`aecodec.coding.hyper.HyperSynthesis`) against the fake-quantized
PyTorch h_s: float32 accumulation in PyTorch may rarely land on the other side of a rounding
boundary, so up to HS_MISMATCH_LIMIT of the outputs may differ; more means the export is wrong.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aecodec.train.audio_model import AudioCodecModel
from aecodec.train.checkpoint_io import AnyModel
from aecodec.train.hyperprior import HyperpriorCodecModel, hyper_synthesis_constants
from aecodec.train.integer_hyper import MEAN_SHIFT

LATENT_TOLERANCE = 1e-3  # max |Δ| of the float latent y (v / gain), ORT vs PyTorch
HYPER_TOLERANCE = 1e-3  # max |Δ| of the hyper latent z, relative to max(1, max |z|)
IMAGE_TOLERANCE = 2e-3  # max |Δ| of the reconstruction on the [0, 1] scale
WAVE_TOLERANCE = 1e-3  # max |Δ| of the decoded waveform (full scale ±1)
TIE_BAND = 1e-4  # |frac(x) − ½| within this is a rounding tie at float32 precision (|Δ| seen: ~1e-6)
# ... or within this fraction of |x|: float32 error grows with the value, and the latents scaled by the gains
# of the highest qualities reach a few hundred (a flip seen: 230.50010 vs 230.49998, |Δ| 6e-7 of the value)
TIE_RELATIVE = 4e-6
TIE_LIMIT = 1e-5  # ties may flip in at most this fraction of the checked latents (and at least one may)
HS_MISMATCH_LIMIT = 1e-4  # integer h_s vs PyTorch: at most this fraction of mean codes / indices may differ


class ExportParityError(RuntimeError):
    """The exported bundle does not reproduce the PyTorch model; `report` holds the measurements."""

    def __init__(self, message: str, report: dict | None = None):
        super().__init__(message)
        self.report = report or {}


def tie_allowance(checked: int) -> float:
    """How many rounding ties may flip among `checked` values: TIE_LIMIT of them, but at least one
    (with few values checked, e.g. the hyper latent, a single harmless tie is not a failure)."""
    return max(1.0, TIE_LIMIT * checked)


def parity_inputs(seed: int = 0, multiple: int = 16) -> list[np.ndarray]:
    """Deterministic test images (a smooth gradient with texture, and noise; non-square), edge-padded
    to multiples of `multiple`."""
    rng = np.random.default_rng(seed)
    h, w = 96, 160
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    smooth = np.stack([xx / w, yy / h, 0.5 + 0.4 * np.sin(xx / 7) * np.cos(yy / 5)])
    smooth = np.clip(smooth + 0.05 * rng.standard_normal(smooth.shape), 0, 1)
    noise = rng.random((3, 64, 48), dtype=np.float32)
    out = []
    for img in (smooth, noise):
        ph, pw = (-img.shape[1]) % multiple, (-img.shape[2]) % multiple
        out.append(np.pad(img, ((0, 0), (0, ph), (0, pw)), mode="edge")[None].astype(np.float32))
    return out


def audio_parity_input(hop: int, sample_rate: int) -> np.ndarray:
    """A 330 Hz tone in noise, 40 hops long, 1×1×T."""
    rng = np.random.default_rng(0)
    t = np.arange(hop * 40) / sample_rate
    return (0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)[None, None]


def rounding_flips(a: np.ndarray, b: np.ndarray, half_up: bool = False) -> tuple[int, int]:
    """(flips away from a tie, flips at a tie) between rounding a and rounding b.

    half_up: floor(x + ½) (the hyperprior, as the integer run time rounds); else round half to even.
    """
    rnd: Callable[[np.ndarray], np.ndarray] = (lambda x: np.floor(x + 0.5)) if half_up else np.rint
    flipped = rnd(a) != rnd(b)
    tie = np.abs(np.abs(a - np.floor(a)) - 0.5) <= np.maximum(TIE_BAND, TIE_RELATIVE * np.abs(a))
    return int((flipped & ~tie).sum()), int((flipped & tie).sum())


def sessions(folder: Path) -> tuple[Any, Any]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    enc = ort.InferenceSession(str(folder / "encoder.onnx"), so, providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(folder / "decoder.onnx"), so, providers=["CPUExecutionProvider"])
    return enc, dec


def torch_run(module: torch.nn.Module, *arrays: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(*(torch.from_numpy(a) for a in arrays)).numpy()


def check_factorized(model: AnyModel, folder: Path, gains: np.ndarray) -> dict:
    """Image or audio factorized model: latent y at every quality's gain, decoder at the top quality."""
    enc, dec = sessions(folder)
    encoder: torch.nn.Module
    decoder: torch.nn.Module
    if isinstance(model, AudioCodecModel):
        encoder, decoder, name, out_key = model.encoder, model.decoder, "audio", "wave_max_abs_diff"
        inputs = [audio_parity_input(model.config.hop, model.config.sample_rate)]
    else:
        assert not isinstance(model, HyperpriorCodecModel)
        encoder, decoder, name, out_key = model.analysis, model.synthesis, "image", "image_max_abs_diff"
        inputs = parity_inputs()
    report: dict = {"latent_max_abs_diff": 0.0, out_key: 0.0, "rounded_latent_flips": 0,
                    "rounded_latent_ties": 0, "latents_checked": 0}
    for x in inputs:
        y_t = torch_run(encoder, x)
        y_o = enc.run(None, {name: x})[0]
        report["latent_max_abs_diff"] = max(report["latent_max_abs_diff"], float(np.abs(y_t - y_o).max()))
        shape = (1, -1) + (1,) * (y_t.ndim - 2)
        for g in gains:
            flips, ties = rounding_flips(y_t * g.reshape(shape), y_o * g.reshape(shape))
            report["rounded_latent_flips"] += flips
            report["rounded_latent_ties"] += ties
            report["latents_checked"] += y_t.size
        top = gains[-1].reshape(shape)
        y_hat = (np.rint(y_o * top) / top).astype(np.float32)
        diff = float(np.abs(torch_run(decoder, y_hat) - dec.run(None, {"latent": y_hat})[0]).max())
        report[out_key] = max(report[out_key], diff)
    tolerance = WAVE_TOLERANCE if isinstance(model, AudioCodecModel) else IMAGE_TOLERANCE
    raise_on_problems(report, [
        ("latent_max_abs_diff", LATENT_TOLERANCE, "encoder differs by"),
        (out_key, tolerance, "decoder differs by"),
    ])
    return report


def check_hyperprior(model: HyperpriorCodecModel, folder: Path, tables: dict[str, np.ndarray]) -> dict:
    """Encoder (v, z) at every quality, the integer h_s on the resulting ẑ and random ẑ, and the decoder."""
    from aecodec.coding import CheckerboardContext, HyperSynthesis

    enc, dec = sessions(folder)
    hs = HyperSynthesis.from_tables(tables, model.config.latent, hyper_synthesis_constants())
    context = CheckerboardContext.from_tables(tables, hs) if model.hyper_context is not None else None
    gains = tables["gains"]
    report: dict = {"latent_max_abs_diff": 0.0, "hyper_max_abs_diff": 0.0, "image_max_abs_diff": 0.0,
                    "rounded_latent_flips": 0, "rounded_latent_ties": 0, "latents_checked": 0,
                    "rounded_hyper_flips": 0, "rounded_hyper_ties": 0, "hyper_checked": 0,
                    "hs_mismatches": 0, "hs_checked": 0}
    samples: list[tuple[np.ndarray, np.ndarray]] = []  # (ẑ, v) pairs for the h_s / context check
    hs_qualities = {0, len(gains) // 2, len(gains) - 1}
    for x in parity_inputs(multiple=model.pad_multiple):
        y_t = torch_run(model.analysis, x)
        for q, g in enumerate(gains):
            gc = g[None, :, None, None]
            v_t = y_t * gc
            z_t = torch_run(model.hyper_analysis, v_t)
            v_o, z_o = enc.run(None, {"image": x, "gain": gc.astype(np.float32)})
            report["latent_max_abs_diff"] = max(report["latent_max_abs_diff"], float(np.abs((v_t - v_o) / gc).max()))
            z_scale = max(1.0, float(np.abs(z_t).max()))
            report["hyper_max_abs_diff"] = max(report["hyper_max_abs_diff"], float(np.abs(z_t - z_o).max()) / z_scale)
            flips, ties = rounding_flips(z_t, z_o, half_up=True)
            report["rounded_hyper_flips"] += flips
            report["rounded_hyper_ties"] += ties
            report["hyper_checked"] += z_t.size
            z_hat = np.floor(z_o[0] + 0.5).astype(np.int64)
            mean_codes, _ = hs(z_hat)
            mean = (mean_codes.astype(np.float64) * 2.0**-MEAN_SHIFT)[None]
            flips, ties = rounding_flips(v_t - mean, v_o - mean, half_up=True)
            report["rounded_latent_flips"] += flips
            report["rounded_latent_ties"] += ties
            report["latents_checked"] += v_t.size
            if q in hs_qualities:
                samples.append((z_hat, v_o[0]))
            if q == len(gains) - 1:
                v_hat = np.floor(v_o - mean + 0.5) + mean
                y_hat = (v_hat / gc).astype(np.float32)
                diff = float(np.abs(torch_run(model.synthesis, y_hat) - dec.run(None, {"latent": y_hat})[0]).max())
                report["image_max_abs_diff"] = max(report["image_max_abs_diff"], diff)
    rng = np.random.default_rng(1)
    for bound in (2, 8, 40):
        samples.append((rng.integers(-bound, bound + 1, (model.config.hyper, 5, 7)),
                        rng.normal(0.0, bound, (model.config.latent, 20, 28)).astype(np.float32)))
    for z_hat, v in samples:
        mismatches, checked = hyper_synthesis_mismatches(model, hs, z_hat, context, v)
        report["hs_mismatches"] += mismatches
        report["hs_checked"] += checked
    problems = []
    if report["rounded_hyper_flips"]:
        problems.append(f"{report['rounded_hyper_flips']} rounded hyper latents flip away from a rounding tie")
    if report["rounded_hyper_ties"] > tie_allowance(report["hyper_checked"]):
        problems.append(f"{report['rounded_hyper_ties']} hyper-latent rounding ties flip, more than float noise explains")
    if report["hs_mismatches"] > HS_MISMATCH_LIMIT * report["hs_checked"]:
        problems.append(f"integer h_s differs from PyTorch in {report['hs_mismatches']} of {report['hs_checked']} outputs")
    raise_on_problems(report, [
        ("latent_max_abs_diff", LATENT_TOLERANCE, "encoder latent differs by"),
        ("hyper_max_abs_diff", HYPER_TOLERANCE, "encoder hyper latent differs by (relative)"),
        ("image_max_abs_diff", IMAGE_TOLERANCE, "decoder differs by"),
    ], problems)
    return report


def hyper_synthesis_mismatches(model: HyperpriorCodecModel, hs: Any, z_hat: np.ndarray, context: Any = None,
                               v: np.ndarray | None = None) -> tuple[int, int]:
    """(differing outputs, outputs) of the run time's integer h_s (and checkerboard context, given the latent v
    whose anchors it sees) vs PyTorch's: mean codes and scale indices."""
    was_training = model.training
    model.eval()
    z_t = torch.from_numpy(z_hat[None].astype(np.float32))
    with torch.no_grad():
        if context is None:
            mean, index = model.hyper_synthesis(z_t)
        else:
            assert v is not None
            mean, index = model.entropy_parameters(torch.from_numpy(v[None]), z_t)
    model.train(was_training)
    mean_codes, idx = hs(z_hat)
    if context is not None:
        from aecodec.coding.hyper import anchor_mask

        assert v is not None
        symbols = np.floor(v - mean_codes * 2.0**-MEAN_SHIFT + 0.5).astype(np.int64)
        codes = np.where(anchor_mask(*v.shape[1:]), np.clip((symbols << MEAN_SHIFT) + mean_codes,
                                                            -hs.mean_max_code, hs.mean_max_code), 0)
        other_codes, other_idx = hs(z_hat, context, codes, part="others")
        anchors = np.broadcast_to(anchor_mask(*v.shape[1:]), v.shape)
        mean_codes, idx = np.where(anchors, mean_codes, other_codes), np.where(anchors, idx, other_idx)
    mean_t = np.rint(mean[0].numpy() * 2.0**MEAN_SHIFT).astype(np.int64)
    index_t = index[0].numpy().astype(np.int64)
    differ = int((mean_t != mean_codes).sum()) + int((index_t != idx).sum())
    return differ, mean_codes.size + idx.size


def raise_on_problems(report: dict, limits: list[tuple[str, float, str]], problems: list[str] | None = None) -> None:
    """Common checks (tolerances, non-tie flips, tie rate) on a report; raise ExportParityError if any fail."""
    problems = list(problems or [])
    for key, limit, what in limits:
        if report[key] > limit:
            problems.append(f"{what} {report[key]:.2e} > {limit}")
    if report["rounded_latent_flips"]:
        problems.append(f"{report['rounded_latent_flips']} rounded latents flip between PyTorch and ONNX Runtime "
                        f"away from a rounding tie")
    if report["rounded_latent_ties"] > tie_allowance(report["latents_checked"]):
        problems.append(f"{report['rounded_latent_ties']} rounding ties flip, more than float noise explains")
    if problems:
        raise ExportParityError("export parity check failed: " + "; ".join(problems), report)


def check_parity(model: AnyModel, folder: Path, tables: dict[str, np.ndarray]) -> dict:
    """Parity report of the bundle being written in `folder`; raises ExportParityError on a mismatch."""
    model.eval()
    if isinstance(model, HyperpriorCodecModel):
        return check_hyperprior(model, folder, tables)
    return check_factorized(model, folder, tables["gains"])
