"""The sweep store: round trips, resumption bookkeeping, bad files."""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
from pathlib import Path

import pytest

from lstm_stateful.core.config import ExperimentConfig
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.sweep.grid import Point, SweepSpec, point_key
from lstm_stateful.sweep.store import SCHEMA_VERSION, Record, Store

SPEC = SweepSpec.ranges((1, 2), (1,))


def _point(tsteps: int, lahead: int) -> Point:
    return Point((("tsteps", tsteps), ("lahead", lahead)))


def _records(point: Point, seeds: int, mse: float = 1e-4, first: int = 0) -> list[Record]:
    cfg = SPEC.config(point)
    return [
        Record(
            config_hash=point_key(cfg),
            seed_index=s,
            mode=mode,
            tsteps=int(point["tsteps"]),
            lahead=int(point["lahead"]),
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
            baselines=(("mean", 2e-3), ("persistence", math.nan), ("linear", 1e-3 if mode == "stateful" else 9e-4)),
        )
        for mode in ("stateful", "stateless")
        for s in range(first, first + seeds)
    ]


def test_round_trip_keeps_nan_and_marks_finished(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.sqlite")
    written = _records(_point(1, 1), SPEC.base.seeds, mse=math.nan)
    store.write(written + _records(_point(2, 1), 2))  # point (2, 1) lacks seeds
    assert store.finished(SPEC) == {_point(1, 1)}
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
    store.write(_records(_point(1, 1), 5, mse=1.0))
    store.write(_records(_point(1, 1), 5, mse=2.0))
    assert {r.mse for r in store.records(SPEC)} == {2.0}
    assert store.latest_sweep() is None
    store.record_sweep(SPEC)
    store.record_sweep(SweepSpec.ranges((3,), (1,)))
    assert store.latest_sweep() == SweepSpec.ranges((3,), (1,))
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


def test_baselines_round_trip_per_point_and_mode(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.sqlite")
    written = _records(_point(1, 1), SPEC.base.seeds)
    store.write(written)
    read = store.records(SPEC)
    assert [r.mode for r in read] == [r.mode for r in written]
    for ours, theirs in zip(read, written, strict=True):
        names = [name for name, _ in ours.baselines]
        assert names == ["mean", "persistence", "linear"]  # in the order written
        assert dict(ours.baselines)["linear"] == dict(theirs.baselines)["linear"]
        assert math.isnan(dict(ours.baselines)["persistence"])
    store.close()


def test_a_point_resumes_from_its_first_missing_seed(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.sqlite")
    spec = SweepSpec.ranges((1, 2), (1,), ExperimentConfig(seeds=6))
    store.write(_records(_point(1, 1), 3))  # seeds 0-2, both modes
    store.write([r for r in _records(_point(2, 1), 6) if not (r.seed_index == 4 and r.mode == "stateless")])
    assert store.first_missing_seed(spec) == {_point(1, 1): 3, _point(2, 1): 4}
    groups, done = store.pending(spec)
    assert done == set() and sorted((g.first_seed, g.stop_seed) for g in groups) == [(3, 6), (4, 6)]
    store.write(_records(_point(2, 1), 2, first=4))
    assert store.finished(spec) == {_point(2, 1)}
    store.close()


# The schema of version 0.1 (before baselines were stored), and a spec as it recorded it.
EARLIER_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE results (
    config_hash TEXT NOT NULL, seed_index INTEGER NOT NULL, mode TEXT NOT NULL, tsteps INTEGER NOT NULL,
    lahead INTEGER NOT NULL, config TEXT NOT NULL, mse REAL, r2 REAL, converged INTEGER NOT NULL,
    floor REAL NOT NULL, window_floor REAL NOT NULL, zero_floor REAL NOT NULL, train_loss TEXT NOT NULL,
    val_loss TEXT NOT NULL, group_s REAL NOT NULL, written_at REAL NOT NULL,
    PRIMARY KEY (config_hash, seed_index, mode)
);
CREATE TABLE sweeps (id INTEGER PRIMARY KEY, spec TEXT NOT NULL, started_at REAL NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
"""


def earlier_store(path: Path, seeds: int = 2) -> SweepSpec:
    """A store as version 0.1 wrote it: the tsteps 3 x lahead 2 point of the default config,
    every seed of both modes, keyed by the golden key of that version. Returns its spec."""
    base = ExperimentConfig(seeds=seeds).to_dict()
    base["data"]["input_col"] = None
    del base["data"]["input_cols"], base["data"]["transform"], base["data"]["season"], base["model"]["layers"]
    spec = {"tsteps": [3], "lahead": [2], "base": base}
    with sqlite3.connect(path) as db:
        db.executescript(EARLIER_SCHEMA)
        db.execute("INSERT INTO sweeps (spec, started_at) VALUES (?, 0)", (json.dumps(spec),))
        for mode in ("stateful", "stateless"):
            for s in range(seeds):
                row = ("cf02afed76ea62b25c55aaf606b5bb12", s, mode, 3, 2, "{}", 1e-4 * (s + 1), 0.9, 1, 0.0, 1e-3)
                db.execute(f"INSERT INTO results VALUES ({', '.join('?' * 16)})", (*row, 2e-3, "[1.0]", "[2.0]", 1, 0))
    return SweepSpec.ranges((3,), (2,), ExperimentConfig(seeds=seeds))


def test_a_store_of_an_earlier_version_resumes_and_reads(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    spec = earlier_store(path)
    store = Store.open(path)
    assert store.latest_sweep() == spec
    assert store.pending(spec) == ([], set(spec.points))  # nothing to train again
    records = store.records(spec)
    assert len(records) == 4 and all(r.baselines == () for r in records)
    assert [r.mse for r in records if r.mode == "stateless"] == [1e-4, 2e-4]
    store.write([dataclasses.replace(records[0], floor=math.nan, window_floor=math.nan)])  # a file's: no floor
    assert math.isnan(store.records(spec)[0].window_floor)
    store.close()
    with sqlite3.connect(path) as db:  # migrated to this version's schema, once
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    Store.open(path).close()
