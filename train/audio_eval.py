"""Rate–distortion of an audio checkpoint per rate point and per kind of clip, in PyTorch (no export needed).

The validation of audio training runs and a diagnosis tool: for each clip the encoder runs once,
then for every rate point the latent is rounded at that point's gains, its rate measured with the
model's likelihoods and the decoder run. Extra points beyond the ladder (--gain-scales: the top
gains × s) and the unquantised latent (--unquantised) separate the quantiser's limit from the
transforms' limit: if the unquantised reconstruction is no better than the top rate point, more bits
cannot help.

    python -m aecodec.train.audio_eval train/checkpoints/audio-edge/last.pt --data ../shared/data/audio/train \
        [--data ../shared/data/audio/train-extra] [--seconds 10] [--limit 8] [--gain-scales 2 4] [--unquantised]
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from aecodec.metrics import mel_distance, si_sdr

from .audio_data import Clip, list_audio, load_clips, validation_excerpt
from .audio_model import AudioCodecModel, pad_to_hop
from .entropy_models import gained_likelihood


@torch.no_grad()
def clip_metrics(model: AudioCodecModel, clip: Clip, gains: list[torch.Tensor | None],
                 device: torch.device) -> list[dict[str, float]]:
    """kbps, SI-SDR and mel distance of one clip at each gain vector (None = the unquantised latent)."""
    cfg = model.config
    x = clip.audio.to(device)[None, None]
    n = x.shape[-1]
    seconds = n / cfg.sample_rate
    y = model.encoder(pad_to_hop(x, cfg.hop))
    ref = clip.audio.numpy()
    rows = []
    for g in gains:
        if g is None:
            y_hat, kbps = y, float("nan")
        else:
            gain = g.to(device)[None, :, None]
            v = torch.round(y * gain)
            bits = -torch.log2(gained_likelihood(model.density, v, gain)).sum()
            y_hat, kbps = v / gain, float(bits) / seconds / 1000
        out = model.decoder(y_hat)[0, 0, :n].clamp(-1, 1).cpu().numpy()
        rows.append({"kbps": kbps, "si_sdr": si_sdr(out, ref), "mel": mel_distance(out, ref, cfg.sample_rate)})
    return rows


def mean_rows(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


@torch.no_grad()
def evaluate_clips(model: AudioCodecModel, clips: Sequence[object], device: torch.device,
                   extra: dict[str, torch.Tensor | None] | None = None) -> dict:
    """{"L0": {kbps, si_sdr, mel, by_kind: {kind: {...}}}, …} over every rate point (and `extra` points).

    The top-level figures are means over all clips; "by_kind" splits them by the clips' kinds."""
    gains = {f"L{k}": torch.exp(model.log_gains[k]).detach().cpu() for k in range(len(model.config.lambdas))}
    points: dict[str, torch.Tensor | None] = {**gains, **(extra or {})}
    per_clip = []
    for clip in clips:
        assert isinstance(clip, Clip)
        per_clip.append((clip.kind, clip_metrics(model, clip, list(points.values()), device)))
    out: dict = {}
    for i, label in enumerate(points):
        rows = [r[i] for _, r in per_clip]
        if not rows:
            continue
        entry: dict = dict(mean_rows(rows))
        entry["by_kind"] = {kind: mean_rows([r[i] for k, r in per_clip if k == kind])
                            for kind in sorted({k for k, _ in per_clip})}
        out[label] = entry
    return out


def main(argv: list[str] | None = None) -> int:
    from .checkpoint_io import load_checkpoint

    p = argparse.ArgumentParser(prog="python -m aecodec.train.audio_eval", description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--data", action="append", required=True, help="folder of clips (repeatable)")
    p.add_argument("--seconds", type=float, default=10.0, help="middle excerpt of each clip (0 = whole clips)")
    p.add_argument("--limit", type=int, default=0, help="every n-th clip so that at most this many per folder")
    p.add_argument("--gain-scales", type=float, nargs="*", default=[], help="extra points: the top gains × s")
    p.add_argument("--unquantised", action="store_true", help="extra point: the latent without quantisation")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, _ = load_checkpoint(args.checkpoint)
    if not isinstance(model, AudioCodecModel):
        raise SystemExit(f"{args.checkpoint} is not an audio checkpoint")
    rate = model.config.sample_rate
    top = torch.exp(model.log_gains[-1]).detach()
    extra: dict[str, torch.Tensor | None] = {f"top×{s:g}": top * s for s in args.gain_scales}
    if args.unquantised:
        extra["unquantised"] = None
    report = {}
    for folder in args.data:
        paths = list_audio(folder)
        if args.limit and len(paths) > args.limit:
            paths = paths[:: -(-len(paths) // args.limit)]
        clips = [validation_excerpt(c, args.seconds, rate) if args.seconds else c for c in load_clips(paths, rate, 0)]
        res = evaluate_clips(model, clips, torch.device("cpu"), extra)
        report[folder] = {"clips": [c.name for c in clips], "points": res}
        for label, v in res.items():
            for kind, kv in v["by_kind"].items():
                print(f"{Path(folder).name:12s} {kind:7s} {label:12s} {kv['kbps']:6.2f} kbps  SI-SDR {kv['si_sdr']:6.2f} dB"
                      f"  mel {kv['mel']:.3f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
