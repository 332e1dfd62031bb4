"""Run time of hyperprior bundles (format version 3; with a checkerboard context version 4): round trip, tiling,
and bit-exact entropy parameters.

The determinism test is the point of the integer h_s: whatever float noise the encoder side has (ONNX
Runtime with 1 or 2 threads, PyTorch eager, perturbed hyper path), the decoder derives exactly the
symbols and scale indices the encoder used, on any thread count.
"""
import hashlib
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

import aecodec
from aecodec.coding import HyperStreams
from aecodec.format import container
from aecodec.image.codec import hyper_streams
from aecodec.image.tiling import to_network_input
from aecodec.models import ModelBundle
from tests.conftest import natural_image

torch = pytest.importorskip("torch")


def test_round_trip_is_version_3_with_hyper_sections_or_4_with_a_context(any_hyperprior_bundle):
    folder, manifest, _ = any_hyperprior_bundle
    context = manifest["latent_coding"] == "hyperprior-checkerboard"
    for h, w, c in ((1, 1, 3), (63, 65, 3), (70, 90, 4), (40, 30, 1)):
        img = natural_image(h, w, seed=h + w, channels=c)
        img = img[:, :, 0] if c == 1 else img
        data = aecodec.compress(img, quality=40, model=folder, lossless=False)
        facts = aecodec.info(data)
        assert facts["format_version"] == (4 if context else 3) and facts["model_id"] == manifest["model_id"]
        assert set(facts["sections"]) >= {"hyper latent", "conditional latent"} and "latent" not in facts["sections"]
        assert ("context latent" in facts["sections"]) == context
        out = aecodec.decompress(data, model=folder, as_array=True)
        assert out.shape == img.shape
        assert np.array_equal(out, aecodec.decompress(data, model=folder, as_array=True))


def test_tiled_coding_matches_whole_image(any_hyperprior_bundle, monkeypatch):
    import aecodec.image.codec as image_codec

    folder = any_hyperprior_bundle[0]
    img = natural_image(200, 260, seed=9)
    whole = aecodec.compress(img, quality=60, model=folder, lossless=False)
    ref = aecodec.decompress(whole, model=folder, as_array=True)
    monkeypatch.setattr(image_codec, "TILE", 128)
    monkeypatch.setattr(image_codec, "uses_tiles", lambda h, w: True)
    tiled = aecodec.compress(img, quality=60, model=folder, lossless=False)
    bundle = aecodec.load_bundle(folder)
    a, b = (bundle.coding.decode_symbols(_streams(d), (4 * 4, 5 * 4)) for d in (whole, tiled))  # 256x320 padded
    assert np.array_equal(a.z_hat, b.z_hat) and np.array_equal(a.symbols, b.symbols)
    assert np.array_equal(aecodec.decompress(whole, model=folder, as_array=True), ref)


def test_encoder_rounds_each_element_down_or_up_and_saves_bits(any_hyperprior_bundle, monkeypatch):
    """The encoder's rate-distortion rounding (not normative): every symbol is v − mean rounded down or up, never
    further, and the streams are smaller than plain rounding's, which a huge RDO_LAMBDA gives back."""
    import aecodec.coding.latent as latent

    bundle = aecodec.load_bundle(any_hyperprior_bundle[0])
    coding = bundle.coding
    sizes, shipped = {}, latent.RDO_LAMBDA
    for lam in (shipped, 1e12):
        monkeypatch.setattr(latent, "RDO_LAMBDA", lam)
        sizes[lam] = 0
        for quality in (10, 50, 90):
            x = to_network_input(natural_image(192, 256, seed=quality), 64)
            v, z = (a[0] for a in bundle.run_encoder(x, coding.gain(quality)))
            streams, symbols = coding.encode(v, z)
            means, _ = coding.parameters(np.floor(z + 0.5).astype(np.int32), symbols)
            error = v - means - symbols
            assert np.all(np.abs(error) < 1)
            if lam > 1e6:
                assert np.all(np.abs(error) <= 0.5)
            sizes[lam] += len(streams.conditional) + len(streams.context)
    assert sizes[shipped] < sizes[1e12], sizes


def test_mismatched_sections_are_refused(hyperprior_bundle):
    folder = hyperprior_bundle[0]
    data = aecodec.compress(natural_image(16, 16), quality=50, model=folder, lossless=False)
    f = container.unpack(data)
    factorized = container.pack(container.AecFile(f.header, {container.SECTION_LATENT: b"\0" * 8}))
    with pytest.raises(aecodec.FormatError, match="hyperprior model"):
        aecodec.decompress(factorized, model=folder)


def _streams(data: bytes) -> HyperStreams:
    return hyper_streams(container.unpack(data))


def _encoders(folder, checkpoint):
    """Encoder-side settings: name -> function(x, gain) -> (v, z) floats."""
    from aecodec.train.checkpoint_io import load_checkpoint

    model, _ = load_checkpoint(checkpoint)
    ort1, ort2 = ModelBundle(folder, threads=1), ModelBundle(folder, threads=2)
    rng = np.random.default_rng(0)

    def eager(x, gain, noise=0.0):
        with torch.no_grad():
            v = model.analysis(torch.from_numpy(x)) * torch.from_numpy(gain.reshape(1, -1, 1, 1))
            if noise:
                v = v * (1 + noise * torch.from_numpy(rng.standard_normal(v.shape).astype(np.float32)))
            z = model.hyper_analysis(v)
            if noise:
                z = z + noise * torch.from_numpy(rng.standard_normal(z.shape).astype(np.float32))
        return v[0].numpy(), z[0].numpy()

    return {
        "ort-1-thread": lambda x, g: tuple(a[0] for a in ort1.run_encoder(x, g)),
        "ort-2-threads": lambda x, g: tuple(a[0] for a in ort2.run_encoder(x, g)),
        "pytorch-eager": eager,
        "pytorch-perturbed": lambda x, g: eager(x, g, noise=1e-4),
    }


def test_decoders_derive_the_encoders_symbols_and_scale_indices_exactly(any_hyperprior_bundle, tmp_path):
    folder, _, checkpoint = any_hyperprior_bundle
    coding = aecodec.load_bundle(folder).coding
    decoders = {"1-thread": ModelBundle(folder, threads=1).coding, "2-threads": ModelBundle(folder, threads=2).coding}
    images = [natural_image(h, w, seed=s) for s, (h, w) in enumerate([(64, 64), (96, 160), (130, 70), (200, 200),
                                                                      (64, 256), (150, 110)])]
    saved = {}
    checked = 0
    for enc_name, encode in _encoders(folder, checkpoint).items():
        for i, img in enumerate(images):
            for quality in (5, 60, 100):
                x = to_network_input(img, 64)
                v, z = encode(x, coding.gain(quality))
                streams, symbols = coding.encode(v, z)
                z_hat = np.floor(z + 0.5).astype(np.int32)
                means, index = coding.parameters(z_hat, symbols)
                for dec_name, dec in decoders.items():
                    got = dec.decode_symbols(streams, v.shape[1:])
                    assert np.array_equal(got.z_hat, z_hat), (enc_name, dec_name, i, quality)
                    assert np.array_equal(got.index, index), (enc_name, dec_name, i, quality)
                    assert np.array_equal(got.symbols, symbols), (enc_name, dec_name, i, quality)
                    assert np.array_equal(got.means, means)
                    checked += symbols.size
                saved[f"{enc_name}-{i}-{quality}"] = z_hat
                saved[f"{enc_name}-{i}-{quality}-index"] = index
                saved[f"{enc_name}-{i}-{quality}-symbols"] = symbols
    assert checked > 100_000
    # another process, with another BLAS / OpenMP thread count, computes the same scale indices and means
    np.savez(tmp_path / "z.npz", **saved)
    code = textwrap.dedent(f"""
        import hashlib, numpy as np, aecodec
        coding = aecodec.load_bundle({str(folder)!r}).coding
        z = np.load({str(tmp_path / "z.npz")!r})
        bad = [k for k in z.files if not k.endswith(("-index", "-symbols"))
               and not np.array_equal(coding.parameters(z[k], z[k + "-symbols"])[1], z[k + "-index"])]
        print(len(bad))
    """)
    env = {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "PATH": ""}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0 and res.stdout.strip() == "0", res.stderr
    assert hashlib  # imported for the subprocess's sake


def test_hostile_hyper_streams_never_crash(any_hyperprior_bundle):
    folder = any_hyperprior_bundle[0]
    data = aecodec.compress(natural_image(64, 64), quality=50, model=folder, lossless=False)
    f = container.unpack(data)
    rng = np.random.default_rng(1)
    tags = [tag for tag in (container.SECTION_HYPER_LATENT, container.SECTION_CONDITIONAL_LATENT,
                            container.SECTION_CONTEXT_LATENT) if tag in f.sections]
    for trial in range(60):
        sections = dict(f.sections)
        tag = tags[trial % len(tags)]
        payload = bytearray(sections[tag])
        if trial % 3 == 0:
            payload = bytearray(rng.integers(0, 256, 4 * rng.integers(0, 12), dtype=np.uint8).tobytes())
        elif payload:
            payload[rng.integers(0, len(payload))] ^= 1 << int(rng.integers(0, 8))
        sections[tag] = bytes(payload)
        try:
            out = aecodec.decompress(container.pack(container.AecFile(f.header, sections)), model=folder,
                                     as_array=True)
            assert out.shape == (64, 64, 3)
        except aecodec.FormatError:
            pass


def test_context_files_and_bundles_must_match(hyperprior_bundle, context_bundle):
    img = natural_image(40, 40)
    plain = container.unpack(aecodec.compress(img, quality=50, model=hyperprior_bundle[0], lossless=False))
    ctx = container.unpack(aecodec.compress(img, quality=50, model=context_bundle[0], lossless=False))
    assert ctx.header.version == 4 and plain.header.version == 3
    # a version 4 file needs its context section; version 3 files cannot carry one
    without = {k: v for k, v in ctx.sections.items() if k != container.SECTION_CONTEXT_LATENT}
    body = bytearray(container.pack(container.AecFile(ctx.header, without))[:-4])
    body[4] = 4  # claims version 4
    with pytest.raises(aecodec.FormatError, match="context latent section"):
        container.unpack(bytes(body) + struct.pack("<I", zlib.crc32(body)))
    # the model decides: a context model refuses a file without the section, a plain one a file with it
    with pytest.raises(aecodec.FormatError, match="checkerboard context"):
        aecodec.decompress(container.pack(container.AecFile(ctx.header, without)), model=context_bundle[0])
    with_ctx = {**plain.sections, container.SECTION_CONTEXT_LATENT: b"\0" * 8}
    with pytest.raises(aecodec.FormatError, match="checkerboard context"):
        aecodec.decompress(container.pack(container.AecFile(plain.header, with_ctx)), model=hyperprior_bundle[0])


def test_banded_context_parameters_equal_the_whole_maps(context_bundle, monkeypatch):
    """Tall latents run h_s and the context in bands of ẑ rows; the cut must not change any parameter."""
    from aecodec.coding import hyper

    coding = aecodec.load_bundle(context_bundle[0]).coding
    rng = np.random.default_rng(3)
    z_hat = rng.integers(-3, 4, (coding.hyper_channels, 13, 3)).astype(np.int32)
    symbols = rng.integers(-40, 40, (coding.channels, 52, 12)).astype(np.int32)
    whole = coding.parameters(z_hat, symbols)
    monkeypatch.setattr(hyper, "BAND_ROWS", 3)
    banded = coding.parameters(z_hat, symbols)
    assert np.array_equal(whole[0], banded[0]) and np.array_equal(whole[1], banded[1])
    # the anchors' symbols move the others' parameters (the context works), never the anchors' own
    anchors = hyper.anchor_mask(52, 12)
    moved = coding.parameters(z_hat, symbols + 7 * anchors)
    assert np.array_equal(moved[1][:, anchors], whole[1][:, anchors])
    assert not np.array_equal(moved[0][:, ~anchors], whole[0][:, ~anchors])
    assert np.array_equal(coding.parameters(z_hat, symbols + 7 * ~anchors)[0], whole[0])
