"""The protocol end to end through the Python API: callbacks, shapes, determinism."""

from __future__ import annotations

import numpy as np

from lstm_stateful.core.config import DataConfig, ExperimentConfig, TrainConfig
from lstm_stateful.engine import experiment

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
