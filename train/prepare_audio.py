"""Decode installed or downloaded audio into a training folder: 24 kHz mono 16-bit FLAC, one file per track.

Training folders stay outside the repository's tracked files (`runs/` is git-ignored) and are rebuilt
by re-running the same command; existing outputs are kept (--force rewrites them). Sources:

- `--deb PACKAGE`: the .ogg / .flac / .wav files a Debian package installed (`dpkg -L`), e.g. Wesnoth's
  music (GPL-2+): `apt-get install -y wesnoth-1.16-music` then
  `python -m aecodec.train.prepare_audio --deb wesnoth-1.16-music --prefix music_wesnoth --out runs/data/wesnoth`
- `--src DIR`: every audio file below a folder.

Files are named `<prefix>_<track>.flac` (the prefix gives the kind: speech_ / music_ / env_); tracks whose
names differ only by a trailing number or "-old" (`defeat`, `defeat2`) become `_a`, `_b`, … of one group, so a
validation hold-out takes them together. Tracks shorter than --min-seconds or silent (peak below -60 dBFS)
are skipped.
`SOURCES.json` in the output lists every file with its source path, package version, licence note,
duration and SHA-256.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from .audio_data import AUDIO_SUFFIXES, list_audio, load_mono

SAMPLE_RATE = 24_000
SILENT_PEAK = 1e-3  # a track peaking below -60 dBFS is silence (Wesnoth's silence.ogg peaks at one 16-bit step)


def package_files(package: str) -> tuple[list[Path], str]:
    """(audio files the package installed, its version) from dpkg."""
    try:
        listing = subprocess.run(["dpkg", "-L", package], check=True, capture_output=True, text=True).stdout
        version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], check=True, capture_output=True,
                                 text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"{package} is not installed (apt-get install -y {package}): {e}") from None
    files = sorted(Path(line) for line in listing.splitlines()
                   if Path(line).suffix.lower() in AUDIO_SUFFIXES and Path(line).is_file())
    return files, version


def track_names(paths: list[Path]) -> dict[Path, str]:
    """File stem -> output name; variants of one track (trailing digits, "-old") get _a, _b, … suffixes."""
    def base(p: Path) -> str:
        return re.sub(r"(-old|\d+)$", "", p.stem.lower()).replace("-", "_").strip("_")

    groups: dict[str, list[Path]] = {}
    for p in paths:
        groups.setdefault(base(p), []).append(p)
    names = {}
    for b, members in groups.items():
        if len(members) == 1:
            names[members[0]] = b
        else:
            for i, p in enumerate(sorted(members, key=lambda q: q.stem)):
                names[p] = f"{b}_{chr(ord('a') + i)}"
    return names


def main(argv: list[str] | None = None) -> int:
    import soundfile as sf

    p = argparse.ArgumentParser(prog="python -m aecodec.train.prepare_audio", description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--deb", help="Debian package whose audio files to decode (must be installed)")
    src.add_argument("--src", help="folder of audio files")
    p.add_argument("--out", required=True, help="output folder, e.g. runs/data/wesnoth")
    p.add_argument("--prefix", required=True, help="file-name prefix, starting with the kind: music_wesnoth, speech_x")
    p.add_argument("--licence", default="", help="licence note for SOURCES.json (--deb: read from the copyright file)")
    p.add_argument("--min-seconds", type=float, default=5.0)
    p.add_argument("--force", action="store_true", help="rewrite existing outputs")
    args = p.parse_args(argv)
    if args.deb:
        files, version = package_files(args.deb)
        origin = f"Debian package {args.deb} {version}"
        licence = args.licence or f"see /usr/share/doc/{args.deb}/copyright"
    else:
        files, origin, licence = list_audio(args.src), f"folder {args.src}", args.licence
    if not files:
        raise SystemExit(f"no audio files in {origin}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = track_names(files)
    entries, total = [], 0.0
    for path in files:
        target = out / f"{args.prefix}_{names[path]}.flac"
        if target.exists() and not args.force:
            audio, _ = sf.read(str(target), dtype="float32")
        else:
            audio = load_mono(path, SAMPLE_RATE)
            seconds = len(audio) / SAMPLE_RATE
            peak = float(np.abs(audio).max()) if len(audio) else 0.0
            if seconds < args.min_seconds or peak < SILENT_PEAK:
                print(f"skip {path.name}: {seconds:.1f} s, peak {peak:.1e}", file=sys.stderr)
                continue
            if peak > 1.0:  # decoded lossy audio can overshoot; scale rather than clip
                audio = audio / peak
            tmp = target.with_suffix(".tmp.flac")
            sf.write(str(tmp), audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
            tmp.replace(target)
        seconds = len(audio) / SAMPLE_RATE
        total += seconds
        entries.append({"file": target.name, "source": str(path), "seconds": round(seconds, 2),
                        "sha256": hashlib.sha256(target.read_bytes()).hexdigest()})
        print(f"{target.name}: {seconds:.1f} s", flush=True)
    (out / "SOURCES.json").write_text(json.dumps({"origin": origin, "licence": licence, "sample_rate": SAMPLE_RATE,
                                                  "format": "FLAC 16-bit mono", "minutes": round(total / 60, 2),
                                                  "files": entries}, indent=1) + "\n")
    print(f"{len(entries)} files, {total / 60:.1f} min -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
