"""The command line as a user drives it: exit codes, no clobbering, stdin/stdout, one-line errors."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import aecodec

from tests.conftest import natural_image


def run(*args, stdin: bytes | None = None, cwd=None):
    return subprocess.run([sys.executable, "-m", "aecodec", *args], input=stdin, capture_output=True, cwd=cwd,
                          timeout=120)


@pytest.fixture()
def png(tmp_path):
    p = tmp_path / "photo.png"
    Image.fromarray(natural_image(45, 61)).save(p)
    return p


def assert_one_line_error(res):
    assert res.returncode == 1, res
    err = res.stderr.decode()
    assert err.startswith("aecodec: error: ") and err.count("\n") == 1 and "Traceback" not in err, err


def test_compress_decompress_info(png, tmp_path):
    res = run("compress", str(png), "-q", "40")
    assert res.returncode == 0, res.stderr
    aec = tmp_path / "photo.aec"
    assert aec.exists()
    res = run("info", str(aec))
    assert res.returncode == 0 and b"quality" in res.stdout and b"61" in res.stdout
    out = tmp_path / "back.png"
    assert run("decompress", str(aec), "-o", str(out)).returncode == 0
    assert Image.open(out).size == (61, 45)
    assert run("decompress", str(aec), "-o", str(tmp_path / "back.webp")).returncode == 0


def test_never_overwrites_without_force(png, tmp_path):
    out = tmp_path / "x.aec"
    out.write_bytes(b"precious")
    assert_one_line_error(run("compress", str(png), "-o", str(out)))
    assert out.read_bytes() == b"precious"
    assert run("compress", str(png), "-o", str(out), "-f").returncode == 0
    assert out.read_bytes()[:4] == b"\x89AEC"


def test_stdin_stdout_pipeline(png):
    res = run("compress", "-", "-o", "-", "-q", "20", stdin=png.read_bytes())
    assert res.returncode == 0 and res.stdout[:4] == b"\x89AEC"
    back = run("decompress", "-", "-o", "-", stdin=res.stdout)
    assert back.returncode == 0 and back.stdout[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("content", [b"", b"hello", b"\x89AEC\x01garbage", b"\x89PNG\r\n\x1a\n" + b"\0" * 30])
def test_bad_inputs_fail_cleanly_and_leave_nothing(tmp_path, content):
    bad = tmp_path / "bad.aec"
    bad.write_bytes(content)
    out = tmp_path / "out.png"
    assert_one_line_error(run("decompress", str(bad), "-o", str(out)))
    assert_one_line_error(run("compress", str(bad), "-o", str(tmp_path / "o.aec")))
    assert_one_line_error(run("info", str(bad)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.aec"]


def test_truncated_file(png, tmp_path):
    aec = tmp_path / "t.aec"
    assert run("compress", str(png), "-o", str(aec)).returncode == 0
    data = aec.read_bytes()
    aec.write_bytes(data[: len(data) - 7])
    assert_one_line_error(run("decompress", str(aec), "-o", str(tmp_path / "t.png")))
    assert not (tmp_path / "t.png").exists()


def test_missing_input_and_usage_errors(tmp_path):
    assert_one_line_error(run("compress", str(tmp_path / "nope.png")))
    assert run("compress").returncode == 2
    assert run("compress", "x.png", "-q", "0").returncode == 2
    assert run("frobnicate").returncode == 2


def test_unknown_output_extension(png, tmp_path):
    aec = tmp_path / "a.aec"
    run("compress", str(png), "-o", str(aec))
    assert_one_line_error(run("decompress", str(aec), "-o", str(tmp_path / "a.xyz")))


def test_alpha_to_jpeg_is_refused(tmp_path):
    p = tmp_path / "a.png"
    Image.fromarray(natural_image(8, 8, channels=4), "RGBA").save(p)
    assert run("compress", str(p)).returncode == 0
    assert_one_line_error(run("decompress", str(tmp_path / "a.aec"), "-o", str(tmp_path / "a.jpg")))
    assert not (tmp_path / "a.jpg").exists()


def test_batch_mode_goes_on_past_bad_files(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        Image.fromarray(natural_image(20 + i, 30, seed=i)).save(src / f"img{i}.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    extra = tmp_path / "extra.jpg"
    Image.fromarray(natural_image(10, 12)).save(extra)
    out = tmp_path / "out"
    res = run("compress", str(src), str(extra), "-o", str(out), "-q", "30")
    assert res.returncode == 1  # one input failed
    err = res.stderr.decode()
    assert "broken.png" in err and "4 done, 1 failed" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["extra.aec", "img0.aec", "img1.aec", "img2.aec"]
    back = tmp_path / "back"
    res = run("decompress", str(out), "-o", str(back))
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in back.iterdir()) == ["extra.png", "img0.png", "img1.png", "img2.png"]
    assert Image.open(back / "img2.png").size == (30, 22)


def test_batch_mode_needs_an_output_folder(tmp_path, png):
    res = run("compress", str(png), str(png))
    assert_one_line_error(res)
    assert "-o" in res.stderr.decode()


def test_models_and_version():
    res = run("models", "--json")
    assert res.returncode == 0
    import json

    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["image-edge"]["modality"] == "image" and rows["image-edge"]["decoder_kmac_per_px"] <= 25
    assert rows["audio-edge"]["modality"] == "audio" and rows["audio-edge"]["sample_rate"] == 24000
    text = run("models").stdout.decode()
    assert "image-edge" in text and "MMAC per second of audio" in text
    assert run("--version").stdout.decode().startswith("aecodec ")


def test_quiet_and_quality_flags(png, tmp_path):
    """-q is the quality on `compress` (cwebp), -q/--quiet before the command or on decompress (zstd)."""
    res = run("-q", "compress", str(png), "-q", "30", "-o", str(tmp_path / "a.aec"))
    assert res.returncode == 0 and res.stderr == b""
    assert b'"quality": 30' in run("info", str(tmp_path / "a.aec"), "--json").stdout
    res = run("decompress", "-q", str(tmp_path / "a.aec"), "-o", str(tmp_path / "a.png"))
    assert res.returncode == 0 and res.stderr == b"" and (tmp_path / "a.png").exists()
    res = run("compress", str(png), "-o", str(tmp_path / "b.aec"))
    assert res.returncode == 0 and b"q 75" in res.stderr  # default quality, summary shown


def test_bench_json(png):
    import json

    res = run("bench", str(png), "--repeat", "1", "--no-audio", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    (row,) = report["rows"]
    assert row["width"] == 61 and row["encode_mp_per_s"] > 0 and row["decode_mp_per_s"] > 0 and row["bpp"] > 0
    assert_one_line_error(run("bench", "--repeat", "0"))


def test_completion_scripts_complete_commands_and_options(tmp_path):
    import shutil

    res = run("completion", "bash")
    assert res.returncode == 0 and b"complete -o filenames -F _aecodec aecodec" in res.stdout
    assert run("completion", "zsh").stdout.startswith(b"# aecodec zsh completion")
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    script = tmp_path / "c.sh"
    script.write_bytes(res.stdout)
    probe = (f'source "{script}"; COMP_WORDS=(aecodec dec); COMP_CWORD=1; _aecodec; echo "${{COMPREPLY[@]}}"; '
             'COMP_WORDS=(aecodec compress --bit); COMP_CWORD=2; _aecodec; echo "${COMPREPLY[@]}"')
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30).stdout.splitlines()
    assert out == ["decompress", "--bitrate"]


@pytest.fixture()
def wav(tmp_path):
    sf = pytest.importorskip("soundfile")
    p = tmp_path / "tone.wav"
    t = np.arange(12_000) / 24_000
    sf.write(p, (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 24_000)
    return p


def cli(capfd, *args, stdin: bytes | None = None, monkeypatch=None) -> tuple[int, str]:
    """The command line in this process (no interpreter start): exit status and stderr."""
    import io

    from aecodec.cli.main import main

    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    try:
        code = main(list(args))
    except SystemExit as e:  # argparse's usage errors
        code = int(e.code or 0)
    return code, capfd.readouterr().err


def test_bitrate_usage_errors(png, wav, tmp_path, capfd, monkeypatch):
    for args in (("compress", str(png), "-b", "12"), ("compress", str(wav), "-b", "12", "-q", "40"),
                 ("compress", str(wav), "--lossless")):
        code, err = cli(capfd, *args)
        assert code == 2 and "Traceback" not in err, err
    code, err = cli(capfd, "compress", "-", "-o", str(tmp_path / "x.aec"), "-b", "12", stdin=png.read_bytes(),
                    monkeypatch=monkeypatch)
    assert code == 2 and "<stdin> is an image" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png", "tone.wav"]


def test_refine_usage_errors_and_a_refined_file(png, wav, tmp_path, capfd):
    for args, says in ((("compress", str(wav), "--refine", "5"), "--refine applies to images, and"),
                       (("compress", str(png), "--refine", "-3"), "0 or more steps"),
                       (("compress", str(png), "--refine", "5", "--lossless"), "not with --lossless")):
        code, err = cli(capfd, *args)
        assert code == 2 and says in err and "Traceback" not in err, err
    code, err = cli(capfd, "compress", str(png), "--refine", "4", "-o", str(tmp_path / "r.aec"), "-v")
    assert code == 0 and "refine " in err  # -v's stage timings name the search
    code, err = cli(capfd, "decompress", str(tmp_path / "r.aec"), "-o", str(tmp_path / "r.png"))
    assert code == 0 and (tmp_path / "r.png").is_file()


def test_bitrate_out_of_reach_is_noticed_and_wav_on_stdin_is_audio(wav, tmp_path, capfd, monkeypatch):
    for target, word in (("0.1", "below"), ("1000", "above")):
        code, err = cli(capfd, "compress", str(wav), "-b", target, "-o", str(tmp_path / f"{target}.aec"))
        assert code == 0 and f"aecodec: notice: {wav}: " in err and word in err, err
    code, err = cli(capfd, "--quiet", "compress", str(wav), "-b", "0.1", "-o", str(tmp_path / "q.aec"))
    assert code == 0 and err == ""
    code, err = cli(capfd, "compress", "-", "-o", str(tmp_path / "s.aec"), stdin=wav.read_bytes(),
                    monkeypatch=monkeypatch)
    assert code == 0, err
    assert aecodec.info(tmp_path / "s.aec")["modality"] == "audio"


def test_compress_refuses_aec_input(png, tmp_path, capfd, monkeypatch):
    aec = tmp_path / "photo.aec"
    assert cli(capfd, "compress", str(png))[0] == 0
    renamed = tmp_path / "renamed.png"
    renamed.write_bytes(aec.read_bytes())
    for path in (aec, renamed):
        code, err = cli(capfd, "compress", str(path), "-o", str(tmp_path / "again.aec"))
        assert code == 1 and err.count("\n") == 1 and "already an .aec file" in err, err
    code, err = cli(capfd, "compress", "-", "-o", str(tmp_path / "again.aec"), stdin=aec.read_bytes(),
                    monkeypatch=monkeypatch)
    assert code == 1 and "already an .aec file" in err
    assert not (tmp_path / "again.aec").exists()


def test_unwritable_output_names_the_users_path(png, tmp_path, capfd):
    import os

    if os.geteuid() == 0:  # root writes anywhere on a normal folder; /sys refuses even root
        folder = Path("/sys")
        if not folder.is_dir():
            pytest.skip("no read-only folder to try")
    else:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o500)
    code, err = cli(capfd, "compress", str(png), "-o", str(folder / "out.aec"))
    assert code == 1 and str(folder / "out.aec") in err and ".part" not in err, err


def test_notices_and_frames_on_the_command_line(tmp_path, capfd):
    import struct
    import zlib

    grey16 = np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 250
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for row in grey16)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png16 = tmp_path / "deep.png"
    png16.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 16, 0, 0, 0, 0))
                      + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    code, err = cli(capfd, "compress", str(png16))
    assert code == 0 and f"aecodec: notice: {png16}: 16-bit" in err, err
    frames = [Image.fromarray(natural_image(12, 12, seed=i)) for i in range(4)]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    code, err = cli(capfd, "compress", str(gif))
    assert code == 1 and "4 frames" in err and "--first-frame" in err
    code, err = cli(capfd, "compress", str(gif), "--first-frame", "--lossless")
    assert code == 0 and "lossless" in err
    assert aecodec.info(tmp_path / "anim.aec")["coding"].startswith("lossless")


def test_backends_are_listed_and_a_missing_one_is_a_one_line_error(capfd, tmp_path, monkeypatch):
    monkeypatch.setenv("AECODEC_PROVIDER", "auto")  # --backend sets it for the process: restored after the test
    import json

    from aecodec.cli import main

    assert main(["info", "--backends", "--json"]) == 0
    report = json.loads(capfd.readouterr().out)
    assert report["backends"]["cpu"]["available"] and report["auto"] in ("cpu", "cuda", "tensorrt")
    src = tmp_path / "a.png"
    Image.fromarray(natural_image(40, 40)).save(src)
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        code, err = cli(capfd, "compress", str(src), "--backend", "cuda", "-o", str(tmp_path / "a.aec"))
        assert code == 1 and "'cuda' is not available" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "a.aec").exists()
    code, err = cli(capfd, "-v", "compress", str(src), "--backend", "auto", "-o", str(tmp_path / "b.aec"))
    assert code == 0 and "backend auto: " in err
