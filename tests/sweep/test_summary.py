"""Summary rows of a sweep: counts, medians, intervals, the rule's verdict, the grid."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from lstm_stateful.sweep.grid import SweepSpec
from lstm_stateful.sweep.store import Record
from lstm_stateful.sweep.summary import bootstrap_ci, phase_grid, summarize


def _record(tsteps: int, lahead: int, mode: str, seed: int, mse: float, var: float = 1e-3) -> Record:
    return Record(
        config_hash=f"{tsteps}-{lahead}", seed_index=seed, mode=mode, tsteps=tsteps, lahead=lahead, config="{}",
        mse=mse, r2=1 - mse / var, converged=bool(1 - mse / var >= 0.9), floor=0.0, window_floor=4e-4,
        zero_floor=var, train_loss=(mse,), val_loss=(mse,), group_s=1.0,
    )  # fmt: skip


# Coverage check: for n normal values, the percentile interval of the mean covers the true
# mean about as often as a z interval with the biased sd, P(|t_19| < 1.96 sqrt(19/20)) = 0.929
# (the percentile bootstrap's known under-coverage at small n). 1,000 trials give a standard
# error of 0.008 on that rate, so the bounds below sit about 4 standard errors away; a 90%
# interval (0.875) or a 99% one (0.98) falls outside them.
COVERAGE_N, COVERAGE_TRIALS, TRUE_MEAN = 20, 1_000, 3.0


def test_bootstrap_interval_covers_the_true_mean_about_95_percent_of_the_time() -> None:
    samples = np.random.default_rng(1).normal(TRUE_MEAN, 2.0, size=(COVERAGE_TRIALS, COVERAGE_N))
    rng = np.random.default_rng(2)
    intervals = np.array([bootstrap_ci(sample, rng) for sample in samples])
    coverage = np.mean((intervals[:, 0] <= TRUE_MEAN) & (intervals[:, 1] >= TRUE_MEAN))
    assert 0.90 <= coverage <= 0.96, coverage


def test_bootstrap_interval_needs_two_finite_values() -> None:
    assert all(math.isnan(v) for v in bootstrap_ci(np.array([1.0, np.nan]), np.random.default_rng(0)))
    low, high = bootstrap_ci(np.array([1.0, np.nan, np.inf, 3.0]), np.random.default_rng(0))
    assert (low, high) == (1.0, 3.0)  # two values: a quarter of the resampled means sit on each


def test_summary_counts_diverged_and_reports_medians() -> None:
    mses = [1e-5, 2e-5, 3e-5, math.nan]
    records = [_record(2, 1, "stateful", s, m) for s, m in enumerate(mses)]
    records += [dataclasses.replace(r, mode="stateless", mse=8e-4, r2=0.2, converged=False) for r in records]
    stateful, stateless = summarize(records)
    assert (stateful.mode, stateful.n_seeds, stateful.n_diverged) == ("stateful", 4, 1)
    assert stateful.mse_median == 2e-5 and math.isclose(stateful.mse_mean, 2e-5)
    assert stateful.converged_fraction == 0.75 and stateful.verdict == "converged"
    assert stateful.banner_held is None
    # stateless at tsteps 2 > lahead 1: the example says it will not converge, and it did not
    assert stateless.verdict == "not converged" and stateless.banner_held is True


def test_rule_cannot_be_checked_where_every_stateless_seed_diverged() -> None:
    # tsteps 2 > lahead 1: the rule says "will not converge"; diverging is not evidence for it
    diverged = [_record(2, 1, "stateless", s, math.nan) for s in range(3)]
    one_left = [*diverged[:2], _record(2, 1, "stateless", 2, 8e-4)]
    (row,) = summarize(diverged)
    assert (row.verdict, row.n_diverged, row.banner_held) == ("diverged", 3, None)
    (row,) = summarize(one_left)  # one finite seed is enough to judge the point
    assert (row.verdict, row.banner_held) == ("not converged", True)
    (row,) = summarize([_record(1, 1, "stateless", s, math.nan) for s in range(3)])
    assert (row.verdict, row.banner_held) == ("diverged", None)


def test_summary_is_reproducible() -> None:
    records = [_record(1, 1, "stateful", s, 1e-5 * (s + 1)) for s in range(5)]
    assert summarize(records) == summarize(list(reversed(records)))


def test_phase_grid_places_rows_and_leaves_missing_cells_nan() -> None:
    spec = SweepSpec((1, 2, 4), (1, 3))
    rows = summarize([_record(4, 3, "stateless", 0, 1e-4), _record(1, 1, "stateless", 0, 5e-4)])
    grid = phase_grid(rows, spec, "stateless", "r2_median")
    assert grid.shape == (2, 3)
    assert grid[1, 2] == rows[1].r2_median and grid[0, 0] == rows[0].r2_median
    assert np.isnan(grid).sum() == 4
    assert np.isnan(phase_grid(rows, spec, "stateful", "r2_median")).all()
