"""Figures drawn in a child process: PNGs on disk, failures reported, no JAX in the child."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lstm_stateful.render import plots
from lstm_stateful.render.figure_process import FigureProcess, FigureProcessError


def _figure_data() -> plots.FigureData:
    rng = np.random.default_rng(0)
    curves = {
        mode: plots.ModelCurves(
            train_loss=rng.uniform(1e-5, 1e-3, (3, 4)),
            val_loss=rng.uniform(1e-5, 1e-3, (3, 4)),
            median_seed=1,
            residual=rng.normal(size=50),
            r2=0.5,
            mse=rng.uniform(1e-5, 1e-3, 3),
        )
        for mode in plots.MODES
    }
    # An exact baseline (MSE 0) is drawn on the bottom edge of the log scale.
    baselines = {
        mode: {"mean": 1e-3, "persistence": 2e-3, "seasonal": 0.0, "linear": linear}
        for mode, linear in zip(plots.MODES, (8e-4, 9e-4), strict=True)
    }
    return plots.FigureData(rng.normal(size=50), curves, 8e-4, baselines)


def test_children_write_every_figure(tmp_path: Path) -> None:
    figures = FigureProcess(tmp_path)
    figures.draw("input", plots.input_data(np.arange(20.0)[:, None], np.arange(20.0)))
    data = _figure_data()
    for name in ("residuals", "losses", "baselines"):
        figures.draw(name, data)
    figures.finish()
    for name in plots.FIGURE_FILES.values():
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_a_failed_drawing_is_reported_in_one_line(tmp_path: Path) -> None:
    figures = FigureProcess(tmp_path)
    figures.draw("no-such-figure", _figure_data())
    with pytest.raises(FigureProcessError) as info:
        figures.finish()
    assert "no-such-figure" in str(info.value) and "\n" not in str(info.value)


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.002)


def _whole_png(path: Path) -> bool:
    data = path.read_bytes()
    return data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")


def _drawing(out: Path, name: str) -> bool:
    """A fork is inside the atomic write of figure ``name``: its temporary exists (or, were the
    write not atomic, the figure's own file)."""
    return any(p.startswith((f".{name}.", name)) for p in os.listdir(out))


def _children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid`` (Linux's /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        with contextlib.suppress(OSError, ValueError):
            fields = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
            if int(fields[1]) == pid and fields[0] not in "ZX":
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] not in "ZX"
    except OSError:
        return False


def _draw_input_then_residuals(figures: FigureProcess, out: Path) -> None:
    """The input figure drawn and written; then the residuals figure being drawn."""
    figures.draw("input", plots.input_data(np.arange(20.0)[:, None], np.arange(20.0)))
    _wait_for(lambda: (out / "input.png").exists(), "input.png")
    figures.draw("residuals", _figure_data())
    _wait_for(lambda: _drawing(out, "residuals.png"), "the residuals figure to be drawing")


@pytest.mark.skipif(sys.platform != "linux", reason="finds the drawing forks in /proc")
def test_kill_mid_drawing_stops_every_child_and_leaves_whole_figures(tmp_path: Path) -> None:
    # kill() abandons the figures: the fork drawing one must die too, or it would write its
    # PNG after kill() returned (the run having failed). What was written is whole.
    figures = FigureProcess(tmp_path)
    _draw_input_then_residuals(figures, tmp_path)
    forks = _children(figures._proc.pid)
    assert forks, "no fork drawing the residuals figure"
    figures.kill()
    _wait_for(lambda: not any(_alive(pid) for pid in forks), "the forks to end")
    assert _whole_png(tmp_path / "input.png")
    assert not (tmp_path / "residuals.png").exists()
    assert all(name.startswith(".") for name in set(os.listdir(tmp_path)) - {"input.png"})


@pytest.mark.skipif(sys.platform != "linux", reason="finds the drawing forks in /proc")
@pytest.mark.parametrize(
    ("killed", "message"),
    [
        ("fork", "drawing the residuals figure was killed by SIGKILL"),
        ("all", "the figure process was killed by SIGKILL"),
    ],
)
def test_a_kill_from_outside_fails_finish_in_one_line(tmp_path: Path, killed: str, message: str) -> None:
    # Killed by someone else (the OOM killer, a kill -9) while drawing, the fork alone or the
    # figure process too: finish() says so in one line; what was written is whole.
    figures = FigureProcess(tmp_path)
    _draw_input_then_residuals(figures, tmp_path)
    forks = _children(figures._proc.pid)
    for pid in forks if killed == "fork" else [*forks, figures._proc.pid]:
        os.kill(pid, signal.SIGKILL)
    with pytest.raises(FigureProcessError) as info:
        figures.finish()
    assert str(info.value) == message
    assert _whole_png(tmp_path / "input.png")
    assert not (tmp_path / "residuals.png").exists()


def test_light_modules_do_not_import_jax() -> None:
    # The figure child imports plots; the CLI validates flags before importing JAX.
    code = (
        "import sys, lstm_stateful.render.plots, lstm_stateful.render.figure_process, lstm_stateful.cli;"
        "print('jax' in sys.modules, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_baselines_figure_shows_every_seed_and_every_baseline() -> None:
    data = _figure_data()
    ax = plots.baselines_figure(data).axes[0]
    for line, mode in zip(ax.lines, plots.MODES, strict=True):  # a dot per seed, one model per slot
        np.testing.assert_array_equal(line.get_ydata(), data.models[mode].mse)
    bottom = ax.get_ylim()[0]
    drawn = [segments[0][0, 1] for segments in (c.get_segments() for c in ax.collections)]
    expected = [max(v, bottom) for mode in plots.MODES for v in data.baseline_mse[mode].values()]
    np.testing.assert_array_equal(drawn, expected)
    assert 0 < bottom < min(min(m.mse) for m in data.models.values())
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["mean", "persistence", "seasonal (below the scale)", "linear"]
