"""A saved fleet model fed one series as a stream: its state carried from value to value,
its next H values forecast from that state without consuming anything.

A fleet model's step at a time t reads the value one step back, the value one season (P)
back and the season's phase at t, and outputs the change from the value a season back
(recursive) or the H changes over the seasonal naive forecast (direct). A stream keeps, in
model units, what the next step needs:

* ``carry``: every seed's cell states, moved by each value once a season of values is
  there (training's valid steps); the stateless mode carries none (each forecast reads its
  window from a zero state);
* ``recent``: the latest ``P + lahead - 1`` values (the stateless window and a season back);
* ``head``: every seed's output at the step after the latest value, i.e. the forecast
  made with what the stream has seen;
* ``seen`` and ``phase``: values fed, and the next value's place in the season.

Feeding a value takes the step that reads it, so the state after a stream's values is the
state a panel forecast starts from at that series' end (``panel_train``'s origin): a
served series forecasts what ``predict`` forecasts from the same history, and feeding in
chunks of any sizes gives exactly what one chunk gives. The scaling of each stream (``loc``,
``scale``, data units) and the grid ordinal of its next value are host arrays.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lstm_stateful.core.cells import Carry, ModelConfig, ModelParams, dense, stack_step, zero_carry
from lstm_stateful.core.panel import PanelScaling
from lstm_stateful.core.panel_train import run_windows
from lstm_stateful.models.fleet_model import FleetModel, n_seeds
from lstm_stateful.models.stream import bucket

Host = jax.Array | np.ndarray  # a state's leaves: host arrays between calls, traced inside them
# The ordinal of a stream whose first value's time was not given (its forecasts carry no times).
NO_ORDINAL = np.iinfo(np.int64).min


class FleetShape(NamedTuple):
    """The static part of a fleet stream program (hashable): the cells, the season P, the
    stateless window, the head's outputs (1 recursive, H direct) and the mode."""

    model: ModelConfig
    period: int
    lahead: int
    head: int
    stateful: bool

    @property
    def depth(self) -> int:
        """Values a stream keeps: a season back from the oldest step of a stateless window."""
        return self.period + self.lahead - 1


class Core(NamedTuple):
    """The compiled part of B streams' state (axis 0: stream).

    carry: per layer, (B, seeds, units) arrays; recent: (B, depth) float32 model units,
    oldest first (0 before a stream's first value); head: (B, seeds, head) float32, the
    latest step's output (0 until a season of values is there); seen: (B,) int32 values fed;
    phase: (B,) int32 the next value's place in the season, in [0, P).
    """

    carry: Carry
    recent: Host
    head: Host
    seen: Host
    phase: Host


class FleetStreamState(NamedTuple):
    """B streams: ``core`` and the host part. loc, scale: (B,) float64 each stream's
    scaling (``PanelScaling``); ordinal: (B,) int64 the next value's grid ordinal
    (``NO_ORDINAL`` if unknown)."""

    core: Core
    loc: np.ndarray
    scale: np.ndarray
    ordinal: np.ndarray


def shape_of(model: FleetModel) -> FleetShape:
    p = model.config.panel
    return FleetShape(model.config.model, p.period, p.lahead, p.head, model.mode == "stateful")


def initial_state(model: FleetModel, loc: np.ndarray, scale: np.ndarray, ordinal: np.ndarray) -> FleetStreamState:
    """B = len(loc) empty streams with these scalings and first ordinals (host arrays)."""
    b, seeds, shape = len(loc), n_seeds(model), shape_of(model)
    carry = jax.tree.map(lambda c: np.zeros((b, seeds, c.shape[1]), np.float32), zero_carry(1, shape.model))
    ordinal = np.asarray(ordinal, np.int64)
    phase = np.where(ordinal == NO_ORDINAL, 0, np.mod(ordinal, shape.period)).astype(np.int32)
    core = Core(
        carry,
        np.zeros((b, shape.depth), np.float32),
        np.zeros((b, seeds, shape.head), np.float32),
        np.zeros((b,), np.int32),
        phase,
    )
    return FleetStreamState(core, np.asarray(loc, np.float64), np.asarray(scale, np.float64), ordinal)


def _row(recent: Host, phase: Host, back: int, period: int) -> jax.Array:
    """The inputs of the step ``back`` steps before the next one, as ``panel_train.features``
    builds them: recent (..., depth), phase (...,) of the next step -> (..., F)."""
    d = recent.shape[-1]
    lag1 = recent[..., d - 1 - back]
    if period == 1:
        return jnp.asarray(lag1)[..., None]
    angle = 2 * jnp.pi * (jnp.mod(phase - back, period) / period).astype(jnp.float32)
    return jnp.stack([lag1, recent[..., d - period - back], jnp.sin(angle), jnp.cos(angle)], axis=-1)


def _head(
    params: ModelParams, carry: Carry, recent: Host, seen: Host, phase: Host, shape: FleetShape
) -> tuple[Carry, jax.Array]:
    """One seed's step after the latest value: (its state, its output (B, head)). The
    stateless mode reads a window of ``lahead`` steps from a zero state, a step without a
    season of values before it taking no part (``seen - back < P``)."""
    if shape.stateful:
        carry, h = stack_step(params.cells, carry, _row(recent, phase, 0, shape.period))
        return carry, dense(params.dense, h)
    backs = range(shape.lahead - 1, -1, -1)  # oldest step first
    xw = jnp.stack([_row(recent, phase, k, shape.period) for k in backs], axis=1)
    okw = jnp.stack([seen - k >= shape.period for k in backs], axis=1)
    return carry, run_windows(params, shape.model, xw, okw)


def _seed_axis_first(carry: Carry) -> Carry:
    return jax.tree.map(lambda c: jnp.swapaxes(c, 0, 1), carry)


def _kept(ok: jax.Array, new: jax.Array, old: jax.Array | np.ndarray, axis: int) -> jax.Array:
    """``new`` where ok (B,) holds (B on ``axis``), else ``old``."""
    shape = [1] * new.ndim
    shape[axis] = -1
    return jnp.where(ok.reshape(shape), new, old)


@functools.partial(jax.jit, static_argnames=("shape",))
def feed_core(params: ModelParams, core: Core, zs: jax.Array, fed: jax.Array, *, shape: FleetShape
              ) -> tuple[Core, jax.Array]:  # fmt: skip
    """Feed T steps to B streams: zs (T, B) float32 model units, fed (T, B) bool (False:
    padding, nothing moves). Returns the state after them and, after each value, every
    seed's forecast of the next one (T, seeds, B), model units, NaN until a season of
    values is there."""
    P = shape.period

    def step(c: Core, inputs: tuple[jax.Array, jax.Array]) -> tuple[Core, jax.Array]:
        z, ok = inputs
        recent = _kept(ok, jnp.concatenate([c.recent[:, 1:], z[:, None]], axis=1), c.recent, 0)
        seen = c.seen + ok.astype(jnp.int32)
        phase = jnp.where(ok, jnp.mod(c.phase + 1, P), c.phase)
        carry = _seed_axis_first(c.carry)
        new, out = jax.vmap(lambda p, k: _head(p, k, recent, seen, phase, shape))(params, carry)
        valid = ok & (seen >= P)
        carry = jax.tree.map(lambda n, o: _kept(valid, n, o, 1), new, carry)
        head = _kept(valid, out, jnp.swapaxes(c.head, 0, 1), 1)  # (seeds, B, head)
        pred = jnp.where(seen >= P, head[..., 0] + recent[:, -P], jnp.nan)
        return Core(_seed_axis_first(carry), recent, jnp.swapaxes(head, 0, 1), seen, phase), pred

    return jax.lax.scan(step, core, (zs, fed))


@functools.partial(jax.jit, static_argnames=("steps", "shape"))
def forecast_core(params: ModelParams, core: Core, *, steps: int, shape: FleetShape) -> jax.Array:
    """Every seed's forecasts of B streams' next ``steps`` values from their state, without
    changing it: (seeds, B, steps) model units. Recursive: each forecast is fed back as the
    next step's input; direct: the head's H outputs over the seasonal naive forecast."""
    P = shape.period
    if shape.head > 1:
        back = np.array([P * -(-(j + 1) // P) - j for j in range(steps)])  # the values the seasonal naive repeats
        return jnp.swapaxes(core.head, 0, 1)[..., :steps] + core.recent[:, core.recent.shape[1] - back][None]

    def one_seed(p: ModelParams, carry: Carry, head: jax.Array) -> jax.Array:
        def step(state: tuple, _: None) -> tuple[tuple, jax.Array]:
            carry, recent, head, seen, phase = state
            y = head[:, 0] + recent[:, -P]
            recent, seen, phase = jnp.concatenate([recent[:, 1:], y[:, None]], axis=1), seen + 1, jnp.mod(phase + 1, P)
            carry, head = _head(p, carry, recent, seen, phase, shape)
            return (carry, recent, head, seen, phase), y

        _, ys = jax.lax.scan(step, (carry, core.recent, head, core.seen, core.phase), None, length=steps)
        return ys.T

    return jax.vmap(one_seed)(params, _seed_axis_first(core.carry), jnp.swapaxes(core.head, 0, 1))


def feed(model: FleetModel, params: ModelParams, state: FleetStreamState, values: np.ndarray
         ) -> tuple[FleetStreamState, np.ndarray]:  # fmt: skip
    """Feed B streams n values each (B, n), data units, already checked (finite; >= 0 for
    log scaling). Returns the state after them and, after each value, the forecast of the
    next one (B, n) float64 data units, the mean over the seeds (NaN until a season of
    values is there). The chunk axis is padded to a power of two (a few programs, not one
    per length)."""
    scaling = PanelScaling(model.scaling.kind, state.loc, state.scale)
    n = values.shape[1]
    zs = np.zeros((bucket(n), values.shape[0]), np.float32)
    zs[:n] = scaling.to_model(values).T
    fed = np.arange(zs.shape[0])[:, None] < n
    core, preds = feed_core(params, state.core, zs, np.broadcast_to(fed, zs.shape), shape=shape_of(model))
    return advanced(state, core, n), seed_mean(scaling, np.asarray(preds)[:n])


def advanced(state: FleetStreamState, core: Core, n: int) -> FleetStreamState:
    """The streams with ``core`` after n more values: their next value's ordinal moves on."""
    ordinal = np.where(state.ordinal == NO_ORDINAL, NO_ORDINAL, state.ordinal + n)
    return FleetStreamState(core, state.loc, state.scale, ordinal)


def seed_mean(scaling: PanelScaling, z: np.ndarray) -> np.ndarray:
    """Every seed's forecasts (n, seeds, B), model units -> their mean in data units (B, n),
    each seed back in data units first, as ``predict`` averages its seeds."""
    data = scaling.to_data(np.transpose(np.asarray(z, np.float64), (2, 0, 1)))  # (B, n, seeds): each row its scaling
    return data.mean(axis=2)


def forecast(model: FleetModel, params: ModelParams, state: FleetStreamState, horizon: int) -> np.ndarray:
    """B streams' next ``horizon`` values (B, horizon) float64 data units, the mean over the
    seeds. Recursive horizons are padded to a power of two (one program per size class)."""
    steps = horizon if model.config.panel.head > 1 else bucket(horizon)
    z = np.asarray(forecast_core(params, state.core, steps=steps, shape=shape_of(model)), np.float64)
    scaling = PanelScaling(model.scaling.kind, state.loc, state.scale)
    # Each seed back in data units, then the mean: as predict averages its seeds.
    return scaling.to_data(np.moveaxis(z[..., :horizon], 0, 1)).mean(axis=1)
