"""Data: our arrays equal the example's own pandas code, case by case."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_stateful.core import data
from lstm_stateful.core.errors import ConfigError
from tests.reference import example_frames, example_split

CASES = [
    # input_len, tsteps, lahead, batch_size
    (1000, 2, 1, 1),  # the example's defaults
    (1000, 2, 5, 1),
    (1000, 5, 2, 1),
    (300, 3, 7, 4),  # lahead > tsteps, batch > 1
    (1003, 4, 2, 7),  # remainders in both the train cut and the test trim
    (97, 1, 1, 5),
    (250, 6, 6, 3),
]


@pytest.mark.parametrize(("input_len", "tsteps", "lahead", "batch_size"), CASES)
def test_split_equals_example(input_len: int, tsteps: int, lahead: int, batch_size: int) -> None:
    cfg = data.DataConfig(input_len=input_len, tsteps=tsteps, lahead=lahead, batch_size=batch_size)
    x_frame, y_frame = example_frames(input_len, tsteps, lahead)
    series = data.make_series(cfg)
    np.testing.assert_allclose(series.inputs, x_frame.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(series.target, y_frame.values[:, 0], rtol=0, atol=1e-12)
    ours = data.split(series, cfg)
    theirs = example_split(x_frame, y_frame, input_len, batch_size)
    for name, a, b in zip(ours._fields, ours, theirs, strict=True):
        assert a.dtype == np.float32, name
        assert a.shape == b.shape, name
        np.testing.assert_array_equal(a, b.astype(np.float32), err_msg=name)
        assert a.shape[0] % batch_size == 0


def test_windows_are_newest_first() -> None:
    x = np.arange(6.0)
    w = data.newest_first_windows(x, 3)
    np.testing.assert_array_equal(w[2:], [[2, 1, 0], [3, 2, 1], [4, 3, 2], [5, 4, 3]])
    assert np.isnan(w[0, 1:]).all() and np.isnan(w[1, 2])


def test_trailing_mean_matches_docstring_example() -> None:
    # The example's own comment: tsteps=2 on [1, 2, 3, 4, 5] gives [1.5, 2.5, 3.5, 4.5].
    out = data.trailing_mean(np.array([1.0, 2, 3, 4, 5]), 2)
    np.testing.assert_array_equal(out[1:], [1.5, 2.5, 3.5, 4.5])
    assert np.isnan(out[0])


def test_defaults_split_sizes() -> None:
    assert data.split_sizes(data.DataConfig()) == (800, 200)
    assert data.split_sizes(data.DataConfig(input_len=1003, batch_size=7)) == (798, 203)


def test_batches_keep_row_order() -> None:
    a = np.arange(12).reshape(12, 1)
    b = data.batches(a, 4)
    assert b.shape == (3, 4, 1)
    # Sample i of batch k is row k * 4 + i: sample i of batch k+1 continues it.
    assert b[1, 2, 0] == 6 and b[2, 2, 0] == 10


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"input_len": 0}, "input_len"),
        ({"tsteps": -1}, "tsteps"),
        ({"lahead": 0}, "lahead"),
        ({"batch_size": 0}, "batch_size"),
        ({"input_len": 10, "lahead": 11}, "lahead"),
        ({"input_len": 10, "tsteps": 11}, "tsteps"),
        ({"input_len": 100, "batch_size": 81}, "batch_size"),
        ({"input_len": 10, "tsteps": 3, "batch_size": 8}, "input_len"),
        ({"amplitude": 0.0}, "amplitude"),
        ({"data_seed": -1}, "data_seed"),
        ({"tsteps": 2.5}, "tsteps"),
    ],
)
def test_bad_config_names_the_flag(kwargs: dict, flag: str) -> None:
    with pytest.raises(ConfigError) as info:
        data.DataConfig(**kwargs)
    assert info.value.param == flag
    assert "\n" not in str(info.value)


def test_contiguous_layout_makes_each_slot_a_stream() -> None:
    rows = np.arange(12)
    batched = data.batches(rows, 3, "contiguous")
    assert batched.tolist() == [[0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11]]  # slot i runs 4i, 4i+1, ...
    assert data.batches(rows, 3).tolist()[1] == [3, 4, 5]  # interleaved: Keras's row order
    fed = batched.reshape(1, -1)  # what a model outputs, batch after batch
    np.testing.assert_array_equal(data.time_order(fed, 3, "contiguous")[0], rows)
    np.testing.assert_array_equal(data.time_order(fed, 3, "interleaved"), fed)
    assert data.stream_rows(12, 3, "contiguous").tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert data.stream_rows(12, 3, "interleaved").tolist() == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]]


def test_oldest_first_reverses_each_window() -> None:
    new = data.DataConfig(tsteps=3, lahead=4)
    old = data.DataConfig(tsteps=3, lahead=4, order="oldest-first")
    series = data.make_series(new)
    np.testing.assert_array_equal(data.split(series, old).x_train, data.split(series, new).x_train[:, ::-1])
    np.testing.assert_array_equal(data.split(series, old).y_train, data.split(series, new).y_train)


def test_forecast_and_target_tasks() -> None:
    x = np.arange(20, dtype=np.float64)
    cfg = data.DataConfig(
        input_len=20 - 2 - 3, tsteps=1, lahead=3, task="forecast", horizon=3, file="f.csv", input_cols=("x",)
    )
    s = data.make_series(cfg, data.Columns(x))
    assert s.inputs[0].tolist() == [2.0, 1.0, 0.0] and s.target[0] == 5.0  # x[t+3] at t = 2
    assert s.target[-1] == 19.0 and s.inputs.shape == (15, 3)
    target = data.DataConfig(
        input_len=18, tsteps=1, lahead=3, task="target", file="f.csv", input_cols=("x",), target_col="y"
    )
    s = data.make_series(target, data.Columns(x, -x))
    assert s.target[0] == -2.0 and s.target.shape == (18,)
    with pytest.raises(ValueError, match="needs 20"):
        data.make_series(cfg, data.Columns(x[:-1]))


def test_standardize_uses_training_rows_only() -> None:
    x = np.random.default_rng(0).normal(5.0, 3.0, 200)
    cfg = data.DataConfig(input_len=199, tsteps=2, file="f.csv", input_cols=("x",), standardize=True)
    s = data.make_series(cfg, data.Columns(x))
    n_train = data.split_sizes(cfg)[0]
    seen = x[: n_train + 1]  # the raw points the training windows and targets use
    assert s.scaling.input_mean == pytest.approx(seen.mean()) and s.scaling.input_scale == pytest.approx(seen.std())
    changed = x.copy()
    changed[n_train + 1 :] += 100.0  # the test rows do not move the scaling
    assert data.make_series(cfg, data.Columns(changed)).scaling == s.scaling
    np.testing.assert_allclose(s.scaling.raw_input(s.inputs[:, 0]), x[1:])
    with pytest.raises(ConfigError, match="input: cannot standardize"):
        data.make_series(cfg, data.Columns(np.ones(200)))


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"layout": "rows"}, "layout"),
        ({"order": "random"}, "order"),
        ({"task": "classify"}, "task"),
        ({"standardize": True}, "standardize"),
        ({"input_cols": ("x",)}, "input"),
        ({"drop_missing": True}, "drop_missing"),
        ({"file": "f.csv"}, "input"),
        ({"task": "forecast"}, "tsteps"),
        ({"task": "forecast", "tsteps": 1, "horizon": 0}, "horizon"),
        ({"file": "f.csv", "input_cols": ("x",), "input_len": 10, "batch_size": 9}, "batch_size"),
        ({"input_len": 100, "batch_size": 16, "tsteps": 3, "layout": "contiguous"}, "batch_size"),
        ({"input_len": 100, "batch_size": 16, "tsteps": 3}, "batch_size"),  # interleaved: 16 streams of 1 test row
    ],
)
def test_bad_data_options(kwargs: dict, flag: str) -> None:
    with pytest.raises(ConfigError) as e:
        data.DataConfig(**kwargs)
    assert e.value.param == flag
