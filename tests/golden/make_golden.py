"""Golden bitstreams: SHA-256 of what the public API encodes and decodes for fixed inputs.

Written once with a known-good version (`python tests/golden/make_golden.py`), then checked by
tests/test_golden.py after every refactor: the same inputs must give the same .aec bytes and the
same decoded samples. ONNX Runtime's float results can differ between CPU instruction sets, so
the file records the ISA it was made on; elsewhere the test compares with a tolerance instead.
"""
from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
CORPUS = HERE.parent / "fuzz" / "corpus"
sys.path.insert(0, str(HERE.parent.parent))


def sha(data: bytes | np.ndarray) -> str:
    if isinstance(data, np.ndarray):
        data = np.ascontiguousarray(data).tobytes()
    return hashlib.sha256(data).hexdigest()[:32]


def cpu_isa() -> str:
    """The widest x86 vector extension of this CPU (what ONNX Runtime's kernels dispatch on)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine()
    for isa in ("avx512f", "avx2", "avx"):
        if f" {isa}" in flags:
            return isa
    return platform.machine()


def image_cases() -> dict[str, tuple[np.ndarray, int]]:
    from tests.conftest import natural_image

    return {
        "rgb_96x128_q1": (natural_image(96, 128, seed=1), 1),
        "rgb_96x128_q75": (natural_image(96, 128, seed=1), 75),
        "rgb_70x45_q100": (natural_image(70, 45, seed=2), 100),
        "grey_33x40_q50": (natural_image(33, 40, seed=3, channels=1)[:, :, 0], 50),
        "rgba_24x31_q60": (natural_image(24, 31, seed=4, channels=4), 60),
    }


def audio_cases() -> dict[str, tuple[np.ndarray, int, int]]:
    t = np.arange(24_000 * 2) / 24_000
    mono = (0.3 * np.sin(2 * np.pi * 440 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)
    t2 = np.arange(44_100) / 44_100
    stereo = np.stack([0.2 * np.sin(2 * np.pi * 220 * t2), 0.2 * np.sin(2 * np.pi * 330 * t2 + 1)], -1)
    return {"mono_24k_q50": (mono, 24_000, 50), "mono_24k_q1": (mono, 24_000, 1),
            "stereo_44k_q90": (stereo.astype(np.float32), 44_100, 90)}


def compute() -> dict:
    """The recorded quantities, with the fp32 graphs: the reference decoder (other precision variants decode the
    same files to slightly different pixels; their own tests cover them)."""
    from aecodec.models import use_precision

    with use_precision("fp32"):
        return compute_fp32()


def compute_fp32() -> dict:
    import aecodec

    out: dict = {"images": {}, "images_hyperprior": {}, "audio": {}, "corpus": {}}
    for name, (arr, q) in image_cases().items():
        data = aecodec.compress(arr, quality=q, model="image-edge")  # files of the first image model, pinned
        out["images"][name] = {"aec": sha(data), "bytes": len(data),
                               "decoded": sha(aecodec.decompress(data, as_array=True))}
    for name, (arr, q) in image_cases().items():  # the hyperprior default model (format version 3)
        data = aecodec.compress(arr, quality=q, model="image-hyperprior")
        out["images_hyperprior"][name] = {"aec": sha(data), "bytes": len(data),
                                          "decoded": sha(aecodec.decompress(data, as_array=True))}
    for name, (samples, rate, q) in audio_cases().items():
        data = aecodec.compress_audio(samples, rate, quality=q)
        decoded, _ = aecodec.decompress_audio(data)
        out["audio"][name] = {"aec": sha(data), "bytes": len(data), "decoded": sha(decoded)}
    for path in sorted(CORPUS.glob("*.aec")):
        try:
            decoded = aecodec.decompress(path.read_bytes(), as_array=True)
        except aecodec.AecError:
            continue  # audio seeds need the fuzz harness's own bundle
        out["corpus"][path.name] = sha(decoded)
    return out


if __name__ == "__main__":
    import onnxruntime

    result = compute()
    result["made_with"] = {"isa": cpu_isa(), "onnxruntime": onnxruntime.__version__}
    previous = json.loads((HERE / "golden.json").read_text()) if (HERE / "golden.json").exists() else {}
    if "old_files" in previous:  # files of earlier releases, kept by hand: not re-made, still tested
        result["old_files"] = previous["old_files"]
    (HERE / "golden.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
