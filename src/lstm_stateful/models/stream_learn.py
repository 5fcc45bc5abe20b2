"""Learning a single-series model online from delayed labels: a target sent for one of a
stream's latest values.

A labelled stream contributes a truncated-BPTT window: from its state before the values it
holds (the anchor, a ``StreamState`` taken as a constant), the model is run over them
(``stream.stream_chunk``), and each prediction whose target came is compared with it, in
model units (the target through the model's transform and scaling, as in training).
``models.online`` takes the round's optimizer step.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lstm_stateful.core import transform as transform_mod
from lstm_stateful.core.cells import ModelParams
from lstm_stateful.models.model_io import SavedModel
from lstm_stateful.models.stream import StreamState, stream_chunk


class Window(NamedTuple):
    """One group of labelled streams (axis B, padded to a size class), what a gradient needs.

    anchor: the streams' states before ``xs``; xs: (T, B, F) float32 input rows in model
    units; fed: (T, B) bool, False for padding (and a transformed stream's first point);
    target: (T, B) float32 the targets in model units (0 where none); label: (T, B) bool,
    where a target came.
    """

    anchor: StreamState
    xs: np.ndarray
    fed: np.ndarray
    target: np.ndarray
    label: np.ndarray


@functools.partial(jax.jit, static_argnames=("stateful", "oldest_first"))
def window_grads(params: ModelParams, window: Window, *, stateful: bool, oldest_first: bool
                 ) -> tuple[ModelParams, jax.Array]:  # fmt: skip
    """The gradient of the summed squared errors of a group's labelled predictions, and how
    many there were (int32; a prediction not made yet, its window not full, takes no part)."""

    def loss(p: ModelParams) -> tuple[jax.Array, jax.Array]:
        _, preds = stream_chunk(p, window.anchor, window.xs, window.fed, stateful=stateful, oldest_first=oldest_first)
        ok = window.label & jnp.isfinite(preds)
        err = jnp.where(ok, preds - window.target, 0.0)
        return jnp.sum(err * err), jnp.sum(ok.astype(jnp.int32))

    grads, count = jax.grad(loss, has_aux=True)(params)
    return grads, count


def target_in_model_units(model: SavedModel, y: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Targets in the data's units -> the model's (its transform from the prediction's
    reference, then its scaling): what its output is compared with. NaN where unknown."""
    s = model.scaling
    with np.errstate(invalid="ignore", divide="ignore"):
        return (transform_mod.to_model(model.data.transform, y, reference) - s.target_mean) / s.target_scale
