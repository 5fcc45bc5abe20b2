"""The state file: WAL with full syncs, a round written in one transaction that survives
reopening, one writer per file (another process is refused until the lock is released),
and a file of another model or format refused at start."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from lstm_stateful.core.errors import ConfigError
from lstm_stateful.serve.store import Row, Store

SHA = "ab" * 32


def _row(name: str, seq: int = 1) -> Row:
    response = f'{{"seq":{seq},"predictions":[null]}}'
    return Row(name, seq, bytes([seq % 256]) * 10, seq - 1, "cd" * 32, response, "2026-01-01T00:00:00.000Z",
               f"2026-01-01T00:00:{seq % 60:02d}.000Z")  # fmt: skip


def test_the_file_is_in_wal_mode_with_full_syncs(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite", SHA) as store:
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    reader = sqlite3.connect(tmp_path / "s.sqlite")
    assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent: the file's own mode
    reader.close()


def test_committed_rounds_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store.open(path, SHA) as store:
        store.write([_row("a"), _row("b"), _row("c")])
        store.write([_row("a", 2), _row("d", 5)], deletes=["b"])
    with Store.open(path, SHA) as store:
        rows = {row.id: row for row in store.rows()}
    assert sorted(rows) == ["a", "c", "d"]
    assert rows["a"] == _row("a", 2) and rows["d"] == _row("d", 5) and rows["c"] == _row("c")
    assert isinstance(rows["a"].state, bytes)


def test_a_failed_round_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store.open(path, SHA) as store:
        store.write([_row("a")])
        broken = Row(*_row("c")[:2], None, *_row("c")[3:])  # type: ignore[arg-type]  # NOT NULL
        with pytest.raises(sqlite3.IntegrityError):
            store.write([_row("a", 7), _row("b"), broken], deletes=["a"])
        assert store.rows() == [_row("a")]
        store.write([_row("b")])  # the store goes on after a failed transaction
    with Store.open(path, SHA) as store:
        assert sorted(store.rows()) == [_row("a"), _row("b")]


def _open_elsewhere(path: Path) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\nfrom lstm_stateful.serve.store import Store\nfrom lstm_stateful.core.errors import ConfigError\n"
        f"try:\n    Store.open({str(path)!r}, {SHA!r}).close()\nexcept ConfigError as e:\n    sys.exit(str(e))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_one_writer_per_file(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = Store.open(path, SHA)
    try:
        other = _open_elsewhere(path)
        assert other.returncode == 1
        assert other.stderr.strip() == f"state: {path} is in use by another server (one writer per state file)"
        with pytest.raises(ConfigError, match="is in use by another server"):  # a second opener here too
            Store.open(path, SHA)
    finally:
        store.close()
    store.close()  # idempotent
    assert _open_elsewhere(path).returncode == 0  # released on close
    Store.open(path, SHA).close()


def test_a_file_of_another_model_or_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    Store.open(path, SHA).close()
    with pytest.raises(ConfigError, match="holds the streams of another model"):
        Store.open(path, "ef" * 32)
    Store.open(path, SHA).close()  # the refusal released the lock
    text = tmp_path / "t.sqlite"
    text.write_text("not a database, but long enough to look like a header of one\n" * 20)
    with pytest.raises(ConfigError, match=r"^state: '.*t.sqlite' is not a usable SQLite file \(file is not a database"):
        Store.open(text, SHA)
    other = tmp_path / "o.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta VALUES ('format', 'something else')")
    db.commit()
    db.close()
    with pytest.raises(ConfigError, match="is not a state file of this lstm-stateful"):
        Store.open(other, SHA)
    with pytest.raises(ConfigError, match="is in a directory that does not exist"):
        Store.open(tmp_path / "no" / "s.sqlite", SHA)
    with pytest.raises(ConfigError, match="is a directory"):
        Store.open(tmp_path, SHA)


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        ("UPDATE streams SET state = 'text' WHERE id = 'a'", r"damaged row for stream 'a' \(column types"),
        ("UPDATE streams SET seq = 'abc' WHERE id = 'a'", "damaged row for stream 'a'"),
        ("UPDATE streams SET last_response = x'00' WHERE id = 'a'", "damaged row for stream 'a'"),
    ],
)
def test_a_damaged_row_is_one_line_at_start(tmp_path: Path, edit: str, fragment: str) -> None:
    path = tmp_path / "s.sqlite"
    with Store.open(path, SHA) as store:
        store.write([_row("a"), _row("b")])
    db = sqlite3.connect(path)
    db.execute(edit)
    db.commit()
    db.close()
    with Store.open(path, SHA) as store, pytest.raises(ConfigError, match=fragment) as e:
        store.rows()
    assert e.value.param == "state" and "\n" not in str(e.value)
