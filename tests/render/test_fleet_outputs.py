"""A fleet run's files: forecasts.csv, metrics.csv and results.json hold the result's numbers
exactly, in the documented layout, written atomically and fast."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from lstm_stateful.core import panel_baselines
from lstm_stateful.core.panel import Clock, Panel
from lstm_stateful.core.panel_config import fleet_config
from lstm_stateful.core.panel_scores import METRICS
from lstm_stateful.engine.fleet import MODELS, FleetResult, run_fleet
from lstm_stateful.render import fleet_outputs

# The small panel's clock: monthly from January 2000; series s starts s months in.
ORIGIN_YEAR = 2000
SETTINGS = {
    "data": "x.csv", "id": "id", "time": "t", "input": "y", "horizon": 6, "windows": 2, "season": 12,
    "epochs": 2, "seeds": 2, "units": 8, "lahead": 4, "chunk": 12, "batch_size": 4,
}  # fmt: skip


def small_panel() -> Panel:
    """12 noisy monthly-seasonal series of different levels, lengths (51..60) and starts."""
    rng = np.random.default_rng(0)
    ids, values, starts = [], [], []
    for s in range(12):
        n = 60 - 3 * (s % 4)
        t = np.arange(n) + s
        values.append(10 + s + 3 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.5, n))
        ids.append(f"s{s:02d}")
        starts.append(s)
    return Panel(tuple(ids), tuple(values), np.array(starts, np.int64), Clock("month", ORIGIN_YEAR * 12, 1))


@functools.cache
def fleet_result() -> FleetResult:
    """One small fleet run, shared by the render tests (a few seconds). The statistical
    baselines are left out as if their extra were missing: quicker, and the note is tested."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(panel_baselines, "stats_available", lambda: panel_baselines.STATS_MISSING)
        return run_fleet(fleet_config(SETTINGS), small_panel())


@pytest.fixture(scope="module")
def result() -> FleetResult:
    return fleet_result()


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def month_label(ordinal: int) -> str:
    return dt.date(ORIGIN_YEAR + ordinal // 12, ordinal % 12 + 1, 1).isoformat()


def test_the_small_run_has_our_models_and_the_simple_baselines(result: FleetResult) -> None:
    assert list(result.forecasts) == [*MODELS, *panel_baselines.SIMPLE_BASELINES]
    assert result.notes == (panel_baselines.STATS_MISSING,)


def test_forecasts_csv_holds_every_forecast_exactly(result: FleetResult, tmp_path: Path) -> None:
    path = tmp_path / "forecasts.csv"
    fleet_outputs.write_forecasts(result, path)
    header, rows = read_rows(path)
    assert header == ["series", "step", "time", "model", "forecast"]
    s, k, h = result.forecasts["stateful"].shape
    assert (s, k, h) == (12, 2, 6)
    assert len(rows) == s * k * h * len(result.forecasts)
    models = list(result.forecasts)
    assert [r[3] for r in rows[: len(models)]] == models  # the model varies fastest, in order
    seen = {}
    for series, step, when, model, value in rows:
        seen[series, when, model] = (int(step), float(value))
    assert len(seen) == len(rows)  # (series, time, model) is a key: windows do not overlap
    for i, name in enumerate(result.panel.ids):
        first_test = i + result.panel.lengths[i] - k * h  # series i starts i months after the origin
        for w in range(k):
            for j in range(h):
                when = month_label(int(first_test) + w * h + j)
                for model in models:
                    assert seen[name, when, model] == (j + 1, result.forecasts[model][i, w, j])


def test_forecasts_of_a_known_series_have_its_dates(result: FleetResult, tmp_path: Path) -> None:
    path = tmp_path / "forecasts.csv"
    fleet_outputs.write_forecasts(result, path)
    _, rows = read_rows(path)
    # s01: 57 values from February 2000 (ordinals 1..57): tests are ordinals 46..57.
    times = [r[2] for r in rows if r[0] == "s01" and r[3] == "naive"]
    assert times[0] == "2003-11-01" and times[5] == "2004-04-01" and times[6] == "2004-05-01"
    assert times[-1] == "2004-10-01" and len(times) == 12


def test_seed_forecasts_are_written_on_request(result: FleetResult, tmp_path: Path) -> None:
    path = tmp_path / "forecasts.csv"
    fleet_outputs.write_forecasts(result, path, seeds=True)
    _, rows = read_rows(path)
    seeds = ["stateful.seed0", "stateful.seed1", "stateless.seed0", "stateless.seed1"]
    models = list(dict.fromkeys(r[3] for r in rows))
    assert models == [*result.forecasts, *seeds]
    s1 = [float(r[4]) for r in rows if r[0] == "s03" and r[3] == "stateless.seed1"]
    assert s1 == result.seed_forecasts["stateless"][1, 3].ravel().tolist()


def test_metrics_csv_matches_the_result(result: FleetResult, tmp_path: Path) -> None:
    metrics = {m: dict(v) for m, v in result.metrics.items()}
    metrics["naive"]["mape"] = metrics["naive"]["mape"].copy()
    metrics["naive"]["mape"][2] = np.nan  # an undefined score: an empty cell
    path = tmp_path / "metrics.csv"
    fleet_outputs.write_metrics(result._replace(metrics=metrics), path)
    header, rows = read_rows(path)
    assert header == ["series", "model", *METRICS]
    assert len(rows) == len(result.panel) * len(metrics)
    for series, model, *values in rows:
        i = result.panel.ids.index(series)
        expected = [metrics[model][name][i] for name in METRICS]
        got = [float(v) if v else math.nan for v in values]
        np.testing.assert_array_equal(got, expected)
    assert next(r for r in rows if r[0] == "s02" and r[1] == "naive")[4] == ""


def strict_json(path: Path) -> dict:
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in results.json")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def test_results_json_holds_the_means_and_the_verdict(result: FleetResult, tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    fleet_outputs.write_results(result, path, {"data_file": None, "write_s": 0.5})
    d = strict_json(path)
    assert d["kind"] == "fleet" and d["format"] == fleet_outputs.FLEET_FORMAT and d["series"] == 12
    assert d["config"] == json.loads(json.dumps(result.config.to_dict()))
    assert d["means"] == result.means and d["validation_mase"] == result.val_mase
    assert d["ours"] == list(MODELS) and d["baselines"] == list(panel_baselines.SIMPLE_BASELINES)
    assert d["notes"] == list(result.notes) and d["timings"] == result.timings
    assert d["write_s"] == 0.5 and d["data_file"] is None and "numpy" in d["versions"]
    v = d["verdict"]
    assert (v["best"], v["best_baseline"]) == (result.verdict.best, result.verdict.best_baseline)
    for model, (diff, low, high) in result.verdict.versus.items():
        entry = v["versus"][model]
        assert (entry["difference"], entry["low"], entry["high"]) == (diff, low, high)
        assert entry["relative"] == pytest.approx(diff / result.means[v["best_baseline"]]["mase"])
        assert entry["series"] == 12
    assert np.array(d["losses"]["stateless"]).shape == (2, 2)  # seeds x epochs


def test_results_json_writes_nan_as_null(result: FleetResult, tmp_path: Path) -> None:
    means = {m: dict(v) for m, v in result.means.items()}
    means["drift"]["mape"] = math.nan
    means["naive"]["rmse"] = math.inf
    path = tmp_path / "results.json"
    fleet_outputs.write_results(result._replace(means=means), path, {})
    d = strict_json(path)
    assert d["means"]["drift"]["mape"] is None and d["means"]["naive"]["rmse"] is None


def test_a_failed_write_leaves_the_old_file(result: FleetResult, tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("old")
    with pytest.raises(TypeError):
        fleet_outputs.write_results(result, path, {"unwritable": object()})
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary left behind


def test_forecasts_of_a_big_fleet(result: FleetResult, tmp_path: Path) -> None:
    """1,500 series x 18 steps x 10 models: 270,000 rows (tests check behaviour, not time)."""
    s, h = 1500, 18
    rng = np.random.default_rng(1)
    panel = Panel(
        tuple(f"N{i}" for i in range(s)),
        tuple(np.ones(60) for _ in range(s)),
        rng.integers(0, 240, s),
        result.panel.clock,
    )
    cfg = fleet_config({**SETTINGS, "horizon": h, "windows": 1})
    names = [*MODELS, *panel_baselines.SIMPLE_BASELINES, *panel_baselines.STATS_BASELINES]
    forecasts = {m: rng.normal(size=(s, 1, h)) for m in names}
    big = result._replace(config=cfg, panel=panel, forecasts=forecasts, origins=(panel.starts + 60 - h)[:, None])
    fleet_outputs.write_forecasts(big, tmp_path / "forecasts.csv")
    _, rows = read_rows(tmp_path / "forecasts.csv")
    assert len(rows) == 270_000
    assert rows[-1] == [
        "N1499",
        "18",
        month_label(int(panel.starts[-1]) + 59),
        "arima",
        repr(float(forecasts["arima"][-1, 0, -1])),
    ]
