"""Scores, floors and verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_stateful.core import data, evaluate


def _zeros(n: int, lahead: int) -> data.Series:
    """A series of n rows of zeros (inputs (n, lahead, 1))."""
    return data.Series(np.zeros((n, lahead, 1)), *(np.zeros(n) for _ in range(4)))


def test_theoretical_floors() -> None:
    f = evaluate.floors(data.DataConfig(tsteps=4, lahead=1), _zeros(8, 1))
    var_x = 0.1**2 / 3
    assert f.zero_theory == pytest.approx(var_x / 4)
    assert f.window_theory == pytest.approx(var_x * 3 / 16)
    wide = evaluate.floors(data.DataConfig(tsteps=2, lahead=3), _zeros(4, 3))
    assert wide.window_theory == 0


@pytest.mark.parametrize(("tsteps", "lahead"), [(2, 1), (4, 2), (3, 3), (2, 5)])
def test_test_set_floors_track_theory(tsteps: int, lahead: int) -> None:
    cfg = data.DataConfig(input_len=20000, tsteps=tsteps, lahead=lahead)
    test = data.test_part(data.make_series(cfg), cfg)
    assert test.inputs.shape[0] == data.split_sizes(cfg)[1]
    f = evaluate.floors(cfg, test)
    assert f.zero_test == pytest.approx(f.zero_theory, rel=0.1)
    assert f.window_test == pytest.approx(f.window_theory, rel=0.1, abs=1e-12)
    # The ideal stateless predictor is exactly the seen part of the average.
    if lahead >= tsteps:
        assert f.window_test < 1e-30


def test_score_r2_and_skip() -> None:
    y = np.array([[1.0], [2.0], [3.0], [4.0]], np.float32)
    preds = np.stack([y, y + 1, np.full_like(y, np.nan)])
    s = evaluate.score(y, preds)
    np.testing.assert_allclose(s.mse[:2], [0.0, 1.0])
    np.testing.assert_allclose(s.r2[:2], [1.0, 1 - 1 / 1.25])
    assert s.converged.tolist() == [True, False, False]
    skipped = evaluate.score(y, np.stack([np.r_[[[9.0]], y[1:]]]), scored=np.array([False, True, True, True]))
    assert skipped.mse[0] == 0.0


def test_no_score_on_no_point() -> None:
    y = np.zeros((4, 1), np.float32)
    with pytest.raises(ValueError, match="no test point is scored"):
        evaluate.score(y, y[None], scored=np.zeros(4, bool))


def test_scored_points_per_layout_and_task() -> None:
    # Stateful starts each batch slot from zeros: tsteps-1 points per slot go unscored.
    # Interleaved at batch 4, slot i runs through rows i, i+4, i+8: rows 0-7 are warm-up.
    inter = data.DataConfig(tsteps=3, batch_size=4)
    assert evaluate.scored_points("stateful", inter, 12).tolist() == [False] * 8 + [True] * 4
    single = data.DataConfig(tsteps=3, batch_size=1)
    assert evaluate.scored_points("stateful", single, 12).tolist() == [False] * 2 + [True] * 10
    assert evaluate.scored_points("stateless", inter, 12).all()
    contiguous = data.DataConfig(tsteps=3, batch_size=4, layout="contiguous")
    expected = [False, False, True] * 4  # 4 streams of 3 points each
    assert evaluate.scored_points("stateful", contiguous, 12).tolist() == expected
    forecast = data.DataConfig(tsteps=1, task="forecast", horizon=2)
    assert evaluate.scored_points("stateful", forecast, 12).all()


def test_floors_only_where_they_are_floors() -> None:
    cfg = data.DataConfig(tsteps=1, task="forecast")
    test = data.test_part(data.make_series(cfg), cfg)
    f = evaluate.floors(cfg, test)
    assert np.isnan(f.window_test) and np.isnan(f.window_theory) and np.isnan(f.zero_theory)
    assert f.zero_test == np.mean(test.target**2)
    assert evaluate.banner(cfg) is None and evaluate.banner_held(cfg, "converged") is None


def test_predicting_zero_is_scored_in_the_datas_units() -> None:
    # Standardized: the model's units are not the data's; every MSE is in the data's.
    x = 100 + np.cumsum(np.random.default_rng(0).normal(size=300))
    cfg = data.DataConfig(input_len=298, tsteps=1, lahead=2, task="forecast", file="f.csv", input_cols=("x",))
    cfg = data.DataConfig(**{**cfg.__dict__, "standardize": True})
    test = data.test_part(data.make_series(cfg, data.Columns(x[:, None])), cfg)
    f = evaluate.floors(cfg, test)
    assert f.zero_test == np.mean(test.raw_target**2) and f.zero_test > 5000  # prices near 100, squared


def test_finite_median_leaves_out_diverged_seeds() -> None:
    assert evaluate.finite_median(np.array([np.nan, 1.0, 3.0, np.inf])) == 2.0
    assert np.isnan(evaluate.finite_median(np.array([np.nan])))


def test_median_seed_ignores_nan() -> None:
    s = evaluate.Scores(np.array([3.0, np.nan, 1.0, 2.0]), np.zeros(4), np.zeros(4, bool))
    assert evaluate.median_seed(s) == 3  # MSEs 1, 2, 3, nan: lower middle is 2.0 at index 3


def test_verdicts_and_banner() -> None:
    good = evaluate.Scores(np.array([1e-5]), np.array([0.99]), np.array([True]))
    floor = evaluate.Scores(np.array([9e-4]), np.array([0.4]), np.array([False]))
    assert evaluate.verdict(good, 0.0) == "converged"
    assert evaluate.verdict(floor, 8e-4) == "at window floor"
    assert evaluate.verdict(floor, 0.0) == "not converged"
    blown = evaluate.Scores(np.array([np.nan, np.inf]), np.array([np.nan, -np.inf]), np.array([False, False]))
    assert blown.diverged.tolist() == [True, True] and evaluate.verdict(blown, 8e-4) == "diverged"
    mixed = evaluate.Scores(np.array([9e-4, np.nan]), np.array([0.4, np.nan]), np.array([False, False]))
    assert mixed.diverged.tolist() == [False, True] and evaluate.verdict(mixed, 8e-4) == "at window floor"
    cfg = data.DataConfig(tsteps=2, lahead=1)
    assert evaluate.banner(cfg) == "STATELESS LSTM WILL NOT CONVERGE"
    assert evaluate.banner_held(cfg, "at window floor")
    assert not evaluate.banner_held(cfg, "converged")
    assert evaluate.banner_held(cfg, "diverged") is None
    assert evaluate.banner(data.DataConfig(tsteps=2, lahead=2)) == "STATELESS LSTM WILL ALSO CONVERGE"


def test_floors_are_not_known_under_a_transform() -> None:
    # The window floor is derived for the raw moving average; the model learns differences here.
    cfg = data.DataConfig(tsteps=3, lahead=1, transform="diff")
    f = evaluate.floors(cfg, data.test_part(data.make_series(cfg), cfg))
    assert np.isnan([f.zero_theory, f.window_theory, f.window_test]).all()


def test_skill_per_seed() -> None:
    mse = np.array([1.0, 2.0, 4.0, np.nan])
    np.testing.assert_array_equal(evaluate.skill(mse, 2.0), [0.5, 0.0, -1.0, np.nan])
    # An exact baseline: any error is infinitely worse, none is a tie.
    np.testing.assert_array_equal(evaluate.skill(np.array([0.0, 1e-9]), 0.0), [0.0, -np.inf])


def test_best_baseline_is_the_lowest_finite_mse_first_named_on_a_tie() -> None:
    assert evaluate.best_baseline({"mean": 3.0, "persistence": 1.0, "linear": 2.0}) == ("persistence", 1.0)
    assert evaluate.best_baseline({"mean": np.nan, "persistence": 2.0, "linear": 2.0}) == ("persistence", 2.0)
    with pytest.raises(ValueError, match="no baseline"):
        evaluate.best_baseline({"mean": np.nan})


def _scores(mse: list[float]) -> evaluate.Scores:
    a = np.array(mse)
    return evaluate.Scores(a, 1 - a, np.zeros(a.shape, bool))


BASELINES = {"mean": 4.0, "persistence": 2.0, "linear": 2.5}


def test_skill_summary_median_and_range_over_seeds_that_trained() -> None:
    s = evaluate.skill_summary(_scores([1.0, 1.5, np.nan, 0.5, 1.9]), BASELINES)
    assert (s.baseline, s.baseline_mse) == ("persistence", 2.0)
    np.testing.assert_allclose(s.per_seed, [0.5, 0.25, np.nan, 0.75, 0.05])
    # Median and range over the four seeds that did not diverge: 0.05, 0.25, 0.5, 0.75.
    assert (s.median, s.low, s.high) == pytest.approx((0.375, 0.05, 0.75))
    assert evaluate.baseline_verdict(s) == "beats baselines"


@pytest.mark.parametrize(
    ("mse", "verdict"),
    [
        ([1.0, 1.0, 2.0], "no better than persistence"),  # one seed only ties: the interval reaches 0
        ([1.0, 3.0, 0.5], "no better than persistence"),
        ([3.0, 3.5], "no better than persistence"),
        ([np.nan, np.inf], "diverged"),
    ],
)
def test_baseline_verdicts(mse: list[float], verdict: str) -> None:
    assert evaluate.baseline_verdict(evaluate.skill_summary(_scores(mse), BASELINES)) == verdict


def test_a_model_on_a_file_is_judged_against_the_baselines_on_generated_data_against_its_floor() -> None:
    scores = evaluate.Scores(np.array([9e-4]), np.array([0.4]), np.array([False]))
    skill = evaluate.skill_summary(scores, {"mean": 1e-3, "linear": 8e-4})
    floors = evaluate.Floors(1.0, 8e-4, 1.0, 8e-4)
    generated = data.DataConfig()
    on_file = data.DataConfig(file="x.csv", input_cols=("x",), tsteps=1, task="forecast")
    assert evaluate.model_verdict(generated, scores, floors, "stateless", skill) == "at window floor"
    assert evaluate.model_verdict(on_file, scores, floors, "stateless", skill) == "no better than linear"


def test_against_an_exact_baseline_no_model_is_better() -> None:
    s = evaluate.skill_summary(_scores([1e-6, 2e-6, np.nan]), {"mean": 1.0, "seasonal": 0.0})
    assert (s.baseline, s.median, s.low, s.high) == ("seasonal", -np.inf, -np.inf, -np.inf)
    assert evaluate.baseline_verdict(s) == "no better than seasonal"
