"""The sweep store: round trips, resumption bookkeeping, bad files."""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from pathlib import Path

import pytest

from lstm_stateful.core.errors import ConfigError
from lstm_stateful.sweep.grid import Point, SweepSpec, point_key
from lstm_stateful.sweep.store import SCHEMA_VERSION, Record, Store

SPEC = SweepSpec((1, 2), (1,))


def _records(point: Point, seeds: int, mse: float = 1e-4) -> list[Record]:
    cfg = SPEC.config(point)
    return [
        Record(
            config_hash=point_key(cfg),
            seed_index=s,
            mode=mode,
            tsteps=point.tsteps,
            lahead=point.lahead,
            config="{}",
            mse=mse,
            r2=0.5,
            converged=False,
            floor=0.0,
            window_floor=1e-3,
            zero_floor=2e-3,
            train_loss=(1.0, math.nan),
            val_loss=(2.0, math.inf),
            group_s=1.5,
        )
        for mode in ("stateful", "stateless")
        for s in range(seeds)
    ]


def test_round_trip_keeps_nan_and_marks_finished(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.sqlite")
    written = _records(Point(1, 1), SPEC.base.seeds, mse=math.nan)
    store.write(written + _records(Point(2, 1), 2))  # point (2, 1) lacks seeds
    assert store.finished(SPEC) == {Point(1, 1)}
    read = [r for r in store.records(SPEC) if r.tsteps == 1]
    assert len(read) == len(written)
    first = read[0]
    assert math.isnan(first.mse) and first.train_loss[0] == 1.0 and math.isnan(first.train_loss[1])
    assert math.isnan(first.val_loss[1])  # non-finite losses are stored as null
    assert dataclasses.replace(first, mse=0.0, train_loss=(), val_loss=()) == dataclasses.replace(
        written[0], mse=0.0, train_loss=(), val_loss=()
    )
    store.close()


def test_rewrite_replaces_and_latest_sweep(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.sqlite")
    store.write(_records(Point(1, 1), 5, mse=1.0))
    store.write(_records(Point(1, 1), 5, mse=2.0))
    assert {r.mse for r in store.records(SPEC)} == {2.0}
    assert store.latest_sweep() is None
    store.record_sweep(SPEC)
    store.record_sweep(SweepSpec((3,), (1,)))
    assert store.latest_sweep() == SweepSpec((3,), (1,))
    store.close()


def test_other_schema_version_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    Store.open(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(ConfigError, match=f"schema version {SCHEMA_VERSION + 1}") as e:
        Store.open(path)
    assert e.value.param == "store"


def test_not_a_database_and_unwritable_are_clear_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError, match="cannot use"):
        Store.open(junk)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot use"):
        Store.open(blocker / "sub" / "s.sqlite")


def test_store_uses_wal(tmp_path: Path) -> None:
    Store.open(tmp_path / "s.sqlite").close()
    with sqlite3.connect(tmp_path / "s.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
