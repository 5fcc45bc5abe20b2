"""Data: our arrays equal the example's own pandas code, case by case."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from lstm_stateful.core import data
from lstm_stateful.core import transform as transform_mod
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
    np.testing.assert_allclose(series.inputs[..., 0], x_frame.values, rtol=0, atol=1e-12)
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
    assert s.inputs[0, :, 0].tolist() == [2.0, 1.0, 0.0] and s.target[0] == 5.0  # x[t+3] at t = 2
    assert s.target[-1] == 19.0 and s.inputs.shape == (15, 3, 1)
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
    assert s.scaling.input_mean == pytest.approx((seen.mean(),)) and s.scaling.input_scale == pytest.approx(
        (seen.std(),)
    )
    changed = x.copy()
    changed[n_train + 1 :] += 100.0  # the test rows do not move the scaling
    assert data.make_series(cfg, data.Columns(changed)).scaling == s.scaling
    np.testing.assert_allclose(s.scaling.raw_input(s.inputs[:, 0, 0]), x[1:])
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


# A positive random walk in 3 columns (a, b, c), the kind of series the transforms are for.
WALK = np.exp(np.cumsum(np.random.default_rng(11).normal(0.0, 0.05, (120, 3)), axis=0)) * [20.0, 300.0, 0.7]
TASKS = {"forecast": {"task": "forecast", "tsteps": 1, "horizon": 2, "lahead": 3}, "moving-average": {"tsteps": 4}}


def _file_config(task: str, transform: str = "none", **kwargs: object) -> data.DataConfig:
    """A config over all of WALK's rows, its columns named a, b, c."""
    settings = {"lahead": 2, **TASKS[task], **kwargs}
    probe = data.DataConfig(input_len=50, file="f.csv", input_cols=("a", "b", "c"), transform=transform, **settings)
    used = WALK.shape[0] - probe.to_drop - probe.tail_drop
    return data.DataConfig(input_len=used, file="f.csv", input_cols=("a", "b", "c"), transform=transform, **settings)


def _pandas_task(cfg: data.DataConfig, frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The task's target and reference, from the raw first column, as pandas computes them."""
    x = frame["a"]
    if cfg.task == "forecast":
        return x.shift(-cfg.horizon), x
    average = x.rolling(cfg.tsteps).mean()
    return average, average.shift(1)


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("task", ["forecast", "moving-average"])
@pytest.mark.parametrize("transform", ["diff", "log-diff"])
def test_known_series_round_trips(transform: str, task: str, standardize: bool) -> None:
    cfg = _file_config(task, transform, standardize=standardize)
    s = data.make_series(cfg, data.Columns(WALK))
    frame = pd.DataFrame(WALK, columns=["a", "b", "c"])
    target, reference = _pandas_task(cfg, frame)
    rows = slice(cfg.to_drop, WALK.shape[0] - cfg.tail_drop)
    # pandas' rolling mean keeps running sums: equal to a few ulps, not bit for bit
    np.testing.assert_allclose(s.raw_target, target.to_numpy()[rows], rtol=1e-14, atol=0)
    np.testing.assert_allclose(s.reference, reference.to_numpy()[rows], rtol=1e-14, atol=0)
    np.testing.assert_array_equal(s.raw_input, WALK[rows, 0])
    np.testing.assert_allclose(s.data_units(s.target), s.raw_target, rtol=1e-12, atol=0)
    g = np.log if transform == "log-diff" else (lambda v: v)
    learned = g(target) - g(reference)  # what the model learns, in the transformed data's units
    np.testing.assert_allclose(s.scaling.raw_target(s.target), learned.to_numpy()[rows], rtol=0, atol=1e-12)
    steps = g(frame).diff()
    for lag in range(cfg.lahead):  # windows newest first: lag i is the differences shifted by i
        expected = steps.shift(lag).to_numpy()[rows]
        np.testing.assert_allclose(s.scaling.raw_input(s.inputs[:, lag]), expected, rtol=0, atol=1e-12)
    assert np.isfinite(s.inputs).all() and np.isfinite(s.target).all() and np.isfinite(s.reference).all()
    # Several seeds' predictions (S, n) go back to the data's units row by row.
    both = s.data_units(np.stack([s.target, s.target]))
    np.testing.assert_allclose(both[1], s.raw_target, rtol=1e-12, atol=0)


def test_windows_of_three_columns_equal_pandas_shifts() -> None:
    cfg = _file_config("moving-average", lahead=5, tsteps=2)
    s = data.make_series(cfg, data.Columns(WALK))
    frame = pd.DataFrame(WALK)
    assert s.inputs.shape == (cfg.input_len, 5, 3)
    for lag in range(5):
        np.testing.assert_array_equal(s.inputs[:, lag], frame.shift(lag).to_numpy()[cfg.to_drop :])
    np.testing.assert_allclose(s.target, frame[0].rolling(2).mean().to_numpy()[cfg.to_drop :], rtol=1e-14)
    np.testing.assert_array_equal(s.reference, s.raw_input)  # none: the reference is unused
    new, old = data.split(s, cfg), data.split(s, dataclasses.replace(cfg, order="oldest-first"))
    assert new.x_train.shape[1:] == (5, 3) and new.x_train.dtype == np.float32
    np.testing.assert_array_equal(old.x_test, new.x_test[:, ::-1])
    np.testing.assert_array_equal(new.x_train[3, 1], WALK[cfg.to_drop + 3 - 1].astype(np.float32))


@pytest.mark.parametrize("transform", ["none", "diff"])
def test_standardize_per_column_from_training_rows(transform: str) -> None:
    cfg = _file_config("moving-average", transform, standardize=True)
    s = data.make_series(cfg, data.Columns(WALK))
    n_train = data.split_sizes(cfg)[0]
    train_stop = cfg.to_drop + n_train
    values = transform_mod.differences(transform, WALK)
    seen = values[int(transform != "none") : train_stop]  # the training windows' raw rows
    np.testing.assert_allclose(s.scaling.input_mean, seen.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(s.scaling.input_scale, seen.std(axis=0), rtol=1e-13)
    assert len(set(s.scaling.input_scale)) == 3  # one scale per column
    train_targets = s.scaling.raw_target(s.target[:n_train])
    assert s.scaling.target_mean == pytest.approx(train_targets.mean() if transform != "none" else seen[:, 0].mean())
    changed = WALK.copy()
    changed[train_stop:] *= 3.0  # the test rows do not move the scaling
    assert data.make_series(cfg, data.Columns(changed)).scaling == s.scaling
    changed[train_stop - 1] *= 3.0  # a training row does
    assert data.make_series(cfg, data.Columns(changed)).scaling != s.scaling


def test_constant_column_is_refused_by_name() -> None:
    flat = WALK.copy()
    flat[:, 1] = 5.0
    with pytest.raises(ConfigError) as e:
        data.make_series(_file_config("forecast", standardize=True), data.Columns(flat))
    assert (e.value.param, e.value.problem) == (
        "input",
        "cannot standardize column 'b': it is constant over the training rows",
    )
    flat[:, 1] = np.arange(WALK.shape[0])  # a straight line: constant once differenced
    with pytest.raises(ConfigError, match=r"^input: cannot standardize column 'b' after `transform` diff"):
        data.make_series(_file_config("forecast", "diff", standardize=True), data.Columns(flat))
    assert data.make_series(_file_config("forecast", standardize=True), data.Columns(flat)).inputs.shape[-1] == 3


def test_test_part_slices_every_field() -> None:
    cfg = _file_config("moving-average", "log-diff", standardize=True)
    s = data.make_series(cfg, data.Columns(WALK))
    n_train, n_test = data.split_sizes(cfg)
    t = data.test_part(s, cfg)
    for name in ("inputs", "target", "raw_target", "raw_input", "reference"):
        np.testing.assert_array_equal(getattr(t, name), getattr(s, name)[n_train : n_train + n_test], err_msg=name)
    assert (t.scaling, t.transform) == (s.scaling, "log-diff")
    np.testing.assert_allclose(t.data_units(t.target), t.raw_target, rtol=1e-12)


def test_log_diff_of_the_generated_series_is_refused() -> None:
    with pytest.raises(ConfigError) as e:
        data.make_series(data.DataConfig(transform="log-diff"))
    assert e.value.param == "transform" and "\n" not in e.value.problem
    assert e.value.problem.startswith("log-diff needs a positive series; the generated one")
    s = data.make_series(data.DataConfig(transform="diff", tsteps=3))  # diff takes any sign
    np.testing.assert_allclose(s.data_units(s.target), s.raw_target, rtol=0, atol=1e-15)


def test_log_diff_names_where_the_value_is() -> None:
    bad = WALK.copy()
    bad[40, 2] = -0.5
    cfg = _file_config("forecast", "log-diff")
    with pytest.raises(
        ConfigError, match=r"^transform: log-diff needs positive values; column 'c' holds -0.5 at row 40 of"
    ):
        data.make_series(cfg, data.Columns(bad))
    lines = np.arange(WALK.shape[0]) * 2 + 3  # the file's line of each row, as series_file reads them
    with pytest.raises(ConfigError, match=r"holds -0\.5 at line 83 of 'f\.csv'; "):
        data.make_series(cfg, data.Columns(bad, lines=lines))


def test_columns_must_match_the_configs_inputs() -> None:
    cfg = data.DataConfig(input_len=97, tsteps=2, file="f.csv", input_cols=("x",))
    two = data.Columns(np.ones((98, 2)))
    with pytest.raises(ConfigError) as e:
        data.make_series(cfg, two)
    assert e.value.param == "data" and "holds 2 input column(s); the config has 1" in e.value.problem
