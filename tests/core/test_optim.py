"""Keras-exact Adam: equal to Keras's own optimizer step by step, unlike optax.adam."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lstm_stateful.core.optim import keras_adam


def _grads(steps: int) -> np.ndarray:
    # Gradients of ~1e-4, as the example's sees: where epsilon's place matters.
    return (np.random.default_rng(0).normal(size=(steps, 7)) * 1e-4).astype(np.float32)


def _run(opt: optax.GradientTransformation, grads: np.ndarray) -> np.ndarray:
    params = jnp.ones(7, jnp.float32)
    state = opt.init(params)
    for g in grads:
        updates, state = opt.update(jnp.asarray(g), state, params)
        params = optax.apply_updates(params, updates)
    return np.asarray(params)


def test_first_step_by_hand() -> None:
    g = np.float32(2e-4)
    updates, state = keras_adam().update(jnp.full((1,), g), keras_adam().init(jnp.zeros(1, jnp.float32)))
    m, v = 0.1 * g, 0.001 * g * g
    alpha = 1e-3 * np.sqrt(1 - 0.999) / (1 - 0.9)
    np.testing.assert_allclose(np.asarray(updates), [-(m * alpha) / (np.sqrt(v) + 1e-7)], rtol=2e-5)
    assert int(state.count) == 1


@pytest.mark.keras
def test_matches_keras_adam() -> None:
    import keras

    grads = _grads(25)
    var = keras.Variable(np.ones(7, np.float32))
    opt = keras.optimizers.Adam()
    for g in grads:
        opt.apply_gradients([(keras.ops.convert_to_tensor(g), var)])
    expected = np.asarray(var.numpy())
    np.testing.assert_allclose(_run(keras_adam(), grads), expected, rtol=0, atol=1e-7)


def test_differs_from_optax_adam_at_small_gradients() -> None:
    grads = _grads(25)
    ours = _run(keras_adam(), grads)
    with jax.numpy_dtype_promotion("standard"):  # optax mixes its int32 count with floats
        theirs = _run(optax.adam(1e-3, eps=1e-7), grads)
    assert np.abs(ours - theirs).max() > 1e-6
