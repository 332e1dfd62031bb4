"""A cheaper audio encoder taught by a trained one: the first stage of swapping an encoder architecture.

The student (e.g. `--encoder-patch 8 --activation leaky_relu`: no thin full-rate layers, an activation
ONNX Runtime fuses into its convolutions) learns to reproduce the teacher's latent, each segment at a
random rate point's gains — the error that matters is the one the quantiser sees. Decoder, density and
gains are the teacher's, so the result is a complete checkpoint of the new architecture; a joint run
(`python -m aecodec.train --init OUT/last.pt --encoder-patch … --activation …`) then fine-tunes it all on
the codec's own loss. Distilling first costs one encoder pass per step instead of a codec pass, and the
joint run starts from a model that already works instead of from noise.

    python -m aecodec.train.distill_encoder --teacher train/checkpoints/audio-edge/last.pt --encoder-patch 8 \\
        --activation leaky_relu --data ../shared/data/audio/train --val-fraction 0.08 --out runs/adist --minutes 20

Resumes from OUT/last.pt; SIGTERM / Ctrl-C checkpoint and stop.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import signal
import sys
import time
from pathlib import Path

import torch

from .audio_data import SegmentSampler, holdout, list_audio, load_clips, validation_excerpt
from .audio_eval import evaluate_clips
from .audio_model import ACTIVATIONS, AudioCodecModel, AudioConfig, AudioEncoder, patch_strides
from .checkpoint_io import config_from_dict
from .trainer import atomic_save


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m aecodec.train.distill_encoder", description=__doc__.split("\n")[0])
    p.add_argument("--teacher", required=True, help="trained audio checkpoint whose latent the new encoder learns")
    p.add_argument("--encoder-patch", type=int, default=1, help="student's framing stride (see AudioConfig)")
    p.add_argument("--encoder-bare", type=int, default=0,
                   help="student's leading strides without residual units (see AudioConfig)")
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), help="student's activation (default: the teacher's)")
    p.add_argument("--residual-units", type=int, help="student's residual units per stride (default: the teacher's)")
    p.add_argument("--data", nargs="+", required=True, help="training folders (as the trainer's --data)")
    p.add_argument("--data-weights", type=float, nargs="+", help="sampling weight per --data folder")
    p.add_argument("--val-fraction", type=float, default=0.08, help="files held out per kind (the trainer's split)")
    p.add_argument("--val-seconds", type=float, default=8.0, help="excerpt length of each held-out file")
    p.add_argument("--out", required=True, help="folder for last.pt and train.log")
    p.add_argument("--minutes", type=float, default=20.0, help="stop after this much training wall time in all")
    p.add_argument("--max-steps", type=int, default=0, help="also stop at this step (0 = by --minutes only)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--segment-seconds", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=1e-3, help="peak LR (cosine decay to 2 %% over --minutes)")
    p.add_argument("--ckpt-minutes", type=float, default=3.0)
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast of both encoders")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    return p


def student_config(teacher: AudioConfig, args: argparse.Namespace) -> AudioConfig:
    changes: dict = {"encoder_patch": args.encoder_patch, "encoder_bare": args.encoder_bare}
    if args.activation:
        changes["activation"] = args.activation
    if args.residual_units:
        changes["residual_units"] = args.residual_units
    return dataclasses.replace(teacher, **changes)


def inherit_later_stages(student: AudioEncoder, teacher: AudioEncoder, cfg: AudioConfig) -> int:
    """Copy the teacher's layers after the stages the framing conv replaces into the student (same shapes:
    the student's stage k is the teacher's stage k + framed); a framing conv alone starts from noise. An
    encoder without a framing conv (only bare strides) takes every weight it has, its first conv included.
    Returns the number of tensors copied."""
    framed, _ = patch_strides(cfg.strides, cfg.encoder_patch)
    offset = framed * (cfg.residual_units + 2)  # per stride: its residual units, an activation, the strided conv
    first = 1 if framed else 0  # the framing conv has no counterpart in the teacher
    teacher_state = teacher.state_dict()
    copied = {}
    for name, value in student.state_dict().items():
        head, index, rest = name.split(".", 2)
        source = f"{head}.{int(index) + offset}.{rest}"
        if int(index) >= first and source in teacher_state and teacher_state[source].shape == value.shape:
            copied[name] = teacher_state[source]
    student.load_state_dict({**student.state_dict(), **copied})
    return len(copied)


def latent_error(student: torch.Tensor, teacher: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the two latents in quantiser steps (at each segment's rate point)."""
    return ((student - teacher) * gain).square().mean()


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log_file = (out / "train.log").open("a")

    def log(msg: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    ckpt = torch.load(args.teacher, map_location="cpu", weights_only=False)
    if ckpt.get("modality") != "audio":
        raise SystemExit(f"--teacher {args.teacher}: not an audio checkpoint")
    teacher_cfg = config_from_dict(ckpt["config"], "audio")
    assert isinstance(teacher_cfg, AudioConfig)
    teacher = AudioCodecModel(teacher_cfg)
    teacher.load_state_dict(ckpt["model"])
    teacher.eval().requires_grad_(False)
    try:
        cfg = student_config(teacher_cfg, args)
        model = AudioCodecModel(cfg)
    except ValueError as exc:
        raise SystemExit(f"student: {exc}") from None
    shared = {k: v for k, v in teacher.state_dict().items() if not k.startswith(("encoder.", "discriminator."))}
    model.load_state_dict({**model.state_dict(), **shared})
    inherited = 0
    if cfg.residual_units == teacher_cfg.residual_units and cfg.channels == teacher_cfg.channels:
        inherited = inherit_later_stages(model.encoder, teacher.encoder, cfg)
    model.requires_grad_(False)
    model.encoder.requires_grad_(True)

    folders = list(args.data)
    sources, held = [], []
    for i, folder in enumerate(folders):
        train_files, val_files = holdout(list_audio(folder), args.val_fraction)
        sources.append(load_clips(train_files, cfg.sample_rate, i))
        held.append(load_clips(val_files, cfg.sample_rate, i))
    sampler = SegmentSampler(sources, args.segment_seconds, cfg.sample_rate, seed=args.seed, multiple=cfg.hop,
                             weights=args.data_weights)
    val = [validation_excerpt(c, args.val_seconds, cfg.sample_rate) for h in held for c in h]
    optimizer = torch.optim.Adam(model.encoder.parameters(), lr=args.lr)
    level_gen = torch.Generator().manual_seed(args.seed + 1)
    step, wall, history = 0, 0.0, []
    resume_path = out / "last.pt"
    if resume_path.exists():
        state = torch.load(resume_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["distill"]["optimizer"])
        sampler.load_state_dict(state["distill"]["sampler"])
        level_gen.set_state(state["distill"]["level_gen"])
        step, wall, history = state["step"], state["wall_seconds"], state["distill"]["history"]
        log(f"resumed at step {step} ({wall / 60:.1f} min)")
    else:
        log(f"teacher {args.teacher} -> student {json.dumps(cfg.to_dict())}; {len(sampler)} training clips, "
            f"{len(val)} held out; {inherited} encoder tensors of the later stages inherited from the teacher")
        teacher_val = summarise(evaluate_clips(teacher, val, torch.device("cpu")))
        log(f"teacher on the held-out excerpts: {teacher_val}")

    def checkpoint() -> None:
        atomic_save({"model": model.state_dict(), "config": cfg.to_dict(), "modality": "audio", "step": step,
                     "wall_seconds": wall, "history": [],
                     "distill": {"teacher": str(args.teacher), "optimizer": optimizer.state_dict(),
                                 "sampler": sampler.state_dict(), "level_gen": level_gen.get_state(),
                                 "history": history, "args": vars(args)}}, resume_path)

    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    dtype = torch.bfloat16 if args.bf16 else None
    budget = args.minutes * 60
    k = len(cfg.lambdas)
    t_ckpt, t_log, window = time.time(), time.time(), []
    model.encoder.train()
    while wall < budget and not stop and not (args.max_steps and step >= args.max_steps):
        t0 = time.time()
        lr = args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, wall / budget))))
        for group in optimizer.param_groups:
            group["lr"] = lr
        x = sampler.batch(args.batch)
        level = torch.randint(0, k, (args.batch,), generator=level_gen)
        gain = teacher.gain(level, 3)
        with torch.no_grad(), torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            target = teacher.encoder(x).float()
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            y = model.encoder(x).float()
        loss = latent_error(y, target, gain)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        wall += time.time() - t0
        window.append(loss.item())
        if time.time() - t_log > 60:
            rate = len(window) / (time.time() - t_log)
            log(f"step {step} latent error {sum(window) / len(window):.4f} (quantiser steps²) lr {lr:.2e} "
                f"{rate:.2f} step/s")
            history.append({"step": step, "wall_seconds": wall, "latent_error": sum(window) / len(window)})
            t_log, window = time.time(), []
        if time.time() - t_ckpt > args.ckpt_minutes * 60:
            checkpoint()
            t_ckpt = time.time()
    model.eval()
    checkpoint()
    log(f"stopped at step {step} ({wall / 60:.1f} min); student on the held-out excerpts: "
        f"{summarise(evaluate_clips(model, val, torch.device('cpu')))}")


def summarise(val: dict) -> str:
    """kbps / SI-SDR / mel per rate point, per kind: the figures to compare a student with its teacher."""
    parts = []
    for label, v in val.items():
        kinds = " ".join(f"{kind} {kv['kbps']:.2f}k {kv['si_sdr']:.2f}dB {kv['mel']:.3f}"
                         for kind, kv in v["by_kind"].items())
        parts.append(f"{label}: {kinds}")
    return " | ".join(parts)


if __name__ == "__main__":
    main(sys.argv[1:])
