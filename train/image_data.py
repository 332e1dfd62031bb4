"""Image folders for training: decoded once into memory, sampled as random flipped crops."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def list_files(folder: str | Path, suffixes: set[str], what: str) -> list[Path]:
    """Files with these suffixes below a folder, sorted; one-line errors for a missing or empty folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes)
    if not files:
        raise FileNotFoundError(f"no {what} files ({'/'.join(sorted(s[1:] for s in suffixes))}) in {folder}")
    return files


def list_images(folder: str | Path) -> list[Path]:
    return list_files(folder, IMAGE_SUFFIXES, "image")


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.array(im.convert("RGB"), dtype=np.uint8)  # writable copy


class CropSampler:
    """Random crops with horizontal/vertical flips from images held in RAM as uint8.

    Decoding JPEGs every step would cost about as much as a training step on 2 cores,
    so every image is decoded once (Pillow's decoder releases the GIL: threads decode in parallel).
    Images smaller than the crop are edge-padded. `to(device)` keeps the images on a GPU, so a step
    there does not wait for the CPU to cut and copy its batch; the random draws stay on the CPU
    generator either way, so a run draws the same crops on any device.
    """

    def __init__(self, folder: str | Path, crop: int, seed: int):
        self.crop = crop
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            arrays = list(pool.map(load_rgb, list_images(folder)))
        self.images = [torch.from_numpy(a).permute(2, 0, 1).contiguous() for a in arrays]
        self.generator = torch.Generator().manual_seed(seed)

    def to(self, device: torch.device) -> "CropSampler":
        self.images = [img.to(device) for img in self.images]
        return self

    def __len__(self) -> int:
        return len(self.images)

    def _crop_one(self, img: torch.Tensor) -> torch.Tensor:
        c, h, w = img.shape
        s = self.crop
        if h < s or w < s:
            img = torch.nn.functional.pad(img[None].float(), (0, max(0, s - w), 0, max(0, s - h)), mode="replicate")[0]
            img = img.to(torch.uint8)
            c, h, w = img.shape
        top = int(torch.randint(0, h - s + 1, (1,), generator=self.generator))
        left = int(torch.randint(0, w - s + 1, (1,), generator=self.generator))
        out = img[:, top : top + s, left : left + s]
        flips = torch.randint(0, 2, (2,), generator=self.generator)
        if flips[0]:
            out = out.flip(2)
        if flips[1]:
            out = out.flip(1)
        return out

    def batch(self, size: int) -> torch.Tensor:
        idx = torch.randint(0, len(self.images), (size,), generator=self.generator)
        crops = [self._crop_one(self.images[int(i)]) for i in idx]
        return torch.stack(crops).float().div_(255.0)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
