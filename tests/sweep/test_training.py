"""Sweep groups: one program per shape, equal to ``run`` point by point, resumable."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from lstm_stateful.core.config import MODES, DataConfig, ExperimentConfig, TrainConfig
from lstm_stateful.core.train import fit_problems
from lstm_stateful.engine import experiment
from lstm_stateful.sweep.executors import LocalExecutor
from lstm_stateful.sweep.grid import Group, Point, SweepSpec, groups, parse_grid
from lstm_stateful.sweep.store import Record, Store
from lstm_stateful.sweep.training import run_sweep, train_group

BASE = ExperimentConfig(data=DataConfig(input_len=200), train=TrainConfig(epochs=2), seeds=2)


def _point(tsteps: int, lahead: int) -> Point:
    return Point((("tsteps", tsteps), ("lahead", lahead)))


def _one_group(spec: SweepSpec) -> Group:
    (group,) = groups(spec, dict.fromkeys(spec.points, 0))
    return group


def _of(records: list[Record], cfg: ExperimentConfig, mode: str) -> list[Record]:
    from lstm_stateful.sweep.grid import point_key

    return [r for r in records if r.config_hash == point_key(cfg) and r.mode == mode]


@pytest.fixture(scope="module")
def group_records() -> list[Record]:
    return train_group(_one_group(SweepSpec.ranges((1, 2, 3), (2,), BASE)))


def test_group_point_equals_run_of_its_config(group_records: list[Record]) -> None:
    cfg = SweepSpec.ranges((3,), (2,), BASE).config(_point(3, 2))
    result = experiment.run(cfg)
    for mode in MODES:
        ours = _of(group_records, cfg, mode)
        m = result.models[mode]
        np.testing.assert_array_equal([r.mse for r in ours], m.scores.mse)  # exactly: the same program
        np.testing.assert_array_equal([r.train_loss for r in ours], m.train_loss)
        np.testing.assert_array_equal([r.val_loss for r in ours], m.val_loss)
        assert [r.floor for r in ours] == [result.floors.window_test if mode == "stateless" else 0.0] * 2
        assert all(r.baselines == tuple(result.baselines.mse[mode].items()) for r in ours)


def test_contiguous_gru_group_point_equals_run() -> None:
    # The layout and the recurrent cell travel with the base config: a grid point is still run's.
    base = dataclasses.replace(
        BASE,
        data=dataclasses.replace(BASE.data, batch_size=4, layout="contiguous", order="oldest-first"),
        model=dataclasses.replace(BASE.model, cell="gru"),
    )
    spec = SweepSpec.ranges((3,), (2,), base)
    records = train_group(_one_group(spec))
    result = experiment.run(spec.config(spec.points[0]))
    for mode in MODES:
        ours = [r.mse for r in records if r.mode == mode]
        np.testing.assert_array_equal(ours, result.models[mode].scores.mse)


def test_layouts_orders_and_layers_of_one_shape_share_a_program_and_equal_their_runs() -> None:
    grid = parse_grid(["layout=interleaved,contiguous", "order=newest-first,oldest-first"])
    base = dataclasses.replace(
        BASE, data=dataclasses.replace(BASE.data, batch_size=4), model=dataclasses.replace(BASE.model, layers=2)
    )
    spec = SweepSpec(grid, base)
    group = _one_group(spec)
    assert len(group.points) == 4
    records = train_group(group)
    for cfg in (spec.config(p) for p in spec.points[1:3]):  # two, to keep the test short
        result = experiment.run(cfg)
        for mode in MODES:
            np.testing.assert_array_equal([r.mse for r in _of(records, cfg, mode)], result.models[mode].scores.mse)


def test_learning_rates_train_in_one_program_each_point_as_its_run() -> None:
    # Rates are vmapped with the points: each equals its run up to float32 rounding (XLA may
    # fuse the vmapped step size arithmetic otherwise), never more: 2 epochs, rtol 1e-5.
    spec = SweepSpec(parse_grid(["lr=1e-3,3e-3,1e-2"]), BASE)
    group = _one_group(spec)
    before = fit_problems._cache_size()
    records = train_group(group)
    assert fit_problems._cache_size() <= before + 1  # one program for the three rates
    losses = []
    for cfg in (spec.config(p) for p in spec.points):
        result = experiment.run(cfg)
        for mode in MODES:
            ours = _of(records, cfg, mode)
            np.testing.assert_allclose([r.mse for r in ours], result.models[mode].scores.mse, rtol=1e-5)
            np.testing.assert_allclose([r.train_loss for r in ours], result.models[mode].train_loss, rtol=1e-5)
        losses.append(result.models["stateful"].train_loss[0, -1])
    assert len(set(losses)) == 3  # three rates, three trainings


def test_a_seed_range_of_its_own_equals_those_seeds_of_the_run() -> None:
    spec = SweepSpec.ranges((2,), (1,), dataclasses.replace(BASE, seeds=3))
    (group,) = groups(spec, {spec.points[0]: 1})
    assert (group.first_seed, group.stop_seed) == (1, 3)
    records = train_group(group)
    result = experiment.run(spec.config(spec.points[0]))
    for mode in MODES:
        ours = [r for r in records if r.mode == mode]
        assert [r.seed_index for r in ours] == [1, 2]
        # Other lanes in the program: equal up to float32 rounding of a vmap of another size.
        np.testing.assert_allclose([r.mse for r in ours], result.models[mode].scores.mse[1:], rtol=1e-5)


def test_group_records_cover_points_modes_seeds(group_records: list[Record]) -> None:
    keys = {(r.tsteps, r.lahead, r.mode, r.seed_index) for r in group_records}
    assert len(keys) == len(group_records) == 3 * 2 * BASE.seeds
    assert all(len(r.train_loss) == BASE.train.epochs for r in group_records)


def test_a_point_does_not_depend_on_its_group(group_records: list[Record]) -> None:
    alone = train_group(_one_group(SweepSpec.ranges((3,), (2,), BASE)))
    together = [r for r in group_records if r.tsteps == 3]
    assert [(r.mse, r.train_loss, r.val_loss) for r in alone] == [(r.mse, r.train_loss, r.val_loss) for r in together]


def test_same_shapes_do_not_retrace(group_records: list[Record]) -> None:
    before = fit_problems._cache_size()
    louder = dataclasses.replace(BASE, data=dataclasses.replace(BASE.data, amplitude=1))
    other = SweepSpec.ranges((4, 5, 6), (2,), louder)
    train_group(_one_group(other))  # other points and data, same shapes
    assert fit_problems._cache_size() == before


class CountingExecutor:
    def __init__(self) -> None:
        self.groups: list[Group] = []

    def map_unordered(self, groups: list[Group]) -> Iterator[tuple[Group, list[Record]]]:
        self.groups.extend(groups)
        yield from LocalExecutor(1).map_unordered(groups)


def test_run_sweep_skips_finished_points_and_seeds(tmp_path: Path) -> None:
    spec = SweepSpec.ranges((1, 2), (1, 2), BASE)
    store = Store.open(tmp_path / "s.sqlite")
    first = CountingExecutor()
    assert run_sweep(spec, store, first) == 2
    assert store.finished(spec) == set(spec.points)
    again = CountingExecutor()
    assert run_sweep(spec, store, again) == 0 and again.groups == []
    more = CountingExecutor()  # a wider grid trains only the new points
    wider = SweepSpec.ranges((1, 2, 3), (1, 2), BASE)
    run_sweep(wider, store, more)
    assert sorted(c["tsteps"] for g in more.groups for c in g.points) == [3, 3]
    assert len(store.records(wider)) == 6 * 2 * BASE.seeds
    seeds = CountingExecutor()  # more seeds train only the new seeds
    run_sweep(dataclasses.replace(wider, base=dataclasses.replace(BASE, seeds=3)), store, seeds)
    assert {(g.first_seed, g.stop_seed) for g in seeds.groups} == {(2, 3)}
    store.close()
