"""Summary rows of a sweep: counts, medians, intervals, the rule's verdict, the grid."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from lstm_stateful.core.config import DataConfig, ExperimentConfig
from lstm_stateful.sweep.grid import Point, SweepSpec, parse_grid, point_key
from lstm_stateful.sweep.store import Record
from lstm_stateful.sweep.summary import bootstrap_ci, phase_grid, seed_scores, summarize

SPEC = SweepSpec.ranges((1, 2, 4), (1, 3))


def _key(tsteps: int, lahead: int, spec: SweepSpec = SPEC) -> str:
    return point_key(spec.config(Point((("tsteps", tsteps), ("lahead", lahead)))))


def _record(tsteps: int, lahead: int, mode: str, seed: int, mse: float, var: float = 1e-3) -> Record:
    return Record(
        config_hash=_key(tsteps, lahead), seed_index=seed, mode=mode, tsteps=tsteps, lahead=lahead, config="{}",
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
    stateful, stateless = summarize(SPEC, records)
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
    (row,) = summarize(SPEC, diverged)
    assert (row.verdict, row.n_diverged, row.banner_held) == ("diverged", 3, None)
    (row,) = summarize(SPEC, one_left)  # one finite seed is enough to judge the point
    assert (row.verdict, row.banner_held) == ("not converged", True)
    (row,) = summarize(SPEC, [_record(1, 1, "stateless", s, math.nan) for s in range(3)])
    assert (row.verdict, row.banner_held) == ("diverged", None)


def test_summary_is_reproducible() -> None:
    records = [_record(1, 1, "stateful", s, 1e-5 * (s + 1)) for s in range(5)]
    assert summarize(SPEC, records) == summarize(SPEC, list(reversed(records)))


def test_phase_grid_places_rows_and_leaves_missing_cells_nan() -> None:
    spec = SPEC
    rows = summarize(spec, [_record(4, 3, "stateless", 0, 1e-4), _record(1, 1, "stateless", 0, 5e-4)])
    grid = phase_grid(rows, spec, "stateless", "r2_median")
    assert grid.shape == (2, 3)
    assert grid[1, 2] == rows[1].r2_median and grid[0, 0] == rows[0].r2_median
    assert np.isnan(grid).sum() == 4
    assert np.isnan(phase_grid(rows, spec, "stateful", "r2_median")).all()


def test_rows_of_a_file_grid_hold_its_settings_skill_and_baseline_verdict() -> None:
    base = ExperimentConfig(data=DataConfig(input_len=100, tsteps=1, file="x.csv", input_cols=("x",)))
    spec = SweepSpec(parse_grid(["lr=1e-3,1e-2"]), base)
    baselines = (("mean", 2e-3), ("persistence", 1e-3), ("linear", 1.5e-3))
    mses = {1e-3: [5e-4, 8e-4, 1.2e-3, math.nan], 1e-2: [5e-4, 6e-4, 9e-4, 7e-4]}
    records = [
        dataclasses.replace(
            _record(1, 1, "stateful", s, mse), config_hash=point_key(spec.config(point)), baselines=baselines
        )
        for point in spec.points
        for s, mse in enumerate(mses[float(point["lr"])])
    ]
    low, high = summarize(spec, records)
    assert (low.settings, high.settings) == ((("lr", 1e-3),), (("lr", 1e-2),))
    assert (low.best_baseline, low.best_baseline_mse) == ("persistence", 1e-3)
    # skills 1 - mse / 1e-3: 0.5, 0.2, -0.2 (the diverged seed left out), and 0.5, 0.4, 0.1, 0.3
    assert np.allclose([low.skill_median, low.skill_low, low.skill_high], [0.2, -0.2, 0.5])
    assert np.allclose([high.skill_median, high.skill_low, high.skill_high], [0.35, 0.1, 0.5])
    assert (low.verdict, high.verdict) == ("no better than persistence", "beats baselines")
    assert low.banner_held is None and low.n_diverged == 1
    scores = seed_scores(spec, records)
    assert [p["lr"] for p, _, _ in scores] == [1e-3, 1e-2]
    np.testing.assert_allclose(scores[0][2], [0.5, 0.2, -0.2, np.nan])


def test_on_the_generated_series_the_score_is_r2_and_the_verdict_the_floors() -> None:
    records = [dataclasses.replace(_record(2, 1, "stateful", s, 1e-5), baselines=(("mean", 2e-3),)) for s in range(2)]
    (row,) = summarize(SPEC, records)
    assert row.verdict == "converged" and math.isclose(row.skill_median, 0.995)  # the skill is shown too
    ((_, _, r2),) = seed_scores(SPEC, records)
    np.testing.assert_array_equal(r2, [r.r2 for r in records])
