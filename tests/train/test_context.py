"""Checkerboard context (train/context.py): starts as the hyperprior it grows from, non-anchors see anchors only."""
import pytest

torch = pytest.importorskip("torch")

from aecodec.train.context import anchor_mask  # noqa: E402
from aecodec.train.hyperprior import HyperpriorCodecModel, HyperpriorConfig  # noqa: E402

from tests.conftest import tiny_hyperprior_model  # noqa: E402


def context_model(base: HyperpriorCodecModel, channels: int = 12) -> HyperpriorCodecModel:
    cfg = base.config
    model = HyperpriorCodecModel(HyperpriorConfig(channels=cfg.channels, latent=cfg.latent, hyper=cfg.hyper,
                                                  context=channels, lambdas=cfg.lambdas))
    taken = model.warm_start(base.state_dict(), cfg.lambdas)
    assert not [k for k in taken if k.startswith("hyper_context")]  # the base has none: it starts fresh
    return model.eval()


def test_a_fresh_context_model_codes_exactly_as_its_hyperprior():
    base = tiny_hyperprior_model()
    model = context_model(base)
    x = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for level in (0, 3):
            a, b = base(x, torch.tensor([level] * 2)), model(x, torch.tensor([level] * 2))
            assert torch.equal(a["bpp"], b["bpp"]) and torch.equal(a["x_hat"], b["x_hat"])


def test_non_anchors_depend_on_the_decoded_anchors_only():
    model = context_model(tiny_hyperprior_model())
    with torch.no_grad():
        for p in model.hyper_context.out.conv.parameters():
            p.normal_(0, 0.5)  # a trained context: non-zero contribution
    g = torch.Generator().manual_seed(2)
    v = torch.randn(1, 16, 8, 12, generator=g) * 4
    z_hat = torch.round(torch.randn(1, 8, 2, 3, generator=g) * 2)
    anchors = anchor_mask(8, 12)
    assert anchors.sum() == 48 and anchors[0, 0, 0, 0] == 1 and anchors[0, 0, 0, 1] == 0
    with torch.no_grad():
        mean, index = model.entropy_parameters(v, z_hat)
        # the rest of v (what the decoder does not have yet) changes nothing
        same = model.entropy_parameters(v + 9 * torch.randn(v.shape, generator=g) * (1 - anchors), z_hat)
        # the anchors change the others' parameters, not their own (those come from ẑ alone)
        moved = model.entropy_parameters(v + 9 * torch.randn(v.shape, generator=g) * anchors, z_hat)
        plain_mean, plain_index = model.hyper_synthesis(z_hat)
    assert torch.equal(mean, same[0]) and torch.equal(index, same[1])
    assert torch.equal(moved[0] * anchors, mean * anchors) and torch.equal(moved[1] * anchors, index * anchors)
    assert not torch.equal(moved[0], mean)
    assert torch.equal(mean * anchors, plain_mean * anchors) and not torch.equal(mean, plain_mean)
    assert torch.equal(mean * 16, torch.round(mean * 16))  # means stay on the 1/16 grid


def test_training_reaches_the_context_and_the_export_reproduces_it_exactly(tmp_path):
    model = context_model(tiny_hyperprior_model()).train()
    out = model(torch.rand(2, 3, 128, 128), torch.tensor([0, 5]))
    model.loss(out, torch.tensor([0, 5])).backward()
    assert model.hyper_context.out.conv.weight.grad.abs().sum() > 0
    with torch.no_grad():
        for p in model.hyper_context.parameters():
            p.normal_(0, 0.05)
    from aecodec.export.bundle import ExportOptions, export_model

    manifest = export_model(model.eval(), {"config": model.config.to_dict()}, tmp_path / "b", ExportOptions())
    assert manifest["latent_coding"] == "hyperprior-checkerboard" and manifest["context_channels"] == 12
    # the run time's integer h_s + context gave PyTorch's mean codes and scale indices everywhere it was checked
    assert manifest["parity"]["hs_mismatches"] == 0 and manifest["parity"]["hs_checked"] > 10_000


def test_freeze_decoder_trains_the_encoder_side_only(tmp_path):
    import numpy as np
    from PIL import Image

    from aecodec.train import trainer

    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (80, 80, 3), dtype=np.uint8)).save(tmp_path / "images" / f"{i}.png")
    base = context_model(tiny_hyperprior_model(), channels=4)
    init = tmp_path / "init.pt"
    torch.save({"model": base.state_dict(), "config": base.config.to_dict(), "modality": "image", "step": 0}, init)
    common = ["--data", str(tmp_path / "images"), "--crop", "64", "--batch", "2", "--steps", "3", "--warmup", "1",
              "--lr", "1e-2", "--val-every", "100", "--no-progress", "--threads", "1", "--freeze-decoder"]
    shape = ["--channels", "8", "--latent", "16", "--hyper", "8", "--context", "4",
             "--lambdas", *map(str, base.config.lambdas)]
    assert trainer.main(["--arch", "hyperprior", "--init", str(init), "--out", str(tmp_path / "run"), *shape, *common]) == 0
    trained = torch.load(tmp_path / "run" / "last.pt", weights_only=False)["model"]
    before = base.state_dict()
    moved = {k for k, v in before.items() if not torch.equal(trained[k], v)}
    assert moved and all(k.startswith(("analysis.", "hyper_analysis.")) for k in moved), sorted(moved)
    assert any(k.startswith("hyper_analysis.") for k in moved)
    with pytest.raises(SystemExit, match="hyperprior models only"):
        trainer.main(["--out", str(tmp_path / "fact"), "--channels", "4", "--latent", "4", *common])
