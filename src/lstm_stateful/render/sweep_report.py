"""A sweep's files: ``summary.csv``, and the phase diagram ``phase_diagram.png`` (a grid of
tsteps x lahead) or the scores against each grid setting ``scores.png`` (any other grid).

Drawn from the store's records alone, so ``sweep --report`` redraws them without
training (and without importing JAX).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lstm_stateful.core.config import MODES
from lstm_stateful.core.evaluate import rule_says_stateless_converges
from lstm_stateful.io.atomic import write_atomic, write_with
from lstm_stateful.sweep.grid import SweepSpec, Value
from lstm_stateful.sweep.store import Record
from lstm_stateful.sweep.summary import SummaryRow, phase_grid, score_name, seed_scores, summarize

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.image import AxesImage

SPEC_FILE = "sweep.json"
SUMMARY_FILE = "summary.csv"
PHASE_FILE = "phase_diagram.png"
SCORES_FILE = "scores.png"
# Quantiles of the seeds' scores behind each bar of scores.png, and the lowest R^2 shown.
BAR_QUANTILES = (25, 75)
R2_AXIS_LOW = -1.0
# (field, title, colour range) of each row of panels; one column per mode.
PANELS = (
    ("r2_median", "median R^2", (0.0, 1.0)),
    ("converged_fraction", "fraction of seeds converged", (0.0, 1.0)),
)


def _cell(value: object) -> object:
    return "" if isinstance(value, float) and not np.isfinite(value) else value


def summary_csv(rows: list[SummaryRow]) -> str:
    """The CSV text: one line per row, the value of each grid setting first (tsteps and lahead
    are columns of every row), NaN as an empty field."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    keys = [k for k, _ in rows[0].settings if k not in ("tsteps", "lahead")] if rows else []
    names = [f.name for f in dataclasses.fields(SummaryRow) if f.name != "settings"]
    writer.writerow([*keys, *names])
    for row in rows:
        settings = dict(row.settings)
        writer.writerow([_cell(v) for v in (*(settings[k] for k in keys), *(getattr(row, n) for n in names))])
    return buf.getvalue()


def _boundary(ax: Axes, tsteps: tuple[int, ...], lahead: tuple[int, ...]) -> None:
    """Outline the points where lahead >= tsteps (where the example says stateless converges)."""
    inside = np.array([[rule_says_stateless_converges(t, la) for t in tsteps] for la in lahead])
    rows, cols = inside.shape
    for i in range(rows):
        for j in range(cols):
            if j + 1 < cols and inside[i, j] != inside[i, j + 1]:
                ax.plot([j + 0.5, j + 0.5], [i - 0.5, i + 0.5], color="red", lw=2.5)
            if i + 1 < rows and inside[i, j] != inside[i + 1, j]:
                ax.plot([j - 0.5, j + 0.5], [i + 0.5, i + 0.5], color="red", lw=2.5)


def _panel(ax: Axes, grid: np.ndarray, spec: SweepSpec, title: str, limits: tuple[float, float]) -> AxesImage:
    image = ax.imshow(np.clip(grid, *limits), origin="lower", cmap="viridis", vmin=limits[0], vmax=limits[1])
    for (i, j), value in np.ndenumerate(grid):
        text = "-" if np.isnan(value) else f"{value:.2f}"
        ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if value < 0.5 else "black")
    tsteps, lahead = spec.values("tsteps"), spec.values("lahead")
    _boundary(ax, tsteps, lahead)  # type: ignore[arg-type]  # the phase diagram's axes hold ints
    ax.set_xticks(range(len(tsteps)), [str(t) for t in tsteps])
    ax.set_yticks(range(len(lahead)), [str(la) for la in lahead])
    ax.set_xlabel("tsteps (moving-average window)")
    ax.set_ylabel("lahead (input window)")
    ax.set_title(title, fontsize=10)
    return image


def phase_figure(rows: list[SummaryRow], spec: SweepSpec) -> Figure:
    """Median R^2 and the fraction of converged seeds, stateful and stateless, over the grid;
    the red line bounds the region lahead >= tsteps. R^2 is clipped to [0, 1] for colour."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 9.5), layout="constrained")
    axes = fig.subplots(len(PANELS), len(MODES), squeeze=False)
    for r, (field, title, limits) in enumerate(PANELS):
        for c, mode in enumerate(MODES):
            image = _panel(axes[r, c], phase_grid(rows, spec, mode, field), spec, f"{mode}: {title}", limits)
        fig.colorbar(image, ax=axes[r, :], shrink=0.8)
    fig.suptitle(f"Phase diagram, {spec.base.seeds} seeds, {spec.base.train.epochs} epochs (red: lahead = tsteps)")
    return fig


def _pooled(scores: list, key: str, value: Value, mode: str) -> np.ndarray:
    """Every seed's score of every point where ``key`` is ``value``, for ``mode`` (finite ones)."""
    pooled = [v for point, m, v in scores if m == mode and point[key] == value]
    values = np.concatenate(pooled) if pooled else np.array([])
    return values[np.isfinite(values)]


def _setting_panel(ax: Axes, spec: SweepSpec, scores: list, key: str, name: str) -> None:
    """Median score (dot) and quartiles over seeds (bar) against each value of ``key``, per
    mode; with several axes a value pools the seeds of every point that has it."""
    values = spec.values(key)
    low = 0.0
    for i, mode in enumerate(MODES):
        x = np.arange(len(values)) + (i - 0.5) * 0.2
        stats = [_pooled(scores, key, v, mode) for v in values]
        mid = np.array([np.median(s) if s.size else np.nan for s in stats])
        quartiles = np.array([np.percentile(s, BAR_QUANTILES) if s.size else (np.nan, np.nan) for s in stats])
        bars = np.abs(quartiles.T - mid)
        ax.errorbar(x, mid, yerr=bars, fmt="o", capsize=3, label=mode)
        low = min(low, float(np.nanmin(quartiles, initial=0.0)))
    if name == "R^2" and low < R2_AXIS_LOW:
        ax.set_ylim(bottom=R2_AXIS_LOW)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xticks(range(len(values)), [str(v) for v in values])
    ax.set_xlabel(key.replace("_", "-"))
    ax.set_ylabel(f"median {name}")
    ax.legend(fontsize=8)


def scores_figure(spec: SweepSpec, records: list[Record]) -> Figure:
    """One panel per grid setting: each model's median score over seeds against the
    setting's values, bars spanning the seeds' quartiles. The score is R^2 on the generated
    series, the skill over the best baseline on a data file (0: as good as it)."""
    from matplotlib.figure import Figure

    name, scores = score_name(spec), seed_scores(spec, records)
    fig = Figure(figsize=(5 * len(spec.axes), 4.2), layout="constrained")
    axes = fig.subplots(1, len(spec.axes), squeeze=False)[0]
    for ax, key in zip(axes, spec.keys, strict=True):
        _setting_panel(ax, spec, scores, key, name)
    pooled = " (each value pools the other settings' points)" if len(spec.axes) > 1 else ""
    fig.suptitle(
        f"Median {name} over {spec.base.seeds} seeds, bars: quartiles{pooled}; {spec.base.train.epochs} epochs",
        fontsize=10,
    )
    return fig


def figure_file(spec: SweepSpec) -> str:
    """The sweep's figure: the phase diagram of a tsteps x lahead grid, else the scores."""
    return PHASE_FILE if spec.is_phase_diagram else SCORES_FILE


def write_sweep_files(spec: SweepSpec, records: list[Record], out: Path) -> list[SummaryRow]:
    """Write ``summary.csv``, the figure (``figure_file``; the other one, left by an earlier
    sweep in ``out``, is removed) and ``sweep.json`` (the spec, so the directory describes
    itself) under ``out``; returns the summary rows."""
    rows = summarize(spec, records)
    write_atomic(out / SUMMARY_FILE, summary_csv(rows))
    write_atomic(out / SPEC_FILE, json.dumps(spec.to_dict(), indent=2) + "\n")
    name = figure_file(spec)
    figure = phase_figure(rows, spec) if name == PHASE_FILE else scores_figure(spec, records)
    write_with(out / name, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))
    (out / (SCORES_FILE if name == PHASE_FILE else PHASE_FILE)).unlink(missing_ok=True)
    return rows
