"""Figures drawn in a child process: PNGs on disk, failures reported, no JAX in the child."""

from __future__ import annotations

import subprocess
import sys
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
        )
        for mode in plots.MODES
    }
    return plots.FigureData(expected=rng.normal(size=50), models=curves, window_floor=8e-4)


def test_children_write_every_figure(tmp_path: Path) -> None:
    figures = FigureProcess(tmp_path)
    figures.draw("input", plots.input_data(np.arange(20.0)[:, None], np.arange(20.0)))
    data = _figure_data()
    figures.draw("residuals", data)
    figures.draw("losses", data)
    figures.finish()
    for name in plots.FIGURE_FILES.values():
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_a_failed_drawing_is_reported_in_one_line(tmp_path: Path) -> None:
    figures = FigureProcess(tmp_path)
    figures.draw("no-such-figure", _figure_data())
    with pytest.raises(FigureProcessError) as info:
        figures.finish()
    assert "no-such-figure" in str(info.value) and "\n" not in str(info.value)


def test_kill_stops_the_children(tmp_path: Path) -> None:
    figures = FigureProcess(tmp_path)
    figures.kill()
    assert not (tmp_path / "input.png").exists()


def test_light_modules_do_not_import_jax() -> None:
    # The figure child imports plots; the CLI validates flags before importing JAX.
    code = (
        "import sys, lstm_stateful.render.plots, lstm_stateful.render.figure_process, lstm_stateful.cli;"
        "print('jax' in sys.modules, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
