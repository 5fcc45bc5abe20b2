"""Sweeps: every (tsteps, lahead, seed, mode) point of a grid, by the same protocol as ``run``.

``train_group`` trains one group (one lahead, up to ``grid.MAX_TSTEPS_PER_GROUP`` tsteps)
as one compiled program (``experiment.train``: tsteps x modes x seeds), and returns its store
records; it is what an executor's worker runs. ``run_sweep`` sends the pending groups to
an executor and writes each group's records to the store as they arrive.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Protocol, TypedDict

from lstm_stateful.core import data as data_mod
from lstm_stateful.core import evaluate
from lstm_stateful.core.config import MODES, ExperimentConfig
from lstm_stateful.engine import experiment
from lstm_stateful.sweep.grid import Group, SweepSpec, point_config, point_key
from lstm_stateful.sweep.store import Record, Store


class Executor(Protocol):
    """Runs ``train_group`` on groups, yielding (group, records) as each finishes."""

    def map_unordered(self, groups: list[Group]) -> Iterator[tuple[Group, list[Record]]]: ...


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
    """The shared fields of ``cfg``'s records: its key, config, grid coordinates, floors and group time."""
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
    split: data_mod.Split,
    floors: evaluate.Floors,
    training: experiment.Training,
    p: int,
    group_s: float,
) -> list[Record]:
    """Score point ``p`` of its group's ``training`` (which took ``group_s`` seconds, data
    included): a record per mode and seed."""
    out = []
    common = _point_fields(cfg, floors, group_s)
    for m, mode in enumerate(MODES):
        scores = experiment.score_model(cfg, mode, split, training.predictions[p, m])
        for s in range(cfg.seeds):
            out.append(
                Record(
                    **common,
                    seed_index=s,
                    mode=mode,
                    mse=float(scores.mse[s]),
                    r2=float(scores.r2[s]),
                    converged=bool(scores.converged[s]),
                    floor=evaluate.model_floor(floors, mode),
                    train_loss=tuple(training.train_loss[p, m, s].tolist()),
                    val_loss=tuple(training.val_loss[p, m, s].tolist()),
                )
            )
    return out


def train_group(group: Group) -> list[Record]:
    """Train every point of ``group`` for both modes and every seed: one compiled program.

    The points go through ``experiment.train`` as the problems of one program, with the
    weights ``run`` uses, so a sweep's point is the ``run`` of its config.
    """
    start = time.perf_counter()
    configs = [point_config(group.base, c) for c in group.points]
    series, splits = zip(*(experiment.prepare(cfg) for cfg in configs), strict=True)
    training = experiment.train(configs, splits)
    group_s = time.perf_counter() - start
    records = []
    for p, (cfg, s, split) in enumerate(zip(configs, series, splits, strict=True)):
        floors = experiment.test_floors(cfg, s)
        records.extend(_point_records(cfg, split, floors, training, p, group_s))
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
