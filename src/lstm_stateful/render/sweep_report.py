"""A sweep's files: ``summary.csv`` and the phase diagram ``phase_diagram.png``.

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
from lstm_stateful.sweep.grid import SweepSpec
from lstm_stateful.sweep.store import Record
from lstm_stateful.sweep.summary import SummaryRow, phase_grid, summarize

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.image import AxesImage

SPEC_FILE = "sweep.json"
SUMMARY_FILE = "summary.csv"
PHASE_FILE = "phase_diagram.png"
# (field, title, colour range) of each row of panels; one column per mode.
PANELS = (
    ("r2_median", "median R^2", (0.0, 1.0)),
    ("converged_fraction", "fraction of seeds converged", (0.0, 1.0)),
)


def summary_csv(rows: list[SummaryRow]) -> str:
    """The CSV text: one line per row, NaN as an empty field."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    names = [f.name for f in dataclasses.fields(SummaryRow)]
    writer.writerow(names)
    for row in rows:
        values = [getattr(row, n) for n in names]
        writer.writerow(["" if isinstance(v, float) and not np.isfinite(v) else v for v in values])
    return buf.getvalue()


def _boundary(ax: Axes, spec: SweepSpec) -> None:
    """Outline the points where lahead >= tsteps (where the example says stateless converges)."""
    inside = np.array([[rule_says_stateless_converges(t, la) for t in spec.tsteps] for la in spec.lahead])
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
    _boundary(ax, spec)
    ax.set_xticks(range(len(spec.tsteps)), [str(t) for t in spec.tsteps])
    ax.set_yticks(range(len(spec.lahead)), [str(la) for la in spec.lahead])
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


def write_sweep_files(spec: SweepSpec, records: list[Record], out: Path) -> list[SummaryRow]:
    """Write ``summary.csv``, ``phase_diagram.png`` and ``sweep.json`` (the spec, so the
    directory describes itself) under ``out``; returns the summary rows."""
    rows = summarize(records)
    write_atomic(out / SUMMARY_FILE, summary_csv(rows))
    write_atomic(out / SPEC_FILE, json.dumps(spec.to_dict(), indent=2) + "\n")
    figure = phase_figure(rows, spec)
    write_with(out / PHASE_FILE, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))
    return rows
