"""Streaming prediction: a saved model fed one value, or a chunk, at a time.

The model at time t sees the window of the ``lahead`` latest values, as in training; a
stateful model carries its state from point to point (a stateless one starts every
window from zeros). The window is part of the stream's state, so feeding a series in
chunks of any sizes gives exactly what one call on the whole series gives. The first
``lahead - 1`` points of a stream fill the window and predict NaN (training drops those
rows too); a stateful model's state does not move until the window is full.

A stateful model trained with the interleaved layout at batch size B > 1 carried its
state from a row to the row B later (sample i of batch k+1 continues sample i of batch k):
each stream then keeps B states, and its n-th full window goes to state n mod B, as in
training, so the predictor reproduces the model's own test predictions.

``stream_chunk`` is the pure, compiled core; ``Predictor`` holds a stream's state
between calls and converts raw values to the model's units and back.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lstm_stateful.core.cells import Carry, ModelParams, forward, zero_carry
from lstm_stateful.core.config import require_int
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.models.model_io import SavedModel, load_model


class StreamState(NamedTuple):
    """One state per stream, B streams.

    carry: the cell's states, (B, slots, units) per array (see ``slots``); window:
    (B, lahead) latest values in model units, newest first; filled: (B,) int32, values
    seen so far, capped at lahead; steps: (B,) int32, full windows seen (predictions made).
    """

    carry: Carry
    window: jax.Array
    filled: jax.Array
    steps: jax.Array


def slots(model: SavedModel) -> int:
    """States per stream: the training batch size for a stateful model trained interleaved
    (its state skipped batch_size rows), else 1."""
    d = model.data
    return d.batch_size if model.mode == "stateful" and d.layout == "interleaved" else 1


def initial_state(model: SavedModel, batch_size: int) -> StreamState:
    """Every stream empty: zero states, empty window."""
    carry = jax.tree.map(lambda c: jnp.repeat(c[:, None], slots(model), axis=1), zero_carry(batch_size, model.model))
    return StreamState(
        carry=carry,
        window=jnp.zeros((batch_size, model.data.lahead), jnp.float32),
        filled=jnp.zeros((batch_size,), jnp.int32),
        steps=jnp.zeros((batch_size,), jnp.int32),
    )


@functools.partial(jax.jit, static_argnames=("stateful", "oldest_first"))
def stream_chunk(
    params: ModelParams, state: StreamState, xs: jax.Array, valid: jax.Array, *, stateful: bool, oldest_first: bool
) -> tuple[StreamState, jax.Array]:
    """Feed T time steps to B streams.

    xs: (T, B) float32 values in model units; valid: (T,) bool, False for padding (the
    state does not move). Returns the state after the last valid step and the
    predictions (T, B) in model units, NaN until a stream's window is full.
    """
    lahead, n_slots = state.window.shape[1], jax.tree.leaves(state.carry)[0].shape[1]
    streams = jnp.arange(state.window.shape[0])

    def step(s: StreamState, inputs: tuple[jax.Array, jax.Array]) -> tuple[StreamState, jax.Array]:
        x, ok = inputs
        window = jnp.concatenate([x[:, None], s.window[:, :-1]], axis=1)
        filled = jnp.minimum(s.filled + 1, lahead)
        ready = filled >= lahead
        seq = (window[:, ::-1] if oldest_first else window)[..., None]
        slot = s.steps % n_slots
        start = jax.tree.map(lambda c: c[streams, slot], s.carry)
        start = start if stateful else jax.tree.map(jnp.zeros_like, start)
        carry, pred = forward(params, start, seq)
        # The state moves only once the window is full (training never saw shorter ones).
        carry = jax.tree.map(
            lambda old, new: old.at[streams, slot].set(jnp.where(ready[:, None], new, old[streams, slot])),
            s.carry,
            carry,
        )
        moved = StreamState(carry, window, filled, s.steps + ready.astype(jnp.int32))
        return jax.tree.map(lambda new, old: jnp.where(ok, new, old), moved, s), jnp.where(ready, pred[:, 0], jnp.nan)

    return jax.lax.scan(step, state, (xs, valid))


def _bucket(n: int) -> int:
    """Chunks are padded to a power of two, so a stream of ragged chunks compiles a few
    programs (one per size class), not one per length."""
    return 1 << max(n - 1, 0).bit_length()


def _as_table(arr: np.ndarray, b: int) -> np.ndarray:
    """Values as (B, n): (), (n,) or (1, n) for one stream; (B,) or (B, n) for B."""
    if b == 1 and arr.ndim <= 1:
        return arr.reshape(1, -1)
    if arr.ndim in (1, 2) and arr.shape[0] == b:
        return arr.reshape(b, -1)
    raise ConfigError("values", f"shape {arr.shape} does not fit batch size {b}: give (n,) for one stream, or (B, n)")


class Predictor:
    """A saved model predicting ``batch_size`` independent streams as values arrive.

    >>> p = Predictor.load("model/stateful")      # doctest: +SKIP
    >>> p.predict(0.05)                           # one value -> one prediction
    >>> p.predict(chunk)                          # (n,) -> (n,), the state carried on
    >>> saved = p.snapshot(); ...; p.restore(saved)

    Values and predictions are in the data's own units (the saved scaling is applied).
    The batch size is the predictor's, independent of the one the model trained with
    (a stateful model trained interleaved keeps that many states per stream: see above).
    """

    def __init__(self, model: SavedModel, batch_size: int = 1) -> None:
        self.model = model
        self._params = jax.device_put(model.params)
        self.reset(batch_size)

    @classmethod
    def load(cls, directory: str | Path, batch_size: int = 1) -> Predictor:
        return cls(load_model(directory), batch_size)

    @property
    def batch_size(self) -> int:
        return int(self._state.window.shape[0])

    def reset(self, batch_size: int | None = None) -> None:
        """Start every stream afresh (zero state, empty window), optionally with a new batch size."""
        b = self.batch_size if batch_size is None else batch_size
        require_int("batch_size", b)
        self._state = initial_state(self.model, b)

    def snapshot(self) -> StreamState:
        """The streams' state now; immutable, so it stays valid whatever is fed next."""
        return self._state

    def restore(self, state: StreamState) -> None:
        """Continue from a state ``snapshot`` returned (same model and batch size)."""
        expected = jax.tree.map(jnp.shape, initial_state(self.model, self.batch_size))
        if jax.tree.map(jnp.shape, state) != expected:
            raise ConfigError("state", "was not taken from this predictor's model and batch size")
        self._state = state

    def predict(self, values: float | np.ndarray) -> np.ndarray:
        """Feed values: a scalar or (n,) for batch size 1, (B,) or (B, n) for B streams
        (one value per stream, or n per stream). Returns predictions, float64, same shape."""
        arr = np.asarray(values, np.float64)
        table = _as_table(arr, self.batch_size)
        # The model computes in float32: a value beyond its range would become an infinity.
        usable = np.isfinite(table) & (np.abs(table) <= np.finfo(np.float32).max)
        if not usable.all():
            bad = np.argwhere(~usable)[0]
            raise ConfigError("values", f"hold {table[tuple(bad)]} at (stream, step) {tuple(int(i) for i in bad)}")
        return self._feed(table).reshape(arr.shape)

    def _feed(self, table: np.ndarray) -> np.ndarray:
        """table: (B, n) raw values -> (B, n) raw predictions."""
        s = self.model.scaling
        n = table.shape[1]
        xs = np.zeros((_bucket(n), table.shape[0]), np.float32)
        xs[:n] = ((table - s.input_mean) / s.input_scale).T
        valid = np.arange(xs.shape[0]) < n
        self._state, preds = stream_chunk(
            self._params,
            self._state,
            xs,
            valid,
            stateful=self.model.mode == "stateful",
            oldest_first=self.model.data.order == "oldest-first",
        )
        return np.asarray(preds[:n]).T.astype(np.float64) * s.target_scale + s.target_mean
