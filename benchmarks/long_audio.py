"""Long audio through the CLI: wall time (× real time) and peak RSS of `aecodec compress` and `decompress`.

Builds an hour-long FLAC (default) by looping the audio/test clips (resampled with soxr when
--rate differs, duplicated to --channels), written block by block, then runs the CLI in a child
process per direction and reads its peak RSS from wait4(). Shows that memory stays bounded
(chunked coding, streamed file reading and writing) and how fast a long file goes.

    python benchmarks/long_audio.py --minutes 60 [--rate 48000 --channels 2] [--model BUNDLE]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CLIPS = REPO.parent / "shared" / "data" / "audio" / "test"


def build_long_file(path: Path, clips_dir: Path, minutes: float, rate: int, channels: int) -> float:
    import soundfile as sf
    import soxr

    clips = []
    for p in sorted(clips_dir.glob("*.flac")):
        x, sr = sf.read(p, dtype="float32", always_2d=True)
        x = x.mean(axis=1)
        clips.append(soxr.resample(x, sr, rate).astype(np.float32) if sr != rate else x)
    if not clips:
        raise SystemExit(f"no clips in {clips_dir}")
    total = int(minutes * 60 * rate)
    written, i = 0, 0
    with sf.SoundFile(path, "w", samplerate=rate, channels=channels, format="FLAC", subtype="PCM_16") as f:
        while written < total:
            block = clips[i % len(clips)][: total - written]
            f.write(np.repeat(block[:, None], channels, axis=1))
            written += len(block)
            i += 1
    return written / rate


def run_measured(cmd: list[str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MB, exit status) of a child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, proc.returncode


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--rate", type=int, default=24_000)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--clips", default=str(DEFAULT_CLIPS))
    p.add_argument("--quality", type=int, default=None, help="aecodec -q (default: the CLI's default)")
    p.add_argument("--model", help="audio bundle (default: the shipped one)")
    p.add_argument("--out-dir", default=str(REPO / "bench-out"))
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        src, aec, back = Path(tmp) / "long.flac", Path(tmp) / "long.aec", Path(tmp) / "long.wav"
        t0 = time.perf_counter()
        seconds = build_long_file(src, Path(args.clips), args.minutes, args.rate, args.channels)
        print(f"built {seconds / 60:.1f} min, {args.rate} Hz, {args.channels} ch FLAC "
              f"({src.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        extra = (["--model", args.model] if args.model else []) + (["-q", str(args.quality)] if args.quality else [])
        cli = [sys.executable, "-m", "aecodec"]
        enc = run_measured(cli + ["compress", str(src), "-o", str(aec), *extra])
        dec = run_measured(cli + ["decompress", str(aec), "-o", str(back)] + (["--model", args.model] if args.model else []))
        if enc[2] or dec[2]:
            print(f"aecodec failed: exit {enc[2]} / {dec[2]}", file=sys.stderr)
            return 1
        import soundfile as sf

        info = sf.info(str(back))
        report = {"minutes": seconds / 60, "rate": args.rate, "channels": args.channels,
                  "aec_bytes": aec.stat().st_size, "kbps": 8 * aec.stat().st_size / seconds / 1000,
                  "encode_s": enc[0], "encode_x_realtime": seconds / enc[0], "encode_peak_rss_mb": enc[1],
                  "decode_s": dec[0], "decode_x_realtime": seconds / dec[0], "decode_peak_rss_mb": dec[1],
                  "decoded_frames_match": info.frames == round(seconds * args.rate),
                  "threads": os.cpu_count()}
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"long_audio_{int(args.minutes)}min_{args.rate}_{args.channels}ch.json"
    (out_dir / name).write_text(json.dumps(report, indent=1))
    print(f"| minutes | rate | ch | kbps | encode ×RT | encode peak RSS MB | decode ×RT | decode peak RSS MB |\n"
          f"|---|---|---|---|---|---|---|---|\n"
          f"| {report['minutes']:.1f} | {args.rate} | {args.channels} | {report['kbps']:.2f} | "
          f"{report['encode_x_realtime']:.1f} | {report['encode_peak_rss_mb']:.0f} | "
          f"{report['decode_x_realtime']:.1f} | {report['decode_peak_rss_mb']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
