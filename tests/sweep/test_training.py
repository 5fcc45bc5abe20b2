"""Sweep groups: one program per lahead, equal to ``run`` point by point, resumable."""

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
from lstm_stateful.sweep.grid import Group, Point, SweepSpec
from lstm_stateful.sweep.store import Record, Store
from lstm_stateful.sweep.training import run_sweep, train_group

BASE = ExperimentConfig(data=DataConfig(input_len=200), train=TrainConfig(epochs=2), seeds=2)


@pytest.fixture(scope="module")
def group_records() -> list[Record]:
    return train_group(Group(2, (1, 2, 3), BASE))


def test_group_point_equals_run_of_its_config(group_records: list[Record]) -> None:
    point = Point(3, 2)
    result = experiment.run(SweepSpec((3,), (2,), BASE).config(point))
    for mode in MODES:
        ours = [r for r in group_records if (r.tsteps, r.mode) == (3, mode)]
        m = result.models[mode]
        np.testing.assert_array_equal([r.mse for r in ours], m.scores.mse)  # exactly: one training path
        np.testing.assert_array_equal([r.train_loss for r in ours], m.train_loss)
        np.testing.assert_array_equal([r.val_loss for r in ours], m.val_loss)
        assert [r.floor for r in ours] == [result.floors.window_test if mode == "stateless" else 0.0] * 2


def test_contiguous_gru_group_point_equals_run() -> None:
    # The layout and the recurrent cell travel with the base config: a grid point is still run's.
    base = dataclasses.replace(
        BASE,
        data=dataclasses.replace(BASE.data, batch_size=4, layout="contiguous", order="oldest-first"),
        model=dataclasses.replace(BASE.model, cell="gru"),
    )
    records = train_group(Group(2, (3,), base))
    result = experiment.run(SweepSpec((3,), (2,), base).config(Point(3, 2)))
    for mode in MODES:
        ours = [r.mse for r in records if r.mode == mode]
        np.testing.assert_array_equal(ours, result.models[mode].scores.mse)


def test_group_records_cover_points_modes_seeds(group_records: list[Record]) -> None:
    keys = {(r.tsteps, r.lahead, r.mode, r.seed_index) for r in group_records}
    assert len(keys) == len(group_records) == 3 * 2 * BASE.seeds
    assert all(len(r.train_loss) == BASE.train.epochs for r in group_records)


def test_a_point_does_not_depend_on_its_group(group_records: list[Record]) -> None:
    alone = train_group(Group(2, (3,), BASE))
    together = [r for r in group_records if r.tsteps == 3]
    assert [(r.mse, r.train_loss, r.val_loss) for r in alone] == [(r.mse, r.train_loss, r.val_loss) for r in together]


def test_same_shapes_do_not_retrace(group_records: list[Record]) -> None:
    before = fit_problems._cache_size()
    train_group(Group(2, (4, 5, 6), dataclasses.replace(BASE, seed=3)))  # other points, same shapes
    assert fit_problems._cache_size() == before


class CountingExecutor:
    def __init__(self) -> None:
        self.groups: list[Group] = []

    def map_unordered(self, groups: list[Group]) -> Iterator[tuple[Group, list[Record]]]:
        self.groups.extend(groups)
        yield from LocalExecutor(1).map_unordered(groups)


def test_run_sweep_skips_finished_points(tmp_path: Path) -> None:
    spec = SweepSpec((1, 2), (1, 2), BASE)
    store = Store.open(tmp_path / "s.sqlite")
    first = CountingExecutor()
    assert run_sweep(spec, store, first) == 2
    assert store.finished(spec) == set(spec.points)
    again = CountingExecutor()
    assert run_sweep(spec, store, again) == 0 and again.groups == []
    more = CountingExecutor()  # a wider grid trains only the new points
    wider = SweepSpec((1, 2, 3), (1, 2), BASE)
    run_sweep(wider, store, more)
    assert sorted(c.tsteps for g in more.groups for c in g.points) == [3, 3]
    assert len(store.records(wider)) == 6 * 2 * BASE.seeds
    store.close()
