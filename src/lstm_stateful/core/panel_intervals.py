"""Prediction intervals for a panel's forecasts by split conformal prediction, and their scores.

A point forecast has no spread of its own; its errors on data it never trained on do. The
protocol holds such data: the validation part, the H values before the first test origin,
which no weight saw. Each series' error there, at forecast step j, divided by the series'
MASE scale (the in-sample seasonal naive error of its history), is a nonconformity score
that pools series of any size. For a level c (per cent), the half-width at step j is the
k-th smallest of the n series' scores, k = ceil((n + 1) c / 100): split conformal
prediction's finite-sample rule, which covers a further exchangeable series' step j with
probability at least c (and at most c + 1/(n + 1)). A test interval is the forecast plus
or minus that half-width times the series' scale at the test origin. Each horizon step has
its own half-width, so intervals widen as errors do.

Scores (per series, over its test windows and steps): coverage (the share of values inside),
the mean width and the mean scaled interval score (MSIS, the M4 competition's: width plus
2/alpha times any miss, over the MASE scale), and the coverage at each step over all series.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lstm_stateful.core.errors import ConfigError


def min_series(level: float) -> int:
    """Series the rule needs for ``level`` (per cent): the smallest n with ceil((n + 1) c) <= n."""
    c = level / 100
    return max(1, math.ceil(c / (1 - c) - 1e-9))


def check_enough(levels: Sequence[float], n_series: int) -> None:
    """One line if the panel has too few series for its highest level's rule."""
    top = max(levels)
    if n_series < (need := min_series(top)):
        problem = f"a {top:g}% interval needs the validation errors of at least {need} series (split conformal"
        raise ConfigError(
            "calibrate", f"{problem} prediction); the panel has {n_series}: give lower `level`s or more series"
        )


def conformal_widths(truth: np.ndarray, forecast: np.ndarray, scale: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """Half-widths in MASE-scale units (L, H): truth, forecast (S, H) the validation part and
    its forecasts; scale (S,) each series' MASE scale (NaN: a constant history, left out)."""
    scores = np.abs(truth - forecast) / scale[:, None]  # (S, H)
    widths = np.full((len(levels), truth.shape[1]), np.nan)
    for j in range(truth.shape[1]):
        s = np.sort(scores[np.isfinite(scores[:, j]), j])
        for i, level in enumerate(levels):
            k = math.ceil((len(s) + 1) * level / 100)
            widths[i, j] = s[k - 1] if 1 <= k <= len(s) else np.inf
    return widths


def bounds(forecast: np.ndarray, scale: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """(L, 2, S, K, H) lower and upper bounds: forecast (S, K, H); scale (S, K) each series'
    MASE scale at each test origin; widths (L, H)."""
    half = widths[:, None, None, :] * scale[None, :, :, None]  # (L, S, K, H)
    return np.stack([forecast[None] - half, forecast[None] + half], axis=1)


def scores(truth: np.ndarray, bounds_: np.ndarray, scale: np.ndarray, levels: Sequence[float]) -> dict[str, np.ndarray]:
    """Per series (S,), over its test windows and steps: ``coverage_<c>`` (share inside),
    ``width_<c>`` (mean width over the MASE scale) and ``msis_<c>`` (mean scaled interval
    score). truth (S, K, H); bounds_ (L, 2, S, K, H); scale (S, K)."""
    out = {}
    for i, level in enumerate(levels):
        lo, hi, alpha, tag = bounds_[i, 0], bounds_[i, 1], 1 - level / 100, f"{level:g}"
        s = scale[:, :, None]
        inside = (truth >= lo) & (truth <= hi)
        miss = np.maximum(lo - truth, 0) + np.maximum(truth - hi, 0)
        out[f"coverage_{tag}"] = inside.mean(axis=(1, 2))
        out[f"width_{tag}"] = np.mean((hi - lo) / s, axis=(1, 2))
        out[f"msis_{tag}"] = np.mean((hi - lo + 2 / alpha * miss) / s, axis=(1, 2))
    return out


def step_coverage(truth: np.ndarray, bounds_: np.ndarray) -> np.ndarray:
    """(L, H): each level's coverage at each forecast step, over every series and window."""
    inside = (truth[None] >= bounds_[:, 0]) & (truth[None] <= bounds_[:, 1])  # (L, S, K, H)
    return inside.mean(axis=(1, 2))


def level_names(levels: Sequence[float]) -> list[str]:
    """How a level is written in column and metric names: 80, 95, 99.5."""
    return [f"{level:g}" for level in levels]
