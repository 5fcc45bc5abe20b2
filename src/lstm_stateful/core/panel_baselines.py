"""Baselines of a panel: each series' next H values forecast from its own history alone,
the forecasts a fleet (one model over many series) must beat (``core.panel_scores``).

Simple ones, in numpy (``simple_forecasts``), from a history y_1..y_T (T = n points):

- naive: y_T;
- seasonal-naive (season m): y_{T+h-m*ceil(h/m)}, the last season repeated; naive for a
  history shorter than m;
- drift: y_T + h (y_T - y_1) / (T - 1), the line through the first and last points (naive
  for a single point);
- linear: the least-squares line through the last ``window`` points (all of them if fewer),
  extrapolated (naive for a single point).

Statistical ones (``stats_forecasts``, the ``stats`` extra): statsforecast's AutoETS,
AutoTheta and AutoARIMA with ``season_length`` = the season. A model that fails on a series
(raises, or forecasts a value that is not finite) gives that series the seasonal-naive
forecast above instead: statsforecast's ``fallback_model`` (its SeasonalNaive) catches the
failures (statsforecast 2.0 refuses "tiny datasets": AutoETS below 6 or so points, AutoTheta
below 4), and the non-finite values its SeasonalNaive leaves on a history shorter than the
season are replaced with ours. Every warning raised inside statsforecast is ignored, as by
default: the forecasts do not depend on the caller's warning filters (warnings made errors
would otherwise send more series to the fallback).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from lstm_stateful.core.errors import ConfigError, foreign

SIMPLE_BASELINES = ("naive", "seasonal-naive", "drift", "linear")
STATS_BASELINES = ("ets", "theta", "arima")

STATS_MISSING = "AutoETS, AutoTheta and AutoARIMA need the stats extra: pip install 'lstm-stateful[stats]'"

# Each statistical baseline: statsforecast's model class, with season_length.
_STATS_MODELS = {"ets": "AutoETS", "theta": "AutoTheta", "arima": "AutoARIMA"}
# The packages of the stats extra: one of them missing means the extra is not installed.
_EXTRA = ("pandas", "statsforecast")


def _check(histories: Sequence[np.ndarray], horizon: int, season: int) -> None:
    """ConfigError unless every history is 1-D, non-empty and finite, horizon and season >= 1."""
    if horizon < 1:
        raise ConfigError("horizon", f"must be at least 1, got {horizon}")
    if season < 1:
        raise ConfigError("season", f"must be at least 1, got {season}")
    if not len(histories):
        raise ConfigError("histories", "no series to forecast")
    for i, history in enumerate(histories):
        if np.ndim(history) != 1 or np.shape(history)[0] == 0:
            raise ConfigError("histories", f"series {i} must be 1-D and non-empty, got shape {np.shape(history)}")
        if not np.isfinite(history).all():
            raise ConfigError("histories", f"series {i} holds a value that is not finite")


def _tails(histories: Sequence[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
    """(tails, lengths): tails (S, width) float64, each history's last ``width`` values,
    right-aligned (the newest in the last column), NaN left of a shorter history; lengths (S,)."""
    lengths = np.array([np.shape(h)[0] for h in histories], np.int64)
    flat = np.concatenate([np.asarray(h, np.float64) for h in histories])
    ends = np.cumsum(lengths)
    positions = ends[:, None] - width + np.arange(width)
    inside = positions >= (ends - lengths)[:, None]
    return np.where(inside, flat[np.where(inside, positions, 0)], np.nan), lengths


def _seasonal_naive(tails: np.ndarray, lengths: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """(S, H): the last value ``season`` steps back, h - m*ceil(h/m) from the newest (naive,
    m = 1, for a history shorter than the season). tails: (S, >= season), right-aligned."""
    m = np.where(lengths >= season, season, 1)[:, None]
    h = np.arange(1, horizon + 1)[None, :]
    back = h - m * -(-h // m)  # in [1 - m, 0]
    return np.take_along_axis(tails, tails.shape[1] - 1 + back, axis=1)


def _linear(tails: np.ndarray, lengths: np.ndarray, horizon: int, window: int) -> np.ndarray:
    """(S, H): the least-squares line through each history's last min(window, n) points,
    extrapolated; flat at the last value for a single point. tails: (S, >= window)."""
    width = tails.shape[1]
    x = np.arange(width, dtype=np.float64) - (width - 1)  # the newest point at x = 0
    used = x > -np.minimum(lengths, window)[:, None]
    count = used.sum(axis=1)
    x_mean = np.where(used, x, 0.0).sum(axis=1) / count
    y_mean = np.where(used, tails, 0.0).sum(axis=1) / count
    dx = np.where(used, x - x_mean[:, None], 0.0)
    dy = np.where(used, tails - y_mean[:, None], 0.0)
    sxx = (dx**2).sum(axis=1)
    slope = np.where(sxx > 0, (dx * dy).sum(axis=1) / np.where(sxx > 0, sxx, 1.0), 0.0)
    h = np.arange(1, horizon + 1, dtype=np.float64)[None, :]
    return y_mean[:, None] + slope[:, None] * (h - x_mean[:, None])


def simple_forecasts(histories: Sequence[np.ndarray], horizon: int, season: int, window: int) -> dict[str, np.ndarray]:
    """Each of ``SIMPLE_BASELINES``: name -> (S, H) float64, H = horizon, the forecasts of the
    S series from their histories (n_i,) (see the module's docstring). window >= 2: the points
    the linear baseline fits. Vectorised: only the last max(season, window) points are read."""
    _check(histories, horizon, season)
    if window < 2:
        raise ConfigError("window", f"must be at least 2 (a line needs two points), got {window}")
    tails, lengths = _tails(histories, max(season, window))
    last = tails[:, -1:]
    first = np.array([np.asarray(h, np.float64)[0] for h in histories])[:, None]
    h = np.arange(1, horizon + 1, dtype=np.float64)[None, :]
    slope = (last - first) / np.maximum(lengths - 1, 1)[:, None]
    return {
        "naive": np.repeat(last, horizon, axis=1),
        "seasonal-naive": _seasonal_naive(tails, lengths, horizon, season),
        "drift": last + h * slope,
        "linear": _linear(tails, lengths, horizon, window),
    }


def _import_stats() -> tuple[ModuleType, ModuleType, ModuleType] | str:
    """(pandas, statsforecast, statsforecast.models), or the one line saying why not: the
    extra is missing, or it is there but importing it failed (a dependency of its own missing
    or broken)."""
    try:
        pd, sf = importlib.import_module("pandas"), importlib.import_module("statsforecast")
        return pd, sf, importlib.import_module("statsforecast.models")
    except Exception as error:
        missing = isinstance(error, ModuleNotFoundError) and (error.name or "").split(".")[0] in _EXTRA
        if missing:
            return STATS_MISSING
        return (
            f"{STATS_MISSING} (it is installed, but importing it failed: {type(error).__name__}: {foreign(str(error))})"
        )


def stats_available() -> str | None:
    """None if the statistical baselines can run, else the one line saying why not."""
    found = _import_stats()
    return found if isinstance(found, str) else None


def _long_frame(pd: Any, histories: Sequence[np.ndarray]) -> Any:
    """statsforecast's input: a long frame (unique_id, ds, y), unique_id the series' index,
    zero-padded, ds 0..n-1 within each series."""
    width = len(str(len(histories) - 1))
    lengths = [np.shape(h)[0] for h in histories]
    ids = np.repeat([f"{i:0{width}d}" for i in range(len(histories))], lengths)
    ds = np.concatenate([np.arange(n) for n in lengths])
    return pd.DataFrame({"unique_id": ids, "ds": ds, "y": np.concatenate(histories).astype(np.float64)})


def _unpack(out: Any, columns: dict[str, str], lengths: np.ndarray, horizon: int) -> dict[str, np.ndarray]:
    """name -> (S, H): statsforecast's output rows mapped back by unique_id and ds (never by
    their order); a cell it left out stays NaN."""
    frame = out.reset_index() if "unique_id" not in out.columns else out
    series = np.asarray(frame["unique_id"].to_numpy(), dtype=str).astype(np.int64)
    step = np.asarray(frame["ds"].to_numpy(), np.int64) - lengths[series]
    inside = (step >= 0) & (step < horizon)
    result = {}
    for name, column in columns.items():
        values = np.full((lengths.shape[0], horizon), np.nan)
        values[series[inside], step[inside]] = np.asarray(frame[column].to_numpy(), np.float64)[inside]
        result[name] = values
    return result


def stats_forecasts(
    histories: Sequence[np.ndarray],
    horizon: int,
    season: int,
    models: Sequence[str] = STATS_BASELINES,
    n_jobs: int = 1,
) -> dict[str, np.ndarray]:
    """Each of ``models`` (of ``STATS_BASELINES``): name -> (S, H) float64, the forecasts of the
    S series from their histories (n_i,), in the input's order, by statsforecast's AutoETS,
    AutoTheta, AutoARIMA with ``season_length=season`` (n_jobs processes). A series a model
    fails on gets the seasonal-naive forecast (the module's docstring)."""
    _check(histories, horizon, season)
    unknown = [m for m in models if m not in _STATS_MODELS]
    if unknown or not models:
        raise ConfigError("models", f"must be some of {', '.join(STATS_BASELINES)}, got {', '.join(models) or 'none'}")
    found = _import_stats()
    if isinstance(found, str):
        raise ConfigError("baselines", found)
    pd, statsforecast, sf_models = found
    estimators = [getattr(sf_models, _STATS_MODELS[m])(season_length=season, alias=m) for m in models]
    fallback = sf_models.SeasonalNaive(season_length=season)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = statsforecast.StatsForecast(models=estimators, freq=1, n_jobs=n_jobs, fallback_model=fallback)
        out = engine.forecast(df=_long_frame(pd, histories), h=horizon)
    lengths = np.array([np.shape(h)[0] for h in histories], np.int64)
    result = _unpack(out, {m: m for m in models}, lengths, horizon)
    tails, _ = _tails(histories, season)
    ours = _seasonal_naive(tails, lengths, horizon, season)
    for values in result.values():
        failed = ~np.isfinite(values).all(axis=1)
        values[failed] = ours[failed]
    return result
