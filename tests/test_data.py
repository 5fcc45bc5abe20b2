"""Data: our arrays equal the example's own pandas code, case by case."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_stateful import data
from lstm_stateful.errors import ConfigError
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
        ({"input_len": 0}, "--input-len"),
        ({"tsteps": -1}, "--tsteps"),
        ({"lahead": 0}, "--lahead"),
        ({"batch_size": 0}, "--batch-size"),
        ({"input_len": 10, "lahead": 11}, "--lahead"),
        ({"input_len": 10, "tsteps": 11}, "--tsteps"),
        ({"input_len": 100, "batch_size": 81}, "--batch-size"),
        ({"input_len": 10, "tsteps": 3, "batch_size": 8}, "--input-len"),
        ({"amplitude": 0.0}, "--amplitude"),
        ({"data_seed": -1}, "--data-seed"),
        ({"tsteps": 2.5}, "--tsteps"),
    ],
)
def test_bad_config_names_the_flag(kwargs: dict, flag: str) -> None:
    with pytest.raises(ConfigError) as info:
        data.DataConfig(**kwargs)
    assert info.value.param == flag
    assert "\n" not in str(info.value)
