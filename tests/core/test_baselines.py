"""Baselines: the linear one at the window floor, the others against pandas and by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lstm_stateful.core import baselines, data, evaluate
from lstm_stateful.core.config import experiment_config
from lstm_stateful.core.errors import ConfigError


def file_config(n_rows: int, **settings: object) -> data.DataConfig:
    """The data config of a file of ``n_rows`` rows (never read: the tests hand its columns over)."""
    return experiment_config({"data": "series.csv", **settings}, file_rows=n_rows).data


def excess_tolerance(lahead: int, unseen: int, n_train: int, n_test: int, sigmas: float = 4.0) -> tuple[float, float]:
    """How far, relative to the window floor, least squares may land from it: (below, above).

    The fit is the ideal predictor (the seen part of the average, no intercept) plus an error
    d_t = dw . window_t + db, estimated from n_train rows whose residual e (the unseen part of
    the average, a sum of ``unseen`` = tsteps - lahead inputs) is independent of the window.
    On the test rows, MSE_fit - floor = mean(d^2) - 2 mean(e d), relative to the floor:

    - the lahead weights' errors are as with independent residuals (the inputs are), but the
      intercept's variance is ``unseen`` times larger (e is a moving sum: its autocorrelations
      add up to ``unseen``), so mean(d^2) ~ (lahead + unseen) / n_train, give or take
      sqrt(2 (lahead + unseen)) / n_train;
    - 2 mean(e d) has mean 0 and a std of at most 2 (sqrt(lahead) + unseen) / sqrt(n_train n_test)
      (the intercept's part again inflated, by mean(e) over the autocorrelated test rows).
    """
    cross = sigmas * 2 * (math.sqrt(lahead) + unseen) / math.sqrt(n_train * n_test)
    k = lahead + unseen
    return cross, (k + sigmas * math.sqrt(2 * k)) / n_train + cross


@pytest.mark.parametrize(("tsteps", "lahead"), [(2, 1), (4, 2), (5, 3), (8, 1)])
def test_linear_baseline_sits_at_the_window_floor(tsteps: int, lahead: int) -> None:
    cfg = data.DataConfig(input_len=20000, tsteps=tsteps, lahead=lahead)
    series = data.make_series(cfg)
    floor = evaluate.floors(cfg, data.test_part(series, cfg)).window_test
    linear = baselines.baseline_mses(cfg, series, "stateless")["linear"]  # every test point, as the floor
    below, above = excess_tolerance(lahead, tsteps - lahead, *data.split_sizes(cfg))
    assert -below <= linear / floor - 1 <= above, (linear / floor - 1, below, above)


@pytest.mark.parametrize(("tsteps", "lahead"), [(3, 3), (2, 4)])
def test_linear_baseline_is_exact_when_the_window_covers_the_average(tsteps: int, lahead: int) -> None:
    # The floor is 0: what is left is the float32 rounding of the target the models learn
    # (|y| <= 0.1, so an error below 0.1 * 2^-24 per point).
    cfg = data.DataConfig(tsteps=tsteps, lahead=lahead)
    linear = baselines.baseline_mses(cfg, data.make_series(cfg), "stateless")["linear"]
    assert linear < (0.1 * 2.0**-24) ** 2


def test_mean_and_persistence_against_pandas() -> None:
    # The example's frame by pandas: the moving average of the raw series, the first
    # max(tsteps, lahead) - 1 rows dropped, the first n_train rows train.
    cfg = data.DataConfig(tsteps=3, lahead=2, batch_size=4)
    frame = pd.DataFrame({"x": data.uniform_series(cfg)})
    frame["y"] = frame["x"].rolling(cfg.tsteps).mean()
    frame = frame.iloc[cfg.tsteps - 1 :]
    n_train, n_test = data.split_sizes(cfg)
    train, test = frame.iloc[:n_train], frame.iloc[n_train : n_train + n_test]
    y = test["y"].astype(np.float32).astype(np.float64)  # the target as the models learn it
    # At batch size 4 (interleaved), the stateful model warms up on the first 4 * (tsteps - 1) test rows.
    for mode, warm_up in (("stateless", 0), ("stateful", 4 * (cfg.tsteps - 1))):
        got = baselines.baseline_mses(cfg, data.make_series(cfg), mode)
        assert list(got) == ["mean", "persistence", "linear"]
        assert got["mean"] == pytest.approx(((y - train["y"].mean()) ** 2).iloc[warm_up:].mean(), rel=1e-12)
        assert got["persistence"] == pytest.approx(((y - test["x"]) ** 2).iloc[warm_up:].mean(), rel=1e-12)


PERIOD = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0])


@pytest.mark.parametrize(
    ("settings", "rounding"),
    [
        ({"task": "forecast", "horizon": 1}, 0.0),
        ({"task": "forecast", "horizon": 3, "transform": "diff"}, 0.0),
        ({"tsteps": 4, "batch_size": 2}, 0.0),  # the moving average of a periodic series is periodic
        # Standardized, the float32 target the models learn (and are scored against, as the
        # baselines are) is the value rounded to 2^-24 of its size in standard deviations.
        ({"task": "forecast", "transform": "diff", "standardize": True}, 2.0**-24),
    ],
)
def test_seasonal_naive_is_exact_on_a_periodic_series(settings: dict[str, object], rounding: float) -> None:
    x = np.tile(PERIOD, 30)  # small integers: the float32 target the models learn is exact
    cfg = file_config(x.shape[0], input="x", lahead=2, season=7, **settings)
    series = data.make_series(cfg, data.Columns(x[:, None]))
    worst = np.max(np.abs(series.target)) * series.scaling.target_scale * rounding
    for mode in ("stateful", "stateless"):
        got = baselines.baseline_mses(cfg, series, mode)
        assert got["seasonal"] <= worst**2 and got["persistence"] > 1.0
    # One season later, the first test rows are forecast from the last training rows.
    n_train = data.split_sizes(cfg)[0]
    forecasts = baselines.predictions(cfg, series)
    np.testing.assert_array_equal(forecasts["seasonal"][:7], series.raw_target[n_train - 7 : n_train])


def test_a_season_longer_than_the_training_rows_names_season() -> None:
    x = np.tile(PERIOD, 4)
    with pytest.raises(ConfigError) as e:  # refused with the config, before any data is made
        file_config(x.shape[0], input="x", task="forecast", season=40)
    assert e.value.param == "season" and "training rows" in str(e.value)


def _trend_and_wave(n: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    t = np.arange(n)
    return 50 + 0.2 * t + 5 * np.sin(t / 4) + rng.normal(0, 1, n)


def test_linear_baseline_against_least_squares_on_the_raw_windows() -> None:
    # No transform: the fit is affine in the data, so standardizing changes nothing and the
    # baseline is least squares on the raw windows, built here with pandas shifts.
    x = _trend_and_wave(300)
    frame = pd.DataFrame({f"x{lag}": pd.Series(x).shift(lag) for lag in range(3)})
    frame["y"] = pd.Series(x).shift(-2)
    frame = frame.iloc[2:-2]
    for standardize in (False, True):
        cfg = file_config(300, input="x", task="forecast", horizon=2, lahead=3, standardize=standardize)
        got = baselines.predictions(cfg, data.make_series(cfg, data.Columns(x[:, None])))["linear"]
        n_train, n_test = data.split_sizes(cfg)
        design = np.c_[frame[["x0", "x1", "x2"]].to_numpy(), np.ones(len(frame))]
        coef = np.linalg.lstsq(design[:n_train], frame["y"].to_numpy()[:n_train], rcond=None)[0]
        np.testing.assert_allclose(got, design[n_train : n_train + n_test] @ coef, rtol=1e-9)


def test_linear_baseline_on_differences_returns_to_the_data_units() -> None:
    # With diff, the fit maps the window of differences to the next change; the forecast is
    # this month's value plus that change.
    x = _trend_and_wave(200)
    cfg = file_config(200, input="x", task="forecast", lahead=2, transform="diff")
    got = baselines.predictions(cfg, data.make_series(cfg, data.Columns(x[:, None])))["linear"]
    d = np.diff(x)  # d[k] = x[k+1] - x[k]
    rows = np.arange(2, 199)  # t with two differences behind it and a value ahead
    design = np.c_[d[rows - 1], d[rows - 2], np.ones(rows.shape[0])]
    change = x[rows + 1] - x[rows]
    n_train, n_test = data.split_sizes(cfg)
    coef = np.linalg.lstsq(design[:n_train], change[:n_train], rcond=None)[0]
    test = slice(n_train, n_train + n_test)
    np.testing.assert_allclose(got, x[rows][test] + design[test] @ coef, rtol=1e-9)


def test_linear_baseline_uses_every_input_column() -> None:
    # The target is an exact linear function of both inputs: only a fit on both finds it.
    rng = np.random.default_rng(0)
    inputs = rng.uniform(-1, 1, (120, 2))
    target = 2 * inputs[:, 0] - 3 * inputs[:, 1] + 1
    cfg = file_config(120, input=["a", "b"], target="y")
    got = baselines.baseline_mses(cfg, data.make_series(cfg, data.Columns(inputs, target)), "stateless")
    assert got["linear"] < (6 * 2.0**-24) ** 2 < 1.0 < got["persistence"]  # float32 rounding of |y| <= 6
