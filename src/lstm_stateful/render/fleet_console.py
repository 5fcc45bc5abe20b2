"""What the terminal shows after a fleet run: the models' table, the verdict of each of our
models against the best baseline (worded as on ``report.html``), and the notes."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lstm_stateful.render.fleet_outputs import verdict_dict
from lstm_stateful.render.fleet_report import comparison, headline, verdict_line

if TYPE_CHECKING:
    from lstm_stateful.engine.fleet import FleetResult

# The colour of a verdict line, by what its interval says.
OUTCOME_STYLE = {"better": "green", "worse": "red", "undecided": "yellow", "unknown": "yellow"}


def _fmt(value: float, spec: str) -> str:
    return "-" if not math.isfinite(value) else format(value, spec)


def models_table(result: FleetResult) -> Table:
    """A row per model, ours first then the baselines (a gap between): mean MASE and sMAPE
    over the series, the share of series beating seasonal naive, validation MASE; the best
    (lowest mean MASE) in bold green."""
    from lstm_stateful.engine.fleet import MODELS

    p = result.config.panel
    title = f"Test windows: {p.windows} x {p.horizon} steps, mean over {len(result.panel)} series"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("model", no_wrap=True)
    for name in ("mean MASE", "sMAPE %", "beats seasonal naive", "validation MASE"):
        table.add_column(name, justify="right", no_wrap=True)
    for model, means in result.means.items():
        if model == next((m for m in result.means if m not in MODELS), None):
            table.add_section()
        best = model == result.verdict.best
        table.add_row(
            escape(f"{model} (best)" if best else model),
            _fmt(means["mase"], ".3f"),
            _fmt(means["smape"], ".2f"),
            _fmt(100 * means["beats_seasonal_naive"], ".1f") + "%",
            _fmt(result.val_mase.get(model, math.nan), ".3f"),
            style="bold green" if best else None,
        )
    return table


def intervals_table(result: FleetResult) -> Table:
    """A row per model with intervals: at each level, the test coverage (the share of values
    inside), the mean width and the MSIS, both over the MASE scale."""
    p = result.config.panel
    table = Table(title=f"Prediction intervals ({p.calibrate}, from the validation part's errors)",
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)  # fmt: skip
    table.add_column("model", no_wrap=True)
    tags = [f"{level:g}" for level in p.levels]
    for tag in tags:
        for name in ("coverage", "width", "MSIS"):
            table.add_column(f"{tag}% {name}", justify="right", no_wrap=True)
    for model in result.intervals:
        m = result.means[model]
        cells = [(_fmt(100 * m[f"coverage_{t}"], ".1f") + "%", _fmt(m[f"width_{t}"], ".2f"),
                  _fmt(m[f"msis_{t}"], ".2f")) for t in tags]  # fmt: skip
        table.add_row(escape(model), *(c for cell in cells for c in cell))
    return table


def print_fleet(console: Console, result: FleetResult) -> None:
    """The models' table, a headline naming the best model (plainly when it is a baseline),
    one verdict line per model of ours, then the notes."""
    from lstm_stateful.engine.fleet import MODELS

    console.print(models_table(result))
    if result.intervals:
        console.print(intervals_table(result))
    v = verdict_dict(result)
    mase = {m: s["mase"] for m, s in result.means.items()}
    console.print(escape(headline(v["best"], list(MODELS), v["best_baseline"], mase)), style="bold")
    base = v["best_baseline"]
    for model in MODELS:
        entry = v["versus"][model]
        line = verdict_line(model, mase[model], base, mase[base], entry)
        console.print(escape(line), style=OUTCOME_STYLE[comparison(entry["low"], entry["high"])], highlight=False)
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False)
