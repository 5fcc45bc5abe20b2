"""The data: a series (the example's uniform one, or columns of your file), its target,
the transform, windows, the split and the batch layout.

Follows docs/protocol.md, steps 1-6, exactly: the same random stream, the same
drops and the same train/test cut as the Keras example, so that its numbers reproduce.
A file's columns go through the same steps; ``transform`` (``core.transform``) makes the
models learn differences, and ``Series.data_units`` takes their outputs back.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lstm_stateful.core import transform as transform_mod
from lstm_stateful.core.config import DataConfig, split_sizes
from lstm_stateful.core.errors import ConfigError

__all__ = [
    *("Columns", "DataConfig", "Scaling", "Series", "Split", "batches", "make_series", "split", "split_sizes"),
    *("identity_scaling", "stream_rows", "test_part", "time_order"),
]


class Scaling(NamedTuple):
    """z = (value - mean) / scale: per input column, and for the target; identity unless
    ``--standardize``, which takes them from the training rows only (after the transform)."""

    input_mean: tuple[float, ...] = (0.0,)
    input_scale: tuple[float, ...] = (1.0,)
    target_mean: float = 0.0
    target_scale: float = 1.0

    def raw_input(self, z: np.ndarray) -> np.ndarray:
        """Model units (..., F) -> the transformed data's units, float64."""
        return np.asarray(z, np.float64) * np.asarray(self.input_scale) + np.asarray(self.input_mean)

    def raw_target(self, z: np.ndarray) -> np.ndarray:
        """Model units -> the transformed data's units, float64, any shape."""
        return np.asarray(z, np.float64) * self.target_scale + self.target_mean


def identity_scaling(n_features: int) -> Scaling:
    """No scaling, for ``n_features`` input columns."""
    return Scaling((0.0,) * n_features, (1.0,) * n_features)


class Columns(NamedTuple):
    """A data file's series, float64: input (N, F), the ``input_cols``; target (N,) for
    ``--target``. ``rows`` (N,): each row's data index (0-based, header excluded; with
    ``drop_missing`` not consecutive); ``lines`` (N,): its line in a CSV file (1-based, the
    header is line 1), None for Parquet. Both None: rows 0..N-1."""

    input: np.ndarray
    target: np.ndarray | None = None
    rows: np.ndarray | None = None
    lines: np.ndarray | None = None

    def where(self, i: int) -> str:
        """Where row i is in the file: ``line 12`` (CSV) or ``row 10`` (Parquet)."""
        if self.lines is not None:
            return f"line {int(self.lines[i])}"
        return f"row {int(self.rows[i]) if self.rows is not None else i}"


class Series(NamedTuple):
    """The example's frame after the drop, in float64; n rows.

    inputs: (n, lahead, F), row t = [x[t], x[t-1], ..., x[t-lahead+1]] (newest first,
    whatever ``order`` the model is fed), each x (F,) the input columns. target: (n,), what
    the model must output at t. Both in the model's units (transformed, then standardized
    when ``scaling`` is not the identity). In the data's units, (n,) each: ``raw_target``, the
    target; ``raw_input``, the first input column (what persistence predicts); ``reference``,
    the r_t the target's transform is relative to (``core.transform``; with ``none``, unused
    and equal to ``raw_input``).
    """

    inputs: np.ndarray
    target: np.ndarray
    raw_target: np.ndarray
    raw_input: np.ndarray
    reference: np.ndarray
    scaling: Scaling = Scaling()
    transform: str = "none"

    def data_units(self, z: np.ndarray) -> np.ndarray:
        """Target values in model units, (..., n) aligned with the rows -> the data's units,
        float64: the scaling's inverse, then the transform's."""
        return transform_mod.from_model(self.transform, self.scaling.raw_target(z), self.reference)


class Split(NamedTuple):
    """Train and test arrays as Keras sees them, float32.

    x_*: (n, lahead, F), in ``order``; y_*: (n, 1). Both n are multiples of the batch size.
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
    """(..., n) -> (..., n): along the last axis, the mean of x[t-window+1 .. t], NaN where
    fewer than ``window`` points exist."""
    out = np.full(x.shape, np.nan)
    out[..., window - 1 :] = np.lib.stride_tricks.sliding_window_view(x, window, axis=-1).mean(axis=-1)
    return out


def newest_first_windows(x: np.ndarray, lahead: int) -> np.ndarray:
    """(n, ...) -> (n, lahead, ...): column i is x shifted by i (NaN where it runs off the start)."""
    out = np.full((x.shape[0], lahead, *x.shape[1:]), np.nan)
    for lag in range(lahead):
        out[lag:, lag] = x[: x.shape[0] - lag]
    return out


def _standardize(values: np.ndarray, rows: slice, param: str, what: str) -> tuple[np.ndarray, float, float]:
    """(N,) -> (N,) scaled by the mean and standard deviation of ``values[rows]`` (training rows only)."""
    seen = np.ascontiguousarray(values[rows])  # contiguous: the sums of a 1-D column, bit for bit
    mean, scale = float(np.mean(seen)), float(np.std(seen))
    if not scale > 0:
        raise ConfigError(param, f"cannot standardize {what}: it is constant over the training rows")
    return (values - mean) / scale, mean, scale


def _standardize_inputs(cfg: DataConfig, x: np.ndarray, rows: slice) -> tuple[np.ndarray, Scaling]:
    """(N, F) -> (N, F), each column by its own training rows; the target's scaling left identity."""
    if not cfg.standardize:
        return x, identity_scaling(x.shape[1])
    after = "" if cfg.transform == "none" else f" after `transform` {cfg.transform}"
    parts = [_standardize(x[:, j], rows, "input", f"column {c!r}{after}") for j, c in enumerate(cfg.input_cols)]
    z = np.stack([p[0] for p in parts], axis=1)
    return z, Scaling(tuple(p[1] for p in parts), tuple(p[2] for p in parts))


def _model_units_plain(
    cfg: DataConfig, x: np.ndarray, column: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, Scaling]:
    """``transform`` none: the inputs (N, F) and target (N,) in the model's units, and the
    scaling. A target made from x shares its first column's scaling (the example's numbers)."""
    train_stop = cfg.to_drop + split_sizes(cfg)[0]  # raw rows the training windows see
    z, scaling = _standardize_inputs(cfg, x, slice(0, train_stop))
    if column is not None and cfg.standardize:
        y, mean, scale = _standardize(column, slice(0, train_stop), "target", f"column {cfg.target_col!r}")
        return z, task_target(cfg, z[:, 0], y), scaling._replace(target_mean=mean, target_scale=scale)
    scaling = scaling._replace(target_mean=scaling.input_mean[0], target_scale=scaling.input_scale[0])
    return z, task_target(cfg, z[:, 0], column), scaling


def _model_units_transformed(
    cfg: DataConfig, x: np.ndarray, raw_target: np.ndarray, reference: np.ndarray
) -> tuple[np.ndarray, np.ndarray, Scaling]:
    """``transform`` diff or log-diff: the inputs' differences (N, F) and the target's relative
    to its reference (N,), each standardized by its own training rows; and the scaling."""
    n_train = split_sizes(cfg)[0]
    z, scaling = _standardize_inputs(cfg, transform_mod.differences(cfg.transform, x), slice(1, cfg.to_drop + n_train))
    y = transform_mod.to_model(cfg.transform, raw_target, reference)
    if cfg.standardize:
        rows = slice(cfg.to_drop, cfg.to_drop + n_train)  # the training targets
        y, mean, scale = _standardize(y, rows, "target", f"the target after `transform` {cfg.transform}")
        scaling = scaling._replace(target_mean=mean, target_scale=scale)
    return z, y, scaling


def task_target(cfg: DataConfig, x: np.ndarray, column: np.ndarray | None) -> np.ndarray:
    """(N,) -> (N,): the target at each t (NaN where it is undefined)."""
    if cfg.task == "moving-average":
        return trailing_mean(x, cfg.tsteps)
    if cfg.task == "forecast":
        return np.concatenate([x[cfg.horizon :], np.full(cfg.horizon, np.nan)])
    assert column is not None  # DataConfig guarantees a target column for this task
    return column


def _raw(cfg: DataConfig, columns: Columns | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The raw inputs (N, F) and target column (N,) or None, checked against the config."""
    if columns is None:
        x, column = uniform_series(cfg)[:, None], None
    else:
        x = np.asarray(columns.input, np.float64)
        x, column = x.reshape(x.shape[0], -1), columns.target
    if x.shape[1] != cfg.n_features:
        raise ConfigError("data", f"holds {x.shape[1]} input column(s); the config has {cfg.n_features} (`input`)")
    expected = cfg.input_len + cfg.to_drop + cfg.tail_drop
    if x.shape[0] != expected:
        drops = f"input_len {cfg.input_len} + {cfg.to_drop + cfg.tail_drop} dropped by the windows and target"
        raise ConfigError("data", f"the series has {x.shape[0]} points; this config needs {expected} ({drops})")
    if cfg.transform == "log-diff" and columns is not None:
        transform_mod.require_positive(x, cfg.input_cols, lambda i: f"{columns.where(i)} of {cfg.file!r}")
    return x, column


def make_series(cfg: DataConfig, columns: Columns | None = None) -> Series:
    """docs/protocol.md, steps 1-5: generate (or take ``columns``, read from ``cfg.file``), make the
    target, transform, standardize, window, and drop the rows where any is undefined."""
    x, column = _raw(cfg, columns)
    raw_target = task_target(cfg, x[:, 0], column)
    if cfg.transform == "none":
        reference = x[:, 0]
        z, target, scaling = _model_units_plain(cfg, x, column)
    else:
        reference = transform_mod.reference(cfg.task, x[:, 0], raw_target)
        z, target, scaling = _model_units_transformed(cfg, x, raw_target, reference)
    rows = slice(cfg.to_drop, x.shape[0] - cfg.tail_drop)
    return Series(
        inputs=newest_first_windows(z, cfg.lahead)[rows],
        target=target[rows],
        raw_target=raw_target[rows],
        raw_input=x[rows, 0],
        reference=reference[rows],
        scaling=scaling,
        transform=cfg.transform,
    )


def split(series: Series, cfg: DataConfig) -> Split:
    """docs/protocol.md, step 6: first n_train rows train, the next n_test rows test; cast to float32.

    The windows are fed in ``cfg.order``: newest first (the example's) or oldest first.
    """
    n_train, n_test = split_sizes(cfg)
    inputs = series.inputs if cfg.order == "newest-first" else series.inputs[:, ::-1]
    x = inputs.astype(np.float32)
    y = series.target[:, None].astype(np.float32)
    stop = n_train + n_test
    return Split(x[:n_train], y[:n_train], x[n_train:stop], y[n_train:stop])


def test_part(series: Series, cfg: DataConfig) -> Series:
    """The rows of ``series`` that form the test set, still in float64."""
    n_train, n_test = split_sizes(cfg)
    rows = slice(n_train, n_train + n_test)
    return series._replace(
        inputs=series.inputs[rows],
        target=series.target[rows],
        raw_target=series.raw_target[rows],
        raw_input=series.raw_input[rows],
        reference=series.reference[rows],
    )


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
