"""Public API conveniences: paths and file objects, doctests in the docstrings."""
import doctest
import io

import numpy as np
from PIL import Image

import aecodec
import aecodec.image.codec

from .conftest import natural_image


def test_docstring_examples_run():
    result = doctest.testmod(aecodec.image.codec, verbose=False)
    assert result.attempted >= 2 and result.failed == 0


def test_paths_and_file_objects(tmp_path):
    img = natural_image(21, 34)
    src = tmp_path / "a.png"
    Image.fromarray(img).save(src)
    from_path = aecodec.compress(src, quality=40)
    from_str = aecodec.compress(str(src), quality=40)
    with open(src, "rb") as f:
        from_file = aecodec.compress(f, quality=40)
    assert from_path == from_str == from_file == aecodec.compress(img, quality=40)
    aec = tmp_path / "a.aec"
    aec.write_bytes(from_path)
    a = aecodec.decompress(aec, as_array=True)
    b = aecodec.decompress(io.BytesIO(from_path), as_array=True)
    assert np.array_equal(a, b) and a.shape == img.shape
    assert aecodec.info(aec)["width"] == 34 == aecodec.info(io.BytesIO(from_path))["width"]


def test_typed_package_marker():
    from pathlib import Path

    assert (Path(aecodec.__file__).parent / "py.typed").exists()
