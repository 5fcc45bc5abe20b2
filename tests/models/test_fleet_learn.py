"""Online learning's compiled steps: a window's gradient equals a plain loop's over its
values alone (padding and held-out steps take no part); the update is each seed's own
clipped Adam step; a window without a label changes nothing; no retrace."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_stateful.commands.fleet import save_models
from lstm_stateful.core.panel import Clock, Panel
from lstm_stateful.core.panel_config import fleet_config
from lstm_stateful.engine.fleet import run_fleet
from lstm_stateful.models import fleet_learn, online
from lstm_stateful.models import fleet_stream as fs
from lstm_stateful.models.fleet_model import FleetModel, load_fleet_model

P = 4


@pytest.fixture(scope="module", params=["stateful", "stateless"])
def model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> FleetModel:
    rng = np.random.default_rng(2)
    values = tuple(10 + 3 * np.sin(2 * np.pi * (np.arange(n) + s) / P) + rng.normal(0, 0.3, n)
                   for s, n in enumerate((30, 26, 34)))  # fmt: skip
    panel = Panel(("a", "b", "c"), values, np.zeros(3, int), Clock())
    settings = {"data": "x.csv", "id": "id", "time": "t", "input": "y", "horizon": 3, "units": 4, "epochs": 2,
                "seeds": 2, "lahead": 3, "chunk": 8, "batch_size": 2, "stats": (), "season": P}  # fmt: skip
    directory = tmp_path_factory.mktemp("fleet")
    save_models(run_fleet(fleet_config(settings), panel), directory)
    return load_fleet_model(directory / request.param)


def _window(model: FleetModel, seed: int) -> fleet_learn.Window:
    """Two streams: the first with 3 held steps (of 5) and 2 new values (of 3), padded; the
    second with all 5 held and 3 new; a season of values already seen by both anchors."""
    rng = np.random.default_rng(seed)
    state = fs.initial_state(model, np.zeros(2), np.ones(2), np.zeros(2, np.int64))
    state, _ = fs.feed(model, model.params, state, np.log1p(10 + rng.normal(0, 1, (2, 6))))
    zs = rng.normal(0, 0.3, (8, 2)).astype(np.float32)
    fed = np.ones((8, 2), bool)
    fed[:2, 0], fed[7, 0] = False, False
    label = np.zeros((8, 2), bool)
    label[5:7, 0], label[5:8, 1] = True, True
    return fleet_learn.Window(state.core, zs, fed, label)


def _loop_loss(params: fs.ModelParams, w: fleet_learn.Window, shape: fs.FleetShape) -> jax.Array:
    """The same loss, one stream and one value at a time, the padding skipped."""
    total = jnp.float32(0)
    for b in range(w.zs.shape[1]):
        core = jax.tree.map(lambda a, b=b: a[b : b + 1], w.anchor)
        forecast = None
        for t in range(w.zs.shape[0]):
            if not w.fed[t, b]:
                continue
            z = w.zs[t : t + 1, b : b + 1]
            if w.label[t, b] and forecast is not None:
                total += jnp.sum((forecast - z[0, 0]) ** 2)
            core, preds = fs.feed_core(params, core, z, np.ones((1, 1), bool), shape=shape)
            forecast = preds[0, :, 0]  # every seed's forecast of the next value
    return total


def test_a_windows_gradient_equals_a_plain_loops(model: FleetModel) -> None:
    shape, w = fs.shape_of(model), _window(model, 0)
    grads, count = fleet_learn.window_grads(model.params, w, shape=shape)
    expected = jax.grad(_loop_loss)(model.params, w, shape)
    assert int(count) == 5
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-6)
    assert any(float(jnp.abs(g).max()) > 1e-4 for g in jax.tree.leaves(grads))


def _update(model: FleetModel, opt_state: object, windows: list, lr: float, clip: float) -> tuple:
    grads = functools.partial(fleet_learn.window_grads, shape=fs.shape_of(model))
    return online.update(model.params, opt_state, windows, grads, lr, clip, per_seed=True)


def test_the_update_is_each_seeds_own_clipped_adam_step(model: FleetModel) -> None:
    lr, clip = 0.01, 0.05
    shape, w = fs.shape_of(model), _window(model, 1)
    opt_state = online.init_opt_state(model.params, lr, clip, per_seed=True)
    params, _, count = _update(model, opt_state, [w, w], lr, clip)
    assert count == 10
    grads, _ = fleet_learn.window_grads(model.params, w, shape=shape)
    for s in range(2):
        mine = jax.tree.map(lambda a, s=s: a[s], model.params)
        g = jax.tree.map(lambda a, s=s: 2 * a[s] / 10, grads)
        opt = online.optimizer(lr, clip)
        updates, _ = opt.update(g, opt.init(mine), mine)
        want = jax.tree.map(lambda p, u: p + u, mine, updates)
        got = jax.tree.map(lambda a, s=s: a[s], params)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    pairs = zip(jax.tree.leaves(params), jax.tree.leaves(model.params), strict=True)
    moved = [np.abs(np.asarray(a) - np.asarray(b)).max() for a, b in pairs]
    assert max(moved) > 1e-3  # Adam's first step moves each weight by about lr


def test_a_round_without_labels_changes_nothing_and_nothing_retraces(model: FleetModel) -> None:
    opt_state = online.init_opt_state(model.params, 1e-3, 1.0, per_seed=True)
    w = _window(model, 2)
    _update(model, opt_state, [w], 1e-3, 1.0)
    programs = (fleet_learn.window_grads._cache_size(), online.apply_update._cache_size())
    other = _window(model, 3)
    _update(model, opt_state, [other], 1e-3, 1.0)
    assert (fleet_learn.window_grads._cache_size(), online.apply_update._cache_size()) == programs
    params, state, count = _update(model, opt_state, [other._replace(label=other.label & False)], 1e-3, 1.0)
    assert count == 0 and params is model.params and state is opt_state
