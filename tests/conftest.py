import os

import numpy as np
import pytest

# keep ONNX Runtime / BLAS to one thread each so the suite behaves on 2-core machines
os.environ.setdefault("OMP_NUM_THREADS", "1")


def natural_image(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    """A photo-like test image: smooth gradients, edges and mild texture (uint8 H×W×C)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = [
        128 + 90 * np.sin(xx / max(w, 1) * 3.1 + c) * np.cos(yy / max(h, 1) * 2.3 - c) for c in range(channels)
    ]
    img = np.stack(base, axis=-1)
    img[(xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (min(h, w) / 4) ** 2] += 40  # a disc with a sharp edge
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    return natural_image(96, 128)
