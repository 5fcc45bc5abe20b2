"""Streaming prediction: point by point = one call, snapshots, batches of streams, and
the same numbers as the training program's own test pass."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from lstm_stateful.core import cells, train
from lstm_stateful.core import data as data_mod
from lstm_stateful.core.config import DataConfig, ExperimentConfig, ModelConfig
from lstm_stateful.core.data import Scaling
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.models import model_io, stream


def saved_model(
    tmp_path: Path, mode: str = "stateful", cell: str = "lstm", layers: int = 1, n_features: int = 1, **data: object
) -> model_io.SavedModel:
    columns = {"file": "f.csv", "input_cols": tuple("abcdefgh"[:n_features])} if n_features > 1 else {}
    model = ModelConfig(units=8, cell=cell, layers=layers, n_features=n_features)
    cfg = ExperimentConfig(data=DataConfig(**({"lahead": 3} | columns | data)), model=model)
    params = cells.init_params(np.random.default_rng(3), cfg.model)
    scaling = Scaling((0.5, 0.1, -0.2)[:n_features], (2.0, 0.5, 1.5)[:n_features], -1.0, 3.0)
    model_io.save_model(tmp_path, params, cfg, {"mode": mode, "seed_index": 0, "scaling": scaling, "metrics": {}})
    return model_io.load_model(tmp_path)


def _identity(model: model_io.SavedModel) -> model_io.SavedModel:
    f = model.model.n_features
    return model._replace(scaling=Scaling((0.0,) * f, (1.0,) * f))


SERIES = np.random.default_rng(0).normal(size=300)
# Three input columns, for models with several inputs.
TABLE = np.random.default_rng(1).normal(size=(300, 3))


@pytest.mark.parametrize(
    ("mode", "cell", "order", "layers"),
    [
        ("stateful", "lstm", "newest-first", 1),
        ("stateful", "gru", "oldest-first", 1),
        ("stateless", "simple", "newest-first", 1),
        ("stateful", "lstm", "oldest-first", 2),
    ],
)
def test_one_point_at_a_time_equals_one_call(tmp_path: Path, mode: str, cell: str, order: str, layers: int) -> None:
    p = stream.Predictor(saved_model(tmp_path, mode, cell, layers, order=order))
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
        p.restore(stream.PredictorState(stream.initial_state(p.model, 2), stream.initial_history(p.model, 2)))
    with pytest.raises(ConfigError, match="state: was not taken from this predictor"):
        p.restore(saved.stream)  # type: ignore[arg-type]


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


@pytest.mark.parametrize(("layers", "n_features"), [(1, 1), (2, 3)])
def test_stream_equals_the_training_programs_test_pass(tmp_path: Path, layers: int, n_features: int) -> None:
    # What run's predictions.csv holds: windows fed batch by batch (batch 1) from a zero state.
    model = _identity(saved_model(tmp_path, layers=layers, n_features=n_features))
    x = TABLE[:, :n_features].astype(np.float32)
    windows = np.moveaxis(np.lib.stride_tricks.sliding_window_view(x, 3, axis=0), -1, 1)[:, ::-1]  # (n - 2, 3, F)
    data = train.Batches(jnp.asarray(windows[:, None]), jnp.zeros((windows.shape[0], 1, 1), jnp.float32))
    _, expected = train.evaluate_batches(model.params, cells.zero_carry(1, model.model), jnp.asarray(True), data)
    values = x.astype(np.float64)[:, 0] if n_features == 1 else x.astype(np.float64)
    ours = stream.Predictor(model).predict(values)[2:]
    np.testing.assert_allclose(ours, np.asarray(expected)[:, 0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("layout", "layers", "n_features"), [("interleaved", 1, 1), ("contiguous", 1, 1),
                                                              ("interleaved", 2, 2)])  # fmt: skip
def test_a_model_trained_in_batches_reproduces_its_test_pass(
    tmp_path: Path, layout: str, layers: int, n_features: int
) -> None:
    # Trained interleaved at batch 4, the state went from row t to row t + 4; a stream
    # keeps 4 states in turn and so equals the model's own test predictions. Contiguous:
    # one slot is one stream, so a stream equals each slot alone.
    model = _identity(saved_model(tmp_path, layers=layers, n_features=n_features, batch_size=4, layout=layout))
    x = TABLE[:202, :n_features].astype(np.float32)
    windows = np.moveaxis(np.lib.stride_tricks.sliding_window_view(x, 3, axis=0), -1, 1)[:, ::-1]  # (200, 3, F)
    if layout == "contiguous":
        windows, x = windows[:50], x[:52]  # the first slot's stream
    b = 4 if layout == "interleaved" else 1
    xs = jnp.asarray(data_mod.batches(windows, b, layout))
    batches = train.Batches(xs, jnp.zeros((*xs.shape[:2], 1), jnp.float32))
    _, expected = train.evaluate_batches(model.params, cells.zero_carry(b, model.model), jnp.asarray(True), batches)
    ours = stream.Predictor(model).predict(x.astype(np.float64)[:, 0] if n_features == 1 else x.astype(np.float64))[2:]
    np.testing.assert_allclose(ours, np.asarray(expected)[:, 0], rtol=1e-6, atol=1e-6)
    assert stream.slots(model) == b


def test_scaling_applies_both_ways(tmp_path: Path) -> None:
    model = saved_model(tmp_path)
    raw = stream.Predictor(model).predict(SERIES)
    unscaled = stream.Predictor(_identity(model)).predict((SERIES - 0.5) / 2.0)
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


def test_several_inputs_take_every_documented_shape(tmp_path: Path) -> None:
    model = saved_model(tmp_path, layers=2, n_features=3)
    one = stream.Predictor(model)
    whole = one.predict(TABLE[:40])  # (n, F) -> (n,)
    assert whole.shape == (40,) and np.isnan(whole[:2]).all() and np.isfinite(whole[2:]).all()
    one.reset()
    np.testing.assert_allclose([one.predict(row) for row in TABLE[:40]], whole, rtol=1e-6, atol=1e-6)  # (F,) -> ()
    assert one.predict(TABLE[0]).shape == ()
    streams = np.stack([TABLE[:40], TABLE[40:80]])  # (B, n, F) -> (B, n)
    both = stream.Predictor(model, batch_size=2)
    together = both.predict(streams)
    assert together.shape == (2, 40)
    np.testing.assert_allclose(together[0], whole, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(together[1], stream.Predictor(model).predict(TABLE[40:80]), rtol=1e-6, atol=1e-6)
    both.reset()
    step_by_step = np.stack([both.predict(streams[:, t]) for t in range(40)], axis=1)  # (B, F) -> (B,)
    np.testing.assert_allclose(step_by_step, together, rtol=1e-6, atol=1e-6)


def test_values_of_the_wrong_width_are_refused(tmp_path: Path) -> None:
    p = stream.Predictor(saved_model(tmp_path, n_features=3), batch_size=2)
    with pytest.raises(ConfigError, match=r"^values: shape \(2, 5, 2\): the last axis must hold the model's 3 inputs$"):
        p.predict(np.zeros((2, 5, 2)))
    with pytest.raises(ConfigError, match=r"^values: shape \(\): the last axis must hold the model's 3 inputs$"):
        p.predict(1.0)
    with pytest.raises(ConfigError, match=r"values: shape \(4, 3\) does not fit batch size 2: give \(n, 3\) for one"):
        p.predict(np.zeros((4, 3)))
    with pytest.raises(ConfigError, match=r"values: hold inf at \(stream, step, input\) \(1, 0, 2\)"):
        p.predict(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, np.inf]]))
    assert int(p.snapshot().history.seen.sum()) == 0 and int(p.snapshot().stream.filled.sum()) == 0


def _transformed(task: str, transform: str, n_features: int = 2) -> tuple[DataConfig, data_mod.Series, np.ndarray]:
    """A positive random walk of F columns, the config and series a run would make of it."""
    raw = 5.0 + np.cumsum(np.random.default_rng(4).normal(scale=0.1, size=(90, n_features)), axis=0)
    tsteps = 2 if task == "moving-average" else 1
    cfg = DataConfig(
        input_len=90 - (1 if task == "forecast" else 0) - 3,  # lahead 3 and the transform drop 3 rows
        tsteps=tsteps,
        lahead=3,
        task=task,
        file="f.csv",
        input_cols=tuple("abc"[:n_features]),
        transform=transform,
        standardize=True,
    )
    return cfg, data_mod.make_series(cfg, data_mod.Columns(raw)), raw


@pytest.mark.parametrize("task", ["forecast", "moving-average"])
@pytest.mark.parametrize("transform", ["diff", "log-diff"])
def test_a_transformed_model_streams_its_test_pass_in_the_data_units(task: str, transform: str) -> None:
    # The model's test predictions (model units, from a zero state) through
    # Series.data_units equal a stream of raw values started lahead rows before the first
    # test row, fed one value at a time: the stream differences, scales and inverts itself.
    cfg, series, raw = _transformed(task, transform)
    model_cfg = ModelConfig(units=6, layers=2, n_features=2)
    params = cells.init_params(np.random.default_rng(5), model_cfg)
    model = model_io.SavedModel(params, model_cfg, cfg, "stateful", series.scaling, 0)
    split = data_mod.split(series, cfg)
    batches = train.Batches(jnp.asarray(split.x_test[:, None]), jnp.asarray(split.y_test[:, None]))
    _, preds = train.evaluate_batches(params, cells.zero_carry(1, model_cfg), jnp.asarray(True), batches)
    expected = data_mod.test_part(series, cfg).data_units(np.asarray(preds)[:, 0])
    first_test_row = cfg.to_drop + data_mod.split_sizes(cfg)[0]  # in raw rows
    values = raw[first_test_row - cfg.lahead :]
    p = stream.Predictor(model)
    one_by_one = np.array([p.predict(v) for v in values])
    assert np.isnan(one_by_one[: cfg.lahead]).all()  # no difference at the first point, then the window fills
    n_test = expected.shape[0]
    np.testing.assert_allclose(one_by_one[cfg.lahead : cfg.lahead + n_test], expected, rtol=1e-6)
    assert np.isfinite(one_by_one[cfg.lahead :]).all()
    p.reset()
    ragged = np.concatenate([p.predict(c) for c in np.split(values, [1, 2, 9, 30])])
    np.testing.assert_allclose(ragged, one_by_one, rtol=1e-12)


@pytest.mark.parametrize(
    ("task", "transform", "lahead"),
    [("forecast", "diff", 1), ("forecast", "log-diff", 3), ("moving-average", "log-diff", 2)],
)
def test_the_inverse_transform_by_hand(tmp_path: Path, task: str, transform: str, lahead: int) -> None:
    # Zero weights: the model outputs its Dense bias b whatever it sees, so in the data's
    # units a forecast (diff) is x_t + (b * scale + mean), and a moving average (log-diff)
    # exp(log(m_{t-1}) + (b * scale + mean)), m the pandas rolling mean of the first input.
    # The first point has no difference, even with a window of one.
    tsteps = 3 if task == "moving-average" else 1
    cfg = DataConfig(lahead=lahead, tsteps=tsteps, task=task, file="f.csv", input_cols=("a", "b"), transform=transform)
    model_cfg = ModelConfig(units=4, n_features=2)
    zeros = jax.tree.map(np.zeros_like, cells.init_params(np.random.default_rng(0), model_cfg))
    params = zeros._replace(dense=cells.DenseParams(zeros.dense.kernel, np.array([0.25], np.float32)))
    scaling = Scaling((0.1, -3.0), (2.0, 7.0), 0.01, 0.2)
    model = model_io.SavedModel(params, model_cfg, cfg, "stateful", scaling, 0)
    values = 2.0 + np.abs(TABLE[:30, :2])
    ours = stream.Predictor(model).predict(values)
    step = 0.25 * 0.2 + 0.01
    if task == "forecast":
        by_hand = values[:, 0] + step if transform == "diff" else np.exp(np.log(values[:, 0]) + step)
    else:
        previous_mean = pd.Series(values[:, 0]).rolling(tsteps).mean().shift(1).to_numpy()
        by_hand = np.exp(np.log(previous_mean) + step)
    first = max(lahead, tsteps)  # the window (lahead differences) and the reference (tsteps values before)
    assert np.isnan(ours[:first]).all()
    np.testing.assert_allclose(ours[first:], by_hand[first:], rtol=1e-12)


def test_log_diff_refuses_values_that_are_not_positive(tmp_path: Path) -> None:
    cfg, series, raw = _transformed("forecast", "log-diff")
    model_cfg = ModelConfig(units=4, n_features=2)
    params = cells.init_params(np.random.default_rng(0), model_cfg)
    p = stream.Predictor(model_io.SavedModel(params, model_cfg, cfg, "stateless", series.scaling, 0))
    p.predict(raw[:5])
    with pytest.raises(
        ConfigError, match=r"values: hold 0.0 at \(stream, step, input\) \(0, 1, 1\); the model learned log-diff"
    ):
        p.predict(np.array([[1.0, 2.0], [3.0, 0.0]]))
    assert int(p.snapshot().history.seen[0]) == 5  # the refused chunk fed nothing


def test_snapshot_restore_carries_the_raw_history(tmp_path: Path) -> None:
    cfg, series, raw = _transformed("moving-average", "diff")
    model_cfg = ModelConfig(units=4, n_features=2)
    params = cells.init_params(np.random.default_rng(0), model_cfg)
    p = stream.Predictor(model_io.SavedModel(params, model_cfg, cfg, "stateful", series.scaling, 0))
    p.predict(raw[:20])
    saved = p.snapshot()
    first = p.predict(raw[20:40])
    p.predict(raw[50:70])  # wander off: another history
    p.restore(saved)
    np.testing.assert_array_equal(p.predict(raw[20:40]), first)
    with pytest.raises(ValueError, match="read-only"):
        saved.history.rows[0, 0, 0] = 1.0
