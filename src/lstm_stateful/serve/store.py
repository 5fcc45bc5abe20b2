"""The service's durable state: one SQLite file (WAL, ``synchronous=FULL``), one row per stream.

A row holds what the stream has had accepted (``seq``), its state (safetensors bytes, see
``engine.StateCodec``), and the last request applied (its ``seq`` and the SHA-256 of its
values) with the response sent for it, so that a retry gets the same response. The service
writes each round of accepted requests in one transaction and answers only after it
commits: whatever a client was told is on the disk, and a process killed at any moment
leaves the file at its last commit.

One writer per file: an exclusive ``flock`` on ``FILE.lock`` beside it, taken before the
database is opened and held until ``close`` (the kernel drops it when the process dies, so
a killed server never leaves it behind). The file also records the model it serves (the
weights' SHA-256 from ``model.json``): another model's streams would not fit.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from lstm_stateful.core.errors import ConfigError

FORMAT = "lstm-stateful/streams"
FORMAT_VERSION = "1"
LOCK_SUFFIX = ".lock"
_COLUMNS = ("id", "seq", "state", "last_seq", "last_values_sha256", "last_response", "created", "updated")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS streams (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, state BLOB NOT NULL, "
    "last_seq INTEGER NOT NULL, last_values_sha256 TEXT NOT NULL, last_response TEXT NOT NULL, "
    "created TEXT NOT NULL, updated TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # A learning service's weights (keys 'current' and 'best'), replay log and checkpoints.
    "CREATE TABLE IF NOT EXISTS learner (key TEXT PRIMARY KEY, version INTEGER NOT NULL, weights BLOB NOT NULL, "
    "info TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS learn_log (version INTEGER PRIMARY KEY, kind TEXT NOT NULL, blob BLOB NOT NULL, "
    "requests TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS learn_checkpoints (version INTEGER PRIMARY KEY, weights BLOB NOT NULL)",
)
# The Python type of each column as SQLite returns it (a damaged or hand-edited row differs).
_TYPES = (str, int, bytes, int, str, str, str, str)
_UPSERT = f"INSERT OR REPLACE INTO streams ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


def _types(row: tuple) -> str:
    return ", ".join(f"{name} {type(v).__name__}" for name, v in zip(_COLUMNS, row, strict=True))


class Row(NamedTuple):
    """One stream as stored. seq: values accepted; state: safetensors bytes; last_seq,
    last_values_sha256, last_response: the last request applied and the JSON sent for it;
    created, updated: ISO 8601 UTC."""

    id: str
    seq: int
    state: bytes
    last_seq: int
    last_values_sha256: str
    last_response: str
    created: str
    updated: str


class LearnWrite(NamedTuple):
    """What a learning round writes beside its streams: the current weights (version,
    bytes, the learner's counters as JSON), the best weights when they changed, the
    version's log record (version, kind, blob, requests), and whether to checkpoint the
    current weights (the log then keeps what follows the older of the last two checkpoints)."""

    version: int
    weights: bytes | None  # None: the weights as stored (no new version), only ``info`` changes
    info: str
    best: tuple[int, bytes] | None = None
    record: tuple[int, str, bytes, str] | None = None
    checkpoint: bool = False


class Stored(NamedTuple):
    """A learning service's weights as stored: version, bytes, and the learner's JSON."""

    version: int
    weights: bytes
    info: str


def _bad(path: Path, problem: str) -> ConfigError:
    return ConfigError("state", f"{str(path)!r} {problem}")


def _lock(path: Path) -> int:
    """Take the exclusive lock beside ``path``; its file descriptor (closing it releases)."""
    lock = path.with_name(path.name + LOCK_SUFFIX)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise _bad(path, f"cannot be used: cannot create its lock file ({e.strerror or e})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ConfigError("state", f"{path} is in use by another server (one writer per state file)") from None
    return fd


def _connect(path: Path) -> sqlite3.Connection:
    """Open (or create) the database in WAL mode with full syncs. Transactions are explicit."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise _bad(path, f"cannot use write-ahead logging (journal mode {mode!r}); put it on a local disk")
        db.execute("PRAGMA synchronous=FULL")
        for statement in _SCHEMA:
            db.execute(statement)
    except BaseException:
        db.close()
        raise
    return db


def _claim(db: sqlite3.Connection, path: Path, model_sha256: str) -> None:
    """Record the format and the model in a new file; refuse another format's or model's."""
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    if not meta:
        stamp = {"format": FORMAT, "format_version": FORMAT_VERSION, "model_sha256": model_sha256}
        with _transaction(db):
            db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", stamp.items())
        return
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise _bad(path, f"is not a state file of this lstm-stateful ({FORMAT} version {FORMAT_VERSION})")
    if meta.get("model_sha256") != model_sha256:
        raise _bad(
            path,
            "holds the streams of another model (its weights or settings differ), or of a server with "
            "other --learn settings; give a new --state file",
        )
    with _transaction(db):  # a file it cannot write (read-only, a full disk) is refused now, not per request
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('opened', datetime('now'))")


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        # A failed COMMIT (SQLITE_BUSY, say) can leave the transaction open: the next BEGIN would fail.
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


class Store:
    """The state file of one server: open with ``Store.open``, close with ``close``."""

    def __init__(self, path: Path, db: sqlite3.Connection, lock_fd: int) -> None:
        self.path = path
        self._db = db
        self._lock_fd: int | None = lock_fd

    @classmethod
    def open(cls, path: str | Path, model_sha256: str) -> Store:
        """Lock ``path``, open it (created if absent) and check it serves ``model_sha256``.

        Every problem is a ``ConfigError`` on ``state``: in use by another server, not a
        usable SQLite file, another model's.
        """
        path = Path(path)
        if path.is_dir() or not path.parent.is_dir():
            problem = "is a directory" if path.is_dir() else "is in a directory that does not exist"
            raise _bad(path, f"{problem}; give the path of a state file (.sqlite)")
        fd = _lock(path)
        try:
            db = _connect(path)
            try:
                _claim(db, path, model_sha256)
            except BaseException:
                db.close()
                raise
        except sqlite3.Error as e:
            os.close(fd)
            raise _bad(path, f"is not a usable SQLite file ({e})") from None
        except BaseException:
            os.close(fd)
            raise
        return cls(path, db, fd)

    def rows(self) -> list[Row]:
        """Every stream, as last committed; a damaged file or a row of the wrong types is one
        ``ConfigError`` on ``state``."""
        try:
            rows = [Row(*row) for row in self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM streams")]
        except sqlite3.Error as e:
            raise _bad(self.path, f"cannot be read ({e})") from None
        for row in rows:
            if tuple(type(v) for v in row) != _TYPES:
                raise _bad(self.path, f"holds a damaged row for stream {row.id!r} (column types {_types(row)})")
        return rows

    def write(self, upserts: Sequence[Row], deletes: Sequence[str] = (), learning: LearnWrite | None = None) -> None:
        """Write ``upserts`` (replacing those streams' rows), remove ``deletes`` and write
        ``learning``, in one transaction; returns once it is committed (synced to the disk)."""
        with _transaction(self._db):
            self._db.executemany(_UPSERT, upserts)
            self._db.executemany("DELETE FROM streams WHERE id = ?", [(d,) for d in deletes])
            if learning is not None:
                self._learned(learning)

    def _learned(self, w: LearnWrite) -> None:
        db = self._db
        if w.weights is None:
            db.execute("UPDATE learner SET info = ? WHERE key = 'current'", (w.info,))
        else:
            db.execute("INSERT OR REPLACE INTO learner VALUES ('current', ?, ?, ?)", (w.version, w.weights, w.info))
        if w.best is not None:
            db.execute("INSERT OR REPLACE INTO learner VALUES ('best', ?, ?, '')", w.best)
        if w.record is not None:
            db.execute("INSERT INTO learn_log VALUES (?, ?, ?, ?)", w.record)
        if w.checkpoint:
            current = "SELECT version, weights FROM learner WHERE key = 'current'"
            db.execute(f"INSERT OR REPLACE INTO learn_checkpoints {current}")
            kept = [v for (v,) in db.execute("SELECT version FROM learn_checkpoints ORDER BY version DESC LIMIT 2")]
            db.execute("DELETE FROM learn_checkpoints WHERE version < ?", (kept[-1],))
            db.execute("DELETE FROM learn_log WHERE version <= ?", (kept[-1],))

    def learned(self) -> tuple[Stored, Stored] | None:
        """The current and best weights of a learning service (None: it never learnt here)."""
        rows = dict((key, Stored(*rest)) for key, *rest in self._db.execute("SELECT * FROM learner"))
        return None if "current" not in rows else (rows["current"], rows["best"])

    def checkpoint(self) -> tuple[int, bytes]:
        """The oldest checkpoint kept: the weights a replay of the log starts from."""
        return self._db.execute("SELECT version, weights FROM learn_checkpoints ORDER BY version LIMIT 1").fetchone()

    def records(self, after: int) -> list[tuple[int, str, bytes, str]]:
        """The log's records after version ``after``, in order: (version, kind, blob, requests)."""
        return self._db.execute("SELECT * FROM learn_log WHERE version > ? ORDER BY version", (after,)).fetchall()

    def close(self) -> None:
        """Close the database, then release the lock (idempotent)."""
        if self._lock_fd is None:
            return
        try:
            self._db.close()
        finally:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
