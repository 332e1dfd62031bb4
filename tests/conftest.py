import os

import numpy as np
import pytest

# keep ONNX Runtime / BLAS to one thread each so the suite behaves on 2-core machines
os.environ.setdefault("OMP_NUM_THREADS", "1")


def natural_image(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    """A photo-like test image: smooth gradients, edges and mild texture (uint8 H×W×C)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = [
        128 + 90 * np.sin(xx / max(w, 1) * 3.1 + c) * np.cos(yy / max(h, 1) * 2.3 - c) for c in range(channels)
    ]
    img = np.stack(base, axis=-1)
    img[(xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (min(h, w) / 4) ** 2] += 40  # a disc with a sharp edge
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    return natural_image(96, 128)


def tiny_hyperprior_model(seed: int = 0, latent: int = 16, hyper: int = 8):
    """A random tiny hyperprior (torch) whose h_s gives varied means and scale indices (not all clipped)."""
    import torch

    from aecodec.train.hyperprior import HyperpriorCodecModel, HyperpriorConfig

    torch.manual_seed(seed)
    model = HyperpriorCodecModel(HyperpriorConfig(channels=8, latent=latent, hyper=hyper))
    with torch.no_grad():
        for layer in model.hyper_synthesis.layers:
            layer.conv.weight.normal_(0, 0.3)
            layer.conv.bias.uniform_(0, 2)
        model.hyper_synthesis.out.conv.bias[latent:].uniform_(5, 40)  # scale indices spread over the table
    return model.eval()


def tiny_context_model(seed: int = 0, channels: int = 12):
    """`tiny_hyperprior_model` with a random checkerboard context that changes the non-anchors' parameters."""
    import torch

    from aecodec.train.hyperprior import HyperpriorCodecModel, HyperpriorConfig

    base = tiny_hyperprior_model(seed)
    cfg = base.config
    model = HyperpriorCodecModel(HyperpriorConfig(channels=cfg.channels, latent=cfg.latent, hyper=cfg.hyper,
                                                  context=channels, lambdas=cfg.lambdas))
    model.load_state_dict(base.state_dict(), strict=False)
    with torch.no_grad():
        for layer in model.hyper_context.layers:
            layer.conv.weight.normal_(0, 0.05)
            layer.conv.bias.uniform_(0, 0.5)
    return model.eval()


def _export_tiny(root, model):
    torch = pytest.importorskip("torch")
    from aecodec.export.bundle import export_bundle

    ckpt = {"model": model.state_dict(), "config": model.config.to_dict(), "modality": "image", "step": 7,
            "args": {"batch": 2, "crop": 64, "lr": 1e-4, "warmup": 10, "decay_from": 0.7, "seed": 0,
                     "data": "somewhere", "init": "factorized.pt"}}
    torch.save(ckpt, root / "h.pt")
    manifest = export_bundle(root / "h.pt", root / "bundle", name="tiny-hyper", low_quality_position=-1.0)
    return root / "bundle", manifest, root / "h.pt"


@pytest.fixture(scope="session")
def context_bundle(tmp_path_factory):
    """(bundle folder, manifest, checkpoint path) of an exported tiny random checkerboard-context model."""
    pytest.importorskip("torch")
    return _export_tiny(tmp_path_factory.mktemp("context"), tiny_context_model())


@pytest.fixture(scope="session")
def hyperprior_bundle(tmp_path_factory):
    """(bundle folder, manifest, checkpoint path) of an exported tiny random hyperprior model."""
    pytest.importorskip("torch")
    return _export_tiny(tmp_path_factory.mktemp("hyper"), tiny_hyperprior_model())


@pytest.fixture(params=["hyperprior", "context"])
def any_hyperprior_bundle(request):
    """Each kind of hyperprior bundle in turn: plain (format version 3) and checkerboard context (version 4)."""
    return request.getfixturevalue("hyperprior_bundle" if request.param == "hyperprior" else "context_bundle")
