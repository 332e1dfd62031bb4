"""Latent refinement: the encoder searches for a latent that costs less than rounding g_a's output (`refine=`).

g_a is trained to be good on average; for one image, a latent nearby often decodes better or codes in fewer
bits. With the bundle's refiner.onnx (the gradient of g_s's squared error, export/refiner.py) the encoder
descends on the training objective λ·255²·MSE + bits/pixel over the gained latent v, with z (and so the
hyperprior's means and scales) kept, using stochastic Gumbel annealing for the rounding (Yang et al. 2020):
each element is a soft, noisy choice between rounding down and up whose temperature falls to zero, so the
search ends on integers. Bits are the scale tables' own costs (linear between the two choices). The
checkerboard context's parameters for the non-anchors are recomputed from the current anchors every few
steps. The result is encoded as usual (rate-distortion rounding and all) and kept only if its true cost —
coded bytes and decoded error — is lower than that of the unrefined latent, so refining never makes a file
worse by the model's objective. Decoders see an ordinary file. Deterministic: the noise has a fixed seed.

Cost: one pass of g_s forward and backward per step (about 3 decoder passes), so `refine=30` makes encoding
roughly 100 decoder passes slower; the images that run as one tensor (up to 1536² padded) are refined, bigger
ones are coded without it.
"""
from __future__ import annotations

import numpy as np

from ..coding.latent import HyperpriorCoding
from ..errors import InputError
from ..models.bundle import ModelBundle

LEARNING_RATE = 0.05  # Adam's step on v, in quantiser steps (cosine decay over the search)
START_TEMPERATURE = 0.5
CONTEXT_EVERY = 4  # steps between recomputations of the non-anchors' means and scales
SEED = 0
_EDGE = 1e-4  # fractions kept inside (0, 1), where atanh is finite
_ADAM = (0.9, 0.999, 1e-8)


def quality_lambda(bundle: ModelBundle, quality: int) -> float:
    """λ of the training objective at this quality (the bundle's refiner entry: one per quality)."""
    lambdas = (bundle.manifest.raw.get("refiner") or {}).get("lambdas")
    if not lambdas or not 1 <= quality <= len(lambdas):
        raise InputError(f"model {bundle.manifest.name} {bundle.model_id} has no λ for quality {quality} "
                         "(its refiner entry lacks the lambdas)")
    return float(lambdas[quality - 1])


def rd_cost(bundle: ModelBundle, coding: HyperpriorCoding, x: np.ndarray, v: np.ndarray, z: np.ndarray,
            gain: np.ndarray, lam: float) -> float:
    """λ·255²·MSE + bits/pixel of the file the encoder would write for v: coded bytes, decoded error."""
    streams, symbols = coding.encode(v, z)
    z_hat = np.clip(np.floor(z + 0.5), np.iinfo(np.int32).min, np.iinfo(np.int32).max).astype(np.int32)
    means, _ = coding.parameters(z_hat, symbols)
    decoded = bundle.run_decoder(np.ascontiguousarray(((symbols + means) / gain)[None], dtype=np.float32))
    pixels = x.shape[2] * x.shape[3]
    mse = float(np.mean(np.square(decoded.astype(np.float64) - x)))
    size = len(streams.hyper) + len(streams.conditional) + len(streams.context)
    return lam * 255.0**2 * mse + 8.0 * size / pixels


def refine_latent(bundle: ModelBundle, coding: HyperpriorCoding, x: np.ndarray, v: np.ndarray, z: np.ndarray,
                  quality: int, steps: int) -> np.ndarray:
    """The gained latent (M, h, w) to encode for the padded image x (1, 3, 16h, 16w): refined by `steps` steps
    of the search, or v itself where the search did not lower the true cost."""
    if steps <= 0:
        return v
    lam = quality_lambda(bundle, quality)
    gain = coding.gain(quality)
    z_hat = np.clip(np.floor(z + 0.5), np.iinfo(np.int32).min, np.iinfo(np.int32).max).astype(np.int32)
    pixels = x.shape[2] * x.shape[3]
    distortion_scale = np.float32(lam * 255.0**2 / (3 * pixels))  # per unit of the squared error's sum
    rate_scale = np.float32(1.0 / pixels)
    rng = np.random.default_rng(SEED)
    current = v.astype(np.float32).copy()
    first, second = np.zeros_like(current), np.zeros_like(current)
    beta1, beta2, eps = _ADAM
    context = coding.context is not None
    # the anchors' means and scales come from z alone; the others' from the anchors' symbols as well
    means, index = coding.parameters(z_hat, np.zeros(v.shape, np.int32) if context else None)
    for step in range(steps):
        if context and step % CONTEXT_EVERY == 0:
            means, index = coding.parameters(z_hat, np.floor(current - means + 0.5).astype(np.int32))
        temperature = START_TEMPERATURE * max(1e-3, 1.0 - step / steps)
        u = current - means
        low = np.floor(u)
        frac = np.clip(u - low, _EDGE, 1.0 - _EDGE)
        noise = rng.gumbel(size=(2, *u.shape)).astype(np.float32)
        logit = ((np.arctanh(frac) - np.arctanh(1.0 - frac)) / temperature + noise[1] - noise[0]) / temperature
        up = (1.0 / (1.0 + np.exp(-np.clip(logit, -60.0, 60.0)))).astype(np.float32)  # weight of rounding up
        latent = ((low + up + means) / gain).astype(np.float32)[None]
        grad_latent, _ = bundle.run_refiner(latent, x)
        low_int = low.astype(np.int32)
        bits_step = coding.symbol_bits(low_int + 1, index) - coding.symbol_bits(low_int, index)
        d_up = distortion_scale * grad_latent[0] / gain + rate_scale * bits_step
        d_frac = up * (1.0 - up) / temperature**2 * (1.0 / (1.0 - frac**2) + 1.0 / (1.0 - (1.0 - frac) ** 2))
        grad = (d_up * d_frac).astype(np.float32)
        first = beta1 * first + (1 - beta1) * grad
        second = beta2 * second + (1 - beta2) * grad * grad
        t = step + 1
        lr = LEARNING_RATE * 0.5 * (1.0 + np.cos(np.pi * step / steps))
        current -= (lr * (first / (1 - beta1**t)) / (np.sqrt(second / (1 - beta2**t)) + eps)).astype(np.float32)
    if rd_cost(bundle, coding, x, current, z, gain, lam) < rd_cost(bundle, coding, x, v, z, gain, lam):
        return current
    return v
