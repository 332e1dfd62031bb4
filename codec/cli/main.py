"""`aecodec` command line: compress / decompress / info.

Habits of cwebp and zstd: `-o` names the output (default: input name with a new suffix),
`-` is stdin/stdout, nothing is overwritten without `-f`, outputs are written to a temp
file and renamed so a failure never leaves a partial file, errors are one line on stderr
with exit status 1 (2 for usage errors).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import __version__
from ..api import IMAGE_OUTPUT_FORMATS, compress_to, decompress_to, info, is_audio_path
from ..audio import AUDIO_SUFFIXES, looks_like_audio
from ..errors import AecError
from ..image import DEFAULT_QUALITY
from .batch import EXIT_ERROR, EXIT_OK, EXIT_USAGE, CliError, UsageError, run_files

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pnm", ".pgm", ".tga",
                  ".avif"}


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    p = Path(path)
    if not p.exists():
        raise CliError(f"no such file: {path}")
    if p.is_dir():
        raise CliError(f"is a directory: {path}")
    return p.read_bytes()


def _timing_text(args, timings: dict) -> str:
    if not getattr(args, "verbose", False):
        return ""
    return " (" + ", ".join(f"{k} {1000 * v:.0f} ms" for k, v in timings.items()) + ")"


def _progress_line(args, label: str):
    """A percentage on stderr for long audio, only on a terminal and only for a single input
    (batch mode has its own progress line); cleared when done."""
    if args.quiet or not sys.stderr.isatty() or getattr(args, "batch", False):
        return None
    last = [-1]

    def show(fraction: float) -> None:
        pct = int(100 * fraction)
        if pct != last[0]:
            last[0] = pct
            end = "\r" + " " * (len(label) + 8) + "\r" if pct >= 100 else ""
            print(f"\r{label} {pct:3d}%{end}", end="", file=sys.stderr, flush=True)

    return show


def _compress_one(inp: str, out: str, args) -> str:
    if Path(inp).suffix.lower() == ".aec":
        raise CliError(f"{inp} is already an .aec file (decompress it first; re-encoding only adds loss)")
    if out != "-" and Path(out).exists() and not args.force:
        raise CliError(f"{out} already exists (use -f to overwrite)")
    timings: dict = {}
    options = dict(quality=args.quality, overwrite=args.force, model=args.model, bitrate=args.bitrate)
    if inp != "-" and is_audio_path(inp):
        if args.lossless or args.first_frame or args.refine:
            raise UsageError(f"{_image_flag(args)} applies to images, and {inp} is audio")
        meta = compress_to(inp, out, **options, max_seconds=args.max_seconds,
                           progress=_progress_line(args, f"compress {Path(inp).name}"))
        return _audio_summary(inp, out, meta)
    raw = _read_input(inp)
    if not raw:
        raise CliError("input is empty")
    name = "<stdin>" if inp == "-" else inp
    if looks_like_audio(raw):  # audio on stdin, or an audio file with an unusual name
        if args.lossless or args.first_frame or args.refine:
            raise UsageError(f"{_image_flag(args)} applies to images, and {name} is audio")
        meta = compress_to(raw, out, **options, max_seconds=args.max_seconds, name=name)
        return _audio_summary(inp, out, meta)
    if args.bitrate is not None:
        raise UsageError(f"-b/--bitrate applies to audio, and {name} is an image: use -q QUALITY")
    meta = compress_to(raw, out, **options, max_pixels=args.max_pixels, name=name, timings=timings,
                       lossless=True if args.lossless else None, first_frame=args.first_frame, refine=args.refine)
    coding = ", lossless" if meta["coding"].startswith("lossless") else ""
    return (f"{inp} -> {out}: {meta['width']}x{meta['height']}, {meta['bytes']} bytes, {meta['bpp']:.3f} bpp, "
            f"q {meta['quality']}{coding}" + _timing_text(args, timings))


def _image_flag(args) -> str:
    """The image-only option the command line was given (for the error on audio input)."""
    return "--lossless" if args.lossless else "--first-frame" if args.first_frame else "--refine"


def _audio_summary(inp: str, out: str, meta: dict) -> str:
    return (f"{inp} -> {out}: {meta['seconds']:.2f} s, {meta['sample_rate']} Hz, {meta['channels']} ch, "
            f"{meta['bytes']} bytes, {meta['kbps']:.2f} kbps, q {meta['quality']}")


def _cmd_compress(args) -> int:
    return run_files(args, _compress_one, ".aec", lambda p: p.suffix.lower() in IMAGE_SUFFIXES | AUDIO_SUFFIXES)


def _cmd_decompress(args) -> int:
    suffix = "." + (args.format or "png").lower().replace("jpeg", "jpg")
    return run_files(args, _decompress_one, suffix, lambda p: p.suffix.lower() == ".aec")


def _decompress_one(inp: str, out: str, args) -> str:
    from ..api import modality_of
    from ..audio import OUTPUT_FORMATS

    data = _read_input(inp)
    timings: dict = {}
    if modality_of(data) == "audio":
        if out != "-" and Path(out).suffix.lower() not in OUTPUT_FORMATS:
            if args.output and not Path(args.output).is_dir():
                raise CliError(f"audio output must be .wav, .flac or .ogg, not {Path(out).suffix or '(none)'}")
            out = str(Path(out).with_suffix(".wav"))
        meta = decompress_to(data, out, overwrite=args.force, model=args.model, max_seconds=args.max_seconds,
                             progress=_progress_line(args, f"decompress {Path(inp).name}"))
        return f"{inp} -> {out}: {meta['seconds']:.2f} s, {meta['sample_rate']} Hz"
    fmt = (args.format or "").upper() or None
    if out == "-":
        fmt = fmt or "PNG"
    elif fmt is None and Path(out).suffix.lower() not in IMAGE_OUTPUT_FORMATS:
        suffix = Path(out).suffix.lower()
        raise CliError(f"unknown output format {suffix or '(no extension)'!r}; use .png, .jpg, .webp, .bmp, .tif")
    meta = decompress_to(data, out, fmt=fmt, overwrite=args.force, model=args.model, max_pixels=args.max_pixels,
                         timings=timings)
    return f"{inp} -> {out}: {meta['width']}x{meta['height']} {meta['mode']}" + _timing_text(args, timings)


def _cmd_backends(args) -> int:
    from ..models.runtime import backend_report

    report = backend_report()
    report["precisions"] = _precisions_report()
    if args.json:
        print(json.dumps(report, indent=1))
        return EXIT_OK
    installed = ", ".join(f"{k} {v}" for k, v in report["installed"].items()) or "none"
    print(f"onnxruntime {report['onnxruntime']} ({installed}), device {report['device']}")
    prec = report["precisions"]
    for name, b in report["backends"].items():
        state = "available" if b["available"] else "not available"
        p = prec["backends"].get(name, {})
        print(f"  {name:9s} {b['provider']:28s} {state}, precisions {', '.join(p.get('available', ['fp32']))} "
              f"(auto: {p.get('auto', 'fp32')})")
    print(f"  auto -> {report['auto']}  (precisions of {prec['model']}; --precision to choose)")
    for warning in report["warnings"]:
        print(f"aecodec: warning: {warning}", file=sys.stderr)
    return EXIT_OK


def _precisions_report() -> dict:
    """Per backend, the graph variants of the default image model that can run there and what auto picks."""
    from ..models import DEFAULT_IMAGE_MODEL, MODELS_DIR, Manifest, precisions_for

    folder = MODELS_DIR / DEFAULT_IMAGE_MODEL
    manifest = Manifest.from_dict(json.loads((folder / "manifest.json").read_text()), str(folder))
    found = {}
    for backend in ("cpu", "cuda", "tensorrt"):
        available, auto = precisions_for(manifest, folder, backend)
        found[backend] = {"available": available, "auto": auto}
    return {"model": DEFAULT_IMAGE_MODEL, "backends": found}


def _cmd_info(args) -> int:
    if args.backends:
        return _cmd_backends(args)
    if args.input is None:
        raise UsageError("info needs an .aec file (or --backends)")
    facts = info(_read_input(args.input))
    if args.json:
        print(json.dumps(facts))
    else:
        for key, value in facts.items():
            if key == "bpp":
                value = f"{value:.4f}"
            elif key == "sections":
                value = ", ".join(f"{k} {v} B" for k, v in value.items())
            print(f"{key:15s} {value}")
    return EXIT_OK


def _cmd_models(args) -> int:
    from ..models import shipped_bundles

    rows = []
    for folder in ([Path(args.model)] if args.model else shipped_bundles()):
        if not (folder / "manifest.json").is_file():
            raise CliError(f"not a model bundle (no manifest.json): {folder}")
        m = json.loads((folder / "manifest.json").read_text())
        c = m.get("complexity", {})
        row = {
            "name": m.get("name", folder.name), "model_id": m["model_id"], "profile": m.get("profile"),
            "modality": m.get("modality", "image"), "latent_coding": m.get("latent_coding", "factorized"),
            "folder": str(folder),
            "megabytes": round(sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) / 1e6, 2),
            "parameters": sum(c.get(k, 0) for k in ("encoder_params", "decoder_params", "entropy_params")),
            "training_steps": (m.get("training") or {}).get("steps"),
            "variants": _variant_rows(folder, m),
        }
        if row["modality"] == "audio":
            row.update({"sample_rate": m.get("sample_rate"), "frame_rate": m.get("frame_rate"),
                        "encoder_mmac_per_s": c.get("encoder_mmac_per_s"), "decoder_mmac_per_s": c.get("decoder_mmac_per_s"),
                        "audio_test": m.get("audio_test")})
        else:
            row.update({"encoder_kmac_per_px": c.get("encoder_kmac_per_px"),
                        "decoder_kmac_per_px": c.get("decoder_kmac_per_px"), "kodak": m.get("kodak")})
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    for r in rows:
        print(f"{r['name']}  ({r['modality']}, {r['latent_coding']}, profile {r['profile']}, id {r['model_id']})")
        if r["modality"] == "audio":
            cost = (f"{r['sample_rate']} Hz, {r['frame_rate']:g} latent frames/s, {r['encoder_mmac_per_s']:.0f} / "
                    f"{r['decoder_mmac_per_s']:.0f} MMAC per second of audio (encoder / decoder)")
        else:
            cost = f"{r['encoder_kmac_per_px']:.1f} / {r['decoder_kmac_per_px']:.1f} kMAC/px (encoder / decoder)"
        print(f"  {r['megabytes']} MB, {r['parameters']:,} parameters, {cost}, {r['training_steps']} training steps")
        for key in ("kodak", "audio_test"):
            if r.get(key):
                print(f"  {key}: {r[key]}")
        for v in r["variants"] if len(r["variants"]) > 1 else []:
            print(f"  variant {v['name']}: {v['precision']} .{v['format']}, "
                  + (f"{v['megabytes']} MB" if v["present"] else "files not here")
                  + (f", default on {', '.join(v['default_for'])}" if v["default_for"] else "")
                  + (f"; {v['measured']}" if v.get("measured") else ""))
    return EXIT_OK


def _variant_rows(folder: Path, m: dict) -> list[dict]:
    """The bundle's graph variants (fp32 = the payload graphs) with size, defaults and measured figures."""
    rows = [{"name": "fp32", "precision": "fp32", "format": "onnx", "present": (folder / "encoder.onnx").is_file(),
             "megabytes": round(sum((folder / f).stat().st_size for f in ("encoder.onnx", "decoder.onnx")
                                    if (folder / f).is_file()) / 1e6, 2), "default_for": [], "measured": ""}]
    payload = ("encoder.onnx", "decoder.onnx")
    for name, v in (m.get("variants") or {}).items():
        graphs = v.get("files") or {}
        present = bool(graphs) and all((folder / f).is_file() for f in graphs.values())
        files = [folder / f for f in set(graphs.values()) if f not in payload]  # its own files (size)
        measured = []
        rd = ((v.get("measured") or {}).get("rd") or {}).get("pairs", {}).get(f"{name}->{name}")
        if rd:
            measured.append(f"PSNR {rd['mean_psnr_delta_db']:+.3f} dB" + (f", BD-rate {rd['bd_rate_percent']:+.2f} %"
                                                                        if "bd_rate_percent" in rd else ""))
        sp = (v.get("measured") or {}).get("speed")
        if sp and name in sp.get("variants", {}):
            me, ref = sp["variants"][name], sp["variants"]["fp32"]
            measured.append(f"encode {me['encode_mp_per_s']:.2f} / decode {me['decode_mp_per_s']:.2f} MP/s vs fp32 "
                            f"{ref['encode_mp_per_s']:.2f} / {ref['decode_mp_per_s']:.2f} ({sp['size']}, "
                            f"{sp['threads']} threads)")
        if v.get("note"):
            measured.append(v["note"])
        shared = [g for g, f in graphs.items() if f in payload]
        if shared:
            measured.insert(0, f"{', '.join(shared)} shared with fp32")
        rows.append({"name": name, "precision": v.get("precision"), "format": v.get("format", "onnx"),
                     "present": present, "megabytes": round(sum(f.stat().st_size for f in files if f.is_file()) / 1e6, 2),
                     "default_for": v.get("default_for", []), "measured": "; ".join(measured)})
    if m.get("mobile"):
        rows.append({"name": "mobile", "precision": ", ".join(m["mobile"].get("covers", [])), "format": "ort",
                     "present": (folder / m["mobile"]["operators_config"]).is_file(), "megabytes": 0.0,
                     "default_for": [], "measured": f"{m['mobile']['operators_config']} (minimal ONNX Runtime build); "
                                                    f".ort models {m['mobile'].get('ort_models', '')}"})
    return rows


_EPILOG = """examples:
  aecodec compress photo.png -q 60                 photo.png -> photo.aec (-q on compress is the quality)
  aecodec compress shots/ extra.jpg -o out/        batch: every image in shots/ and extra.jpg
  aecodec decompress photo.aec -o back.webp        format from the extension
  aecodec compress song.flac -b 12                 audio at 12 kbps -> song.aec
  aecodec decompress song.aec                      -> song.wav (original rate, channels, length)
  cat a.png | aecodec compress - -o - | aecodec decompress - -o - > b.png
  aecodec -q compress photo.png -f                 -q before the command (or --quiet anywhere): no summary
  aecodec info photo.aec --json
  aecodec models
  aecodec bench                                    speed of this machine (--json)
  source <(aecodec completion bash)                tab completion (bash; zsh: completion zsh)
"""


def _add_precision_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=["auto", "fp32", "int8", "fp16"],
                   help="graph variant of the model (default auto: the variant the bundle measured fastest on this "
                        "backend at no more than 0.15 dB cost, else fp32); any variant decodes any variant's files")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """Options compress and decompress share: limits, timings, backend, Ray."""
    p.add_argument("--max-pixels", type=int, metavar="N",
                   help="refuse images (or files that claim images) of more pixels (default 256000000)")
    p.add_argument("--max-seconds", type=float, metavar="S",
                   help="refuse audio (or files that claim audio) longer than this (default 10800)")
    p.add_argument("-v", "--verbose", action="store_true", help="add per-stage timings to the summary")
    p.add_argument("--backend", choices=["auto", "cpu", "cuda", "tensorrt"],
                   help="ONNX Runtime backend (default auto: TensorRT > CUDA > CPU, whichever is installed)")
    _add_precision_option(p)
    p.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="batch on a Ray cluster (pip install \"aecodec[ray]\"): none = a local one, or auto / HOST:PORT / "
                        "ray://HOST:PORT; -o is a folder; existing outputs are skipped and counted (-f redoes them)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aecodec", description="Learned image and audio codec (.aec files).",
                                epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"aecodec {__version__}")
    # zstd habit -q/--quiet, -v/--verbose before the command; on `compress`, -q is the quality (cwebp habit)
    p.add_argument("-q", "--quiet", dest="global_quiet", action="store_true", help="no summary lines")
    p.add_argument("-v", "--verbose", dest="global_verbose", action="store_true", help="per-stage timings")
    sub = p.add_subparsers(dest="command", required=True,
                           metavar="{compress,decompress,info,models,bench,completion}")

    c = sub.add_parser("compress", help="image or audio -> .aec")
    c.add_argument("input", nargs="+", help="image/audio file(s) or folder(s) (png, jpg, webp, ..., wav, flac, ogg), "
                                            "or - for stdin (images)")
    c.add_argument("-o", "--output", help="output .aec (default: input name with .aec; - for stdout); "
                                          "a folder when there are several inputs")
    c.add_argument("-q", "--quality", type=int, metavar="Q",
                   help="1..100, higher = better (default 75 for images, 50 for audio)")
    c.add_argument("-f", "--force", action="store_true", help="overwrite the output")
    c.add_argument("-b", "--bitrate", type=float, metavar="KBPS", help="audio: target kbps (whole file) instead of -q")
    c.add_argument("--refine", type=int, default=0, metavar="STEPS",
                   help="images: search the latent for STEPS steps (about 3 decoder passes each; 100: -8 %% bits at "
                        "equal PSNR on Kodak, ~20 s for a 0.4-MP photo on 2 cores); the file decodes as any other")
    c.add_argument("--lossless", action="store_true",
                   help="images: code exactly (WebP lossless / zlib), no model; tiny images and graphics are coded "
                        "so automatically where that is smaller or better")
    c.add_argument("--first-frame", action="store_true",
                   help="images: code the first frame of an animation or multi-page file (refused otherwise)")
    c.add_argument("--model", help="model bundle folder or shipped name (default: image-hyperprior / audio-edge)")
    c.add_argument("--quiet", action="store_true", help="no summary line")
    _add_run_options(c)
    c.set_defaults(run=_cmd_compress)

    d = sub.add_parser("decompress", help=".aec -> image or audio")
    d.add_argument("input", nargs="+", help=".aec file(s) or folder(s), or - for stdin")
    d.add_argument("-o", "--output", help="output image (.png .jpg .webp .bmp .tif) or audio (.wav .flac .ogg); "
                                          "default: input name with .png / .wav; a folder when there are several inputs")
    d.add_argument("-f", "--force", action="store_true", help="overwrite the output")
    d.add_argument("--format", help="image format for stdout or batch outputs (default png)")
    d.add_argument("--model", help="model bundle folder (default: the shipped bundle named by the file)")
    d.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    _add_run_options(d)
    d.set_defaults(run=_cmd_decompress)

    i = sub.add_parser("info", help="print the header of an .aec file, or the backends of this machine")
    i.add_argument("input", nargs="?", help=".aec file or - for stdin")
    i.add_argument("--backends", action="store_true",
                   help="list ONNX Runtime backends (provider, availability) and what auto picks")
    i.add_argument("--json", action="store_true")
    i.set_defaults(run=_cmd_info)

    m = sub.add_parser("models", help="list the shipped model bundles")
    m.add_argument("--model", help="describe this bundle folder instead")
    m.add_argument("--json", action="store_true")
    m.set_defaults(run=_cmd_models)

    b = sub.add_parser("bench", help="time encode/decode on this machine (generated inputs, or your images)")
    b.add_argument("images", nargs="*", help="images to time (default: a generated 768x512 photo-like image)")
    b.add_argument("-q", "--quality", type=int, default=DEFAULT_QUALITY, metavar="Q", help="image quality (default 75)")
    b.add_argument("--repeat", type=int, default=3, metavar="N", help="timed runs per input, median reported (default 3)")
    b.add_argument("--backend", choices=["auto", "cpu", "cuda", "tensorrt"],
                   help="ONNX Runtime backend (default auto: TensorRT > CUDA > CPU, whichever is installed)")
    _add_precision_option(b)
    b.add_argument("--model", help="image model bundle (default: image-hyperprior)")
    b.add_argument("--audio-model", help="audio model bundle (default: audio-edge)")
    b.add_argument("--no-audio", action="store_true", help="skip the audio timing")
    b.add_argument("--json", action="store_true")
    b.set_defaults(run=_cmd_bench)

    k = sub.add_parser("completion", help="print a shell completion script: source <(aecodec completion bash)")
    k.add_argument("shell", choices=["bash", "zsh"])
    k.set_defaults(run=lambda args: _cmd_completion(args, p))
    return p


def _cmd_bench(args) -> int:
    from .bench import format_bench, run_bench

    if args.repeat < 1:
        raise CliError("--repeat must be at least 1")
    show = sys.stderr.isatty() and not args.quiet
    progress = (lambda msg: print(f"\rbench: {msg[:60]:60s}", end="", file=sys.stderr, flush=True)) if show else None
    report = run_bench(args.images or None, quality=args.quality, repeat=args.repeat, model=args.model,
                       audio_model=args.audio_model, audio=not args.no_audio, progress=progress)
    if show:
        print("\r" + " " * 70 + "\r", end="", file=sys.stderr)
    print(json.dumps(report, indent=1) if args.json else format_bench(report))
    return EXIT_OK


def _cmd_completion(args, parser: argparse.ArgumentParser) -> int:
    """Completion generated from the parser itself, so it never drifts from the real options."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    top = [o for a in parser._actions for o in a.option_strings]
    cases = []
    for name, sp in sub.choices.items():
        opts = " ".join(o for a in sp._actions for o in a.option_strings)
        cases.append(f"        {name}) opts=\"{opts}\" ;;")
    script = f"""# aecodec {args.shell} completion: source <(aecodec completion {args.shell})
{"autoload -U +X bashcompinit && bashcompinit" if args.shell == "zsh" else ""}
_aecodec() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} cmd="" i opts
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${{COMP_WORDS[i]}} in -*) ;; *) cmd=${{COMP_WORDS[i]}}; break ;; esac
    done
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "{' '.join(sub.choices)} {' '.join(top)}" -- "$cur"))
        return
    fi
    case $cmd in
{chr(10).join(cases)}
        *) opts="" ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}}
complete -o filenames -F _aecodec aecodec
"""
    print(script)
    return EXIT_OK


def _check_compress_options(parser: argparse.ArgumentParser, args) -> None:
    """Usage errors (exit 2) that the named inputs show before anything runs."""
    if args.refine < 0:
        parser.error(f"--refine takes 0 or more steps, got {args.refine}")
    if args.refine and (args.bitrate is not None or args.lossless):
        parser.error(f"--refine is for images coded by the model, not with {'-b' if args.bitrate is not None else '--lossless'}")
    if args.bitrate is not None:
        if args.quality is not None:
            parser.error("-b/--bitrate and -q/--quality exclude each other (the bitrate chooses the quality)")
        if args.lossless:
            parser.error("-b/--bitrate is for audio and --lossless for images")
        if not args.bitrate > 0:
            parser.error(f"bitrate must be positive, got {args.bitrate:g}")
        images = [i for i in args.input if Path(i).suffix.lower() in IMAGE_SUFFIXES and not Path(i).is_dir()]
        if images:
            parser.error(f"-b/--bitrate applies to audio, and {images[0]} is an image: use -q QUALITY")


def _choose_backend(args) -> None:
    """--backend NAME: checked here (a missing backend is a one-line error) and applied to every session
    this process creates; auto falls back to what is installed and says what it chose under -v.
    --precision P: applied to every bundle this process loads."""
    import os

    from ..models.runtime import select_providers

    precision = getattr(args, "precision", None)
    if precision is not None:  # checked per bundle when it is loaded (a bundle without the variant: one-line error)
        os.environ["AECODEC_PRECISION"] = precision
        if args.verbose:
            print(f"aecodec: precision {precision}", file=sys.stderr)
    backend = getattr(args, "backend", None)
    if backend is None:
        return
    providers = select_providers(backend)
    os.environ["AECODEC_PROVIDER"] = ",".join(providers)
    if args.verbose:
        print(f"aecodec: backend {backend}: {', '.join(providers)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.quiet = getattr(args, "quiet", False) or args.global_quiet
    args.verbose = getattr(args, "verbose", False) or args.global_verbose
    if getattr(args, "quality", None) is not None and not 1 <= args.quality <= 100:
        parser.error(f"quality must be 1..100, got {args.quality}")
    if args.command == "compress":
        _check_compress_options(parser, args)
    try:
        _choose_backend(args)
        return args.run(args)
    except UsageError as e:
        print(f"aecodec: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (CliError, AecError) as e:
        print(f"aecodec: error: {e}", file=sys.stderr)
    except FileNotFoundError as e:
        print(f"aecodec: error: no such file: {e.filename}", file=sys.stderr)
    except PermissionError as e:
        print(f"aecodec: error: permission denied: {e.filename}", file=sys.stderr)
    except MemoryError:
        print("aecodec: error: out of memory", file=sys.stderr)
    except KeyboardInterrupt:
        print("aecodec: interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        print(f"aecodec: error: {e.strerror or e}", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
