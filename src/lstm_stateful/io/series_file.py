"""Reading series from your files: numeric columns of a CSV or Parquet file, streamed.

``iter_columns`` yields chunks in constant memory (``predict`` on a file of any length);
``read_columns`` is the whole file at once (``run``): several input columns, (N, F). Every problem a file can have is a
``ConfigError`` on ``data``, ``input`` or ``target`` naming the line (CSV, 1-based,
as an editor counts them) or the row (Parquet, 0-based), never a traceback. CSV lines
starting with ``#`` are comments.

Refused besides what is not a number: NaN and infinities; magnitudes beyond float32's (the
model computes in float32, and unstandardised values go to it as they are, so such a value
would become an infinity on the way in); a header that names a column twice (which of the two
a flag means is unknowable). Parquet needs pyarrow, the ``parquet`` extra.
"""

from __future__ import annotations

import contextlib
import csv
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from lstm_stateful.core.data import Columns
from lstm_stateful.core.errors import ConfigError

if TYPE_CHECKING:  # pyarrow is optional (the parquet extra): imported when a Parquet file is read
    import pyarrow as pa

FORMATS = (".csv", ".parquet")
CHUNK_ROWS = 65_536
MISSING = "is empty (a missing value; `drop_missing` skips such rows)"
FLOAT32_MAX = float(np.finfo(np.float32).max)
BEYOND_FLOAT32 = f"the model computes in float32, which holds magnitudes up to {FLOAT32_MAX:.7g} only"
PARQUET_EXTRA = "reading .parquet files needs the parquet extra: pip install 'lstm-stateful[parquet]'"


class Chunk(NamedTuple):
    """Rows of the chosen columns, float64, each (n,); ``rows``: (n,) their data indices
    (0-based, header and comments excluded; with ``drop_missing`` not consecutive);
    ``lines``: (n,) their lines in a CSV file (1-based, as an editor counts), None for Parquet."""

    rows: np.ndarray
    values: dict[str, np.ndarray]
    lines: np.ndarray | None = None

    def where(self, i: int) -> str:
        """Where row i of the chunk is in the file: ``line 12`` (CSV) or ``row 10`` (Parquet)."""
        return f"line {int(self.lines[i])}" if self.lines is not None else f"row {int(self.rows[i])}"


class Reading(NamedTuple):
    """Which columns to read (name -> the flag that chose it), and how."""

    columns: dict[str, str]
    drop_missing: bool = False


def check_path(path: str | Path) -> Path:
    """The file exists, is a file, and has a format we read."""
    p = Path(path)
    if p.suffix.lower() not in FORMATS:
        raise ConfigError("data", f"{str(p)!r} is not a .csv or .parquet file")
    if not p.is_file():
        raise ConfigError("data", f"no such file: {str(p)!r}")
    if p.suffix.lower() == ".parquet":
        _parquet_module()  # here, so that predict says so before it loads the model
    return p


def _parquet_module() -> ModuleType:
    """``pyarrow.parquet``, or a one-line error naming the extra that installs it."""
    try:
        import pyarrow.parquet as pq
    except ImportError as e:
        # Only a missing pyarrow is cured by the extra; a broken one says what broke.
        missing = (e.name or "").partition(".")[0] == "pyarrow"
        raise ConfigError("data", PARQUET_EXTRA if missing else f"cannot import pyarrow: {e}") from None
    return pq


def _duplicates(names: list[str], chosen: Iterable[str], path: Path) -> None:
    """Refuse a column name given twice, chosen or not: the file is ambiguous. Blank names
    may repeat (trailing commas give several) unless a flag chose the blank name."""
    seen: set[str] = set()
    for name in names:
        if name in seen and (name or name in chosen):
            raise ConfigError("data", f"{str(path)!r} has more than one column named {name!r}")
        seen.add(name)


def _missing(columns: list[str], header: list[str], flags: dict[str, str], path: Path) -> None:
    for column in columns:
        if column not in header:
            shown = ", ".join(repr(h) for h in header[:12]) + (", ..." if len(header) > 12 else "")
            raise ConfigError(flags[column], f"no column {column!r} in {str(path)!r}; it has: {shown}")


def _is_missing(text: str) -> bool:
    return text.strip().lower() in ("", "nan", "na", "null")


def _parse(text: str, column: str, where: str, flag: str) -> float:
    """One cell as a finite float, or an error saying where and what it is."""
    if _is_missing(text):
        raise ConfigError(flag, f"column {column!r} {MISSING} at {where}")
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(flag, f"column {column!r} is not a number: {text.strip()[:40]!r} at {where}") from None
    shown = text.strip() if len(text.strip()) <= 40 else text.strip()[:40] + "..."
    if math.isnan(value) or "inf" in text.lower():
        raise ConfigError(flag, f"column {column!r} holds {shown} at {where}; only finite numbers are allowed")
    if abs(value) > FLOAT32_MAX:  # 1e400 too, which float() has made an infinity
        raise ConfigError(flag, f"column {column!r} holds {shown} at {where}; {BEYOND_FLOAT32}")
    return value


class _Lines:
    """The data lines of a CSV file for ``csv.reader`` (comments and blank lines skipped),
    remembering the number of the last line handed out, for error messages."""

    def __init__(self, f: Iterator[str]) -> None:
        self._numbered = enumerate(f, 1)
        self.line_no = 0

    def __iter__(self) -> Iterator[str]:
        for n, line in self._numbered:
            if line.strip() and not line.lstrip().startswith("#"):
                self.line_no = n
                yield line


def csv_rows(
    f: Iterator[str], path: Path, names: list[str], flags: Mapping[str, str]
) -> Iterator[tuple[int, list[str]]]:
    """Each data row of an open CSV file as (its line, the cells of ``names`` in that order),
    once the header is checked: not empty, no column named twice, every name there (a missing
    one is an error on its flag in ``flags``); a row shorter than the header is an error."""
    lines = _Lines(f)
    reader = csv.reader(lines)
    header = [h.strip() for h in next(reader, [])]
    if not header:
        raise ConfigError("data", f"{str(path)!r} is empty: expected a header line of column names")
    _duplicates(header, names, path)
    _missing(names, header, dict(flags), path)
    index = [header.index(c) for c in names]
    for fields in reader:
        if len(fields) < len(header):
            where = f"line {lines.line_no} of {str(path)!r}"
            raise ConfigError("data", f"{where} has {len(fields)} fields, the header {len(header)}")
        yield lines.line_no, [fields[i] for i in index]


def _csv_chunks(path: Path, reading: Reading, chunk: int) -> Iterator[Chunk]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        texts: list[list[str]] = []
        line_nos: list[int] = []
        first = 0
        for line_no, cells in csv_rows(f, path, list(reading.columns), reading.columns):
            texts.append(cells)
            line_nos.append(line_no)
            if len(texts) == chunk:
                yield _parse_chunk(texts, line_nos, first, reading)
                first, texts, line_nos = first + len(texts), [], []
        if texts:
            yield _parse_chunk(texts, line_nos, first, reading)


def _parse_chunk(texts: list[list[str]], line_nos: list[int], first: int, reading: Reading) -> Chunk:
    """Rows of cell texts -> numbers. ``first``: the data-row index of the first row;
    ``line_nos``: each row's line in the file, for the error messages."""
    names = list(reading.columns)
    try:  # the common case, parsed by NumPy in one go
        table = np.array(texts, dtype=np.float64).reshape(len(texts), len(names))
        # False for NaN and infinities too; the slow path below says which cell and why.
        if (np.abs(table) <= FLOAT32_MAX).all():
            values = {c: table[:, i] for i, c in enumerate(names)}
            return Chunk(np.arange(first, first + len(texts)), values, np.asarray(line_nos, np.int64))
    except ValueError:
        pass
    rows, numbers, kept_lines = [], [], []
    for k, (row_texts, line_no) in enumerate(zip(texts, line_nos, strict=True)):
        if reading.drop_missing and any(_is_missing(t) for t in row_texts):
            continue
        where = f"line {line_no}"
        rows.append([_parse(t, c, where, reading.columns[c]) for t, c in zip(row_texts, names, strict=True)])
        numbers.append(first + k)
        kept_lines.append(line_no)
    table = np.asarray(rows, np.float64).reshape(len(rows), len(names))
    values = {c: table[:, i] for i, c in enumerate(names)}
    return Chunk(np.asarray(numbers, np.int64), values, np.asarray(kept_lines, np.int64))


def _parquet_chunks(path: Path, reading: Reading, chunk: int) -> Iterator[Chunk]:
    pq = _parquet_module()
    try:
        reader = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a file that is not Parquet
        raise ConfigError("data", f"cannot read {str(path)!r} as Parquet: {e}") from None
    columns, flags = list(reading.columns), reading.columns
    _duplicates(reader.schema_arrow.names, columns, path)
    _missing(columns, reader.schema_arrow.names, flags, path)
    first = 0
    for batch in reader.iter_batches(batch_size=chunk, columns=columns):
        values = {c: _parquet_values(batch.column(c), c, flags[c]) for c in columns}
        rows = np.arange(first, first + batch.num_rows)
        first += batch.num_rows
        missing = np.any([np.isnan(v) for v in values.values()], axis=0)
        if reading.drop_missing:
            rows, values = rows[~missing], {c: v[~missing] for c, v in values.items()}
        _check_parquet(values, rows, flags)
        yield Chunk(rows, values)


def _check_parquet(values: dict[str, np.ndarray], rows: np.ndarray, flags: dict[str, str]) -> None:
    """Refuse the first NaN (a null), infinity or magnitude beyond float32 of each column."""
    for c, v in values.items():
        bad = ~(np.abs(v) <= FLOAT32_MAX)  # NaN compares False, so it is bad too
        if not bad.any():
            continue
        i = int(np.flatnonzero(bad)[0])
        value, where = float(v[i]), f"row {rows[i]}"
        if math.isnan(value):
            raise ConfigError(flags[c], f"column {c!r} {MISSING} at {where}")
        if math.isinf(value):
            raise ConfigError(flags[c], f"column {c!r} holds {value} at {where}; only finite numbers are allowed")
        raise ConfigError(flags[c], f"column {c!r} holds {value!r} at {where}; {BEYOND_FLOAT32}")


def _parquet_values(array: pa.Array, column: str, flag: str) -> np.ndarray:
    """A Parquet column as float64, nulls as NaN."""
    try:
        return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(flag, f"column {column!r} is not numeric (type {array.type})") from None


def iter_columns(path: str | Path, reading: Reading, chunk: int = CHUNK_ROWS) -> Iterator[Chunk]:
    """Stream the chosen columns of a CSV or Parquet file in chunks of at most ``chunk``
    rows, checking every value on the way; with ``drop_missing``, rows where a chosen
    column is empty (or NaN) are skipped instead of refused."""
    p = check_path(path)
    with read_errors(p):
        if p.suffix.lower() == ".csv":
            yield from _csv_chunks(p, reading, chunk)
        else:
            yield from _parquet_chunks(p, reading, chunk)


@contextlib.contextmanager
def read_errors(path: Path) -> Iterator[None]:
    """What reading ``path`` can raise (not UTF-8, not CSV, not readable), as one line on ``data``."""
    try:
        yield
    except UnicodeDecodeError:
        raise ConfigError("data", f"{str(path)!r} is not a text CSV file (not UTF-8)") from None
    except csv.Error as e:
        raise ConfigError("data", f"{str(path)!r} is not valid CSV: {e}") from None
    except OSError as e:
        raise ConfigError("data", f"cannot read {str(path)!r}: {e.strerror or e}") from None


def read_columns(
    path: str | Path,
    input_cols: str | tuple[str, ...] | None,
    target_col: str | None = None,
    drop_missing: bool = False,
) -> Columns:
    """The whole file's chosen columns, float64: input (N, F), the ``input_cols`` in their
    order (one name is one column), and the target (N,) for ``target_col``; with each row's
    place in the file (``Columns.rows``, ``Columns.lines``) for later errors."""
    names = (input_cols,) if isinstance(input_cols, str) else tuple(input_cols or ())
    if not names:
        raise ConfigError("input", "is required with `data`: name the column (or columns) that feed the model")
    # A column both input and target is read once; the target's flag names it in errors.
    flags = dict.fromkeys(names, "input") | ({target_col: "target"} if target_col is not None else {})
    chunks = list(iter_columns(path, Reading(flags, drop_missing)))
    if not chunks or not sum(len(c.rows) for c in chunks):
        raise ConfigError("data", f"{str(path)!r} has a header but no rows")

    def whole(column: str) -> np.ndarray:
        return np.concatenate([c.values[column] for c in chunks])

    lines = None if chunks[0].lines is None else np.concatenate([c.lines for c in chunks if c.lines is not None])
    return Columns(
        input=np.stack([whole(c) for c in names], axis=1),
        target=whole(target_col) if target_col is not None else None,
        rows=np.concatenate([c.rows for c in chunks]),
        lines=lines,
    )
