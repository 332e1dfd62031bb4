"""Precision variants (python -m aecodec.export.variants) of the tiny random hyperprior bundle: INT8, FP16, .ort.

The point: the model id never changes, and a file encoded with any variant decodes with any other, the
decoder deriving exactly the encoder's ẑ, scale indices and symbols (the entropy path is variant-free).
"""
import json
import shutil

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch")  # the fixture bundle is exported from a torch model
pytest.importorskip("onnxruntime.quantization")

import aecodec  # noqa: E402
from aecodec.errors import AecError  # noqa: E402
from aecodec.export import variants as V  # noqa: E402
from aecodec.image.tiling import to_network_input  # noqa: E402
from aecodec.metrics import psnr  # noqa: E402
from aecodec.models import ModelBundle  # noqa: E402
from aecodec.models.bundle import compute_model_id  # noqa: E402

from tests.conftest import natural_image  # noqa: E402

IMAGES = [natural_image(h, w, seed=s) for s, (h, w) in enumerate([(64, 64), (96, 160), (130, 70)])]


@pytest.fixture(scope="module")
def variant_bundle(hyperprior_bundle, tmp_path_factory):
    """A copy of the tiny hyperprior bundle with int8 (both graphs), fp16 and .ort variants."""
    root = tmp_path_factory.mktemp("variants")
    folder = root / "bundle"
    shutil.copytree(hyperprior_bundle[0], folder)
    cal = root / "train-images"
    cal.mkdir()
    for i in range(4):
        Image.fromarray(natural_image(80, 96, seed=100 + i)).save(cal / f"t{i}.png")
    assert V.main([str(folder), "--int8", "--int8-graphs", "encoder,decoder", "--int8-min-channels", "1",
                   "--calibration", str(cal), "--calibration-images", "4", "--crop", "64", "--fp16", "--ort"]) == 0
    return folder, hyperprior_bundle[1]


def test_model_id_unchanged_and_variants_listed(variant_bundle):
    folder, original = variant_bundle
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["model_id"] == original["model_id"] == compute_model_id(folder)
    v = manifest["variants"]
    assert set(v) == {"int8", "fp16", "fp32-ort", "int8-ort", "fp16-ort"}
    assert v["int8"]["files"] == {"encoder": "encoder.int8.onnx", "decoder": "decoder.int8.onnx"}
    assert set(v["int8"]["sha256"]) == {"encoder.int8.onnx", "decoder.int8.onnx"}
    made = v["int8"]["made"]["decoder"]
    assert made["format"] == "QDQ" and made["quantized_convs"] and made["gdn_equalized"] == 3
    assert v["int8"]["made"]["calibration"]["folder"] == "train-images"  # a name, never a machine path
    assert all(x["default_for"] == [] for x in v.values())  # nothing measured: auto stays fp32
    assert manifest["mobile"]["operators_config"] == "required_operators.config"
    config = (folder / "required_operators.config").read_text()
    assert "Conv" in config and "QuantizeLinear" in config and str(folder.parent) not in config
    ModelBundle(folder).verify()
    assert ModelBundle(folder).precision == "fp32"
    # the CPU-tuned int8 graphs are for the CPU backend only; fp16 graphs run anywhere
    from aecodec.models import choose_variant

    b = ModelBundle(folder)
    assert v["int8"]["backends"] == ["cpu"] and choose_variant(b.manifest, folder, "int8", "cpu")[0].name == "int8"
    with pytest.raises(AecError, match="no int8 variant for the tensorrt backend"):
        choose_variant(b.manifest, folder, "int8", "tensorrt")
    assert choose_variant(b.manifest, folder, "fp16", "cuda")[0].name == "fp16"


def _encode(bundle: ModelBundle, img: np.ndarray, quality: int):
    x = to_network_input(img, 64)
    v, z = (a[0] for a in bundle.run_encoder(x, bundle.coding.gain(quality)))
    streams, symbols = bundle.coding.encode(v, z)
    z_hat = np.floor(z + 0.5).astype(np.int32)
    _, index = bundle.coding.parameters(z_hat, symbols)
    return streams, symbols, z_hat, index, v.shape[1:]


def test_any_variant_decodes_any_variants_files(variant_bundle):
    folder, _ = variant_bundle
    bundles = {p: ModelBundle(folder, providers="cpu", precision=p) for p in ("fp32", "int8", "fp16")}
    assert bundles["int8"].graph_path("decoder").name == "decoder.int8.onnx"
    checked = 0
    for enc_name, enc in bundles.items():
        for i, img in enumerate(IMAGES):
            for quality in (5, 60, 100):
                streams, symbols, z_hat, index, shape = _encode(enc, img, quality)
                for dec_name, dec in bundles.items():
                    got = dec.coding.decode_symbols(streams, shape)
                    assert np.array_equal(got.z_hat, z_hat), (enc_name, dec_name, i, quality)
                    assert np.array_equal(got.index, index), (enc_name, dec_name, i, quality)
                    assert np.array_equal(got.symbols, symbols), (enc_name, dec_name, i, quality)
                    checked += symbols.size
    assert checked > 10_000
    # whole files: every encoder's bytes decode with every decoder, to nearly the fp32 round trip's picture
    for img in IMAGES:
        ref = aecodec.decompress(aecodec.compress(img, quality=60, model=bundles["fp32"], lossless=False),
                                 model=bundles["fp32"], as_array=True)
        for enc_name, enc in bundles.items():
            data = aecodec.compress(img, quality=60, model=enc, lossless=False)
            assert aecodec.info(data)["model_id"] == enc.model_id
            for dec_name, dec in bundles.items():
                out = aecodec.decompress(data, model=dec, as_array=True)
                assert out.shape == img.shape
                # the random tiny model reconstructs poorly; what matters is that variants agree with fp32
                assert psnr(out, ref) > 30, (enc_name, dec_name, psnr(out, ref))


def test_ort_models_give_the_onnx_paths_symbols(variant_bundle, tmp_path):
    folder, _ = variant_bundle
    onnx_b = ModelBundle(folder, providers="cpu", precision="fp32")
    ort_b = ModelBundle(folder, providers="cpu", precision="fp32", graph_format="ort")
    assert ort_b.graph_path("encoder").suffix == ".ort"
    for img in IMAGES:
        for quality in (5, 60, 100):
            a, b = _encode(onnx_b, img, quality), _encode(ort_b, img, quality)
            assert np.array_equal(a[2], b[2]) and np.array_equal(a[3], b[3])  # ẑ, scale indices
            assert np.mean(a[1] != b[1]) < 1e-3  # symbols: float rounding of another kernel at most flips a tie
    data = aecodec.compress(IMAGES[1], quality=50, model=onnx_b, lossless=False)
    assert psnr(aecodec.decompress(data, model=ort_b, as_array=True),
                aecodec.decompress(data, model=onnx_b, as_array=True)) > 50
    # a mobile bundle: manifest, tables and .ort graphs only
    mobile = tmp_path / "mobile"
    mobile.mkdir()
    for f in folder.iterdir():
        if f.suffix in (".ort", ".json", ".npz", ".config"):
            shutil.copyfile(f, mobile / f.name)
    m = ModelBundle(mobile, providers="cpu")
    assert m.variant.name == "fp32-ort" and m.model_id == onnx_b.model_id
    m.verify()  # no .onnx payload: checks the .ort files' sha256
    assert psnr(aecodec.decompress(data, model=m, as_array=True),
                aecodec.decompress(data, model=onnx_b, as_array=True)) > 50
    assert ModelBundle(mobile, providers="cpu", precision="int8").variant.name == "int8-ort"


def test_auto_picks_a_variant_only_where_the_manifest_says_it_won(variant_bundle, tmp_path):
    folder = tmp_path / "b"
    shutil.copytree(variant_bundle[0], folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["variants"]["int8"]["default_for"] = ["cpu"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert ModelBundle(folder, providers="cpu").precision == "int8"
    assert ModelBundle(folder, providers="cpu", precision="fp32").precision == "fp32"
    with aecodec.models.use_precision("fp16"):
        assert aecodec.load_bundle(folder).precision == "fp16"
        with aecodec.models.use_precision(None):  # None keeps the enclosing choice (as compress_to passes it)
            assert aecodec.load_bundle(folder).precision == "fp16"


def test_a_changed_variant_file_is_refused(variant_bundle, tmp_path):
    folder = tmp_path / "b"
    shutil.copytree(variant_bundle[0], folder)
    with open(folder / "decoder.int8.onnx", "ab") as f:
        f.write(b"\0")
    b = ModelBundle(folder, providers="cpu", precision="int8")
    with pytest.raises(AecError, match="does not match its manifest entry"):
        b.run_decoder(np.zeros((1, 16, 4, 4), np.float32))
    with pytest.raises(AecError, match="does not match"):
        b.verify()


def test_rerun_replaces_variants_and_remove_keeps_shared_files(variant_bundle, tmp_path):
    folder = tmp_path / "b"
    shutil.copytree(variant_bundle[0], folder)
    cal = tmp_path / "cal"
    cal.mkdir()
    Image.fromarray(natural_image(70, 70, seed=5)).save(cal / "a.png")
    assert V.main([str(folder), "--int8", "--int8-min-channels", "1", "--calibration", str(cal), "--crop", "64",
                   "--remove", "fp16"]) == 0
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["variants"]["int8"]["files"] == {"encoder": "encoder.onnx", "decoder": "decoder.int8.onnx"}
    assert not (folder / "encoder.int8.onnx").exists() and not (folder / "encoder.fp16.onnx").exists()
    assert (folder / "encoder.onnx").exists() and compute_model_id(folder) == manifest["model_id"]
    assert set(manifest["variants"]) == {"int8", "fp32-ort", "int8-ort"}  # .ort redone for the new graphs
    assert (folder / "encoder.ort").exists() and (folder / "decoder.int8.ort").exists()
    ModelBundle(folder).verify()


def test_kodak_is_refused_for_calibration(tmp_path):
    (tmp_path / "kodim01.png").write_bytes(b"")
    with pytest.raises(AecError, match="Kodak"):
        V.calibration_crops(tmp_path, 4)


def test_equalization_is_exact(hyperprior_bundle, tmp_path):
    import onnx
    import onnxruntime as ort

    from aecodec.export.precision import channel_ranges, equalize, fold_constants, gdn_blocks

    folder = hyperprior_bundle[0]
    feeds = [{"latent": np.random.default_rng(i).normal(0, 3, (1, 16, 6, 5)).astype(np.float32)} for i in range(3)]
    fold_constants(folder / "decoder.onnx", tmp_path / "f.onnx")
    model = onnx.load(str(tmp_path / "f.onnx"))
    blocks = gdn_blocks(model)
    assert len(blocks) == 3 and all(b.inverse and b.depth_to_space for b in blocks)
    ranges = channel_ranges(model, sorted({t for b in blocks for t in (b.x, b.y)}), feeds)
    eq = equalize(model, blocks, ranges)
    after = channel_ranges(eq, sorted(ranges), feeds)
    for b in blocks:  # every channel now spans the widest one's range (up to the 32x cap)
        assert after[b.y].max() / after[b.y].min() < max(1.01, ranges[b.y].max() / ranges[b.y].min() / 32 * 1.01)
    a = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds[0])[0]
    e = ort.InferenceSession(eq.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds[0])[0]
    assert np.abs(a - e).max() < 1e-4 * max(1.0, np.abs(a).max())


def test_decide_defaults_needs_both_measurements_and_the_cost_limit():
    def manifest(cost: float, dec_speed: float) -> dict:
        rd = {"pairs": {"int8->int8": {"mean_psnr_delta_db": -cost}}}
        sp = {"variants": {"fp32": {"encode_mp_per_s": 2.0, "decode_mp_per_s": 1.0},
                           "int8": {"encode_mp_per_s": 1.9, "decode_mp_per_s": dec_speed}}}
        return {"variants": {"int8": {"format": "onnx", "files": {"encoder": "encoder.onnx", "decoder": "d.onnx"},
                                      "measured": {"rd": rd, "speed": sp}}}}

    m = manifest(0.10, 1.2)  # the encoder is shared with fp32: its timing noise does not count
    V.decide_defaults(m)
    assert m["variants"]["int8"]["default_for"] == ["cpu"]
    for m in (manifest(0.2, 1.2), manifest(0.1, 0.95)):
        V.decide_defaults(m)
        assert m["variants"]["int8"]["default_for"] == []
    m = manifest(0.1, 1.2)
    del m["variants"]["int8"]["measured"]["speed"]
    assert "needs" in V.decide_defaults(m)[0] and m["variants"]["int8"]["default_for"] == []


def test_cli_and_api_precision(variant_bundle, hyperprior_bundle, tmp_path, capfd, monkeypatch):
    from aecodec.api import compress_to, decompress_to
    from aecodec.cli.main import main

    monkeypatch.setenv("AECODEC_PRECISION", "auto")  # --precision sets it for the process: restored after the test
    folder = variant_bundle[0]
    src = tmp_path / "a.png"
    Image.fromarray(IMAGES[1]).save(src)
    assert main(["-v", "compress", str(src), "--model", str(folder), "--precision", "int8", "-o",
                 str(tmp_path / "a.aec")]) == 0
    assert "precision int8" in capfd.readouterr().err
    assert main(["decompress", str(tmp_path / "a.aec"), "--model", str(folder), "--precision", "fp32", "-o",
                 str(tmp_path / "a.png.png")]) == 0
    capfd.readouterr()
    assert main(["compress", str(src), "--model", str(hyperprior_bundle[0]), "--precision", "int8", "-o",
                 str(tmp_path / "b.aec")]) == 1
    err = capfd.readouterr().err
    assert "has no int8 variant" in err and err.count("\n") == 1 and not (tmp_path / "b.aec").exists()
    monkeypatch.setenv("AECODEC_PRECISION", "auto")
    facts = compress_to(str(src), str(tmp_path / "c.aec"), model=str(folder), precision="fp16")
    assert facts["model_id"] == variant_bundle[1]["model_id"]
    assert decompress_to((tmp_path / "c.aec").read_bytes(), str(tmp_path / "c.png"), model=str(folder),
                         precision="int8")["width"] == IMAGES[1].shape[1]
    assert main(["info", "--backends", "--json"]) == 0
    prec = json.loads(capfd.readouterr().out)["precisions"]["backends"]
    assert "fp32" in prec["cpu"]["available"] and prec["cpu"]["auto"] in prec["cpu"]["available"]
    assert "fp16" in prec["tensorrt"]["available"]  # TensorRT builds FP16 engines from the fp32 graphs
    assert main(["models", "--model", str(folder), "--json"]) == 0
    rows = json.loads(capfd.readouterr().out)
    assert {v["name"] for v in rows[0]["variants"]} >= {"fp32", "int8", "fp16", "int8-ort", "mobile"}


def test_int8_from_a_bundle_with_float16_stored_weights(hyperprior_bundle, tmp_path, monkeypatch):
    """A bundle exported with --fp16-storage keeps its convolution weights as float16 + Cast: quantization
    must still find them (unpacked exactly to float32 first), else no convolution would be quantized."""
    import onnx
    import onnxruntime as ort

    from aecodec.export import precision as P

    graph = tmp_path / "decoder.onnx"
    shutil.copy(hyperprior_bundle[0] / "decoder.onnx", graph)
    before = P.conv_weight_names(graph)
    monkeypatch.setattr(P, "MIN_FP16_STORED", 1)  # the tiny model's weights are below the real threshold
    stored = P.store_weights_fp16(graph)
    assert stored and not set(P.conv_weight_names(graph)) & set(stored)  # hidden behind Casts now
    unpacked = P.load_float32_weights(graph)
    assert not [n for n in unpacked.graph.node if n.op_type == "Cast" and n.input[0].endswith("__fp16")]
    onnx.save(unpacked, str(tmp_path / "unpacked.onnx"))
    assert sorted(P.conv_weight_names(tmp_path / "unpacked.onnx")) == sorted(before)
    feed = {"latent": np.random.default_rng(0).normal(0, 3, (1, 16, 6, 5)).astype(np.float32)}
    run = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, feed)[0]
           for p in (graph, tmp_path / "unpacked.onnx")]
    assert np.array_equal(run[0], run[1])  # float16 -> float32 is exact: the same function
    done = P.quantize_int8(graph, tmp_path / "decoder.int8.onnx", [feed] * 2, P.Int8Options(min_channels=1))
    assert done["quantized_convs"]
