"""refiner.onnx: the gradient of g_s's squared error, for the encoder's latent refinement (`--refine`).

An encoder can do better than rounding g_a's output: it can search, per image, for the latent whose decoded
image and bits cost least (Yang et al. 2020, "Improving inference for neural image compression": stochastic
Gumbel annealing). The run time has no autograd, so the exporter writes the gradient as a graph of its own:

    refiner.onnx: latent ŷ float32 N×M×h×w, target float32 N×3×16h×16w
                  -> gradient ∂/∂ŷ Σ(g_s(ŷ) − target)² (N×M×h×w), sse Σ(g_s(ŷ) − target)² per image (N)

It is g_s's forward pass followed by its backward pass written out layer by layer (the adjoint of a transposed
convolution is a convolution with the same weight; inverse GDN's is two 1×1 convolutions), so it exports as
plain ONNX convolutions. Only encoders read it: it is not in the model id, and files do not change meaning.

    python -m aecodec.export.refiner CHECKPOINT BUNDLE   # adds refiner.onnx to an exported hyperprior bundle
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aecodec.train.checkpoint_io import load_checkpoint
from aecodec.train.hyperprior import HyperpriorCodecModel
from aecodec.train.layers import GDN

from .graphs import IMAGE_AXES, export_graph, round_to_fp16
from .precision import store_weights_fp16
from .tables import NUM_QUALITIES, quality_gains

REFINER_FILE = "refiner.onnx"


class SynthesisGradient(nn.Module):
    """(ŷ, target) -> (∂/∂ŷ of the squared error of g_s(ŷ) against target, that squared error per image)."""

    def __init__(self, synthesis: nn.Module):
        super().__init__()
        self.layers = list(synthesis.net)  # type: ignore[arg-type]
        for layer in self.layers:
            if isinstance(layer, GDN):
                if not layer.inverse:
                    raise ValueError("g_s has a forward GDN; the refiner handles inverse GDN only")
            elif not (isinstance(layer, nn.ConvTranspose2d) and layer.stride == (2, 2)):
                raise ValueError(f"the refiner does not know g_s's layer {type(layer).__name__}")
        # (the sub-pixel form of decoder.onnx measured only ×1.08 faster here, for 1.4 MB more: not used)
        self.synthesis = synthesis

    def forward(self, latent: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, norms = [], []
        h = latent
        for layer in self.layers:
            inputs.append(h)
            if isinstance(layer, GDN):
                beta, gamma = layer.effective_params()
                c = gamma.shape[0]
                norm = torch.sqrt(F.conv2d(h * h, gamma.view(c, c, 1, 1), beta))
                norms.append(norm)
                h = h * norm
            else:
                h = layer(h)
        error = h - target
        sse = (error * error).sum(dim=(1, 2, 3))
        grad = 2.0 * error
        for layer, x in zip(reversed(self.layers), reversed(inputs)):
            if isinstance(layer, GDN):  # y = x·s, s = sqrt(β + Γx²): ∂x = ∂y·s + x·Γᵀ(∂y·x / s)
                _, gamma = layer.effective_params()
                c = gamma.shape[0]
                norm = norms.pop()
                grad = grad * norm + x * F.conv2d(grad * x / norm, gamma.t().reshape(c, c, 1, 1))
            else:  # the adjoint of a transposed convolution: the convolution with its weight
                assert isinstance(layer, nn.ConvTranspose2d)
                grad = F.conv2d(grad, layer.weight, stride=layer.stride, padding=layer.padding)
        return grad, sse


def quality_lambdas(lambdas: list[float], low: float, high: float) -> list[float]:
    """λ of every quality: the trained λs interpolated along the quality ladder exactly as the gains are
    (log-linear between rate points, extrapolated beyond them)."""
    log = np.log(np.asarray(lambdas, np.float64))[:, None]
    return [float(v) for v in quality_gains(log, NUM_QUALITIES, low, high).astype(np.float64)[:, 0]]


def export_refiner(model: HyperpriorCodecModel, folder: Path, fp16_storage: bool, low: float,
                   high: float) -> dict:
    """Write folder/refiner.onnx; returns its manifest entry (file, sha256, λ per quality, parity against
    autograd). `low` / `high`: the ladder positions of qualities 1 and 100, as for the gains."""
    model.eval()
    module = SynthesisGradient(model.synthesis).eval()
    m = model.config.latent
    path = folder / REFINER_FILE
    export_graph(module, (torch.randn(1, m, 4, 4), torch.rand(1, 3, 64, 64)), path,
                 {"latent": IMAGE_AXES, "target": IMAGE_AXES}, {"gradient": IMAGE_AXES, "sse": {0: "batch"}})
    if fp16_storage:
        store_weights_fp16(path)
    parity = check_refiner(model, path)
    return {"file": REFINER_FILE, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "inputs": "latent: float32 N×M×h×w (ŷ = v̂ / gain), target: float32 N×3×16h×16w (the padded image in "
                      "[0, 1]) -> gradient: ∂/∂ŷ Σ(g_s(ŷ) − target)² N×M×h×w, sse: Σ(g_s(ŷ) − target)² N",
            "lambdas": quality_lambdas(list(model.config.lambdas), low, high), "parity": parity}


def check_refiner(model: HyperpriorCodecModel, path: Path, seed: int = 0) -> dict:
    """The graph's gradient against PyTorch's autograd through g_s on a random latent and image."""
    import onnxruntime as ort

    gen = torch.Generator().manual_seed(seed)
    latent = torch.randn(1, model.config.latent, 6, 5, generator=gen) * 2.0
    target = torch.rand(1, 3, 96, 80, generator=gen)
    y = latent.clone().requires_grad_(True)
    error = ((model.synthesis(y) - target) ** 2).sum()
    (grad,) = torch.autograd.grad(error, y)
    sse = error.item()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got_grad, got_sse = session.run(None, {"latent": latent.numpy(), "target": target.numpy()})
    scale = float(grad.abs().max())
    report = {"max_gradient_error": float(np.abs(got_grad - grad.numpy()).max()) / max(scale, 1e-12),
              "sse_relative_error": abs(float(got_sse[0]) - sse) / max(sse, 1e-12)}
    if report["max_gradient_error"] > 1e-3 or report["sse_relative_error"] > 1e-4:
        raise ValueError(f"refiner.onnx disagrees with autograd: {report}")
    return report


def add_to_bundle(checkpoint: str | Path, bundle: str | Path) -> dict:
    """Write refiner.onnx into an exported hyperprior bundle and list it in its manifest (the model id stays:
    the checkpoint's g_s must be the bundle's, which the parity against decoder.onnx checks)."""
    import onnxruntime as ort

    folder = Path(bundle)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    model, _ = load_checkpoint(checkpoint)
    if not isinstance(model, HyperpriorCodecModel):
        raise SystemExit(f"{checkpoint}: not a hyperprior image checkpoint (only those have a refiner)")
    fp16 = "weights_storage" in manifest
    if fp16:  # the bundle's weights went through float16
        round_to_fp16(model)
    ladder = manifest["quality_ladder"]
    entry = export_refiner(model, folder, fp16, float(ladder["quality_1_position"]),
                           float(ladder["quality_100_position"]))
    gen = torch.Generator().manual_seed(1)
    latent = torch.randn(1, model.config.latent, 4, 4, generator=gen)
    decoder = ort.InferenceSession(str(folder / "decoder.onnx"), providers=["CPUExecutionProvider"])
    refiner = ort.InferenceSession(str(folder / REFINER_FILE), providers=["CPUExecutionProvider"])
    image = decoder.run(None, {"latent": latent.numpy()})[0]
    _, sse = refiner.run(None, {"latent": latent.numpy(), "target": np.zeros_like(image)})
    relative = abs(float(sse[0]) - float((image.astype(np.float64) ** 2).sum())) / float((image ** 2).sum())
    if relative > 1e-4:
        (folder / REFINER_FILE).unlink()
        raise SystemExit(f"{checkpoint}: its g_s is not the bundle's decoder (relative error {relative:.2e})")
    entry["parity"]["decoder_sse_relative_error"] = relative
    manifest["refiner"] = entry
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return entry


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m aecodec.export.refiner", description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="the training checkpoint the bundle was exported from")
    p.add_argument("bundle", help="exported hyperprior bundle folder")
    a = p.parse_args(argv)
    entry = add_to_bundle(a.checkpoint, a.bundle)
    print(f"{Path(a.bundle) / REFINER_FILE}: parity {entry['parity']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
