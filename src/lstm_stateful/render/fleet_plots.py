"""A fleet run's figures, written as PNG files: a few series with their forecasts
(``series.png``) and each model's per-series MASE (``mase.png``).

matplotlib is imported only when a figure is drawn, and figures are built on
``matplotlib.figure.Figure`` (no pyplot, no global state). Importing this module loads
neither matplotlib nor JAX (``fleet_report`` reads the figure names from it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lstm_stateful.io.atomic import write_with

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from lstm_stateful.engine.fleet import FleetResult

SERIES_FILE = "series.png"
HISTOGRAM_FILE = "mase.png"
FLEET_FIGURES = (SERIES_FILE, HISTOGRAM_FILE)
# The forecasts drawn on series.png (those the run has), and each model's colour.
SERIES_MODELS = ("stateful", "stateless", "seasonal-naive", "ets")
COLORS = {
    "stateful": "tab:blue", "stateless": "tab:orange", "combined": "tab:green", "naive": "tab:gray",
    "seasonal-naive": "tab:purple", "drift": "tab:brown", "linear": "tab:olive", "ets": "tab:red",
    "theta": "tab:pink", "arima": "tab:cyan",
}  # fmt: skip
# series.png shows this many seasons (or horizons, the longer) of history before the tests.
HISTORY_SEASONS = 3
# mase.png: our models and this many baselines, the best on mean MASE.
TOP_BASELINES = 3
HISTOGRAM_BINS = 40


def pick_series(mase: np.ndarray, n: int) -> list[tuple[int, int]]:
    """Up to ``n`` series spread evenly over the ranks of ``mase`` (S,), best first (the best,
    the worst, and between them): (series index, rank from 1) each. Series whose MASE is not
    finite are left out; none finite: the first ``n`` series, unranked (rank 0)."""
    finite = np.flatnonzero(np.isfinite(mase))
    if finite.size == 0:
        return [(s, 0) for s in range(min(n, mase.shape[0]))]
    order = finite[np.argsort(mase[finite], kind="stable")]
    positions = np.unique(np.round(np.linspace(0, order.size - 1, min(n, order.size))).astype(np.int64))
    return [(int(order[p]), int(p) + 1) for p in positions]


def _save(figure: Figure, path: Path) -> None:
    write_with(path, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))  # whole or not at all


def _series_axes(ax: Axes, result: FleetResult, s: int, rank: int, ranked: int) -> None:
    """Series ``s``: its last seasons of history and its test values (black; the tests shaded),
    and each of ``SERIES_MODELS``' forecasts over every test window."""
    p, panel = result.config.panel, result.panel
    values, start, origins = panel.values[s], int(panel.starts[s]), result.origins[s]
    first = max(0, values.shape[0] - p.windows * p.horizon - HISTORY_SEASONS * max(p.period, p.horizon))
    x = start + np.arange(first, values.shape[0])
    ax.axvspan(origins[0] - 0.5, origins[-1] + p.horizon - 0.5, color="0.93", lw=0)
    ax.plot(x, values[first:], color="black", lw=1, label="data")
    steps = np.arange(p.horizon)
    for model in (m for m in SERIES_MODELS if m in result.forecasts):
        for w, origin in enumerate(origins):
            label = model if w == 0 else None
            ax.plot(origin + steps, result.forecasts[model][s, w], color=COLORS[model], lw=1.2, label=label)
    ticks = [int(x[0]), int(origins[0]), int(x[-1])]
    ax.set_xticks(ticks, panel.clock.labels(np.array(ticks)), fontsize=7)
    mase = result.metrics["stateful"]["mase"][s]
    where = f", rank {rank} of {ranked}" if rank else ""
    ax.set_title(f"{panel.ids[s]}: stateful MASE {mase:.3f}{where}", fontsize=9)


def series_plot(result: FleetResult, n: int = 6) -> Figure:
    """A grid of ``n`` series chosen over the ranks of the stateful model's MASE (``pick_series``,
    best first), each with its recent history, its test values (shaded) and the forecasts of
    ``SERIES_MODELS`` over the test windows."""
    from matplotlib.figure import Figure

    mase = result.metrics["stateful"]["mase"]
    picked = pick_series(mase, n)
    cols = min(3, len(picked))
    rows = -(-len(picked) // cols)
    fig = Figure(figsize=(4.4 * cols, 2.9 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    ranked = int(np.isfinite(mase).sum())
    for ax, (s, rank) in zip(axes, picked, strict=False):
        _series_axes(ax, result, s, rank, ranked)
    for ax in axes[len(picked) :]:
        ax.set_axis_off()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=8)
    fig.suptitle("Series over the ranks of the stateful model's MASE; test windows shaded", fontsize=10)
    return fig


def series_figure(result: FleetResult, path: Path, n: int = 6) -> Path:
    """``series_plot`` written to ``path`` (PNG) atomically; returns ``path``."""
    _save(series_plot(result, n), path)
    return path


def histogram_models(result: FleetResult) -> list[str]:
    """Our models, then the ``TOP_BASELINES`` baselines with the lowest mean MASE."""
    from lstm_stateful.engine.fleet import MODELS

    mean = {m: v["mase"] for m, v in result.means.items() if m not in MODELS and np.isfinite(v["mase"])}
    return [*MODELS, *sorted(mean, key=lambda m: mean[m])[:TOP_BASELINES]]


def _log_bins(values: list[np.ndarray]) -> np.ndarray:
    """Log-spaced bins over every positive value (at least a factor 10 wide)."""
    pooled = np.concatenate([v[v > 0] for v in values] + [np.array([1.0])])
    low, high = float(pooled.min()), float(pooled.max())
    if high < low * 10:
        middle = np.sqrt(low * high)
        low, high = min(low, middle / np.sqrt(10)), max(high, middle * np.sqrt(10))
    return np.geomspace(low, high, HISTOGRAM_BINS + 1)


def _log_axis(ax: Axes) -> None:
    """A log x axis labelled with plain numbers at 1, 2 and 5 times the powers of 10."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def histogram_plot(result: FleetResult) -> Figure:
    """Per-series MASE of our models and the best baselines (``histogram_models``), a row
    each on a shared log axis (no outlier squashes the others; a MASE of 0 is drawn at the
    left edge), the mean over series dashed, MASE 1 dotted."""
    from matplotlib.figure import Figure

    models = histogram_models(result)
    values = [result.metrics[m]["mase"][np.isfinite(result.metrics[m]["mase"])] for m in models]
    bins = _log_bins(values)
    fig = Figure(figsize=(8, 1.25 * len(models) + 0.8), layout="constrained")
    axes = fig.subplots(len(models), 1, sharex=True, squeeze=False)[:, 0]
    for ax, model, v in zip(axes, models, values, strict=True):
        ax.hist(np.clip(v, bins[0], bins[-1]), bins=bins, color=COLORS.get(model, "tab:gray"), alpha=0.8)
        mean = result.means[model]["mase"]
        if np.isfinite(mean):
            ax.axvline(mean, color="black", ls="--", lw=1.2)
        ax.axvline(1.0, color="0.5", ls=":", lw=1)
        ax.set_ylabel("series", fontsize=8)
        ax.set_title(f"{model}: mean MASE {mean:.3f} over {v.size} series", fontsize=9, loc="left")
    _log_axis(axes[-1])
    axes[-1].set_xlabel("MASE per series (log scale; dashed: the mean, dotted: 1)")
    return fig


def mase_histogram(result: FleetResult, path: Path) -> Path:
    """``histogram_plot`` written to ``path`` (PNG) atomically; returns ``path``."""
    _save(histogram_plot(result), path)
    return path
