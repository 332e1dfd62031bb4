"""Run time of hyperprior bundles (format version 3): round trip, tiling, and bit-exact entropy parameters.

The determinism test is the point of the integer h_s: whatever float noise the encoder side has (ONNX
Runtime with 1 or 2 threads, PyTorch eager, perturbed hyper path), the decoder derives exactly the
symbols and scale indices the encoder used, on any thread count.
"""
import hashlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import aecodec
from aecodec.coding import HyperStreams
from aecodec.format import container
from aecodec.image.tiling import to_network_input
from aecodec.models import ModelBundle
from tests.conftest import natural_image

torch = pytest.importorskip("torch")


def test_round_trip_is_version_3_with_hyper_sections(hyperprior_bundle):
    folder, manifest, _ = hyperprior_bundle
    for h, w, c in ((1, 1, 3), (63, 65, 3), (70, 90, 4), (40, 30, 1)):
        img = natural_image(h, w, seed=h + w, channels=c)
        img = img[:, :, 0] if c == 1 else img
        data = aecodec.compress(img, quality=40, model=folder, lossless=False)
        facts = aecodec.info(data)
        assert facts["format_version"] == 3 and facts["model_id"] == manifest["model_id"]
        assert set(facts["sections"]) >= {"hyper latent", "conditional latent"} and "latent" not in facts["sections"]
        out = aecodec.decompress(data, model=folder, as_array=True)
        assert out.shape == img.shape
        assert np.array_equal(out, aecodec.decompress(data, model=folder, as_array=True))


def test_tiled_coding_matches_whole_image(hyperprior_bundle, monkeypatch):
    import aecodec.image.codec as image_codec

    folder = hyperprior_bundle[0]
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


def test_mismatched_sections_are_refused(hyperprior_bundle):
    folder = hyperprior_bundle[0]
    data = aecodec.compress(natural_image(16, 16), quality=50, model=folder, lossless=False)
    f = container.unpack(data)
    factorized = container.pack(container.AecFile(f.header, {container.SECTION_LATENT: b"\0" * 8}))
    with pytest.raises(aecodec.FormatError, match="hyperprior model"):
        aecodec.decompress(factorized, model=folder)


def _streams(data: bytes) -> HyperStreams:
    f = container.unpack(data)
    return HyperStreams(f.sections[container.SECTION_HYPER_LATENT], f.sections[container.SECTION_CONDITIONAL_LATENT])


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


def test_decoders_derive_the_encoders_symbols_and_scale_indices_exactly(hyperprior_bundle, tmp_path):
    folder, _, checkpoint = hyperprior_bundle
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
                means, index = coding.parameters(z_hat)
                for dec_name, dec in decoders.items():
                    got = dec.decode_symbols(streams, v.shape[1:])
                    assert np.array_equal(got.z_hat, z_hat), (enc_name, dec_name, i, quality)
                    assert np.array_equal(got.index, index), (enc_name, dec_name, i, quality)
                    assert np.array_equal(got.symbols, symbols), (enc_name, dec_name, i, quality)
                    assert np.array_equal(got.means, means)
                    checked += symbols.size
                saved[f"{enc_name}-{i}-{quality}"] = z_hat
                saved[f"{enc_name}-{i}-{quality}-index"] = index
    assert checked > 100_000
    # another process, with another BLAS / OpenMP thread count, computes the same scale indices and means
    np.savez(tmp_path / "z.npz", **saved)
    code = textwrap.dedent(f"""
        import hashlib, numpy as np, aecodec
        coding = aecodec.load_bundle({str(folder)!r}).coding
        z = np.load({str(tmp_path / "z.npz")!r})
        bad = [k for k in z.files if not k.endswith("-index")
               and not np.array_equal(coding.parameters(z[k])[1], z[k + "-index"])]
        print(len(bad))
    """)
    env = {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "PATH": ""}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0 and res.stdout.strip() == "0", res.stderr
    assert hashlib  # imported for the subprocess's sake


def test_hostile_hyper_streams_never_crash(hyperprior_bundle):
    folder = hyperprior_bundle[0]
    data = aecodec.compress(natural_image(64, 64), quality=50, model=folder, lossless=False)
    f = container.unpack(data)
    rng = np.random.default_rng(1)
    for trial in range(60):
        sections = dict(f.sections)
        tag = (container.SECTION_HYPER_LATENT, container.SECTION_CONDITIONAL_LATENT)[trial % 2]
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
