"""Learning a fleet model online from its own streams: each new value is the label of the
one-step forecast made before it.

A labelled stream contributes a truncated-BPTT window: from its state ``K`` values back
(the anchor, a ``Core`` taken as a constant), the model is run over those values and the
new ones (``feed_core``), and each new value is compared with the forecast made the step
before it, in model units. One optimizer step is taken per round of streams on the summed
squared errors of every stream of the round (``update``): gradient clipping by global norm
and Adam at a constant learning rate, each seed's weights and moments on their own (the
seeds stay independent models, as in training).

``window_grads`` and ``apply_update`` are the only compiled programs a weight change goes
through; the service logs their inputs, so that replaying the log through the same
programs gives the same weights, bit for bit (``serve.learner.replay``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lstm_stateful.core.cells import ModelParams
from lstm_stateful.core.optim import keras_adam
from lstm_stateful.models.fleet_stream import Core, FleetShape, feed_core


class Window(NamedTuple):
    """One group of labelled streams (axis B, padded to a size class), what a gradient needs.

    anchor: the streams' states before ``zs``; zs: (T, B) float32 model units, the window's
    held values then the new ones; fed: (T, B) bool, which are values (False: padding);
    label: (T, B) bool, the new values, each the label of the forecast made the step before.
    """

    anchor: Core
    zs: np.ndarray
    fed: np.ndarray
    label: np.ndarray


def optimizer(lr: float, clip: float) -> optax.GradientTransformation:
    """One seed's optimizer: gradients clipped to a global norm of ``clip``, then Adam at
    ``lr`` (as training's: ``core.optim.keras_adam``)."""
    return optax.chain(optax.clip_by_global_norm(clip), keras_adam(lr))


def init_opt_state(params: ModelParams, lr: float, clip: float) -> optax.OptState:
    """Every seed's fresh optimizer state (leading seed axis, as the weights), host arrays."""
    state = jax.vmap(optimizer(lr, clip).init)(params)
    return jax.tree.map(np.asarray, state)


@functools.partial(jax.jit, static_argnames=("shape",))
def window_grads(params: ModelParams, window: Window, *, shape: FleetShape) -> tuple[ModelParams, jax.Array]:
    """The gradient of the summed squared one-step errors of a group (every seed's, each
    seed's weights receiving its own), and how many labels there were (int32)."""

    def loss(p: ModelParams) -> tuple[jax.Array, jax.Array]:
        _, preds = feed_core(p, window.anchor, window.zs, window.fed, shape=shape)  # (T, seeds, B)
        # The forecast after step t is the forecast of step t + 1; NaN until a season of values is there.
        ok = window.label[1:, None, :] & jnp.isfinite(preds[:-1])
        err = jnp.where(ok, preds[:-1] - window.zs[1:, None, :], 0.0)
        return jnp.sum(err * err), jnp.sum(ok[:, 0, :].astype(jnp.int32))

    grads, count = jax.grad(loss, has_aux=True)(params)
    return grads, count


@functools.partial(jax.jit, static_argnames=("lr", "clip"))
def apply_update(params: ModelParams, opt_state: optax.OptState, grads: ModelParams, count: jax.Array, *,
                 lr: float, clip: float) -> tuple[ModelParams, optax.OptState]:  # fmt: skip
    """One optimizer step on the mean squared error (``grads`` summed over ``count`` labels)."""
    scaled = jax.tree.map(lambda g: g / jnp.maximum(count, 1).astype(g.dtype), grads)

    def one_seed(p: ModelParams, s: optax.OptState, g: ModelParams) -> tuple[ModelParams, optax.OptState]:
        updates, s = optimizer(lr, clip).update(g, s, p)
        return optax.apply_updates(p, updates), s

    return jax.vmap(one_seed)(params, opt_state, scaled)


def update(params: ModelParams, opt_state: optax.OptState, windows: Sequence[Window], shape: FleetShape,
           lr: float, clip: float) -> tuple[ModelParams, optax.OptState, int]:  # fmt: skip
    """One round's step over its groups, in their order: (weights, optimizer state, labels)
    as host arrays; unchanged when no window holds a label the model could forecast."""
    total, count = None, 0
    for w in windows:
        g, c = window_grads(params, w, shape=shape)
        total = g if total is None else jax.tree.map(jnp.add, total, g)
        count += int(c)
    if total is None or count == 0:
        return params, opt_state, 0
    new_params, new_state = apply_update(params, opt_state, total, jnp.int32(count), lr=lr, clip=clip)
    return jax.tree.map(np.asarray, new_params), jax.tree.map(np.asarray, new_state), count
