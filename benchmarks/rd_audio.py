"""Audio rate–distortion: Opus (libopus via libsndfile's OGG/OPUS writer) at 6 / 12 / 24 kbps on a folder
of clips, split by class (file-name prefix speech_ / music_ / env_): real kbps (whole file), SI-SDR,
multi-resolution log-mel distance, STOI and wideband PESQ on speech (pystoi, pesq; both at 16 kHz after
soxr resampling, as the wideband P.862.2 model requires), and encode/decode speed as × real time.

aecodec runs through its API at the same target bitrates (bitrate mode: the highest quality whose
whole file stays at or under the target) when an audio bundle is given (--model) or ships. Opus overshoots
its nominal bitrate (Ogg framing, VBR), so with --matched-opus each aecodec file also gets an "opus-matched"
row: Opus at the highest setting whose real rate on that clip stays at or under aecodec's real rate (libopus
cannot go below its minimum of about 6 kbps nominal; such rows say so with "matched": false).

    python benchmarks/rd_audio.py [--clips ../shared/data/audio/test] [--out-dir bench-out] [--matched-opus]
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

from aecodec.metrics import mel_distance, si_sdr

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CLIPS = REPO.parent / "shared" / "data" / "audio" / "test"
TARGETS_KBPS = [6, 12, 24]


def _rel(path) -> str:
    """A path as written relative to the repository (no machine-specific absolute paths in outputs)."""
    import os

    return os.path.relpath(os.path.abspath(path), REPO)


def opus_level(kbps: float) -> float:
    """libsndfile maps compression_level linearly to Opus bitrate: about 256 − 250·level kbps."""
    return float(np.clip((256.0 - kbps) / 250.0, 0.0, 1.0))


def stoi(est: np.ndarray, ref: np.ndarray, sr: int) -> float | None:
    try:
        from pystoi import stoi as _stoi
    except ImportError:
        return None
    return float(_stoi(ref, est, sr, extended=False))


def pesq_wb(est: np.ndarray, ref: np.ndarray, sr: int) -> float | None:
    """Wideband PESQ (ITU-T P.862.2, MOS-LQO) at 16 kHz; None where the package is missing or the clip has no
    speech PESQ can find."""
    try:
        from pesq import pesq as _pesq
    except ImportError:
        return None
    import soxr

    if sr != 16_000:
        est, ref = (soxr.resample(a, sr, 16_000, quality="VHQ").astype(np.float32) for a in (est, ref))
    try:
        return float(_pesq(16_000, ref, est, "wb"))
    except Exception:  # pesq raises on clips without detectable utterances
        return None


def run_opus(clip: np.ndarray, sr: int, kbps: float) -> tuple[bytes, np.ndarray, float, float]:
    import soundfile as sf

    buf = io.BytesIO()
    t0 = time.perf_counter()
    sf.write(buf, clip, sr, format="OGG", subtype="OPUS", compression_level=opus_level(kbps))
    t1 = time.perf_counter()
    data = buf.getvalue()
    out, out_sr = sf.read(io.BytesIO(data), dtype="float32")
    t2 = time.perf_counter()
    if out_sr != sr:
        raise RuntimeError(f"Opus decoded at {out_sr} Hz, expected {sr}")
    out = out[: len(clip)] if len(out) >= len(clip) else np.pad(out, (0, len(clip) - len(out)))
    return data, out, t1 - t0, t2 - t1


def run_opus_matched(clip: np.ndarray, sr: int, kbps: float, steps: int = 10):
    """Opus at the highest bitrate whose real rate on this clip is at most `kbps` (bisection on the level);
    (run_opus result, matched): matched is False where even the lowest setting is above `kbps`."""
    seconds = len(clip) / sr
    lo, hi = 0.0, 1.0  # level 0 = highest bitrate, 1 = lowest
    best = run_opus(clip, sr, 256.0 - 250.0 * hi)
    if len(best[0]) * 8 / seconds / 1000 > kbps:
        return best, False
    for _ in range(steps):
        mid = (lo + hi) / 2
        res = run_opus(clip, sr, 256.0 - 250.0 * mid)
        if len(res[0]) * 8 / seconds / 1000 <= kbps:
            best, hi = res, mid
        else:
            lo = mid
    return best, True


def main(argv=None) -> int:
    import soundfile as sf

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", default=str(DEFAULT_CLIPS))
    p.add_argument("--targets", type=float, nargs="+", default=TARGETS_KBPS)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--model", help="aecodec audio bundle (default: the shipped one, if any)")
    p.add_argument("--out-dir", default=str(REPO / "bench-out"))
    p.add_argument("--matched-opus", action="store_true",
                   help="also code Opus at aecodec's real rate per clip (rows \"opus-matched\")")
    args = p.parse_args(argv)
    paths = sorted(Path(args.clips).glob("*.flac")) + sorted(Path(args.clips).glob("*.wav"))
    paths = paths[: args.limit or None]
    if not paths:
        print(f"no clips in {args.clips}", file=sys.stderr)
        return 1
    rows = []
    try:
        import aecodec
        from aecodec.audio import audio_bundle

        aec_bundle = audio_bundle(args.model)
        aec_status = f"model {aec_bundle.model_id}"
    except Exception as e:  # no audio model available: reported, not silently dropped
        aec_bundle, aec_status = None, f"unavailable: {e}"
    for path in paths:
        clip, sr = sf.read(str(path), dtype="float32", always_2d=True)
        clip = clip.mean(axis=1)
        seconds = len(clip) / sr
        cls = path.name.split("_")[0]
        for target in args.targets:
            data, out, t_enc, t_dec = run_opus(clip, sr, target)
            rows.append({"codec": "opus", "target_kbps": target, "clip": path.name, "class": cls,
                         "kbps": len(data) * 8 / seconds / 1000, "si_sdr": si_sdr(out, clip),
                         "mel_distance": mel_distance(out, clip, sr),
                         "stoi": stoi(out, clip, sr) if cls == "speech" else None,
                         "pesq_wb": pesq_wb(out, clip, sr) if cls == "speech" else None,
                         "encode_x_realtime": seconds / t_enc, "decode_x_realtime": seconds / t_dec})
            if aec_bundle is not None:
                data = aecodec.compress_audio(clip, sr, bitrate=target, model=aec_bundle)
                t1 = time.perf_counter()
                out, _ = aecodec.decompress_audio(data, model=aec_bundle)
                t2 = time.perf_counter()
                q = aecodec.info(data)["quality"]
                # the bitrate search encodes several times: time one encode at the chosen quality
                t0 = time.perf_counter()
                aecodec.compress_audio(clip, sr, quality=q, model=aec_bundle)
                t_enc1 = time.perf_counter() - t0
                rows.append({"codec": "aecodec", "target_kbps": target, "clip": path.name, "class": cls,
                             "quality": q, "kbps": len(data) * 8 / seconds / 1000, "si_sdr": si_sdr(out, clip),
                             "mel_distance": mel_distance(out, clip, sr),
                             "stoi": stoi(out, clip, sr) if cls == "speech" else None,
                             "pesq_wb": pesq_wb(out, clip, sr) if cls == "speech" else None,
                             "encode_x_realtime": seconds / t_enc1, "decode_x_realtime": seconds / (t2 - t1)})
                if not args.matched_opus:
                    continue
                aec_kbps = len(data) * 8 / seconds / 1000
                (odata, oout, o_enc, o_dec), matched = run_opus_matched(clip, sr, aec_kbps)
                rows.append({"codec": "opus-matched", "target_kbps": target, "clip": path.name, "class": cls,
                             "matched": matched, "matched_to_kbps": aec_kbps,
                             "kbps": len(odata) * 8 / seconds / 1000, "si_sdr": si_sdr(oout, clip),
                             "mel_distance": mel_distance(oout, clip, sr),
                             "stoi": stoi(oout, clip, sr) if cls == "speech" else None,
                             "pesq_wb": pesq_wb(oout, clip, sr) if cls == "speech" else None,
                             "encode_x_realtime": seconds / o_enc, "decode_x_realtime": seconds / o_dec})
    summary = []
    for codec, target, cls in sorted({(r["codec"], r["target_kbps"], r["class"]) for r in rows},
                                     key=lambda k: (k[1], k[2], k[0])):
        sel = [r for r in rows if r["codec"] == codec and r["target_kbps"] == target and r["class"] == cls]
        if sel:
            st = [r["stoi"] for r in sel if r["stoi"] is not None]
            pq = [r["pesq_wb"] for r in sel if r.get("pesq_wb") is not None]
            summary.append({"codec": codec, "target_kbps": target, "class": cls, "clips": len(sel),
                            "kbps": float(np.mean([r["kbps"] for r in sel])),
                            "si_sdr": float(np.mean([r["si_sdr"] for r in sel])),
                            "mel_distance": float(np.mean([r["mel_distance"] for r in sel])),
                            "stoi": float(np.mean(st)) if st else None,
                            "pesq_wb": float(np.mean(pq)) if pq else None,
                            "unmatched": sum(1 for r in sel if r.get("matched") is False),
                            "encode_x_realtime": float(np.median([r["encode_x_realtime"] for r in sel])),
                            "decode_x_realtime": float(np.median([r["decode_x_realtime"] for r in sel]))})
    report = {"clips": _rel(args.clips), "num_clips": len(paths), "summary": summary, "rows": rows,
              "aecodec": aec_status,
              "opus": f"libsndfile {sf.__libsndfile_version__} OGG/OPUS, compression_level = (256 - kbps) / 250",
              "pesq": "ITU-T P.862.2 wideband (pesq package) at 16 kHz (soxr VHQ)",
              "timing": "× real time of one clip per call, 2 threads; time it with the machine otherwise idle"}
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "rd_audio.json").write_text(json.dumps(report, indent=1))
    print(f"{len(paths)} clips from {_rel(args.clips)}\n")
    print("| codec | target kbps | class | clips | real kbps | SI-SDR dB | mel distance | STOI | PESQ-WB | enc ×RT | dec ×RT |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for s in summary:
        st = f"{s['stoi']:.3f}" if s["stoi"] is not None else "-"
        pq = f"{s['pesq_wb']:.2f}" if s["pesq_wb"] is not None else "-"
        codec = s["codec"] + (f" ({s['unmatched']} above)" if s["unmatched"] else "")
        print(f"| {codec} | {s['target_kbps']:g} | {s['class']} | {s['clips']} | {s['kbps']:.2f} | {s['si_sdr']:.2f} | "
              f"{s['mel_distance']:.3f} | {st} | {pq} | {s['encode_x_realtime']:.0f} | {s['decode_x_realtime']:.0f} |")
    if aec_bundle is None:
        print(f"| aecodec | | | | {report['aecodec']} | | | | | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
