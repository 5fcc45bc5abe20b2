"""The sweep store: one SQLite file (stdlib ``sqlite3``, WAL), one row per (config, seed, mode).

Rows are keyed by a hash of the point's config (``grid.point_key``), the seed index and the
mode. A group of points is written in one transaction, so a process killed mid-sweep loses
at most the group it was training, and a rerun of the same command skips every finished
point (and every finished seed of a point). The baselines' test MSEs of each point and mode
are kept beside them, in a table of their own (a store of an earlier version gains it
empty). Only this module touches the database.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from lstm_stateful.core.config import MODES
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.sweep.grid import Group, Point, SweepSpec, groups, point_key

# 2: floors may be unknown (NULL: a data file has none), and baselines are stored. A store
# of version 1 is migrated when opened (``_MIGRATIONS``); an earlier lstm-stateful then
# refuses it by its version, rather than misread it.
SCHEMA_VERSION = 2
# How long a writer waits for another process's transaction before giving up.
BUSY_TIMEOUT_MS = 60_000

_RESULTS = """
CREATE TABLE IF NOT EXISTS {name} (
    config_hash TEXT NOT NULL,
    seed_index INTEGER NOT NULL,
    mode TEXT NOT NULL,
    tsteps INTEGER NOT NULL,
    lahead INTEGER NOT NULL,
    config TEXT NOT NULL,
    mse REAL,
    r2 REAL,
    converged INTEGER NOT NULL,
    floor REAL,
    window_floor REAL,
    zero_floor REAL,
    train_loss TEXT NOT NULL,
    val_loss TEXT NOT NULL,
    group_s REAL NOT NULL,
    written_at REAL NOT NULL,
    PRIMARY KEY (config_hash, seed_index, mode)
)"""
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
{_RESULTS.format(name="results")};
CREATE TABLE IF NOT EXISTS sweeps (id INTEGER PRIMARY KEY, spec TEXT NOT NULL, started_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS baselines (
    config_hash TEXT NOT NULL,
    mode TEXT NOT NULL,
    name TEXT NOT NULL,
    mse REAL,
    PRIMARY KEY (config_hash, mode, name)
)
"""
# From each earlier schema version to the next: version 1 had NOT NULL floors.
_MIGRATIONS = {
    1: (
        _RESULTS.format(name="results_v2"),
        "INSERT INTO results_v2 SELECT * FROM results",
        "DROP TABLE results",
        "ALTER TABLE results_v2 RENAME TO results",
    ),
}


@dataclasses.dataclass(frozen=True)
class Record:
    """One trained model's outcome. NaN marks a diverged score or loss.

    floor: the lowest MSE this model can reach (the window floor if stateless, else 0);
    group_s: wall time of the group it was trained in (compile and training); baselines:
    (name, test MSE in the data's units) of each baseline, on the points this model is
    scored on (empty for records of earlier versions).
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
    baselines: tuple[tuple[str, float], ...] = ()


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _losses_json(values: Sequence[float]) -> str:
    return json.dumps([_finite_or_none(float(v)) for v in values])


def _to_row(r: Record) -> tuple:
    return (
        r.config_hash, r.seed_index, r.mode, r.tsteps, r.lahead, r.config, _finite_or_none(r.mse),
        _finite_or_none(r.r2), int(r.converged), _finite_or_none(r.floor), _finite_or_none(r.window_floor),
        _finite_or_none(r.zero_floor),
        _losses_json(r.train_loss), _losses_json(r.val_loss), r.group_s, time.time(),
    )  # fmt: skip


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _from_row(row: sqlite3.Row, baselines: tuple[tuple[str, float], ...]) -> Record:
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
        floor=_nan_if_none(row["floor"]),
        window_floor=_nan_if_none(row["window_floor"]),
        zero_floor=_nan_if_none(row["zero_floor"]),
        train_loss=tuple(_nan_if_none(v) for v in json.loads(row["train_loss"])),
        val_loss=tuple(_nan_if_none(v) for v in json.loads(row["val_loss"])),
        group_s=row["group_s"],
        baselines=baselines,
    )


def _migrated(db: sqlite3.Connection) -> sqlite3.Row | None:
    """Inside the opening transaction: record the schema version of a new store, or migrate
    one of an earlier version. Returns the version row as found (None: a new store)."""
    found = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if found is None:
        db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        return None
    version = int(found["value"]) if found["value"].isdigit() else -1
    if version not in _MIGRATIONS:
        return found
    for old in range(version, SCHEMA_VERSION):
        for statement in _MIGRATIONS[old]:
            db.execute(statement)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
    return db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch to write-ahead logging. Two processes creating one store at once can find it
    locked here without SQLite's busy handler being called (the switch takes an exclusive
    lock), so the switch is retried for as long as the busy timeout allows."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


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
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            _use_wal(db)
            with db:
                db.execute("BEGIN IMMEDIATE")  # proves the file writable before any training
                for statement in _SCHEMA.split(";"):
                    db.execute(statement)
                found = _migrated(db)
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
        """Write a group's records and their baselines in one transaction (all or nothing);
        rewrites replace."""
        records = list(records)
        rows = [_to_row(r) for r in records]
        baselines = {(r.config_hash, r.mode, name): _finite_or_none(mse) for r in records for name, mse in r.baselines}
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(f"INSERT OR REPLACE INTO results VALUES ({', '.join('?' * 16)})", rows)
            self._db.executemany(
                "INSERT OR REPLACE INTO baselines VALUES (?, ?, ?, ?)", [(*k, v) for k, v in baselines.items()]
            )

    def _baselines(self, config_hash: str) -> dict[str, tuple[tuple[str, float], ...]]:
        """mode -> (name, MSE) of each baseline stored for the point, in the order written."""
        rows = self._db.execute(
            "SELECT mode, name, mse FROM baselines WHERE config_hash = ? ORDER BY rowid", (config_hash,)
        ).fetchall()
        return {mode: tuple((r["name"], _nan_if_none(r["mse"])) for r in rows if r["mode"] == mode) for mode in MODES}

    def records(self, spec: SweepSpec) -> list[Record]:
        """The stored records of the spec's points and seeds (finished or not), grid order."""
        out: list[Record] = []
        for point in spec.points:
            key = point_key(spec.config(point))
            rows = self._db.execute(
                "SELECT * FROM results WHERE config_hash = ? AND seed_index < ? ORDER BY mode, seed_index",
                (key, spec.base.seeds),
            ).fetchall()
            baselines = self._baselines(key) if rows else {}
            out.extend(_from_row(row, baselines.get(row["mode"], ())) for row in rows)
        return out

    def first_missing_seed(self, spec: SweepSpec) -> dict[Point, int]:
        """Points lacking a seed (either mode): the first such seed index. Seeds below it
        are stored for both modes; a sweep trains the point from there on."""
        out = {}
        for point in spec.points:
            stored = self._db.execute(
                "SELECT seed_index FROM results WHERE config_hash = ? AND seed_index < ? "
                "GROUP BY seed_index HAVING COUNT(*) = ? ORDER BY seed_index",
                (point_key(spec.config(point)), spec.base.seeds, len(MODES)),
            ).fetchall()
            first = next((i for i, row in enumerate(stored) if row["seed_index"] != i), len(stored))
            if first < spec.base.seeds:
                out[point] = first
        return out

    def finished(self, spec: SweepSpec) -> set[Point]:
        """Points whose every seed is stored for both modes."""
        return set(spec.points) - set(self.first_missing_seed(spec))

    def pending(self, spec: SweepSpec) -> tuple[list[Group], set[Point]]:
        """The groups still to train (most expensive first), and the points already finished."""
        missing = self.first_missing_seed(spec)
        return groups(spec, missing), set(spec.points) - set(missing)
