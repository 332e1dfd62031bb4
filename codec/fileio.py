"""Writing outputs all-or-nothing: a temp file beside the target, then an atomic rename/link."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from .errors import AecError


class OutputError(AecError):
    """The output cannot be written (exists without overwrite, folder missing, a terminal)."""


def write_atomic(path: str, data: bytes, force: bool) -> None:
    """Write all of data or nothing: temp file in the target folder, then an atomic rename/link."""
    if path == "-":
        if sys.stdout.isatty():
            raise OutputError("refusing to write binary data to a terminal (use -o FILE or redirect)")
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"output is a directory: {path}")
    if target.exists() and not force:
        raise OutputError(f"{path} already exists (use -f to overwrite)")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"output folder does not exist: {folder}")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if force:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # fails if target appeared meanwhile: never clobber
            except FileExistsError:
                raise OutputError(f"{path} already exists (use -f to overwrite)") from None
            except OSError:
                if target.exists():
                    raise OutputError(f"{path} already exists (use -f to overwrite)") from None
                os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
