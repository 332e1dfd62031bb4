"""Smoke tests: each benchmark runs end to end on tiny inputs and writes valid JSON (figures not checked)."""
import json
import math
import sys
from pathlib import Path

import pytest
from PIL import Image

from .conftest import natural_image

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
pytest.importorskip("scipy")
pytest.importorskip("matplotlib")


@pytest.fixture(autouse=True)
def _bench_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))


def test_rd_image_smoke(tmp_path):
    import rd_image

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(2):
        Image.fromarray(natural_image(168, 176, seed=i)).save(imgs / f"im{i}.png")
    out = tmp_path / "out"
    assert rd_image.main(["--images", str(imgs), "--qualities", "20", "80", "--peers", "jpeg", "webp",
                          "--crop-image", "im0.png", "--out-dir", str(out)]) == 0
    report = json.loads((out / "rd_image.json").read_text())
    assert {"aecodec", "jpeg", "webp"} <= set(report["curves"])
    assert len(report["rows"]) == 2 * 2 + 2 * (12 + 12)
    assert "bmshj2018" in report["reference_curves"]["source"]
    assert all(r["ms_ssim"] is not None for r in report["rows"])
    ratios = report["bd_vs_peers"]["webp"]["rate_ratio_by_psnr"]
    assert ratios and all(v > 0 for v in ratios.values())
    for name in ("rd_psnr.png", "rd_msssim.png", "crops.png"):
        assert (out / name).stat().st_size > 1000


def test_throughput_smoke(tmp_path):
    import throughput

    out = tmp_path / "out"
    assert throughput.main(["--sizes", "64x48", "--repeats", "1", "--out-dir", str(out)]) == 0
    report = json.loads((out / "throughput.json").read_text())
    assert "onnxruntime-cpu" in report["results"]["backends"]
    row = report["results"]["backends"]["onnxruntime-cpu"]["64x48"]
    assert row["encode_mp_per_s"] > 0 and row["decode_mp_per_s"] > 0
    assert set(row["stages_ms"]) == {"preprocess", "encoder_net", "entropy_encode", "entropy_decode", "decoder_net",
                                     "postprocess"}
    assert "onnxruntime-cuda" in report["results"]["unavailable_backends"] or "onnxruntime-cuda" in report["results"]["backends"]
    assert "jpeg" in report["results"]["peers"]["64x48"]
    assert (out / "throughput.png").exists()
    assert sys.modules.get("throughput") is throughput


def test_rd_audio_smoke(tmp_path):
    sf = pytest.importorskip("soundfile")
    import numpy as np
    import rd_audio

    clips = tmp_path / "clips"
    clips.mkdir()
    t = np.arange(24000) / 24000
    for name in ("speech_a.flac", "music_b.flac"):
        sf.write(clips / name, (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 24000)
    out = tmp_path / "out"
    assert rd_audio.main(["--clips", str(clips), "--targets", "12", "--out-dir", str(out)]) == 0
    report = json.loads((out / "rd_audio.json").read_text())
    assert {s["class"] for s in report["summary"]} == {"speech", "music"}
    assert all(r["kbps"] > 0 for r in report["rows"])


def test_rdo_lambda_smoke(tmp_path):
    import rdo_lambda

    import aecodec.coding.latent as latent

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.fromarray(natural_image(128, 160, seed=3)).save(imgs / "im.png")
    shipped = latent.RDO_LAMBDA
    assert rdo_lambda.main(["--images", str(imgs), "--lambdas", "32", "--qualities", "20", "50", "90",
                            "--out-dir", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "rdo_lambda.json").read_text())
    assert set(report["curves"]) == {"plain", "32.0"} and len(report["curves"]["plain"]) == 3
    assert math.isfinite(report["bd_rate_percent"]["32.0"])
    assert latent.RDO_LAMBDA == shipped  # restored


def test_refine_steps_smoke(tmp_path, capsys):
    import refine_steps

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.fromarray(natural_image(96, 128, seed=4)).save(imgs / "im.png")
    assert refine_steps.main(["--images", str(imgs), "--size", "96", "--steps", "0", "3",
                              "--qualities", "20", "50", "90"]) == 0
    out = capsys.readouterr().out
    assert "3 steps vs 0: mean BD-rate" in out and "nan" not in out
