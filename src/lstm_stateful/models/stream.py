"""Streaming prediction: a saved model fed one value, or a chunk, at a time.

The model at time t sees the window of the ``lahead`` latest input rows (one value per
input column), as in training; a stateful model carries every layer's state from point to
point (a stateless one starts every window from zeros). The window is part of the stream's
state, so feeding a series in chunks of any sizes gives exactly what one call on the whole
series gives. The first ``lahead - 1`` points of a stream fill the window and predict NaN
(training drops those rows too); a stateful model's state does not move until the window is
full.

A stateful model trained with the interleaved layout at batch size B > 1 carried its
state from a row to the row B later (sample i of batch k+1 continues sample i of batch k):
each stream then keeps B states, and its n-th full window goes to state n mod B, as in
training, so the predictor reproduces the model's own test predictions.

A model trained with a ``transform`` (diff, log-diff) learned differences: the predictor
takes raw values, keeps per stream the raw rows it still needs (``History``: the previous
row, for the differences; the latest ``tsteps`` values of the first input, for a moving
average's reference), and returns predictions in the data's units (``core.transform``). A
stream's first point has no difference: it predicts NaN and fills no window, so the first
``lahead`` points predict NaN; so do the points before a moving average's reference exists.

``stream_chunk`` is the pure, compiled core; ``feed`` the pure step from raw values to
predictions in the data's units (the service stacks many streams' states through it);
``Predictor`` holds a stream's state between calls and converts raw values to the model's
units and back.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lstm_stateful.core import transform as transform_mod
from lstm_stateful.core.cells import Carry, ModelParams, forward, zero_carry
from lstm_stateful.core.config import require_int
from lstm_stateful.core.data import trailing_mean
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.models.model_io import SavedModel, load_model


class StreamState(NamedTuple):
    """The compiled part of B streams' state, in model units.

    carry: one per layer, the cell's states, (B, slots, units) per array (see ``slots``);
    window: (B, lahead, F) latest input rows, newest first; filled: (B,) int32, rows in the
    window so far, capped at lahead; steps: (B,) int32, full windows seen (predictions made).
    """

    carry: Carry
    window: jax.Array
    filled: jax.Array
    steps: jax.Array


class History(NamedTuple):
    """The raw rows a transformed model's streams still need, in the data's units (host, float64).

    rows: (B, depth, F), the latest raw input rows, oldest first, NaN before a stream's
    first; ``depth`` is 0 without a transform. seen: (B,) int64, raw rows fed so far.
    """

    rows: np.ndarray
    seen: np.ndarray


class PredictorState(NamedTuple):
    """Everything a ``Predictor`` carries between calls: what ``snapshot`` returns."""

    stream: StreamState
    history: History


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
        window=jnp.zeros((batch_size, model.data.lahead, model.model.n_features), jnp.float32),
        filled=jnp.zeros((batch_size,), jnp.int32),
        steps=jnp.zeros((batch_size,), jnp.int32),
    )


def history_depth(model: SavedModel) -> int:
    """Raw rows a stream keeps: none without a transform; else the previous row (the
    differences), or the latest ``tsteps`` (a moving average's reference, m_{t-1})."""
    d = model.data
    if d.transform == "none":
        return 0
    return d.tsteps if d.task == "moving-average" else 1


def initial_history(model: SavedModel, batch_size: int) -> History:
    """No raw row seen yet."""
    rows = np.full((batch_size, history_depth(model), model.model.n_features), np.nan)
    return _frozen(rows, np.zeros((batch_size,), np.int64))


def _frozen(rows: np.ndarray, seen: np.ndarray) -> History:
    """A ``History`` of read-only arrays: snapshots share them, so they are replaced, never written."""
    rows, seen = np.array(rows), np.array(seen)  # own copies, so no caller's array is frozen
    rows.setflags(write=False)
    seen.setflags(write=False)
    return History(rows, seen)


def _per_stream(ok: jax.Array, new: StreamState, old: StreamState) -> StreamState:
    """``new`` where ok (B,) holds, ``old`` elsewhere, leaf by leaf (each leaf's axis 0 is B)."""

    def pick(n: jax.Array, o: jax.Array) -> jax.Array:
        return jnp.where(ok.reshape(ok.shape + (1,) * (n.ndim - 1)), n, o)

    return jax.tree.map(pick, new, old)


@functools.partial(jax.jit, static_argnames=("stateful", "oldest_first"))
def stream_chunk(
    params: ModelParams, state: StreamState, xs: jax.Array, fed: jax.Array, *, stateful: bool, oldest_first: bool
) -> tuple[StreamState, jax.Array]:
    """Feed T time steps to B streams.

    xs: (T, B, F) float32 input rows in model units; fed: (T, B) bool, False where a stream
    takes no row at that step (padding, or a transformed stream's first point): its state
    does not move and it predicts NaN. Returns the state after the last step and the
    predictions (T, B) in model units, NaN until a stream's window is full.
    """
    lahead, n_slots = state.window.shape[1], jax.tree.leaves(state.carry)[0].shape[1]
    streams = jnp.arange(state.window.shape[0])

    def step(s: StreamState, inputs: tuple[jax.Array, jax.Array]) -> tuple[StreamState, jax.Array]:
        x, ok = inputs
        window = jnp.concatenate([x[:, None], s.window[:, :-1]], axis=1)
        filled = jnp.minimum(s.filled + 1, lahead)
        ready = filled >= lahead
        seq = window[:, ::-1] if oldest_first else window
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
        return _per_stream(ok, moved, s), jnp.where(ok & ready, pred[:, 0], jnp.nan)

    return jax.lax.scan(step, state, (xs, fed))


def bucket(n: int) -> int:
    """Chunks are padded to a power of two, so a stream of ragged chunks compiles a few
    programs (one per size class), not one per length."""
    return 1 << max(n - 1, 0).bit_length()


def as_table(arr: np.ndarray, b: int, n_features: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """Values as (B, n, F), and the shape of their predictions.

    One input (F = 1): (), (n,) or (1, n) for one stream; (B,) or (B, n) for B. Several:
    (F,) or (n, F) for one stream; (B, F) or (B, n, F) for B.
    """
    if n_features == 1:
        fits = (b == 1 and arr.ndim <= 1) or (arr.ndim in (1, 2) and arr.shape[0] == b)
        wanted, shape = "give (n,) for one stream, or (B, n)", arr.shape
    else:
        if arr.ndim == 0 or arr.shape[-1] != n_features:
            raise ConfigError("values", f"shape {arr.shape}: the last axis must hold the model's {n_features} inputs")
        fits = (b == 1 and arr.ndim <= 2) or (arr.ndim in (2, 3) and arr.shape[0] == b)
        wanted, shape = (
            f"give (n, {n_features}) for one stream, or (B, {n_features}) or (B, n, {n_features})",
            arr.shape[:-1],
        )
    if not fits:
        raise ConfigError("values", f"shape {arr.shape} does not fit batch size {b}: {wanted}")
    return arr.reshape(b, -1, n_features), shape


def first_unusable(table: np.ndarray, transform: str) -> tuple[int, ...] | None:
    """The index of the first value the model cannot take, or None. Usable: finite, within
    float32's range (the model computes in float32: a value beyond it would become an
    infinity), and positive for log-diff. table: any shape."""
    usable = np.abs(table) <= np.finfo(np.float32).max  # False for NaN and the infinities too
    if transform == "log-diff":
        usable &= table > 0
    return None if usable.all() else tuple(int(i) for i in np.argwhere(~usable)[0])


def check_values(table: np.ndarray, transform: str) -> None:
    """``first_unusable`` as one line naming the value and where it is. table: (B, n, F)."""
    bad = first_unusable(table, transform)
    if bad is None:
        return
    # One input: say (stream, step), as the values were given; several: which input too.
    where = f"(stream, step) {bad[:2]}" if table.shape[2] == 1 else f"(stream, step, input) {bad}"
    why = "; the model learned log-diff, which needs values > 0" if np.isfinite(table[bad]) else ""
    raise ConfigError("values", f"hold {table[bad]} at {where}{why}")


class Prepared(NamedTuple):
    """A chunk of raw rows made ready for the model, per stream (B streams, n steps).

    inputs: (B, n, F) model units (0 where not fed); fed: (B, n) bool; reference: (B, n) the
    r_t each prediction is relative to, data units (NaN where unknown); history: after the chunk.
    """

    inputs: np.ndarray
    fed: np.ndarray
    reference: np.ndarray
    history: History


def prepare(model: SavedModel, history: History, table: np.ndarray) -> Prepared:
    """Raw rows (B, n, F) -> the model's inputs (docs/protocol.md, "Transforms"): the
    differences of each row with the one before (from ``history`` across calls), then the
    scaling; and each point's reference, the latest target value known there."""
    d, s = model.data, model.scaling
    n, depth = table.shape[1], history.rows.shape[1]
    if d.transform == "none":
        x, fed, reference = table, np.ones(table.shape[:2], bool), table[..., 0]
        rows = history.rows
    else:
        rows_all = np.concatenate([history.rows, table], axis=1)  # (B, depth + n, F), oldest first
        x = transform_mod.step(d.transform, rows_all[:, depth - 1 : -1], rows_all[:, depth:])
        fed = history.seen[:, None] + np.arange(n) >= 1  # a first row has no difference
        reference = _reference(d.task, d.tsteps, rows_all[..., 0], depth)
        rows = rows_all[:, rows_all.shape[1] - depth :]
    z = (x - np.asarray(s.input_mean)) / np.asarray(s.input_scale)
    return Prepared(np.where(fed[..., None], z, 0.0), fed, reference, _frozen(rows, history.seen + n))


def _reference(task: str, tsteps: int, first: np.ndarray, depth: int) -> np.ndarray:
    """r_t of each new point: (B, depth + n) raw first-input values, the ``depth`` kept ones
    first -> (B, n). forecast: x_t itself; moving-average: m_{t-1}, the mean of the ``tsteps``
    values before t (NaN while fewer were seen): the moving average one step back."""
    if task == "forecast":
        return first[:, depth:]
    return trailing_mean(first, tsteps)[:, depth - 1 : -1]


class Predictor:
    """A saved model predicting ``batch_size`` independent streams as values arrive.

    >>> p = Predictor.load("model/stateful")      # doctest: +SKIP
    >>> p.predict(0.05)                           # one value -> one prediction
    >>> p.predict(chunk)                          # (n,) -> (n,), the state carried on
    >>> saved = p.snapshot(); ...; p.restore(saved)

    Values and predictions are in the data's own units (the saved scaling and the model's
    transform are applied both ways). The batch size is the predictor's, independent of the
    one the model trained with (a stateful model trained interleaved keeps that many states
    per stream: see above).
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
        return int(self._state.stream.window.shape[0])

    def _initial(self, batch_size: int) -> PredictorState:
        return PredictorState(initial_state(self.model, batch_size), initial_history(self.model, batch_size))

    def reset(self, batch_size: int | None = None) -> None:
        """Start every stream afresh (zero state, empty window), optionally with a new batch size."""
        b = self.batch_size if batch_size is None else batch_size
        require_int("batch_size", b)
        self._state = self._initial(b)

    def snapshot(self) -> PredictorState:
        """The streams' state now; immutable, so it stays valid whatever is fed next."""
        return self._state

    def restore(self, state: PredictorState) -> None:
        """Continue from a state ``snapshot`` returned (same model and batch size)."""
        expected = jax.tree.map(np.shape, self._initial(self.batch_size))
        if not isinstance(state, PredictorState) or jax.tree.map(np.shape, state) != expected:
            raise ConfigError("state", "was not taken from this predictor's model and batch size")
        self._state = state

    def predict(self, values: float | np.ndarray) -> np.ndarray:
        """Feed values and return predictions, float64, one per time step and stream.

        One input: a scalar or (n,) for batch size 1, (B,) or (B, n) for B streams (one
        value per stream, or n per stream); predictions have the values' shape. F inputs:
        (F,) or (n, F) for batch size 1, (B, F) or (B, n, F) for B streams; predictions
        have the values' shape without the last axis.
        """
        arr = np.asarray(values, np.float64)
        table, shape = as_table(arr, self.batch_size, self.model.model.n_features)
        check_values(table, self.model.data.transform)
        return self._feed(table).reshape(shape)

    def _feed(self, table: np.ndarray) -> np.ndarray:
        """table: (B, n, F) raw values -> (B, n) predictions in the data's units."""
        self._state, preds = feed(self.model, self._params, self._state, table)
        return preds


def feed(
    model: SavedModel, params: ModelParams, state: PredictorState, table: np.ndarray
) -> tuple[PredictorState, np.ndarray]:
    """Feed B streams n raw rows each: the pure core of ``Predictor.predict``.

    params: the model's weights (host or device arrays); state: the B streams' state
    (``Predictor.snapshot``, or stacked from several); table: (B, n, F) raw values, already
    checked (``check_values``). Returns the state after them and (B, n) float64 predictions
    in the data's units. The chunk axis is padded to a power of two, so ragged chunks
    compile one program per size class (and per B).
    """
    ready = prepare(model, state.history, table)
    n = table.shape[1]
    xs, fed = padded_steps(ready)
    stream, preds = stream_chunk(params, state.stream, xs, fed, **chunk_kwargs(model))
    # Sliced on the host: slicing the device array would compile a program per shape.
    z = np.asarray(preds)[:n].T.astype(np.float64)
    return PredictorState(stream, ready.history), to_data(model, z, ready.reference)


def chunk_kwargs(model: SavedModel) -> dict[str, bool]:
    """``stream_chunk``'s static arguments for ``model``."""
    return {"stateful": model.mode == "stateful", "oldest_first": model.data.order == "oldest-first"}


def padded_steps(ready: Prepared) -> tuple[np.ndarray, np.ndarray]:
    """Prepared rows as ``stream_chunk`` takes them: xs (T, B, F) float32 and fed (T, B),
    the n steps padded to a power of two (``bucket``)."""
    batch, n, f = ready.inputs.shape
    xs, fed = np.zeros((bucket(n), batch, f), np.float32), np.zeros((bucket(n), batch), bool)
    xs[:n], fed[:n] = ready.inputs.swapaxes(0, 1), ready.fed.T
    return xs, fed


def to_data(model: SavedModel, z: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Predictions in model units (B, n) -> the data's units: the target's scaling undone,
    then the transform from each prediction's reference (B, n)."""
    return transform_mod.from_model(model.data.transform, model.scaling.raw_target(z), reference)
