"""The example's figures, a loss-curve figure and the models against the baselines, written
as PNG files.

Figures are drawn from ``FigureData``, plain NumPy arrays, so that a separate process can
draw them without importing JAX (see ``figure_process``); matplotlib is imported only
when a figure is drawn, so the training process need not import it at all. Figures are
built on ``matplotlib.figure.Figure`` (no pyplot, no global state) unless a caller asks
for windows, in which case it passes pyplot's ``figure`` as the factory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from lstm_stateful.core.config import MODES
from lstm_stateful.core.evaluate import scored_points
from lstm_stateful.io.atomic import write_with

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lstm_stateful.engine.experiment import RunResult

FigureFactory = Callable[..., "Figure"]

FIGURE_FILES = {name: f"{name}.png" for name in ("input", "residuals", "losses", "baselines")}


class InputData(NamedTuple):
    """The first points of the series: inputs (k,) (the newest value of each row), target (k,)."""

    inputs: np.ndarray
    target: np.ndarray


class ModelCurves(NamedTuple):
    """One model: train_loss, val_loss (S, epochs); residual (n,) of the median seed, after
    the points the example does not score; its R^2; mse (S,), each seed's test MSE."""

    train_loss: np.ndarray
    val_loss: np.ndarray
    median_seed: int
    residual: np.ndarray
    r2: float
    mse: np.ndarray


class FigureData(NamedTuple):
    """expected: (n_test,) the test target; baseline_mse: mode -> baseline -> its MSE on that
    mode's scored points. In the data's units, as the models' numbers."""

    expected: np.ndarray
    models: dict[str, ModelCurves]
    window_floor: float
    baseline_mse: dict[str, dict[str, float]]


def input_data(inputs: np.ndarray, target: np.ndarray, k: int = 10) -> InputData:
    """inputs: (n,) the newest value of each row, or windows (n, lahead[, F]) newest first
    (their first column's newest value is shown); target: (n,)."""
    first = np.asarray(inputs)[:k]
    return InputData(first.reshape(first.shape[0], -1)[:, 0].copy(), np.array(target[:k]))


def figure_data(result: RunResult) -> FigureData:
    """What the result figures need from a run, as NumPy arrays in the data's units."""
    y = result.baselines.truth
    models = {}
    for mode in MODES:
        m = result.models[mode]
        residual = (y - m.data_predictions[m.median_seed])[scored_points(mode, result.config.data, y.shape[0])]
        r2 = float(m.scores.r2[m.median_seed])
        models[mode] = ModelCurves(m.train_loss, m.val_loss, m.median_seed, residual, r2, m.scores.mse)
    return FigureData(y, models, result.floors.window_theory, result.baselines.mse)


def _new_figure(new_figure: FigureFactory | None, figsize: tuple[float, float]) -> Figure:
    if new_figure is None:
        from matplotlib.figure import Figure

        return Figure(figsize=figsize)
    return new_figure(figsize=figsize)


def input_figure(data: InputData, new_figure: FigureFactory | None = None) -> Figure:
    """The example's first figure: the first 10 inputs (dots) and expected outputs (line)."""
    fig = _new_figure(new_figure, figsize=(7, 4))
    ax = fig.add_subplot()
    ax.plot(data.inputs, ".")
    ax.plot(data.target, "-")
    ax.legend(["Input", "Expected output"])
    ax.set_title("Input")
    return fig


def residuals_figure(data: FigureData, new_figure: FigureFactory | None = None) -> Figure:
    """The example's second figure: the expected test output, then each model's residual
    (median seed); the stateful one without its first tsteps-1 points, as the example."""
    fig = _new_figure(new_figure, figsize=(9, 8))
    # Fixed spacing: a layout engine would cost several extra draws per save.
    axes = fig.subplots(3, 1, gridspec_kw={"hspace": 0.45, "top": 0.95, "bottom": 0.05})
    axes[0].plot(data.expected)
    axes[0].set_title("Expected")
    for ax, mode in zip(axes[1:], MODES, strict=True):
        m = data.models[mode]
        ax.plot(m.residual)
        ax.set_title(f"{mode.capitalize()}: Expected - Predicted (median seed, R^2 = {m.r2:.3f})")
    return fig


def losses_figure(data: FigureData, new_figure: FigureFactory | None = None) -> Figure:
    """Train (solid) and validation (dashed) MSE per epoch, every seed, both models, log scale."""
    fig = _new_figure(new_figure, figsize=(8, 5))
    ax = fig.add_subplot()
    for mode, color in zip(MODES, ("tab:blue", "tab:orange"), strict=True):
        m = data.models[mode]
        epochs = np.arange(1, m.train_loss.shape[1] + 1)
        for s in range(m.train_loss.shape[0]):
            bold = s == m.median_seed
            alpha = 1.0 if bold else 0.3
            ax.plot(epochs, m.train_loss[s], "-", color=color, alpha=alpha, label=f"{mode} train" if bold else None)
            ax.plot(epochs, m.val_loss[s], "--", color=color, alpha=alpha, label=f"{mode} validation" if bold else None)
    if data.window_floor > 0:
        ax.axhline(data.window_floor, color="gray", lw=0.8, label="stateless window floor")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE")
    ax.set_title("Loss per epoch (median seed bold)")
    ax.legend()
    return fig


# One colour per baseline, kept from run to run (the seasonal one is there only with a season).
BASELINE_COLORS = {"mean": "tab:gray", "persistence": "tab:red", "seasonal": "tab:purple", "linear": "tab:green"}


def _mse_range(data: FigureData) -> tuple[float, float]:
    """The y range of the baselines figure (log scale): every finite, positive MSE of the
    seeds, and the baselines' within a factor 1e4 below the lowest seed's (an exact baseline,
    MSE 0 or rounding noise, is drawn on the bottom edge instead)."""
    seeds = np.concatenate([m.mse for m in data.models.values()])
    values = [float(v) for v in seeds if np.isfinite(v) and v > 0]
    low = min(values, default=1.0)
    values += [v for mses in data.baseline_mse.values() for v in mses.values() if v > low * 1e-4]
    return min(values) / 2, max(values) * 2


def baselines_figure(data: FigureData, new_figure: FigureFactory | None = None) -> Figure:
    """Each seed's test MSE (dots) per model, each baseline's MSE on that model's scored
    points (a horizontal line across the model's slot), log scale. A baseline far below every
    seed (exact, or nearly) is drawn on the bottom edge, and its legend entry says so."""
    fig = _new_figure(new_figure, figsize=(8, 5))
    ax = fig.add_subplot()
    bottom, top = _mse_range(data)
    rng = np.random.default_rng(0)  # a fixed jitter: the same run draws the same figure
    for x, mode in enumerate(MODES):
        mse = data.models[mode].mse
        ax.plot(x + rng.uniform(-0.15, 0.15, mse.shape[0]), mse, "o", color="tab:blue", alpha=0.7)
        for name, value in data.baseline_mse[mode].items():
            below = any(mses[name] < bottom for mses in data.baseline_mse.values())
            label = f"{name} (below the scale)" if below else name
            label = label if x == 0 else f"_{label}"  # a leading underscore: left out of the legend
            ax.hlines(max(value, bottom), x - 0.4, x + 0.4, color=BASELINE_COLORS[name], lw=2, label=label)
    ax.set_xticks(range(len(MODES)), [f"{mode} (a dot per seed)" for mode in MODES])
    ax.set(xlim=(-0.6, len(MODES) - 0.4), ylim=(bottom, top), yscale="log", ylabel="test MSE")
    ax.set_title("Models against the baselines (lines), on the same test points")
    ax.legend(title="baseline")
    return fig


def warm_up() -> None:
    """Draw a small figure with text, a legend and a log axis, in memory: matplotlib then has
    its fonts loaded, and a process forked afterwards draws its figures without loading them."""
    figure = _new_figure(None, (2, 2))
    ax = figure.add_subplot()
    ax.plot([1, 2], [1, 10], label="warm-up")
    ax.set(yscale="log", title="warm-up", xlabel="x", ylabel="y")
    ax.legend()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure).draw()


def write_figure(name: str, data: InputData | FigureData, out: Path) -> Path:
    """Draw figure ``name`` (a key of ``FIGURE_FILES``) and save it under ``out``."""
    makers: dict[str, Callable] = {
        "input": input_figure, "residuals": residuals_figure, "losses": losses_figure, "baselines": baselines_figure
    }  # fmt: skip
    path = out / FIGURE_FILES[name]
    figure = makers[name](data)
    write_with(path, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))  # whole or not at all
    return path


def show_figures(inputs: InputData, data: FigureData) -> None:
    """Open the four figures in windows (``--show``); blocks until they are closed."""
    import matplotlib.pyplot as plt

    input_figure(inputs, plt.figure)
    residuals_figure(data, plt.figure)
    losses_figure(data, plt.figure)
    baselines_figure(data, plt.figure)
    plt.show()
