"""Baselines: the forecasts a model must beat, on the test points it is scored on, in the
data's units (docs/protocol.md, "Baselines").

- mean: the training rows' mean target, whatever the input;
- persistence: the newest raw value of the first input column (the naive forecast);
- seasonal (with ``season`` P): the target P rows earlier, ``raw_target[t - P]`` over the
  rows of the whole series, so the first test rows take it from training rows;
- linear: least squares with an intercept from each training row's whole window,
  (lahead * F) values in the model's units, to its target; the best any linear stateless
  model does with that window, mapped back to the data's units like a model's predictions.

Every baseline is scored against the same truth as the models: the test target as the
models were trained on it (float32, in the model's units), mapped to the data's units.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lstm_stateful.core.config import MODES
from lstm_stateful.core.data import DataConfig, Series, split_sizes, test_part
from lstm_stateful.core.evaluate import scored_points

# Every baseline, in reporting order; "seasonal" only with a season. On a tie in MSE the
# first one named is the best (the simpler forecast).
BASELINES = ("mean", "persistence", "seasonal", "linear")


class Baselines(NamedTuple):
    """Every baseline of one config's test rows.

    truth: (n_test,) the target in the data's units, float64, time order; predictions: name ->
    (n_test,) likewise; mse: mode -> name -> MSE on the points that mode is scored on
    (``evaluate.scored_points``).
    """

    truth: np.ndarray
    predictions: dict[str, np.ndarray]
    mse: dict[str, dict[str, float]]


def truth(cfg: DataConfig, series: Series) -> np.ndarray:
    """(n_test,): the test target the models are scored against, in the data's units: the
    float32 target the models learn, mapped back (on the generated series, exactly the
    example's float32 ``y_test``)."""
    test = test_part(series, cfg)
    return test.data_units(test.target.astype(np.float32).astype(np.float64))


def seasonal_naive(raw_target: np.ndarray, season: int, start: int, stop: int) -> np.ndarray:
    """(stop - start,): rows [start, stop) forecast by the target ``season`` rows earlier
    (``DataConfig`` holds the season within the training rows, so start >= season)."""
    return np.asarray(raw_target[start - season : stop - season], np.float64)


def linear_fit(cfg: DataConfig, series: Series) -> np.ndarray:
    """(n_test,): the least-squares linear model of the training rows (window -> target, with
    an intercept, in the model's units, float64), predicting the test rows, in the model's units."""
    n_train, n_test = split_sizes(cfg)
    windows = series.inputs.reshape(series.inputs.shape[0], -1)
    design = np.concatenate([windows, np.ones((windows.shape[0], 1))], axis=1)
    coef, *_ = np.linalg.lstsq(design[:n_train], series.target[:n_train], rcond=None)
    return design[n_train : n_train + n_test] @ coef


def predictions(cfg: DataConfig, series: Series) -> dict[str, np.ndarray]:
    """Each baseline's forecast of the test rows: name -> (n_test,), data units, float64."""
    n_train, n_test = split_sizes(cfg)
    rows = slice(n_train, n_train + n_test)
    out = {
        "mean": np.full(n_test, float(np.mean(series.raw_target[:n_train]))),
        "persistence": np.asarray(series.raw_input[rows], np.float64),
    }
    if cfg.season is not None:
        out["seasonal"] = seasonal_naive(series.raw_target, cfg.season, n_train, n_train + n_test)
    out["linear"] = test_part(series, cfg).data_units(linear_fit(cfg, series))
    return out


def mses(y: np.ndarray, forecasts: dict[str, np.ndarray], scored: np.ndarray) -> dict[str, float]:
    """name -> MSE of each forecast (n,) against y (n,) over the ``scored`` (n,) points."""
    return {name: float(np.mean((f[scored] - y[scored]) ** 2)) for name, f in forecasts.items()}


def baselines(cfg: DataConfig, series: Series, modes: tuple[str, ...] = MODES) -> Baselines:
    """Every baseline's forecasts of the test rows and its MSE on each mode's scored points."""
    y, forecasts = truth(cfg, series), predictions(cfg, series)
    by_mode = {mode: mses(y, forecasts, scored_points(mode, cfg, y.shape[0])) for mode in modes}
    return Baselines(y, forecasts, by_mode)


def baseline_mses(cfg: DataConfig, series: Series, mode: str) -> dict[str, float]:
    """name -> MSE, in the data's units, of each baseline ("mean", "persistence", "seasonal"
    with a season, "linear") on the test points ``mode`` is scored on. ``series``: the whole
    series (``data.make_series``), as ``run`` trains on it."""
    return baselines(cfg, series, (mode,)).mse[mode]
