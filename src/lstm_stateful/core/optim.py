"""Keras-exact Adam as an optax transformation.

Keras puts epsilon after the bias correction of the step size (docs/protocol.md, step 7); optax's
``adam`` puts it before. With gradients of ~1e-4 the two drift apart, so parity with
Keras needs this one.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class KerasAdamState(NamedTuple):
    # The name shadows tuple.count, which mypy flags; it is kept because optax's own
    # states (ScaleByAdamState, ...) name their step counter ``count`` too.
    count: jax.Array  # type: ignore[assignment]  # int32 scalar: steps taken so far
    mu: optax.Updates
    nu: optax.Updates


def keras_adam(
    learning_rate: float | jax.Array = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-7
) -> optax.GradientTransformation:
    """Adam as Keras 3 computes it, in the parameters' dtype.

    ``learning_rate`` may be a traced scalar (``train.fit`` passes one, so another rate
    reuses the compiled program).

    ``alpha = lr * sqrt(1 - b2**t) / (1 - b1**t)``; ``m += (g - m)(1 - b1)``;
    ``v += (g**2 - v)(1 - b2)``; update ``= -(m * alpha) / (sqrt(v) + eps)``.
    """

    def init(params: optax.Params) -> KerasAdamState:
        zeros = jax.tree.map(jnp.zeros_like, params)
        return KerasAdamState(count=jnp.zeros((), jnp.int32), mu=zeros, nu=zeros)

    def update(
        grads: optax.Updates, state: KerasAdamState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, KerasAdamState]:
        del params
        count = state.count + 1
        t = count.astype(jnp.float32)
        alpha = learning_rate * jnp.sqrt(1 - b2**t) / (1 - b1**t)
        mu = jax.tree.map(lambda m, g: m + (g - m) * (1 - b1), state.mu, grads)
        nu = jax.tree.map(lambda v, g: v + (jnp.square(g) - v) * (1 - b2), state.nu, grads)
        updates = jax.tree.map(lambda m, v: -(m * alpha) / (jnp.sqrt(v) + eps), mu, nu)
        return updates, KerasAdamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init, update)
