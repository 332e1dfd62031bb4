"""The restructured training modules keep checkpoints loadable and training unchanged.

State-dict names, shapes and their order (the order fixes the optimizer's parameter indices in a
saved Adam state) and the config dicts are a compatibility contract with every checkpoint trained
so far: the fingerprints below were taken from the models as they were before the restructure.
"""
import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from aecodec.train.audio_model import AudioCodecModel, AudioConfig  # noqa: E402
from aecodec.train.checkpoint_io import build_model, config_from_dict, family, load_checkpoint  # noqa: E402
from aecodec.train.entropy_models import FactorizedDensity, gained_likelihood  # noqa: E402
from aecodec.train.factorized import FactorizedCodecModel, ModelConfig  # noqa: E402
from aecodec.train.hyperprior import HyperpriorCodecModel, HyperpriorConfig  # noqa: E402

CHECKPOINTS = Path(__file__).resolve().parents[2] / "train" / "checkpoints"

TINY = {
    "factorized": (ModelConfig(channels=8, latent=16), "b1bd2e6e441e0bda", 41),
    "hyperprior": (HyperpriorConfig(channels=8, latent=16, hyper=8), "d73e01ae6ae800f9", 54),
    "audio": (AudioConfig(channels=4, latent=8), "8594df338a43c077", 101),
}


def fingerprint(model: torch.nn.Module) -> tuple[str, int]:
    rows = [f"P {n} {tuple(p.shape)}" for n, p in model.named_parameters()]
    rows += [f"B {n} {tuple(b.shape)}" for n, b in model.named_buffers()]
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16], len(rows)


@pytest.mark.parametrize("name", sorted(TINY))
def test_state_dict_layout_is_unchanged(name):
    config, digest, rows = TINY[name]
    assert fingerprint(build_model(config)) == (digest, rows)


def test_readable_key_names():
    keys = set(build_model(TINY["hyperprior"][0]).state_dict())
    assert {"analysis.net.0.weight", "synthesis.net.6.bias", "hyper_analysis.net.0.weight",
            "hyper_synthesis.up1.conv.weight", "hyper_synthesis.out.conv.bias", "hyper_density.matrices.0",
            "log_gains", "lambdas", "scales"} <= keys
    assert {"density.matrices.0", "density.biases.3", "log_gains"} <= set(build_model(TINY["factorized"][0]).state_dict())
    assert {"encoder.net.0.weight", "decoder.net.0.weight", "density.factors.2"} <= set(
        build_model(TINY["audio"][0]).state_dict())


def test_config_dicts():
    old_factorized = {"channels": 64, "latent": 160, "lambdas": [0.1, 0.2]}  # checkpoints before "arch" existed
    assert config_from_dict(old_factorized) == ModelConfig(64, 160, (0.1, 0.2))
    assert ModelConfig().to_dict().keys() == {"channels", "latent", "lambdas"}
    hyper = HyperpriorConfig(channels=8, latent=16, hyper=8)
    assert hyper.to_dict()["arch"] == "hyperprior" and config_from_dict(hyper.to_dict()) == hyper
    audio = AudioConfig(channels=4, latent=8)
    assert config_from_dict(audio.to_dict(), "audio") == audio
    assert audio.to_dict().keys() == {"channels", "latent", "strides", "lambdas", "sample_rate"}
    with pytest.raises(ValueError):
        config_from_dict({**old_factorized, "arch": "autoregressive"})


@pytest.mark.parametrize("name,expected", [("image-edge/weights.pt", ("image", "factorized")),
                                           ("audio-edge/last.pt", ("audio", "factorized")),
                                           ("image-hyperprior/last.pt", ("image", "hyperprior"))])
def test_shipped_checkpoints_load(name, expected):
    path = CHECKPOINTS / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    model, ckpt = load_checkpoint(path)
    assert family(model) == expected and not model.training and ckpt["step"] > 0


def test_warm_start_takes_transforms_and_gains_only():
    torch.manual_seed(0)
    source = FactorizedCodecModel(ModelConfig(channels=8, latent=16))
    target = HyperpriorCodecModel(HyperpriorConfig(channels=8, latent=16, hyper=8))
    taken = target.warm_start(source.state_dict())
    assert "log_gains" in taken and "analysis.net.0.weight" in taken and not any("density" in k for k in taken)
    assert torch.equal(target.synthesis.net[0].weight, source.synthesis.net[0].weight)


def _perturbed_hyperprior(channels: int) -> HyperpriorCodecModel:
    model = HyperpriorCodecModel(HyperpriorConfig(channels=channels, latent=16, hyper=8))
    with torch.no_grad():  # GDNs with cross terms, as after training (the initial gamma is diagonal)
        for module in model.modules():
            if hasattr(module, "gamma"):
                module.gamma.add_(0.2 * torch.rand_like(module.gamma))
    return model


def test_a_wider_hyperprior_grown_from_a_narrower_one_starts_with_its_function():
    torch.manual_seed(0)
    source = _perturbed_hyperprior(8)
    target = HyperpriorCodecModel(HyperpriorConfig(channels=12, latent=16, hyper=8))
    taken = target.warm_start(source.state_dict())
    assert set(taken) == set(source.state_dict()) - {"lambdas", "scales"}  # entropy model and gains included
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        y = source.analysis(x)
        assert torch.allclose(target.analysis(x), y, atol=1e-5)
        assert torch.allclose(target.synthesis(y), source.synthesis(y), atol=1e-5)
    for key in ("hyper_synthesis", "hyper_density", "log_gains"):
        assert all(torch.equal(v, target.state_dict()[k]) for k, v in source.state_dict().items() if k.startswith(key))
    # the new channels learn: weights from them into the old channels start at 0 and receive gradients
    target.train()
    level = torch.tensor([1])
    target.loss(target(x, level), level).backward()
    grown = target.synthesis.net[2].weight  # ConvTranspose2d: in × out × 5 × 5
    assert torch.all(grown[8:, :8] == 0) and grown.grad[8:, :8].abs().sum() > 0


def test_a_longer_ladder_keeps_the_trained_gains_and_extrapolates_the_new_points():
    """--lambdas with --init: new low rate points start from gains extrapolated in log λ (coarser quantization)."""
    torch.manual_seed(0)
    source = _perturbed_hyperprior(8)
    with torch.no_grad():
        source.log_gains.add_(0.1 * torch.randn_like(source.log_gains))
    old = tuple(source.lambdas.tolist())
    lambdas = (old[0] / 4, old[0] / 2, *old)
    target = HyperpriorCodecModel(HyperpriorConfig(channels=8, latent=16, hyper=8, lambdas=lambdas))
    taken = target.warm_start(source.state_dict(), old)
    assert "log_gains" in taken and target.log_gains.shape == (len(old) + 2, 16)
    assert torch.equal(target.log_gains[2:], source.log_gains)
    slope = (source.log_gains[1] - source.log_gains[0]) / (math.log(old[1]) - math.log(old[0]))
    for row, factor in ((0, 4), (1, 2)):  # the old ladder's first interval, continued in log λ
        expected = source.log_gains[0] - slope * math.log(factor)
        assert torch.allclose(target.log_gains[row], expected, atol=1e-5)
    with pytest.raises(ValueError, match="trained gain vectors"):
        target.warm_start(source.state_dict(), old[1:])


def test_a_hyperprior_grown_in_latent_width_keeps_its_distortion_and_the_old_channels_codes():
    """--latent M with --init: new latent channels are decoded with zero weights at first (the same image) and
    the old channels keep their means and scale indices (h_a's z is unchanged, so are h_s's old rows);
    the new channels' scale rows copy old ones, and g_s's weights from them learn from the first step."""
    torch.manual_seed(0)
    source = HyperpriorCodecModel(HyperpriorConfig(channels=8, latent=16, hyper=8, context=6))
    with torch.no_grad():
        for p in source.hyper_context.out.conv.parameters():
            p.normal_(0, 0.3)  # a trained context contributes
        source.log_gains.add_(3.0)  # latents of a trained model's size: most do not round to zero
    target = HyperpriorCodecModel(HyperpriorConfig(channels=8, latent=24, hyper=8, context=6))
    taken = target.warm_start(source.state_dict())
    assert set(taken) == set(source.state_dict()) - {"lambdas", "scales"}
    source.eval(), target.eval()
    x = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(3))
    level = torch.tensor([2])
    with torch.no_grad():
        a, b = source(x, level), target(x, level)
        assert torch.equal(a["x_hat"], b["x_hat"])
        v_old = source.analysis(x) * source.gain(level, 4)
        v_new = target.analysis(x) * target.gain(level, 4)
        assert torch.equal(v_new[:, :16], v_old)
        z_old, z_new = source.hyper_analysis(v_old), target.hyper_analysis(v_new)
        assert torch.allclose(z_old, z_new, atol=1e-5)
        z_hat = torch.floor(z_old + 0.5)
        mean_old, index_old = source.entropy_parameters(v_old, z_hat)
        mean_new, index_new = target.entropy_parameters(v_new, z_hat)
        assert torch.equal(mean_new[:, :16], mean_old) and torch.equal(index_new[:, :16], index_old)
        assert torch.equal(mean_new[:, 16:], torch.zeros_like(mean_new[:, 16:]))
    target.train()
    target.loss(target(x, level), level).backward()
    first = target.synthesis.net[0].weight  # ConvTranspose2d: in (M) × out × 5 × 5
    assert torch.all(first[16:] == 0) and first.grad[16:].abs().sum() > 0


def test_growth_refuses_a_narrower_latent():
    source = HyperpriorCodecModel(HyperpriorConfig(channels=8, latent=24, hyper=8))
    target = HyperpriorCodecModel(HyperpriorConfig(channels=8, latent=16, hyper=8))
    with pytest.raises(ValueError, match="widths can only grow"):
        target.warm_start(source.state_dict())


def test_parameter_groups():
    hyper = build_model(TINY["hyperprior"][0])
    groups = hyper.parameter_groups()
    assert [g["lr_scale"] for g in groups] == [1.0, 10.0]
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in hyper.hyper_density.parameters()}
    assert sum(len(g["params"]) for g in groups) == len(list(hyper.parameters()))
    for name in ("factorized", "audio"):  # one group: resumes the optimizer states saved so far
        assert len(build_model(TINY[name][0]).parameter_groups()) == 1


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 3, 7)])
def test_gained_likelihood_is_the_bin_of_width_one_over_gain(shape):
    torch.manual_seed(1)
    density = FactorizedDensity(shape[1])
    v = torch.randn(shape) * 3
    gain = torch.rand(shape[0], shape[1], *([1] * (len(shape) - 2))) + 0.5
    p = gained_likelihood(density, v, gain)
    b, c = shape[0], shape[1]
    for i, j in ((0, 0), (1, 2)):
        x = v[i, j].reshape(1, 1, -1) / gain[i, j]
        half = 0.5 / gain[i, j].reshape(1, 1, 1)
        single = FactorizedDensity(1)
        single.load_state_dict({k: t[j : j + 1] for k, t in density.state_dict().items()})
        expected = single.bin_probability(x - half, x + half).reshape(v[i, j].shape).clamp_min(1e-9)
        assert torch.allclose(p[i, j], expected)
    assert p.shape == shape and b * c > 0


@pytest.mark.parametrize("name", sorted(TINY))
def test_forward_and_loss_train_and_eval(name):
    torch.manual_seed(0)
    model = build_model(TINY[name][0])
    audio = isinstance(model, AudioCodecModel)
    x = torch.rand(2, 1, 320 * 8) - 0.5 if audio else torch.rand(2, 3, 64, 64)  # stft needs > 1024 samples
    level = torch.tensor([0, len(model.config.lambdas) - 1])
    loss = model.loss(model(x, level), level)
    loss.backward()
    assert np.isfinite(loss.item()) and model.log_gains.grad is not None
    model.eval()
    with torch.no_grad():
        out = model(x, level)
    assert out["x_hat"].shape == x.shape


def test_crop_sampler_decodes_a_folder_and_draws_the_same_crops_after_a_move(tmp_path):
    """Images are decoded once (in threads, order kept); moving them (to a GPU in training) keeps the draws."""
    from PIL import Image

    from aecodec.train.image_data import CropSampler

    rng = np.random.default_rng(0)
    pixels = {}
    for name, size in [("a.png", (40, 50)), ("b.png", (20, 12)), ("c.png", (64, 33))]:
        pixels[name] = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        Image.fromarray(pixels[name]).save(tmp_path / name)
    here, moved = CropSampler(tmp_path, 24, seed=3), CropSampler(tmp_path, 24, seed=3)
    assert [img.shape for img in here.images] == [(3, 40, 50), (3, 20, 12), (3, 64, 33)]
    assert np.array_equal(here.images[0].permute(1, 2, 0).numpy(), pixels["a.png"])
    assert moved.to(torch.device("cpu")) is moved
    for _ in range(4):
        a, b = here.batch(5), moved.batch(5)
        assert a.shape == (5, 3, 24, 24) and a.dtype == torch.float32 and 0 <= float(a.min()) <= float(a.max()) <= 1
        assert torch.equal(a, b)
