"""The example's figures and a loss-curve figure, written as PNG files.

Figures are built on ``matplotlib.figure.Figure`` (no pyplot, no global state) unless a
caller asks for windows, in which case it passes pyplot's ``figure`` as the factory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lstm_stateful.data import Series
from lstm_stateful.experiment import MODES, RunResult

FigureFactory = Callable[..., Figure]

FIGURE_FILES = {"input": "input.png", "residuals": "residuals.png", "losses": "losses.png"}


def input_figure(series: Series, new_figure: FigureFactory = Figure) -> Figure:
    """The example's first figure: the first 10 inputs (dots) and expected outputs (line)."""
    fig = new_figure(figsize=(7, 4))
    ax = fig.add_subplot()
    ax.plot(series.inputs[:10, 0], ".")
    ax.plot(series.target[:10], "-")
    ax.legend(["Input", "Expected output"])
    ax.set_title("Input")
    return fig


def residuals_figure(result: RunResult, new_figure: FigureFactory = Figure) -> Figure:
    """The example's second figure: the expected test output, then each model's residual
    (median seed); the stateful one without its first tsteps-1 points, as the example."""
    fig = new_figure(figsize=(9, 8))
    # Fixed spacing: a layout engine would cost several extra draws per save.
    axes = fig.subplots(3, 1, gridspec_kw={"hspace": 0.45, "top": 0.95, "bottom": 0.05})
    y = result.split.y_test[:, 0]
    axes[0].plot(y)
    axes[0].set_title("Expected")
    skip = {"stateful": result.config.data.tsteps - 1, "stateless": 0}
    for ax, mode in zip(axes[1:], MODES, strict=True):
        m = result.models[mode]
        residual = (y - m.predictions[m.median_seed])[skip[mode] :]
        ax.plot(residual)
        ax.set_title(f"{mode.capitalize()}: Expected - Predicted (median seed, R^2 = {m.scores.r2[m.median_seed]:.3f})")
    return fig


def losses_figure(result: RunResult, new_figure: FigureFactory = Figure) -> Figure:
    """Train (solid) and validation (dashed) MSE per epoch, every seed, both models, log scale."""
    fig = new_figure(figsize=(8, 5))
    ax = fig.add_subplot()
    epochs = np.arange(1, result.config.train.epochs + 1)
    for mode, color in zip(MODES, ("tab:blue", "tab:orange"), strict=True):
        m = result.models[mode]
        for s in range(m.train_loss.shape[0]):
            alpha = 1.0 if s == m.median_seed else 0.3
            label = s == m.median_seed
            ax.plot(epochs, m.train_loss[s], "-", color=color, alpha=alpha, label=f"{mode} train" if label else None)
            ax.plot(
                epochs, m.val_loss[s], "--", color=color, alpha=alpha, label=f"{mode} validation" if label else None
            )
    if result.floors.window_theory > 0:
        ax.axhline(result.floors.window_theory, color="gray", lw=0.8, label="stateless window floor")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE")
    ax.set_title("Loss per epoch (median seed bold)")
    ax.legend()
    return fig


def write_input_figure(series: Series, out: Path) -> Path:
    """The input figure needs only the data: it can be drawn while training compiles."""
    path = out / FIGURE_FILES["input"]
    input_figure(series).savefig(path, dpi=100)
    return path


def write_result_figures(result: RunResult, out: Path) -> dict[str, Path]:
    """Draw the residual and loss figures and save them under ``out``: {name: path}."""
    paths = {}
    for name, make in (("residuals", residuals_figure), ("losses", losses_figure)):
        paths[name] = out / FIGURE_FILES[name]
        make(result).savefig(paths[name], dpi=100)
    return paths


def show_figures(result: RunResult) -> None:
    """Open the three figures in windows (``--show``); blocks until they are closed."""
    import matplotlib.pyplot as plt

    input_figure(result.series, plt.figure)
    residuals_figure(result, plt.figure)
    losses_figure(result, plt.figure)
    plt.show()
