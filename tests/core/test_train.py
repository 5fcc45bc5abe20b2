"""Training: parity with Keras 3 + TensorFlow fit, a scan equal to a plain loop, no retrace."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lstm_stateful.core import cells, data
from lstm_stateful.core.config import TrainConfig
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.core.optim import keras_adam
from lstm_stateful.core.train import Batches, evaluate_batches, fit, fit_problems, init_seeds
from tests import reference

MODEL = cells.ModelConfig(units=20)
LR = jnp.float32(1e-3)  # Keras's default Adam learning rate


def _batches(split: data.Split, batch_size: int) -> tuple[Batches, Batches]:
    def b(x: np.ndarray, y: np.ndarray) -> Batches:
        return Batches(jnp.asarray(data.batches(x, batch_size)), jnp.asarray(data.batches(y, batch_size)))

    return b(split.x_train, split.y_train), b(split.x_test, split.y_test)


def _stack(params: cells.ModelParams) -> cells.ModelParams:
    return jax.tree.map(lambda a: np.asarray(a)[None], params)


@pytest.mark.keras
@pytest.mark.parametrize(
    ("stateful", "batch_size", "cell"),
    [
        *((stateful, b, "lstm") for stateful in (True, False) for b in (1, 4)),
        *((True, 4, cell) for cell in ("gru", "simple")),
    ],
)
def test_training_matches_keras_fit(stateful: bool, batch_size: int, cell: str) -> None:
    cfg = data.DataConfig(input_len=240, tsteps=3, lahead=2, batch_size=batch_size)
    split = data.split(data.make_series(cfg), cfg)
    model = reference.keras_model(stateful, cfg.lahead, batch_size, seed=batch_size, cell=cell)
    params0 = _stack(reference.params_from_keras(model, cell))
    k_loss, k_val = reference.keras_fit(model, stateful, 2, batch_size, tuple(split))
    train_b, test_b = _batches(split, batch_size)
    model_cfg = cells.ModelConfig(units=20, cell=cell)
    ours = fit(params0, jnp.asarray(stateful), LR, train_b, test_b, model=model_cfg, epochs=2)
    np.testing.assert_allclose(np.asarray(ours.train_loss[0]), k_loss, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(ours.val_loss[0]), k_val, rtol=1e-4)
    k_params = reference.params_from_keras(model, cell)
    for mine, theirs in zip(jax.tree.leaves(ours.params), jax.tree.leaves(k_params), strict=True):
        np.testing.assert_allclose(np.asarray(mine[0]), theirs, rtol=1e-4, atol=1e-6)
    # Keras's predict on the test set after the per-epoch reset starts from zero state too.
    k_pred = model.predict(split.x_test, batch_size=batch_size, verbose=0)
    np.testing.assert_allclose(np.asarray(ours.predictions[0]), k_pred, rtol=1e-4, atol=1e-6)


def _python_loop_epoch(params: cells.ModelParams, stateful: bool, train_b: Batches) -> tuple:
    """One epoch, one seed, the obvious way: a Python loop over batches."""
    opt = keras_adam()
    state = opt.init(params)
    carry = cells.zero_carry(train_b.x.shape[1], MODEL)
    losses = []

    def loss_fn(p: cells.ModelParams, c: cells.LSTMCarry, x: jax.Array, y: jax.Array) -> tuple:
        c, pred = cells.forward(p, c, x)
        return jnp.mean(jnp.square(y - pred)), c

    for x, y in zip(train_b.x, train_b.y, strict=True):
        start = carry if stateful else cells.zero_carry(x.shape[0], MODEL)
        (loss, carry), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, start, x, y)
        updates, state = opt.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        losses.append(float(loss))
    return params, float(np.mean(losses))


@pytest.mark.parametrize("stateful", [True, False])
def test_compiled_scan_equals_python_loop(stateful: bool) -> None:
    cfg = data.DataConfig(input_len=60, tsteps=3, lahead=1, batch_size=2)
    train_b, test_b = _batches(data.split(data.make_series(cfg), cfg), 2)
    params = init_seeds(7, 1, MODEL)
    ours = fit(params, jnp.asarray(stateful), LR, train_b, test_b, model=MODEL, epochs=1)
    single = jax.tree.map(lambda a: jnp.asarray(a[0]), params)
    loop_params, loop_loss = _python_loop_epoch(single, stateful, train_b)
    np.testing.assert_allclose(float(ours.train_loss[0, 0]), loop_loss, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(ours.params), jax.tree.leaves(loop_params), strict=True):
        np.testing.assert_allclose(np.asarray(a[0]), np.asarray(b), rtol=1e-5, atol=1e-7)


def test_seeds_are_independent_lanes() -> None:
    # Seed i trained among 3 equals seed i trained alone: vmap adds no coupling.
    cfg = data.DataConfig(input_len=50, batch_size=1)
    train_b, test_b = _batches(data.split(data.make_series(cfg), cfg), 1)
    three = fit(init_seeds(3, 3, MODEL), jnp.asarray(True), LR, train_b, test_b, model=MODEL, epochs=2)
    one = fit(init_seeds(3, 1, MODEL), jnp.asarray(True), LR, train_b, test_b, model=MODEL, epochs=2)
    np.testing.assert_allclose(np.asarray(three.train_loss[:1]), np.asarray(one.train_loss), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(three.predictions[:1]), np.asarray(one.predictions), rtol=1e-5, atol=1e-8)


def test_second_call_does_not_retrace() -> None:
    cfg = data.DataConfig(input_len=40, batch_size=2)
    other = data.DataConfig(input_len=40, batch_size=2, data_seed=5)
    args = [_batches(data.split(data.make_series(c), c), 2) for c in (cfg, other)]
    params = init_seeds(0, 2, MODEL)
    jax.block_until_ready(fit(params, jnp.asarray(True), LR, *args[0], model=MODEL, epochs=1))
    before = fit._cache_size()
    # New data, new weights, the other mode, another learning rate: the same compiled program serves all.
    other_rate = jnp.float32(0.01)
    jax.block_until_ready(fit(init_seeds(1, 2, MODEL), jnp.asarray(False), other_rate, *args[1], model=MODEL, epochs=1))
    assert fit._cache_size() == before


def test_init_seeds_prefix_stable() -> None:
    five, one, later = init_seeds(4, 5, MODEL), init_seeds(4, 1, MODEL), init_seeds(4, 2, MODEL, first=3)
    for a, b, c in zip(jax.tree.leaves(five), jax.tree.leaves(one), jax.tree.leaves(later), strict=True):
        np.testing.assert_array_equal(a[:1], b)
        np.testing.assert_array_equal(a[3:5], c)  # seeds 3 and 4, drawn on their own
    assert not np.array_equal(five.cells[0].kernel[0], five.cells[0].kernel[1])


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [({"epochs": 0}, "epochs"), ({"learning_rate": -1.0}, "lr"), ({"learning_rate": float("nan")}, "lr")],
)
def test_bad_train_config(kwargs: dict, flag: str) -> None:
    with pytest.raises(ConfigError, match=flag):
        TrainConfig(**kwargs)


def test_contiguous_layout_carries_each_stream_continuously() -> None:
    # Batch of 4 contiguous streams, state carried: slot i equals stream i run alone at batch 1.
    params = cells.init_params(np.random.default_rng(1), MODEL)
    x = np.random.default_rng(2).normal(size=(40, 2, 1)).astype(np.float32)
    y = np.zeros((40, 1), np.float32)
    together = Batches(jnp.asarray(data.batches(x, 4, "contiguous")), jnp.asarray(data.batches(y, 4, "contiguous")))
    _, preds = evaluate_batches(params, cells.zero_carry(4, MODEL), jnp.asarray(True), together)
    in_time_order = data.time_order(np.asarray(preds)[None], 4, "contiguous")[0]
    for i, stream in enumerate(np.split(x, 4)):
        alone = Batches(jnp.asarray(stream[:, None]), jnp.zeros((10, 1, 1), jnp.float32))
        _, expected = evaluate_batches(params, cells.zero_carry(1, MODEL), jnp.asarray(True), alone)
        np.testing.assert_allclose(in_time_order[10 * i : 10 * (i + 1)], np.asarray(expected), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("cell", ["gru", "simple"])
def test_other_cells_train(cell: str) -> None:
    model = cells.ModelConfig(units=10, cell=cell)
    cfg = data.DataConfig(input_len=200, batch_size=1)
    train_b, test_b = _batches(data.split(data.make_series(cfg), cfg), 1)
    result = fit(init_seeds(0, 2, model), jnp.asarray(True), LR, train_b, test_b, model=model, epochs=4)
    losses = np.asarray(result.train_loss)
    assert np.all(np.isfinite(losses)) and np.all(losses[:, -1] < losses[:, 0])
    assert type(result.params.cells[0]).__name__ == {"gru": "GRUParams", "simple": "SimpleRNNParams"}[cell]


def _problems(*trees: Batches) -> Batches:
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def test_problems_and_mixed_lanes_equal_separate_fits() -> None:
    # Two data sets, stateful and stateless lanes side by side, in one program: each
    # (problem, lane) equals its own fit, run alone with its mode.
    configs = [data.DataConfig(input_len=60, tsteps=3, batch_size=2, data_seed=s) for s in (1, 2)]
    sets = [_batches(data.split(data.make_series(c), c), 2) for c in configs]
    params = init_seeds(5, 2, MODEL)
    lanes = jax.tree.map(lambda a: jnp.concatenate([a, a]), params)
    flags = jnp.asarray([True, True, False, False])
    together = fit_problems(lanes, flags, LR, _problems(*(s[0] for s in sets)), _problems(*(s[1] for s in sets)),
                            model=MODEL, epochs=2)  # fmt: skip
    for p, (train_b, test_b) in enumerate(sets):
        for m, stateful in enumerate((True, False)):
            alone = fit(params, jnp.asarray(stateful), LR, train_b, test_b, model=MODEL, epochs=2)
            lanes_of_mode = slice(2 * m, 2 * m + 2)
            np.testing.assert_allclose(together.train_loss[p, lanes_of_mode], alone.train_loss, rtol=1e-6)
            np.testing.assert_allclose(together.predictions[p, lanes_of_mode], alone.predictions, rtol=1e-6, atol=1e-9)
    assert not np.allclose(together.train_loss[0], together.train_loss[1])  # two data sets, two results
    assert not np.allclose(together.train_loss[0, :2], together.train_loss[0, 2:])  # and two modes


def test_a_new_learning_rate_does_not_retrace() -> None:
    cfg = data.DataConfig(input_len=40, batch_size=2)
    train_b, test_b = _batches(data.split(data.make_series(cfg), cfg), 2)
    stacked = (_problems(train_b, train_b), _problems(test_b, test_b))
    lanes, flags = init_seeds(0, 2, MODEL), jnp.asarray([True, False])
    first = fit_problems(lanes, flags, LR, *stacked, model=MODEL, epochs=1)
    before = fit_problems._cache_size()
    second = fit_problems(lanes, flags, jnp.float32(0.05), *stacked, model=MODEL, epochs=1)
    assert fit_problems._cache_size() == before
    assert not np.allclose(first.train_loss, second.train_loss)  # the new rates were used


def test_a_learning_rate_per_problem_equals_each_problem_alone() -> None:
    # Three data sets, each with its own rate, in one program. A rate per problem is vmapped,
    # and XLA may then compile Adam's step-size arithmetic into another (equally exact)
    # float32 sequence, so a problem may differ from its own training by rounding: measured
    # 2e-7 relative after 3 epochs; rtol 1e-5 leaves room and still fails any real coupling.
    configs = [data.DataConfig(input_len=60, tsteps=3, batch_size=2, data_seed=s) for s in (1, 2, 3)]
    sets = [_batches(data.split(data.make_series(c), c), 2) for c in configs]
    params, flags = init_seeds(5, 2, MODEL), jnp.asarray([True, False])
    rates = jnp.asarray([1e-3, 3e-3, 1e-2], jnp.float32)
    stacked = (_problems(*(s[0] for s in sets)), _problems(*(s[1] for s in sets)))
    together = fit_problems(params, flags, rates, *stacked, model=MODEL, epochs=3)
    for p, (train_b, test_b) in enumerate(sets):
        alone = fit_problems(params, flags, rates[p], *_problems_of((train_b, test_b)), model=MODEL, epochs=3)
        np.testing.assert_allclose(together.train_loss[p], alone.train_loss[0], rtol=1e-5)
        np.testing.assert_allclose(together.predictions[p], alone.predictions[0], rtol=1e-5, atol=1e-7)
    assert len({float(together.train_loss[p, 0, -1]) for p in range(3)}) == 3
    one = fit_problems(params, flags, rates[:1], *_problems_of(sets[0]), model=MODEL, epochs=3)  # (1,): unbatched
    np.testing.assert_array_equal(one.train_loss, fit_problems(params, flags, rates[0], *_problems_of(sets[0]),
                                                               model=MODEL, epochs=3).train_loss)  # fmt: skip


def _problems_of(pair: tuple[Batches, Batches]) -> tuple[Batches, Batches]:
    """One problem's batches with a leading problem axis of 1."""
    return _problems(pair[0]), _problems(pair[1])
