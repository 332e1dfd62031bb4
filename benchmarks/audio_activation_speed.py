"""How fast would the audio graphs be with a ReLU-family activation? (issue 18/19: ≥ 50× real time)

Takes the shipped audio model's training checkpoint, swaps every ELU for another activation (same weights, so the
audio is wrong and only the speed means anything), exports encoder and decoder to ONNX and times them in ONNX
Runtime on the CPU. Run it with the machine otherwise idle:

    python benchmarks/audio_activation_speed.py [--seconds 20] [--threads 2] [--profile]
"""
from __future__ import annotations

import argparse
import collections
import copy
import json
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
ACTIVATIONS = ("elu", "leaky0.2", "relu")


def swapped(net, name: str):
    import torch.nn as nn

    make = {"elu": nn.ELU, "leaky0.2": lambda: nn.LeakyReLU(0.2), "relu": nn.ReLU}[name]
    net = copy.deepcopy(net)
    for parent in net.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.ELU):
                setattr(parent, child_name, make())
    return net


def op_shares(session_path: Path, feed: dict, threads: int) -> dict[str, float]:
    """Share of kernel time per operator type (ONNX Runtime's profiler)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.enable_profiling = threads, True
    so.profile_file_prefix = str(session_path.with_suffix(""))
    s = ort.InferenceSession(str(session_path), so, providers=["CPUExecutionProvider"])
    for _ in range(3):
        s.run(None, feed)
    events = json.loads(Path(s.end_profiling()).read_text())
    total: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            total[e["args"]["op_name"]] += e["dur"]
    all_time = sum(total.values()) or 1
    return {op: round(100 * t / all_time, 1) for op, t in total.most_common()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=str(REPO / "train/checkpoints/audio-edge/last.pt"))
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--profile", action="store_true", help="also print each graph's time per operator type")
    args = p.parse_args()

    import onnxruntime as ort
    import torch

    from aecodec.train.audio_model import AudioConfig
    from aecodec.train.checkpoint_io import build_model

    ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    cfg = AudioConfig.from_dict(ckpt["config"])
    model = build_model(cfg)
    model.load_state_dict(ckpt["model"], strict=False)
    model.eval()
    samples = int(cfg.sample_rate * args.seconds) // cfg.hop * cfg.hop
    rng = np.random.default_rng(0)
    inputs = {"encoder": rng.normal(0, 0.1, (1, 1, samples)).astype(np.float32),
              "decoder": rng.normal(0, 1, (1, cfg.latent, samples // cfg.hop)).astype(np.float32)}
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = args.threads, 1
    print(f"{args.seconds:g} s at {cfg.sample_rate} Hz, ONNX Runtime {ort.__version__}, {args.threads} threads; × real time")
    print("| activation | encoder | decoder |\n|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for act in ACTIVATIONS:
            row, shares = [], {}
            for part, x in inputs.items():
                path = Path(tmp) / f"{act}_{part}.onnx"
                torch.onnx.export(swapped(getattr(model, part), act), (torch.from_numpy(x),), str(path),
                                  input_names=["x"], output_names=["y"], dynamic_axes={"x": {2: "t"}},
                                  opset_version=17, dynamo=False)
                s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
                s.run(None, {"x": x})
                best = min(_timed(s, {"x": x}) for _ in range(args.repeats))
                row.append(f"{args.seconds / best:.1f}")
                if args.profile:
                    shares[part] = op_shares(path, {"x": x}, args.threads)
            print(f"| {act} | {row[0]} | {row[1]} |")
            for part, share in shares.items():
                print(f"    {act} {part}: " + ", ".join(f"{op} {v}%" for op, v in share.items()))


def _timed(session, feed) -> float:
    t0 = time.perf_counter()
    session.run(None, feed)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
