"""Atomic writes: the old file or the new one, never half; no global state touched; durable."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lstm_stateful.io import atomic

POSIX = pytest.mark.skipif(os.name != "posix", reason="file modes and signals are POSIX")

# Run in a child with its own umask (Popen(umask=...)), so this process's umask stays as it
# is: os.umask is replaced by a function that fails, then the mode of a file written
# atomically is printed next to that of a file created by a plain open().
MODE_CHILD = textwrap.dedent(
    """
    import os, stat, sys
    from pathlib import Path
    from lstm_stateful.io.atomic import write_atomic

    def fail(*args):
        raise AssertionError("os.umask was called: it changes the mask of every thread")

    os.umask = fail
    out = Path(sys.argv[1])
    write_atomic(out / "atomic.txt", "new\\n")
    with open(out / "plain.txt", "w") as f:
        f.write("new\\n")
    print(*(oct(stat.S_IMODE(os.stat(out / n).st_mode)) for n in ("atomic.txt", "plain.txt")))
    """
)

# Writes ``half`` of a large file through write_with, says so on stdout, then waits for a
# line on stdin that never comes: the parent SIGKILLs it there, half way through the write.
KILL_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from lstm_stateful.io.atomic import write_with

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(b"n" * 4_000_000)
            f.flush()
            print("half", flush=True)
            sys.stdin.readline()
            f.write(b"n" * 4_000_000)

    write_with(Path(sys.argv[1]), write)
    """
)


@POSIX
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002, 0o222], ids=oct)
def test_mode_is_a_plain_files_and_the_umask_is_never_changed(tmp_path: Path, umask: int) -> None:
    # 0o222: a read-only file, which the writer must still be able to fill.
    cmd = [sys.executable, "-c", MODE_CHILD, str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, umask=umask, timeout=60)
    assert done.returncode == 0, done.stderr
    written, plain = done.stdout.split()
    assert written == plain == oct(0o666 & ~umask)
    assert (tmp_path / "atomic.txt").read_text() == "new\n"


def test_in_process_no_umask_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(mask: int) -> int:
        raise AssertionError("os.umask was called")

    monkeypatch.setattr(os, "umask", fail)
    atomic.write_atomic(tmp_path / "a.txt", "x\n")
    (tmp_path / "b.txt").write_text("x\n")
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == stat.S_IMODE((tmp_path / "b.txt").stat().st_mode)


def test_file_is_synced_before_the_rename_and_the_directory_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    fsync, replace = os.fsync, os.replace

    def logged_fsync(fd: int) -> None:
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        fsync(fd)

    def logged_replace(src: str | Path, dst: str | Path) -> None:
        events.append("replace")
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", logged_fsync)
    monkeypatch.setattr(os, "replace", logged_replace)
    atomic.write_atomic(tmp_path / "a.txt", "x\n")
    expected = ["fsync file", "replace", "fsync dir"] if os.name == "posix" else ["fsync file", "replace"]
    assert events == expected


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("old\n")

    def write(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic.write_with(path, write)
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["a.txt"]


@POSIX
@pytest.mark.parametrize("old", [b"old complete file\n", None])
def test_a_process_killed_mid_write_leaves_the_old_file_or_none(tmp_path: Path, old: bytes | None) -> None:
    path = tmp_path / "data.bin"
    if old is not None:
        path.write_bytes(old)
    child = subprocess.Popen(
        [sys.executable, "-c", KILL_CHILD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert child.stdout is not None and child.stdout.readline() == b"half\n"
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=60) == -signal.SIGKILL
    assert child.stdin is not None and child.stdout is not None
    child.stdin.close()
    child.stdout.close()
    if old is None:
        assert not path.exists()
    else:
        assert path.read_bytes() == old
    # What a killed writer leaves: its hidden temporary, half written, beside the target.
    # Nothing can remove it (the process is gone); it never takes the target's name.
    leftovers = sorted(set(os.listdir(tmp_path)) - {path.name})
    assert len(leftovers) == 1 and leftovers[0].startswith(".data.bin.") and leftovers[0].endswith(".bin")
    assert (tmp_path / leftovers[0]).stat().st_size == 4_000_000
