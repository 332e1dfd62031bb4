"""Integer hyper-synthesis h_s: fake-quantized in training, reproduced bit for bit by the run time.

Why integers: the decoder must derive *exactly* the probabilities the encoder used. A float h_s
gives scale indices that differ by backend, thread count or CPU (CompressAI's cross-machine
decoding failures). Here h_s is trained with fake quantization that the run time
(`aecodec.coding.hyper`) reproduces in exact integer arithmetic (Ballé, Johnston & Minnen 2019):
int8 weights with a power-of-two scale per output channel, integer biases, activations as 12-bit
codes on a fixed power-of-two grid (clipped ReLU), and rounding written as floor(x + 1/2). Its
outputs are integer indices into the Gaussian scale table and means on a 1/16 grid.

The constants below are part of the bitstream: export writes them into the bundle's manifest.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .entropy_models import SCALE_LEVELS
from .layers import clip_ste, round_half_up_ste

ACTIVATION_SHIFT = 8  # hidden activations are codes k·2^-8
ACTIVATION_MAX_CODE = 4095  # 12-bit codes: values in [0, 16)
MEAN_SHIFT = 4  # predicted means are m·2^-4
MEAN_MAX_CODE = 2**15 - 1
WEIGHT_MAX = 127


class IntegerConv(nn.Module):
    """Convolution (3×3 unless `kernel` says otherwise, same padding) whose forward pass is exactly
    representable in integers.

    in_shift / out_shift: input and output codes are k·2^-shift. The weight of each output channel
    is an int8 times a power of two, the bias an integer in accumulator units, so the requantization
    (accumulator → output code) is a multiplication by a power of two and a floor(x + 1/2).
    """

    def __init__(self, cin: int, cout: int, in_shift: int, out_shift: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2)
        self.in_shift, self.out_shift = in_shift, out_shift

    def weight_exponent(self) -> torch.Tensor:
        """Per output channel e with weight = int8 · 2^e."""
        w = self.conv.weight.detach()
        peak = w.abs().amax(dim=(1, 2, 3)).clamp_min(1e-12)
        return torch.ceil(torch.log2(peak / WEIGHT_MAX))

    def integer_parameters(self) -> dict[str, torch.Tensor]:
        """int8 kernel, integer bias (accumulator units) and the requantization exponent per channel."""
        e = self.weight_exponent()
        scale = torch.exp2(e)[:, None, None, None]
        kernel = torch.floor(self.conv.weight.detach() / scale + 0.5).clamp(-WEIGHT_MAX, WEIGHT_MAX)
        acc_unit = torch.exp2(e - self.in_shift)  # value of one accumulator unit
        assert self.conv.bias is not None
        bias = torch.floor(self.conv.bias.detach() / acc_unit + 0.5)
        # output code = floor(acc · 2^(e - in_shift + out_shift) + 1/2)
        return {"kernel": kernel.to(torch.int64), "bias": bias.to(torch.int64),
                "exponent": (e - self.in_shift + self.out_shift).to(torch.int64)}

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """Integer-valued input codes -> real-valued accumulator scaled to output code units (not rounded)."""
        e = self.weight_exponent()
        scale = torch.exp2(e)[:, None, None, None]
        w = self.conv.weight
        w_q = scale * clip_ste(round_half_up_ste(w / scale), -WEIGHT_MAX, WEIGHT_MAX)
        acc_unit = torch.exp2(e - self.in_shift)
        assert self.conv.bias is not None
        b_q = acc_unit * round_half_up_ste(self.conv.bias / acc_unit)
        x = codes * 2.0**-self.in_shift
        return F.conv2d(x, w_q, b_q, padding=self.conv.padding) * 2.0**self.out_shift


class IntegerHyperSynthesis(nn.Module):
    """h_s: integer ẑ (H channels, 1/64 res) -> mean codes and scale indices of v (M channels, 1/16 res).

    Two sub-pixel upsampling stages (3×3 conv to 4C channels + depth-to-space) with clipped ReLU,
    then a 3×3 conv to 2M channels: means (1/16 grid) and scale-table indices.
    """

    def __init__(self, hyper: int, latent: int):
        super().__init__()
        self.mid = mid = hyper * 3 // 2
        self.up1 = IntegerConv(hyper, 4 * hyper, 0, ACTIVATION_SHIFT)
        self.up2 = IntegerConv(hyper, 4 * mid, ACTIVATION_SHIFT, ACTIVATION_SHIFT)
        self.out = IntegerConv(mid, 2 * latent, ACTIVATION_SHIFT, 0)
        self.latent = latent

    @property
    def layers(self) -> tuple[IntegerConv, IntegerConv, IntegerConv]:
        """The three layers in the order the run time's tables number them (hs_*_0, _1, _2)."""
        return self.up1, self.up2, self.out

    def forward(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (mean, scale index as float with straight-through gradients), both B×M×h×w."""
        return self.entropy_parameters(self.features(z_hat)[1])

    def features(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(last hidden activation codes, B×mid×h×w; output accumulator in output units, B×2M×h×w): what a
        context model adds to before entropy_parameters rounds."""
        a = clip_ste(round_half_up_ste(F.pixel_shuffle(self.up1(z_hat), 2)), 0, ACTIVATION_MAX_CODE)
        a = clip_ste(round_half_up_ste(F.pixel_shuffle(self.up2(a), 2)), 0, ACTIVATION_MAX_CODE)
        return a, self.out(a)  # output units: means at 2^0, indices at 1

    def entropy_parameters(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Output accumulator -> (mean on the 1/16 grid, scale index), rounded and clipped as the run time does."""
        mean_acc, index_acc = out[:, : self.latent], out[:, self.latent:]
        mean_code = clip_ste(round_half_up_ste(mean_acc * 2.0**MEAN_SHIFT), -MEAN_MAX_CODE, MEAN_MAX_CODE)
        index = clip_ste(round_half_up_ste(index_acc), 0, SCALE_LEVELS - 1)
        return mean_code * 2.0**-MEAN_SHIFT, index
