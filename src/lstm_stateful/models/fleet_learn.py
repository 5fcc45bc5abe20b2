"""Learning a fleet model online from its own streams: each new value is the label of the
one-step forecast made before it.

A labelled stream contributes a truncated-BPTT window: from its state ``K`` values back
(the anchor, a ``Core`` taken as a constant), the model is run over those values and the
new ones (``feed_core``), and each new value is compared with the forecast made the step
before it, in model units. ``models.online`` takes the round's optimizer step, each seed's
weights and moments on their own (the seeds stay independent models, as in training).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lstm_stateful.core.cells import ModelParams
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
