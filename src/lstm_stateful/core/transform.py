"""Transforms: what the models learn instead of the series itself (docs/protocol.md, "Transforms").

g is the identity for ``diff`` and the natural log for ``log-diff``. Inputs, per column:
x'_t = g(x_t) - g(x_{t-1}). Target: y'_t = g(y_t) - g(r_t), where the reference r_t is the
latest value of the target known at t (``reference``). Inverse: y_t = g^-1(g(r_t) + y'_t).
``none`` is the identity throughout (its target is not made relative to r).

Pure NumPy, float64, broadcasting: the same functions serve whole arrays (``data.make_series``)
and a raw history fed one step at a time (the ``Predictor``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lstm_stateful.core.errors import ConfigError

__all__ = ["differences", "from_model", "g", "g_inverse", "reference", "require_positive", "step", "to_model"]


def g(transform: str, values: np.ndarray) -> np.ndarray:
    """Elementwise, any shape: log for ``log-diff``, the identity otherwise."""
    v = np.asarray(values, np.float64)
    return np.log(v) if transform == "log-diff" else v


def g_inverse(transform: str, values: np.ndarray) -> np.ndarray:
    """Elementwise, any shape: the inverse of ``g``."""
    v = np.asarray(values, np.float64)
    return np.exp(v) if transform == "log-diff" else v


def step(transform: str, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """One step of the inputs' transform: (..., F) raw values at t-1 and t -> x'_t, (..., F).
    ``none``: ``current`` itself."""
    if transform == "none":
        return np.asarray(current, np.float64)
    return g(transform, current) - g(transform, previous)


def differences(transform: str, x: np.ndarray) -> np.ndarray:
    """(N, F) raw inputs -> (N, F) x'_t; row 0 is NaN (it has no previous value) unless
    ``transform`` is ``none``, which returns ``x`` unchanged."""
    x = np.asarray(x, np.float64)
    if transform == "none":
        return x
    out = np.full(x.shape, np.nan)
    out[1:] = step(transform, x[:-1], x[1:])
    return out


def reference(task: str, x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """r_t, (N,): the latest value of the target known at t, from the first input column x
    (N,) and the raw target (N,). forecast: x_t itself; moving-average: the previous
    average, target[t-1] (NaN at t = 0). A target column has none (no transform takes it)."""
    if task == "forecast":
        return np.asarray(x, np.float64)
    if task == "moving-average":
        return np.concatenate([[np.nan], np.asarray(target, np.float64)[:-1]])
    raise ValueError(f"task {task!r} has no reference: its target is not made from the input")


def to_model(transform: str, y: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The target in the data's units -> what the model learns, y' = g(y) - g(r); shapes
    broadcast (y (..., n), r (n,)). ``none``: y unchanged."""
    if transform == "none":
        return np.asarray(y, np.float64)
    return g(transform, y) - g(transform, r)


def from_model(transform: str, z: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The inverse of ``to_model``: y = g^-1(g(r) + z), z (..., n) and r (n,) broadcast.
    ``none``: z unchanged."""
    if transform == "none":
        return np.asarray(z, np.float64)
    return g_inverse(transform, g(transform, r) + np.asarray(z, np.float64))


def require_positive(values: np.ndarray, columns: tuple[str, ...], where: Callable[[int], str]) -> None:
    """``log-diff`` takes the log of every input value: refuse the first one <= 0.

    values: (N, F) raw inputs, column j named ``columns[j]``; ``where(i)`` says where row i
    is in the data (``line 12 of 'f.csv'``), for the one-line error.
    """
    bad = ~(np.asarray(values) > 0)  # NaN is not positive either
    if not bad.any():
        return
    i, j = (int(k) for k in np.argwhere(bad)[0])  # row-major: the earliest row first
    problem = f"log-diff needs positive values; column {columns[j]!r} holds {float(values[i, j])!r} at {where(i)}"
    raise ConfigError("transform", f"{problem}; `transform` diff takes any sign")
