"""The fleet's compiled programs: masking, state isolation, no leakage, no retrace."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_stateful.core import panel_train as pt
from lstm_stateful.core.cells import zero_carry
from lstm_stateful.core.panel import Clock, Panel, fit_scaling, layout
from lstm_stateful.core.panel_config import fleet_config

H, P = 4, 6


def _panel(lengths: tuple[int, ...] = (40, 33, 47, 29), seed: int = 0) -> Panel:
    rng = np.random.default_rng(seed)
    values = tuple(
        10 + 3 * np.sin(2 * np.pi * np.arange(n) / P) + rng.normal(0, 0.3, n) + s for s, n in enumerate(lengths)
    )
    return Panel(tuple(f"s{i}" for i in range(len(lengths))), values, np.array([0, 5, 2, 7]), Clock())


def _setup(panel: Panel, **over: object) -> tuple[pt.FleetSpec, pt.PanelData, tuple[int, ...]]:
    settings = {"data": "x", "id": "i", "time": "t", "input": "y", "horizon": H, "season": P, "units": 5}
    settings |= {"lahead": 3, "chunk": 8, "batch_size": 2, "epochs": 2, "seeds": 2} | over
    cfg = fleet_config(settings)
    train = [v[: len(v) - 2 * H] for v in panel.values]
    scaling = fit_scaling(cfg.panel.scaling, train, panel.ids, P)
    shape = layout(panel, scaling, H, 1, P, cfg.panel.lahead, cfg.panel.chunk)
    spec = pt.FleetSpec(
        cfg.model, P, cfg.panel.head, H, cfg.panel.lahead, cfg.panel.chunk, cfg.panel.batch_size,
        shape.first_chunk, shape.n_chunks, cfg.train.epochs,
    )  # fmt: skip
    return spec, pt.PanelData(shape.z, shape.valid, shape.phase), shape.origins


def _params(spec: pt.FleetSpec) -> tuple:
    return pt.init_fleet(0, 2, spec, 0), pt.init_fleet(0, 2, spec, 1)


def test_run_steps_equals_a_plain_loop_and_masked_steps_keep_the_state() -> None:
    spec, data, _ = _setup(_panel())
    params = jax.tree.map(lambda a: a[0], _params(spec)[0])
    x = pt.features(jnp.asarray(data.z), jnp.asarray(data.phase), P)
    ok = jnp.asarray(data.valid)
    carry, _ = pt.run_steps(params, zero_carry(4, spec.model), x, ok)
    c = zero_carry(4, spec.model)
    for t in range(x.shape[1]):
        c, _ = pt._masked_step(params, c, x[:, t], ok[:, t])
    np.testing.assert_allclose(np.asarray(carry[0].h), np.asarray(c[0].h), rtol=1e-5, atol=1e-6)
    # Before each series' first valid step its state is exactly zero: padding changes nothing.
    first = int(np.argmax(np.asarray(data.valid), axis=1).min())
    assert first > 0
    before, _ = pt.run_steps(params, zero_carry(4, spec.model), x[:, :first], ok[:, :first])
    for leaf in jax.tree.leaves(before):
        np.testing.assert_array_equal(np.asarray(leaf), 0.0)


def test_one_series_state_never_reaches_another() -> None:
    panel = _panel()
    spec, data, origins = _setup(panel)
    params = _params(spec)
    changed = list(panel.values)
    changed[1] = changed[1] * 3 + 7
    _, data2, origins2 = _setup(Panel(panel.ids, tuple(changed), panel.starts, panel.clock))
    assert origins == origins2
    # The scaling of series 1 differs, but the other series' inputs do not.
    a = np.asarray(pt.forecast_fleet(*params, data, origins=origins, spec=spec))
    b = np.asarray(pt.forecast_fleet(*params, data2, origins=origins, spec=spec))
    keep = [0, 2, 3]
    np.testing.assert_array_equal(a[:, :, keep], b[:, :, keep])
    assert not np.allclose(a[:, :, 1], b[:, :, 1])


def test_forecasts_never_read_values_at_or_after_their_origin() -> None:
    panel = _panel()
    spec, data, origins = _setup(panel)
    params = _params(spec)
    z = np.array(data.z)
    z[:, origins[1] :] = 123.0  # the test window: the validation forecast must not see it
    a = np.asarray(pt.forecast_fleet(*params, data, origins=origins, spec=spec))
    b = np.asarray(pt.forecast_fleet(*params, data._replace(z=z), origins=origins, spec=spec))
    np.testing.assert_array_equal(a[..., 0, :], b[..., 0, :])
    z2 = np.array(data.z)
    z2[:, origins[1] :] = -50.0  # from the test origin on: its own forecast must not see it either
    c = np.asarray(pt.forecast_fleet(*params, data._replace(z=z2), origins=origins, spec=spec))
    np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("strategy", ["recursive", "direct"])
def test_training_never_reads_the_validation_or_test_part(strategy: str) -> None:
    panel = _panel()
    spec, data, origins = _setup(panel, strategy=strategy)
    params = _params(spec)
    key = jax.random.key(0)
    fit = pt.fit_fleet(*params, data, key, jnp.float32(3e-3), spec=spec)
    z = np.array(data.z)
    z[:, origins[0] :] = 99.0
    fit2 = pt.fit_fleet(*params, data._replace(z=z), key, jnp.float32(3e-3), spec=spec)
    for a, b in zip(jax.tree.leaves(fit.params), jax.tree.leaves(fit2.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(fit.losses), np.asarray(fit2.losses))
    assert np.all(np.isfinite(np.asarray(fit.losses)))


def test_training_lowers_the_loss_and_another_rate_does_not_retrace() -> None:
    spec, data, _ = _setup(_panel(), epochs=6)
    params = _params(spec)
    key = jax.random.key(1)
    before = pt.fit_fleet._cache_size()
    fit = pt.fit_fleet(*params, data, key, jnp.float32(1e-2), spec=spec)
    assert pt.fit_fleet._cache_size() == before + 1
    pt.fit_fleet(*params, data, key, jnp.float32(3e-3), spec=spec)
    assert pt.fit_fleet._cache_size() == before + 1
    losses = np.asarray(fit.losses)  # (2, seeds, epochs)
    assert np.all(losses[..., -1] < losses[..., 0])


def test_direct_targets_are_the_future_less_the_seasonal_naive() -> None:
    spec, data, origins = _setup(_panel(), strategy="direct")
    z, valid = jnp.asarray(data.z), jnp.asarray(data.valid)
    start = spec.first_chunk + spec.chunk
    y, w = pt.targets(z, valid, jnp.asarray(start), spec, origins[0])
    zn = np.asarray(z)
    col = start + 2
    for j in range(H):
        back = P * -(-(j + 1) // P)
        np.testing.assert_allclose(np.asarray(y[0, 2, j]), zn[0, col + j] - zn[0, col + j - back], rtol=1e-6)
    # No target at or past the validation origin carries weight.
    late = jnp.asarray(origins[0] - spec.chunk + 1)
    _, w_late = pt.targets(z, valid, late, spec, origins[0])
    cols = np.asarray(late) + np.arange(spec.chunk)[:, None] + np.arange(H)[None, :]
    assert not np.asarray(w_late)[:, cols >= origins[0]].any()
    assert np.asarray(w).sum() > 0


def test_values_where_a_series_has_none_change_nothing_and_empty_chunks_take_no_step() -> None:
    panel = _panel()
    spec, data, _ = _setup(panel)
    params = _params(spec)
    key = jax.random.key(0)
    n = np.asarray(data.z).shape[1]
    present = np.arange(n)[None, :] >= n - panel.lengths[:, None]
    junk = np.random.default_rng(0).normal(0, 50, present.shape).astype(np.float32)
    a = pt.fit_fleet(*params, data, key, jnp.float32(3e-3), spec=spec)
    b = pt.fit_fleet(*params, data._replace(z=np.where(present, data.z, junk)), key, jnp.float32(3e-3), spec=spec)
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # A group whose chunks hold padding alone leaves the weights and Adam's state untouched.
    dev = pt._on_device(data._replace(valid=np.zeros_like(data.valid)))
    opt = pt.optimizer(jnp.float32(1e-2), 10)
    p0 = jax.tree.map(lambda leaf: leaf[0], params[0])
    o0 = opt.init(p0)
    p1, o1, _ = pt._group_epoch(p0, o0, dev, jnp.array([[0, 1], [2, 3]]), spec, opt, True)
    for x, y in zip(jax.tree.leaves((p0, o0)), jax.tree.leaves((p1, o1)), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_no_state_passes_between_groups_in_training() -> None:
    spec, data, _ = _setup(_panel())
    params = _params(spec)
    dev = pt._on_device(data)
    opt = pt.optimizer(jnp.float32(0.0), 10)  # rate 0: the weights stay, only the state could carry
    p0 = jax.tree.map(lambda leaf: leaf[0], params[0])
    o0 = opt.init(p0)
    _, _, first = pt._group_epoch(p0, o0, dev, jnp.array([[0, 1], [2, 3]]), spec, opt, True)
    _, _, swapped = pt._group_epoch(p0, o0, dev, jnp.array([[2, 3], [0, 1]]), spec, opt, True)
    assert float(first) == pytest.approx(float(swapped), rel=1e-6)


def test_the_stateless_forecast_reads_its_window_alone() -> None:
    spec, data, origins = _setup(_panel())
    params = _params(spec)
    o = origins[0]
    z = np.array(data.z)
    z[:, : o - spec.lahead - P] = 77.0  # before the window and the season its steps look back
    a = np.asarray(pt.forecast_fleet(*params, data, origins=origins, spec=spec))
    b = np.asarray(pt.forecast_fleet(*params, data._replace(z=z), origins=origins, spec=spec))
    np.testing.assert_array_equal(a[1, :, :, 0], b[1, :, :, 0])
    assert not np.array_equal(a[0, :, :, 0], b[0, :, :, 0])  # the stateful one carries its history


@pytest.mark.parametrize("strategy", ["recursive", "direct"])
def test_a_forecast_starts_from_what_training_fits_at_the_origin(strategy: str) -> None:
    spec, data, origins = _setup(_panel(), strategy=strategy)
    params = _params(spec)
    o = origins[0]
    forecast = np.asarray(pt.forecast_fleet(*params, data, origins=origins, spec=spec))[0, 0, :, 0]
    p0 = jax.tree.map(lambda leaf: leaf[0], params[0])
    x = pt.features(jnp.asarray(data.z), jnp.asarray(data.phase), P)
    _, out = pt.run_steps(p0, zero_carry(4, spec.model), x[:, : o + 1], jnp.asarray(data.valid)[:, : o + 1])
    head, z = np.asarray(out[:, o]), np.asarray(data.z)
    if strategy == "recursive":  # the change from the value a season back
        np.testing.assert_allclose(forecast[:, 0], head[:, 0] + z[:, o - P], rtol=1e-5, atol=1e-6)
    else:  # every step at once, over the seasonal naive forecast
        np.testing.assert_allclose(forecast, head + np.asarray(pt.base(jnp.asarray(z), o, H, P)), rtol=1e-5, atol=1e-6)


def test_the_learning_rate_decays_along_a_cosine() -> None:
    opt = pt.optimizer(jnp.float32(0.5), 10)
    state = opt.init({"w": jnp.zeros(())})
    sizes = []
    for _ in range(11):
        updates, state = opt.update({"w": jnp.ones(())}, state)
        sizes.append(float(updates["w"]))
    # Adam's first steps are about -1 each; the schedule scales them by 0.5 * rate * (1 + cos).
    assert sizes[0] == pytest.approx(-0.5, rel=1e-3)
    assert sizes[5] == pytest.approx(-0.25, rel=1e-2)
    assert sizes[10] == pytest.approx(0.0, abs=1e-6)
