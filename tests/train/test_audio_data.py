"""Issue 18's training inputs: several weighted sources, the validation hold-out, band-limit detection and
band-aware losses, the loss options (STFT, spectral convergence, adversarial fine-tune), per-kind validation,
the audio profiles and the data-preparation script."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sf = pytest.importorskip("soundfile")
pytest.importorskip("soxr")

from aecodec.train import trainer  # noqa: E402
from aecodec.train.audio_data import (Clip, SegmentSampler, bandwidth_hz, clip_group, clip_kind,  # noqa: E402
                                      holdout)
from aecodec.train.audio_model import (AUDIO_PROFILES, AudioCodecModel, AudioConfig, AudioLoss,  # noqa: E402
                                       multi_resolution_mel_loss, multi_resolution_stft_loss)

SR = 24_000


def lowpassed_noise(seconds: float, cutoff: float | None, seed: int = 0) -> np.ndarray:
    """White noise, brick-wall low-passed at `cutoff` Hz in the frequency domain (None: full band)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(int(seconds * SR))
    if cutoff is not None:
        spec = np.fft.rfft(x)
        spec[np.fft.rfftfreq(len(x), 1 / SR) > cutoff] = 0
        x = np.fft.irfft(spec, len(x))
    return (0.1 * x / np.abs(x).max()).astype(np.float32)


def test_bandwidth_detects_a_cliff_not_a_roll_off():
    assert abs(bandwidth_hz(lowpassed_noise(3, 8000), SR) - 8000) < 300
    assert bandwidth_hz(lowpassed_noise(3, None), SR) == SR / 2
    # a natural roll-off (-60 dB/decade from 1 kHz) reaches -70 dB but has no cliff: full band
    rng = np.random.default_rng(1)
    spec = np.fft.rfft(rng.standard_normal(3 * SR))
    freqs = np.fft.rfftfreq(3 * SR, 1 / SR)
    spec *= np.minimum(1.0, (1000.0 / np.maximum(freqs, 1.0)) ** 3)
    assert bandwidth_hz(np.fft.irfft(spec).astype(np.float32), SR) == SR / 2
    assert bandwidth_hz(np.zeros(SR, np.float32), SR) == SR / 2


def test_holdout_takes_whole_groups_per_kind_deterministically(tmp_path):
    from pathlib import Path

    names = [f"speech_en_spk{i:02d}.flac" for i in range(20)] + ["speech_en_long_a.flac", "speech_en_long_b.flac"]
    names += [f"music_piece{i}.flac" for i in range(10)] + ["env_rain.flac", "env_wind.flac"]
    paths = [Path(n) for n in names]
    train, val = holdout(paths, 0.1)
    assert sorted(train + val) == sorted(paths) and not set(train) & set(val)
    assert holdout(list(reversed(paths)), 0.1)[1] == sorted(val, key=lambda p: names[::-1].index(p.name))
    kinds = [clip_kind(p) for p in val]
    assert kinds.count("music") == 1 and "env" not in kinds  # env has 2 groups: too few to give one up
    assert 2 <= kinds.count("speech") <= 3
    long_parts = {p.name for p in val} & {"speech_en_long_a.flac", "speech_en_long_b.flac"}
    assert len(long_parts) in (0, 2)  # a group goes whole
    assert clip_group(Path("speech_en_long_a.flac")) == clip_group(Path("speech_en_long_b.flac"))
    # a file added later changes no other file's side
    more = paths + [Path("speech_en_zz_new.flac")]
    assert set(holdout(more, 0.1)[1]) - {Path("speech_en_zz_new.flac")} <= set(val) | set(train)
    assert holdout(paths, 0.0) == (paths, [])


def clip(n: int, kind: str = "speech", band: float = SR / 2, source: int = 0) -> Clip:
    return Clip(torch.linspace(-0.5, 0.5, n), kind, band, source, f"{kind}_{n}")


def test_one_source_draws_the_stream_of_the_single_folder_sampler():
    """Resumed audio runs keep their data stream: the old sampler's draws, reimplemented here."""
    clips = [clip(30000), clip(9000), clip(50000)]
    sampler = SegmentSampler([clips], 0.5, SR, seed=3, multiple=320)
    got, _ = sampler.draw(5)
    gen = torch.Generator().manual_seed(3)
    weights = torch.tensor([30000.0, 9000.0, 50000.0], dtype=torch.float64)
    idx = torch.multinomial(weights, 5, replacement=True, generator=gen)
    for row, i in enumerate(idx.tolist()):
        audio = clips[i].audio
        length = sampler.length
        if len(audio) > length:
            start = int(torch.randint(0, len(audio) - length + 1, (1,), generator=gen))
            seg = audio[start : start + length]
        else:
            seg = audio
        gain = float(torch.empty(1).uniform_(-12.0, 3.0, generator=gen))
        want = torch.zeros(length)
        want[: len(seg)] = seg * 10 ** (gain / 20)
        assert torch.equal(got[row, 0], want.clamp(-1, 1))


def test_source_weights_and_bandwidths():
    speech = [clip(100000, "speech", 8000.0, 0) for _ in range(5)]
    music = [clip(20000, "music", SR / 2, 1)]
    sampler = SegmentSampler([speech, music], 0.1, SR, seed=0, weights=[1.0, 3.0])
    assert sampler.shares() == pytest.approx({"speech": 0.25, "music": 0.75})
    _, band = sampler.draw(400)
    assert 0.68 < float((band == SR / 2).float().mean()) < 0.82
    assert SegmentSampler([speech, music], 0.1, SR, seed=0).shares()["speech"] == pytest.approx(500 / 520)


def test_band_weights_leave_the_empty_band_out():
    """Content added above a clip's bandwidth (where a 16 kHz source has none) barely moves the masked losses."""
    t = torch.arange(SR // 2) / SR
    x = (torch.from_numpy(lowpassed_noise(0.5, 8000)) + 0.3 * torch.sin(2 * np.pi * 440 * t))[None, None]
    x_hf = x + 0.05 * torch.sin(2 * np.pi * 11000 * t)[None, None]
    band = torch.tensor([8000.0])
    masked = multi_resolution_mel_loss(x_hf, x, SR, band, 0.0).item()
    unmasked = multi_resolution_mel_loss(x_hf, x, SR).item()
    assert unmasked > 0.1 and masked < 0.05 * unmasked
    log_masked, sc_masked = multi_resolution_stft_loss(x_hf, x, SR, band, 0.0)
    log_unmasked, sc_unmasked = multi_resolution_stft_loss(x_hf, x, SR)
    assert log_masked.item() < 0.05 * log_unmasked.item() and sc_masked.item() < 0.05 * sc_unmasked.item()


def test_spectral_convergence_is_bounded_on_silence():
    """The case that diverged: a near-silent target. The floor makes the error absolute, with finite gradients."""
    x = torch.zeros(2, 1, 4800)
    x_hat = (1e-3 * torch.randn(2, 1, 4800)).requires_grad_()
    log_err, sc = multi_resolution_stft_loss(x_hat, x)
    assert torch.all(torch.isfinite(sc)) and float(sc.detach().max()) < 10
    (log_err.sum() + sc.sum()).backward()
    assert x_hat.grad is not None and torch.all(torch.isfinite(x_hat.grad))
    same = multi_resolution_stft_loss(x + 0.1, x + 0.1)
    assert float(same[0].max()) == 0 and float(same[1].max()) == 0


def test_default_loss_is_audio_edges():
    torch.manual_seed(0)
    model = AudioCodecModel(AudioConfig(channels=4, latent=8))
    x = torch.rand(2, 1, 320 * 8) - 0.5
    level = torch.tensor([0, 5])
    out = model(x, level, band_hz=torch.tensor([8000.0, 12000.0]))  # default: the band is not used
    assert set(out) == {"x_hat", "kbps", "mel", "l1"}
    want = (out["mel"] + 10 * out["l1"] + out["kbps"] / (10 * model.lambdas[level])).mean()
    assert torch.equal(model.loss(out, level), want)
    assert torch.equal(out["mel"], multi_resolution_mel_loss(out["x_hat"], x))


def test_discriminator_losses_reach_only_their_player():
    torch.manual_seed(0)
    model = AudioCodecModel(AudioConfig(channels=4, latent=8), AudioLoss(adversarial=1 / 15, feature=2 / 15))
    model.attach_discriminator(4)
    assert model.discriminator is not None
    x = torch.rand(2, 1, 320 * 8) - 0.5
    out = model(x, torch.tensor([0, 1]))
    disc_params = list(model.discriminator.parameters())
    codec_params = [p for n, p in model.named_parameters() if not n.startswith("discriminator.")]
    for key, reaches, spared in (("disc", disc_params, codec_params), ("adv_g", codec_params, disc_params),
                                 ("feature", codec_params, disc_params)):
        model.zero_grad()
        out[key].backward(retain_graph=True)
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in reaches), key
        assert all(p.grad is None or p.grad.abs().sum() == 0 for p in spared), key
    assert [len(g["params"]) for g in model.parameter_groups()] == [len(codec_params), len(disc_params)]
    # checkpoints with and without discriminator weights load both ways
    plain = AudioCodecModel(AudioConfig(channels=4, latent=8))
    plain.load_state_dict(model.state_dict())
    model.load_state_dict(plain.state_dict())


def test_profiles_keep_within_the_run_times_halo():
    """Chunked coding is seamless only if the transforms reach less than HALO_FRAMES latent frames."""
    from aecodec.audio.stream import HALO_FRAMES
    from aecodec.export.complexity import complexity

    for name, preset in AUDIO_PROFILES.items():
        cfg = AudioConfig(**preset)
        assert AudioConfig.from_dict(cfg.to_dict()) == cfg
        torch.manual_seed(0)
        model = AudioCodecModel(cfg).eval()
        with torch.no_grad():
            y = torch.zeros(1, cfg.latent, 4 * HALO_FRAMES)
            y2 = y.clone()
            y2[..., 2 * HALO_FRAMES] = 1.0
            diff = (model.decoder(y2) - model.decoder(y)).abs()[0, 0]
            support = torch.nonzero(diff > 0).flatten()
        assert (2 * HALO_FRAMES * cfg.hop - int(support.min())) / cfg.hop < HALO_FRAMES, name
        assert (int(support.max()) - (2 * HALO_FRAMES + 1) * cfg.hop) / cfg.hop < HALO_FRAMES, name
        macs = complexity(model)
        assert macs["decoder_mmac_per_s"] < 800 and macs["encoder_mmac_per_s"] < 500, name
    assert AudioConfig().to_dict().keys() == {"channels", "latent", "strides", "lambdas", "sample_rate"}
    wide = AudioConfig(**AUDIO_PROFILES["edge-wide"])
    assert wide.lambdas[-1] > 480 and wide.to_dict()["decoder_channels"] == 20


def write_clips(folder, names, seconds=0.4, rate=16000):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(names))
    for i, name in enumerate(names):
        t = np.arange(int(seconds * rate)) / rate
        clip = 0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t) + 0.01 * rng.standard_normal(len(t))
        sf.write(folder / name, clip.astype(np.float32), rate)


@pytest.mark.parametrize("loss", [["--loss-stft", "1", "--loss-sc", "1", "--above-band-weight", "0"],
                                  ["--loss-adversarial", "0.0667", "--loss-feature", "0.133", "--disc-channels", "4"]])
def test_training_with_two_sources_holdout_and_loss_options(tmp_path, loss):
    write_clips(tmp_path / "a", [f"speech_s{i}.flac" for i in range(4)])
    write_clips(tmp_path / "b", [f"music_m{i}.wav" for i in range(3)], rate=24000)
    args = ["--modality", "audio", "--data", str(tmp_path / "a"), str(tmp_path / "b"), "--data-weights", "1", "2",
            "--val-fraction", "0.25", "--val-seconds", "0.2", "--out", str(tmp_path / "run"), "--channels", "4",
            "--latent", "8", "--batch", "2", "--segment-seconds", "0.1", "--val-every", "2", "--log-every", "1", "--no-progress",
            "--threads", "1", "--lambdas", "2", "20", "200", *loss]
    assert trainer.main(args + ["--steps", "2"]) == 0
    assert trainer.main(args + ["--steps", "3"]) == 0  # resumes, discriminator included
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert ckpt["step"] == 3 and ckpt["config"]["lambdas"] == [2.0, 20.0, 200.0]
    val = ckpt["history"][-1]["val"]
    assert set(val) == {"L0", "L1", "L2"} and set(val["L0"]["by_kind"]) == {"speech", "music"}
    assert all(np.isfinite(v["si_sdr"]) and v["kbps"] > 0 for v in val.values())
    log = (tmp_path / "run" / "train.log").read_text()
    assert "1 held out" in log and "expected share of batch rows" in log
    assert ("sc " in log) if "--loss-sc" in loss else ("adv_g" in log and "disc" in log)
    if "--loss-adversarial" in loss:
        assert any(k.startswith("discriminator.") for k in ckpt["model"])
        from aecodec.train.checkpoint_io import load_checkpoint

        model, _ = load_checkpoint(tmp_path / "run" / "last.pt")  # export's loader drops the discriminator
        assert isinstance(model, AudioCodecModel) and model.discriminator is None
    with pytest.raises(SystemExit, match="exclude"):
        trainer.main(args + ["--steps", "4", "--val", str(tmp_path / "b")])


def test_audio_eval_reports_every_point_per_kind(tmp_path, capsys):
    from aecodec.train.audio_eval import main

    write_clips(tmp_path / "clips", ["speech_x.flac", "music_y.flac"], seconds=0.5)
    torch.manual_seed(0)
    model = AudioCodecModel(AudioConfig(channels=4, latent=8))
    torch.save({"model": model.state_dict(), "config": model.config.to_dict(), "modality": "audio", "step": 0},
               tmp_path / "a.pt")
    assert main([str(tmp_path / "a.pt"), "--data", str(tmp_path / "clips"), "--gain-scales", "2",
                 "--unquantised", "--json", str(tmp_path / "r.json"), "--threads", "1"]) == 0
    points = json.loads((tmp_path / "r.json").read_text())[str(tmp_path / "clips")]["points"]
    assert list(points) == [f"L{k}" for k in range(6)] + ["top×2", "unquantised"]
    rates = [points[f"L{k}"]["kbps"] for k in range(6)] + [points["top×2"]["kbps"]]
    assert rates == sorted(rates) and set(points["L0"]["by_kind"]) == {"speech", "music"}
    assert "unquantised" in capsys.readouterr().out


def test_prepare_audio_from_a_folder(tmp_path):
    from aecodec.train.prepare_audio import main, track_names

    src = tmp_path / "src"
    src.mkdir()
    t = np.arange(6 * 48000) / 48000
    tone = (0.5 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    for name in ("theme.ogg", "defeat.wav", "defeat2.wav"):
        sf.write(src / name, np.stack([tone, tone], 1), 48000)
    sf.write(src / "silence.wav", np.zeros((6 * 48000, 2), np.float32), 48000)
    assert main(["--src", str(src), "--prefix", "music_test", "--out", str(tmp_path / "out"), "--licence", "CC0"]) == 0
    names = sorted(p.name for p in (tmp_path / "out").glob("*.flac"))
    assert names == ["music_test_defeat_a.flac", "music_test_defeat_b.flac", "music_test_theme.flac"]
    info = sf.info(str(tmp_path / "out" / "music_test_theme.flac"))
    assert (info.samplerate, info.channels, info.subtype) == (24000, 1, "PCM_16")
    meta = json.loads((tmp_path / "out" / "SOURCES.json").read_text())
    assert meta["licence"] == "CC0" and len(meta["files"]) == 3 and meta["minutes"] == pytest.approx(0.3, abs=0.01)
    assert main(["--src", str(src), "--prefix", "music_test", "--out", str(tmp_path / "out")]) == 0  # re-run: kept
    from pathlib import Path

    assert track_names([Path("a/frantic.ogg"), Path("a/frantic-old.ogg")]) == {
        Path("a/frantic.ogg"): "frantic_a", Path("a/frantic-old.ogg"): "frantic_b"}
