"""Writing outputs all-or-nothing: a temp file beside the target, then an atomic rename/link.

The target is either absent, its old contents, or complete: never partial. A process killed with
SIGKILL during the write cannot clean up, so a hidden `.NAME.XXXX.part` file may remain beside it.
"""
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
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        with os.fdopen(fd, "wb") as f:
            _write_all(f, data)
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


def _umask() -> int:
    """The process umask without changing it (os.umask would, briefly, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _write_all(f, data: bytes) -> None:
    delay = float(os.environ.get("_AECODEC_TEST_WRITE_DELAY", "0"))  # test hook: widen the write window
    if delay:
        import time

        for i in range(0, len(data), 4096):
            f.write(data[i : i + 4096])
            f.flush()
            time.sleep(delay)
    else:
        f.write(data)
    f.flush()
    os.fsync(f.fileno())
