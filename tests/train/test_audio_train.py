"""Audio model, its training loop on tiny generated clips, and its export through the unified exporter."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
sf = pytest.importorskip("soundfile")
pytest.importorskip("soxr")

from aecodec.export.complexity import complexity  # noqa: E402
from aecodec.metrics import si_sdr  # noqa: E402
from aecodec.train import trainer  # noqa: E402
from aecodec.train.audio_model import AudioCodecModel, AudioConfig, pad_to_hop  # noqa: E402


def test_shapes_and_rate_per_level():
    cfg = AudioConfig(channels=4, latent=8)
    model = AudioCodecModel(cfg)
    x = pad_to_hop(torch.randn(3, 1, 1000) * 0.1, cfg.hop)
    assert x.shape[-1] % cfg.hop == 0
    out = model(x, torch.tensor([0, 2, 4]))
    assert out["x_hat"].shape == x.shape
    assert out["kbps"].shape == (3,) and torch.all(out["kbps"] > 0)
    assert model.loss(out, torch.tensor([0, 2, 4])).ndim == 0
    macs = complexity(AudioCodecModel(AudioConfig()))
    assert 0 < macs["decoder_mmac_per_s"] < 2000
    # the shipped audio-edge manifest's figures (counted by the exporter before the restructure)
    assert (macs["encoder_mmac_per_s"], macs["decoder_mmac_per_s"]) == (492.9792, 497.8944)
    assert (macs["encoder_params"], macs["decoder_params"]) == (849264, 914737)


def test_si_sdr():
    ref = np.sin(np.linspace(0, 100, 4000))
    assert si_sdr(2 * ref, ref) > 100
    assert abs(si_sdr(ref + np.random.default_rng(0).standard_normal(4000) * 0.707, ref) - 0.0) < 1.5


def test_mel_loss_uses_the_shared_filterbank():
    from aecodec.metrics import mel_filterbank
    from aecodec.train.audio_model import mel_basis

    assert torch.equal(mel_basis(512, 64, 24000), torch.from_numpy(mel_filterbank(24000, 512, 64)).float())


def test_audio_training_runs_and_resumes(tmp_path):
    rng = np.random.default_rng(0)
    for folder, n in (("train", 3), ("val", 1)):
        (tmp_path / folder).mkdir()
        for i in range(n):
            t = np.arange(int(0.4 * 16000)) / 16000
            clip = 0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t) + 0.01 * rng.standard_normal(len(t))
            sf.write(tmp_path / folder / f"c{i}.flac", clip.astype(np.float32), 16000)  # resampled to 24 kHz
    args = ["--modality", "audio", "--data", str(tmp_path / "train"), "--val", str(tmp_path / "val"),
            "--out", str(tmp_path / "run"), "--channels", "4", "--latent", "8", "--batch", "2",
            "--segment-seconds", "0.1", "--val-every", "2", "--no-progress", "--threads", "1"]
    assert trainer.main(args + ["--steps", "2"]) == 0
    assert trainer.main(args + ["--steps", "3"]) == 0
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert ckpt["step"] == 3 and ckpt["modality"] == "audio"
    log = (tmp_path / "run" / "train.log").read_text()
    assert "kbps" in log and "SI-SDR" in log and "resumed" in log
    with pytest.raises(SystemExit):
        trainer.main([a if a != "audio" else "image" for a in args] + ["--steps", "4"])
    # a new audio run grown from this one (--init): wider decoder, the old weights taken
    grown = [a if a != str(tmp_path / "run") else str(tmp_path / "grown") for a in args]
    assert trainer.main(grown + ["--steps", "1", "--decoder-channels", "6", "--init", str(tmp_path / "run" / "last.pt")]) == 0
    assert "warm start from" in (tmp_path / "grown" / "train.log").read_text()
    with pytest.raises(SystemExit, match="cannot grow"):  # a narrower model cannot take the weights
        trainer.main(_narrow(args, tmp_path))


def test_audio_export_parity(tmp_path):
    from aecodec.export.__main__ import main

    cfg = AudioConfig(channels=4, latent=8)
    model = AudioCodecModel(cfg)
    ckpt = tmp_path / "a.pt"
    torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "modality": "audio", "step": 0}, ckpt)
    assert main([str(ckpt), "--out", str(tmp_path / "bundle"), "--high-quality-position", "5.5"]) == 0
    import json

    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["parity"]["rounded_latent_flips"] == 0
    assert manifest["modality"] == "audio" and manifest["hop"] == 320 and manifest["name"] == "audio-edge"
    assert manifest["latent_coding"] == "factorized" and manifest["high_quality_position"] == 5.5
    assert "SEANet" in (tmp_path / "bundle" / "MODEL_CARD.md").read_text()
    import onnxruntime as ort

    enc = ort.InferenceSession(str(tmp_path / "bundle" / "encoder.onnx"), providers=["CPUExecutionProvider"])
    y = enc.run(None, {"audio": np.zeros((2, 1, 320 * 7), np.float32)})[0]
    assert y.shape == (2, 8, 7)  # dynamic batch and length


def _narrow(args: list[str], tmp_path) -> list[str]:
    """The run's arguments for a new run with half the channels, warm-started from the 4-channel run."""
    out = [a if a != str(tmp_path / "run") else str(tmp_path / "narrow") for a in args]
    out[out.index("--channels") + 1] = "2"
    return out + ["--steps", "1", "--init", str(tmp_path / "run" / "last.pt")]
