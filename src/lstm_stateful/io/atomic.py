"""Output files written atomically: a reader sees the old file or the new one, never half.

The content goes to a hidden temporary file beside the target (the same directory, hence the
same file system, so the rename is atomic), is flushed to the disk, and is renamed over the
target; then the directory is flushed, so that after a crash the name points at the whole new
file or the whole old one.

Permissions: the result has the mode a plain ``open(path, "w")`` would give it. The temporary
is created as ``open`` creates a file, with mode 0o666 that the kernel reduces by the umask, or
by the directory's default ACL where it has one. Nothing global is read or changed: ``os.umask``
can only read the mask by setting it, and in between every other thread (JAX's, Dask's, the
caller's) would create its files with the wrong mask; ``/proc/self/status`` has the mask on
Linux only, and knows nothing of ACLs. ``mkstemp`` is not used, as its 0o600 would then need
the mask to be undone. ``O_EXCL`` on a random name gives what ``mkstemp`` does: never another
file's, never through a symbolic link.

A process killed part way leaves its temporary, ``.NAME.RANDOM.SUFFIX``, half written beside
the target, never a partial target. Nothing removes it later: another writer's live temporary
looks the same.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

_OWNER_RW = stat.S_IRUSR | stat.S_IWUSR
# O_BINARY (Windows only): no newline translation; the writer reopens the file by name anyway.
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
_ATTEMPTS = 100


def _create(path: Path) -> tuple[Path, int]:
    """Create an empty temporary beside ``path``; return it and the mode ``open`` gave it."""
    for _ in range(_ATTEMPTS):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{path.suffix}")
        try:
            fd = os.open(tmp, _CREATE, 0o666)
        except FileExistsError:
            continue
        try:
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
            if mode & _OWNER_RW != _OWNER_RW:
                # A umask such as 0o222 makes files read-only, yet the writer reopens the
                # temporary by name: let it, until _sync puts the mode back.
                os.fchmod(fd, mode | _OWNER_RW)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
        return tmp, mode
    raise FileExistsError(f"no free temporary name beside {str(path)!r} after {_ATTEMPTS} attempts")


def _sync(tmp: Path, mode: int) -> None:
    """Give the written temporary its final ``mode`` and flush its data and metadata to the disk."""
    fd = os.open(tmp, os.O_WRONLY)  # writable: fsync needs it on Windows
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != mode:
            os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_directory(directory: Path) -> None:
    """Flush the directory, so that the rename survives a crash. Best effort: Windows cannot
    open a directory, and some file systems refuse to sync one; the new file is in place
    either way, so failing the write here would be a lie."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_with(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``."""
    tmp, mode = _create(path)
    try:
        write(tmp)
        _sync(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (newlines as given)."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            f.write(text)

    write_with(path, write)


def write_bytes_atomic(path: Path, blob: bytes) -> None:
    """Write ``blob`` to ``path`` atomically."""

    def write(tmp: Path) -> None:
        tmp.write_bytes(blob)

    write_with(path, write)
