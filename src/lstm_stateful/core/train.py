"""Whole training runs compiled as one program (docs/protocol.md, steps 9-11).

``lax.scan`` over epochs, ``vmap`` over lanes (weight seeds, and the two modes side by
side), ``lax.scan`` over batches: no Python runs per batch. Stateful and stateless differ
only in whether a batch starts from the carried state or from zeros, a per-lane flag, so
one compiled program trains both. ``fit_problems`` adds a ``vmap`` over problems (data
sets of one shape, with one learning rate or one each): a run's one problem, or a sweep's
group.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lstm_stateful.core.cells import Carry, ModelConfig, ModelParams, forward, init_params, zero_carry
from lstm_stateful.core.optim import keras_adam

# Called once per epoch from inside the compiled program with (epoch index, stateful
# flags (L,), train losses (L,), validation losses (L,)); used for progress display.
EpochCallback = Callable[[jax.Array, jax.Array, jax.Array, jax.Array], None]
# What the loops carry: weights and optimizer state from epoch to epoch; within an
# epoch, from batch to batch, the recurrent state too.
_TrainState = tuple[ModelParams, optax.OptState]
_StepState = tuple[ModelParams, optax.OptState, Carry]


class Batches(NamedTuple):
    """x: (n_batches, batch, lahead, n_features); y: (n_batches, batch, 1).

    Host (NumPy) arrays as ``data.batches`` makes them; device arrays, or tracers, inside ``fit``.
    """

    x: jax.Array | np.ndarray
    y: jax.Array | np.ndarray


class FitResult(NamedTuple):
    """Every array has a leading lane axis L (``fit_problems``: problems P, then lanes L).

    params: final weights; train_loss, val_loss: (L, epochs); predictions: (L, n_test, 1),
    made after training from a zero state (carried across test batches when stateful).
    """

    params: ModelParams
    train_loss: jax.Array
    val_loss: jax.Array
    predictions: jax.Array


def init_seeds(seed: int, n_seeds: int, cfg: ModelConfig, first: int = 0) -> ModelParams:
    """Weights for seeds first <= i < first + n_seeds, stacked on axis 0 (host arrays, float32).

    Seed i draws from ``numpy.random.default_rng([seed, i])``: its weights do not depend
    on n_seeds, so ``--seeds 1`` is the first of ``--seeds 5``, and a sweep that trains
    seeds 4 to 7 in a program of their own gets the weights of seeds 4 to 7 of ``--seeds 8``.
    """
    per_seed = [init_params(np.random.default_rng([seed, i]), cfg) for i in range(first, first + n_seeds)]
    return jax.tree.map(lambda *leaves: np.stack(leaves), *per_seed)


def _start(stateful: jax.Array, carry: Carry) -> Carry:
    """The state a batch starts from: the carried one if stateful, else zeros."""
    return jax.tree.map(lambda c: jnp.where(stateful, c, jnp.zeros_like(c)), carry)


def _mse(y: jax.Array, pred: jax.Array) -> jax.Array:
    """Keras's ``mse`` loss on one batch: y, pred (batch, 1) -> scalar."""
    return jnp.mean(jnp.square(y - pred))


def _loss(params: ModelParams, carry: Carry, x: jax.Array, y: jax.Array) -> tuple[jax.Array, Carry]:
    """The batch loss, and the state the forward pass ended in."""
    carry, pred = forward(params, carry, x)
    return _mse(y, pred), carry


def _train_epoch(
    params: ModelParams,
    opt_state: optax.OptState,
    stateful: jax.Array,
    data: Batches,
    opt: optax.GradientTransformation,
    model: ModelConfig,
) -> tuple[ModelParams, optax.OptState, Carry, jax.Array]:
    """One epoch for one seed from a zero state: (params, opt_state, end state, batch losses).

    The carried state is an input of each step, not a function of the weights, so the
    gradient stops at the batch boundary; the state passed on is the one this forward
    pass computed with the pre-update weights (Keras semantics).
    """

    def step(state: _StepState, batch: tuple[jax.Array, jax.Array]) -> tuple[_StepState, jax.Array]:
        p, o, carry = state
        grad_fn = jax.value_and_grad(_loss, has_aux=True)
        (loss, carry), grads = grad_fn(p, _start(stateful, carry), *batch)
        updates, o = opt.update(grads, o, p)
        return (optax.apply_updates(p, updates), o, carry), loss

    init: _StepState = (params, opt_state, zero_carry(data.x.shape[1], model))
    (params, opt_state, carry), losses = jax.lax.scan(step, init, _xs(data))
    return params, opt_state, carry, losses


def _xs(data: Batches) -> tuple[jax.Array, jax.Array]:
    """The batches as ``lax.scan``'s xs: (x, y), each scanned over its leading axis.

    Inside ``fit`` both are traced ``jax.Array``s; outside it ``lax.scan`` converts host
    arrays itself, so the cast only narrows the annotation, it converts nothing.
    """
    return cast(tuple[jax.Array, jax.Array], (data.x, data.y))


def evaluate_batches(
    params: ModelParams, carry: Carry, stateful: jax.Array, data: Batches
) -> tuple[jax.Array, jax.Array]:
    """Forward over the batches in order, one seed: (batch losses (n_batches,),
    predictions (n_batches * batch, 1)). Stateful: the state carries from ``carry``."""

    def step(c: Carry, batch: tuple[jax.Array, jax.Array]) -> tuple[Carry, tuple[jax.Array, jax.Array]]:
        x, y = batch
        c, pred = forward(params, _start(stateful, c), x)
        return c, (_mse(y, pred), pred)

    _, (losses, preds) = jax.lax.scan(step, carry, _xs(data))
    return losses, preds.reshape(-1, 1)


def _fit_lanes(
    params: ModelParams,
    stateful: jax.Array,
    learning_rate: jax.Array,
    train_data: Batches,
    test_data: Batches,
    model: ModelConfig,
    epochs: int,
    on_epoch: EpochCallback | None,
) -> FitResult:
    """The body of ``fit`` (see there), traceable under a further ``vmap`` over problems."""
    # Not optax.flatten: under vmap over many problems, concatenating and splitting the
    # weights every step costs more than the per-leaf updates it saves.
    opt = keras_adam(learning_rate)
    zeros = zero_carry(test_data.x.shape[1], model)
    lanes = jnp.broadcast_to(stateful, jax.tree.leaves(params)[0].shape[:1])

    def one_lane(
        p: ModelParams, o: optax.OptState, flag: jax.Array
    ) -> tuple[ModelParams, optax.OptState, jax.Array, jax.Array]:
        p, o, carry, train_losses = _train_epoch(p, o, flag, train_data, opt, model)
        val_losses, _ = evaluate_batches(p, carry, flag, test_data)
        return p, o, jnp.mean(train_losses), jnp.mean(val_losses)

    def epoch(state: _TrainState, index: jax.Array) -> tuple[_TrainState, tuple[jax.Array, jax.Array]]:
        p, o, train_loss, val_loss = jax.vmap(one_lane)(*state, lanes)
        if on_epoch is not None:
            jax.debug.callback(on_epoch, index, lanes, train_loss, val_loss)
        return (p, o), (train_loss, val_loss)

    state: _TrainState = (params, jax.vmap(opt.init)(params))
    (params, _), (train_loss, val_loss) = jax.lax.scan(epoch, state, jnp.arange(epochs))
    _, preds = jax.vmap(lambda p, flag: evaluate_batches(p, zeros, flag, test_data))(params, lanes)
    return FitResult(params, train_loss.T, val_loss.T, preds)


@functools.partial(jax.jit, static_argnames=("model", "epochs", "on_epoch"))
def fit(
    params: ModelParams,
    stateful: jax.Array,
    learning_rate: jax.Array,
    train_data: Batches,
    test_data: Batches,
    *,
    model: ModelConfig,
    epochs: int,
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    """Train every lane of ``params`` (leading axis L: seeds, or modes x seeds) for ``epochs``.

    stateful: a boolean, () for every lane or (L,) per lane; learning_rate: float32 ()
    (traced: another rate reuses the compiled program). Each epoch starts from a zero
    state, trains over ``train_data`` in order, then validates on ``test_data``
    continuing from the end-of-training state when stateful (as Keras's
    ``fit(validation_data=...)`` does). ``on_epoch`` is called after every epoch with
    (epoch index, stateful (L,), train losses (L,), validation losses (L,)).
    """
    return _fit_lanes(params, stateful, learning_rate, train_data, test_data, model, epochs, on_epoch)


@functools.partial(jax.jit, static_argnames=("model", "epochs", "on_epoch"))
def fit_problems(
    params: ModelParams,
    stateful: jax.Array,
    learning_rate: jax.Array,
    train_data: Batches,
    test_data: Batches,
    *,
    model: ModelConfig,
    epochs: int,
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    """``fit`` for P problems x L lanes, as one program: a sweep's group.

    A problem is one data set: its train and test batches. params: initial weights with a
    leading lane axis L, shared by every problem; stateful: (L,) booleans; learning_rate:
    float32, () shared by the problems or (P,) one per problem (traced either way, so other
    rates reuse the program); train_data, test_data: ``Batches`` with a leading problem axis
    P (same shapes otherwise). Every array of the result has leading axes (P, L).
    ``on_epoch`` is called once per problem and epoch.

    A problem's numbers do not depend on the other problems: with one shared rate they are
    its numbers trained alone, bit for bit. A rate per problem is vmapped too, and XLA then
    compiles Adam's step-size arithmetic into other float32 operations (a division by a
    value shared along the vmapped axis becomes a multiplication by its reciprocal, for
    one): a problem can differ from its own training alone by float32 rounding (2e-7
    relative after 3 epochs, measured). One problem trains without the vmap (its tracing
    would cost a warm run 0.1 s), with the same numbers.
    """
    per_problem = jnp.ndim(learning_rate) == 1  # a shape, so fixed at trace time

    def one_problem(rate: jax.Array, train: Batches, test: Batches) -> FitResult:
        return _fit_lanes(params, stateful, rate, train, test, model, epochs, on_epoch)

    if train_data.x.shape[0] == 1:
        squeezed = jax.tree.map(lambda a: a[0], (train_data, test_data))
        rate = learning_rate[0] if per_problem else learning_rate
        return jax.tree.map(lambda a: a[None], one_problem(rate, *squeezed))
    return jax.vmap(one_problem, in_axes=(0 if per_problem else None, 0, 0))(learning_rate, train_data, test_data)
