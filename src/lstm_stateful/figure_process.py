"""Draw the figures in separate Python processes, started before JAX is imported.

Importing matplotlib and drawing costs well over a second of Python holding the GIL. In
child processes it runs on the other core while the parent imports JAX and compiles, and
the figures that need the results are drawn side by side, one per child, at the end.
The children import NumPy and matplotlib only. Messages are pickles on a child's stdin:
both ends are this package on the same interpreter.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

from lstm_stateful import plots


class FigureProcessError(RuntimeError):
    """A figure process failed; the message is its last error line."""


class _Child:
    def __init__(self, out: Path) -> None:
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115  (lives as long as the child)
        cmd = [sys.executable, "-m", "lstm_stateful.figure_process", str(out)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.stderr)

    def send(self, message: tuple[str, object]) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # a dead child is reported by wait()
            pickle.dump(message, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.flush()

    def wait(self) -> str | None:
        """Close its input, wait for it: None if it succeeded, else its last error line."""
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        code = self.proc.wait()
        self.stderr.seek(0)
        lines = self.stderr.read().decode(errors="replace").strip().splitlines()
        self.stderr.close()
        if code == 0:
            return None
        return lines[-1] if lines else f"exited with status {code}"


class FigureProcesses:
    """``draw(name, data)`` hands a figure to the next child (round robin); ``finish()``
    waits for every PNG and raises ``FigureProcessError`` if any drawing failed."""

    def __init__(self, out: Path, n: int = 1) -> None:
        self._children = [_Child(out) for _ in range(max(1, min(n, os.cpu_count() or 1)))]
        self._next = 0

    def draw(self, name: str, data: object) -> None:
        self._children[self._next].send((name, data))
        self._next = (self._next + 1) % len(self._children)

    def finish(self) -> None:
        errors = [e for e in (child.wait() for child in self._children) if e]
        if errors:
            raise FigureProcessError(errors[0])

    def kill(self) -> None:
        """Stop the children without waiting for figures (the run failed or was interrupted)."""
        for child in self._children:
            child.proc.kill()
            child.proc.wait()
            with contextlib.suppress(BrokenPipeError):
                child.proc.stdin.close()  # type: ignore[union-attr]  (always a pipe)
            child.stderr.close()


def serve(out: Path) -> None:
    """A child: draw what arrives until stdin closes."""
    plots.warm_up()  # import matplotlib and load fonts now, while the parent imports JAX
    stream = sys.stdin.buffer
    while True:
        try:
            name, data = pickle.load(stream)
        except EOFError:
            break
        plots.write_figure(name, data, out)
    # Every PNG is written and closed; skip the interpreter's teardown of matplotlib,
    # which the parent would otherwise wait for.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
