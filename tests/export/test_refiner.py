"""refiner.onnx: g_s's gradient as a graph of its own, exact against autograd, outside the model id."""
import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from aecodec.export import refiner  # noqa: E402
from aecodec.export.tables import quality_gains  # noqa: E402
from aecodec.models.bundle import compute_model_id  # noqa: E402
from aecodec.train.checkpoint_io import load_checkpoint  # noqa: E402

from tests.conftest import tiny_hyperprior_model  # noqa: E402


def test_the_written_out_backward_pass_is_autograds():
    model = tiny_hyperprior_model(seed=3)
    with torch.no_grad():  # GDN away from its initial identity-like state, so its cross terms matter
        for layer in model.synthesis.net:
            if hasattr(layer, "gamma"):
                layer.gamma.uniform_(0.1, 0.6)
                layer.beta.uniform_(0.5, 1.5)
    gradient = refiner.SynthesisGradient(model.synthesis)
    latent = torch.randn(2, model.config.latent, 3, 5) * 3
    target = torch.rand(2, 3, 48, 80)
    y = latent.clone().requires_grad_(True)
    error = ((model.synthesis(y) - target) ** 2).sum()
    (expected,) = torch.autograd.grad(error, y)
    got, sse = gradient(latent, target)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()))
    assert torch.allclose(sse.sum(), error.detach(), rtol=1e-5)
    assert sse.shape == (2,)


def test_export_writes_it_with_a_lambda_per_quality_and_the_model_id_ignores_it(hyperprior_bundle, tmp_path):
    folder, manifest, ckpt = hyperprior_bundle
    entry = manifest["refiner"]
    assert (folder / entry["file"]).is_file() and entry["parity"]["max_gradient_error"] < 1e-3
    model, _ = load_checkpoint(ckpt)
    trained = list(model.config.lambdas)
    lambdas = entry["lambdas"]
    assert len(lambdas) == 100 and all(a < b for a, b in zip(lambdas, lambdas[1:]))
    assert lambdas[-1] == pytest.approx(trained[-1], rel=1e-6)
    # the same ladder as the gains: quality 1 sits one rate point below the lowest trained one
    expected = quality_gains(np.log(np.array(trained))[:, None], 100, -1.0)[:, 0]
    assert np.allclose(lambdas, expected, rtol=1e-6)
    copy = tmp_path / "b"
    shutil.copytree(folder, copy)
    (copy / "refiner.onnx").unlink()
    assert compute_model_id(copy) == manifest["model_id"]


def test_adding_a_refiner_to_a_bundle_checks_it_is_the_bundles_gs(hyperprior_bundle, tmp_path):
    folder, manifest, ckpt = hyperprior_bundle
    copy = tmp_path / "b"
    shutil.copytree(folder, copy)
    (copy / "refiner.onnx").unlink()
    without = json.loads((copy / "manifest.json").read_text())
    del without["refiner"]
    (copy / "manifest.json").write_text(json.dumps(without))
    entry = refiner.add_to_bundle(ckpt, copy)
    assert json.loads((copy / "manifest.json").read_text())["refiner"]["sha256"] == entry["sha256"]
    assert entry["parity"]["decoder_sse_relative_error"] < 1e-4
    other = tmp_path / "other.pt"
    wrong = tiny_hyperprior_model(seed=9)
    torch.save({"model": wrong.state_dict(), "config": wrong.config.to_dict(), "modality": "image", "step": 0}, other)
    with pytest.raises(SystemExit, match="not the bundle's decoder"):
        refiner.add_to_bundle(other, copy)
    assert not (copy / "refiner.onnx").exists()

