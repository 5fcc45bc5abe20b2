"""Scores, floors and verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_stateful.core import data, evaluate


def test_theoretical_floors() -> None:
    f = evaluate.floors(data.DataConfig(tsteps=4, lahead=1), data.Series(np.zeros((8, 1)), np.zeros(8)))
    var_x = 0.1**2 / 3
    assert f.zero_theory == pytest.approx(var_x / 4)
    assert f.window_theory == pytest.approx(var_x * 3 / 16)
    wide = evaluate.floors(data.DataConfig(tsteps=2, lahead=3), data.Series(np.zeros((4, 3)), np.zeros(4)))
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
