"""The protocol end to end through the Python API: callbacks, shapes, determinism."""

from __future__ import annotations

import threading

import numpy as np

from lstm_stateful.core.config import DataConfig, ExperimentConfig, TrainConfig
from lstm_stateful.engine import experiment

CFG = ExperimentConfig(data=DataConfig(input_len=120, tsteps=3, lahead=2, batch_size=2), train=TrainConfig(epochs=3))


def test_live_callbacks_report_every_epoch_of_both_models() -> None:
    calls, stages, lock = [], [], threading.Lock()

    def on_epoch(index: object, stateful: object, train: object, val: object) -> None:
        with lock:  # the two models train concurrently
            calls.append((int(index), bool(stateful), np.asarray(train), np.asarray(val)))

    result = experiment.run(CFG, on_epoch=on_epoch, on_stage=stages.append)
    assert stages == ["compiling", "training"]
    assert sorted((i, s) for i, s, _, _ in calls) == sorted((i, s) for i in range(3) for s in (True, False))
    for index, stateful, train, val in calls:
        m = result.models["stateful" if stateful else "stateless"]
        np.testing.assert_array_equal(train, m.train_loss[:, index])
        np.testing.assert_array_equal(val, m.val_loss[:, index])


def test_result_shapes_and_determinism() -> None:
    first, second = experiment.run(CFG), experiment.run(CFG)
    n_test = first.split.y_test.shape[0]
    for mode in ("stateful", "stateless"):
        a, b = first.models[mode], second.models[mode]
        assert a.predictions.shape == (5, n_test) and a.train_loss.shape == (5, 3)
        np.testing.assert_array_equal(a.predictions, b.predictions)
        np.testing.assert_array_equal(a.scores.mse, b.scores.mse)
        assert 0 <= a.median_seed < 5
    assert first.models["stateful"].compile_s > 0 and first.models["stateless"].compile_s == 0
