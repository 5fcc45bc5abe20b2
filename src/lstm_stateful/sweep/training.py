"""Sweeps: every point of a grid, every seed and both modes, by the same protocol as ``run``.

``train_group`` trains one group (points sharing a program's shapes and static settings,
``grid.groups``) as one compiled program, ``core.train.fit_problems``: the points are its
problems, vmapped, each with its data and learning rate; seeds x modes are its lanes. It
returns the group's store records; it is what an executor's worker runs. ``run_sweep``
sends the pending groups to an executor and writes each group's records to the store as
they arrive.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, TypedDict

from lstm_stateful.core import baselines, evaluate
from lstm_stateful.core import data as data_mod
from lstm_stateful.core.config import MODES, ExperimentConfig
from lstm_stateful.engine import experiment
from lstm_stateful.io import series_file
from lstm_stateful.sweep.grid import Group, SweepSpec, point_key
from lstm_stateful.sweep.store import Record, Store


class Executor(Protocol):
    """Runs ``train_group`` on groups, yielding (group, records) as each finishes."""

    def map_unordered(self, groups: list[Group]) -> Iterator[tuple[Group, list[Record]]]: ...


def train_program(group: Group, splits: Sequence[data_mod.Split]) -> experiment.Training:
    """Train the group's points on their splits for its seeds and both modes: one compiled
    program, through the one training path (``experiment.train``; a group of one point,
    every seed and its run's rate is that run's program: the same numbers)."""
    return experiment.train(group.configs, splits, seeds=range(group.first_seed, group.stop_seed))


class _PointFields(TypedDict):
    """The fields of a point's records that every mode and seed share."""

    config_hash: str
    config: str
    tsteps: int
    lahead: int
    window_floor: float
    zero_floor: float
    group_s: float


def _point_fields(cfg: ExperimentConfig, floors: evaluate.Floors, group_s: float) -> _PointFields:
    """The shared fields of ``cfg``'s records: its key, config, coordinates, floors and group time."""
    return _PointFields(
        config_hash=point_key(cfg),
        config=json.dumps(cfg.to_dict(), sort_keys=True),
        tsteps=cfg.data.tsteps,
        lahead=cfg.data.lahead,
        window_floor=floors.window_test,
        zero_floor=floors.zero_test,
        group_s=group_s,
    )


def _point_records(
    cfg: ExperimentConfig,
    prepared: tuple[data_mod.Series, data_mod.Split],
    training: experiment.Training,
    p: int,
    group: Group,
    group_s: float,
) -> list[Record]:
    """Score point ``p`` of its group's ``training`` (which took ``group_s`` seconds, data
    included) as ``run`` scores it, in the data's units: a record per mode and seed, each
    with the baselines' MSEs on the points its mode is scored on."""
    series, split = prepared
    floors = experiment.test_floors(cfg, series)
    mses = baselines.baselines(cfg.data, series).mse
    out = []
    common = _point_fields(cfg, floors, group_s)
    for m, mode in enumerate(MODES):
        scores = experiment.score_model(cfg, mode, split, training.predictions[p, m], series)
        for s in range(group.seeds):
            out.append(
                Record(
                    **common,
                    seed_index=group.first_seed + s,
                    mode=mode,
                    mse=float(scores.mse[s]),
                    r2=float(scores.r2[s]),
                    converged=bool(scores.converged[s]),
                    floor=evaluate.model_floor(floors, mode),
                    train_loss=tuple(training.train_loss[p, m, s].tolist()),
                    val_loss=tuple(training.val_loss[p, m, s].tolist()),
                    baselines=tuple(mses[mode].items()),
                )
            )
    return out


def _prepared(configs: Sequence[ExperimentConfig]) -> list[tuple[data_mod.Series, data_mod.Split]]:
    """``experiment.prepare`` of each config; a data file is read once for them all (a
    group's points share the file, its columns and ``drop_missing``)."""
    d = configs[0].data
    columns = None if d.file is None else series_file.read_columns(d.file, d.input_cols, d.target_col, d.drop_missing)
    return [experiment.prepare(cfg, columns) for cfg in configs]


def train_group(group: Group) -> list[Record]:
    """Train every point of ``group`` for both modes and its seeds: one compiled program.

    The weights are those ``run`` uses, so a sweep's point is the ``run`` of its config
    (bit for bit where the program is the same: see ``train_program``).
    """
    start = time.perf_counter()
    prepared = _prepared(group.configs)
    training = train_program(group, [split for _, split in prepared])
    group_s = time.perf_counter() - start
    records = []
    for p, cfg in enumerate(group.configs):
        records.extend(_point_records(cfg, prepared[p], training, p, group, group_s))
    return records


def run_sweep(
    spec: SweepSpec, store: Store, executor: Executor, on_group: Callable[[Group], None] | None = None
) -> int:
    """Train the points the store lacks; write each group as it arrives. Returns groups trained."""
    store.record_sweep(spec)
    todo, _ = store.pending(spec)
    for group, records in executor.map_unordered(todo):
        store.write(records)
        if on_group is not None:
            on_group(group)
    return len(todo)
