"""Cells: Keras-identical forward passes, a scan equal to a plain loop, Keras's initialisers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_stateful.core import cells
from lstm_stateful.core.errors import ConfigError
from tests import reference

CFG = cells.ModelConfig(units=20)


@pytest.mark.keras
@pytest.mark.parametrize("cell", ["lstm", "gru", "simple"])
@pytest.mark.parametrize("lahead", [1, 5])
@pytest.mark.parametrize("stateful", [False, True])
def test_forward_matches_keras(cell: str, lahead: int, stateful: bool) -> None:
    batch = 3
    cfg = cells.ModelConfig(units=20, cell=cell)
    model = reference.keras_model(stateful, lahead, batch, seed=lahead, cell=cell)
    params = reference.params_from_keras(model, cell)
    if cell == "gru":  # Keras starts GRU biases at zero; make them matter
        bias = np.random.default_rng(9).normal(size=params.cells[0].bias.shape).astype(np.float32)
        model.layers[0].set_weights([*model.layers[0].get_weights()[:2], bias])
        params = reference.params_from_keras(model, cell)
    rng = np.random.default_rng(lahead)
    xs = rng.uniform(-1, 1, (4, batch, lahead, 1)).astype(np.float32)
    carry = cells.zero_carry(batch, cfg)
    for x in xs:  # consecutive batches: stateful carries the state, stateless resets it
        expected = model.predict_on_batch(x)
        start = carry if stateful else cells.zero_carry(batch, cfg)
        carry, ours = cells.forward(params, start, jnp.asarray(x))
        np.testing.assert_allclose(np.asarray(ours), expected, rtol=0, atol=1e-6)


def test_gru_and_simple_golden_values() -> None:
    # By hand, zero weights: GRU z = r = sigmoid(b_x + b_h), h = z h0 + (1 - z) tanh(b_x + r b_h);
    # SimpleRNN h = tanh(b).
    u = 2
    gru = cells.GRUParams(
        kernel=jnp.zeros((1, 3 * u), jnp.float32),
        recurrent_kernel=jnp.zeros((u, 3 * u), jnp.float32),
        bias=jnp.stack([jnp.full((3 * u,), 0.5, jnp.float32), jnp.full((3 * u,), 0.25, jnp.float32)]),
    )
    h0 = jnp.ones((1, u), jnp.float32)
    _, h = cells.gru_cell(gru, cells.RNNCarry(h0), jnp.zeros((1, 1), jnp.float32))
    z = 1 / (1 + np.exp(-0.75))
    np.testing.assert_allclose(np.asarray(h), np.full((1, u), z + (1 - z) * np.tanh(0.5 + z * 0.25)), rtol=1e-6)
    simple = cells.SimpleRNNParams(
        jnp.zeros((1, u), jnp.float32), jnp.eye(u, dtype=jnp.float32), jnp.full((u,), 0.5, jnp.float32)
    )
    _, h = cells.simple_cell(simple, cells.RNNCarry(h0), jnp.zeros((1, 1), jnp.float32))
    np.testing.assert_allclose(np.asarray(h), np.full((1, u), np.tanh(1.5)), rtol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple"])
@pytest.mark.parametrize(("layers", "n_features", "lahead"), [(1, 1, 6), (3, 2, 6), (2, 3, 2)])
def test_scan_equals_python_loop(cell: str, layers: int, n_features: int, lahead: int) -> None:
    # The loop runs layer by layer over the whole window (Keras's order); forward runs
    # every layer at each step: the same numbers. lahead 2 takes the unrolled path.
    cfg = cells.ModelConfig(units=20, cell=cell, layers=layers, n_features=n_features)
    params = cells.init_params(np.random.default_rng(0), cfg)
    x = np.random.default_rng(1).normal(size=(2, lahead, n_features)).astype(np.float32)
    carry = list(cells.zero_carry(2, cfg))
    seq = [jnp.asarray(x[:, t]) for t in range(lahead)]
    for k in range(layers):
        for t in range(lahead):
            carry[k], seq[t] = cells.cell_step(params.cells[k], carry[k], seq[t])
    expected = cells.dense(params.dense, seq[-1])
    scan_carry, out = cells.forward(params, cells.zero_carry(2, cfg), jnp.asarray(x))
    assert len(scan_carry) == layers
    np.testing.assert_allclose(np.asarray(out), np.asarray(expected), rtol=1e-6, atol=1e-7)
    for ours, loop in zip(jax.tree.leaves(scan_carry), jax.tree.leaves(carry), strict=True):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(loop), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple"])
@pytest.mark.parametrize("layers", [1, 2])
def test_one_long_window_equals_chunks_with_carried_state(cell: str, layers: int) -> None:
    # Stateful over chunks = one long run: the carry (every layer's) is the whole memory.
    cfg = cells.ModelConfig(units=20, cell=cell, layers=layers)
    params = cells.init_params(np.random.default_rng(2), cfg)
    x = jnp.asarray(np.random.default_rng(3).normal(size=(1, 12, 1)).astype(np.float32))
    long_carry, long_out = cells.forward(params, cells.zero_carry(1, cfg), x)
    carry = cells.zero_carry(1, cfg)
    for chunk in jnp.split(x, 4, axis=1):
        carry, out = cells.forward(params, carry, chunk)
    np.testing.assert_allclose(np.asarray(out), np.asarray(long_out), rtol=1e-6, atol=1e-7)
    for ours, long in zip(jax.tree.leaves(carry), jax.tree.leaves(long_carry), strict=True):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(long), rtol=1e-6, atol=1e-7)


def test_cell_is_one_step_with_known_values() -> None:
    # Golden values by hand: zero weights, bias only -> i = f = o = sigmoid(b), c~ = tanh(b).
    u = 2
    params = cells.LSTMParams(
        kernel=jnp.zeros((1, 4 * u), jnp.float32),
        recurrent_kernel=jnp.zeros((u, 4 * u), jnp.float32),
        bias=jnp.full((4 * u,), 0.5, jnp.float32),
    )
    carry = cells.LSTMCarry(h=jnp.zeros((1, u), jnp.float32), c=jnp.ones((1, u), jnp.float32))
    new, h = cells.lstm_cell(params, carry, jnp.zeros((1, 1), jnp.float32))
    s, t = 1 / (1 + np.exp(-0.5)), np.tanh(0.5)
    c = s * 1.0 + s * t
    np.testing.assert_allclose(np.asarray(new.c), np.full((1, u), c), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(h), np.full((1, u), s * np.tanh(c)), rtol=1e-6)


def test_init_follows_keras_initialisers() -> None:
    p = cells.init_params(np.random.default_rng(0), cells.ModelConfig(units=16))
    u = 16
    (cell,) = p.cells
    assert cell.kernel.shape == (1, 4 * u) and cell.recurrent_kernel.shape == (u, 4 * u)
    assert all(leaf.dtype == np.float32 for leaf in jax.tree.leaves(p))
    # Orthogonal: rows of the (u, 4u) recurrent kernel are orthonormal.
    r = cell.recurrent_kernel.astype(np.float64)
    np.testing.assert_allclose(r @ r.T, np.eye(u), atol=1e-5)
    np.testing.assert_array_equal(cell.bias, np.r_[np.zeros(u), np.ones(u), np.zeros(2 * u)])
    limit = np.sqrt(6 / (1 + 4 * u))
    assert np.abs(cell.kernel).max() <= limit
    np.testing.assert_array_equal(p.dense.bias, [0.0])


# Drawn by the one-layer code before stacks existed (units 4, default_rng(0)): kernel[0, :2],
# recurrent_kernel[1, 1], dense.kernel[2, 0]. The default run's numbers rest on these draws.
ONE_LAYER_DRAWS = {
    "lstm": (0.1627347320318222, -0.2735341489315033, 0.3512418866157532, -0.18697966635227203),
    "gru": (0.1860942840576172, -0.31279826164245605, -0.09792527556419373, -0.8966151475906372),
    "simple": (0.3000680208206177, -0.5043720602989197, -0.8857338428497314, 0.37381935119628906),
}


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple"])
def test_one_layer_draws_what_it_always_drew_and_stacks_draw_after_it(cell: str) -> None:
    one = cells.init_params(np.random.default_rng(0), cells.ModelConfig(units=4, cell=cell))
    (first,) = one.cells
    drawn = (*first.kernel[0, :2], first.recurrent_kernel[1, 1], one.dense.kernel[2, 0])
    assert tuple(float(v) for v in drawn) == ONE_LAYER_DRAWS[cell]
    g = {"lstm": 4, "gru": 3, "simple": 1}[cell]
    three = cells.init_params(np.random.default_rng(0), cells.ModelConfig(units=4, cell=cell, layers=3))
    assert [c.kernel.shape for c in three.cells] == [(1, 4 * g), (4, 4 * g), (4, 4 * g)]
    for a, b in zip(three.cells[0], first, strict=True):  # layer 0 draws first, as before
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(three.cells[1].kernel, three.cells[2].kernel)
    wide = cells.init_params(np.random.default_rng(0), cells.ModelConfig(units=4, cell=cell, n_features=3, layers=2))
    assert [c.kernel.shape for c in wide.cells] == [(3, 4 * g), (4, 4 * g)]
    assert [len(c) for c in (cells.zero_carry(5, cells.ModelConfig(cell=cell, layers=k)) for k in (1, 3))] == [1, 3]


def test_bad_units_and_cell() -> None:
    with pytest.raises(ConfigError, match="units"):
        cells.ModelConfig(units=0)
    with pytest.raises(ConfigError, match=r"cell.*lstm, gru, simple"):
        cells.ModelConfig(cell="rnn")
