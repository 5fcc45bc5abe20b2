"""Stacked layers and several inputs against Keras 3 on TensorFlow: the forward pass from
copied weights, and two epochs of ``fit``, stateful (every layer's state carried from batch
to batch, reset per epoch) and stateless."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_stateful.core import cells, data
from lstm_stateful.core.train import Batches, fit
from tests import reference

UNITS = 6


def _keras_with_biases(cell: str, stateful: bool, lahead: int, batch: int, layers: int, n_features: int):
    """A Keras model whose biases are random too (Keras starts GRU and SimpleRNN biases at
    zero, where a wrong bias path would go unseen), and our params holding its weights."""
    model = reference.keras_model(stateful, lahead, batch, UNITS, seed=layers + n_features, cell=cell,
                                  layers=layers, n_features=n_features)  # fmt: skip
    rng = np.random.default_rng(layers)
    for layer in model.layers[:-1]:
        kernel, recurrent, bias = layer.get_weights()
        layer.set_weights([kernel, recurrent, rng.normal(scale=0.5, size=bias.shape).astype(np.float32)])
    return model, reference.params_from_keras(model, cell)


@pytest.mark.keras
@pytest.mark.parametrize("cell", ["lstm", "gru", "simple"])
@pytest.mark.parametrize(("layers", "n_features"), [(2, 1), (1, 3), (2, 3)])
@pytest.mark.parametrize("stateful", [True, False])
def test_forward_matches_keras(cell: str, layers: int, n_features: int, stateful: bool) -> None:
    batch, lahead = 3, 4
    cfg = cells.ModelConfig(units=UNITS, cell=cell, layers=layers, n_features=n_features)
    model, params = _keras_with_biases(cell, stateful, lahead, batch, layers, n_features)
    assert len(params.cells) == layers and params.cells[0].kernel.shape[0] == n_features
    xs = np.random.default_rng(lahead).uniform(-1, 1, (4, batch, lahead, n_features)).astype(np.float32)
    carry = cells.zero_carry(batch, cfg)
    for x in xs:  # consecutive batches: stateful carries every layer's state, stateless resets it
        expected = model.predict_on_batch(x)
        start = carry if stateful else cells.zero_carry(batch, cfg)
        carry, ours = cells.forward(params, start, jnp.asarray(x))
        np.testing.assert_allclose(np.asarray(ours), expected, rtol=0, atol=1e-6)


def _split(n_features: int, lahead: int, tsteps: int = 3, rows: int = 96) -> data.Split:
    """F input columns (uniform, as the example's), windows newest first, the target the
    first column's trailing mean; 80/20 split in multiples of the batch sizes used."""
    x = np.random.default_rng(n_features).uniform(-0.1, 0.1, (rows + lahead + tsteps - 1, n_features))
    target = np.convolve(x[:, 0], np.ones(tsteps) / tsteps)[: x.shape[0]]
    windows = np.stack([x[lahead + tsteps - 1 - lag : x.shape[0] - lag] for lag in range(lahead)], axis=1)
    y = target[lahead + tsteps - 1 :, None]
    cut = int(rows * 0.8)
    to32 = [a.astype(np.float32) for a in (windows[:cut], y[:cut], windows[cut:], y[cut:])]
    return data.Split(*to32)


@pytest.mark.keras
@pytest.mark.parametrize(
    ("cell", "layers", "n_features", "stateful"),
    [
        *((cell, 2, 1, True) for cell in ("lstm", "gru", "simple")),
        *((cell, 2, 3, True) for cell in ("lstm", "gru", "simple")),
        ("lstm", 1, 3, True),
        ("gru", 2, 3, False),
    ],
)
def test_two_epochs_of_fit_match_keras(cell: str, layers: int, n_features: int, stateful: bool) -> None:
    batch, lahead = 4, 2
    split = _split(n_features, lahead)
    assert split.x_train.shape[1:] == (lahead, n_features)
    model = reference.keras_model(stateful, lahead, batch, UNITS, seed=layers, cell=cell, layers=layers,
                                  n_features=n_features)  # fmt: skip
    params0 = jax.tree.map(lambda a: np.asarray(a)[None], reference.params_from_keras(model, cell))
    k_loss, k_val = reference.keras_fit(model, stateful, 2, batch, tuple(split))

    def b(x: np.ndarray, y: np.ndarray) -> Batches:
        return Batches(jnp.asarray(data.batches(x, batch)), jnp.asarray(data.batches(y, batch)))

    cfg = cells.ModelConfig(units=UNITS, cell=cell, layers=layers, n_features=n_features)
    ours = fit(params0, jnp.asarray(stateful), jnp.float32(1e-3), b(split.x_train, split.y_train),
               b(split.x_test, split.y_test), model=cfg, epochs=2)  # fmt: skip
    np.testing.assert_allclose(np.asarray(ours.train_loss[0]), k_loss, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(ours.val_loss[0]), k_val, rtol=1e-4)
    k_params = reference.params_from_keras(model, cell)
    for mine, theirs in zip(jax.tree.leaves(ours.params), jax.tree.leaves(k_params), strict=True):
        np.testing.assert_allclose(np.asarray(mine[0]), theirs, rtol=1e-4, atol=1e-6)
    k_pred = model.predict(split.x_test, batch_size=batch, verbose=0)
    np.testing.assert_allclose(np.asarray(ours.predictions[0]), k_pred, rtol=1e-4, atol=1e-6)
