"""One global model trained over a panel, and its forecasts: one compiled program each.

The panel comes right-aligned (``core.panel.Layout``): column t of every series is the
same time relative to the end, so the origins are shared columns. Each step's input is the
value one step back and, with a season P, the value one season back and the season's phase
(``features``).

Stateful: batch slots hold series. A group of B series runs from a zero state through its
training columns in chunks of C steps; the state passes from chunk to chunk (truncated
backpropagation: the gradient stops at a chunk's start) and is reset between groups, so
no series' state ever reaches another's. A step whose inputs are not all there (padding
before a short series, its first P values) leaves the state as it was and carries no
loss. Stateless: each target reads its window of ``lahead`` steps from a zero state.

``lax.scan`` over epochs, groups and chunks; ``vmap`` over seeds; the two modes side by
side in one program. The head outputs 1 value (recursive: forecasts feed back their own
predictions) or H values (direct: every step of the horizon at once, each as its
difference from the seasonal naive forecast made at the origin).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lstm_stateful.core.cells import Carry, DenseParams, ModelConfig, ModelParams, dense, init_params, stack_step
from lstm_stateful.core.cells import zero_carry as cells_zero_carry
from lstm_stateful.core.optim import keras_adam

# Gradients are clipped to this global norm: one series with a jump must not throw the
# shared weights off (measured: without it an occasional seed diverged on the M3 panel).
CLIP_NORM = 1.0
# Steps of a scan unrolled into straight-line code: measured on the 2-core CPU over M3
# monthly (5 seeds, 2 epochs), 6 took 18.2 s where 1 took 31.3 s, 12 took 20.6 s and 24
# took 18.0 s with a longer compile.
UNROLL = 6


class FleetSpec(NamedTuple):
    """The static shape of a fleet program (hashable: another value recompiles).

    model: the cells; period: the season P (1: none); head: outputs per step (1 or H);
    horizon: H; lahead: the stateless window; chunk: C; batch_size: B series per group;
    first_chunk, n_chunks: the training columns (``Layout``); epochs.
    """

    model: ModelConfig
    period: int
    head: int
    horizon: int
    lahead: int
    chunk: int
    batch_size: int
    first_chunk: int
    n_chunks: int
    epochs: int


class PanelData(NamedTuple):
    """z, valid: (S, N) float32 and bool; phase: (S, N) float32 (``core.panel.Layout``)."""

    z: jax.Array | np.ndarray
    valid: jax.Array | np.ndarray
    phase: jax.Array | np.ndarray


class DeviceData(NamedTuple):
    """``PanelData`` on the device, inside the programs."""

    z: jax.Array
    valid: jax.Array
    phase: jax.Array


def _on_device(data: PanelData) -> DeviceData:
    return DeviceData(*(jnp.asarray(a) for a in data))


class FleetFit(NamedTuple):
    """params: (stateful, stateless), each with a leading seed axis; losses: (2, seeds, epochs)
    the mean training loss of each epoch (model units, MAE)."""

    params: tuple[ModelParams, ModelParams]
    losses: jax.Array


def init_fleet(seed: int, n_seeds: int, spec: FleetSpec, mode: int) -> ModelParams:
    """Weights of seeds 0 <= i < n_seeds for mode 0 (stateful) or 1 (stateless), host arrays.

    Seed i draws from ``default_rng([seed, mode, i])``: independent of n_seeds. The Dense
    readout has ``spec.head`` outputs.
    """
    per_seed = []
    for i in range(n_seeds):
        rng = np.random.default_rng([seed, mode, i])
        params = init_params(rng, spec.model)
        limit = np.sqrt(6.0 / (spec.model.units + spec.head))
        kernel = rng.uniform(-limit, limit, (spec.model.units, spec.head)).astype(np.float32)
        per_seed.append(params._replace(dense=DenseParams(kernel, np.zeros((spec.head,), np.float32))))
    return jax.tree.map(lambda *leaves: np.stack(leaves), *per_seed)


def features(z: jax.Array, phase: jax.Array, period: int) -> jax.Array:
    """Each column's inputs: z, phase (S, N) -> (S, N, F). Column t gets z[t-1] and, with a
    season, z[t-P], sin and cos of its phase; the first columns get zeros for what lies
    before the array (they are never valid steps)."""
    lag1 = jnp.pad(z, ((0, 0), (1, 0)))[:, :-1]
    if period == 1:
        return lag1[..., None]
    lagp = jnp.pad(z, ((0, 0), (period, 0)))[:, :-period]
    angle = 2 * jnp.pi * phase
    return jnp.stack([lag1, lagp, jnp.sin(angle), jnp.cos(angle)], axis=-1)


def base(z: jax.Array, col: jax.Array | int, horizon: int, period: int) -> jax.Array:
    """The seasonal naive forecast made at column ``col`` of the H columns from it, from
    values before ``col``: (S, N) -> (S, H). Step j takes the value ceil((j+1)/P) seasons back."""
    back = np.array([period * -(-(j + 1) // period) for j in range(horizon)]) - np.arange(horizon)
    return jnp.take(z, col - jnp.asarray(back), axis=1)


def _masked_step(params: ModelParams, carry: Carry, x: jax.Array, ok: jax.Array) -> tuple[Carry, jax.Array]:
    """One step of the stacked cells; where ``ok`` (B,) is False the state stays as it was."""
    new, h = stack_step(params.cells, carry, x)
    kept = jax.tree.map(lambda n, c: jnp.where(ok[:, None], n, c), new, carry)
    return kept, h


def run_steps(params: ModelParams, carry: Carry, xs: jax.Array, ok: jax.Array) -> tuple[Carry, jax.Array]:
    """Steps in time order: xs (B, T, F), ok (B, T) -> the end state and each step's head
    output (B, T, head)."""

    def step(c: Carry, inputs: tuple[jax.Array, jax.Array]) -> tuple[Carry, jax.Array]:
        c, h = _masked_step(params, c, *inputs)
        return c, h

    carry, hs = jax.lax.scan(step, carry, (jnp.swapaxes(xs, 0, 1), jnp.swapaxes(ok, 0, 1)), unroll=UNROLL)
    return carry, jnp.swapaxes(dense(params.dense, hs), 0, 1)


def run_windows(params: ModelParams, model: ModelConfig, xw: jax.Array, okw: jax.Array) -> jax.Array:
    """Each window from a zero state: xw (..., W, F), okw (..., W) -> the head output at
    each window's last step (..., head)."""
    lead = xw.shape[:-2]
    flat_x, flat_ok = xw.reshape(-1, *xw.shape[-2:]), okw.reshape(-1, okw.shape[-1])
    carry = cells_zero_carry(flat_x.shape[0], model)
    _, outputs = run_steps(params, carry, flat_x, flat_ok)
    return outputs[:, -1].reshape(*lead, -1)


def windows(a: jax.Array, start: jax.Array | int, length: int, width: int) -> jax.Array:
    """The ``width`` columns ending at each of columns [start, start + length):
    a (S, N, ...) -> (S, length, width, ...)."""
    span = jax.lax.dynamic_slice_in_dim(a, start - width + 1, length + width - 1, axis=1)
    return jnp.stack([span[:, w : w + length] for w in range(width)], axis=2)


def targets(
    z: jax.Array, valid: jax.Array, start: jax.Array, spec: FleetSpec, stop: int
) -> tuple[jax.Array, jax.Array]:
    """What the head must output at columns [start, start + C), and the weight of each:
    (S, C, head) each. Recursive: z at the column less z a season before it; direct: z at the H columns from it, less
    the seasonal naive forecast from it. A target counts if its step is valid and it lies
    before ``stop`` (the validation origin: nothing after it is trained on)."""
    cols = start + jnp.arange(spec.chunk)
    if spec.head == 1:
        y = jax.lax.dynamic_slice_in_dim(z, start, spec.chunk, 1)
        y = y - jax.lax.dynamic_slice_in_dim(z, start - spec.period, spec.chunk, 1)
        w = jax.lax.dynamic_slice_in_dim(valid, start, spec.chunk, 1)
        return y[..., None], w[..., None].astype(jnp.float32)
    ahead = cols[:, None] + jnp.arange(spec.horizon)[None, :]  # (C, H)
    inside = ahead < stop
    clipped = jnp.minimum(ahead, z.shape[1] - 1)
    y = jnp.take(z, clipped, axis=1) - jax.vmap(lambda c: base(z, c, spec.horizon, spec.period), out_axes=1)(cols)
    w = jnp.take(valid, clipped, axis=1) & inside[None] & jnp.take(valid, cols, axis=1)[..., None]
    return y, w.astype(jnp.float32)


def _mae(pred: jax.Array, y: jax.Array, w: jax.Array) -> jax.Array:
    return jnp.sum(jnp.abs(pred - y) * w) / jnp.maximum(jnp.sum(w), 1.0)


def _chunk_loss(
    params: ModelParams,
    carry: Carry,
    group: DeviceData,
    x: jax.Array,
    start: jax.Array,
    spec: FleetSpec,
    stateful: bool,
) -> tuple[jax.Array, tuple[Carry, jax.Array]]:
    """The loss of one chunk of one group of B series, and (the state it ends in, the
    targets' total weight: 0 for a chunk of padding alone)."""
    stop = spec.first_chunk + spec.n_chunks * spec.chunk
    y, w = targets(group.z, group.valid, start, spec, stop)
    if stateful:
        xs = jax.lax.dynamic_slice_in_dim(x, start, spec.chunk, 1)
        ok = jax.lax.dynamic_slice_in_dim(group.valid, start, spec.chunk, 1)
        carry, pred = run_steps(params, carry, xs, ok)
    else:
        xw, okw = windows(x, start, spec.chunk, spec.lahead), windows(group.valid, start, spec.chunk, spec.lahead)
        pred = run_windows(params, spec.model, xw, okw)
    return _mae(pred, y, w), (carry, jnp.sum(w))


def optimizer(learning_rate: jax.Array, total_steps: int) -> optax.GradientTransformation:
    """Adam with the learning rate decaying to 0 along a cosine, gradients clipped."""

    def step_size(count: jax.Array) -> jax.Array:
        done = jnp.minimum(count.astype(jnp.float32) / jnp.float32(total_steps), jnp.float32(1))
        return learning_rate * jnp.float32(0.5) * (jnp.float32(1) + jnp.cos(jnp.float32(np.pi) * done))

    # keras_adam at rate 1 (its steps already point downhill), then the schedule's rate.
    return optax.chain(optax.clip_by_global_norm(CLIP_NORM), keras_adam(1.0), optax.scale_by_schedule(step_size))


def _group_epoch(
    params: ModelParams, opt_state: optax.OptState, data: DeviceData, order: jax.Array, spec: FleetSpec,
    opt: optax.GradientTransformation, stateful: bool,
) -> tuple[ModelParams, optax.OptState, jax.Array]:  # fmt: skip
    """One epoch over the groups of ``order`` (G, B) series indices: (params, opt_state, the
    mean loss of the chunks that had targets)."""

    def group_step(state: tuple, idx: jax.Array) -> tuple[tuple, tuple[jax.Array, jax.Array]]:
        group = jax.tree.map(lambda a: a[idx], data)
        x = features(group.z, group.phase, spec.period)

        def chunk_step(inner: tuple, k: jax.Array) -> tuple[tuple, tuple[jax.Array, jax.Array]]:
            p, o, carry = inner
            start = spec.first_chunk + k * spec.chunk
            grad_fn = jax.value_and_grad(_chunk_loss, has_aux=True)
            (loss, (carry, weight)), grads = grad_fn(p, carry, group, x, start, spec, stateful)
            updates, o_next = opt.update(grads, o, p)
            # A chunk of padding alone takes no step: Adam's momentum would otherwise move the
            # weights by how much padding the panel's longest series puts in front of the others.
            taken = weight > 0
            p, o = _where(taken, (optax.apply_updates(p, updates), o_next), (p, o))
            return (p, o, carry), (loss, taken.astype(jnp.float32))

        carry = cells_zero_carry(idx.shape[0], spec.model)
        (p, o, _), (losses, taken) = jax.lax.scan(chunk_step, (*state, carry), jnp.arange(spec.n_chunks))
        return (p, o), (jnp.sum(losses * taken), jnp.sum(taken))

    (params, opt_state), (losses, taken) = jax.lax.scan(group_step, (params, opt_state), order)
    return params, opt_state, jnp.sum(losses) / jnp.maximum(jnp.sum(taken), 1.0)


def _where(flag: jax.Array, new: tuple, old: tuple) -> tuple:
    """``new`` where ``flag`` (a scalar boolean), else ``old``, leaf by leaf."""
    return jax.tree.map(lambda a, b: jnp.where(flag, a, b), new, old)


def _groups(key: jax.Array, n_series: int, batch_size: int) -> jax.Array:
    """A shuffled order of the series in groups: (G, B) indices; the last group is filled
    up with series drawn again (their loss then counts twice in that epoch, never their state)."""
    n_groups = -(-n_series // batch_size)
    order = jax.random.permutation(key, n_series)
    extra = jax.random.choice(jax.random.fold_in(key, 1), n_series, (n_groups * batch_size - n_series,))
    return jnp.concatenate([order, extra]).reshape(n_groups, batch_size)


def _fit_mode(
    params: ModelParams, data: DeviceData, key: jax.Array, rate: jax.Array, spec: FleetSpec, stateful: bool
) -> tuple[ModelParams, jax.Array]:
    """Every seed of one mode (leading axis of ``params``): (params, losses (seeds, epochs))."""
    n_series = data.z.shape[0]
    batch = min(spec.batch_size, n_series)
    total = spec.epochs * (-(-n_series // batch)) * spec.n_chunks
    opt = optimizer(rate, total)

    def one_seed(p: ModelParams) -> tuple[ModelParams, jax.Array]:
        def epoch(state: tuple, e: jax.Array) -> tuple[tuple, jax.Array]:
            order = _groups(jax.random.fold_in(key, e), n_series, batch)
            p, o, loss = _group_epoch(state[0], state[1], data, order, spec, opt, stateful)
            return (p, o), loss

        (p, _), losses = jax.lax.scan(epoch, (p, opt.init(p)), jnp.arange(spec.epochs))
        return p, losses

    return jax.vmap(one_seed)(params)


@functools.partial(jax.jit, static_argnames=("spec",))
def fit_fleet(
    stateful: ModelParams, stateless: ModelParams, data: PanelData, key: jax.Array, rate: jax.Array, *, spec: FleetSpec
) -> FleetFit:
    """Train both models, every seed (leading axis of each params), on the panel: one program.

    key: the shuffling key (each epoch folds in its index); rate: the peak learning rate,
    float32 () (traced: another rate reuses the program).
    """
    device = _on_device(data)
    p_full, l_full = _fit_mode(stateful, device, key, rate, spec, True)
    p_win, l_win = _fit_mode(stateless, device, key, rate, spec, False)
    return FleetFit((p_full, p_win), jnp.stack([l_full, l_win]))


def _rollout(
    params: ModelParams, carry: Carry, data: DeviceData, origin: int, spec: FleetSpec, stateful: bool
) -> jax.Array:
    """Recursive forecasts of the H columns from ``origin``: each prediction is written over
    the value at its column, so later steps read it (never the truth) as their input.
    carry: the state before ``origin`` (stateful). Returns (S, H) model units."""

    def step(state: tuple[Carry, jax.Array], j: jax.Array) -> tuple[tuple[Carry, jax.Array], jax.Array]:
        c, zb = state
        col = origin + j
        x = features(zb, data.phase, spec.period)
        if stateful:
            c, h = stack_step(params.cells, c, x[:, col])
            y = dense(params.dense, h)[:, 0]
        else:
            ok = jnp.where(jnp.arange(x.shape[1])[None, :] >= origin, True, data.valid)
            y = run_windows(
                params, spec.model, windows(x, col, 1, spec.lahead)[:, 0], windows(ok, col, 1, spec.lahead)[:, 0]
            )[:, 0]
        y = y + zb[:, col - spec.period]  # the head predicts the change from a season back
        return (c, zb.at[:, col].set(y)), y

    _, ys = jax.lax.scan(step, (carry, data.z), jnp.arange(spec.horizon))
    return ys.T


def _direct(
    params: ModelParams, carry: Carry, data: DeviceData, origin: int, spec: FleetSpec, stateful: bool
) -> jax.Array:
    """Direct forecasts of the H columns from ``origin``: the head's H outputs at the origin
    plus the seasonal naive forecast. Returns (S, H) model units."""
    x = features(data.z, data.phase, spec.period)
    if stateful:
        _, h = stack_step(params.cells, carry, x[:, origin])
        out = dense(params.dense, h)
    else:
        out = run_windows(
            params,
            spec.model,
            windows(x, origin, 1, spec.lahead)[:, 0],
            windows(data.valid, origin, 1, spec.lahead)[:, 0],
        )
    return out + base(data.z, origin, spec.horizon, spec.period)


def _forecast_mode(
    params: ModelParams, data: DeviceData, origins: tuple[int, ...], spec: FleetSpec, stateful: bool
) -> jax.Array:
    """One seed's forecasts from every origin: (S, n_origins, H). The stateful model's state
    runs through the true values up to each origin (the state a served series would have)."""
    x = features(data.z, data.phase, spec.period)
    carry = cells_zero_carry(data.z.shape[0], spec.model)
    forecast = _direct if spec.head > 1 else _rollout
    out, previous = [], 0
    for origin in origins:
        if stateful:
            carry, _ = run_steps(params, carry, x[:, previous:origin], jnp.asarray(data.valid)[:, previous:origin])
        out.append(forecast(params, carry, data, origin, spec, stateful))
        previous = origin
    return jnp.stack(out, axis=1)


@functools.partial(jax.jit, static_argnames=("origins", "spec"))
def forecast_fleet(
    stateful: ModelParams, stateless: ModelParams, data: PanelData, *, origins: tuple[int, ...], spec: FleetSpec
) -> jax.Array:
    """Both models' forecasts, every seed, from each origin: (2, seeds, S, n_origins, H),
    model units. Nothing at or after an origin is read by its forecast."""
    device = _on_device(data)
    full = jax.vmap(lambda p: _forecast_mode(p, device, origins, spec, True))(stateful)
    window = jax.vmap(lambda p: _forecast_mode(p, device, origins, spec, False))(stateless)
    return jnp.stack([full, window])


@functools.partial(jax.jit, static_argnames=("origin", "spec", "stateful"))
def forecast_model(params: ModelParams, data: PanelData, *, origin: int, spec: FleetSpec, stateful: bool) -> jax.Array:
    """One model's forecasts, every seed, of the H columns from ``origin``: (seeds, S, H),
    model units (a saved fleet model forecasting a panel from its end)."""
    device = _on_device(data)
    return jax.vmap(lambda p: _forecast_mode(p, device, (origin,), spec, stateful)[:, 0])(params)
