"""Rewrite stride-2 transposed convolutions as 3×3 convolutions + pixel shuffle for export.

ONNX Runtime's CPU ConvTranspose is several times slower than its Conv. A 5×5 stride-2
transposed convolution (padding 2, output padding 1) equals, for each of the four output
phases (a, b), a 3×3 convolution of the input whose taps are the transposed kernel's taps
k = a + 2 − 2·d (d ∈ {−1, 0, 1}, out-of-range taps zero); the four phases are interleaved by a
pixel shuffle. The rewrite is exact up to float summation order; export's parity check
compares the exported graph against the original PyTorch module.
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
