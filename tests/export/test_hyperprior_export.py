"""Export of the hyperprior image model: bundle files, ONNX graphs, tables, integer h_s, parity, manifest."""
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from aecodec.coding.hyper import HyperSynthesis  # noqa: E402
from aecodec.export import tables as T  # noqa: E402
from aecodec.export.parity import ExportParityError, check_parity  # noqa: E402
from aecodec.models.bundle import compute_model_id  # noqa: E402
from aecodec.train.checkpoint_io import load_checkpoint  # noqa: E402

from tests.conftest import natural_image  # noqa: E402

M, HC = 16, 8


@pytest.fixture(scope="module")
def bundle(hyperprior_bundle):
    return hyperprior_bundle


def test_bundle_files_manifest_and_model_id(bundle):
    folder, manifest, _ = bundle
    assert {p.name for p in folder.iterdir()} == {"encoder.onnx", "decoder.onnx", "tables.npz", "manifest.json",
                                                  "MODEL_CARD.md", "refiner.onnx"}
    on_disk = json.loads((folder / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest))
    assert manifest["model_id"] == compute_model_id(folder)
    assert manifest["latent_coding"] == "hyperprior" and manifest["modality"] == "image"
    assert manifest["pad_multiple"] == 64 and manifest["downsample"] == 16
    assert manifest["latent_channels"] == M and manifest["hyper_channels"] == HC
    assert manifest["hyper_synthesis"] == {"activation_max_code": 4095, "mean_shift": 4, "mean_max_code": 32767,
                                           "scale_levels": 64, "scale_min": 0.11, "scale_max": 256.0}
    assert manifest["config"]["arch"] == "hyperprior" and manifest["qualities"] == 100
    c = manifest["complexity"]
    assert c["decoder_kmac_per_px"] > c["hyper_synthesis_kmac_per_px"] > 0 and c["hyper_analysis_kmac_per_px"] > 0
    card = (folder / "MODEL_CARD.md").read_text()
    assert manifest["model_id"] in card and "h_s" in card and "warm start from `factorized.pt`" in card


def test_parity_report(bundle):
    p = bundle[1]["parity"]
    assert p["rounded_latent_flips"] == 0 and p["rounded_hyper_flips"] == 0
    assert p["latents_checked"] > 0 and p["hyper_checked"] > 0 and p["hs_checked"] > 0
    assert p["hs_mismatches"] <= 1e-4 * p["hs_checked"]
    assert p["image_max_abs_diff"] < 2e-3


def test_onnx_graphs_have_the_bundle_interface(bundle):
    folder, _, ckpt = bundle
    model, _ = load_checkpoint(ckpt)
    enc = ort.InferenceSession(str(folder / "encoder.onnx"), providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(folder / "decoder.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in enc.get_inputs()] == ["image", "gain"]
    assert [o.name for o in enc.get_outputs()] == ["latent", "hyper"]
    assert [i.name for i in dec.get_inputs()] == ["latent"] and [o.name for o in dec.get_outputs()] == ["image"]
    img = np.stack([natural_image(128, 192, seed=s) for s in (0, 1)]).transpose(0, 3, 1, 2).astype(np.float32) / 255
    gain = np.load(folder / "tables.npz")["gains"][60][None, :, None, None]
    v, z = enc.run(None, {"image": img, "gain": gain})  # dynamic batch and size
    assert v.shape == (2, M, 8, 12) and z.shape == (2, HC, 2, 3)
    with torch.no_grad():
        y = model.analysis(torch.from_numpy(img))
        v_t = y * torch.from_numpy(gain)
        z_t = model.hyper_analysis(v_t)
    assert np.abs(v - v_t.numpy()).max() < 1e-3 and np.abs(z - z_t.numpy()).max() < 1e-3
    x = dec.run(None, {"latent": (np.round(v) / gain).astype(np.float32)})[0]
    assert x.shape == (2, 3, 128, 192)


def test_tables_are_valid_integer_cdfs(bundle):
    t = dict(np.load(bundle[0] / "tables.npz"))
    assert t["gains"].dtype == np.float32 and t["gains"].shape == (100, M)
    assert np.all(np.diff(np.log(t["gains"]).mean(axis=1)) > 0)
    assert t["precision"].dtype == np.int32 and int(t["precision"]) == 16
    total = 1 << 16
    for prefix, rows in (("z", HC), ("y", 64)):
        freqs, lengths, offsets = t[f"{prefix}_freqs"], t[f"{prefix}_lengths"], t[f"{prefix}_offsets"]
        assert freqs.dtype == np.uint16 and lengths.dtype == np.int32 and offsets.dtype == np.int32
        assert freqs.shape[0] == lengths.shape[0] == offsets.shape[0] == rows
        for r in range(rows):
            f = freqs[r, : lengths[r]].astype(np.int64)
            assert f.sum() == total and f.min() >= 1 and not freqs[r, lengths[r]:].any()
    # y rows: symmetric around 0 over [-K_i, K_i], K_i = min(ceil(σ_i·T), 1023), plus the escape
    sigmas = np.exp(np.linspace(math.log(0.11), math.log(256.0), 64))
    tail = T.gaussian_tail_factor()
    assert math.erfc(tail / math.sqrt(2)) <= T.TAIL_MASS
    k = np.minimum(np.ceil(sigmas * tail), 1023).astype(int)
    assert np.array_equal(t["y_offsets"], -k) and np.array_equal(t["y_lengths"], 2 * k + 2)
    assert t["y_freqs"].shape[1] == 2048
    for i in (0, 30, 63):  # symmetric pmf (up to the integer quantisation), peaked at 0
        f = t["y_freqs"][i, : 2 * k[i] + 1].astype(np.int64)
        assert np.abs(f - f[::-1]).max() <= 1 and f[k[i]] >= f.max() - 1


def test_integer_hyper_synthesis_round_trips(bundle):
    folder, manifest, ckpt = bundle
    model, _ = load_checkpoint(ckpt)
    t = np.load(folder / "tables.npz")
    for i, layer in enumerate(model.hyper_synthesis.layers):
        p = layer.integer_parameters()
        assert t[f"hs_kernel_{i}"].dtype == np.int8 and t[f"hs_bias_{i}"].dtype == np.int64
        assert t[f"hs_exponent_{i}"].dtype == np.int64
        for key in ("kernel", "bias", "exponent"):
            assert np.array_equal(t[f"hs_{key}_{i}"].astype(np.int64), p[key].numpy())
    hs = HyperSynthesis.from_tables(t, M, manifest["hyper_synthesis"])
    z = np.random.default_rng(3).integers(-6, 7, (HC, 5, 6))
    means, index = hs(z)
    with torch.no_grad():
        mean_t, index_t = model.hyper_synthesis(torch.from_numpy(z[None].astype(np.float32)))
    differ = (np.rint(mean_t[0].numpy() * 16) != means).sum() + (index_t[0].numpy() != index).sum()
    assert differ <= 1e-4 * 2 * means.size
    assert len(np.unique(index)) > 3 and len(np.unique(means)) > 3  # the test model exercises h_s


def test_parity_fails_on_a_wrong_integer_hyper_synthesis(bundle):
    folder, _, ckpt = bundle
    model, _ = load_checkpoint(ckpt)
    tables = dict(np.load(folder / "tables.npz"))
    tables["hs_bias_2"] = tables["hs_bias_2"] + 7  # what a run time with these tables would compute is wrong
    with pytest.raises(ExportParityError, match="integer h_s"):
        check_parity(model, folder, tables)


def test_context_tables_whose_sums_could_leave_float64_exactness_are_refused(context_bundle):
    """The run time sums context and h_s accumulators of different exponents on the finer grid in float64; a
    bundle for which that could pass 2^53 is refused instead of decoding inexactly."""
    import aecodec
    from aecodec.coding import CheckerboardContext

    folder = context_bundle[0]
    tables = dict(np.load(folder / "tables.npz"))
    manifest = json.loads((folder / "manifest.json").read_text())
    hs = HyperSynthesis.from_tables(tables, manifest["latent_channels"], manifest["hyper_synthesis"])
    assert CheckerboardContext.from_tables(tables, hs).channels == manifest["context_channels"]
    for key in ("cx_exponent_0", "cx_exponent_2"):
        bad = dict(tables)
        bad[key] = bad[key] + 40  # 2^40 finer-grid steps per unit of the other term
        with pytest.raises(aecodec.AecError, match="2\\^53"):
            CheckerboardContext.from_tables(bad, hs)
    missing = {k: v for k, v in tables.items() if k != "cx_bias_1"}
    with pytest.raises(aecodec.AecError, match="cx_bias_1"):
        CheckerboardContext.from_tables(missing, hs)


def test_run_time_round_trip(bundle):
    import aecodec

    folder, manifest, _ = bundle
    img = natural_image(70, 90)
    data = aecodec.compress(img, quality=50, model=folder)
    assert aecodec.info(data)["model_id"] == manifest["model_id"]
    assert aecodec.decompress(data, model=folder, as_array=True).shape == img.shape
