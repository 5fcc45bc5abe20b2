"""The protocol end to end through the Python API: callbacks, shapes, determinism, scores
in the data's units, baselines, skills and verdicts."""

from __future__ import annotations

from pathlib import Path

import matplotlib.cbook
import numpy as np
import pandas as pd
import pytest

from lstm_stateful.core import baselines, evaluate
from lstm_stateful.core.config import DataConfig, ExperimentConfig, TrainConfig, experiment_config, split_sizes
from lstm_stateful.engine import experiment
from lstm_stateful.io import series_file

CFG = ExperimentConfig(data=DataConfig(input_len=120, tsteps=3, lahead=2, batch_size=2), train=TrainConfig(epochs=3))


def test_live_callbacks_report_every_epoch_of_both_models() -> None:
    calls, stages = [], []

    def on_epoch(index: object, stateful: object, train: object, val: object) -> None:
        calls.append((int(index), np.asarray(stateful), np.asarray(train), np.asarray(val)))

    result = experiment.run(CFG, on_epoch=on_epoch, on_stage=stages.append)
    assert stages == ["training"]
    # One program trains both models: each epoch reports every lane, stateful ones first.
    assert [i for i, _, _, _ in calls] == [0, 1, 2]
    for index, stateful, train, val in calls:
        np.testing.assert_array_equal(stateful, [True] * 5 + [False] * 5)
        for lanes, mode in ((slice(0, 5), "stateful"), (slice(5, 10), "stateless")):
            np.testing.assert_array_equal(train[lanes], result.models[mode].train_loss[:, index])
            np.testing.assert_array_equal(val[lanes], result.models[mode].val_loss[:, index])


def test_result_shapes_and_determinism() -> None:
    first, second = experiment.run(CFG), experiment.run(CFG)
    n_test = first.split.y_test.shape[0]
    for mode in ("stateful", "stateless"):
        a, b = first.models[mode], second.models[mode]
        assert a.predictions.shape == (5, n_test) and a.train_loss.shape == (5, 3)
        np.testing.assert_array_equal(a.predictions, b.predictions)
        np.testing.assert_array_equal(a.scores.mse, b.scores.mse)
        assert 0 <= a.median_seed < 5
    # One program for both models: they share its compile and training times.
    for a, b in (first.models.values(), second.models.values()):
        assert (a.compile_s, a.train_s) == (b.compile_s, b.train_s) and a.train_s > 0


def test_training_reports_compile_time_once() -> None:
    # A new shape compiles; the same shapes again reuse the program (nothing compiled).
    cfg = ExperimentConfig(data=DataConfig(input_len=97, batch_size=1), train=TrainConfig(epochs=1), seeds=1)
    _, split = experiment.prepare(cfg)
    first, second = experiment.train([cfg], [split]), experiment.train([cfg], [split])
    assert first.compile_s > 0.01 and second.compile_s == 0.0
    np.testing.assert_array_equal(first.predictions, second.predictions)


def test_scores_in_the_data_units_are_the_model_units_bit_for_bit_on_the_generated_series() -> None:
    # No transform, no scaling: mapping to the data's units changes no bit of a score (the
    # example's numbers stay as they were), and the baselines are scored on the same truth.
    result = experiment.run(CFG)
    for mode, m in result.models.items():
        in_model_units = experiment.score_model(CFG, mode, result.split, m.predictions)
        np.testing.assert_array_equal(m.scores.mse, in_model_units.mse)
        np.testing.assert_array_equal(m.data_predictions, m.predictions.astype(np.float64))
    np.testing.assert_array_equal(result.baselines.truth, result.split.y_test[:, 0].astype(np.float64))
    again = baselines.baselines(CFG.data, result.series)
    assert result.baselines.mse == again.mse and result.baselines.predictions.keys() == again.predictions.keys()


def _wave_file(tmp_path: Path, n: int = 160) -> Path:
    rng = np.random.default_rng(1)
    t = np.arange(n)
    path = tmp_path / "wave.csv"
    pd.DataFrame({"x": 100 + 0.3 * t + 8 * np.sin(t / 3) + rng.normal(0, 1, n)}).to_csv(path, index=False)
    return path


def test_on_a_file_with_a_transform_scores_skills_and_verdicts_are_in_the_data_units(tmp_path: Path) -> None:
    path = _wave_file(tmp_path)
    settings = {"data": str(path), "input": "x", "task": "forecast", "lahead": 3, "transform": "log-diff"}
    cfg = experiment_config({**settings, "standardize": True, "seeds": 2, "epochs": 2, "batch_size": 2}, 160)
    result = experiment.run(cfg)
    n_train, n_test = split_sizes(cfg.data)
    raw = pd.read_csv(path)["x"].to_numpy()
    # Test row i forecasts x[t + 1] from x[t], t = to_drop + n_train + i (the raw row).
    t = cfg.data.to_drop + n_train + np.arange(n_test)
    scaling = result.series.scaling
    for mode, m in result.models.items():
        change = m.predictions.astype(np.float64) * scaling.target_scale + scaling.target_mean
        by_hand = raw[t] * np.exp(change)  # log x[t + 1] = log x[t] + the predicted change
        np.testing.assert_allclose(m.data_predictions, by_hand, rtol=1e-12)
        mse = np.mean((by_hand - raw[t + 1]) ** 2, axis=1)  # every point scored: a forecast has no warm-up
        np.testing.assert_allclose(m.scores.mse, mse, rtol=1e-5)  # the truth is the float32 target, mapped back
        best = min(result.baselines.mse[mode].values())
        np.testing.assert_allclose(m.skill.per_seed, 1 - m.scores.mse / best, rtol=1e-12)
        assert m.verdict == ("beats baselines" if m.skill.low > 0 else f"no better than {m.skill.baseline}")
    assert result.banner is None and np.isnan(result.floors.window_test)


# Monthly closes of IBM and others, 1990-2022, shipped with matplotlib (tests/cli/test_cli_data.py).
STOCKS = str(matplotlib.cbook.get_sample_data("Stocks.csv", asfileobj=False))


def test_on_ibm_closes_neither_model_beats_the_baselines() -> None:
    columns = series_file.read_columns(STOCKS, ("IBM",), None, True)
    settings = {"data": STOCKS, "input": "IBM", "drop_missing": True, "task": "forecast", "standardize": True}
    cfg = experiment_config({**settings, "seeds": 3, "epochs": 10}, file_rows=columns.input.shape[0])
    result = experiment.run(cfg, prepared=experiment.prepare(cfg, columns))
    mses = result.baselines.mse["stateless"]
    assert result.baselines.mse["stateful"] == mses  # a forecast scores every test point
    # Next month's close from this one: least squares (slope 0.99 and an intercept) edges out
    # persistence by 0.3%; neither model, median over seeds, reaches persistence.
    assert mses["linear"] == pytest.approx(59.19, abs=0.01) and mses["persistence"] == pytest.approx(59.36, abs=0.01)
    for m in result.models.values():
        assert evaluate.finite_median(m.scores.mse) > mses["persistence"]
        assert m.verdict == "no better than linear" and m.skill.low < 0 and m.skill.median < 0
