"""Panel scores: by hand on tiny series, their edge cases, the bootstrap, and utilsforecast's losses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstm_stateful.core import panel_scores
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.core.panel_scores import bootstrap_difference, mase_scale, metrics

HISTORY = np.array([1.0, 3.0, 2.0, 5.0])  # differences 2, -1, 3; two steps apart 1, 2


@pytest.mark.parametrize(("season", "scale"), [(1, 2.0), (2, 1.5), (3, 4.0), (4, 2.0), (9, 2.0)])
def test_mase_scale_by_hand(season: int, scale: float) -> None:
    # season 3: |5 - 1|; a history not longer than the season falls back to the naive scale
    assert mase_scale(HISTORY, season) == scale


@pytest.mark.parametrize("history", [[7.0], [2.0, 2.0, 2.0], [1.0, 2.0, 1.0, 2.0, 1.0]])
def test_mase_scale_is_nan_without_a_positive_scale(history: list[float]) -> None:
    # one point; constant; a history repeating exactly with the season (2)
    assert math.isnan(mase_scale(np.array(history), 2 if len(history) == 5 else 1))


def test_metrics_by_hand() -> None:
    got = metrics([HISTORY], np.array([[4.0, 6.0]]), np.array([[5.0, 5.0]]), season=1)
    assert list(got) == list(panel_scores.METRICS)
    assert got["mae"][0] == 1.0
    assert got["rmse"][0] == 1.0
    assert got["mase"][0] == 0.5  # MAE 1 over the naive scale 2
    assert got["smape"][0] == pytest.approx((200 / 9 + 200 / 11) / 2, rel=1e-15)
    assert got["mape"][0] == pytest.approx((100 / 4 + 100 / 6) / 2, rel=1e-15)


def test_rmse_and_mase_with_a_season() -> None:
    got = metrics([HISTORY], np.array([[0.0, 0.0, 0.0]]), np.array([[3.0, 0.0, 4.0]]), season=2)
    assert got["rmse"][0] == pytest.approx(math.sqrt(25 / 3), rel=1e-15)
    assert got["mase"][0] == pytest.approx((7 / 3) / 1.5, rel=1e-15)


def test_percentage_errors_at_zero() -> None:
    truth = np.array([[0.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    forecasts = np.array([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    got = metrics([HISTORY] * 3, truth, forecasts, season=1)
    # sMAPE: 0 where both are 0, 200 where only one is
    np.testing.assert_allclose(got["smape"], [100.0, (200 + 200 / 3) / 2, 0.0], rtol=1e-15)
    # MAPE: over the points where the truth is not 0; undefined (NaN) where there is none
    assert math.isnan(got["mape"][0])
    assert got["mape"][1] == 50.0
    assert math.isnan(got["mape"][2])


def test_undefined_scores_are_left_out_of_means_and_counted() -> None:
    histories = [HISTORY, np.full(4, 3.0), HISTORY]
    forecasts = np.array([[5.0], [5.0], [np.nan]])
    mase = metrics(histories, np.array([[4.0], [4.0], [4.0]]), forecasts, season=1)["mase"]
    assert mase[0] == 0.5
    assert math.isnan(mase[1])  # a constant history: no scale
    assert math.isnan(mase[2])  # a NaN forecast
    assert panel_scores.mean_over_series(mase) == 0.5
    assert panel_scores.undefined_count(mase) == 2
    assert math.isnan(panel_scores.mean_over_series(np.array([np.nan, np.inf])))


def test_metrics_check_shapes() -> None:
    with pytest.raises(ConfigError, match=r"^truth: "):
        metrics([HISTORY], np.zeros((2, 3)), np.zeros((2, 3)), season=1)
    with pytest.raises(ConfigError, match=r"^forecasts: "):
        metrics([HISTORY], np.zeros((1, 3)), np.zeros((1, 2)), season=1)
    with pytest.raises(ConfigError, match=r"^season: "):
        metrics([HISTORY], np.zeros((1, 3)), np.zeros((1, 3)), season=0)


def test_against_utilsforecast() -> None:
    # utilsforecast's sMAPE is mean |y - f| / (|y| + |f|) (0..1) and its MAPE a fraction:
    # ours are 200 and 100 times theirs.
    pd = pytest.importorskip("pandas")
    losses = pytest.importorskip("utilsforecast.losses")
    rng = np.random.default_rng(3)
    season, horizon = 4, 6
    histories = [rng.normal(10, 3, n) for n in (9, 15, 30, 4)]  # the last one not longer than the season
    truth = rng.normal(10, 3, (4, horizon))
    forecasts = truth + rng.normal(0, 2, (4, horizon))
    ours = metrics(histories, truth, forecasts, season)
    ids = [str(i) for i in range(4)]
    train = pd.DataFrame(
        {
            "unique_id": np.repeat(ids, [h.size for h in histories]),
            "ds": np.concatenate([np.arange(h.size) for h in histories]),
            "y": np.concatenate(histories),
        }
    )
    test = pd.DataFrame({"unique_id": np.repeat(ids, horizon), "y": truth.ravel(), "model": forecasts.ravel()})
    for name, factor in (("smape", 200), ("mape", 100), ("rmse", 1), ("mae", 1)):
        theirs = getattr(losses, name)(test, ["model"]).set_index("unique_id").loc[ids, "model"].to_numpy()
        np.testing.assert_allclose(ours[name], factor * theirs, rtol=1e-12, err_msg=name)
    mase = losses.mase(test, ["model"], season, train).set_index("unique_id").loc[ids[:3], "model"].to_numpy()
    np.testing.assert_allclose(ours["mase"][:3], mase, rtol=1e-12)


def test_bootstrap_of_a_constant_difference_collapses() -> None:
    a = np.linspace(1.0, 2.0, 50)
    mean, low, high = bootstrap_difference(a + 0.25, a)
    assert mean == pytest.approx(0.25, abs=1e-12)
    assert low == pytest.approx(0.25, abs=1e-12)
    assert high == pytest.approx(0.25, abs=1e-12)


def test_bootstrap_is_reproducible_and_covers_the_mean() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(1.0, 1.0, 400), rng.normal(0.0, 1.0, 400)
    got = bootstrap_difference(a, b, seed=11)
    assert got == bootstrap_difference(a, b, seed=11)
    assert got != bootstrap_difference(a, b, seed=12)
    mean, low, high = got
    assert mean == pytest.approx(np.mean(a - b), rel=1e-12)
    assert low < mean < high
    # The percentile interval of a mean of 400 is close to the normal one: mean ± 1.96 sd / sqrt(n)
    half = 1.96 * np.std(a - b) / np.sqrt(400)
    assert (high - low) / 2 == pytest.approx(half, rel=0.1)
    wider = bootstrap_difference(a, b, seed=11, level=0.99)
    assert wider[1] < low and high < wider[2]


def test_bootstrap_does_not_depend_on_the_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    # Drawn in chunks, the resamples are those of one resample at a time from the same generator.
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=30), rng.normal(size=30)
    d = a - b
    gen = np.random.default_rng(4)
    means = np.array([d[gen.integers(0, 30, size=30)].mean() for _ in range(100)])
    expected = (float(d.mean()), *np.quantile(means, [0.05, 0.95]))
    monkeypatch.setattr(panel_scores, "_BOOT_CHUNK", 7 * 30)  # 7 resamples a chunk: 15 chunks
    np.testing.assert_allclose(bootstrap_difference(a, b, n_boot=100, seed=4, level=0.9), expected, rtol=1e-15)


def test_bootstrap_leaves_out_series_not_finite_in_either() -> None:
    a = np.array([1.0, np.nan, 3.0, 5.0])
    b = np.array([0.0, 0.0, np.inf, 4.0])
    assert bootstrap_difference(a, b) == (1.0, 1.0, 1.0)
    assert all(math.isnan(v) for v in bootstrap_difference(a[1:2], b[1:2]))
    with pytest.raises(ConfigError, match=r"^b: "):
        bootstrap_difference(a, b[:3])
    with pytest.raises(ConfigError, match=r"^level: "):
        bootstrap_difference(a, b, level=1.0)


def test_best_model() -> None:
    assert panel_scores.best_model({"naive": 1.2, "fleet": 0.9, "ets": float("nan")}) == "fleet"
    assert panel_scores.best_model({"theta": 0.9, "fleet": 0.9, "arima": 1.0}) == "theta"  # a tie: the first
    assert panel_scores.best_model({"fleet": float("inf"), "naive": 2.0}) == "naive"
    with pytest.raises(ConfigError, match=r"^mean_mase: "):
        panel_scores.best_model({"fleet": float("nan")})
