"""Draw the figures in a separate Python process, started before JAX is imported.

Importing matplotlib and drawing costs well over a second of Python holding the GIL. In a
child process it runs on the other core while the parent imports JAX and compiles. The
child imports NumPy and matplotlib only, then forks a grandchild per figure it is sent,
so the figures that need the results are drawn side by side at the end. Messages are pickles on the child's stdin:
both ends are this package on the same interpreter.
"""

from __future__ import annotations

import contextlib
import os
import pickle
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
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr)
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
        if code != 0:
            raise FigureProcessError(lines[-1] if lines else f"exited with status {code}")

    def kill(self) -> None:
        self._proc.kill()
        self._proc.wait()
        self._close()
        self._stderr.close()


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
    # Import matplotlib now, while the parent imports JAX; the input figure, sent early,
    # then loads the fonts before the figures that wait on the results.
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401

    stream = sys.stdin.buffer
    forks, failed = [], False
    while True:
        try:
            name, data = pickle.load(stream)
        except EOFError:
            break
        if hasattr(os, "fork"):
            forks.append(_draw_in_fork(name, data, out))
        else:
            plots.write_figure(name, data, out)
    for pid in forks:
        failed |= os.waitpid(pid, 0)[1] != 0
    # Every PNG is written and closed: skip the interpreter's teardown of matplotlib,
    # which the parent would otherwise wait for.
    sys.stderr.flush()
    os._exit(1 if failed else 0)


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
