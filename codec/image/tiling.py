"""Network input and output in tiles: pixels <-> float tensors, whole or TILE×TILE at a time.

Big images run through the networks in tiles: TILE×TILE pixels of output per tile, computed from
the tile plus a halo of context on each side (more than half the transforms' receptive field), so
tiles join without seams. The tiling depends on the image size only, never on the machine, so a
file decodes the same everywhere.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

TILE = 1024
HALO = 64  # pixels; > 61 px, half the analysis' receptive field
HYPER_HALO = 320  # pixels, for encoders that also compute z (h_a reaches 15 latent rows further)
TILE_ABOVE_PIXELS = 1536 * 1536  # images up to this padded size run as one tensor (about 1.2 GB peak)


def uses_tiles(padded_h: int, padded_w: int) -> bool:
    return padded_h * padded_w > TILE_ABOVE_PIXELS


def padded_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


def to_network_input(rgb: np.ndarray, multiple: int) -> np.ndarray:
    """RGB uint8 H×W×3 -> float32 1×3×H'×W' in [0, 1], edge-padded to a multiple of `multiple`."""
    h, w, _ = rgb.shape
    ph, pw = (-h) % multiple, (-w) % multiple
    x = rgb.astype(np.float32).transpose(2, 0, 1)[None] * np.float32(1 / 255)
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="edge")
    return np.ascontiguousarray(x)


def tile_input(rgb: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Rows y0:y1, cols x0:x1 of the edge-padded image, as float32 1×3×h×w in [0, 1]."""
    h, w, _ = rgb.shape
    rows = np.minimum(np.arange(y0, y1), h - 1)
    cols = np.minimum(np.arange(x0, x1), w - 1)
    t = rgb[rows[:, None], cols[None, :]]
    return np.ascontiguousarray(t.astype(np.float32).transpose(2, 0, 1)[None] * np.float32(1 / 255))


def to_uint8(x: np.ndarray) -> np.ndarray:
    """C×h×w float reconstruction -> h×w×C uint8 (NaN, which only a hostile latent can cause, -> 0)."""
    return np.fmin(np.fmax(np.rint(x * 255.0), 0), 255).astype(np.uint8).transpose(1, 2, 0)  # fmax: NaN -> 0


@dataclass(frozen=True)
class Tile:
    """One tile in latent units: the core [r0, r1) × [c0, c1) and its context window [a0, a1) × [b0, b1)."""

    r0: int
    r1: int
    c0: int
    c1: int
    a0: int
    a1: int
    b0: int
    b1: int


def latent_tiles(rows: int, cols: int, tile: int, halo: int) -> Iterator[Tile]:
    """Cores of `tile` latent rows/cols covering rows × cols, each with up to `halo` of context."""
    for r0 in range(0, rows, tile):
        for c0 in range(0, cols, tile):
            r1, c1 = min(rows, r0 + tile), min(cols, c0 + tile)
            yield Tile(r0, r1, c0, c1, max(0, r0 - halo), min(rows, r1 + halo), max(0, c0 - halo), min(cols, c1 + halo))
