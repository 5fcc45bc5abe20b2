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


def test_bootstrap_interval_brackets_the_mean_and_needs_two_values() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    low, high = bootstrap_ci(values, np.random.default_rng(0))
    assert low < values.mean() < high
    assert values.min() <= low and high <= values.max()
    assert all(math.isnan(v) for v in bootstrap_ci(np.array([1.0, np.nan]), np.random.default_rng(0)))


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
