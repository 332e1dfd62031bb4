"""Real-world inputs before / after: graphics and tiny images, photos, CMYK, 16-bit, animations, audio
silence, near-silence, level, band-limited sources; CLI usage and the Pillow plugin. No silent damage is the goal.

Every input is generated here (graphics drawn with Pillow, photos cropped from Kodak, audio from
../shared/data/audio/test plus synthetic silence, noise and bird-like chirps) and coded by two aecodec
run times, each in its own process: `--before DIR` (a folder holding an older `aecodec` package, e.g.
`git archive 5441fc5 codec | tar -x -C /tmp/before && mv /tmp/before/codec /tmp/before/aecodec`) and
the installed one. Prints Markdown tables; JSON and the inputs go to bench-out/real_world/.

    python benchmarks/real_world.py --before /tmp/before [--only audio]
    python benchmarks/real_world.py --policy      # learned vs exact on photo crops and graphics, vs the floor
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
KODAK = ROOT.parent / "shared" / "data" / "kodak"
AUDIO_TEST = ROOT.parent / "shared" / "data" / "audio" / "test"
TEXT = "The quick brown fox jumps over the lazy dog 0123456789"


# ---------------------------------------------------------------------------------------------- inputs

def _natural(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([128 + 90 * np.sin(xx / w * 3.1 + c) * np.cos(yy / h * 2.3 - c) for c in range(channels)], -1)
    img[(xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (min(h, w) / 4) ** 2] += 40
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def _text_page(w: int, h: int, size: int, noise: float = 0.0, seed: int = 0):
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    im = Image.new("L", (w, h), 255)
    d = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=size)
    for y in range(4, h - size, int(size * 1.5)):
        d.text((6, y), TEXT[int(rng.integers(0, 10)):], fill=0, font=font)
    a = (np.asarray(im) > 128).astype(np.uint8) * 255
    if noise:
        a = np.where(rng.random(a.shape) < noise, 255 - a, a).astype(np.uint8)
    return Image.fromarray(a).convert("1")


def graphics_set() -> dict:
    """name -> (PIL image, file format): the tiny images and graphics the issue lists, and a few more."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(1)
    out: dict = {}
    icon6 = Image.new("RGB", (6, 6), (255, 255, 255))
    ImageDraw.Draw(icon6).rectangle([1, 1, 4, 4], outline=(200, 0, 0))
    out["tiny 6x6 icon (BMP)"] = (icon6, "BMP")
    out["tiny 6x6 photo crop (BMP)"] = (Image.fromarray(_natural(6, 6, 1)), "BMP")
    p7 = Image.fromarray(rng.integers(0, 4, (7, 7), dtype=np.uint8), "P")
    p7.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255])
    out["palette 7x7 (PNG)"] = (p7, "PNG")
    icon = Image.new("P", (32, 32), 0)
    icon.putpalette([int(v) for v in rng.integers(0, 256, 48)])
    d = ImageDraw.Draw(icon)
    for _ in range(12):
        d.ellipse([int(rng.integers(0, 16)), int(rng.integers(0, 16)), int(rng.integers(16, 32)),
                   int(rng.integers(16, 32))], fill=int(rng.integers(1, 16)))
    out["palette icon 32x32 (PNG)"] = (icon, "PNG")
    out["1-bit 100x100 (TIFF)"] = (_text_page(100, 100, 11), "TIFF")
    out["fax scan 460x307 (TIFF)"] = (_text_page(460, 307, 13, noise=0.01), "TIFF")
    two = Image.new("RGB", (300, 300), (250, 250, 240))
    d = ImageDraw.Draw(two)
    for i in range(8):
        d.rectangle([i * 35, i * 30, i * 35 + 40, i * 30 + 60], fill=(20, 40, 120))
    d.ellipse([100, 100, 250, 250], fill=(20, 40, 120))
    out["2-colour 300x300 (PNG)"] = (two, "PNG")
    chart = Image.new("RGB", (640, 480), "white")
    d = ImageDraw.Draw(chart)
    for x in range(60, 640, 60):
        d.line([(x, 20), (x, 440)], fill=(220, 220, 220))
    for k, col in enumerate([(200, 30, 30), (30, 120, 200), (30, 160, 60)]):
        d.line([(60 + i * 10, 240 + int(120 * np.sin(i / 7 + k))) for i in range(58)], fill=col, width=2)
    d.text((70, 450), "Figure 1: " + TEXT, fill="black")
    out["chart 640x480 (PNG)"] = (chart, "PNG")
    shot = Image.new("RGB", (800, 600), (245, 245, 245))
    d = ImageDraw.Draw(shot)
    d.rectangle([0, 0, 800, 40], fill=(40, 60, 90))
    d.text((12, 10), "File  Edit  View  Help", fill="white", font=ImageFont.load_default(size=16))
    font = ImageFont.load_default(size=14)
    for i in range(30):
        d.text((20, 60 + 18 * i), f"{i:3d}  " + TEXT, fill=(20, 20, 20), font=font)
    out["screenshot 800x600, anti-aliased text (PNG)"] = (shot, "PNG")
    logo = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    d = ImageDraw.Draw(logo)
    d.ellipse([20, 20, 180, 180], fill=(230, 80, 20, 255))
    d.rectangle([70, 70, 130, 130], fill=(255, 255, 255, 200))
    out["logo RGBA 200x200 (PNG)"] = (logo, "PNG")
    art = Image.fromarray((rng.integers(0, 16, (64, 64), dtype=np.uint8) * 16)).resize((256, 256), Image.NEAREST)
    out["pixel art 256x256 (PNG)"] = (art.convert("RGB"), "PNG")
    steps = Image.fromarray(np.tile((np.arange(256) // 32 * 32).astype(np.uint8), (256, 1)))
    ImageDraw.Draw(steps).text((10, 120), TEXT[:30], fill=255)
    out["grey steps + text 256x256 (PNG)"] = (steps, "PNG")
    return out


def photo_set() -> dict:
    from PIL import Image

    out: dict = {"icon-sized photo RGBA 16x16 (PNG)": (Image.fromarray(_natural(16, 16, 5, 4), "RGBA"), "PNG")}
    for name in ("kodim05", "kodim23"):
        im = Image.open(KODAK / f"{name}.png").convert("RGB")
        out[f"{name} 768x512 (PNG)"] = (im, "PNG")
        for s in (32, 64, 256):
            out[f"{name} crop {s}x{s} (PNG)"] = (im.crop((200, 100, 200 + s, 100 + s)), "PNG")
    return out


def _png16(arr: np.ndarray, colour_type: int) -> bytes:
    h, w = arr.shape[:2]
    raw = b"".join(b"\0" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def write_inputs(folder: Path) -> list[dict]:
    """Write every input file and its 8-bit reference pixels / samples; returns the case list."""
    from PIL import Image, ImageCms

    sys.path.insert(0, str(ROOT))
    from tests.image.profiles import cmyk_profile, tiff16

    folder.mkdir(parents=True, exist_ok=True)
    cases: list[dict] = []

    def add(name: str, cls: str, data: bytes, suffix: str, ref: np.ndarray | None, **extra) -> None:
        stem = hashlib.sha1(name.encode()).hexdigest()[:10]
        path = folder / f"{stem}{suffix}"
        path.write_bytes(data)
        if ref is not None:
            np.save(folder / f"{stem}.npy", ref)
        cases.append({"name": name, "class": cls, "path": str(path), "ref": str(folder / f"{stem}.npy")
                      if ref is not None else None, **extra})

    def encoded(img, fmt: str, **kw) -> bytes:
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        return buf.getvalue()

    for name, (img, fmt) in graphics_set().items():
        ref = np.asarray(img.convert("RGBA" if img.mode in ("RGBA", "PA") else "RGB" if img.mode not in ("1", "L")
                                    else "L"))
        add(name, "tiny / graphics", encoded(img, fmt), "." + fmt.lower().replace("tiff", "tif"), ref)
    for name, (img, fmt) in photo_set().items():
        add(name, "photo", encoded(img, fmt), ".png", np.asarray(img))
    kodak = Image.open(KODAK / "kodim23.png").convert("RGB").crop((128, 64, 512, 320))
    cmyk = kodak.convert("CMYK")
    icc = cmyk_profile()
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    managed = ImageCms.profileToProfile(cmyk, ImageCms.ImageCmsProfile(io.BytesIO(icc)), srgb, outputMode="RGB")
    add("CMYK JPEG with ICC profile 384x256", "CMYK", encoded(cmyk, "JPEG", quality=95, icc_profile=icc), ".jpg",
        np.asarray(managed))
    add("CMYK JPEG without profile 384x256", "CMYK", encoded(cmyk, "JPEG", quality=95), ".jpg",
        np.asarray(cmyk.convert("RGB")))
    rng = np.random.default_rng(7)
    base = np.asarray(kodak.crop((0, 0, 128, 96))).astype(np.uint16) * 257 + rng.integers(0, 256, (96, 128, 3),
                                                                                           dtype=np.uint16)
    alpha = np.full((96, 128, 1), 65535, np.uint16)
    grey = base[:, :, 1]
    variants = {"16-bit grey PNG": (_png16(grey, 0), ".png", grey), "16-bit grey+alpha PNG":
                (_png16(np.stack([grey, alpha[:, :, 0]], -1), 4), ".png", np.stack([grey, alpha[:, :, 0]], -1)),
                "16-bit RGB PNG": (_png16(base, 2), ".png", base),
                "16-bit RGBA PNG": (_png16(np.concatenate([base, alpha], -1), 6), ".png",
                                    np.concatenate([base, alpha], -1)),
                "16-bit grey TIFF": (encoded(Image.fromarray(grey), "TIFF"), ".tif", grey),
                "16-bit RGB TIFF": (tiff16(base), ".tif", base)}
    for name, (data, suffix, samples) in variants.items():
        add(name + " 128x96", "16-bit", data, suffix, (samples >> 8).astype(np.uint8))
    frames = [Image.fromarray(_natural(48, 64, seed=i)) for i in range(5)]
    for fmt, suffix in (("PNG", ".png"), ("WEBP", ".webp"), ("GIF", ".gif"), ("TIFF", ".tif")):
        label = {"PNG": "APNG", "WEBP": "animated WebP", "GIF": "animated GIF", "TIFF": "multi-page TIFF"}[fmt]
        add(f"{label}, 5 frames", "animation", encoded(frames[0], fmt, save_all=True, append_images=frames[1:]),
            suffix, None)
    import soundfile as sf

    def wav(name: str, cls: str, samples: np.ndarray, rate: int, **extra) -> None:
        buf = io.BytesIO()
        sf.write(buf, samples, rate, format="WAV", subtype="FLOAT")
        add(name, cls, buf.getvalue(), ".wav", samples.astype(np.float32), rate=rate, **extra)

    wav("digital silence 2 s", "audio silence", np.zeros(48_000, np.float32), 24_000)
    jfk, rate = sf.read(AUDIO_TEST / "speech_en_m_jfk_a.flac", dtype="float32")
    gap = np.concatenate([jfk[: 2 * rate], np.zeros(rate, np.float32), jfk[2 * rate :]])
    wav("speech with 1 s of digital silence", "audio silence", gap, rate)
    noise = np.random.default_rng(0)
    for level in (-90, -70):
        wav(f"near-silent noise {level} dBFS", "audio near-silence",
            (noise.normal(0, 10 ** (level / 20), 48_000)).astype(np.float32), 24_000)
    stereo = np.stack([jfk[: 3 * rate], (noise.normal(0, 1e-4, 3 * rate)).astype(np.float32)], -1)
    wav("stereo, one channel near-silent (-80 dBFS)", "audio near-silence", stereo, rate)
    t = np.arange(4 * 44_100) / 44_100
    chirps = np.zeros_like(t)
    for k, start in enumerate(np.arange(0, 3.6, 0.45)):
        seg = (t >= start) & (t < start + 0.3)
        tt = t[seg] - start
        f0 = 3500 + 500 * (k % 3)
        chirps[seg] = np.sin(2 * np.pi * (f0 * tt + 4000 * tt**2 + 300 * np.sin(2 * np.pi * 30 * tt) / 30)) \
            * np.sin(np.pi * tt / 0.3) ** 2
    wav("bird-like chirps 3.5-7 kHz, 44.1 kHz", "audio high pitch", (0.4 * chirps).astype(np.float32), 44_100)
    import soxr

    libri, rate = sf.read(AUDIO_TEST / "speech_en_f_libri198_a.flac", dtype="float32")  # a 16 kHz source
    wav("16 kHz-source speech in a 48 kHz file", "audio band-limited",
        np.clip(soxr.resample(libri, rate, 48_000, quality="VHQ"), -1, 1).astype(np.float32), 48_000, band_hz=8000)
    spec = np.fft.rfft(jfk.astype(np.float64))
    freqs = np.fft.rfftfreq(len(jfk), 1 / rate)
    spec[(freqs < 300) | (freqs > 3400)] = 0
    wav("telephone-band speech (0.3-3.4 kHz), 24 kHz", "audio band-limited",
        np.fft.irfft(spec, len(jfk)).astype(np.float32), rate, band_hz=3400)
    for path in sorted(AUDIO_TEST.glob("*.flac")):
        samples, rate = sf.read(path, dtype="float32")
        cls = "audio speech" if path.name.startswith("speech") else "audio music"
        add(path.stem, cls, path.read_bytes(), ".flac", samples, rate=rate)
    return cases


# ---------------------------------------------------------------------------------------------- worker

def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else float(10 * np.log10(255**2 / mse))


def _db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.asarray(x, np.float64) ** 2) + 1e-30))


def _silent_runs(x: np.ndarray, min_run: int) -> np.ndarray:
    """Mask of the samples in runs of at least min_run exact zeros (every channel counted on its own)."""
    mask = np.zeros(x.shape, bool)
    for ch in range(1 if x.ndim == 1 else x.shape[1]):
        col = x if x.ndim == 1 else x[:, ch]
        edges = np.diff(np.concatenate([[0], (col == 0).astype(np.int8), [0]]))
        for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            if e - s >= min_run:
                (mask if x.ndim == 1 else mask[:, ch])[s:e] = True
    return mask


def worker(cases_json: Path, out_json: Path, tmp: Path) -> None:
    """Code every case with the importable aecodec (the CLI's path: api.compress_to), record what came back."""
    import warnings

    import aecodec
    from aecodec.api import compress_to

    tmp.mkdir(parents=True, exist_ok=True)
    results = []
    for case in json.loads(cases_json.read_text()):
        out = tmp / "x.aec"
        rec: dict = {"name": case["name"]}
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                compress_to(case["path"], str(out), overwrite=True)
            except Exception as e:  # noqa: BLE001  (what the user would see)
                rec["message"] = f"error: {e}"
        rec["seconds"] = time.perf_counter() - t0
        notes = [str(w.message) for w in caught if type(w.category).__name__ != "DeprecationWarning"
                 and "notice" in w.category.__name__.lower()]
        if notes:
            rec["message"] = "notice: " + "; ".join(n.split(": ", 1)[-1] for n in notes)
        if "message" in rec and rec["message"].startswith("error"):
            results.append(rec)
            continue
        data = out.read_bytes()
        facts = aecodec.info(data)
        rec.update(bytes=len(data), sha=hashlib.sha256(data).hexdigest()[:16], version=facts["format_version"],
                   coding=facts.get("coding", "factorized" if facts["modality"] == "image" else "audio"))
        ref = np.load(case["ref"]) if case["ref"] else None
        if facts["modality"] == "image":
            back = aecodec.decompress(data)
            rec["bpp"] = 8 * len(data) / (facts["width"] * facts["height"])
            if ref is not None:
                arr = np.asarray(back.convert("RGBA" if ref.ndim == 3 and ref.shape[2] == 4 else
                                              "LA" if ref.ndim == 3 and ref.shape[2] == 2 else
                                              "L" if ref.ndim == 2 else "RGB"))
                colours = ref.shape[2] - 1 if ref.ndim == 3 and ref.shape[2] in (2, 4) else None
                rec["psnr"] = _psnr(arr[..., :colours], ref[..., :colours]) if colours else _psnr(arr, ref)
                rec["icc"] = "sRGB" if back.info.get("icc_profile") and b"sRGB" in back.info["icc_profile"] else \
                    ("kept" if back.info.get("icc_profile") else "none")
        else:
            y, rate = aecodec.decompress_audio(data)
            x = ref
            rec["kbps"] = facts["kbps"]
            rec["duration"] = len(x) / rate
            rec["level_db"] = _db(y) - _db(x)
            rec["mean_error"] = float(np.mean(y.astype(np.float64) - x))
            rec["peak"] = float(np.abs(y).max())
            if x.ndim == 2:
                rec["channel_level_db"] = [_db(y[:, c]) - _db(x[:, c]) for c in range(x.shape[1])]
            rec["all_zero"] = not np.any(x)
            silent = _silent_runs(x, rate // 100)  # digital silence of 10 ms or more in the input
            if silent.any():
                rec["silence_peak"] = float(np.abs(y[silent]).max())
            from aecodec.metrics import si_sdr

            if x.ndim == 1 and _db(x) > -60:
                rec["si_sdr"] = si_sdr(y, x)
            if "band_hz" in case:  # energy more than 500 Hz above the input's band, re the whole output
                from aecodec.metrics import mel_distance

                power = np.abs(np.fft.rfft(y.astype(np.float64))) ** 2
                above = power[np.fft.rfftfreq(len(y), 1 / rate) > case["band_hz"] + 500].sum() / power.sum()
                rec["above_band_db"] = float(10 * np.log10(above + 1e-30))
                rec["mel"] = mel_distance(y, x, rate)
        results.append(rec)
    out_json.write_text(json.dumps(results, indent=1))


CLI_CHECKS = [
    ("-b on an image", ["compress", "{png}", "-b", "12", "-o", "{tmp}/a.aec"]),
    ("-b with -q", ["compress", "{wav}", "-b", "12", "-q", "40", "-o", "{tmp}/b.aec"]),
    ("-b 0.1 (below reach)", ["compress", "{wav}", "-b", "0.1", "-o", "{tmp}/c.aec"]),
    ("-b 1000 (above reach)", ["compress", "{wav}", "-b", "1000", "-o", "{tmp}/d.aec"]),
    ("compress x.aec", ["compress", "{aec}", "-o", "{tmp}/e.aec"]),
    ("-o into an unwritable folder", ["compress", "{png}", "-o", "/sys/f.aec"]),
    ("WAV on stdin", ["compress", "-", "-o", "{tmp}/g.aec", "<{wav}"]),
]


def cli_checks(env: dict, folder: Path) -> list[dict]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    png = folder / "p.png"
    Image.fromarray(_natural(40, 60)).save(png)
    wav = next(AUDIO_TEST.glob("speech_en_m_jfk_a.flac"))
    aec = folder / "p.aec"
    subprocess.run([sys.executable, "-m", "aecodec", "compress", str(png), "-o", str(aec), "-f"], env=env,
                   capture_output=True, check=True)
    rows = []
    for label, args in CLI_CHECKS:
        args = [a.format(png=png, wav=wav, aec=aec, tmp=folder) for a in args]
        stdin = None
        if args[-1].startswith("<"):
            stdin = Path(args.pop()[1:]).read_bytes()
        for p in folder.glob("[a-g].aec"):
            p.unlink()
        res = subprocess.run([sys.executable, "-m", "aecodec", *args], env=env, input=stdin, capture_output=True,
                             cwd=folder)
        lines = [ln for ln in res.stderr.decode().splitlines() if not ln.startswith(("usage:", "               "))]
        text = " / ".join(lines).replace(str(folder) + "/", "").replace(str(AUDIO_TEST) + "/", "")
        rows.append({"check": label, "exit": res.returncode, "stderr": text[:230]})
    return rows


def plugin_checks() -> list[dict]:
    """Pillow plugin behaviour, run in the worker's process."""
    import aecodec
    from PIL import Image, ImageCms

    rows = []
    img = Image.fromarray(_natural(20, 20))
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    img.save(buf, "AEC", icc_profile=icc)
    data = buf.getvalue()
    for label, bad in (("truncated .aec", data[:-5]), ("corrupt .aec (bit flip)", data[:30] + bytes([data[30] ^ 1])
                                                      + data[31:])):
        try:
            Image.open(io.BytesIO(bad))
            rows.append({"check": f"Image.open({label})", "result": "opened"})
        except Exception as e:  # noqa: BLE001
            rows.append({"check": f"Image.open({label})", "result": type(e).__name__})
    with Image.open(io.BytesIO(data)) as im:
        rows.append({"check": "icc_profile in .info before load()", "result": str("icc_profile" in im.info)})
    assert aecodec
    return rows


# ---------------------------------------------------------------------------------------------- report

def _fmt_image(r: dict, cls: str = "") -> str:
    if "bpp" not in r:
        return r.get("message", "")
    text = f"{r['bpp']:.2f} bpp"
    if "psnr" in r:
        text += ", exact" if r["psnr"] >= 99 else f", {r['psnr']:.1f} dB"
    if r.get("message"):
        text += f"; {r['message']}"
    elif cls in ("CMYK", "16-bit", "animation"):
        text += "; no message"
    return text


def _fmt_audio(r: dict, cls: str = "") -> str:
    if "kbps" not in r:
        return r.get("message", "")
    parts = [f"{r['kbps']:.2f} kbps"]
    if r.get("all_zero"):
        parts.append("exact zeros" if r["peak"] == 0 else f"peak {r['peak']:.1e}, mean {r['mean_error']:+.1e}")
    else:
        parts.append(f"level {r['level_db']:+.2f} dB")
        if "channel_level_db" in r:
            parts.append("channels " + " / ".join(f"{v:+.1f}" for v in r["channel_level_db"]) + " dB")
        parts.append(f"mean err {r['mean_error']:+.1e}")
        if "silence_peak" in r:
            parts.append("silence " + ("exact zeros" if r["silence_peak"] == 0 else f"peak {r['silence_peak']:.1e}"))
        if "above_band_db" in r:
            parts.append(f"above its band {r['above_band_db']:.0f} dB, SI-SDR {r['si_sdr']:.2f} dB, mel {r['mel']:.3f}")
    if r.get("message"):
        parts.append(r["message"])
    return ", ".join(parts)


def report(cases: list[dict], before: list[dict], after: list[dict], cli: dict, plugin: dict) -> str:
    b = {r["name"]: r for r in before}
    a = {r["name"]: r for r in after}
    lines = ["| input | class | before | after |", "|---|---|---|---|"]
    for case in cases:
        if case["class"] in ("audio speech", "audio music"):
            continue
        fmt = _fmt_audio if case["class"].startswith("audio") else _fmt_image
        rb, ra = b[case["name"]], a[case["name"]]
        after_text = fmt(ra, case["class"])
        if case["class"] == "photo":
            after_text += " (same bytes)" if rb.get("sha") == ra.get("sha") else " (CHANGED)"
        lines.append(f"| {case['name']} | {case['class']} | {fmt(rb, case['class'])} | {after_text} |")
    for cls in ("audio speech", "audio music"):
        names = [c["name"] for c in cases if c["class"] == cls]
        if not names:
            continue
        for side_name, side in (("before", b), ("after", a)):
            rs = [side[n] for n in names]
            if side_name == "before":
                row = [f"| audio/test {cls.split()[1]} ({len(rs)} clips) | {cls} | "]
            lv = [r["level_db"] for r in rs]
            speed = sum(r["duration"] for r in rs) / sum(r["seconds"] for r in rs)
            text = (f"level {np.mean(lv):+.2f} dB (worst {max(lv, key=abs):+.2f}), "
                    f"mean err max {max(abs(r['mean_error']) for r in rs):.1e}, "
                    f"SI-SDR {np.mean([r['si_sdr'] for r in rs]):.2f} dB, {np.mean([r['kbps'] for r in rs]):.2f} kbps, "
                    f"encode {speed:.0f}x real time")
            row.append(text + (" | " if side_name == "before" else " |"))
        lines.append("".join(row))
    lines += ["", "| CLI | before: exit, stderr | after: exit, stderr |", "|---|---|---|"]
    for rb, ra in zip(cli["before"], cli["after"]):
        lines.append(f"| `{rb['check']}` | {rb['exit']}: {rb['stderr'] or '(nothing)'} | "
                     f"{ra['exit']}: {ra['stderr'] or '(nothing)'} |")
    lines += ["", "| Pillow plugin | before | after |", "|---|---|---|"]
    for rb, ra in zip(plugin["before"], plugin["after"]):
        lines.append(f"| {rb['check']} | {rb['result']} | {ra['result']} |")
    return "\n".join(lines)


def policy_table() -> str:
    """The measurement behind the lossless policy: learned vs exact on photo crops and on the graphics set,
    against the quality floor (forced codings, so the table shows both sides of every decision)."""
    import aecodec
    from aecodec.image import lossless
    from PIL import Image

    photos = [np.asarray(Image.open(KODAK / f"kodim{i:02d}.png").convert("RGB")) for i in (1, 5, 13, 15, 19, 23)]
    lines = ["| input | quality | learned bpp | learned PSNR mean / min | exact bpp | floor | exact chosen |",
             "|---|---|---|---|---|---|---|"]

    def row(name: str, arrays: list[np.ndarray], q: int) -> str:
        bpp, ps, ex, chosen = [], [], [], 0
        for a in arrays:
            n = a.shape[0] * a.shape[1]
            learned = aecodec.compress(a, quality=q, lossless=False)
            back = aecodec.decompress(learned, as_array=True).reshape(a.shape)
            bpp.append(8 * len(learned) / n)
            ps.append(_psnr(back, a))
            ex.append(8 * len(aecodec.compress(a, quality=q, lossless=True)) / n)
            chosen += aecodec.info(aecodec.compress(a, quality=q))["coding"].startswith("lossless")
        return (f"| {name} | {q} | {np.mean(bpp):.2f} | {np.mean(ps):.1f} / {np.min(ps):.1f} | {np.mean(ex):.2f} | "
                f"{lossless.quality_floor(q):.1f} | {chosen}/{len(arrays)} |")

    for size in (6, 16, 32, 64):
        crops = [np.ascontiguousarray(im[y:y + size, x:x + size]) for im in photos for y, x in ((100, 100), (300, 500))]
        for q in (1, 75, 100):
            lines.append(row(f"Kodak crops {size}x{size} (12)", crops, q))
    for name, (img, _) in graphics_set().items():
        arr = np.asarray(img.convert("RGBA" if img.mode in ("RGBA", "PA") else "L" if img.mode in ("1", "L")
                                     else "RGB"))
        for q in (1, 75):
            lines.append(row(name, [arr], q))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=False, help="folder holding the older `aecodec` package to compare with")
    ap.add_argument("--out-dir", default=str(ROOT / "bench-out" / "real_world"))
    ap.add_argument("--worker", nargs=3, metavar=("CASES", "OUT", "TMP"), help=argparse.SUPPRESS)
    ap.add_argument("--plugin-worker", metavar="OUT", help=argparse.SUPPRESS)
    ap.add_argument("--policy", action="store_true", help="only the measurement behind the lossless policy")
    ap.add_argument("--only", metavar="CLASS", help="only the inputs whose class starts with this (e.g. audio)")
    args = ap.parse_args(argv)
    if args.policy:
        print(policy_table())
        return 0
    if args.worker:
        worker(Path(args.worker[0]), Path(args.worker[1]), Path(args.worker[2]))
        return 0
    if args.plugin_worker:
        Path(args.plugin_worker).write_text(json.dumps(plugin_checks()))
        return 0
    out = Path(args.out_dir).resolve()  # the workers run elsewhere
    t0 = time.time()
    cases = write_inputs(out / "inputs")
    if args.only:
        cases = [c for c in cases if c["class"].startswith(args.only)]
    (out / "cases.json").write_text(json.dumps(cases, indent=1))
    sides = {"after": dict(os.environ)}
    if args.before:
        sides["before"] = {**os.environ, "PYTHONPATH": str(Path(args.before).resolve())}
    results, cli, plugin = {}, {}, {}
    for side, env in sides.items():
        env = {**env, "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "2")}
        subprocess.run([sys.executable, __file__, "--worker", str(out / "cases.json"), str(out / f"{side}.json"),
                        str(out / f"tmp-{side}")], env=env, check=True, cwd=out)
        subprocess.run([sys.executable, __file__, "--plugin-worker", str(out / f"plugin-{side}.json")], env=env,
                       check=True, cwd=out)
        results[side] = json.loads((out / f"{side}.json").read_text())
        plugin[side] = json.loads((out / f"plugin-{side}.json").read_text())
        cli[side] = cli_checks(env, out / f"cli-{side}")
    if "before" not in results:
        results["before"], cli["before"], plugin["before"] = results["after"], cli["after"], plugin["after"]
    (out / "cli.json").write_text(json.dumps(cli, indent=1))
    text = report(cases, results["before"], results["after"], cli, plugin).replace(str(out / "inputs") + "/", "")
    (out / "report.md").write_text(text + "\n")
    print(text)
    print(f"\n{time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
