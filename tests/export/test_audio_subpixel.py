"""The audio decoder's sub-pixel export form (issue 18): each ConvTranspose1d (kernel 2s, stride s, padding
⌈s/2⌉, output padding s mod 2) rewritten as a 3-tap Conv1d with s·C_out channels + a 1-D pixel shuffle."""
import collections

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from aecodec.export import graphs  # noqa: E402
from aecodec.export.subpixel import (  # noqa: E402
    PixelShuffle1d,
    subpixel_audio_decoder,
    subpixel_conv1d_from_transposed,
)
from aecodec.train.audio_model import AudioCodecModel, AudioConfig, AudioDecoder  # noqa: E402

# what the exported sub-pixel decoder may contain: the network, the shuffle, and its shape arithmetic
PLAIN_OPS = {"Conv", "Elu", "Add", "Reshape", "Transpose", "Shape", "Gather", "Unsqueeze", "Concat", "Mul", "Constant"}


def family_layer(s: int, cin: int, cout: int, bias: bool = True) -> nn.ConvTranspose1d:
    """The audio decoder's upsampling layer for stride s (train/audio_model.py, AudioDecoder)."""
    return nn.ConvTranspose1d(cin, cout, 2 * s, stride=s, padding=(s + 1) // 2, output_padding=s % 2, bias=bias)


@pytest.mark.parametrize("s", [2, 3, 4, 5, 8])
def test_conv1d_rewrite_equals_transposed_convolution(s):
    gen = torch.Generator().manual_seed(s)
    for trial in range(4):
        cin, cout = (int(v) for v in torch.randint(1, 9, (2,), generator=gen))
        layer = family_layer(s, cin, cout, bias=trial != 3)
        with torch.no_grad():
            for p in layer.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))
        rewritten = subpixel_conv1d_from_transposed(layer)
        for length in (1, 2, *(int(v) for v in torch.randint(3, 60, (3,), generator=gen))):
            x = torch.randn(2, cin, length, generator=gen)
            with torch.no_grad():
                want, got = layer(x), rewritten(x)
            assert got.shape == want.shape == (2, cout, length * s)
            assert torch.allclose(got, want, atol=1e-5, rtol=1e-5), (s, cin, cout, length)


@pytest.mark.parametrize("strides", [(2, 4, 5, 8), (8,), (5, 2), (4, 4)])
def test_rewritten_decoder_equals_the_decoder(strides):
    torch.manual_seed(sum(strides))
    decoder = AudioDecoder(AudioConfig(channels=4, latent=8, strides=strides)).eval()
    with torch.no_grad():
        for p in decoder.parameters():
            p.normal_(0, 0.3)
    rewritten = subpixel_audio_decoder(decoder)
    assert not any(isinstance(m, nn.ConvTranspose1d) for m in rewritten.modules())
    assert sum(isinstance(m, PixelShuffle1d) for m in rewritten.modules()) == len(strides)
    for length in (1, 3, int(torch.randint(4, 40, ()))):
        y = torch.randn(2, 8, length)
        with torch.no_grad():
            want, got = decoder(y), rewritten(y)
        assert got.shape == want.shape == (2, 1, length * int(np.prod(strides)))
        assert torch.allclose(got, want, atol=1e-5 * max(1.0, float(want.abs().max()))), length


def test_pixel_shuffle_1d_interleaves_the_phases():
    x = torch.arange(2 * 6 * 4, dtype=torch.float32).reshape(2, 6, 4)  # C = 2, s = 3, L = 4
    out = PixelShuffle1d(2, 3)(x)
    assert out.shape == (2, 2, 12)
    for c in range(2):
        for q in range(4):
            for r in range(3):
                assert out[1, c, q * 3 + r] == x[1, c * 3 + r, q]


@pytest.mark.parametrize("kwargs", [dict(kernel_size=4, stride=2, padding=0), dict(kernel_size=3, stride=2, padding=1),
                                    dict(kernel_size=10, stride=5, padding=3, output_padding=0),
                                    dict(kernel_size=4, stride=2, padding=1, groups=2),
                                    dict(kernel_size=4, stride=2, padding=1, dilation=2)])
def test_layers_outside_the_family_are_refused(kwargs):
    with pytest.raises(ValueError, match="no sub-pixel rewrite"):
        subpixel_conv1d_from_transposed(nn.ConvTranspose1d(4, 4, **kwargs))


def test_exported_audio_decoder_has_no_conv_transpose_and_matches(tmp_path, monkeypatch):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    monkeypatch.setattr(graphs, "AUDIO_SUBPIXEL", True)
    torch.manual_seed(0)
    model = AudioCodecModel(AudioConfig(channels=4, latent=8)).eval()
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.normal_(0, 0.3)
    graphs.export_graphs(model, tmp_path)
    graph = onnx.load(str(tmp_path / "decoder.onnx")).graph
    ops = collections.Counter(n.op_type for n in graph.node)
    assert "ConvTranspose" not in ops and set(ops) <= PLAIN_OPS, ops
    assert ops["Transpose"] == len(model.config.strides)
    for value in (graph.input[0], graph.output[0]):
        dims = [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
        assert dims == ["batch", 8 if value is graph.input[0] else 1, "length"]
    session = ort.InferenceSession(str(tmp_path / "decoder.onnx"), providers=["CPUExecutionProvider"])
    for batch, frames in ((1, 1), (2, 7), (1, 50)):  # the length axis stays dynamic
        y = np.random.default_rng(frames).standard_normal((batch, 8, frames)).astype(np.float32)
        with torch.no_grad():
            want = model.decoder(torch.from_numpy(y)).numpy()
        got = session.run(None, {"latent": y})[0]
        assert got.shape == want.shape == (batch, 1, frames * model.config.hop)
        assert np.abs(got - want).max() <= 1e-5 * max(1.0, float(np.abs(want).max()))


def test_transposed_form_is_the_default(tmp_path):
    onnx = pytest.importorskip("onnx")
    graphs.export_graphs(AudioCodecModel(AudioConfig(channels=4, latent=8)), tmp_path)
    ops = {n.op_type for n in onnx.load(str(tmp_path / "decoder.onnx")).graph.node}
    assert "ConvTranspose" in ops and "Transpose" not in ops
