"""Learning online, whatever the model: one optimizer step on a round's windows.

A round of labelled streams gives one or more windows (a group of streams each); a model's
own ``grads(params, window)`` returns the gradient of the window's summed squared errors
and how many labels it held (``fleet_learn``, ``stream_learn``). One optimizer step is
taken on their sum over the round's labels: gradient clipping by global norm, then Adam at
a constant learning rate (as training's, ``core.optim.keras_adam``). A fleet model's seeds
are independent models: each takes its own step on its own weights and moments.

``apply_update`` and the models' ``grads`` are the only compiled programs a weight change
goes through; the service logs their inputs, so that replaying the log through the same
programs gives the same weights, bit for bit (``serve.learner``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lstm_stateful.core.cells import ModelParams
from lstm_stateful.core.optim import keras_adam

# A model's window gradient: (params, window) -> (the summed squared errors' gradient, labels).
Grads = Callable[[ModelParams, Any], tuple[ModelParams, jax.Array]]


def optimizer(lr: float, clip: float) -> optax.GradientTransformation:
    """One model's optimizer: gradients clipped to a global norm of ``clip``, then Adam at ``lr``."""
    return optax.chain(optax.clip_by_global_norm(clip), keras_adam(lr))


def init_opt_state(params: ModelParams, lr: float, clip: float, per_seed: bool) -> optax.OptState:
    """A fresh optimizer state (host arrays); ``per_seed``: one per seed (the weights' leading axis)."""
    init = optimizer(lr, clip).init
    return jax.tree.map(np.asarray, jax.vmap(init)(params) if per_seed else init(params))


@functools.partial(jax.jit, static_argnames=("lr", "clip", "per_seed"))
def apply_update(params: ModelParams, opt_state: optax.OptState, grads: ModelParams, count: jax.Array, *,
                 lr: float, clip: float, per_seed: bool) -> tuple[ModelParams, optax.OptState]:  # fmt: skip
    """One optimizer step on the mean squared error (``grads`` summed over ``count`` labels)."""
    scaled = jax.tree.map(lambda g: g / jnp.maximum(count, 1).astype(g.dtype), grads)

    def one(p: ModelParams, s: optax.OptState, g: ModelParams) -> tuple[ModelParams, optax.OptState]:
        updates, s = optimizer(lr, clip).update(g, s, p)
        return optax.apply_updates(p, updates), s

    return jax.vmap(one)(params, opt_state, scaled) if per_seed else one(params, opt_state, scaled)


def update(params: ModelParams, opt_state: optax.OptState, windows: Sequence[Any], grads: Grads, lr: float,
           clip: float, per_seed: bool) -> tuple[ModelParams, optax.OptState, int]:  # fmt: skip
    """One round's step over its windows, in their order: (weights, optimizer state, labels)
    as host arrays; unchanged when no window holds a label the model could predict."""
    total, count = None, 0
    for w in windows:
        g, c = grads(params, w)
        total = g if total is None else jax.tree.map(jnp.add, total, g)
        count += int(c)
    if total is None or count == 0:
        return params, opt_state, 0
    new_params, new_state = apply_update(params, opt_state, total, jnp.int32(count), lr=lr, clip=clip,
                                         per_seed=per_seed)  # fmt: skip
    return jax.tree.map(np.asarray, new_params), jax.tree.map(np.asarray, new_state), count
