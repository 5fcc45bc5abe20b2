"""A fleet run directory's machine-readable files: ``forecasts.csv``, ``metrics.csv`` and
``results.json``.

Every forecast and score is in the data's units. Each file is written atomically: a reader
sees the whole new file or the old one, never part of one.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lstm_stateful.core import panel_intervals, panel_scores
from lstm_stateful.io.atomic import write_atomic
from lstm_stateful.render.fleet_report import comparison
from lstm_stateful.render.outputs import _finite, versions

if TYPE_CHECKING:
    from lstm_stateful.engine.fleet import FleetResult

FLEET_FORMAT = "lstm-stateful/fleet-results"
FLEET_FORMAT_VERSION = 1
FORECAST_COLUMNS = ("series", "step", "time", "model", "forecast")


def forecast_models(result: FleetResult, seeds: bool = False) -> dict[str, np.ndarray]:
    """model -> (S, K, H) forecasts, in ``result.forecasts``' order; with ``seeds`` also each
    seed of our two models as ``stateful.seed0``, ``stateful.seed1``, ..., ``stateless.seed0``..."""
    models = dict(result.forecasts)
    if seeds:
        for name, per_seed in result.seed_forecasts.items():
            models |= {f"{name}.seed{i}": per_seed[i] for i in range(per_seed.shape[0])}
    return models


def step_labels(result: FleetResult) -> np.ndarray:
    """(S, K, H) the clock label of every forecast step."""
    h = result.config.panel.horizon
    ordinals = result.origins[:, :, None] + np.arange(h)[None, None, :]
    return np.array(result.panel.clock.labels(ordinals), dtype=object).reshape(ordinals.shape)


def forecasts_csv(result: FleetResult, seeds: bool = False) -> str:
    """The text of ``forecasts.csv``: a row per series, test window, step (1..H) and model,
    in that order (the model varies fastest); forecasts in full precision (``repr``). With
    ``level``s, each level's bounds follow (``lo_80``, ``hi_80``...; empty for a model
    without intervals)."""
    models = forecast_models(result, seeds)
    s, k, h = next(iter(models.values())).shape
    m = len(models)
    values = np.stack(list(models.values()), axis=-1).astype(np.float64)  # (S, K, H, M)
    columns = [
        np.repeat(np.array(result.panel.ids, dtype=object), k * h * m).tolist(),
        np.tile(np.repeat(np.arange(1, h + 1), m), s * k).tolist(),
        np.repeat(step_labels(result).ravel(), m).tolist(),
        np.tile(np.array(list(models), dtype=object), s * k * h).tolist(),
        values.ravel().tolist(),  # Python floats: csv writes them with repr, round-trippable
    ]
    levels = result.config.panel.levels
    for i in range(len(levels)):
        for side in (0, 1):
            bound = [result.intervals[n][i, side] if n in result.intervals else np.full((s, k, h), np.nan)
                     for n in models]  # fmt: skip
            columns.append([_cell(v) for v in np.stack(bound, axis=-1).astype(np.float64).ravel().tolist()])
    names = [f"{side}_{c}" for c in panel_intervals.level_names(levels) for side in ("lo", "hi")]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow((*FORECAST_COLUMNS, *names))
    writer.writerows(zip(*columns, strict=True))
    return buf.getvalue()


def write_forecasts(result: FleetResult, path: Path, seeds: bool = False) -> None:
    """``forecasts.csv`` (``forecasts_csv``), atomically."""
    write_atomic(path, forecasts_csv(result, seeds))


def _cell(value: float) -> str:
    """A score in full precision; NaN (undefined) as an empty cell."""
    return "" if math.isnan(value) else repr(value)


def metric_names(result: FleetResult) -> list[str]:
    """The metrics of every model, then with ``level``s each level's coverage, width and MSIS."""
    tags = panel_intervals.level_names(result.config.panel.levels)
    return [*panel_scores.METRICS, *(f"{kind}_{t}" for t in tags for kind in ("coverage", "width", "msis"))]


def metrics_csv(result: FleetResult) -> str:
    """The text of ``metrics.csv``: a row per series and model (the model varies fastest),
    each metric averaged over the series' test windows; an undefined score is empty (and so
    are the interval scores of a model without intervals)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    names = metric_names(result)
    writer.writerow(("series", "model", *names))
    blank = np.full(len(result.panel), np.nan)
    per_model = {
        model: np.stack([scores.get(name, blank) for name in names], axis=1).astype(np.float64).tolist()
        for model, scores in result.metrics.items()
    }
    for s, series in enumerate(result.panel.ids):
        for model, rows in per_model.items():
            writer.writerow([series, model, *(_cell(v) for v in rows[s])])
    return buf.getvalue()


def write_metrics(result: FleetResult, path: Path) -> None:
    """``metrics.csv`` (``metrics_csv``), atomically."""
    write_atomic(path, metrics_csv(result))


def json_safe(value: object) -> object:
    """``value`` with every float that is not finite as None (JSON has no NaN), NumPy numbers
    and arrays as Python ones, tuples as lists."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_safe(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _finite(float(value))
    return value


def verdict_dict(result: FleetResult) -> dict:
    """The verdict for ``results.json``: the best model, the best baseline, and each of our
    models against it: the mean MASE difference over the series both score, its 95%
    bootstrap interval, the difference relative to the baseline's mean MASE, the number of
    series compared, and the word (``fleet_report.comparison``)."""
    v = result.verdict
    base = result.metrics[v.best_baseline]["mase"]
    base_mean = result.means[v.best_baseline]["mase"]
    versus = {}
    for model, (difference, low, high) in v.versus.items():
        both = np.isfinite(result.metrics[model]["mase"]) & np.isfinite(base)
        versus[model] = {
            "difference": difference,
            "low": low,
            "high": high,
            "relative": difference / base_mean if base_mean else float("nan"),
            "series": int(both.sum()),
            "outcome": comparison(low, high),
        }
    return {"best": v.best, "best_baseline": v.best_baseline, "versus": versus}


def intervals_dict(result: FleetResult) -> dict | None:
    """The intervals' method, levels, and each model's conformal half-widths (MASE-scale
    units) and test coverage at each level and step (None without ``level``s)."""
    p = result.config.panel
    if not p.levels:
        return None
    return {"calibrate": p.calibrate, "levels": list(p.levels), "half_widths": result.widths,
            "step_coverage": result.step_coverage}  # fmt: skip


def results_dict(result: FleetResult, extra: dict | None = None) -> dict:
    """Everything ``results.json`` holds (non-finite numbers as null), then ``extra``."""
    from lstm_stateful.engine.fleet import MODELS

    d = {
        "format": FLEET_FORMAT,
        "format_version": FLEET_FORMAT_VERSION,
        "kind": "fleet",
        "config": result.config.to_dict(),
        "series": len(result.panel),
        "ours": list(MODELS),
        "baselines": [m for m in result.forecasts if m not in MODELS],
        "means": result.means,
        "validation_mase": result.val_mase,
        "unscored": {m: panel_scores.undefined_count(s["mase"]) for m, s in result.metrics.items()},
        "verdict": verdict_dict(result),
        "notes": list(result.notes),
        "losses": {name: result.losses[i] for i, name in enumerate(MODELS[:2])},
        "intervals": intervals_dict(result),
        "timings": result.timings,
        "versions": versions(),
        **(extra or {}),
    }
    return json_safe(d)  # type: ignore[return-value]  # a dict stays a dict


def write_results(result: FleetResult, path: Path, extra: dict | None = None) -> None:
    """``results.json`` (``results_dict``), atomically."""
    write_atomic(path, json.dumps(results_dict(result, extra), indent=2, allow_nan=False) + "\n")
