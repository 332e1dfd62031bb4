"""Growing a trained audio model into a wider one (--init) keeps its output exactly, then trains the new width."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from aecodec.train.audio_model import AudioCodecModel, AudioConfig  # noqa: E402
from aecodec.train.rate_ladder import grow_log_gains  # noqa: E402


def _small(**kw) -> AudioConfig:
    base = dict(channels=4, latent=8, strides=(2, 4), lambdas=(2.0, 6.0, 18.0))
    base.update(kw)
    return AudioConfig(**base)


def test_grown_model_reproduces_the_old_waveform_and_can_learn() -> None:
    torch.manual_seed(0)
    old = AudioCodecModel(_small()).eval()
    for p in old.parameters():  # trained-looking weights, not the default init
        p.data.add_(0.05 * torch.randn_like(p))
    new = AudioCodecModel(_small(decoder_channels=6, latent=12, lambdas=(2.0, 6.0, 18.0, 54.0))).eval()
    taken = new.warm_start(old.state_dict(), old.config.lambdas)
    assert "log_gains" in taken and "decoder.net.0.weight" in taken
    x = torch.randn(2, 1, 8 * 320) * 0.3  # the mel loss needs ≥ 2048 samples
    for level in range(3):
        lv = torch.tensor([level, level])
        a, b = old(x, lv), new(x, lv)
        assert torch.allclose(a["x_hat"], b["x_hat"], atol=1e-5)
    # the new latent channels start at exactly 0 and receive gradients: they can start carrying information
    assert torch.count_nonzero(new.encoder(x)[:, 8:]) == 0
    new.train()
    out = new(x, torch.tensor([3, 3]))
    new.loss(out, torch.tensor([3, 3])).backward()
    last = new.encoder.net[-1]
    assert last.weight.grad is not None and torch.count_nonzero(last.weight.grad[8:]) > 0
    widened = new.decoder.net[-1].weight  # output conv: reads the decoder's new channels with zero weights
    assert widened.grad is not None and torch.count_nonzero(widened.grad[:, 4:]) > 0


def test_new_rate_point_gains_extrapolate_in_log_lambda() -> None:
    old = torch.log(torch.tensor([[1.0, 2.0], [3.0, 6.0]]))  # λ 2, 18: ×3 gain per ×9 λ
    grown = grow_log_gains(old, (2.0, 18.0), (2.0, 6.0, 18.0, 162.0), 3)
    assert torch.allclose(grown[:, :2].exp(), torch.tensor([[1.0, 2.0], [3 ** 0.5, 2 * 3 ** 0.5], [3.0, 6.0],
                                                              [9.0, 18.0]]), rtol=1e-5)
    assert torch.allclose(grown[:, 2], grown[:, :2].median(dim=1).values)


def test_a_narrower_target_is_refused() -> None:
    wide = AudioCodecModel(_small(decoder_channels=6))
    narrow = AudioCodecModel(_small())
    with pytest.raises(ValueError, match="cannot grow"):
        narrow.warm_start(wide.state_dict(), wide.config.lambdas)


def test_activation_is_recorded_only_when_it_differs_and_unknown_names_are_refused() -> None:
    assert "activation" not in _small().to_dict()  # audio-edge's configs read and write unchanged
    cfg = _small(activation="relu")
    assert cfg.to_dict()["activation"] == "relu"
    assert AudioConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown audio activation 'gelu'"):
        AudioConfig.from_dict({**cfg.to_dict(), "activation": "gelu"})


def test_an_elu_model_warm_starts_a_relu_one_and_the_graph_has_no_elu(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    old = AudioCodecModel(_small()).eval()
    new = AudioCodecModel(_small(activation="leaky_relu")).eval()
    new.warm_start(old.state_dict(), old.config.lambdas)
    for a, b in zip(old.state_dict().values(), new.state_dict().values()):
        assert torch.equal(a, b)  # no parameters in an activation: every tensor carries over
    x = torch.randn(1, 1, 8 * 8)
    torch.onnx.export(new.decoder, (new.encoder(x),), str(tmp_path / "d.onnx"), opset_version=17, dynamo=False)
    ops = {n.op_type for n in onnx.load(str(tmp_path / "d.onnx")).graph.node}
    assert "LeakyRelu" in ops and "Elu" not in ops
