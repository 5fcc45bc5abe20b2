"""Scores of a panel's forecasts, by the forecasting competitions' protocol (M3/M4 style).

Each of S series is forecast H steps from its own origin, from its history (the values
before the origin) alone; the forecasts are scored per series, then averaged over the series.

- MAE and RMSE, in the data's units;
- sMAPE = mean over the H points of 200 |y - f| / (|y| + |f|), in percent (0..200); a point
  where y and f are both 0 counts 0;
- MAPE = mean of 100 |y - f| / |y| over the points where y != 0 (the others leave it
  undefined); NaN when every y is 0;
- MASE = MAE / ``mase_scale(history, season)``, the in-sample mean absolute error of the
  seasonal naive forecast (M4's scale). A history that gives no positive scale (a single
  point, or a constant one) leaves MASE undefined: NaN for that series.

Undefined (NaN) and infinite scores are left out of every mean over series
(``mean_over_series``) and counted (``undefined_count``): report the count beside the mean,
as a model whose forecasts went to NaN on some series is not scored on those series.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lstm_stateful.core.errors import ConfigError

# Every score, in reporting order.
METRICS = ("mase", "smape", "mape", "rmse", "mae")

# Bootstrap resamples are drawn in chunks of about this many indices (memory, not results:
# the same seed gives the same interval, whatever the chunking).
_BOOT_CHUNK = 1 << 22


def mase_scale(history: np.ndarray, season: int) -> float:
    """The MASE scale of a history (n,): mean |y_t - y_{t-m}| over the history, m = ``season``
    (m = 1: the naive forecast's error). A history not longer than m uses m = 1.

    NaN where there is no positive scale: a history of one point (no difference), or one
    whose differences are all 0 (a constant history, or one that exactly repeats with period
    m); MASE is then undefined for the series (M4 leaves such series out)."""
    y = np.asarray(history, np.float64)
    m = season if y.shape[0] > season else 1
    if y.shape[0] <= m:
        return float("nan")
    scale = float(np.mean(np.abs(y[m:] - y[:-m])))
    return scale if scale > 0 else float("nan")


def _check_shapes(histories: Sequence[np.ndarray], truth: np.ndarray, forecasts: np.ndarray) -> None:
    """ConfigError unless truth and forecasts are both (S, H), S = len(histories)."""
    if truth.ndim != 2 or truth.shape[0] != len(histories):
        raise ConfigError("truth", f"must be (S, H) with S = {len(histories)} series, got {truth.shape}")
    if forecasts.shape != truth.shape:
        raise ConfigError("forecasts", f"must have the shape of `truth` {truth.shape}, got {forecasts.shape}")


def _smape(y: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(S,): sMAPE, 0..200, of forecasts f (S, H) of y (S, H); a point with y = f = 0 counts 0."""
    denominator = np.abs(y) + np.abs(f)
    both_zero = denominator == 0
    with np.errstate(invalid="ignore"):
        points = np.where(both_zero, 0.0, 200 * np.abs(y - f) / np.where(both_zero, 1.0, denominator))
    return np.asarray(np.mean(points, axis=1), np.float64)


def _mape(y: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(S,): MAPE in percent over the points where y != 0; NaN for a series without one."""
    defined = y != 0
    with np.errstate(invalid="ignore"):
        points = np.where(defined, 100 * np.abs(y - f) / np.where(defined, np.abs(y), 1.0), 0.0)
    count = defined.sum(axis=1)
    total = points.sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def metrics(
    histories: Sequence[np.ndarray], truth: np.ndarray, forecasts: np.ndarray, season: int
) -> dict[str, np.ndarray]:
    """Every score of ``METRICS``, per series: name -> (S,) float64.

    histories: S arrays (n_i,), each series' values before its origin (only MASE reads them);
    truth, forecasts: (S, H), the values after the origin and their forecasts; season: the
    MASE scale's period m (1: none). A non-finite forecast gives non-finite scores."""
    y = np.asarray(truth, np.float64)
    f = np.asarray(forecasts, np.float64)
    _check_shapes(histories, y, f)
    if season < 1:
        raise ConfigError("season", f"must be at least 1, got {season}")
    with np.errstate(invalid="ignore", over="ignore"):
        abs_err = np.abs(y - f)
        mae = np.mean(abs_err, axis=1)
        rmse = np.sqrt(np.mean(abs_err**2, axis=1))
    scales = np.array([mase_scale(h, season) for h in histories], np.float64).reshape(-1)
    return {"mase": mae / scales, "smape": _smape(y, f), "mape": _mape(y, f), "rmse": rmse, "mae": mae}


def mean_over_series(values: np.ndarray) -> float:
    """The mean of the finite values of (S,) per-series scores; NaN if none is finite."""
    finite = values[np.isfinite(values)]
    return float(np.mean(finite)) if finite.size else float("nan")


def undefined_count(values: np.ndarray) -> int:
    """How many of (S,) per-series scores ``mean_over_series`` leaves out (NaN or infinite)."""
    return int(np.count_nonzero(~np.isfinite(values)))


def _bootstrap_means(d: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot,): the means of d (n,) resampled with replacement, drawn in chunks."""
    n = d.shape[0]
    per_chunk = max(1, _BOOT_CHUNK // n)
    means = np.empty(n_boot, np.float64)
    for start in range(0, n_boot, per_chunk):
        stop = min(start + per_chunk, n_boot)
        means[start:stop] = d[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return means


def bootstrap_difference(
    a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """(mean, low, high) of a - b over the series, a and b (S,): two models' scores on the same
    series. Only the series where both are finite count. low, high: the percentile bootstrap
    interval at ``level``, series resampled with replacement (``numpy.random.default_rng(seed)``).
    All NaN when no series counts."""
    if a.shape != b.shape or a.ndim != 1:
        raise ConfigError("b", f"must be (S,) like `a` {a.shape}, got {b.shape}")
    if n_boot < 1:
        raise ConfigError("n_boot", f"must be at least 1, got {n_boot}")
    if not 0 < level < 1:
        raise ConfigError("level", f"must lie strictly between 0 and 1, got {level}")
    both = np.isfinite(a) & np.isfinite(b)
    if not both.any():
        return float("nan"), float("nan"), float("nan")
    d = np.asarray(a[both], np.float64) - np.asarray(b[both], np.float64)
    means = _bootstrap_means(d, n_boot, np.random.default_rng(seed))
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(np.mean(d)), float(low), float(high)


def best_model(mean_mase: Mapping[str, float]) -> str:
    """The name with the lowest finite mean MASE; on a tie, the first in the mapping's order."""
    finite = [(score, i, name) for i, (name, score) in enumerate(mean_mase.items()) if np.isfinite(score)]
    if not finite:
        raise ConfigError("mean_mase", "no model has a finite mean MASE")
    return min(finite)[2]
