"""Draw the figures in a separate Python process, started before JAX is imported.

Importing matplotlib and drawing costs well over a second of Python holding the GIL. In a
child process it runs on the other core while the parent imports JAX and compiles. The
child imports NumPy and matplotlib only, then forks a grandchild per figure it is sent,
so the figures that need the results are drawn side by side at the end. Messages are pickles on the child's stdin:
both ends are this package on the same interpreter.

On POSIX the child leads a process group of its own, which its forks join: ``kill()`` ends
them all (killing the child alone would leave its forks drawing, and writing figures after a
failed run had given up on them); a Ctrl-C at the terminal reaches the parent only, which
then calls ``kill()``.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

from lstm_stateful.render import plots


class FigureProcessError(RuntimeError):
    """The figure process failed; the message is its last error line."""


class FigureProcess:
    """``draw(name, data)`` hands a figure to the child; ``finish()`` waits for every PNG
    and raises ``FigureProcessError`` if any drawing failed; ``kill()`` abandons them."""

    def __init__(self, out: Path) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115  (lives as long as the child)
        cmd = [sys.executable, "-m", "lstm_stateful.render.figure_process", str(out)]
        group = 0 if os.name == "posix" else None  # 0: a group of its own, led by the child
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr, process_group=group
        )
        assert self._proc.stdin is not None
        self._stdin = self._proc.stdin

    def draw(self, name: str, data: plots.InputData | plots.FigureData) -> None:
        with contextlib.suppress(BrokenPipeError):  # a dead child is reported by finish()
            pickle.dump((name, data), self._stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self._stdin.flush()

    def _close(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            self._stdin.close()

    def finish(self) -> None:
        self._close()
        code = self._proc.wait()
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        self._stderr.close()
        if code < 0:  # killed from outside (the OOM killer, a kill -9): its last line is not why
            raise FigureProcessError(f"the figure process was killed by {_signal_name(-code)}")
        if code != 0:
            raise FigureProcessError(lines[-1] if lines else f"exited with status {code}")

    def kill(self) -> None:
        if os.name != "posix":
            self._proc.kill()
        elif self._proc.returncode is None:
            # Not yet reaped, so the group's id is still the child's and cannot be another's.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()
        self._close()
        self._stderr.close()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:  # a real-time signal has no name
        return f"signal {number}"


def _draw_in_fork(name: str, data: object, out: Path) -> int:
    """Draw in a forked copy of this (already warm) process; returns the fork's pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        plots.write_figure(name, data, out)  # type: ignore[arg-type]
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stderr.flush()
    os._exit(code)


def serve(out: Path) -> None:
    """The child: draw what arrives until stdin closes, then exit 0 if every figure was written."""
    # Import matplotlib now, while the parent imports JAX, and draw a throwaway figure
    # so that the fonts are loaded here, once, before the forks that draw the real ones.
    plots.warm_up()

    stream = sys.stdin.buffer
    forks: dict[int, str] = {}
    while True:
        try:
            name, data = pickle.load(stream)
        except EOFError:
            break
        if hasattr(os, "fork"):
            forks[_draw_in_fork(name, data, out)] = name
        else:
            plots.write_figure(name, data, out)
    failed = _wait_for_forks(forks)
    # Every PNG is written and closed: skip the interpreter's teardown of matplotlib,
    # which the parent would otherwise wait for.
    sys.stderr.flush()
    os._exit(1 if failed else 0)


def _wait_for_forks(forks: dict[int, str]) -> bool:
    """Wait for every fork (pid -> figure name); True if any failed. A fork killed by a
    signal (the OOM killer's, likeliest) printed nothing: say which figure it was drawing."""
    failed = False
    for pid, name in forks.items():
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        if code < 0:
            print(f"drawing the {name} figure was killed by {_signal_name(-code)}", file=sys.stderr)
        failed |= code != 0
    return failed


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
