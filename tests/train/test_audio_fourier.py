"""The Fourier audio decoder (ConvNeXt blocks at the latent rate + inverse-STFT head): its synthesis, export
through the unified exporter, and decoder-only training on a trained encoder (--freeze-encoder)."""
import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sf = pytest.importorskip("soundfile")
pytest.importorskip("soxr")

from aecodec.train import trainer  # noqa: E402
from aecodec.train.audio_model import (  # noqa: E402
    AudioCodecModel,
    AudioConfig,
    FourierDecoder,
    OverlapAddSynthesis,
)

TINY = dict(channels=4, latent=8, decoder="fourier", fourier_dim=8, fourier_hidden=16, fourier_blocks=2)


def test_synthesis_turns_one_bin_per_frame_into_a_steady_sinusoid():
    hop, frames = 320, 12
    synthesis = OverlapAddSynthesis(hop)
    bins = hop + 1
    spec = torch.full((1, 2 * bins, frames), -40.0)  # every other bin ~ e^-40: silent
    spec[:, bins:] = 0.0
    k = 16  # 16 periods per 2·hop samples: a whole number of periods per hop, so every frame has phase 0
    spec[0, k] = math.log(100.0)
    out = synthesis(spec)[0, 0]
    assert out.shape == (frames * hop,)
    t = torch.arange(frames * hop, dtype=torch.float64)
    want = 100.0 * 2 / (2 * hop) * torch.cos(2 * math.pi * k * (t + hop / 2) / (2 * hop))
    inner = slice(hop, (frames - 1) * hop)  # the first and last half hops have one window, not two
    assert torch.allclose(out[inner].double(), want[inner], atol=1e-5)
    # a bin's magnitude is capped at 2·hop: a sinusoid of amplitude 2, enough for full scale
    spec[0, k] = 1e3
    assert float(synthesis(spec)[0, 0, inner].abs().max()) == pytest.approx(2.0, rel=1e-4)


def test_config_round_trip_and_unknown_decoder_refused():
    cfg = AudioConfig(**TINY)
    d = cfg.to_dict()
    assert d["decoder"] == "fourier" and AudioConfig.from_dict(d) == cfg
    assert "decoder" not in AudioConfig().to_dict()
    assert isinstance(AudioCodecModel(cfg).decoder, FourierDecoder)
    with pytest.raises(ValueError, match="unknown audio decoder 'wavenet'"):
        AudioConfig.from_dict({**d, "decoder": "wavenet"})


def test_fourier_bundle_exports_with_parity_and_a_dynamic_length(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from aecodec.export.__main__ import main

    torch.manual_seed(0)
    cfg = AudioConfig(**TINY)
    model = AudioCodecModel(cfg)
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.normal_(0, 0.3)
    ckpt = tmp_path / "a.pt"
    torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "modality": "audio", "step": 0}, ckpt)
    assert main([str(ckpt), "--out", str(tmp_path / "bundle")]) == 0
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["parity"]["rounded_latent_flips"] == 0 and manifest["config"]["decoder"] == "fourier"
    assert "ConvNeXt" in (tmp_path / "bundle" / "MODEL_CARD.md").read_text()
    import onnx

    graph = onnx.load(str(tmp_path / "bundle" / "decoder.onnx")).graph
    stored = [int(np.prod(i.dims)) for i in graph.initializer] + [
        int(np.prod(n.attribute[0].t.dims)) for n in graph.node if n.op_type == "Constant" and n.attribute[0].name == "value"]
    assert max(stored) < 2 * cfg.hop * (cfg.hop + 1)  # the inverse DFT is computed at load, not stored
    assert {"Mod", "Cos", "Sin"} <= {n.op_type for n in graph.node}
    session = ort.InferenceSession(str(tmp_path / "bundle" / "decoder.onnx"), providers=["CPUExecutionProvider"])
    model.eval()
    for batch, frames in ((1, 1), (2, 7), (1, 50)):
        y = np.random.default_rng(frames).standard_normal((batch, 8, frames)).astype(np.float32)
        with torch.no_grad():
            want = model.decoder(torch.from_numpy(y)).numpy()
        got = session.run(None, {"latent": y})[0]
        assert got.shape == want.shape == (batch, 1, frames * cfg.hop)
        assert np.abs(got - want).max() <= 1e-4 * max(1.0, float(np.abs(want).max()))


def test_a_fourier_decoder_trains_on_a_frozen_encoder(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "train").mkdir()
    for i in range(3):
        t = np.arange(int(0.4 * 24000)) / 24000
        clip = 0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t) + 0.01 * rng.standard_normal(len(t))
        sf.write(tmp_path / "train" / f"c{i}.flac", clip.astype(np.float32), 24000)
    conv = AudioCodecModel(AudioConfig(channels=4, latent=8))
    init = tmp_path / "conv.pt"
    torch.save({"model": conv.state_dict(), "config": conv.config.to_dict(), "modality": "audio", "step": 0}, init)
    args = ["--modality", "audio", "--data", str(tmp_path / "train"), "--out", str(tmp_path / "run"),
            "--channels", "4", "--latent", "8", "--audio-profile", "fourier", "--fourier-dim", "8",
            "--fourier-hidden", "16", "--fourier-blocks", "2", "--batch", "2", "--segment-seconds", "0.1",
            "--val-every", "100", "--no-progress", "--threads", "1", "--init", str(init), "--freeze-encoder",
            "--steps", "3", "--warmup", "1", "--lr", "1e-2"]
    assert trainer.main(args) == 0
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert ckpt["config"]["decoder"] == "fourier" and ckpt["config"]["fourier_dim"] == 8
    trained, before = ckpt["model"], conv.state_dict()
    for name, value in before.items():
        if not name.startswith("decoder."):  # encoder, density, gains: as --init gave them
            assert torch.equal(trained[name], value), name
    fresh = AudioCodecModel(AudioConfig.from_dict(ckpt["config"])).state_dict()
    assert set(trained) == set(fresh)  # the inverse-DFT matrix is a constant, not a checkpoint tensor
    assert not any("basis" in k for k in trained)
    # image runs refuse the audio-only flag
    from PIL import Image

    (tmp_path / "images").mkdir()
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "images" / "a.png")
    with pytest.raises(SystemExit, match="audio models only"):
        trainer.main(["--data", str(tmp_path / "images"), "--out", str(tmp_path / "img"), "--freeze-encoder",
                      "--channels", "4", "--latent", "4", "--crop", "32", "--steps", "1", "--no-progress"])


def test_fp16_storage_halves_the_files_and_the_weights_file_reproduces_the_bundle(tmp_path):
    onnx = pytest.importorskip("onnx")
    from aecodec.export.__main__ import main

    torch.manual_seed(0)
    cfg = AudioConfig(**{**TINY, "fourier_dim": 64, "fourier_hidden": 256})  # 1×1 convs of ≥ 16384 weights
    model = AudioCodecModel(cfg)
    ckpt = tmp_path / "a.pt"
    torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "modality": "audio", "step": 0}, ckpt)
    assert main([str(ckpt), "--out", str(tmp_path / "full")]) == 0
    assert main([str(ckpt), "--out", str(tmp_path / "half"), "--fp16-storage", "--weights-out",
                 str(tmp_path / "half.pt")]) == 0
    full, half = (json.loads((tmp_path / b / "manifest.json").read_text()) for b in ("full", "half"))
    assert half["parity"]["rounded_latent_flips"] == 0 and half["weights_storage"]["stored"]["decoder"] >= 3
    assert (tmp_path / "half" / "decoder.onnx").stat().st_size < 0.6 * (tmp_path / "full" / "decoder.onnx").stat().st_size
    dtypes = {i.data_type for i in onnx.load(str(tmp_path / "half" / "decoder.onnx")).graph.initializer}
    assert onnx.TensorProto.FLOAT16 in dtypes
    weights = torch.load(tmp_path / "half.pt", weights_only=False)["model"]
    assert all(v.dtype == torch.float16 for v in weights.values() if v.is_floating_point())
    # the float16 weights file is the bundle's model: exporting it again gives the same model id
    assert main([str(tmp_path / "half.pt"), "--out", str(tmp_path / "again"), "--fp16-storage"]) == 0
    again = json.loads((tmp_path / "again" / "manifest.json").read_text())
    assert again["model_id"] == half["model_id"] != full["model_id"]
