"""The bitstream is a contract: fixed inputs encode to the recorded bytes and decode to the recorded samples.

tests/golden/golden.json was written by tests/golden/make_golden.py with the release before the
run-time restructure. On a CPU with another vector ISA (ONNX Runtime float results may differ in
the last bits) the exact hashes are not comparable; there the files must still decode and the
sizes stay within 2 %.
"""
import json
from pathlib import Path

import pytest

from tests.golden import make_golden as golden

GOLDEN = json.loads((Path(golden.__file__).parent / "golden.json").read_text())
SAME_ISA = GOLDEN["made_with"]["isa"] == golden.cpu_isa()


@pytest.fixture(scope="module")
def current() -> dict:
    return golden.compute()


@pytest.mark.parametrize("kind", ["images", "images_hyperprior", "audio"])
def test_encoding_gives_the_recorded_bytes(current, kind):
    for name, expected in GOLDEN[kind].items():
        got = current[kind][name]
        if SAME_ISA:
            assert got == expected, name
        else:
            assert abs(got["bytes"] - expected["bytes"]) <= 0.02 * expected["bytes"] + 8, name


def test_corpus_decodes_to_the_recorded_samples(current):
    assert set(current["corpus"]) == set(GOLDEN["corpus"])
    if SAME_ISA:
        assert current["corpus"] == GOLDEN["corpus"]


def test_audio_files_of_earlier_releases_are_refused_naming_the_model_and_release():
    """Version-2 audio files of audio-edge 0.2.0-0.3.0: that model was replaced under the same name (fine-tuned
    weights, new id), so they get a clear refusal instead of wrong audio. (Version-2 decoding itself is covered by
    the golden audio cases and the fuzz corpus, written with the current model.)"""
    import aecodec

    folder = Path(golden.__file__).parent
    for name in GOLDEN["old_files"]:
        data = (folder / name).read_bytes()
        assert data[4] == 2
        with pytest.raises(aecodec.AecError, match=r"audio-edge 8d3e5111.* of aecodec 0\.2\.0-0\.3\.0.*no longer ships"):
            aecodec.decompress_audio(data)


def test_files_of_a_retired_model_are_refused_naming_the_model_and_release():
    """The first image-hyperprior (0.3.0) was replaced under the same name: its files get a clear refusal."""
    import aecodec

    data = (Path(golden.__file__).parent / "image_v3_hyperprior_0.3.0.aec").read_bytes()
    with pytest.raises(aecodec.AecError, match=r"image-hyperprior 39eea2f0.* of aecodec 0\.3\.0.*no longer ships"):
        aecodec.decompress(data)
