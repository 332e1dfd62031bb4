"""Model bundles and the registry of shipped ones (the bundle folders live beside this file)."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from ..errors import AecError, ModelMismatchError
from .bundle import (Manifest, ModelBundle, Variant, choose_variant, compute_model_id, precisions_for,
                     requested_precision, use_precision)
from .runtime import PRECISIONS, select_providers, tensorrt_cache_dir

MODELS_DIR = Path(__file__).parent
DEFAULT_IMAGE_MODEL = "image-hyperprior"
DEFAULT_AUDIO_MODEL = "audio-edge"

# Models that shipped in an earlier release and were replaced under the same name (model id -> what to tell
# the user). Their files are refused with this name rather than an anonymous id.
RETIRED_MODELS = {
    "39eea2f0bb68fe26a10302d17ffbea1f": "model image-hyperprior 39eea2f0bb68fe26a10302d17ffbea1f of aecodec 0.3.0",
    "8d3e5111327a7a473ad572fe81bb4c4c": "model audio-edge 8d3e5111327a7a473ad572fe81bb4c4c of aecodec 0.2.0-0.3.0",
    "6199fb77423841c4a704f0a570600758": "model image-hyperprior 6199fb77423841c4a704f0a570600758 of aecodec 0.4.0 "
                                        "development builds",
    "32ccb00e278556d771388a7f9f9e77c2": "model image-hyperprior 32ccb00e278556d771388a7f9f9e77c2 of aecodec 0.4.0 "
                                        "development builds",
    "0f306bc7ffbf6155ff407c8e5fc137ba": "model image-hyperprior 0f306bc7ffbf6155ff407c8e5fc137ba of aecodec 0.4.0 "
                                        "development builds",
    "e642d91b4219e3f124163e0eb015692c": "model image-hyperprior e642d91b4219e3f124163e0eb015692c of aecodec 0.4.0 "
                                        "development builds",
    "dd267bc9df86016c4d55d692ead77972": "model image-hyperprior dd267bc9df86016c4d55d692ead77972 of aecodec 0.4.0 "
                                        "development builds",
    "20185519e9e39f938f5891ef3a6c9855": "model image-hyperprior 20185519e9e39f938f5891ef3a6c9855 of aecodec 0.4.0 "
                                        "development builds",
    "0787be14d227a3a0da94082f330ec79b": "model image-hyperprior 0787be14d227a3a0da94082f330ec79b (rate-only checkerboard "
                                        "context) of aecodec 0.4.0 development builds",
    "b2140ec71ccf3658c24299c3e16240af": "model image-hyperprior b2140ec71ccf3658c24299c3e16240af (CPU-trained joint "
                                        "context model) of aecodec 0.4.0 development builds",
    "0ec0eb6b5334bdab8f9597fa9a5b3806": "model image-hyperprior 0ec0eb6b5334bdab8f9597fa9a5b3806 (GPU fine-tune) of "
                                        "aecodec 0.4.0 development builds",
    "4c8ee652b831a663209c3d18e82c97d4": "model image-hyperprior 4c8ee652b831a663209c3d18e82c97d4 (session 17) of "
                                        "aecodec 0.4.0 development builds",
    "5fbbd11bc567b272732b45b031005e48": "model image-hyperprior 5fbbd11bc567b272732b45b031005e48 (session 18) of "
                                        "aecodec 0.4.0 development builds",
    "4c9f4e45383552b1a625bfcd50a2a538": "model image-hyperprior 4c9f4e45383552b1a625bfcd50a2a538 (session 19) of "
                                        "aecodec 0.4.0 development builds",
    "7f055055e9c491f218f7ed9f1ecf67ac": "model image-hyperprior 7f055055e9c491f218f7ed9f1ecf67ac (session 20) of "
                                        "aecodec 0.4.0 development builds",
    "8bce3cb290f2104d72ee9b917edbc1ea": "model image-hyperprior 8bce3cb290f2104d72ee9b917edbc1ea (session 21) of "
                                        "aecodec 0.4.0 development builds",
    "0fc108e00dbc1295f4f5eace52b427e3": "model image-hyperprior 0fc108e00dbc1295f4f5eace52b427e3 (session 22) of "
                                        "aecodec 0.4.0 development builds",
    "882da58adaeaf49049e6d5248a7b3de4": "model image-hyperprior 882da58adaeaf49049e6d5248a7b3de4 (session 23) of "
                                        "aecodec 0.4.0 development builds",
    "801e12ee51b40c3275637cde522aa512": "model image-hyperprior 801e12ee51b40c3275637cde522aa512 (session 24) of "
                                        "aecodec 0.4.0 development builds",
    "17b42859f0c1348d2fe3bf4ca121c6ad": "model image-hyperprior 17b42859f0c1348d2fe3bf4ca121c6ad (session 25) of "
                                        "aecodec 0.4.0 development builds",
    "93386dc0388c5d9c30ccc098bab7c6a8": "model image-hyperprior 93386dc0388c5d9c30ccc098bab7c6a8 (session 26) of "
                                        "aecodec 0.4.0 development builds",
    "919934ecef566d48ef1fcf499ecaf667": "model image-hyperprior 919934ecef566d48ef1fcf499ecaf667 (session 27) of "
                                        "aecodec 0.4.0 development builds",
    "886ccda4adb2f7375fc8e4ed8fbe3edd": "model image-hyperprior 886ccda4adb2f7375fc8e4ed8fbe3edd (session 28) of "
                                        "aecodec 0.4.0 development builds",
    "57b5267eea792c32f3c3e03a0ece8c56": "model audio-edge 57b5267eea792c32f3c3e03a0ece8c56 (session-10 Fourier decoder) "
                                        "of aecodec 0.4.0 development builds",
    "b9c01dd53cfcb31bb52f228a196d3495": "model audio-edge b9c01dd53cfcb31bb52f228a196d3495 (conv decoder) of aecodec "
                                        "0.4.0 development builds",
    "332886466ade53db50081b963362cbf8": "model audio-edge 332886466ade53db50081b963362cbf8 (full encoder, joint "
                                        "fine-tune) of aecodec 0.4.0 development builds",
}

_registry_lock = threading.Lock()
_loaded: dict[tuple, ModelBundle] = {}


def shipped_bundles() -> list[Path]:
    """Folders of the bundles that ship with the package."""
    return sorted(p for p in MODELS_DIR.iterdir() if p.is_dir() and (p / "manifest.json").is_file())


def load_bundle(model: str | Path | ModelBundle | None = None, providers=None, *,
                default: str = DEFAULT_IMAGE_MODEL, precision: str | None = None) -> ModelBundle:
    """A bundle by folder path or shipped name (default: the default image model), cached per process.

    `precision` (default: `use_precision`'s, else $AECODEC_PRECISION, else "auto") picks the graph variant."""
    if isinstance(model, ModelBundle):
        return model
    folder = Path(model) if model and Path(model).is_dir() else MODELS_DIR / str(model or default)
    if not (folder / "manifest.json").is_file():
        names = ", ".join(p.name for p in shipped_bundles()) or "none"
        raise AecError(f"model {model!r} not found (shipped models: {names})")
    precision = requested_precision(precision)
    key = (str(folder.resolve()), str(providers or os.environ.get("AECODEC_PROVIDER")), precision)
    with _registry_lock:
        if key not in _loaded:
            _loaded[key] = ModelBundle(folder, providers=providers, precision=precision)
        return _loaded[key]


def bundle_for_id(model_id: bytes, preferred: str | Path | ModelBundle | None = None, providers=None) -> ModelBundle:
    """The bundle whose id matches a file's; the preferred one first, then every shipped one."""
    candidates = []
    if preferred is not None:
        candidates.append(load_bundle(preferred, providers))
    for folder in shipped_bundles():
        json_id = json.loads((folder / "manifest.json").read_text()).get("model_id", "")
        if json_id == model_id.hex():
            candidates.append(load_bundle(folder, providers))
    for b in candidates:
        if b.model_id_bytes == model_id:
            return b
    retired = RETIRED_MODELS.get(model_id.hex())
    if retired is not None:
        raise ModelMismatchError(f"file was written by {retired}, which this version no longer ships; "
                                 "decode it with that release or pass its bundle with --model")
    raise ModelMismatchError(
        f"file needs model {model_id.hex()}, which is not available"
        + (f" (given model is {candidates[0].model_id})" if preferred is not None else "")
        + "; pass the matching bundle with --model"
    )


__all__ = ["DEFAULT_AUDIO_MODEL", "DEFAULT_IMAGE_MODEL", "MODELS_DIR", "Manifest", "ModelBundle", "PRECISIONS", "Variant",
           "bundle_for_id", "choose_variant", "compute_model_id", "load_bundle", "precisions_for", "requested_precision",
           "select_providers", "shipped_bundles", "tensorrt_cache_dir", "use_precision"]
