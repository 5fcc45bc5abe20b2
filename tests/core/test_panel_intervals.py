"""Split conformal intervals for panel forecasts: the half-width is the finite-sample order
statistic (NumPy's inverted-CDF quantile), the rule's guarantee holds on fresh series, the
interval scores match a hand computation, and a fleet run's intervals cover as they say."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest

from lstm_stateful.core.errors import ConfigError
from lstm_stateful.core.panel import Clock, Panel
from lstm_stateful.core.panel_config import fleet_config
from lstm_stateful.core.panel_intervals import bounds, check_enough, conformal_widths, min_series, scores
from lstm_stateful.engine.fleet import run_fleet
from lstm_stateful.render.fleet_outputs import forecasts_csv, metrics_csv


@pytest.mark.parametrize("n", [4, 19, 20, 57, 200])
def test_the_half_width_is_the_finite_sample_order_statistic(n: int) -> None:
    rng = np.random.default_rng(n)
    truth, forecast, scale = rng.normal(0, 1, (n, 3)), rng.normal(0, 1, (n, 3)), rng.uniform(0.5, 2, n)
    levels = (50.0, 80.0, 95.0)
    widths = conformal_widths(truth, forecast, scale, levels)
    scores_ = np.abs(truth - forecast) / scale[:, None]
    for i, level in enumerate(levels):
        k = math.ceil((n + 1) * level / 100)
        for j in range(3):
            want = np.inf if k > n else np.quantile(scores_[:, j], k / n, method="inverted_cdf")
            assert widths[i, j] == want


def test_fresh_series_are_covered_as_the_rule_promises() -> None:
    """Exchangeable series: over many draws, a fresh series falls inside its 80% interval
    between 80% and 80% + 1/(n + 1) of the time."""
    rng, n, hits = np.random.default_rng(1), 30, []
    for _ in range(4000):
        errors = rng.standard_t(3, n + 1)  # heavy tails: the rule does not care
        width = conformal_widths(errors[:n, None], np.zeros((n, 1)), np.ones(n), (80.0,))[0, 0]
        hits.append(abs(errors[n]) <= width)
    assert 0.80 - 0.02 <= np.mean(hits) <= 0.80 + 1 / (n + 1) + 0.02


def test_min_series_and_the_refusal() -> None:
    assert [min_series(c) for c in (50, 80, 90, 95, 99)] == [1, 4, 9, 19, 99]
    for c, n in ((80, 4), (95, 19)):
        assert math.ceil((n + 1) * c / 100) <= n < math.ceil((n + 2) * c / 100) or n == min_series(c)
    check_enough((80.0, 95.0), 19)
    with pytest.raises(ConfigError, match="a 95% interval needs the validation errors of at least 19 series"):
        check_enough((80.0, 95.0), 18)


def test_bounds_and_scores_by_hand() -> None:
    forecast = np.array([[[10.0, 10.0]]])  # (S=1, K=1, H=2)
    scale = np.array([[2.0]])
    b = bounds(forecast, scale, np.array([[1.0, 1.5]]))  # half-widths 2 and 3 in data units
    assert b[0, 0].ravel().tolist() == [8.0, 7.0] and b[0, 1].ravel().tolist() == [12.0, 13.0]
    truth = np.array([[[11.0, 14.0]]])  # inside, then 1 above
    got = scores(truth, b, scale, (80.0,))
    assert got["coverage_80"].tolist() == [0.5]
    assert got["width_80"].tolist() == [(4 / 2 + 6 / 2) / 2]
    # MSIS: (width + 2/alpha * miss) / scale, averaged: ((4 + 0) / 2 + (6 + 10 * 1) / 2) / 2
    assert got["msis_80"] == pytest.approx([((4 + 0) / 2 + (6 + 10 * 1) / 2) / 2])


@pytest.mark.parametrize(
    "settings, text",
    [({"level": (80.0,)}, "calibrate: is required with `level`"),
     ({"calibrate": "conformal"}, "calibrate: needs `level`"),
     ({"level": (0.0,), "calibrate": "conformal"}, "level: must lie in (0, 100)"),
     ({"level": (100.0,), "calibrate": "conformal"}, "level: must lie in (0, 100)"),
     ({"level": (95.0, 80.0), "calibrate": "conformal"}, "level: must be ascending, each once"),
     ({"level": (80.0, 80.0), "calibrate": "conformal"}, "level: must be ascending, each once"),
     ({"level": (80.0,), "calibrate": "bootstrap"}, "calibrate")],
)  # fmt: skip
def test_bad_levels_are_refused(settings: dict, text: str) -> None:
    base = {"data": "x.csv", "id": "id", "time": "t", "input": "y"}
    with pytest.raises(ConfigError) as e:
        fleet_config(base | settings)
    assert text in f"{e.value.param}: {e.value.problem}"


def test_a_fleet_runs_intervals_cover_as_they_say() -> None:
    rng = np.random.default_rng(0)
    s, n, p = 120, 60, 12
    values = tuple(
        100 + 10 * np.sin(2 * np.pi * (np.arange(n) + k) / p) + rng.normal(0, 1 + k % 4, n) for k in range(s)
    )
    panel = Panel(tuple(f"s{k}" for k in range(s)), values, np.zeros(s, int), Clock())
    settings = {"data": "x.csv", "id": "id", "time": "t", "input": "y", "horizon": 6, "season": p, "windows": 2,
                "epochs": 3, "seeds": 1, "units": 6, "stats": ()}  # fmt: skip
    settings |= {"level": (80.0, 95.0), "calibrate": "conformal"}
    result = run_fleet(fleet_config(settings), panel)
    for model in ("stateful", "seasonal-naive"):
        assert abs(result.means[model]["coverage_80"] - 0.80) < 0.06
        assert abs(result.means[model]["coverage_95"] - 0.95) < 0.04
        assert result.step_coverage[model].shape == (2, 6)
    rows = list(csv.DictReader(io.StringIO(forecasts_csv(result))))
    assert list(rows[0])[-4:] == ["lo_80", "hi_80", "lo_95", "hi_95"]
    for row in rows[:200]:
        lo95, lo80, f, hi80, hi95 = (float(row[c]) for c in ("lo_95", "lo_80", "forecast", "hi_80", "hi_95"))
        assert lo95 <= lo80 <= f <= hi80 <= hi95
    metrics = list(csv.DictReader(io.StringIO(metrics_csv(result))))
    assert {"coverage_80", "width_95", "msis_95"} <= set(metrics[0])
