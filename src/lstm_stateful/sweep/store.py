"""The sweep store: one SQLite file (stdlib ``sqlite3``, WAL), one row per (config, seed, mode).

Rows are keyed by a hash of the point's config (``grid.point_key``), the seed index and the
mode. A group of points is written in one transaction, so a process killed mid-sweep loses
at most the group it was training, and a rerun of the same command skips every finished
point. Only this module touches the database.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from lstm_stateful.core.errors import ConfigError
from lstm_stateful.sweep.grid import Group, Point, SweepSpec, groups, point_key

SCHEMA_VERSION = 1
# How long a writer waits for another process's transaction before giving up.
BUSY_TIMEOUT_MS = 60_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    config_hash TEXT NOT NULL,
    seed_index INTEGER NOT NULL,
    mode TEXT NOT NULL,
    tsteps INTEGER NOT NULL,
    lahead INTEGER NOT NULL,
    config TEXT NOT NULL,
    mse REAL,
    r2 REAL,
    converged INTEGER NOT NULL,
    floor REAL NOT NULL,
    window_floor REAL NOT NULL,
    zero_floor REAL NOT NULL,
    train_loss TEXT NOT NULL,
    val_loss TEXT NOT NULL,
    group_s REAL NOT NULL,
    written_at REAL NOT NULL,
    PRIMARY KEY (config_hash, seed_index, mode)
);
CREATE TABLE IF NOT EXISTS sweeps (id INTEGER PRIMARY KEY, spec TEXT NOT NULL, started_at REAL NOT NULL)
"""


@dataclasses.dataclass(frozen=True)
class Record:
    """One trained model's outcome. NaN marks a diverged score or loss.

    floor: the lowest MSE this model can reach (the window floor if stateless, else 0);
    group_s: wall time of the group it was trained in (compile and training).
    """

    config_hash: str
    seed_index: int
    mode: str
    tsteps: int
    lahead: int
    config: str
    mse: float
    r2: float
    converged: bool
    floor: float
    window_floor: float
    zero_floor: float
    train_loss: tuple[float, ...]
    val_loss: tuple[float, ...]
    group_s: float


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _losses_json(values: Sequence[float]) -> str:
    return json.dumps([_finite_or_none(float(v)) for v in values])


def _to_row(r: Record) -> tuple:
    return (
        r.config_hash, r.seed_index, r.mode, r.tsteps, r.lahead, r.config, _finite_or_none(r.mse),
        _finite_or_none(r.r2), int(r.converged), r.floor, r.window_floor, r.zero_floor,
        _losses_json(r.train_loss), _losses_json(r.val_loss), r.group_s, time.time(),
    )  # fmt: skip


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _from_row(row: sqlite3.Row) -> Record:
    return Record(
        config_hash=row["config_hash"],
        seed_index=row["seed_index"],
        mode=row["mode"],
        tsteps=row["tsteps"],
        lahead=row["lahead"],
        config=row["config"],
        mse=_nan_if_none(row["mse"]),
        r2=_nan_if_none(row["r2"]),
        converged=bool(row["converged"]),
        floor=row["floor"],
        window_floor=row["window_floor"],
        zero_floor=row["zero_floor"],
        train_loss=tuple(_nan_if_none(v) for v in json.loads(row["train_loss"])),
        val_loss=tuple(_nan_if_none(v) for v in json.loads(row["val_loss"])),
        group_s=row["group_s"],
    )


class Store:
    """An open store. ``Store.open(path)`` creates it or checks its schema version."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    @classmethod
    def open(cls, path: Path, flag: str = "store") -> Store:
        """Open or create the store; a bad path, a file that is not a store, or another
        schema version raise ``ConfigError`` naming ``flag``."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            with db:
                db.execute("BEGIN IMMEDIATE")  # proves the file writable before any training
                for statement in _SCHEMA.split(";"):
                    db.execute(statement)
                found = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                if found is None:
                    db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        except (OSError, sqlite3.Error) as e:
            raise ConfigError(flag, f"cannot use {str(path)!r} as a sweep store: {e}") from None
        if found is not None and found["value"] != str(SCHEMA_VERSION):
            db.close()
            raise ConfigError(
                flag,
                f"{str(path)!r} was written with store schema version {found['value']}; this version of "
                f"lstm-stateful reads version {SCHEMA_VERSION}: use another `store` or `out`",
            )
        return cls(path, db)

    def close(self) -> None:
        self._db.close()

    def record_sweep(self, spec: SweepSpec) -> None:
        """Remember a sweep's spec, so that ``--report`` can redraw the latest one."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO sweeps (spec, started_at) VALUES (?, ?)", (json.dumps(spec.to_dict()), time.time())
            )

    def latest_sweep(self) -> SweepSpec | None:
        row = self._db.execute("SELECT spec FROM sweeps ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else SweepSpec.from_dict(json.loads(row["spec"]))

    def write(self, records: Iterable[Record]) -> None:
        """Write a group's records in one transaction (all or nothing); rewrites replace."""
        rows = [_to_row(r) for r in records]
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(f"INSERT OR REPLACE INTO results VALUES ({', '.join('?' * 16)})", rows)

    def records(self, spec: SweepSpec) -> list[Record]:
        """The stored records of the spec's points and seeds (finished or not), grid order."""
        out: list[Record] = []
        for point in spec.points:
            rows = self._db.execute(
                "SELECT * FROM results WHERE config_hash = ? AND seed_index < ? ORDER BY mode, seed_index",
                (point_key(spec.config(point)), spec.base.seeds),
            ).fetchall()
            out.extend(_from_row(row) for row in rows)
        return out

    def finished(self, spec: SweepSpec) -> set[Point]:
        """Points whose every seed is stored for both modes."""
        done = set()
        for point in spec.points:
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM results WHERE config_hash = ? AND seed_index < ?",
                (point_key(spec.config(point)), spec.base.seeds),
            ).fetchone()
            if count == spec.trainings_per_point:
                done.add(point)
        return done

    def pending(self, spec: SweepSpec) -> tuple[list[Group], set[Point]]:
        """The groups still to train (most expensive first), and the points already finished."""
        done = self.finished(spec)
        return groups(spec, set(spec.points) - done), done
