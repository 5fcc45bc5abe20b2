"""The example's data: a uniform series, its moving average, windows and the split.

Follows DESIGN.md, seed protocol steps 1-6, exactly: the same random stream, the same
drops and the same train/test cut as the Keras example, so that its numbers reproduce.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from lstm_stateful.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What series to generate and how to cut it (the example's editable parameters).

    ``batch_size`` lives here because the example's split depends on it.
    """

    input_len: int = 1000
    tsteps: int = 2
    lahead: int = 1
    batch_size: int = 1
    amplitude: float = 0.1
    data_seed: int = 1986
    train_ratio: float = 0.8

    def __post_init__(self) -> None:
        for name in ("input_len", "tsteps", "lahead", "batch_size"):
            _require_positive_int(name, getattr(self, name))
        if not (isinstance(self.data_seed, int) and 0 <= self.data_seed < 2**32):
            raise ConfigError("--data-seed", f"must be an integer in [0, 2**32), got {self.data_seed!r}")
        if not (np.isfinite(self.amplitude) and self.amplitude > 0):
            raise ConfigError("--amplitude", f"must be a finite number > 0, got {self.amplitude!r}")
        if not 0 < self.train_ratio < 1:
            raise ConfigError("--train-ratio", f"must be in (0, 1), got {self.train_ratio!r}")
        for name in ("tsteps", "lahead"):
            if getattr(self, name) > self.input_len:
                raise ConfigError(f"--{name}", f"must be <= --input-len ({self.input_len}), got {getattr(self, name)}")
        if int(self.input_len * self.train_ratio) < self.batch_size:
            raise ConfigError(
                "--batch-size",
                f"must be <= the {int(self.input_len * self.train_ratio)} training rows of --input-len "
                f"{self.input_len}, got {self.batch_size}",
            )
        n_test = split_sizes(self)[1]
        if n_test < self.tsteps:
            raise ConfigError(
                "--input-len",
                f"leaves {n_test} test rows at --batch-size {self.batch_size}; need at least --tsteps "
                f"({self.tsteps}) so the stateful score has a point left after dropping tsteps-1",
            )

    @property
    def to_drop(self) -> int:
        """Rows lost to the moving average and the window (DESIGN step 1)."""
        return max(self.tsteps - 1, self.lahead - 1)


def _require_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"--{name.replace('_', '-')}", f"must be a positive integer, got {value!r}")


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


def split_sizes(cfg: DataConfig) -> tuple[int, int]:
    """(n_train, n_test) rows after the example's batch-size trims (DESIGN step 6)."""
    n_train = int(cfg.input_len * cfg.train_ratio)
    n_train -= n_train % cfg.batch_size
    n_test = cfg.input_len - n_train - cfg.input_len % cfg.batch_size
    return n_train, n_test


def split(series: Series, cfg: DataConfig) -> Split:
    """DESIGN step 6: first n_train rows train, the next n_test rows test; cast to float32."""
    n_train, n_test = split_sizes(cfg)
    x = series.inputs[..., None].astype(np.float32)
    y = series.target[:, None].astype(np.float32)
    stop = n_train + n_test
    return Split(x[:n_train], y[:n_train], x[n_train:stop], y[n_train:stop])


def batches(array: np.ndarray, batch_size: int) -> np.ndarray:
    """(n, ...) -> (n // batch_size, batch_size, ...), rows kept in order.

    Row ``k * batch_size + i`` becomes sample ``i`` of batch ``k``: Keras's stateful layout,
    where sample i of batch k+1 continues sample i of batch k.
    """
    if array.shape[0] % batch_size:
        raise ValueError(f"{array.shape[0]} rows do not split into batches of {batch_size}")
    return array.reshape(array.shape[0] // batch_size, batch_size, *array.shape[1:])
