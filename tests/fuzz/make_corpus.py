"""Write the seed corpus: small valid .aec files of every colour mode, with and without ICC."""
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

import aecodec

OUT = Path(__file__).parent / "corpus"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    cases = {
        "rgb_1x1": (np.array([[[10, 200, 30]]], np.uint8), 50, None),
        "rgb_17x5_q1": (rng.integers(0, 256, (5, 17, 3), dtype=np.uint8), 1, None),
        "rgb_9x9_q100": (rng.integers(0, 256, (9, 9, 3), dtype=np.uint8), 100, None),
        "grey_3x20": (rng.integers(0, 256, (20, 3), dtype=np.uint8), 75, None),
        "la_6x4": (rng.integers(0, 256, (4, 6, 2), dtype=np.uint8), 40, None),
        "rgba_5x7": (rng.integers(0, 256, (7, 5, 4), dtype=np.uint8), 60, None),
        "rgb_icc_8x8": (rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), 30, icc),
    }
    for name, (arr, q, profile) in cases.items():
        img = Image.fromarray(arr)
        if profile:
            img.info["icc_profile"] = profile
        (OUT / f"{name}.aec").write_bytes(aecodec.compress(img, quality=q))
    try:
        import importlib.util

        spec = importlib.util.spec_from_file_location("fuzz_decode", Path(__file__).parent / "fuzz_decode.py")
        fz = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(fz)  # builds the small audio bundle
        if fz.AUDIO is not None:
            t = np.arange(1200) / 8000
            (OUT / "audio_mono_8k.aec").write_bytes(aecodec.compress_audio(np.sin(t * 2000).astype(np.float32), 8000,
                                                                              model=fz.AUDIO))
            st = np.stack([np.sin(t * 900), np.cos(t * 300)], -1).astype(np.float32)
            (OUT / "audio_stereo_8k.aec").write_bytes(aecodec.compress_audio(st, 8000, quality=90, model=fz.AUDIO))
    except ImportError:
        pass
    print(f"wrote seeds to {OUT}")


if __name__ == "__main__":
    main()
