"""``report.html`` of a fleet run directory: one self-contained page, from its files alone.

It reads ``results.json`` (``kind`` "fleet") and the figures, so ``lstm-stateful report DIR``
redraws the same page at any later time; figures are embedded as base64 PNGs, styles are
inline (``report.STYLE``), nothing is fetched. Pure Python (no JAX). The verdict's wording
(``comparison``, ``verdict_line``) is shared with the terminal (``fleet_console``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

from lstm_stateful.core.errors import ConfigError
from lstm_stateful.io.atomic import write_atomic
from lstm_stateful.render.fleet_plots import FLEET_FIGURES
from lstm_stateful.render.report import REPORT_FILE, Num, _e, _figure, _flat, _num, _page, _table

# What a comparison's 95% interval of the mean MASE difference says (negative: ours lower).
OUTCOME_TEXT = {
    "better": "better than {b}",
    "worse": "not better than {b}: worse",
    "undecided": "not better than {b}: the interval includes 0",
    "unknown": "cannot be compared with {b}: no series where both are scored",
}
# The models table: (key of results.json's means, heading, format).
MEAN_COLUMNS = (
    ("mase", "mean MASE", ".3f"), ("smape", "sMAPE %", ".2f"), ("mape", "MAPE %", ".2f"),
    ("rmse", "RMSE", ".4g"), ("mae", "MAE", ".4g"),
)  # fmt: skip
LEGEND = (
    "Each series is forecast from its own origins (the last K windows of H steps each; the H steps before them "
    "are the validation part); its scores are averaged over its windows, then over the series. MASE: mean "
    "absolute error over the in-sample error of the seasonal naive forecast; sMAPE, MAPE in percent; RMSE, MAE in "
    "the data's units. Beats seasonal naive: the share of series whose MASE is below seasonal naive's. Validation "
    "MASE: on the validation part (— for a model not forecast there). Unscored: series whose MASE is undefined (a "
    "constant history) or not finite, left out of every mean. Difference: the mean over series of our MASE minus "
    "the best baseline's, with its 95% percentile bootstrap interval over series; a model is better only when the "
    "whole interval is below 0. Numbers are rounded: hover over one for its full precision, or read metrics.csv."
)


def comparison(low: float | None, high: float | None) -> str:
    """What the interval [low, high] of a mean MASE difference (ours minus a baseline's) says:
    "better" (all below 0), "worse" (all above 0), "undecided", or "unknown" (none)."""
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return "unknown"
    return "better" if high < 0 else "worse" if low > 0 else "undecided"


def _or_inf(value: float | None) -> float:
    """A mean to sort by: a missing one last."""
    return math.inf if value is None or math.isnan(value) else value


def _signed(value: float | None, spec: str = "+.3f") -> str:
    return "n/a" if value is None or math.isnan(value) else format(value, spec)


def verdict_line(model: str, mean: float | None, baseline: str, baseline_mean: float | None, v: dict) -> str:
    """One of our models against the best baseline, ``v`` as results.json's ``verdict.versus``
    entry: "stateful: mean MASE 0.872 vs ets 0.863: +0.009 (+1.0%), 95% interval over 1428
    series [-0.004, +0.022]: not better than ets: the interval includes 0"."""
    relative = None if v.get("relative") is None else 100 * v["relative"]
    head = f"{model}: mean MASE {_signed(mean, '.3f')} vs {baseline} {_signed(baseline_mean, '.3f')}"
    change = f"{_signed(v['difference'])} ({_signed(relative, '+.1f')}%)"
    interval = f"95% interval over {v['series']} series [{_signed(v['low'])}, {_signed(v['high'])}]"
    outcome = OUTCOME_TEXT[comparison(v["low"], v["high"])].format(b=baseline)
    return f"{head}: {change}, {interval}: {outcome}"


def headline(best: str, ours: list[str], best_baseline: str, mase: Mapping[str, float | None]) -> str:
    """Which model is best on mean MASE, said plainly when it is a baseline."""
    if best in ours:
        return (
            f"Best on mean MASE: {best}, one of ours ({_signed(mase[best], '.3f')}); the best baseline, "
            f"{best_baseline}, has {_signed(mase[best_baseline], '.3f')}."
        )
    top = min(ours, key=lambda m: _or_inf(mase[m]))
    return (
        f"Best on mean MASE: {best}, a baseline ({_signed(mase[best], '.3f')}); none of our models beats it on the "
        f"mean: our best, {top}, has {_signed(mase[top], '.3f')}."
    )


def verdict_lines(d: dict) -> list[str]:
    """The verdict line of each of our models, from results.json's ``d``."""
    v, means = d["verdict"], d["means"]
    base = v["best_baseline"]
    return [verdict_line(m, means[m]["mase"], base, means[base]["mase"], v["versus"][m]) for m in d["ours"]]


def _banner(d: dict) -> list[str]:
    """The headline (green when one of ours is best, red when a baseline is), then each of
    our models' verdict line."""
    v = d["verdict"]
    mase = {m: s["mase"] for m, s in d["means"].items()}
    css = "held" if v["best"] in d["ours"] else "failed"
    items = "".join(f"<li>{_e(line)}</li>" for line in verdict_lines(d))
    return [f'<p class="banner {css}">{_e(headline(v["best"], d["ours"], v["best_baseline"], mase))}</p>',
            f"<ul>{items}</ul>"]  # fmt: skip


def _rounded(value: float | None, spec: str) -> object:
    """A number rounded by ``spec``, its full precision as the tooltip; null: —."""
    return "—" if value is None else Num(format(value, spec), repr(value))


def _model_rows(d: dict) -> list[list[object]]:
    """A row per model, ours first: its kind, its means, and how often it beats seasonal naive."""
    rows: list[list[object]] = []
    for model, means in d["means"].items():
        name = f"{model} (best)" if model == d["verdict"]["best"] else model
        share = means.get("beats_seasonal_naive")
        rows.append([
            name, "ours" if model in d["ours"] else "baseline",
            *(_rounded(means.get(key), spec) for key, _, spec in MEAN_COLUMNS),
            "—" if share is None else Num(f"{100 * share:.1f}%", repr(share)),
            _rounded(d["validation_mase"].get(model), ".3f"), d["unscored"].get(model, 0),
        ])  # fmt: skip
    return rows


def _models_section(d: dict) -> list[str]:
    header = ["model", "kind", *(h for _, h, _ in MEAN_COLUMNS), "beats seasonal naive", "validation MASE", "unscored"]
    windows, horizon = d["config"]["panel"]["windows"], d["config"]["panel"]["horizon"]
    return [
        f"<h2>Test windows: {windows} of {horizon} steps, mean over {d['series']} series</h2>",
        _table(header, _model_rows(d), left=2),
        f'<p class="legend">{_e(LEGEND)}</p>',
    ]


def _provenance(d: dict) -> list[str]:
    """The config, the data file, the versions and the timings."""
    sections = ["<h2>Config</h2>", _table(["setting", "value"], _flat(d["config"]), left=2)]
    if d.get("data_file"):
        sections.append(_table(["data file", ""], _flat(d["data_file"]), left=2))
    sections += ["<h2>Versions</h2>", _table(["package", "version"], _flat(d["versions"]), left=2)]
    timings = [[k, _num(v)] for k, v in d["timings"].items()]
    return [*sections, "<h2>Timings (s)</h2>", _table(["", "seconds"], timings)]


def fleet_page(directory: Path) -> str:
    """The page of a fleet run directory, from its results.json and figures."""
    d = json.loads((directory / "results.json").read_text(encoding="utf-8"))
    if d.get("kind") != "fleet":
        raise ValueError(f"results.json's kind is {d.get('kind')!r}, not 'fleet'")
    sections = [*_banner(d), *_models_section(d)]
    if d["notes"]:
        sections += ["<h2>Notes</h2>", "<ul>" + "".join(f"<li>{_e(n)}</li>" for n in d["notes"]) + "</ul>"]
    figures = [_figure(directory / name) for name in FLEET_FIGURES if (directory / name).is_file()]
    sections += ["<h2>Figures</h2>", *figures] if figures else []
    return _page(f"lstm-stateful fleet: {directory.name}", [*sections, *_provenance(d)])


def write_fleet_report(directory: Path) -> Path:
    """Write ``directory/report.html`` for a fleet run directory; returns its path."""
    source = directory / "results.json"
    if not source.is_file():
        raise ConfigError("path", f"{str(directory)!r} holds no fleet run (results.json)")
    try:
        page = fleet_page(directory)
    except (KeyError, TypeError, ValueError, AttributeError, OSError) as e:  # edited by hand, or another tool
        raise ConfigError("path", f"{str(source)!r} cannot be read as lstm-stateful wrote it ({e!r})") from None
    path = directory / REPORT_FILE
    write_atomic(path, page)
    return path
