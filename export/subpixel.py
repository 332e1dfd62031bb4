"""Rewrite strided transposed convolutions as convolutions + pixel shuffle for export.

ONNX Runtime's CPU ConvTranspose is several times slower than its Conv.

Image (2-D): a 5×5 stride-2 transposed convolution (padding 2, output padding 1) equals, for each
of the four output phases (a, b), a 3×3 convolution of the input whose taps are the transposed
kernel's taps k = a + 2 − 2·d (d ∈ {−1, 0, 1}, out-of-range taps zero); the four phases are
interleaved by a pixel shuffle.

Audio (1-D): a ConvTranspose1d with kernel 2s, stride s, padding p = ⌈s/2⌉ and output padding s mod 2
(the audio decoder's family; 2p − output padding = s, so an input of length L gives exactly L·s
outputs) computes, at output o = q·s + r (phase r ∈ [0, s)),

    y[q·s + r] = Σ_{j ∈ {0, 1}} x[q + a − j] · w[b + j·s],   where a·s + b = r + p, 0 ≤ b < s,

since o + p = i·s + k has exactly the two solutions k = b + j·s ∈ [0, 2s), i = q + a − j. With
p ≤ s, a ∈ {0, 1}, so every phase is a 3-tap convolution (padding 1, input offsets d = a − j ∈
{−1, 0, 1}, the one offset a phase does not use is a zero tap) and the length needs no crop: the
padding only decides which offset pair (a) and which tap residue (b) a phase uses. A 1-D pixel
shuffle (channel c·s + r -> output c, position q·s + r; Reshape / Transpose / Reshape in ONNX, the
length axis stays dynamic) interleaves the phases.

Both rewrites are exact up to float summation order; export's parity check compares the exported
graph against the original PyTorch module.
"""
from __future__ import annotations

import torch
from torch import nn


def subpixel_conv_from_transposed(layer: nn.ConvTranspose2d) -> nn.Sequential:
    assert layer.kernel_size == (5, 5) and layer.stride == (2, 2) and layer.padding == (2, 2)
    assert layer.output_padding == (1, 1) and layer.groups == 1 and layer.dilation == (1, 1)
    w_t = layer.weight.detach()  # (Cin, Cout, 5, 5)
    cin, cout = w_t.shape[:2]
    w = torch.zeros(cout, 2, 2, cin, 3, 3, dtype=w_t.dtype)
    for a in range(2):
        for b in range(2):
            for di in range(3):
                kh = a + 2 - 2 * (di - 1)
                if not 0 <= kh < 5:
                    continue
                for dj in range(3):
                    kw = b + 2 - 2 * (dj - 1)
                    if 0 <= kw < 5:
                        w[:, a, b, :, di, dj] = w_t[:, :, kh, kw].t()
    conv = nn.Conv2d(cin, 4 * cout, 3, padding=1)
    conv.weight.data.copy_(w.reshape(4 * cout, cin, 3, 3))  # channel = c·4 + a·2 + b, as PixelShuffle wants
    bias = layer.bias.detach() if layer.bias is not None else torch.zeros(cout)
    assert conv.bias is not None
    conv.bias.data.copy_(bias.repeat_interleave(4))
    return nn.Sequential(conv, nn.PixelShuffle(2))


def subpixel_synthesis(synthesis: nn.Module) -> nn.Module:
    """A copy of a synthesis transform (`.net`, a Sequential) with every ConvTranspose2d replaced (same forward)."""
    net = synthesis.net
    assert isinstance(net, nn.Sequential)
    layers: list[nn.Module] = []
    for layer in net:
        layers.append(subpixel_conv_from_transposed(layer) if isinstance(layer, nn.ConvTranspose2d) else layer)
    return nn.Sequential(*layers).eval()


class PixelShuffle1d(nn.Module):
    """N×(C·s)×L -> N×C×(L·s): input channel c·s + r becomes output position q·s + r of channel c.

    C and s are fixed at construction, so the ONNX graph is Reshape -> Transpose -> Reshape with only
    the batch and length read from the input's shape (both stay dynamic axes).
    """

    def __init__(self, channels: int, factor: int):
        super().__init__()
        self.channels, self.factor = channels, factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length = x.shape[0], x.shape[2]
        x = x.reshape(n, self.channels, self.factor, length).transpose(2, 3)
        return x.reshape(n, self.channels, length * self.factor)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, factor={self.factor}"


def subpixel_conv1d_from_transposed(layer: nn.ConvTranspose1d) -> nn.Sequential:
    """ConvTranspose1d(kernel 2s, stride s, padding ⌈s/2⌉, output padding s mod 2) -> Conv1d(3 taps,
    s·C_out channels) + PixelShuffle1d(s); the same output (see the module docstring for the taps)."""
    if isinstance(layer.padding, str):
        raise ValueError(f"no sub-pixel rewrite for {layer}: string padding")
    (s,), (k,), (p,), (op,) = layer.stride, layer.kernel_size, layer.padding, layer.output_padding
    if not (s >= 2 and k == 2 * s and p == (s + 1) // 2 and op == s % 2 and layer.groups == 1
            and layer.dilation == (1,) and layer.padding_mode == "zeros"):
        raise ValueError(f"no sub-pixel rewrite for {layer}: only kernel 2s, stride s ≥ 2, padding (s+1)//2, "
                         f"output_padding s%2, groups 1, dilation 1")
    w_t = layer.weight.detach()  # (Cin, Cout, 2s)
    cin, cout = w_t.shape[:2]
    w = torch.zeros(cout, s, cin, 3, dtype=w_t.dtype, device=w_t.device)
    for r in range(s):
        a, b = divmod(r + p, s)
        assert a in (0, 1)
        for j in (0, 1):
            w[:, r, :, a - j + 1] = w_t[:, :, b + j * s].t()  # tap index = input offset a − j, + 1
    conv = nn.Conv1d(cin, s * cout, 3, padding=1).to(dtype=w_t.dtype, device=w_t.device)
    conv.weight.data.copy_(w.reshape(s * cout, cin, 3))  # channel = c·s + r, as PixelShuffle1d wants
    bias = layer.bias.detach() if layer.bias is not None else torch.zeros(cout, dtype=w_t.dtype, device=w_t.device)
    assert conv.bias is not None
    conv.bias.data.copy_(bias.repeat_interleave(s))
    return nn.Sequential(conv, PixelShuffle1d(cout, s))


def subpixel_audio_decoder(decoder: nn.Module) -> nn.Module:
    """A copy of an audio decoder (`.net`, a Sequential; forward = net) with every ConvTranspose1d replaced
    (same forward); the other layers are shared with `decoder`, not copied."""
    net = decoder.net
    assert isinstance(net, nn.Sequential)
    layers: list[nn.Module] = []
    for layer in net:
        layers.append(subpixel_conv1d_from_transposed(layer) if isinstance(layer, nn.ConvTranspose1d) else layer)
    return nn.Sequential(*layers).eval()
