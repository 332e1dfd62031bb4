#!/usr/bin/env bash
# The prepared GPU check: parity with the CPU and ORT-CUDA / TensorRT / PyTorch-CUDA throughput at 1080p
# batches, one table, at most 6 minutes. Uses only what is installed (no network). Without a GPU it runs a
# dry pass on the CPU. Options go to benchmarks/gpu_check.py (--batch, --workers, --budget, --dry-run, --json).
#   benchmarks/gpu_check.sh            # on a machine with an NVIDIA GPU
#   benchmarks/gpu_check.sh --dry-run  # anywhere: checks the script
set -uo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-}
if [ -z "$py" ]; then
    if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=$(command -v python3 || command -v python); fi
fi
echo "gpu_check: $("$py" --version 2>&1), $(nproc 2>/dev/null || echo ?) CPUs"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi: failed"
else
    echo "nvidia-smi: not available"
fi
"$py" - <<'PY' || true
from importlib import metadata
for d in ("onnxruntime", "onnxruntime-gpu", "tensorrt", "tensorrt-cu12", "torch"):
    try:
        print(f"  {d} {metadata.version(d)}")
    except metadata.PackageNotFoundError:
        print(f"  {d}: not installed")
PY
# 360 s hard limit for the whole run; the Python side plans for --budget (330 s) and prints its table first
timeout --signal=INT --kill-after=10 360 "$py" benchmarks/gpu_check.py "$@"
status=$?
[ $status -eq 124 ] && echo "gpu_check: stopped at the 6-minute limit"
exit $status
