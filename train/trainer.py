"""Training loop: resumable, seeded, CPU or CUDA, single process or torchrun (DDP, one or several machines).

Usage: python -m aecodec.train --data DIR --val DIR --out RUN_DIR [--steps N] ...
A run directory holds `last.pt` (resume point, written atomically every few minutes),
`best.pt` (best validation score) and `train.log`. The loop is generic: everything specific to a
modality or architecture is in the task (tasks.py) and the model.

Under DDP only rank 0 writes checkpoints and logs; on resume rank 0 reads `last.pt` and sends it
to the other ranks, so --out need not be on a shared file system.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

from .audio_model import ACTIVATIONS, AUDIO_PROFILES
from .factorized import PROFILES
from .tasks import TASKS, Task


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m aecodec.train", description=__doc__.splitlines()[0])
    p.add_argument("--modality", choices=sorted(TASKS), default="image")
    p.add_argument("--data", required=True, nargs="+",
                   help="folder of training images (png/jpg/webp) or audio (wav/flac/ogg); audio: several folders mix")
    p.add_argument("--val", help="folder of held-out validation images / audio clips")
    p.add_argument("--out", required=True, help="run directory (checkpoints, log); resumed if it has last.pt")
    p.add_argument("--profile", default="edge", choices=sorted(PROFILES))
    p.add_argument("--channels", type=int, help="override the profile's hidden width N")
    p.add_argument("--latent", type=int, help="override the profile's latent channels M")
    p.add_argument("--arch", choices=["factorized", "hyperprior"], default="factorized", help="image model family")
    p.add_argument("--hyper", type=int, help="hyperprior: channels of z (default 64)")
    p.add_argument("--context", type=int, default=0,
                   help="hyperprior, new run: channels of a checkerboard context network (0 = none; training only "
                        "for now: the run time does not decode it yet, so export refuses it)")
    p.add_argument("--lambdas", type=float, nargs="+",
                   help="rate points λ of a new run (ascending; default: the profile's); with --init the trained "
                        "gains are inter- or extrapolated log-linearly in log λ to the new points")
    p.add_argument("--init", help="new run: warm-start from this checkpoint (image: g_a, g_s and gains, e.g. a factorized "
                                  "model for --arch hyperprior, and a hyperprior's entropy model; both modalities: "
                                  "grown into a wider model (--channels) with the old function kept)")
    p.add_argument("--steps", type=int, default=30000, help="total optimizer steps (the LR schedule spans them)")
    p.add_argument("--batch", type=int, default=8, help="batch size per process")
    p.add_argument("--crop", type=int, default=128, help="image crop size")
    p.add_argument("--segment-seconds", type=float, default=1.0, help="audio segment length")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--decay-from", type=float, default=0.7, help="fraction of --steps after which LR decays (cosine)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--val-every", type=int, default=2000)
    p.add_argument("--freeze-transforms", action="store_true",
                   help="hyperprior: train only the entropy model on the rate of the (warm-started) fixed transforms")
    p.add_argument("--freeze-decoder", action="store_true",
                   help="hyperprior: train g_a and h_a only (decoder, entropy model and gains stay as --init or the "
                        "checkpoint gave them; pass it again on resume)")
    p.add_argument("--val-bd-rate", action="store_true",
                   help="images: validate every rate point and log BD-rate vs WebP (slower; the model card's curve)")
    audio = p.add_argument_group("audio", "architecture of a new audio run, data mix and loss (docs/training.md, Audio)")
    audio.add_argument("--audio-profile", choices=sorted(AUDIO_PROFILES), default="edge",
                       help="new audio run: preset width / latent / rate ladder (edge = audio-edge's)")
    audio.add_argument("--decoder-channels", type=int, help="audio decoder width at its output end (default --channels)")
    audio.add_argument("--residual-units", type=int, help="audio encoder residual units per stride (2; dilations 1, 3, 9)")
    audio.add_argument("--decoder-residual-units", type=int, help="audio decoder residual units per stride")
    audio.add_argument("--fourier-dim", type=int, help="fourier profile: width of the decoder's ConvNeXt blocks (256)")
    audio.add_argument("--fourier-hidden", type=int, help="fourier profile: their inner width (768)")
    audio.add_argument("--fourier-blocks", type=int, help="fourier profile: number of blocks (6; each reaches 1 frame)")
    audio.add_argument("--encoder-patch", type=int,
                       help="audio encoder: one framing conv of this stride replaces the first strides (1 = audio-edge's; "
                            "8 skips the thin 24 and 12 kHz stages; start from `python -m aecodec.train.distill_encoder`)")
    audio.add_argument("--encoder-bare", type=int,
                       help="audio encoder: the first N strides (after the framing conv) without residual units; "
                            "every other weight keeps its name, so --init from a full encoder inherits them all")
    audio.add_argument("--freeze-encoder", action="store_true",
                       help="audio: train the decoder only (encoder, density and gains stay as --init gave them)")
    audio.add_argument("--activation", choices=sorted(ACTIVATIONS),
                       help="audio activation of a new run (elu = audio-edge's; relu / leaky_relu run faster in ONNX "
                            "Runtime); with --init the weights carry over and the run fine-tunes the swap")
    audio.add_argument("--data-weights", type=float, nargs="+",
                       help="audio: sampling weight of each --data folder (default: in proportion to its duration)")
    audio.add_argument("--val-fraction", type=float, default=0.0,
                       help="audio: validate on this fraction of each folder's files per kind, held out of training "
                            "(whole speakers / pieces, chosen by a hash of the name)")
    audio.add_argument("--val-seconds", type=float, default=0.0,
                       help="audio: validate on the middle N seconds of each validation clip (0 = whole clips)")
    audio.add_argument("--loss-mel", type=float, help="audio loss weight: multi-resolution log-mel L1 (1)")
    audio.add_argument("--loss-waveform", type=float, help="audio loss weight: waveform L1 (10)")
    audio.add_argument("--loss-stft", type=float, help="audio loss weight: multi-resolution log-|STFT| L1 (0)")
    audio.add_argument("--loss-sc", type=float, help="audio loss weight: multi-resolution spectral convergence (0)")
    audio.add_argument("--loss-adversarial", type=float,
                       help="audio loss weight: MS-STFT discriminator, LSGAN (0; DAC's ratio to mel: 1/15)")
    audio.add_argument("--loss-feature", type=float, help="audio loss weight: discriminator feature matching (0; DAC: 2/15)")
    audio.add_argument("--disc-channels", type=int, default=16, help="audio discriminator width (EnCodec: 32)")
    audio.add_argument("--above-band-weight", type=float,
                       help="audio: weight of spectral bins above a clip's detected bandwidth (1 = no band "
                            "awareness, the default; 0 = 16 kHz speech does not teach that 8-12 kHz is empty)")
    p.add_argument("--ckpt-minutes", type=float, default=5.0)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--max-minutes", type=float, default=0, help="stop (with a checkpoint) after this wall time; 0 = none")
    p.add_argument("--stop-at", type=int, default=0,
                   help="stop (with a checkpoint) at this step, leaving the LR schedule of --steps unchanged; 0 = none")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    p.add_argument("--bf16", action="store_true",
                   help="bfloat16 autocast for the transforms (entropy model stays float32); ~1.8x faster on AVX512_BF16 CPUs")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format (a little faster on CPU)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the forward pass and loss (the backward follows): x1.16 step/s for the image "
                        "hyperprior on 2 AVX2 cores, after a one-off compile of ~100 s (cached between runs)")
    return p


def lr_at(step: int, args: argparse.Namespace) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    start = int(args.decay_from * args.steps)
    if step < start:
        return args.lr
    t = min(1.0, (step - start) / max(1, args.steps - start))
    return args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))


def atomic_save(obj: dict, path: Path) -> None:
    """Write then rename: a crash never leaves a truncated checkpoint."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_resume(path: Path, distributed: bool, rank: int) -> dict | None:
    """The resume checkpoint, read by rank 0 and broadcast to every rank (no shared file system needed)."""
    resume = torch.load(path, map_location="cpu", weights_only=False) if rank == 0 and path.exists() else None
    if distributed:
        box = [resume]
        dist.broadcast_object_list(box, src=0)
        resume = box[0]
    return resume


def any_rank(flag: bool, distributed: bool, device: torch.device) -> bool:
    """True on every rank if it is true on one: stop decisions that depend on the clock must agree."""
    if not distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if len(args.data) == 1:
        args.data = args.data[0]  # one folder: recorded as before (a string)
    elif args.modality != "audio":
        raise SystemExit("--data: several folders are for audio runs only")
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank = int(os.environ.get("RANK", "0"))
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if distributed:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    else:
        torch.backends.cudnn.benchmark = True  # fixed crop size: let cuDNN pick its fastest kernels once
    is_main = rank == 0
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_file = open(out_dir / "train.log", "a") if is_main else None

    def log(msg: str) -> None:
        if is_main:
            line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
            print(line, file=log_file, flush=True)
            if args.no_progress:
                print(line, flush=True)

    torch.manual_seed(args.seed + rank)
    ckpt_path = out_dir / "last.pt"
    resume = load_resume(ckpt_path, distributed, rank)
    modality = resume.get("modality", "image") if resume else args.modality
    if resume and modality != args.modality:
        raise SystemExit(f"{ckpt_path} is a {modality} run; pass --modality {modality}")
    task: Task = TASKS[modality](args, resume["config"] if resume else None, rank)
    config = task.config
    model = task.build_model().to(device)
    if args.bf16:
        model.transform_dtype = torch.bfloat16
    if args.freeze_transforms:
        freeze = getattr(model, "freeze_transforms", None)
        if freeze is None:
            raise SystemExit("--freeze-transforms applies to hyperprior models only")
        freeze()
    if args.freeze_decoder:
        freeze_decoder = getattr(model, "freeze_decoder", None)
        if freeze_decoder is None:
            raise SystemExit("--freeze-decoder applies to hyperprior models only")
        freeze_decoder()
    if getattr(args, "freeze_encoder", False):
        freeze_encoder = getattr(model, "freeze_encoder", None)
        if freeze_encoder is None:
            raise SystemExit("--freeze-encoder applies to audio models only")
        freeze_encoder()
    if args.channels_last and modality == "image":
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # (torch's stub omits it)
    # models may give the entropy model's parameters a larger LR (group "lr_scale"), as CompressAI's
    # aux optimizer: a density otherwise narrows far more slowly than the transforms learn
    optimizer = torch.optim.Adam(model.parameter_groups(), lr=args.lr)
    sampler = task.sampler
    move_sampler = getattr(sampler, "to", None)
    if device.type != "cpu" and move_sampler is not None:
        move_sampler(device)  # crops cut on the GPU: no host-to-device copy of every batch
    level_gen = torch.Generator().manual_seed(args.seed * 7919 + rank)
    step, best_score, wall = 0, float("inf"), 0.0
    fresh_from = 0  # step at which the optimizer state started from zero
    history: list[dict] = []
    if resume:
        model.load_state_dict(resume["model"])
        # shipped resume checkpoints may be slimmed to the weights (no Adam moments: they would
        # triple the size); the optimizer then restarts from zero moments under a fresh warm-up
        # (also when the checkpoint's optimizer has other parameter groups, e.g. from before a model
        # gained its "lr_scale" group)
        same_groups = "optimizer" in resume and len(resume["optimizer"]["param_groups"]) == len(optimizer.param_groups)
        if same_groups:
            optimizer.load_state_dict(resume["optimizer"])
        else:
            resume.pop("optimizer", None)
        if "sampler" in resume and rank == 0:
            sampler.load_state_dict(resume["sampler"])
            level_gen.set_state(resume["level_gen"])
        elif "sampler" in resume:
            # the checkpoint holds rank 0's streams; the others must not replay them (every rank
            # would then draw the same crops), so they re-seed from (seed, rank, step)
            sampler.load_state_dict({"generator": torch.Generator().manual_seed(
                args.seed * 1000 + rank + 7_777_777 * resume["step"]).get_state()})
            level_gen.manual_seed(args.seed * 7919 + rank + 7_777_777 * resume["step"])
        step, best_score, wall = resume["step"], resume.get("best_score", float("inf")), resume.get("wall_seconds", 0.0)
        history = resume.get("history", [])
        if "optimizer" not in resume:
            fresh_from = step
        slim = "" if "optimizer" in resume else " (weights only: fresh optimizer state)"
        log(f"resumed from {ckpt_path} at step {step}{slim}")
    else:
        log(f"new run: {json.dumps(config.to_dict())} args={json.dumps(vars(args))}")
        if task.warm_started:
            log(f"warm start from {args.init}: {len(task.warm_started)} tensors "
                f"({', '.join(sorted({k.split('.')[0] for k in task.warm_started}))})")
    summary = getattr(task, "source_summary", "")  # audio: clips, minutes per kind, hold-out, batch shares
    if summary:
        log("data:\n" + summary)
    if distributed and getattr(model, "discriminator", None) is not None:
        raise SystemExit("the adversarial fine-tune runs in one process (its discriminator step is not DDP-safe)")
    train_model = torch.nn.parallel.DistributedDataParallel(model) if distributed else model
    val_items = task.val_items

    def forward_and_loss(x: torch.Tensor, level: torch.Tensor,
                         extra: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        out = train_model(x, level, **extra)
        return out, model.loss(out, level)

    # compiling a function of the model (not the module) keeps the state_dict's keys, so checkpoints of
    # compiled and eager runs are interchangeable; validation stays eager
    train_step = torch.compile(forward_and_loss) if args.compile else forward_and_loss
    if args.compile:
        log("torch.compile: the first step compiles (about 1-2 minutes on 2 cores; cached afterwards)")

    def checkpoint(path: Path) -> None:
        atomic_save(
            {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "config": config.to_dict(),
                "sampler": sampler.state_dict(), "level_gen": level_gen.get_state(), "step": step,
                "best_score": best_score, "wall_seconds": wall, "history": history, "args": vars(args),
                "modality": modality,
            },
            path,
        )

    progress = None
    if is_main and not args.no_progress:
        from tqdm import tqdm

        progress = tqdm(total=args.steps, initial=step, unit="step", dynamic_ncols=True,
                        mininterval=1.0 if sys.stderr.isatty() else 30.0)
    stop_requested: list[int] = []

    def request_stop(signum: int, frame: object) -> None:  # SIGINT/SIGTERM: finish the step, checkpoint, exit
        stop_requested.append(signum)

    if not distributed:  # under torchrun every rank would have to agree on the step; resume instead
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
    k = len(config.lambdas)
    t_last_ckpt = time.time()
    t_start = time.time()
    t_window, n_window = time.time(), 0
    acc: dict[str, float] = {"n": 0}
    model.train()
    while step < args.steps:
        if stop_requested:
            log(f"stopping on signal {stop_requested[0]}")
            break
        if args.max_minutes and any_rank(time.time() - t_start > args.max_minutes * 60, distributed, device):
            log("stopping: --max-minutes reached")
            break
        if args.stop_at and step >= args.stop_at:
            log("stopping: --stop-at reached")
            break
        lr = lr_at(step, args) * min(1.0, (step - fresh_from + 1) / args.warmup) if fresh_from else lr_at(step, args)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        batch = task.batch(args.batch)
        x, extra = batch if isinstance(batch, tuple) else (batch, {})  # extra: keyword inputs of the model
        x = x.to(device, non_blocking=True)
        level = torch.randint(0, k, (args.batch,), generator=level_gen).to(device)
        out, loss = train_step(x, level, {key: v.to(device) for key, v in extra.items()})
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        n_window += 1
        with torch.no_grad():
            for key, value in {"loss": loss.item(), **task.metrics(out)}.items():
                acc[key] = acc.get(key, 0.0) + value
            acc["n"] += 1
        if progress is not None:
            progress.update(1)
        if step % args.log_every == 0 and acc["n"]:
            now = time.time()
            rate = n_window / (now - t_window)
            wall += now - t_window
            t_window, n_window = now, 0
            msg = {key: v / acc["n"] for key, v in acc.items() if key != "n"}
            acc = {"n": 0}
            log(f"step {step} " + " ".join(f"{k} {v:.4f}" for k, v in msg.items()) + f" lr {lr:.2e} {rate:.2f} step/s")
            if progress is not None:
                progress.set_postfix({k: f"{v:.3f}" for k, v in msg.items()})
        if is_main and val_items and (step % args.val_every == 0 or step == args.steps):
            val = task.validate(model, device)
            score = task.score(val)
            history.append({"step": step, "val": val, "score": score})
            log(f"val step {step} score {score:.4f} " + task.describe(val))
            if score < best_score:
                best_score = score
                checkpoint(out_dir / "best.pt")
        if is_main and time.time() - t_last_ckpt > args.ckpt_minutes * 60:
            checkpoint(ckpt_path)
            t_last_ckpt = time.time()
    wall += time.time() - t_window
    if is_main:
        checkpoint(ckpt_path)
        if not val_items:
            checkpoint(out_dir / "best.pt")
        log(f"checkpoint at step {step}, {wall / 3600:.2f} h of training wall time")
    if progress is not None:
        progress.close()
    if distributed:
        # Leave together: a rank that tears gloo down while rank 0 still validates and checkpoints can abort at exit.
        dist.barrier()
        dist.destroy_process_group()
    return 0
