"""PyTorch transforms -> encoder.onnx and decoder.onnx, for every model family.

The encoder and decoder are separate graphs with dynamic batch and spatial / time axes; padding,
cropping, gains outside the graph and everything integer (rounding, entropy coding, the integer
h_s) stay in the run time. Image and audio decoders are exported in the sub-pixel form of their transposed
convolutions (subpixel.py), which ONNX Runtime runs several times faster (audio: from issue 18; bundles
exported before it hold ConvTranspose1d, which computes the same).

| family            | encoder.onnx                                   | decoder.onnx                 |
|-------------------|------------------------------------------------|------------------------------|
| image factorized  | image N×3×H×W -> latent y                      | latent -> reconstruction     |
| image hyperprior  | image, gain 1×M×1×1 -> latent v = y·g, hyper z | latent ŷ = v̂/g -> image      |
| audio             | audio N×1×T -> latent y                        | latent -> audio              |
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from aecodec.train.audio_model import AudioCodecModel, AudioDecoder, FourierDecoder
from aecodec.train.checkpoint_io import AnyModel
from aecodec.train.hyperprior import HyperpriorCodecModel

from .fourier_basis import compute_basis_at_load
from .subpixel import subpixel_audio_decoder, subpixel_synthesis

OPSET = 17
IMAGE_AXES = {0: "batch", 2: "height", 3: "width"}
AUDIO_AXES = {0: "batch", 2: "length"}
# audio decoder.onnx in the sub-pixel form (Conv1d + 1-D pixel shuffle) when True. Off: measured ×1.02–1.04
# faster in ONNX Runtime (where ELU and the residual convolutions dominate), but its 3-tap phase convolutions make
# decoder.onnx 1.3 MB larger than the ConvTranspose1d form, which the 40 MB model budget cannot spare
AUDIO_SUBPIXEL = False


class HyperpriorEncoder(nn.Module):
    """(image, gain) -> (v = g_a(image)·gain, z = h_a(v)): the float part of the hyperprior encoder."""

    def __init__(self, model: HyperpriorCodecModel):
        super().__init__()
        self.analysis = model.analysis
        self.hyper_analysis = model.hyper_analysis

    def forward(self, image: torch.Tensor, gain: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.analysis(image) * gain
        return v, self.hyper_analysis(v)


def round_to_fp16(model: torch.nn.Module) -> None:
    """Round every float tensor of the state dict to the nearest float16 value (kept in float32), so the graphs
    with float16-stored weights, a float16 weights file and the parity check all describe this one model.
    (Constants a model computes itself, such as the Fourier decoder's inverse DFT, stay exact.)"""
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())


def export_graph(module: nn.Module, examples: tuple[torch.Tensor, ...], path: Path, inputs: dict[str, dict],
                 outputs: dict[str, dict]) -> None:
    """One graph; `inputs` / `outputs` map names to their dynamic axes ({} = static)."""
    dynamic = {name: axes for name, axes in {**inputs, **outputs}.items() if axes}
    torch.onnx.export(
        module, examples, str(path), input_names=list(inputs), output_names=list(outputs), dynamic_axes=dynamic,
        opset_version=OPSET, do_constant_folding=True, dynamo=False,
    )


def export_graphs(model: AnyModel, folder: Path) -> None:
    """Write encoder.onnx and decoder.onnx of `model` (eval mode) into `folder`."""
    model.eval()
    if isinstance(model, AudioCodecModel):
        cfg = model.config
        export_graph(model.encoder, (torch.zeros(1, 1, cfg.hop * 4),), folder / "encoder.onnx",
                     {"audio": AUDIO_AXES}, {"latent": AUDIO_AXES})
        decoder = subpixel_audio_decoder(model.decoder) if AUDIO_SUBPIXEL and isinstance(model.decoder, AudioDecoder) \
            else model.decoder
        export_graph(decoder, (torch.zeros(1, cfg.latent, 4),), folder / "decoder.onnx",
                     {"latent": AUDIO_AXES}, {"audio": AUDIO_AXES})
        if isinstance(model.decoder, FourierDecoder):
            synthesis = model.decoder.synthesis
            if not compute_basis_at_load(folder / "decoder.onnx", synthesis.basis.numpy(), synthesis.hop):
                raise ValueError("the Fourier decoder's inverse-DFT matrix was not found in decoder.onnx")
        return
    m = model.config.latent
    if isinstance(model, HyperpriorCodecModel):
        export_graph(HyperpriorEncoder(model).eval(), (torch.rand(1, 3, 64, 64), torch.ones(1, m, 1, 1)),
                     folder / "encoder.onnx", {"image": IMAGE_AXES, "gain": {}},
                     {"latent": IMAGE_AXES, "hyper": IMAGE_AXES})
        decoder_output = "image"
    else:
        export_graph(model.analysis, (torch.rand(1, 3, 64, 64),), folder / "encoder.onnx",
                     {"image": IMAGE_AXES}, {"latent": IMAGE_AXES})
        # the first image exporter's name: re-exports of a factorized checkpoint stay byte-identical
        decoder_output = "reconstruction"
    export_graph(subpixel_synthesis(model.synthesis), (torch.rand(1, m, 4, 4),), folder / "decoder.onnx",
                 {"latent": IMAGE_AXES}, {decoder_output: IMAGE_AXES})
