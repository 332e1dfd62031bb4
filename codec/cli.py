"""`aecodec` command line: compress / decompress / info.

Habits of cwebp and zstd: `-o` names the output (default: input name with a new suffix),
`-` is stdin/stdout, nothing is overwritten without `-f`, outputs are written to a temp
file and renamed so a failure never leaves a partial file, errors are one line on stderr
with exit status 1 (2 for usage errors).
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

from . import __version__
from .errors import AecError
from .fileio import write_atomic as _write_output

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class CliError(AecError):
    pass


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    p = Path(path)
    if not p.exists():
        raise CliError(f"no such file: {path}")
    if p.is_dir():
        raise CliError(f"is a directory: {path}")
    return p.read_bytes()


def _default_output(inp: str, suffix: str) -> str:
    if inp == "-":
        return "-"
    p = Path(inp)
    return str(p.with_suffix(suffix)) if p.suffix.lower() != suffix else str(p) + suffix


def _cmd_compress(args) -> int:
    from .image import compress, open_image

    out = args.output or _default_output(args.input, ".aec")
    if out != "-" and Path(out).exists() and not args.force:
        raise CliError(f"{out} already exists (use -f to overwrite)")
    raw = _read_input(args.input)
    if not raw:
        raise CliError("input is empty")
    image = open_image(raw, name="<stdin>" if args.input == "-" else args.input, max_pixels=args.max_pixels)
    data = compress(image, quality=args.quality, model=args.model, max_pixels=args.max_pixels)
    _write_output(out, data, args.force)
    if not args.quiet and out != "-":
        w, h = image.size
        print(f"{args.input} -> {out}: {w}x{h}, {len(data)} bytes, {8 * len(data) / (w * h):.3f} bpp, "
              f"q {args.quality}", file=sys.stderr)
    return EXIT_OK


_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
            ".tiff": "TIFF", ".ppm": "PPM", ".pgm": "PPM", ".pnm": "PPM", ".tga": "TGA"}


def _cmd_decompress(args) -> int:
    from .image import decompress

    out = args.output or _default_output(args.input, ".png")
    if out == "-":
        fmt = (args.format or "png").upper()
    else:
        suffix = Path(out).suffix.lower()
        fmt = (args.format or "").upper() or _FORMATS.get(suffix)
        if fmt is None:
            raise CliError(f"unknown output format {suffix or '(no extension)'!r}; use .png, .jpg, .webp, .bmp, .tif")
        if Path(out).exists() and not args.force:
            raise CliError(f"{out} already exists (use -f to overwrite)")
    data = _read_input(args.input)
    image = decompress(data, model=args.model, max_pixels=args.max_pixels)
    buf = io.BytesIO()
    save_args = {}
    if image.info.get("icc_profile"):
        save_args["icc_profile"] = image.info["icc_profile"]
    if fmt == "JPEG" and image.mode in ("LA", "RGBA"):
        raise CliError("JPEG cannot store the alpha channel; write .png or .webp")
    if fmt in ("WEBP", "JPEG"):
        save_args["quality"] = 95
    try:
        image.save(buf, format=fmt, **save_args)
    except (OSError, KeyError, ValueError) as e:
        raise CliError(f"cannot write {fmt}: {e}") from None
    _write_output(out, buf.getvalue(), args.force)
    if not args.quiet and out != "-":
        print(f"{args.input} -> {out}: {image.size[0]}x{image.size[1]} {image.mode}", file=sys.stderr)
    return EXIT_OK


def _cmd_info(args) -> int:
    from .image import info

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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aecodec", description="Learned image codec (.aec files).")
    p.add_argument("--version", action="version", version=f"aecodec {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="{compress,decompress,info}")

    c = sub.add_parser("compress", help="image -> .aec")
    c.add_argument("input", help="image file (png, jpg, webp, ...) or - for stdin")
    c.add_argument("-o", "--output", help="output .aec (default: input name with .aec; - for stdout)")
    c.add_argument("-q", "--quality", type=int, default=75, metavar="Q", help="1..100, higher = better (default 75)")
    c.add_argument("-f", "--force", action="store_true", help="overwrite the output")
    c.add_argument("--model", help="model bundle folder or shipped name (default: image-edge)")
    c.add_argument("--quiet", action="store_true", help="no summary line")
    c.add_argument("--max-pixels", type=int, metavar="N", help="refuse larger images (default 40000000)")
    c.set_defaults(run=_cmd_compress)

    d = sub.add_parser("decompress", help=".aec -> image")
    d.add_argument("input", help=".aec file or - for stdin")
    d.add_argument("-o", "--output", help="output image; format from the extension (default: input name with .png)")
    d.add_argument("-f", "--force", action="store_true", help="overwrite the output")
    d.add_argument("--format", help="image format when writing to stdout (default png)")
    d.add_argument("--model", help="model bundle folder (default: the shipped bundle named by the file)")
    d.add_argument("--quiet", action="store_true")
    d.add_argument("--max-pixels", type=int, metavar="N", help="refuse files that claim more pixels (default 40000000)")
    d.set_defaults(run=_cmd_decompress)

    i = sub.add_parser("info", help="print the header of an .aec file")
    i.add_argument("input", help=".aec file or - for stdin")
    i.add_argument("--json", action="store_true")
    i.set_defaults(run=_cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "quality", None) is not None and not 1 <= args.quality <= 100:
        parser.error(f"quality must be 1..100, got {args.quality}")
    try:
        return args.run(args)
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
