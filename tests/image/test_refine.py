"""The encoder's latent search (`refine=`): lower true cost, ordinary files, deterministic, clear refusals."""
import numpy as np
import pytest

import aecodec
from aecodec.errors import InputError
from aecodec.image.refine import rd_cost, refine_latent
from aecodec.image.tiling import to_network_input
from aecodec.models import load_bundle

from tests.conftest import natural_image


@pytest.fixture(scope="module")
def shipped():
    bundle = load_bundle("image-hyperprior")
    if not bundle.has_refiner:
        pytest.skip("the shipped image-hyperprior bundle has no refiner.onnx")
    return bundle


@pytest.mark.parametrize("quality", [20, 70])
def test_the_search_lowers_the_true_cost(shipped, quality):
    coding = shipped.coding
    gain = coding.gain(quality)
    lam = float(shipped.manifest.raw["refiner"]["lambdas"][quality - 1])
    improved = 0
    for seed in (1, 2, 3):
        x = to_network_input(natural_image(64, 128, seed=seed), shipped.manifest.padding)
        v, z = (a[0] for a in shipped.run_encoder(x, gain))
        refined = refine_latent(shipped, coding, x, v, z, quality, 100)
        before = rd_cost(shipped, coding, x, v, z, gain, lam)
        after = rd_cost(shipped, coding, x, refined, z, gain, lam)
        assert after <= before  # a search that finds nothing better keeps the encoder's latent
        improved += after < before and not np.array_equal(refined, v)
    # on a small image the search sometimes finds nothing (one of 8 images x qualities with the session-20 weights)
    assert improved >= 2


def test_refined_files_are_ordinary_files_and_repeatable(shipped):
    image = natural_image(64, 96, seed=5)
    plain = aecodec.compress(image, 60)
    refined = aecodec.compress(image, 60, refine=12)
    assert aecodec.compress(image, 60, refine=12) == refined  # fixed-seed noise: the same file every time
    facts = aecodec.info(refined)
    assert (facts["width"], facts["height"], facts["quality"]) == (96, 64, 60)
    assert facts["model_id"] == aecodec.info(plain)["model_id"]
    decoded = aecodec.decompress(refined, as_array=True)
    assert decoded.shape == image.shape and decoded.dtype == np.uint8


def test_refusals():
    image = natural_image(32, 32)
    with pytest.raises(InputError, match="cannot refine"):
        aecodec.compress(image, 50, model="image-edge", refine=5)
    with pytest.raises(InputError, match="0 or more"):
        aecodec.compress(image, 50, refine=-1)
