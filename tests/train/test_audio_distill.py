"""The framed (patch) audio encoder and its distillation from a trained encoder, then the joint run it feeds."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sf = pytest.importorskip("soundfile")
pytest.importorskip("soxr")

from aecodec.train import distill_encoder, trainer  # noqa: E402
from aecodec.train.audio_model import AudioCodecModel, AudioConfig, AudioEncoder, patch_strides  # noqa: E402

TINY = dict(channels=4, latent=8, decoder="fourier", fourier_dim=8, fourier_hidden=16, fourier_blocks=2)


def test_patch_replaces_the_leading_strides_and_keeps_the_frame_rate():
    assert patch_strides((2, 4, 5, 8), 1) == (0, (2, 4, 5, 8))
    assert patch_strides((2, 4, 5, 8), 8) == (2, (5, 8))
    assert patch_strides((2, 4, 5, 8), 40) == (3, (8,))
    with pytest.raises(ValueError, match="not a product of the leading strides"):
        patch_strides((2, 4, 5, 8), 4)
    x = torch.randn(2, 1, 320 * 5)
    for patch in (1, 2, 8, 40):
        encoder = AudioEncoder(AudioConfig(**TINY, encoder_patch=patch))
        assert encoder(x).shape == (2, 8, 5)
    framed = AudioEncoder(AudioConfig(**TINY, encoder_patch=8))
    first = framed.net[0]
    assert (first.in_channels, first.out_channels, first.stride, first.kernel_size) == (1, 16, (8,), (16,))
    assert not any(isinstance(m, torch.nn.Conv1d) and m.in_channels == 4 for m in framed.modules())
    cfg = AudioConfig(**TINY, encoder_patch=8)
    assert cfg.to_dict()["encoder_patch"] == 8 and AudioConfig.from_dict(cfg.to_dict()) == cfg
    assert "encoder_patch" not in AudioConfig(**TINY).to_dict()  # earlier checkpoints' dicts read and write unchanged


def test_the_student_inherits_the_stages_after_the_framing_conv():
    torch.manual_seed(0)
    teacher_cfg = AudioConfig(**TINY)
    teacher = AudioEncoder(teacher_cfg).eval()
    student_cfg = AudioConfig(**TINY, encoder_patch=8)
    student = AudioEncoder(student_cfg).eval()
    assert distill_encoder.inherit_later_stages(student, teacher, student_cfg) == 22
    x = torch.randn(1, 1, 320 * 4)
    with torch.no_grad():
        features = teacher.net[:9](x)  # input conv + the two stages (2 units, activation, strided conv) replaced
        assert torch.allclose(student.net[1:](features), teacher(x), atol=1e-6)


def test_a_bare_front_drops_the_full_rate_units_and_inherits_every_other_weight():
    torch.manual_seed(0)
    teacher = AudioEncoder(AudioConfig(**TINY)).eval()
    cfg = AudioConfig(**TINY, encoder_bare=2)
    student = AudioEncoder(cfg).eval()
    assert cfg.to_dict()["encoder_bare"] == 2 and AudioConfig.from_dict(cfg.to_dict()) == cfg
    assert "encoder_bare" not in AudioConfig(**TINY).to_dict()
    assert sum(isinstance(m, torch.nn.Identity) for m in student.net) == 4  # 2 units in each of the first 2 strides
    def unstrided(encoder):
        return sum(isinstance(m, torch.nn.Conv1d) and m.stride == (1,) for m in encoder.modules())

    assert unstrided(teacher) - unstrided(student) == 8  # 2 convs per unit
    taken = distill_encoder.inherit_later_stages(student, teacher, cfg)
    assert taken == len(student.state_dict())
    x = torch.randn(1, 1, 320 * 4)
    with torch.no_grad():  # the teacher with its first units' residual branches silenced computes the same
        for unit in list(teacher.net)[1:3] + list(teacher.net)[5:7]:
            unit.block[-1].weight.zero_()
            unit.block[-1].bias.zero_()
        assert torch.allclose(student(x), teacher(x), atol=1e-6)
    assert student(x).shape == (1, 8, 4)
    with pytest.raises(ValueError, match="encoder_bare 5"):
        AudioEncoder(AudioConfig(**TINY, encoder_bare=5))


def _clips(folder, n=3):
    rng = np.random.default_rng(0)
    folder.mkdir()
    for i in range(n):
        t = np.arange(int(0.5 * 24000)) / 24000
        clip = 0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t) + 0.02 * rng.standard_normal(len(t))
        sf.write(folder / f"c{i}.flac", clip.astype(np.float32), 24000)


def _latent_error(student: AudioCodecModel, teacher: AudioCodecModel, x: torch.Tensor) -> float:
    with torch.no_grad():
        gain = teacher.gain(torch.zeros(x.shape[0], dtype=torch.long), 3)
        return float(distill_encoder.latent_error(student.encoder(x), teacher.encoder(x), gain))


def test_distilled_encoder_learns_the_teachers_latent_and_feeds_a_joint_run(tmp_path):
    _clips(tmp_path / "train")
    torch.manual_seed(0)
    teacher = AudioCodecModel(AudioConfig(**TINY))
    teacher_ckpt = tmp_path / "teacher.pt"
    torch.save({"model": teacher.state_dict(), "config": teacher.config.to_dict(), "modality": "audio", "step": 0},
               teacher_ckpt)
    args = ["--teacher", str(teacher_ckpt), "--encoder-patch", "8", "--activation", "leaky_relu",
            "--data", str(tmp_path / "train"), "--val-fraction", "0", "--out", str(tmp_path / "d"), "--batch", "4",
            "--segment-seconds", "0.2", "--lr", "3e-3", "--threads", "1", "--max-steps", "40"]
    distill_encoder.main(args)
    ckpt = torch.load(tmp_path / "d" / "last.pt", weights_only=False)
    assert ckpt["step"] == 40 and ckpt["config"]["encoder_patch"] == 8 and ckpt["config"]["activation"] == "leaky_relu"
    student = AudioCodecModel(AudioConfig.from_dict(ckpt["config"]))
    student.load_state_dict(ckpt["model"])
    for name, value in teacher.state_dict().items():
        if not name.startswith("encoder."):  # decoder, density and gains are the teacher's
            assert torch.equal(ckpt["model"][name], value), name
    torch.manual_seed(0)
    fresh = AudioCodecModel(AudioConfig.from_dict(ckpt["config"]))
    x = torch.from_numpy(sf.read(tmp_path / "train" / "c1.flac", dtype="float32")[0][: 320 * 30])[None, None]
    assert _latent_error(student, teacher, x) < 0.5 * _latent_error(fresh, teacher, x)
    # a second call resumes from the checkpoint
    distill_encoder.main([*args[:-1], "45"])
    assert torch.load(tmp_path / "d" / "last.pt", weights_only=False)["step"] == 45
    assert "resumed at step 40" in (tmp_path / "d" / "train.log").read_text()
    # the joint run starts from it with the same architecture flags, and refuses a different patch
    run = ["--modality", "audio", "--data", str(tmp_path / "train"), "--channels", "4", "--latent", "8",
           "--audio-profile", "fourier", "--fourier-dim", "8", "--fourier-hidden", "16", "--fourier-blocks", "2",
           "--activation", "leaky_relu", "--batch", "2", "--segment-seconds", "0.1", "--val-every", "100",
           "--no-progress", "--threads", "1", "--init", str(tmp_path / "d" / "last.pt"), "--steps", "2",
           "--warmup", "1"]
    assert trainer.main([*run, "--encoder-patch", "8", "--out", str(tmp_path / "joint")]) == 0
    joint = torch.load(tmp_path / "joint" / "last.pt", weights_only=False)
    assert joint["config"]["encoder_patch"] == 8
    with pytest.raises(SystemExit, match="encoder patch must match"):
        trainer.main([*run, "--out", str(tmp_path / "joint1")])
    # a bare front starts straight from a full encoder (every weight it has keeps its name) but not the reverse
    full = [*run[:-6], "--init", str(teacher_ckpt), "--steps", "2", "--warmup", "1"]
    assert trainer.main([*full, "--encoder-bare", "2", "--out", str(tmp_path / "bare")]) == 0
    bare = torch.load(tmp_path / "bare" / "last.pt", weights_only=False)
    assert bare["config"]["encoder_bare"] == 2
    with pytest.raises(SystemExit, match="--encoder-bare must be at least"):
        trainer.main([*run[:-6], "--init", str(tmp_path / "bare" / "last.pt"), "--steps", "2", "--warmup", "1",
                      "--out", str(tmp_path / "bare1")])


def test_a_framed_encoder_exports_with_parity(tmp_path):
    pytest.importorskip("onnxruntime")
    from aecodec.export.__main__ import main

    torch.manual_seed(0)
    cfg = AudioConfig(**TINY, encoder_patch=8, activation="leaky_relu")
    model = AudioCodecModel(cfg)
    ckpt = tmp_path / "a.pt"
    torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "modality": "audio", "step": 0}, ckpt)
    assert main([str(ckpt), "--out", str(tmp_path / "bundle")]) == 0
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert manifest["parity"]["rounded_latent_flips"] == 0 and manifest["config"]["encoder_patch"] == 8


@pytest.mark.parametrize("patch", [1, 8])
def test_the_framed_encoder_reaches_less_than_the_run_times_halo(patch):
    """Chunked encoding is seamless only if one input sample moves latent frames within HALO_FRAMES of its own."""
    from aecodec.audio.stream import HALO_FRAMES

    torch.manual_seed(0)
    cfg = AudioConfig(decoder="fourier", activation="leaky_relu", encoder_patch=patch)
    encoder = AudioEncoder(cfg).eval()
    frames = 4 * HALO_FRAMES
    x = torch.zeros(1, 1, frames * cfg.hop)
    x2 = x.clone()
    centre = 2 * HALO_FRAMES * cfg.hop + cfg.hop // 2
    x2[..., centre] = 1.0
    with torch.no_grad():
        moved = torch.nonzero((encoder(x2) - encoder(x)).abs().amax(dim=1)[0] > 0).flatten()
    assert 2 * HALO_FRAMES - int(moved.min()) < HALO_FRAMES and int(moved.max()) - 2 * HALO_FRAMES < HALO_FRAMES
