#!/usr/bin/env bash
# Fuzz the .aec decoder for N iterations (default 100000) on a scratch copy of the seed corpora
# (corpus/: versions 1 and 2; corpus-v3/: lossless images, audio level and silence sections, and images of the
# default model: version 4, hyperprior + checkerboard context; audio with a bandwidth section: version 5).
# Findings (crash-* files) land in the current directory; the exit status is non-zero if any.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
runs="${1:-100000}"
work="$(mktemp -d)"
cp "$here"/corpus/* "$here"/corpus-v3/* "$work"/
python "$here/fuzz_decode.py" -runs="$runs" -print_final_stats=1 "$work"
