"""The data: a series (the example's uniform one, or a column of your file), its target,
windows, the split and the batch layout.

Follows docs/protocol.md, steps 1-6, exactly: the same random stream, the same
drops and the same train/test cut as the Keras example, so that its numbers reproduce.
A file's column goes through the same steps.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lstm_stateful.core.config import DataConfig, split_sizes
from lstm_stateful.core.errors import ConfigError

__all__ = [
    *("Columns", "DataConfig", "Scaling", "Series", "Split", "batches", "make_series", "split", "split_sizes"),
    *("stream_rows", "test_part", "time_order"),
]


class Scaling(NamedTuple):
    """z = (value - mean) / scale, for the input and for the target; identity unless
    ``--standardize``, which takes them from the training rows only."""

    input_mean: float = 0.0
    input_scale: float = 1.0
    target_mean: float = 0.0
    target_scale: float = 1.0

    def raw_input(self, z: np.ndarray) -> np.ndarray:
        """Model units -> the data's units, float64."""
        return np.asarray(z, np.float64) * self.input_scale + self.input_mean

    def raw_target(self, z: np.ndarray) -> np.ndarray:
        """Model units -> the data's units, float64."""
        return np.asarray(z, np.float64) * self.target_scale + self.target_mean


class Columns(NamedTuple):
    """A data file's series, float64: input (N,), and target (N,) for ``--target``."""

    input: np.ndarray
    target: np.ndarray | None = None


class Series(NamedTuple):
    """The example's frame after the drop, in float64.

    inputs: (input_len, lahead), row t = [x[t], x[t-1], ..., x[t-lahead+1]] (newest first,
    whatever ``order`` the model is fed). target: (input_len,), what the model must output at
    t. Both in the model's units (standardized when ``scaling`` is not the identity).
    """

    inputs: np.ndarray
    target: np.ndarray
    scaling: Scaling = Scaling()


class Split(NamedTuple):
    """Train and test arrays as Keras sees them, float32.

    x_*: (n, lahead, 1); y_*: (n, 1). Both n are multiples of the batch size.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def uniform_series(cfg: DataConfig) -> np.ndarray:
    """Raw input, (input_len + to_drop + tail_drop,) float64: the example's ``np.random.uniform``
    stream (a forecast's last targets lie beyond the rows, so it draws those too)."""
    rng = np.random.RandomState(cfg.data_seed)
    return rng.uniform(-cfg.amplitude, cfg.amplitude, cfg.input_len + cfg.to_drop + cfg.tail_drop)


def trailing_mean(x: np.ndarray, window: int) -> np.ndarray:
    """(n,) -> (n,): mean of x[t-window+1 .. t], NaN where fewer than ``window`` points exist."""
    out = np.full(x.shape, np.nan)
    out[window - 1 :] = np.lib.stride_tricks.sliding_window_view(x, window).mean(axis=-1)
    return out


def newest_first_windows(x: np.ndarray, lahead: int) -> np.ndarray:
    """(n,) -> (n, lahead): column i is x shifted by i (NaN where it runs off the start)."""
    out = np.full((x.shape[0], lahead), np.nan)
    for lag in range(lahead):
        out[lag:, lag] = x[: x.shape[0] - lag]
    return out


def _standardize(values: np.ndarray, train_stop: int, flag: str) -> tuple[np.ndarray, float, float]:
    """Scale by the mean and standard deviation of ``values[:train_stop]`` (training rows only)."""
    mean, scale = float(np.mean(values[:train_stop])), float(np.std(values[:train_stop]))
    if not scale > 0:
        raise ConfigError(flag, "cannot standardize: the column is constant over the training rows")
    return (values - mean) / scale, mean, scale


def _scaled(cfg: DataConfig, columns: Columns) -> tuple[np.ndarray, np.ndarray | None, Scaling]:
    """The file's columns in the model's units, and the scaling that maps them there."""
    if not cfg.standardize:
        return columns.input, columns.target, Scaling()
    train_stop = cfg.to_drop + split_sizes(cfg)[0]  # raw rows the training windows see
    x, x_mean, x_scale = _standardize(columns.input, train_stop, "input")
    if columns.target is None:  # the target is made from x, so it shares x's scaling
        return x, None, Scaling(x_mean, x_scale, x_mean, x_scale)
    y, y_mean, y_scale = _standardize(columns.target, train_stop, "target")
    return x, y, Scaling(x_mean, x_scale, y_mean, y_scale)


def task_target(cfg: DataConfig, x: np.ndarray, column: np.ndarray | None) -> np.ndarray:
    """(N,) -> (N,): the target at each t (NaN where it is undefined)."""
    if cfg.task == "moving-average":
        return trailing_mean(x, cfg.tsteps)
    if cfg.task == "forecast":
        return np.concatenate([x[cfg.horizon :], np.full(cfg.horizon, np.nan)])
    assert column is not None  # DataConfig guarantees a target column for this task
    return column


def make_series(cfg: DataConfig, columns: Columns | None = None) -> Series:
    """docs/protocol.md, steps 1-5: generate (or take ``columns``, read from ``cfg.file``), make the
    target, window, and drop the rows where either is undefined."""
    if columns is None:
        x, column, scaling = uniform_series(cfg), None, Scaling()
    else:
        x, column, scaling = _scaled(cfg, columns)
    expected = cfg.input_len + cfg.to_drop + cfg.tail_drop
    if x.shape[0] != expected:
        drops = f"input_len {cfg.input_len} + {cfg.to_drop + cfg.tail_drop} dropped by the windows and target"
        raise ConfigError("data", f"the series has {x.shape[0]} points; this config needs {expected} ({drops})")
    target = task_target(cfg, x, column)
    inputs = newest_first_windows(x, cfg.lahead)
    stop = x.shape[0] - cfg.tail_drop
    return Series(inputs=inputs[cfg.to_drop : stop], target=target[cfg.to_drop : stop], scaling=scaling)


def split(series: Series, cfg: DataConfig) -> Split:
    """docs/protocol.md, step 6: first n_train rows train, the next n_test rows test; cast to float32.

    The windows are fed in ``cfg.order``: newest first (the example's) or oldest first.
    """
    n_train, n_test = split_sizes(cfg)
    inputs = series.inputs if cfg.order == "newest-first" else series.inputs[:, ::-1]
    x = inputs[..., None].astype(np.float32)
    y = series.target[:, None].astype(np.float32)
    stop = n_train + n_test
    return Split(x[:n_train], y[:n_train], x[n_train:stop], y[n_train:stop])


def test_part(series: Series, cfg: DataConfig) -> Series:
    """The rows of ``series`` that form the test set, still in float64."""
    n_train, n_test = split_sizes(cfg)
    rows = slice(n_train, n_train + n_test)
    return Series(series.inputs[rows], series.target[rows], series.scaling)


def batches(array: np.ndarray, batch_size: int, layout: str = "interleaved") -> np.ndarray:
    """(n, ...) -> (n // batch_size, batch_size, ...): the order a stateful model sees rows.

    interleaved (Keras's): row ``k * batch_size + i`` is sample i of batch k, so sample i
    of batch k+1 continues sample i of batch k, batch_size rows later. contiguous: the rows
    cut into batch_size streams of n // batch_size consecutive rows, stream i in slot i, so
    each slot's state runs through consecutive points.
    """
    if array.shape[0] % batch_size:
        raise ValueError(f"{array.shape[0]} rows do not split into batches of {batch_size}")
    if layout == "contiguous":
        return np.swapaxes(array.reshape(batch_size, array.shape[0] // batch_size, *array.shape[1:]), 0, 1)
    return array.reshape(array.shape[0] // batch_size, batch_size, *array.shape[1:])


def time_order(predictions: np.ndarray, batch_size: int, layout: str) -> np.ndarray:
    """(S, n, ...) in the order ``batches`` fed them (batch by batch) -> (S, n, ...) in time order."""
    if layout != "contiguous":
        return predictions
    s, n = predictions.shape[:2]
    per_batch = predictions.reshape(s, n // batch_size, batch_size, *predictions.shape[2:])
    return np.swapaxes(per_batch, 1, 2).reshape(predictions.shape)


def stream_rows(n: int, batch_size: int, layout: str) -> np.ndarray:
    """(batch_size, n // batch_size): the rows (of n, time order) each batch slot runs through,
    in the order it sees them. A stateful model carries its state along a slot, from a zero
    state at the slot's first row: contiguous slots run through consecutive rows; interleaved
    ones (Keras's) through every batch_size-th row."""
    rows = np.arange(n - n % batch_size)
    if layout == "contiguous":
        return rows.reshape(batch_size, -1)
    return rows.reshape(-1, batch_size).T
