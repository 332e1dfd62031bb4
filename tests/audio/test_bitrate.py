"""Bitrate mode (-b): the search picks the highest quality whose corrected file fits, with one decoder pass.

A corrected file is its uncorrected one (latent + silence sections) plus the level section, which needs a
decoder pass. The first tests replace _pack with a fake of known sizes that counts those passes; the last one
codes real audio with the shipped model."""
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from aecodec.audio import codec as audio_codec
from aecodec.errors import AecNotice
from aecodec.format import container, sections


class FakeFiles:
    """_pack stand-in: the uncorrected file of quality q takes plain(q) bytes, the corrected one plain(q) + level(q).
    Counts the corrected files made (each is a decoder pass)."""

    def __init__(self, plain, level):
        self.plain, self.level, self.passes = plain, level, []

    def __call__(self, bundle, encoded, quality, corrected=True):
        if not corrected:
            return bytes(self.plain(quality))
        self.passes.append(quality)
        return bytes(self.plain(quality) + self.level(quality))

    def quality_of(self, data: bytes) -> int:
        return next(q for q in range(1, 101) if self.plain(q) + self.level(q) == len(data))


class OneSecond:
    num_samples = samplerate = 24_000  # kbps = 8 × bytes / 1000


def search(monkeypatch, files: FakeFiles, budget: int, bound: int) -> int:
    """Quality the search picks for a target of `budget` bytes (1 s of audio), the level section at most bound."""
    monkeypatch.setattr(audio_codec, "_pack", files)
    monkeypatch.setattr(audio_codec, "_level_bound", lambda encoded: bound)
    files.passes.clear()
    data = audio_codec._search_bitrate(None, OneSecond(), 8 * budget / 1000)
    assert len(data) <= budget or files.quality_of(data) == 1
    return files.quality_of(data)


def plain(q: int) -> int:
    return 3000 + 200 * q + q * q // 2  # steps of 200-300 bytes


def reference(files: FakeFiles, budget: int) -> int:
    """Highest quality whose corrected file fits (1 if none)."""
    return max([q for q in range(1, 101) if files.plain(q) + files.level(q) <= budget] or [1])


def test_one_pass_where_the_corrections_push_the_first_pick_over(monkeypatch):
    """The uncorrected file of quality 50 fits but the corrected one does not: the old search made quality 50's
    corrected file first, then 49's. This one goes to 49 at once."""
    files = FakeFiles(plain, lambda q: 80)
    budget = plain(50) + 40
    assert search(monkeypatch, files, budget, bound=90) == 49
    assert files.passes == [49]


LEVELS = {"constant": lambda q: 80, "none": lambda q: 0, "odd qualities +1": lambda q: 80 + q % 2,
          "steps of 7 qualities": lambda q: 60 + (q // 7) % 2, "falling": lambda q: 130 - q // 3}


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("loose", [0, 30])
def test_highest_quality_that_fits_for_any_target(monkeypatch, level, loose):
    """Over targets between every two qualities' sizes, the pick is the highest quality whose corrected file
    fits (here the level section of the next quality is never more than a byte and 1/64 smaller), with one
    decoder pass for nearly all targets and never more than two. loose: bytes the bound is above the largest."""
    files = FakeFiles(plain, LEVELS[level])
    bound = max(files.level(q) for q in range(1, 101)) + loose
    passes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AecNotice)  # targets below quality 1
        for budget in range(plain(1), plain(100) + 400, 53):
            assert search(monkeypatch, files, budget, bound) == reference(files, budget), budget
            passes.append(len(files.passes))
    assert max(passes) <= 2
    assert sum(p == 1 for p in passes) >= (0.97 if loose == 0 and level in ("constant", "none") else 0.8) * len(passes)


def test_a_next_quality_with_much_smaller_corrections_is_left_for_one_pass(monkeypatch):
    """The trade-off: when the next quality's level section is smaller than this one's by more than the slack,
    a target it would just meet keeps this quality (one pass; the file still fits)."""
    files = FakeFiles(plain, lambda q: 100 if q <= 50 else 90)
    budget = plain(51) + 95
    assert search(monkeypatch, files, budget, bound=100) == 50 and reference(files, budget) == 51
    assert files.passes == [50]


def test_a_level_section_larger_than_the_bound_still_gives_a_file_that_fits(monkeypatch):
    """The bound is zlib's worst case; were it wrong, the search steps down from what the pass measured."""
    files = FakeFiles(plain, lambda q: 500)
    for budget in (plain(40) + 100, plain(40) + 499, plain(40) + 500):
        quality = search(monkeypatch, files, budget, bound=50)
        assert quality == reference(files, budget) and files.passes[0] > quality and len(files.passes) <= 3


def test_out_of_reach_targets_code_at_the_nearest_end_with_a_notice(monkeypatch):
    files = FakeFiles(plain, lambda q: 80)
    for budget, quality, word in ((plain(1), 1, "below"), (10 * plain(100), 100, "above")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert search(monkeypatch, files, budget, bound=100) == quality
        assert len(files.passes) == 1
        assert [w for w in caught if issubclass(w.category, AecNotice) and word in str(w.message)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search(monkeypatch, files, plain(100) + 80, bound=80)  # exactly quality 100's size: no notice
    assert files.passes == [100] and not caught


def test_level_bound_holds_for_incompressible_codes():
    """_level_bound is at least section 8's size for codes deflate cannot shrink, for 1 and 2 channels."""
    rng = np.random.default_rng(0)
    for channels, n in ((1, 5), (1, 18_000), (2, 300)):
        block = 4800
        gains = [rng.integers(-128, 128, n).astype(np.int8) for _ in range(channels)]
        dcs = [rng.integers(-32768, 32768, n).astype(np.int16) for _ in range(channels)]
        framed = 5 + len(sections.pack_level(block, gains, dcs))  # tag u8 + length u32 + payload
        encoded = audio_codec.Encoded([None] * channels, SimpleNamespace(block=block), [], [0] * channels, n * block,
                                      24_000)
        assert framed <= audio_codec._level_bound(encoded) <= framed + 32 * channels


def test_real_audio_in_the_normal_case_needs_one_decoder_pass(monkeypatch):
    """Shipped model: a target that quality q+1's uncorrected file just meets (so its corrected one is over)
    gives quality q with one decoder pass (the old search made two), and the file stays under the target."""
    pytest.importorskip("soxr")
    bundle = audio_codec.audio_bundle(None)
    rate = 24_000
    t = np.arange(4 * rate) / rate
    x = (0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.1 * np.sin(2 * np.pi * 0.5 * t)))
         + 0.05 * np.random.default_rng(0).normal(size=len(t))).astype(np.float32)
    encoded = audio_codec._encode_latents(bundle, audio_codec._array_blocks(x[:, None]), len(x), 1, rate)
    pack = audio_codec._pack
    bound = audio_codec._level_bound(encoded)
    size = {40: len(pack(bundle, encoded, 40, corrected=False))}
    for q in range(40, 70):  # a quality whose next one is a big step up
        size[q + 1] = len(pack(bundle, encoded, q + 1, corrected=False))
        if size[q + 1] - size[q] >= bound:
            break
    else:
        pytest.fail("no step between qualities 40 and 70 is as large as the level section's bound")
    passes = []
    original = audio_codec._corrections
    monkeypatch.setattr(audio_codec, "_corrections", lambda *a: passes.append(1) or original(*a))
    data = audio_codec._search_bitrate(bundle, encoded, 8 * size[q + 1] / 4 / 1000)
    f = container.unpack(data)
    assert f.header.quality == q and len(passes) == 1
    assert size[q] < len(data) <= size[q + 1] and container.SECTION_AUDIO_LEVEL in f.sections
