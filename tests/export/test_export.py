"""A few training steps on tiny generated data, resume, export, ONNX parity, run-time round trip (image,
factorized); the unified exporter's CLI and its equivalence with the exporter it replaced."""
import json

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from aecodec.export.bundle import export_bundle  # noqa: E402
from aecodec.export.parity import ExportParityError, check_parity  # noqa: E402
from aecodec.train import trainer  # noqa: E402
from aecodec.train.checkpoint_io import load_checkpoint  # noqa: E402
from aecodec.train.factorized import FactorizedCodecModel, ModelConfig  # noqa: E402

from tests.conftest import natural_image  # noqa: E402


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    for folder, n in (("train", 4), ("val", 1)):
        (root / folder).mkdir()
        for i in range(n):
            Image.fromarray(natural_image(40 + 8 * i, 56, seed=i)).save(root / folder / f"img{i}.png")
    Image.fromarray(natural_image(20, 20, seed=9)).save(root / "train" / "small.jpg")  # smaller than the crop
    args = ["--data", str(root / "train"), "--val", str(root / "val"), "--out", str(root / "run"), "--channels", "8",
            "--latent", "8", "--batch", "2", "--crop", "32", "--val-every", "2", "--no-progress", "--threads", "1"]
    assert trainer.main(args + ["--steps", "2"]) == 0
    first = torch.load(root / "run" / "last.pt", weights_only=False)
    assert trainer.main(args + ["--steps", "4"]) == 0  # resumes
    return root, args, first


def test_training_checkpoints_and_resumes(tiny_run):
    root, _, first = tiny_run
    ckpt = torch.load(root / "run" / "last.pt", weights_only=False)
    assert first["step"] == 2 and ckpt["step"] == 4
    assert (root / "run" / "best.pt").exists()
    log = (root / "run" / "train.log").read_text()
    assert "resumed from" in log and "val step 4" in log
    assert ckpt["config"]["channels"] == 8


def test_training_is_deterministic(tiny_run, tmp_path):
    root, args, first = tiny_run
    out = [a if a != str(root / "run") else str(tmp_path / "again") for a in args]
    trainer.main(out + ["--steps", "2"])
    again = torch.load(tmp_path / "again" / "last.pt", weights_only=False)
    for k, v in first["model"].items():
        assert torch.equal(v, again["model"][k]), k


def test_export_bundle_parity_and_round_trip(tiny_run, tmp_path):
    root, _, _ = tiny_run
    bundle_dir = tmp_path / "bundle"
    manifest = export_bundle(root / "run" / "last.pt", bundle_dir, name="tiny")
    assert manifest["parity"]["rounded_latent_flips"] == 0
    assert {p.name for p in bundle_dir.iterdir()} == {"encoder.onnx", "decoder.onnx", "tables.npz", "manifest.json",
                                                      "MODEL_CARD.md"}
    assert json.loads((bundle_dir / "manifest.json").read_text())["model_id"] == manifest["model_id"]
    assert manifest["latent_coding"] == "factorized" and manifest["modality"] == "image"
    assert manifest["training"]["steps"] == 4 and manifest["training"]["last_validation"]["step"] == 4
    card = (bundle_dir / "MODEL_CARD.md").read_text()
    assert manifest["model_id"] in card and "L0 (λ = 0.0018)" in card
    import onnx

    for name in ("encoder", "decoder"):
        graph = onnx.load(str(bundle_dir / f"{name}.onnx")).graph
        dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
        assert dims[0] == "batch" and dims[2] == "height" and dims[3] == "width"

    import aecodec

    img = natural_image(37, 53)
    data = aecodec.compress(img, quality=80, model=bundle_dir)
    assert aecodec.info(data)["model_id"] == manifest["model_id"]
    out = aecodec.decompress(data, model=bundle_dir, as_array=True)
    assert out.shape == img.shape
    with pytest.raises(FileExistsError):
        export_bundle(root / "run" / "last.pt", bundle_dir)


def test_parity_check_fails_loudly_on_mismatch(tiny_run, tmp_path):
    root, _, _ = tiny_run
    bundle_dir = tmp_path / "b"
    manifest = export_bundle(root / "run" / "last.pt", bundle_dir)
    model, _ = load_checkpoint(root / "run" / "last.pt")
    with torch.no_grad():
        model.analysis.net[0].weight.add_(0.05)  # the graphs no longer match these weights
    tables = dict(np.load(bundle_dir / "tables.npz"))
    with pytest.raises(ExportParityError, match="parity") as failure:
        check_parity(model, bundle_dir, tables)
    assert failure.value.report["latent_max_abs_diff"] > 1e-3
    assert manifest["complexity"]["decoder_kmac_per_px"] > 0


def test_tables_are_valid_integer_cdfs(tiny_run, tmp_path):
    root, _, _ = tiny_run
    from aecodec.export.tables import build_tables

    model, _ = load_checkpoint(root / "run" / "last.pt")
    t = build_tables(model)
    total = 1 << int(t["precision"])
    for q in (0, 50, 99):
        for c in range(t["lengths"].shape[1]):
            f = t["freqs"][q, c, : t["lengths"][q, c]].astype(np.int64)
            assert f.sum() == total and f.min() >= 1
    assert np.all(np.diff(np.log(t["gains"]).mean(axis=1)) != 0)


def test_edge_profile_complexity():
    from aecodec.export.complexity import complexity
    from aecodec.train.factorized import PROFILES

    macs = complexity(FactorizedCodecModel(PROFILES["edge"]))
    # the figures of the shipped image-edge manifest (counted by the exporter before the restructure)
    assert macs["encoder_kmac_per_px"] == macs["decoder_kmac_per_px"] == 11.544
    assert (macs["encoder_params"], macs["decoder_params"], macs["entropy_params"]) == (478432, 478275, 8160)


def test_model_config_round_trip():
    cfg = ModelConfig(channels=8, latent=4)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_runs_under_torchrun_ddp(tiny_run, tmp_path):
    """The same entry point trains with 2 processes under torchrun (gloo on CPU), launched as on several
    machines (--nnodes/--node-rank/--master-addr/--master-port, here one node), resuming a checkpoint (one
    launch: the tiny run's step-4 checkpoint, written by a single process, is the one it resumes)."""
    import os
    import shutil
    import socket
    import subprocess
    import sys

    root, args, _ = tiny_run
    (tmp_path / "ddp").mkdir()
    shutil.copy(root / "run" / "last.pt", tmp_path / "ddp" / "last.pt")
    before = torch.load(tmp_path / "ddp" / "last.pt", weights_only=False)
    out = [a if a != str(root / "run") else str(tmp_path / "ddp") for a in args]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logs = tmp_path / "rank-logs"  # each rank's own output: the launcher's stderr only says which rank failed
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--node-rank", "0", "--master-addr",
              "127.0.0.1", "--master-port", str(port), "--nproc-per-node", "2", "--redirects", "3", "--log-dir",
              str(logs), "-m", "aecodec.train", *out]
    res = subprocess.run(launch + ["--steps", "6", "--max-minutes", "30"], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    ranks = "\n".join(f"{p.relative_to(logs)}: {p.read_text()[-1500:]}" for p in sorted(logs.rglob("*.log")))
    assert res.returncode == 0, res.stderr[-1000:] + "\n" + ranks
    after = torch.load(tmp_path / "ddp" / "last.pt", weights_only=False)
    assert before["step"] == 4 and after["step"] == 6
    assert any(not torch.equal(v, before["model"][k]) for k, v in after["model"].items())  # both steps trained
    assert "resumed from" in (tmp_path / "ddp" / "train.log").read_text()


def test_subpixel_rewrite_matches_transposed_convolution():
    from aecodec.export.subpixel import subpixel_synthesis
    from aecodec.train.image_base import Synthesis

    torch.manual_seed(0)
    s = Synthesis(12, 6).eval()
    for p in s.parameters():
        p.data.normal_(0, 0.1)
    x = torch.randn(2, 6, 3, 5)
    with torch.no_grad():
        assert torch.allclose(s(x), subpixel_synthesis(s)(x), atol=1e-6)


def test_quality_ladder_interpolates_and_extrapolates():
    from aecodec.export.tables import quality_gains

    log_gains = np.log(np.array([[1.0, 2.0], [2.0, 4.0], [4.0, 8.0]]))
    g = quality_gains(log_gains, 5)
    assert np.allclose(g[0], [1, 2]) and np.allclose(g[-1], [4, 8]) and np.allclose(g[2], [2, 4])
    low = quality_gains(log_gains, 5, low=-1.0)
    assert np.allclose(low[0], [0.5, 1.0]) and np.allclose(low[-1], [4, 8])
    assert np.all(np.diff(low[:, 0]) > 0)
    high = quality_gains(log_gains, 5, high=3.0)
    assert np.allclose(high[0], [1, 2]) and np.allclose(high[-1], [8, 16]) and np.all(np.diff(high[:, 0]) > 0)


def test_bf16_channels_last_training_runs(tiny_run, tmp_path):
    root, args, _ = tiny_run
    out = [a if a != str(root / "run") else str(tmp_path / "bf16") for a in args]
    assert trainer.main(out + ["--steps", "2", "--bf16", "--channels-last"]) == 0
    ckpt = torch.load(tmp_path / "bf16" / "last.pt", weights_only=False)
    assert ckpt["step"] == 2 and all(v.dtype == torch.float32 for v in ckpt["model"].values() if v.is_floating_point())


def test_compiled_training_resumes_an_eager_checkpoint_and_writes_the_same_keys(tiny_run, tmp_path, monkeypatch):
    """--compile compiles a function of the model, so checkpoints stay interchangeable with eager runs.
    (Traced by Dynamo and AOTAutograd as in a real run; the C++ code generation is left out, it takes minutes.)"""
    root, args, first = tiny_run
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn: real_compile(fn, backend="aot_eager"))
    (tmp_path / "compiled").mkdir()
    torch.save(first, tmp_path / "compiled" / "last.pt")
    out = [a if a != str(root / "run") else str(tmp_path / "compiled") for a in args]
    assert trainer.main(out + ["--steps", "3", "--compile"]) == 0
    ckpt = torch.load(tmp_path / "compiled" / "last.pt", weights_only=False)
    assert ckpt["step"] == 3 and list(ckpt["model"]) == list(first["model"])
    assert any(not torch.equal(v, first["model"][k]) for k, v in ckpt["model"].items())  # it trained
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    assert "torch.compile" in (tmp_path / "compiled" / "train.log").read_text()


def test_resume_from_a_slim_weights_only_checkpoint(tiny_run, tmp_path):
    """Shipped resume checkpoints may hold only the weights (no Adam state): training goes on from them."""
    root, args, _ = tiny_run
    full = torch.load(root / "run" / "last.pt", weights_only=False)
    slim = {k: full[k] for k in ("model", "config", "step", "modality")}
    (tmp_path / "slim").mkdir()
    torch.save(slim, tmp_path / "slim" / "last.pt")
    out = [a if a != str(root / "run") else str(tmp_path / "slim") for a in args]
    assert trainer.main(out + ["--steps", "6"]) == 0
    assert torch.load(tmp_path / "slim" / "last.pt", weights_only=False)["step"] == 6
    assert "weights only: fresh optimizer state" in (tmp_path / "slim" / "train.log").read_text()


def test_export_cli_writes_bundle_card_and_weights(tiny_run, tmp_path):
    from aecodec.export.__main__ import main

    root, _, _ = tiny_run
    argv = [str(root / "run" / "last.pt"), "--out", str(tmp_path / "b"), "--name", "tiny", "--low-quality-position",
            "-1", "--high-quality-position", "7.5", "--train-command", "python -m aecodec.train ...", "--weights-out",
            str(tmp_path / "w.pt")]
    assert main(argv) == 0
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["quality_ladder"]["quality_1_position"] == -1.0
    assert manifest["quality_ladder"]["quality_100_position"] == 7.5
    assert "python -m aecodec.train ..." in (tmp_path / "b" / "MODEL_CARD.md").read_text()
    weights = torch.load(tmp_path / "w.pt", weights_only=False)
    assert weights["model_id"] == manifest["model_id"] and "optimizer" not in weights
    assert main(argv) == 1  # exists, no --force


@pytest.mark.skipif(not torch.__version__.startswith("2.13.0"), reason="ONNX bytes depend on the torch version")
def test_exporter_reproduces_the_bundles_of_the_exporter_it_replaced(tmp_path, monkeypatch):
    """Model ids written by the per-modality exporters before the restructure (export/bundle_export.py,
    export/audio_export.py) for these seeded tiny models: the unified exporter writes the same bytes
    (audio: the ConvTranspose1d decoder, the default; the optional sub-pixel decoder has its own pinned id)."""
    from aecodec.export import graphs
    from aecodec.train.audio_model import AudioCodecModel, AudioConfig

    torch.manual_seed(0)
    image = FactorizedCodecModel(ModelConfig(channels=8, latent=8))
    torch.save({"model": image.state_dict(), "config": image.config.to_dict(), "step": 0}, tmp_path / "f.pt")
    torch.manual_seed(0)
    audio = AudioCodecModel(AudioConfig(channels=4, latent=8))
    torch.save({"model": audio.state_dict(), "config": audio.config.to_dict(), "modality": "audio", "step": 0},
               tmp_path / "a.pt")
    assert export_bundle(tmp_path / "f.pt", tmp_path / "bf", low_quality_position=-1.0)["model_id"] \
        == "e8c945098dc8216713ca6b7180d56307"
    assert export_bundle(tmp_path / "a.pt", tmp_path / "ba", low_quality_position=-0.5,
                         high_quality_position=5.5)["model_id"] == "e32115d9f8dcf625b0af8ee8e23e0b4f"
    monkeypatch.setattr(graphs, "AUDIO_SUBPIXEL", True)
    assert export_bundle(tmp_path / "a.pt", tmp_path / "ba-subpixel", low_quality_position=-0.5,
                         high_quality_position=5.5)["model_id"] == "06718da0b3b1a61308871e9ee9a0d8e2"


def test_rounding_flips_count_float_noise_at_a_boundary_as_a_tie_and_nothing_else():
    from aecodec.export.parity import rounding_flips

    a = np.array([230.50010, 0.50005, 3.4, 230.53], np.float32)
    b = np.array([230.49998, 0.49999, 3.6, 230.47], np.float32)
    # 230.5001 / 230.49998: |Δ| 6e-7 of the value (a tie at that size); 0.50005 / 0.49999: within the absolute
    # band; 3.4 / 3.6 and 230.53 / 230.47 are real flips
    assert rounding_flips(a, b) == (2, 2)
