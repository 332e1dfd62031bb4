"""Is `python -m aecodec.train --compile` (or `--bf16`) worth it here? Training steps/s of each, side by side.

Builds the model of a training checkpoint (default: the shipped image-hyperprior's) and the training task of
the trainer's own arguments (after `--`), then alternates blocks of eager and compiled optimizer steps in one
process so that both see the same machine load; prints steps/s of each and their ratio. The first run compiles
(1-2 min on 2 cores; PyTorch caches it). Pause any training first (`kill -STOP`):

    python benchmarks/train_compile_speed.py -- --data ../shared/data/images-train --crop 256 --batch 4

(An audio checkpoint with `-- --modality audio ...` works the same way, but audio-edge's forward + loss did not
finish compiling within 8 minutes on 2 cores.)
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=str(REPO / "train/checkpoints/image-hyperprior/last.pt"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--block", type=int, default=10, help="steps per block")
    p.add_argument("--variants", default="eager,compiled",
                   help="comma list from eager, compiled, bf16-eager, bf16-compiled (bf16: autocast of the transforms)")
    p.add_argument("trainer_args", nargs=argparse.REMAINDER, help="-- then the arguments of python -m aecodec.train")
    a = p.parse_args()

    import torch

    from aecodec.train.tasks import TASKS
    from aecodec.train.trainer import build_parser

    torch.set_num_threads(a.threads)
    argv = [x for x in a.trainer_args if x != "--"]
    args = build_parser().parse_args(argv + ["--out", "unused"])
    if len(args.data) == 1:
        args.data = args.data[0]
    ckpt = torch.load(a.checkpoint, map_location="cpu", weights_only=False)
    task = TASKS[ckpt.get("modality", "image")](args, ckpt["config"], 0)
    model = task.build_model()
    model.load_state_dict(ckpt["model"])
    model.train()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameter_groups(), lr=1e-6)
    levels = len(task.config.lambdas)

    def with_dtype(dtype):
        def forward_and_loss(x: torch.Tensor, level: torch.Tensor, extra: dict) -> torch.Tensor:
            model.transform_dtype = dtype
            return model.loss(model(x, level, **extra), level)
        return forward_and_loss

    makers = {
        "eager": lambda: with_dtype(None),
        "compiled": lambda: torch.compile(with_dtype(None)),
        "bf16-eager": lambda: with_dtype(torch.bfloat16),
        "bf16-compiled": lambda: torch.compile(with_dtype(torch.bfloat16)),
    }
    variants = {name: makers[name]() for name in a.variants.split(",")}

    def step(fn) -> None:
        batch = task.batch(args.batch)
        x, extra = batch if isinstance(batch, tuple) else (batch, {})
        loss = fn(x, torch.randint(0, levels, (args.batch,)), extra)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    t = time.time()
    for fn in variants.values():
        step(fn), step(fn)
    print(f"warm-up (compile included): {time.time() - t:.0f} s", flush=True)
    seconds = dict.fromkeys(variants, 0.0)
    for r in range(a.rounds):
        for name, fn in variants.items():
            t = time.time()
            for _ in range(a.block):
                step(fn)
            seconds[name] += time.time() - t
        done = a.block * (r + 1)
        print(f"round {r + 1}: " + ", ".join(f"{k} {done / s:.3f} steps/s" for k, s in seconds.items()), flush=True)
    first = next(iter(seconds))
    ratios = ", ".join(f"{k} ×{seconds[first] / s:.2f}" for k, s in seconds.items() if k != first)
    print(f"{' '.join(argv)}, {a.threads} threads: relative to {first}: {ratios}")


if __name__ == "__main__":
    main()
