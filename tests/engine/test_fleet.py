"""A fleet run end to end: the protocol's parts, no leakage from the test, scores and verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_stateful.core import panel_scores
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.core.panel import Clock, Panel
from lstm_stateful.core.panel_config import fleet_config
from lstm_stateful.engine import fleet

H, P = 6, 12


def _panel(n_series: int = 10, seed: int = 3) -> Panel:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(50, 75, n_series)
    values = tuple(
        50 + 10 * np.sin(2 * np.pi * (np.arange(n) + s) / P) + 0.2 * np.arange(n) + rng.normal(0, 1, n)
        for s, n in enumerate(lengths)
    )
    return Panel(tuple(f"id{s:02d}" for s in range(n_series)), values, rng.integers(0, 12, n_series), Clock())


def _cfg(**over: object) -> object:
    settings = {"data": "x.csv", "id": "id", "time": "t", "input": "y", "horizon": H, "season": P, "units": 6}
    settings |= {"epochs": 3, "seeds": 2, "lahead": 4, "chunk": 12, "batch_size": 4, "stats": ()} | over
    return fleet_config(settings)


@pytest.fixture(scope="module")
def result() -> fleet.FleetResult:
    return fleet.run_fleet(_cfg(), _panel())  # type: ignore[arg-type]


def test_the_protocol_cuts_each_series_at_its_own_end() -> None:
    panel = _panel()
    parts = fleet.split(_cfg(windows=2), panel)  # type: ignore[arg-type]
    for s, values in enumerate(panel.values):
        n = values.shape[0]
        np.testing.assert_array_equal(parts.tests[s].ravel(), values[n - 2 * H :])
        np.testing.assert_array_equal(parts.validation[s], values[n - 3 * H : n - 2 * H])
        np.testing.assert_array_equal(parts.train[s], values[: n - 3 * H])
        np.testing.assert_array_equal(parts.histories[2][s], values[: n - H])


def test_test_values_touch_neither_training_nor_scaling_nor_validation(result: fleet.FleetResult) -> None:
    panel = result.panel
    changed = tuple(np.concatenate([v[:-H], v[-H:] * 5 + 100]) for v in panel.values)
    other = fleet.run_fleet(result.config, Panel(panel.ids, changed, panel.starts, panel.clock))
    np.testing.assert_array_equal(other.losses, result.losses)
    np.testing.assert_array_equal(other.scaling.loc, result.scaling.loc)
    for model in ("stateful", "stateless", "seasonal-naive"):
        np.testing.assert_array_equal(other.validation[model], result.validation[model])
        # Forecasts of the test window come from values before it: unchanged too.
        np.testing.assert_array_equal(other.forecasts[model], result.forecasts[model])
    assert other.val_mase == result.val_mase
    assert other.means["stateful"]["mase"] != result.means["stateful"]["mase"]


def test_scores_are_the_metrics_of_the_forecasts(result: fleet.FleetResult) -> None:
    parts = result.split
    for model in ("stateful", "combined", "drift"):
        direct = panel_scores.metrics(parts.histories[1], parts.tests[:, 0], result.forecasts[model][:, 0], P)
        np.testing.assert_allclose(result.metrics[model]["mase"], direct["mase"])
        assert result.means[model]["mase"] == pytest.approx(np.mean(direct["mase"]))
    combined = (result.forecasts["stateful"] + result.forecasts["stateless"]) / 2
    np.testing.assert_allclose(result.forecasts["combined"], combined)
    np.testing.assert_allclose(result.forecasts["stateful"], result.seed_forecasts["stateful"].mean(axis=0))
    assert result.means["seasonal-naive"]["beats_seasonal_naive"] == 0.0


def test_the_verdict_names_the_best_and_bootstraps_over_series(result: fleet.FleetResult) -> None:
    v = result.verdict
    mase = {m: d["mase"] for m, d in result.means.items()}
    assert v.best == min(mase, key=lambda m: mase[m])
    baselines = {m: x for m, x in mase.items() if m not in fleet.MODELS}
    assert v.best_baseline == min(baselines, key=lambda m: baselines[m])
    diff, low, high = v.versus["stateful"]
    assert diff == pytest.approx(mase["stateful"] - mase[v.best_baseline])
    assert low <= diff <= high


def test_origins_are_each_series_first_test_time(result: fleet.FleetResult) -> None:
    panel = result.panel
    np.testing.assert_array_equal(result.origins[:, 0], panel.starts + panel.lengths - H)


def test_a_series_too_short_is_refused_naming_it() -> None:
    panel = _panel()
    short = (*panel.values[:-1], panel.values[-1][: 2 * H + P])
    with pytest.raises(ConfigError, match=r"series 'id09' has 24 values, too short: a series needs 26") as e:
        fleet.split(_cfg(), Panel(panel.ids, short, panel.starts, panel.clock))  # type: ignore[arg-type]
    assert e.value.param == "data"
