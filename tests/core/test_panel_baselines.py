"""Panel baselines: by hand on tiny series, against numpy's polyfit and statsforecast's own
simple models, the statistical ones on a seasonal panel, and without the stats extra."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from lstm_stateful.core import panel_baselines
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.core.panel_baselines import simple_forecasts, stats_forecasts


def test_simple_forecasts_by_hand() -> None:
    got = simple_forecasts([np.arange(1.0, 8.0)], horizon=7, season=3, window=4)
    assert list(got) == list(panel_baselines.SIMPLE_BASELINES)
    np.testing.assert_array_equal(got["naive"], [[7.0] * 7])
    # the last season 5, 6, 7 repeated: h = 4 wraps back to 5, h = 7 again
    np.testing.assert_array_equal(got["seasonal-naive"], [[5.0, 6.0, 7.0, 5.0, 6.0, 7.0, 5.0]])
    np.testing.assert_allclose(got["drift"], [np.arange(8.0, 15.0)], rtol=1e-15)
    np.testing.assert_allclose(got["linear"], [np.arange(8.0, 15.0)], rtol=1e-14)


def test_drift_and_linear_by_hand() -> None:
    got = simple_forecasts([np.array([2.0, 4.0, 10.0]), np.array([100.0, 0.0, 1.0, 2.0])], 2, season=1, window=3)
    np.testing.assert_allclose(got["drift"], [[14.0, 18.0], [2 - 98 / 3, 2 - 2 * 98 / 3]], rtol=1e-15)
    # the line through the last 3 points only: 0, 1, 2 -> 3, 4 (100 is outside the window)
    np.testing.assert_allclose(got["linear"][1], [3.0, 4.0], rtol=1e-14)
    # least squares through (0, 2), (1, 4), (2, 10): slope 4, mean 16/3 at x = 1 -> 16/3 + 4 (h + 1)
    np.testing.assert_allclose(got["linear"][0], [16 / 3 + 8, 16 / 3 + 12], rtol=1e-14)


def test_linear_extrapolates_an_exact_line() -> None:
    histories = [3.0 - 0.5 * np.arange(n) for n in (2, 5, 40)]
    got = simple_forecasts(histories, 4, season=12, window=24)["linear"]
    expected = [3.0 - 0.5 * (n - 1 + np.arange(1, 5)) for n in (2, 5, 40)]
    np.testing.assert_allclose(got, expected, rtol=1e-13)


def test_short_histories() -> None:
    got = simple_forecasts([np.array([4.0]), np.array([1.0, 2.0])], 5, season=4, window=3)
    for name in panel_baselines.SIMPLE_BASELINES[:2]:  # shorter than the season: naive
        np.testing.assert_array_equal(got[name], [[4.0] * 5, [2.0] * 5], err_msg=name)
    np.testing.assert_array_equal(got["drift"][0], [4.0] * 5)
    np.testing.assert_array_equal(got["linear"][0], [4.0] * 5)
    np.testing.assert_allclose(got["linear"][1], [3.0, 4.0, 5.0, 6.0, 7.0], rtol=1e-15)


def test_linear_against_polyfit() -> None:
    rng = np.random.default_rng(2)
    histories = [rng.normal(size=n).cumsum() + 50 for n in rng.integers(2, 60, 40)]
    got = simple_forecasts(histories, 6, season=7, window=24)["linear"]
    for i, history in enumerate(histories):
        tail = history[-24:]
        slope, intercept = np.polyfit(np.arange(tail.size), tail, 1)
        np.testing.assert_allclose(got[i], intercept + slope * (tail.size - 1 + np.arange(1, 7)), rtol=1e-10)


def test_simple_forecasts_check_their_input() -> None:
    with pytest.raises(ConfigError, match=r"^window: "):
        simple_forecasts([np.ones(3)], 2, 1, window=1)
    with pytest.raises(ConfigError, match=r"^horizon: "):
        simple_forecasts([np.ones(3)], 0, 1, window=2)
    with pytest.raises(ConfigError, match=r"^histories: series 1 "):
        simple_forecasts([np.ones(3), np.array([1.0, np.nan])], 2, 1, window=2)
    with pytest.raises(ConfigError, match=r"^histories: series 0 "):
        simple_forecasts([np.ones(0)], 2, 1, window=2)


def test_simple_forecasts_of_thousands_of_series_of_many_lengths() -> None:
    rng = np.random.default_rng(0)
    histories = [rng.normal(size=n) for n in rng.integers(100, 131, 5000)]
    got = simple_forecasts(histories, 18, season=12, window=36)
    np.testing.assert_array_equal(got["naive"][:, 0], [h[-1] for h in histories])


def statsforecast_frame(histories: list[np.ndarray]) -> object:
    """The long frame statsforecast reads, ids in the input's order as they sort."""
    pd = pytest.importorskip("pandas")
    ids = np.repeat([f"{i:03d}" for i in range(len(histories))], [h.size for h in histories])
    ds = np.concatenate([np.arange(h.size) for h in histories])
    return pd.DataFrame({"unique_id": ids, "ds": ds, "y": np.concatenate(histories)})


def test_simple_forecasts_against_statsforecast() -> None:
    core = pytest.importorskip("statsforecast")
    models = pytest.importorskip("statsforecast.models")
    rng = np.random.default_rng(1)
    season, horizon = 4, 9
    histories = [rng.normal(size=n).cumsum() for n in rng.integers(season, 30, 20)]
    engine = core.StatsForecast(
        models=[models.Naive(), models.SeasonalNaive(season_length=season), models.RandomWalkWithDrift()], freq=1
    )
    theirs = engine.forecast(df=statsforecast_frame(histories), h=horizon).sort_values(["unique_id", "ds"])
    ours = simple_forecasts(histories, horizon, season, window=8)
    for name, column in (("naive", "Naive"), ("seasonal-naive", "SeasonalNaive"), ("drift", "RWD")):
        np.testing.assert_allclose(ours[name].ravel(), theirs[column].to_numpy(), rtol=0, atol=1e-9, err_msg=name)


PATTERN = np.array([2.0, -1.0, 3.0, 0.0])  # a season of 4


def seasonal_panel(n_series: int, length: int, horizon: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Histories (length,) and truth (S, horizon) of pure seasonal series, each at its own level."""
    t = np.arange(length + horizon)
    whole = [10.0 * (i + 1) + PATTERN[t % 4] for i in range(n_series)]
    return [w[:length] for w in whole], np.array([w[length:] for w in whole])


def test_stats_forecasts_on_a_seasonal_panel() -> None:
    pytest.importorskip("statsforecast")
    histories, truth = seasonal_panel(12, 24, 6)  # ids 00..11: a mix-up of series shows as a level 10 off
    got = stats_forecasts(histories, 6, season=4)
    assert list(got) == list(panel_baselines.STATS_BASELINES)
    for name, forecasts in got.items():
        assert forecasts.shape == (12, 6)
        np.testing.assert_allclose(forecasts, truth, atol=0.5, err_msg=name)


def test_stats_forecasts_map_rows_back_by_id(monkeypatch: pytest.MonkeyPatch) -> None:
    # statsforecast's rows shuffled: the forecasts still land on their own series and steps.
    core = pytest.importorskip("statsforecast")
    histories, truth = seasonal_panel(12, 24, 6)
    forecast = core.StatsForecast.forecast

    def shuffled(self: object, **kwargs: object) -> object:
        out = forecast(self, **kwargs)
        return out.sample(frac=1.0, random_state=0)

    monkeypatch.setattr(core.StatsForecast, "forecast", shuffled)
    got = stats_forecasts(histories, 6, season=4, models=("theta",))
    np.testing.assert_allclose(got["theta"], truth, atol=0.5)


def test_stats_forecasts_fall_back_to_seasonal_naive() -> None:
    # AutoETS refuses these histories, AutoTheta the first two (statsforecast: "tiny datasets"):
    # each such series gets the seasonal naive forecast instead (naive below a season), and
    # the run goes on.
    pytest.importorskip("statsforecast")
    histories = [np.array([3.0]), np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0])]
    got = stats_forecasts(histories, 5, season=4, models=("ets", "theta"))
    expected = simple_forecasts(histories, 5, season=4, window=2)["seasonal-naive"]
    np.testing.assert_array_equal(expected, [[3.0] * 5, [3.0] * 5, [1.0, 2.0, 3.0, 4.0, 1.0]])
    np.testing.assert_array_equal(got["ets"], expected)
    np.testing.assert_array_equal(got["theta"][:2], expected[:2])
    assert np.isfinite(got["theta"]).all()


def test_stats_forecasts_check_models() -> None:
    with pytest.raises(ConfigError, match=r"^models: .*got prophet"):
        stats_forecasts([np.ones(8)], 2, season=1, models=("prophet",))


def test_without_the_stats_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "statsforecast", None)  # import statsforecast raises ModuleNotFoundError
    line = "AutoETS, AutoTheta and AutoARIMA need the stats extra: pip install 'lstm-stateful[stats]'"
    assert panel_baselines.stats_available() == line
    with pytest.raises(ConfigError) as raised:
        stats_forecasts([np.ones(8)], 2, season=1)
    assert (raised.value.param, raised.value.problem) == ("baselines", line)


def test_with_a_broken_stats_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(name: str) -> object:
        raise ImportError("libgomp.so.1: cannot open shared object file")

    monkeypatch.setattr(panel_baselines.importlib, "import_module", broken)
    assert panel_baselines.stats_available() == (
        "AutoETS, AutoTheta and AutoARIMA need the stats extra: pip install 'lstm-stateful[stats]' "
        "(it is installed, but importing it failed: ImportError: libgomp.so.1: cannot open shared object file)"
    )
