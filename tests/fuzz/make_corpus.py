"""Write the seed corpora: corpus/ (small valid version 1 and 2 files of every colour mode, with and without
ICC) and corpus-v3/ (lossless images of both codings, audio with level and silence sections, images of the default
model: version 4 files with the checkerboard context, and a version 5 audio file with a bandwidth section). The
level and silence seeds carry faint full-band noise, so they stay version 3 files (no bandwidth section).

    python tests/fuzz/make_corpus.py          # both
    python tests/fuzz/make_corpus.py --v3     # corpus-v3/ only (corpus/ is checked by tests/test_golden.py)
"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

import aecodec

OUT = Path(__file__).parent / "corpus"
OUT_V3 = Path(__file__).parent / "corpus-v3"


def v3_seeds() -> None:
    from PIL import ImageDraw

    OUT_V3.mkdir(exist_ok=True)
    rng = np.random.default_rng(1)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    chart = Image.new("RGBA", (160, 120), (250, 250, 250, 255))
    d = ImageDraw.Draw(chart)
    d.rectangle([16, 16, 80, 80], fill=(200, 0, 0, 255))
    d.ellipse([56, 32, 152, 112], fill=(0, 0, 200, 100))
    d.text((4, 100), "aecodec 0123", fill=(0, 0, 0, 255))
    grey = chart.convert("L").resize((128, 64))
    with_icc = chart.convert("RGB").resize((64, 64))
    with_icc.info["icc_profile"] = icc
    images = {
        "lossless_deflate_rgb_6x6": Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)),
        "lossless_deflate_la_3x5": Image.fromarray(rng.integers(0, 256, (5, 3, 2), dtype=np.uint8)),
        "lossless_webp_rgba_160x120": chart,
        "lossless_webp_l_128x64": grey,
        "lossless_webp_icc_64x64": with_icc,
    }
    for name, img in images.items():
        (OUT_V3 / f"{name}.aec").write_bytes(aecodec.compress(img, lossless=True))
    photo = Image.fromarray(np.asarray(chart.convert("RGB").resize((64, 64)), np.uint8) // 2 + 60)
    hyper = {  # the default image model (mean-scale hyperprior with a checkerboard context: sections 5, 6 and 10)
        "hyper_rgb_64x64_q50": (photo, 50),
        "hyper_grey_70x50_q10": (chart.convert("L").resize((70, 50)), 10),
        "hyper_rgba_40x40_q90": (chart.resize((40, 40)), 90),
    }
    for name, (img, quality) in hyper.items():
        (OUT_V3 / f"{name}.aec").write_bytes(aecodec.compress(img, quality=quality, lossless=False))
    audio = "audio-edge"
    t = np.arange(7200) / 24000
    hiss = np.random.default_rng(2).standard_normal(7200)  # full band: these seeds stay version 3 (no section 11)
    tone = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * hiss).astype(np.float32)
    (OUT_V3 / "audio_level_mono_24k.aec").write_bytes(aecodec.compress_audio(tone, 24000, model=audio))
    stereo = np.zeros((4000, 2), np.float32)
    stereo[1000:3000, 0] = np.sin(np.arange(2000) * 0.2) + 0.01 * hiss[:2000]
    (OUT_V3 / "audio_silence_stereo_8k.aec").write_bytes(aecodec.compress_audio(stereo, 8000, quality=20,
                                                                              model=audio))
    (OUT_V3 / "audio_all_silent_16k.aec").write_bytes(aecodec.compress_audio(np.zeros(3000, np.float32), 16000,
                                                                           model=audio))
    t = np.arange(9600) / 24000
    spec = np.fft.rfft(np.random.default_rng(3).standard_normal(len(t)))
    spec[np.fft.rfftfreq(len(t), 1 / 24000) > 5000] = 0  # noise band-limited to 5 kHz, and a tone
    noise = np.fft.irfft(spec, len(t))
    band = np.stack([0.2 * noise / np.abs(noise).max(), 0.3 * np.sin(2 * np.pi * 330 * t)], -1).astype(np.float32)
    (OUT_V3 / "audio_bandwidth_stereo_24k.aec").write_bytes(aecodec.compress_audio(band, 24000, quality=40,
                                                                                 model=audio))
    print(f"wrote seeds to {OUT_V3}")


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
        (OUT / f"{name}.aec").write_bytes(aecodec.compress(img, quality=q, lossless=False))
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
    if "--v3" not in sys.argv[1:]:
        main()
    v3_seeds()
