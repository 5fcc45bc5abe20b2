"""Streaming prediction: point by point = one call, snapshots, batches of streams, and
the same numbers as the training program's own test pass."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_stateful.core import cells, train
from lstm_stateful.core import data as data_mod
from lstm_stateful.core.config import DataConfig, ExperimentConfig, ModelConfig
from lstm_stateful.core.data import Scaling
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.models import model_io, stream


def saved_model(tmp_path: Path, mode: str = "stateful", cell: str = "lstm", **data: object) -> model_io.SavedModel:
    cfg = ExperimentConfig(data=DataConfig(**({"lahead": 3} | data)), model=ModelConfig(units=8, cell=cell))
    params = cells.init_params(np.random.default_rng(3), cfg.model)
    scaling = Scaling(0.5, 2.0, -1.0, 3.0)
    model_io.save_model(tmp_path, params, cfg, {"mode": mode, "seed_index": 0, "scaling": scaling, "metrics": {}})
    return model_io.load_model(tmp_path)


SERIES = np.random.default_rng(0).normal(size=300)


@pytest.mark.parametrize(
    ("mode", "cell", "order"),
    [
        ("stateful", "lstm", "newest-first"),
        ("stateful", "gru", "oldest-first"),
        ("stateless", "simple", "newest-first"),
    ],
)
def test_one_point_at_a_time_equals_one_call(tmp_path: Path, mode: str, cell: str, order: str) -> None:
    p = stream.Predictor(saved_model(tmp_path, mode, cell, order=order))
    whole = p.predict(SERIES)
    assert np.isnan(whole[:2]).all() and np.isfinite(whole[2:]).all()  # lahead - 1 points fill the window
    p.reset()
    one_by_one = np.array([p.predict(v) for v in SERIES])
    np.testing.assert_allclose(one_by_one, whole, rtol=1e-6, atol=1e-6)
    p.reset()
    ragged = np.concatenate([p.predict(c) for c in np.split(SERIES, [1, 2, 7, 50, 177])])
    np.testing.assert_allclose(ragged, whole, rtol=1e-6, atol=1e-6)


def test_snapshot_restore_continues_identically(tmp_path: Path) -> None:
    p = stream.Predictor(saved_model(tmp_path))
    p.predict(SERIES[:100])
    saved = p.snapshot()
    first = p.predict(SERIES[100:])
    p.predict(SERIES[:37])  # wander off
    p.restore(saved)
    np.testing.assert_array_equal(p.predict(SERIES[100:]), first)
    with pytest.raises(ConfigError, match="state: was not taken from this predictor"):
        p.restore(stream.initial_state(p.model, 2))


def test_batch_of_streams_equals_each_alone(tmp_path: Path) -> None:
    model = saved_model(tmp_path)
    table = SERIES[:240].reshape(3, 80)
    together = stream.Predictor(model, batch_size=3).predict(table)
    for i in range(3):
        alone = stream.Predictor(model).predict(table[i])
        np.testing.assert_allclose(together[i], alone, rtol=1e-6, atol=1e-6)
    p = stream.Predictor(model, batch_size=3)
    assert p.predict(table[:, 0]).shape == (3,)  # one value per stream
    p.reset(batch_size=1)
    assert p.batch_size == 1


def test_stream_equals_the_training_programs_test_pass(tmp_path: Path) -> None:
    # What run's predictions.csv holds: windows fed batch by batch (batch 1) from a zero state.
    model = saved_model(tmp_path)._replace(scaling=Scaling())
    x = SERIES.astype(np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(x, 3)[:, ::-1]  # (n - 2, 3), newest first
    data = train.Batches(jnp.asarray(windows[:, None, :, None]), jnp.zeros((windows.shape[0], 1, 1), jnp.float32))
    _, expected = train.evaluate_batches(model.params, cells.zero_carry(1, model.model), jnp.asarray(True), data)
    ours = stream.Predictor(model).predict(x.astype(np.float64))[2:]
    np.testing.assert_allclose(ours, np.asarray(expected)[:, 0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("layout", ["interleaved", "contiguous"])
def test_a_model_trained_in_batches_reproduces_its_test_pass(tmp_path: Path, layout: str) -> None:
    # Trained interleaved at batch 4, the state went from row t to row t + 4; a stream
    # keeps 4 states in turn and so equals the model's own test predictions. Contiguous:
    # one slot is one stream, so a stream equals each slot alone.
    model = saved_model(tmp_path, batch_size=4, layout=layout)._replace(scaling=Scaling())
    x = SERIES[:202].astype(np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(x, 3)[:, ::-1, None]  # (200, 3, 1)
    if layout == "contiguous":
        windows, x = windows[:50], x[:52]  # the first slot's stream
    b = 4 if layout == "interleaved" else 1
    xs = jnp.asarray(data_mod.batches(windows, b, layout))
    batches = train.Batches(xs, jnp.zeros((*xs.shape[:2], 1), jnp.float32))
    _, expected = train.evaluate_batches(model.params, cells.zero_carry(b, model.model), jnp.asarray(True), batches)
    ours = stream.Predictor(model).predict(x.astype(np.float64))[2:]
    np.testing.assert_allclose(ours, np.asarray(expected)[:, 0], rtol=1e-6, atol=1e-6)
    assert stream.slots(model) == b


def test_scaling_applies_both_ways(tmp_path: Path) -> None:
    model = saved_model(tmp_path)
    raw = stream.Predictor(model).predict(SERIES)
    unscaled = stream.Predictor(model._replace(scaling=Scaling())).predict((SERIES - 0.5) / 2.0)
    np.testing.assert_allclose(raw[2:], unscaled[2:] * 3.0 - 1.0, rtol=1e-6)


def test_chunks_of_one_size_class_compile_once(tmp_path: Path) -> None:
    p = stream.Predictor(saved_model(tmp_path))
    p.predict(SERIES[:100])
    size = stream.stream_chunk._cache_size()
    p.predict(SERIES[100:200])
    p.predict(SERIES[200:297])  # 97 values pad to the same 128
    assert stream.stream_chunk._cache_size() == size


def test_bad_values(tmp_path: Path) -> None:
    p = stream.Predictor(saved_model(tmp_path), batch_size=2)
    with pytest.raises(ConfigError, match=r"values: shape \(3,\) does not fit batch size 2"):
        p.predict(np.zeros(3))
    with pytest.raises(ConfigError, match=r"values: hold 1e\+39 at \(stream, step\) \(0, 0\)"):
        p.predict(np.array([1e39, 0.0]))  # beyond float32: it would become an infinity
    with pytest.raises(ConfigError, match=r"values: hold nan at \(stream, step\) \(1, 0\)"):
        p.predict(np.array([0.0, np.nan]))
    with pytest.raises(ConfigError, match="batch_size: must be a positive integer"):
        p.reset(0)
    assert jax.tree.leaves(p.snapshot())[0].shape[0] == 2  # nothing was fed by the failed calls
