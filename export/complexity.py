"""Multiply-accumulates and parameter counts of a model, as the manifest and model card report them.

Counted from the layer shapes seen in one forward pass of each transform (forward hooks), so the
count follows the architecture instead of a hand-written formula per model. Convolutions count
out_elements × in_channels × taps; transposed convolutions in_elements × out_channels × taps (each
input tap scatters to all taps); GDN C² per pixel; the Fourier audio decoder's inverse DFT its matrix per frame. Activations and pixel shuffles are free.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from aecodec.train.audio_model import AudioCodecModel, OverlapAddSynthesis
from aecodec.train.checkpoint_io import AnyModel
from aecodec.train.hyperprior import HyperpriorCodecModel
from aecodec.train.integer_hyper import IntegerConv
from aecodec.train.layers import GDN

IMAGE_SIDE = 256  # image MACs are counted on a 256×256 input (a multiple of every pad multiple)


def layer_macs(layer: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    """MACs of one layer call, from its input and output shapes (0 for layers that are not counted)."""
    if isinstance(layer, (nn.Conv1d, nn.Conv2d)):
        taps = int(torch.tensor(layer.kernel_size).prod())
        return out.numel() * layer.in_channels // layer.groups * taps
    if isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d)):
        taps = int(torch.tensor(layer.kernel_size).prod())
        return inp.numel() * layer.out_channels // layer.groups * taps
    if isinstance(layer, IntegerConv):  # 3×3 conv with fake-quantized weights (h_s)
        return out.numel() * layer.conv.in_channels * 9
    if isinstance(layer, GDN):
        return inp.numel() * inp.shape[1]
    if isinstance(layer, OverlapAddSynthesis):  # the inverse DFT: a (2·bins → 2·hop) matrix per frame
        return inp.numel() * 2 * layer.hop
    return 0


@torch.no_grad()
def count_macs(fn: Callable[[], object], module: nn.Module) -> int:
    """MACs of all counted layers inside `module` while `fn()` runs."""
    total = 0

    def hook(layer: nn.Module, args: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += layer_macs(layer, args[0], out)

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d, IntegerConv, GDN,
                                 OverlapAddSynthesis))]
    try:
        fn()
    finally:
        for h in handles:
            h.remove()
    return total


def parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@torch.no_grad()
def image_complexity(model: AnyModel) -> dict[str, float | int]:
    """kMAC per input pixel of the encoder (g_a, + h_a) and the decoder (g_s, + h_s), and parameters."""
    assert not isinstance(model, AudioCodecModel)
    was_training = model.training
    model.eval()
    m = model.config.latent
    s = IMAGE_SIDE
    pixels = s * s
    x = torch.zeros(1, 3, s, s)
    y = torch.zeros(1, m, s // 16, s // 16)
    out: dict[str, float | int] = {
        "encoder_kmac_per_px": count_macs(lambda: model.analysis(x), model.analysis) / pixels / 1e3,
        "decoder_kmac_per_px": count_macs(lambda: model.synthesis(y), model.synthesis) / pixels / 1e3,
    }
    entropy = model.log_gains.numel()
    if isinstance(model, HyperpriorCodecModel):
        z = torch.zeros(1, model.config.hyper, s // 64, s // 64)
        ha = count_macs(lambda: model.hyper_analysis(y), model.hyper_analysis) / pixels / 1e3
        hs = count_macs(lambda: model.hyper_synthesis(z), model.hyper_synthesis) / pixels / 1e3
        out.update({"hyper_analysis_kmac_per_px": ha, "hyper_synthesis_kmac_per_px": hs,
                    "encoder_kmac_per_px": out["encoder_kmac_per_px"] + ha,
                    "decoder_kmac_per_px": out["decoder_kmac_per_px"] + hs})
        # h_s counts on the decoder side (it also runs in the encoder, to code y: + hyper_synthesis_kmac_per_px)
        out.update({"encoder_params": parameters(model.analysis) + parameters(model.hyper_analysis),
                    "decoder_params": parameters(model.synthesis) + parameters(model.hyper_synthesis),
                    "hyper_synthesis_params": parameters(model.hyper_synthesis)})
        entropy += parameters(model.hyper_density)
        if model.hyper_context is not None:
            # as the run time computes it: at the non-anchors (half the latent) only, and of the 5×5 taps only the
            # 12 that land on anchors (the others read zeros)
            k, mid = model.config.context, model.hyper_synthesis.mid
            per_latent = 0.5 * (12 * m * k + mid * k + k * 2 * m)
            ctx = per_latent / 256 / 1e3
            out.update({"context_kmac_per_px": ctx, "context_params": parameters(model.hyper_context),
                        "decoder_kmac_per_px": out["decoder_kmac_per_px"] + ctx,
                        "decoder_params": out["decoder_params"] + parameters(model.hyper_context)})
    else:
        out.update({"encoder_params": parameters(model.analysis), "decoder_params": parameters(model.synthesis)})
        entropy += parameters(model.density)
    out["entropy_params"] = entropy
    model.train(was_training)
    return out


@torch.no_grad()
def audio_complexity(model: AudioCodecModel) -> dict[str, float | int]:
    """MMAC per second of audio of encoder and decoder, and their parameters."""
    was_training = model.training
    model.eval()
    sr = model.config.sample_rate
    x = torch.zeros(1, 1, sr)
    frames = model.encoder(x).shape[-1]
    y = torch.zeros(1, model.config.latent, frames)
    out: dict[str, float | int] = {
        "encoder_mmac_per_s": count_macs(lambda: model.encoder(x), model.encoder) / 1e6,
        "decoder_mmac_per_s": count_macs(lambda: model.decoder(y), model.decoder) / 1e6,
        "encoder_params": parameters(model.encoder),
        "decoder_params": parameters(model.decoder),
    }
    model.train(was_training)
    return out


def complexity(model: AnyModel) -> dict[str, float | int]:
    """The manifest's "complexity" entry for any model family (MAC figures to 4 decimals)."""
    out = audio_complexity(model) if isinstance(model, AudioCodecModel) else image_complexity(model)
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}
