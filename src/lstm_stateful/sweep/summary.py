"""A sweep's records summarised per (tsteps, lahead, mode): the rows of ``summary.csv``
and the phase-diagram grids. Pure NumPy; no JAX, no files."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from lstm_stateful.core import evaluate
from lstm_stateful.core.config import MODES
from lstm_stateful.sweep.grid import SweepSpec
from lstm_stateful.sweep.store import Record

# Resamples behind each 95% interval; a fixed seed keeps the summary reproducible.
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


@dataclasses.dataclass(frozen=True)
class SummaryRow:
    """One (tsteps, lahead, mode) over its seeds; diverged seeds (NaN) are counted, not averaged.

    *_ci95_*: 95% bootstrap interval (percentile) of the mean over the finite seeds; NaN
    with fewer than two. floor: the lowest MSE this model can reach (window floor if
    stateless, else 0). banner_held: whether the example's rule (stateless converges iff
    lahead >= tsteps) matched this model's verdict; only defined for the stateless model,
    and None where every stateless seed diverged (nothing to check the rule against).
    """

    tsteps: int
    lahead: int
    mode: str
    n_seeds: int
    n_diverged: int
    converged_fraction: float
    r2_mean: float
    r2_median: float
    r2_ci95_low: float
    r2_ci95_high: float
    mse_mean: float
    mse_median: float
    mse_ci95_low: float
    mse_ci95_high: float
    floor: float
    window_floor: float
    zero_floor: float
    verdict: str
    banner_held: bool | None


def bootstrap_ci(values: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """95% percentile interval of the mean of ``values`` (finite ones), by resampling."""
    finite = values[np.isfinite(values)]
    if finite.size < 2:
        return float("nan"), float("nan")
    means = rng.choice(finite, size=(BOOTSTRAP_RESAMPLES, finite.size)).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def _banner_held(tsteps: int, lahead: int, mode: str, verdict: str) -> bool | None:
    """As ``evaluate.banner_held`` for a sweep's point: the rule speaks of the stateless model
    only, and a point whose every stateless seed diverged says nothing about it (diverging
    is neither converging nor the window's limit, whatever the rule predicted)."""
    if mode != "stateless" or verdict == "diverged":
        return None
    return evaluate.rule_held(tsteps, lahead, verdict)


def _finite_mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _row(tsteps: int, lahead: int, mode: str, records: list[Record]) -> SummaryRow:
    mse = np.array([r.mse for r in records])
    r2 = np.array([r.r2 for r in records])
    scores = evaluate.Scores(mse=mse, r2=r2, converged=np.array([r.converged for r in records]))
    first = records[0]
    verdict = evaluate.verdict(scores, first.floor)
    rng = np.random.default_rng([BOOTSTRAP_SEED, tsteps, lahead, MODES.index(mode)])
    r2_ci, mse_ci = bootstrap_ci(r2, rng), bootstrap_ci(mse, rng)
    return SummaryRow(
        tsteps=tsteps, lahead=lahead, mode=mode, n_seeds=len(records), n_diverged=int(np.sum(~np.isfinite(mse))),
        converged_fraction=float(np.mean(scores.converged)),
        r2_mean=_finite_mean(r2), r2_median=evaluate.finite_median(r2), r2_ci95_low=r2_ci[0], r2_ci95_high=r2_ci[1],
        mse_mean=_finite_mean(mse), mse_median=evaluate.finite_median(mse), mse_ci95_low=mse_ci[0],
        mse_ci95_high=mse_ci[1], floor=first.floor, window_floor=first.window_floor, zero_floor=first.zero_floor,
        verdict=verdict,
        banner_held=_banner_held(tsteps, lahead, mode, verdict),
    )  # fmt: skip


def summarize(records: Iterable[Record]) -> list[SummaryRow]:
    """One row per (tsteps, lahead, mode) present, sorted by lahead, tsteps, mode."""
    by_key: dict[tuple[int, int, str], list[Record]] = defaultdict(list)
    for r in records:
        by_key[(r.tsteps, r.lahead, r.mode)].append(r)
    keys = sorted(by_key, key=lambda k: (k[1], k[0], MODES.index(k[2])))
    return [_row(*key, sorted(by_key[key], key=lambda r: r.seed_index)) for key in keys]


def phase_grid(rows: Iterable[SummaryRow], spec: SweepSpec, mode: str, field: str) -> np.ndarray:
    """(len(spec.lahead), len(spec.tsteps)) of ``field`` for ``mode``; NaN where not trained yet."""
    grid = np.full((len(spec.lahead), len(spec.tsteps)), np.nan)
    for row in rows:
        if row.mode == mode and row.lahead in spec.lahead and row.tsteps in spec.tsteps:
            grid[spec.lahead.index(row.lahead), spec.tsteps.index(row.tsteps)] = getattr(row, field)
    return grid
