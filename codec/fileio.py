"""Reading inputs (bytes, paths, file objects) and writing outputs all-or-nothing.

Writing outputs all-or-nothing: a temp file beside the target, then an atomic rename/link.

The target is either absent, its old contents, or complete: never partial. A process killed with
SIGKILL during the write cannot clean up its hidden `.NAME.HOST.PID.XXXX.part` temp file, so each
write first removes such leftovers of the same target left by processes of this host that no longer
run (the host is in the name so a shared network folder never loses another machine's live file).
"""
from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Union

from .errors import AecError, InputError

Source = Union[str, Path, bytes, bytearray, memoryview, BinaryIO]


def read_source(source: Source) -> bytes:
    """bytes-like as is; a path is read; a file object is read to its end."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, Path)):
        return Path(source).read_bytes()
    if hasattr(source, "read"):
        return source.read()
    raise InputError(f"expected bytes, a path or a file object, got {type(source).__name__}")


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
    with atomic_output(path, force) as tmp:
        with open(tmp, "wb") as f:
            _write_all(f, data)


@contextlib.contextmanager
def atomic_output(path: str, force: bool) -> Iterator[str]:
    """Yield a temp path beside `path`; when the block succeeds it becomes `path` atomically
    (rename with force, else a link that never clobbers), otherwise it is removed."""
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"output is a directory: {path}")
    if target.exists() and not force:
        raise OutputError(f"{path} already exists (use -f to overwrite)")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"output folder does not exist: {folder}")
    remove_stale_parts(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{host_name()}.{os.getpid()}.", suffix=".part", dir=folder)
    except OSError as e:  # name the user's output, never the hidden temp file
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        yield tmp
        with open(tmp, "rb+") as f:
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
    except OSError as e:
        if tmp not in (e.filename, e.filename2):
            raise
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def host_name() -> str:
    return "".join(c for c in socket.gethostname() if c.isalnum() or c == "-")[:32] or "host"


def remove_stale_parts(target: Path) -> list[Path]:
    """Remove `.NAME.HOST.PID.*.part` files of this target left by dead processes of this host."""
    folder = target.parent if str(target.parent) else Path(".")
    prefix = f".{target.name}.{host_name()}."
    removed: list[Path] = []
    try:
        candidates = [p for p in folder.iterdir() if p.name.startswith(prefix) and p.name.endswith(".part")]
    except OSError:
        return removed
    for p in candidates:
        pid_text = p.name[len(prefix):].split(".", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            p.unlink()
            removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours (EPERM): alive
        return True
    return True


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
