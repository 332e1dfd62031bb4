"""A few training steps on tiny generated data, resume, export, ONNX parity, run-time round trip."""
import json

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from aecodec.export.bundle_export import check_parity, export_bundle, load_checkpoint  # noqa: E402
from aecodec.train import trainer  # noqa: E402
from aecodec.train.model import FactorizedCodecModel, ModelConfig  # noqa: E402

from .conftest import natural_image  # noqa: E402


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
    assert {p.name for p in bundle_dir.iterdir()} >= {"encoder.onnx", "decoder.onnx", "tables.npz", "manifest.json"}
    assert json.loads((bundle_dir / "manifest.json").read_text())["model_id"] == manifest["model_id"]
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
    from aecodec.export.bundle_export import ExportParityError

    root, _, _ = tiny_run
    bundle_dir = tmp_path / "b"
    manifest = export_bundle(root / "run" / "last.pt", bundle_dir)
    model, _ = load_checkpoint(root / "run" / "last.pt")
    with torch.no_grad():
        model.analysis.net[0].weight.add_(0.05)  # the graphs no longer match these weights
    gains = np.load(bundle_dir / "tables.npz")["gains"]
    with pytest.raises(ExportParityError, match="parity"):
        check_parity(model, bundle_dir, gains)
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
    from aecodec.train.model import PROFILES, count_macs_per_pixel

    macs = count_macs_per_pixel(FactorizedCodecModel(PROFILES["edge"]))
    assert macs["decoder_kmac_per_px"] <= 25


def test_model_config_round_trip():
    cfg = ModelConfig(channels=8, latent=4)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_runs_under_torchrun_ddp(tiny_run, tmp_path):
    """The same entry point trains with 2 processes under torchrun (gloo on CPU)."""
    import subprocess
    import sys

    root, args, _ = tiny_run
    out = [a if a != str(root / "run") else str(tmp_path / "ddp") for a in args]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "aecodec.train", *out, "--steps", "3"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    assert torch.load(tmp_path / "ddp" / "last.pt", weights_only=False)["step"] == 3


def test_subpixel_rewrite_matches_transposed_convolution():
    from aecodec.export.subpixel import subpixel_synthesis
    from aecodec.train.model import Synthesis

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
