"""Running one command over files: a single input (errors propagate), or many inputs / folders (batch:
every file is tried, failures are reported one line each, exit 1 if any failed, a progress line)."""
from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import AecError, AecNotice

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class CliError(AecError):
    """A usage or input problem the CLI reports as one line (exit 1)."""


class UsageError(CliError):
    """Options that do not fit the input (exit 2, like argparse's usage errors)."""


@contextmanager
def notices(args, name: str) -> Iterator[None]:
    """Print each AecNotice raised while coding one input as one `aecodec: notice:` line (none with --quiet)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AecNotice)
        yield
    for w in caught:
        if issubclass(w.category, AecNotice):
            if not args.quiet:
                text = str(w.message)
                print(f"aecodec: notice: {text if name in text else f'{name}: {text}'}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def default_output(inp: str, suffix: str) -> str:
    """Input name with a new suffix ('-' stays stdout); a name that already has it gets it appended."""
    if inp == "-":
        return "-"
    p = Path(inp)
    return str(p.with_suffix(suffix)) if p.suffix.lower() != suffix else str(p) + suffix


def describe(e: BaseException) -> str:
    """One line for an error, naming the user's file (never a temp file)."""
    if isinstance(e, FileNotFoundError):
        return f"no such file: {e.filename}"
    if isinstance(e, PermissionError):
        return f"permission denied: {e.filename}"
    if isinstance(e, OSError) and not isinstance(e, AecError):
        return e.strerror or str(e)
    return str(e)


def collect_inputs(inputs: list[str], wanted: Callable[[Path], bool]) -> list[Path]:
    """Files named and files found (recursively, sorted) in folders named."""
    files: list[Path] = []
    for name in inputs:
        p = Path(name)
        files += sorted(f for f in p.rglob("*") if f.is_file() and wanted(f)) if p.is_dir() else [p]
    return files


def batch_output_dir(output: str | None) -> Path:
    if not output:
        raise CliError("several inputs need -o OUTPUT_FOLDER")
    out_dir = Path(output)
    if out_dir.exists() and not out_dir.is_dir():
        raise CliError(f"-o must be a folder for several inputs: {out_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def run_files(args, one: Callable[[str, str, object], str], out_suffix: str, wanted: Callable[[Path], bool]) -> int:
    """One input: `one(input, output, args)` and its summary line. Several inputs or folders: batch mode."""
    if getattr(args, "ray", None) is not None:  # --ray [ADDRESS]: batch mode on a Ray cluster
        from ..distributed import run_cli

        return run_cli(args, out_suffix, wanted)
    inputs = args.input
    if len(inputs) == 1 and not Path(inputs[0]).is_dir():
        out = args.output or default_output(inputs[0], out_suffix)
        with notices(args, "<stdin>" if inputs[0] == "-" else inputs[0]):
            msg = one(inputs[0], out, args)
        if not args.quiet and out != "-":
            print(msg, file=sys.stderr)
        return EXIT_OK
    if "-" in inputs:
        raise CliError("'-' (stdin) cannot be combined with other inputs")
    args.batch = True
    files = collect_inputs(inputs, wanted)
    out_dir = batch_output_dir(args.output)
    failed = 0
    progress = sys.stderr.isatty() and not args.quiet
    for i, f in enumerate(files, 1):
        if progress:
            print(f"\r[{i}/{len(files)}] {f.name[:60]:60s}", end="", file=sys.stderr, flush=True)
        out = out_dir / (f.stem + out_suffix)
        try:
            with notices(args, str(f)):
                msg = one(str(f), str(out), args)
            if not args.quiet and not progress:
                print(msg, file=sys.stderr)
        except (AecError, OSError) as e:
            failed += 1
            if progress:
                print(file=sys.stderr)
            print(f"aecodec: error: {f}: {describe(e)}", file=sys.stderr)
    if progress:
        print(file=sys.stderr)
    if not args.quiet or failed:
        print(f"aecodec: {len(files) - failed} done, {failed} failed", file=sys.stderr)
    return EXIT_ERROR if failed or not files else EXIT_OK
