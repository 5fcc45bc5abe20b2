"""The example's data: a uniform series, its moving average, windows and the split.

Follows DESIGN.md, seed protocol steps 1-6, exactly: the same random stream, the same
drops and the same train/test cut as the Keras example, so that its numbers reproduce.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lstm_stateful.config import DataConfig, split_sizes

__all__ = ["DataConfig", "Series", "Split", "batches", "make_series", "split", "split_sizes", "test_part"]


class Series(NamedTuple):
    """The example's frame after the drop, in float64.

    inputs: (input_len, lahead), row t = [x[t], x[t-1], ..., x[t-lahead+1]] (newest first).
    target: (input_len,), the tsteps-point trailing mean of x at t.
    """

    inputs: np.ndarray
    target: np.ndarray


class Split(NamedTuple):
    """Train and test arrays as Keras sees them, float32.

    x_*: (n, lahead, 1); y_*: (n, 1). Both n are multiples of the batch size.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def uniform_series(cfg: DataConfig) -> np.ndarray:
    """Raw input, (input_len + to_drop,) float64: the example's ``np.random.uniform`` stream."""
    rng = np.random.RandomState(cfg.data_seed)
    return rng.uniform(-cfg.amplitude, cfg.amplitude, cfg.input_len + cfg.to_drop)


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


def make_series(cfg: DataConfig) -> Series:
    """DESIGN steps 1-5: generate, average, window, and drop the undefined first rows."""
    x = uniform_series(cfg)
    target = trailing_mean(x, cfg.tsteps)
    inputs = newest_first_windows(x, cfg.lahead)
    return Series(inputs=inputs[cfg.to_drop :], target=target[cfg.to_drop :])


def split(series: Series, cfg: DataConfig) -> Split:
    """DESIGN step 6: first n_train rows train, the next n_test rows test; cast to float32."""
    n_train, n_test = split_sizes(cfg)
    x = series.inputs[..., None].astype(np.float32)
    y = series.target[:, None].astype(np.float32)
    stop = n_train + n_test
    return Split(x[:n_train], y[:n_train], x[n_train:stop], y[n_train:stop])


def test_part(series: Series, cfg: DataConfig) -> Series:
    """The rows of ``series`` that form the test set, still in float64."""
    n_train, n_test = split_sizes(cfg)
    return Series(series.inputs[n_train : n_train + n_test], series.target[n_train : n_train + n_test])


def batches(array: np.ndarray, batch_size: int) -> np.ndarray:
    """(n, ...) -> (n // batch_size, batch_size, ...), rows kept in order.

    Row ``k * batch_size + i`` becomes sample ``i`` of batch ``k``: Keras's stateful layout,
    where sample i of batch k+1 continues sample i of batch k.
    """
    if array.shape[0] % batch_size:
        raise ValueError(f"{array.shape[0]} rows do not split into batches of {batch_size}")
    return array.reshape(array.shape[0] // batch_size, batch_size, *array.shape[1:])
