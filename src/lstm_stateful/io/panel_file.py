"""Reading a panel from your file: many series in one long-format CSV or Parquet file, one row
per (series id, time), into a ``core.panel.Panel``.

``read_panel`` takes the id, time and value columns by name (other columns are ignored).
Rows may come in any order and series may be interleaved: each series is sorted by time.

Accepted:

- ids: the text of the id cell (CSV, surrounding spaces stripped), or an integer or string
  Parquet column. They come out sorted, numerically when every id is an integer.
- times: all numbers, or all ISO 8601 dates and timestamps (``2020-01-01``, ``2020-01``
  meaning day 1, ``2020-01-01T12:00:00``, ``2020-01-01 12:00``, with a UTC offset on every
  stamp or on none); Parquet number, date and timestamp columns too.
- values: finite numbers within float32's range; missing ones (empty, nan, NA, null) only
  with a ``fill`` policy.
- the grid: the panel's one step is its smallest difference between two times of a series;
  every time must be a whole number of steps after the panel's earliest. Dates at midnight
  on one day of the month make a calendar-month clock (monthly, quarterly, yearly); other
  dates and timestamps a clock in whole seconds (UTC).
- ``fill`` ("previous", "linear" or "zero") fills missing times inside a series and missing
  values: the previous value carried on, a straight line between the values around, or 0.

Refused, each as one ``ConfigError`` naming the line (CSV, 1-based as an editor counts,
header and comments included; lines starting with ``#`` are comments) or the row (Parquet,
0-based): a missing or repeated column, or one column chosen twice; no data rows; an empty
id; CSV ids that are integers on some lines and text on others (a shifted column); a Parquet
id column that is neither integers nor text; a time that is missing, not a number or date,
or finer than a whole second; numbers mixed with dates, and stamps with an offset mixed with
stamps without; a value that is not a finite number within float32's range; a time given
twice in a series; a series of one row; a time off the panel's grid; and, without ``fill``,
missing times inside a series and missing values (also with ``fill`` when there is nothing
to fill from: a missing first value with "previous", a missing first or last with "linear").
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, NoReturn

import numpy as np

from lstm_stateful.core.errors import ConfigError
from lstm_stateful.core.panel import Clock, Panel
from lstm_stateful.io.series_file import (
    FLOAT32_MAX,
    _check_parquet,
    _duplicates,
    _is_missing,
    _missing,
    _parquet_module,
    _parquet_values,
    _parse,
    check_path,
    csv_rows,
    read_errors,
)

if TYPE_CHECKING:  # pyarrow is optional (the parquet extra): imported when a Parquet file is read
    import pyarrow as pa

FILLS = ("previous", "linear", "zero")
# With ``fill``, the most values the filled panel may hold (8 bytes each): a wrong step, one
# stray second in hourly data say, would otherwise ask for a grid of billions.
MAX_FILLED = 100_000_000
FLAGS = ("id", "time", "input")
_INTEGER = re.compile(r"[+-]?\d+")
_YEAR_MONTH = re.compile(r"(\d{4})-(\d{2})")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_SECOND = dt.timedelta(seconds=1)
_UNITS = ((86_400, "day"), (3_600, "hour"), (60, "minute"), (1, "second"))
# The farthest a stamp given alone may lie from a clock's origin, in steps: ordinals stay
# exact in float64 and in int64 however far a forecast then runs.
MAX_ORDINAL = 1e12


class _Bad(Exception):
    """One cell's problem, to be told as ``column 't' {problem} at line 3{remark}``: the
    caller knows the place."""

    def __init__(self, problem: str, remark: str = "") -> None:
        super().__init__(problem)
        self.problem, self.remark = problem, remark


class _Place(NamedTuple):
    """Where the file's rows are: ``lines`` (N,) their CSV lines, None for Parquet."""

    lines: np.ndarray | None

    def __call__(self, row: int) -> str:
        return f"line {int(self.lines[row])}" if self.lines is not None else f"row {int(row)}"


class _Ids(NamedTuple):
    """codes: (N,) int64, each row's series as an index into ``names``: (S,) sorted ids."""

    codes: np.ndarray
    names: tuple[str, ...]


class _Moment(NamedTuple):
    """A date or timestamp: POSIX seconds (naive stamps taken as UTC) and its wall clock."""

    posix: int
    month: int  # year * 12 + month - 1
    day: int
    midnight: bool
    date_only: bool
    aware: bool


class _Times(NamedTuple):
    """Each row's time: ``values`` (N,) float64 numbers (kind "number"), or int64 POSIX
    seconds (kind "date"); ``months`` (N,) int64 calendar months when every stamp is a
    midnight on day ``day`` of its month, else None; ``dates``: no stamp had a time of day;
    ``texts`` (U,) the distinct stamps as written, ``codes`` (N,) each row's among them."""

    kind: str
    values: np.ndarray
    months: np.ndarray | None
    day: int
    dates: bool
    texts: list[str]
    codes: np.ndarray
    aware: bool = False


class _Table(NamedTuple):
    """The file's rows, in file order: ids, times, values (N,) float64 (NaN: missing)."""

    ids: _Ids
    times: _Times
    values: np.ndarray
    place: _Place


class _Sorted(NamedTuple):
    """The rows sorted by (series, time): codes, ordinals, values, rows (their file order
    index), each (N,); ``first`` (S,) each series' first index; clock: the grid."""

    codes: np.ndarray
    ordinals: np.ndarray
    values: np.ndarray
    rows: np.ndarray
    first: np.ndarray
    clock: Clock


def read_panel(path: str | Path, id_col: str, time_col: str, value_col: str, fill: str | None = None) -> Panel:
    """The panel in a long-format CSV or Parquet file (see the module's docstring): S series,
    ids sorted, each series' values in time order on the panel's clock."""
    if fill is not None and fill not in FILLS:
        raise ConfigError("fill", f"must be one of {', '.join(FILLS)} (or none), got {fill!r}")
    names = (id_col, time_col, value_col)
    for k in (1, 2):
        if names[k] in names[:k]:
            other = FLAGS[names.index(names[k])]
            raise ConfigError(FLAGS[k], f"column {names[k]!r} is the `{other}` column too; the columns must differ")
    p = check_path(path)
    table = _read(p, names, fill)
    if not len(table.values):
        raise ConfigError("data", f"{str(p)!r} has a header but no rows")
    return _assemble(table, fill)


def _read(path: Path, names: tuple[str, str, str], fill: str | None) -> _Table:
    """The file's three columns, every cell checked, with the errors of an unreadable file."""
    with read_errors(path):
        return _read_csv(path, names, fill) if path.suffix.lower() == ".csv" else _read_parquet(path, names, fill)


# ----- CSV -----------------------------------------------------------------------------------


def _read_csv(path: Path, names: tuple[str, str, str], fill: str | None) -> _Table:
    cells, line_nos = _csv_cells(path, names)
    place = _Place(np.asarray(line_nos, np.int64))
    return _Table(
        _csv_ids(cells[0], names[0], place),
        _text_times(*_codes(cells[1]), names[1], place),
        _csv_values(cells[2], names[2], place, fill),
        place,
    )


def _csv_cells(path: Path, names: tuple[str, str, str]) -> tuple[list[list[str]], list[int]]:
    """The id, time and value cells, each (N,), and each row's line."""
    cells: list[list[str]] = [[], [], []]
    ids, times, values = cells
    line_nos: list[int] = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        # Cells (str) are kept, not a list per row: a million lists held at once would be
        # tracked by the garbage collector, whose passes cost more than the parsing.
        for line_no, (i, t, v) in csv_rows(f, path, list(names), dict(zip(names, FLAGS, strict=True))):
            ids.append(i)
            times.append(t)
            values.append(v)
            line_nos.append(line_no)
    return cells, line_nos


def _codes(cells: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """(N,) int64 each cell's index among the distinct cells (surrounding spaces stripped),
    and those, in order of appearance."""
    raw = list(dict.fromkeys(cells))
    codes = np.fromiter(map({c: u for u, c in enumerate(raw)}.__getitem__, cells), np.int64, len(cells))
    stripped = [c.strip() for c in raw]
    distinct = list(dict.fromkeys(stripped))
    if len(distinct) < len(raw):  # " a" and "a": one id
        index = {c: u for u, c in enumerate(distinct)}
        codes = np.array([index[c] for c in stripped], np.int64)[codes]
    return codes, distinct


def _first_row(codes: np.ndarray, code: int) -> int:
    return int(np.flatnonzero(codes == code)[0])


def _first_change(per_row: np.ndarray) -> int | None:
    """The first row whose entry differs from row 0's, or None."""
    changed = np.flatnonzero(per_row != per_row[0]) if len(per_row) else per_row
    return int(changed[0]) if len(changed) else None


def _csv_ids(cells: list[str], column: str, place: _Place) -> _Ids:
    """Ids as text; refused: an empty one, and integers on some lines and text on others."""
    codes, names = _codes(cells)
    if "" in names:
        raise ConfigError("id", f"column {column!r} is empty at {place(_first_row(codes, names.index('')))}")
    integer = np.array([_INTEGER.fullmatch(n) is not None for n in names], bool)
    row = _first_change(integer[codes])
    if row is not None:
        before, now = ("integers", "text") if integer[codes[0]] else ("text", "an integer")
        raise ConfigError(
            "id",
            f"column {column!r} holds {before} from {place(0)} on, then {names[codes[row]]!r} ({now}) at "
            f"{place(row)}: is a column shifted? ids must be all integers or all text",
        )
    return _sorted_ids(codes, names, [int(n) for n in names] if integer.all() else None)


def _sorted_ids(codes: np.ndarray, names: list[str], numbers: list[int] | None) -> _Ids:
    """The ids sorted (by ``numbers`` when given, each id's value, else as text), and each
    row's code remapped to its id's place in that order."""
    if numbers is None:
        order = sorted(range(len(names)), key=names.__getitem__)
    else:
        order = sorted(range(len(names)), key=lambda u: (numbers[u], names[u]))
    rank = np.empty(len(names), np.int64)
    rank[np.asarray(order, np.int64)] = np.arange(len(names))
    return _Ids(rank[codes] if len(codes) else codes, tuple(names[u] for u in order))


def _csv_values(cells: list[str], column: str, place: _Place, fill: str | None) -> np.ndarray:
    """(N,) float64, NaN where missing (refused without ``fill``)."""
    try:  # the common case, parsed by NumPy in one go
        values = np.array(cells, dtype=np.float64)
        if (np.abs(values) <= FLOAT32_MAX).all():  # False for NaN and infinities
            return values
    except ValueError:
        pass
    values = np.empty(len(cells), np.float64)
    for i, text in enumerate(cells):
        if _is_missing(text):
            _refuse_missing(column, place(i), fill)
            values[i] = np.nan
        else:
            values[i] = _parse(text, column, place(i), "input")
    return values


def _refuse_missing(column: str, where: str, fill: str | None) -> None:
    if fill is None:
        problem = f"column {column!r} is empty (a missing value) at {where}; `fill` can fill missing values"
        raise ConfigError("input", problem)


# ----- times -----------------------------------------------------------------------------------


def _text_times(codes: np.ndarray, texts: list[str], column: str, place: _Place) -> _Times:
    """Times written as text, the distinct ``texts`` (U,) and each row's ``codes`` (N,) among
    them: all numbers, or all ISO 8601 dates and timestamps."""
    try:  # the common case: numbers
        numbers = np.array(texts, dtype=np.float64)
        if np.isfinite(numbers).all():
            return _Times("number", numbers[codes], None, 1, False, texts, codes)
    except ValueError:
        pass
    stamps: list[float | _Moment] = []
    for u, text in enumerate(texts):
        try:
            stamps.append(_stamp(text))
        except _Bad as e:
            where = place(_first_row(codes, u))
            raise ConfigError("time", f"column {column!r} {e.problem} at {where}{e.remark}") from None
    is_number = np.array([isinstance(s, float) for s in stamps], bool)
    row = _first_change(is_number[codes])
    if row is not None:
        problem = f"{texts[codes[0]]!r} at {place(0)} but {texts[codes[row]]!r} at {place(row)}"
        raise ConfigError("time", f"column {column!r} mixes numbers and dates: {problem}")
    if is_number.all():
        return _Times("number", np.array(stamps, np.float64)[codes], None, 1, False, texts, codes)
    return _date_times([s for s in stamps if isinstance(s, _Moment)], texts, codes, column, place)


def _stamp(text: str) -> float | _Moment:
    """One time cell: a finite number or an ISO 8601 date or timestamp."""
    if _is_missing(text):
        raise _Bad("is empty", "; every row needs a time")
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise _Bad(f"holds {text[:40]}", "; times must be finite")
        return number
    try:
        year_month = _YEAR_MONTH.fullmatch(text)
        if year_month:
            return _moment(dt.datetime(int(year_month[1]), int(year_month[2]), 1), True)
        try:
            return _moment(dt.datetime.combine(dt.date.fromisoformat(text), dt.time()), True)
        except ValueError:
            return _moment(dt.datetime.fromisoformat(text), False)
    except ValueError:
        raise _Bad(f"is neither a number nor an ISO 8601 date: {text[:40]!r}") from None


def _moment(stamp: dt.datetime, date_only: bool) -> _Moment:
    if stamp.microsecond:
        raise _Bad(f"holds {stamp.isoformat()}", ", a fraction of a second; the time step must be whole seconds")
    aware = stamp.utcoffset() is not None
    posix = ((stamp if aware else stamp.replace(tzinfo=dt.UTC)) - _EPOCH) // _SECOND
    midnight = (stamp.hour, stamp.minute, stamp.second) == (0, 0, 0)
    return _Moment(posix, stamp.year * 12 + stamp.month - 1, stamp.day, midnight, date_only, aware)


def _date_times(moments: list[_Moment], texts: list[str], codes: np.ndarray, column: str, place: _Place) -> _Times:
    """Times from the distinct stamps (U of them) and each row's ``codes`` among them."""
    aware = np.array([m.aware for m in moments], bool)
    row = _first_change(aware[codes])
    if row is not None:
        problem = f"{texts[codes[0]]!r} at {place(0)} but {texts[codes[row]]!r} at {place(row)}"
        raise ConfigError("time", f"column {column!r} mixes stamps with and without a UTC offset: {problem}")
    posix = np.array([m.posix for m in moments], np.int64)[codes]
    days = {m.day for m in moments}
    monthly = len(days) == 1 and all(m.midnight for m in moments)
    months = np.array([m.month for m in moments], np.int64)[codes] if monthly else None
    dates = all(m.date_only for m in moments)
    return _Times("date", posix, months, days.pop() if monthly else 1, dates, texts, codes, bool(aware.all()))


# ----- Parquet -------------------------------------------------------------------------------


def _read_parquet(path: Path, names: tuple[str, str, str], fill: str | None) -> _Table:
    pq = _parquet_module()
    try:
        reader = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a file that is not Parquet
        raise ConfigError("data", f"cannot read {str(path)!r} as Parquet: {e}") from None
    header = reader.schema_arrow.names
    _duplicates(header, names, path)
    _missing(list(names), header, dict(zip(names, FLAGS, strict=True)), path)
    table = reader.read(columns=list(names))
    place = _Place(None)
    columns = [_combined(table.column(n)) for n in names]
    return _Table(
        _parquet_ids(columns[0], names[0]),
        _parquet_times(columns[1], names[1]),
        _parquet_panel_values(columns[2], names[2], fill),
        place,
    )


def _combined(column: pa.ChunkedArray) -> pa.Array:
    """One array (a dictionary column decoded: categories from pandas)."""
    import pyarrow as pa

    array = column.combine_chunks()
    return array.cast(array.type.value_type) if pa.types.is_dictionary(array.type) else array


def _encoded(array: pa.Array, column: str, flag: str) -> tuple[np.ndarray, pa.Array]:
    """(N,) int64 each row's index among the distinct values, and those; a null refused."""
    if array.null_count:
        row = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
        raise ConfigError(flag, f"column {column!r} is empty at row {row}")
    encoded = array.dictionary_encode()
    return np.asarray(encoded.indices.to_numpy(zero_copy_only=False), np.int64), encoded.dictionary


def _parquet_ids(array: pa.Array, column: str) -> _Ids:
    """Ids from an integer or string column, sorted numerically when all are integers."""
    import pyarrow as pa

    kind = array.type
    if not (pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise ConfigError("id", f"column {column!r} holds {kind}; ids must be integers or text")
    codes, distinct = _encoded(array, column, "id")
    values = distinct.to_pylist()
    names = [str(v) for v in values]
    if pa.types.is_integer(kind):
        return _sorted_ids(codes, names, values)
    if any(not n.strip() for n in names):
        blank = next(u for u, n in enumerate(names) if not n.strip())
        raise ConfigError("id", f"column {column!r} is empty at row {_first_row(codes, blank)}")
    integer = all(_INTEGER.fullmatch(n) for n in names)
    return _sorted_ids(codes, names, [int(n) for n in names] if integer else None)


def _parquet_times(array: pa.Array, column: str) -> _Times:
    """Times from a number, date, timestamp or string column."""
    import pyarrow as pa

    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        codes, distinct = _encoded(array, column, "time")
        return _text_times(codes, [str(s).strip() for s in distinct.to_pylist()], column, _Place(None))
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_temporal(kind)):
        raise ConfigError("time", f"column {column!r} holds {kind}; times must be numbers, dates or timestamps")
    codes, distinct = _encoded(array, column, "time")
    place = _Place(None)
    if not pa.types.is_temporal(kind):
        numbers = np.asarray(distinct.to_numpy(zero_copy_only=False), np.float64)
        bad = np.flatnonzero(~np.isfinite(numbers))
        if len(bad):
            raise ConfigError(
                "time",
                f"column {column!r} holds {numbers[bad[0]]} at row "
                f"{_first_row(codes, int(bad[0]))}; times must be finite",
            )
        return _Times("number", numbers[codes], None, 1, False, [_show(x) for x in numbers], codes)
    return _parquet_moments(distinct, codes, column, place)


def _parquet_moments(distinct: pa.Array, codes: np.ndarray, column: str, place: _Place) -> _Times:
    """Times from the distinct values (U,) of a date or timestamp column."""
    import pyarrow as pa

    kind = distinct.type
    if pa.types.is_timestamp(kind):
        per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[kind.unit]
        fraction = np.flatnonzero(np.asarray(distinct.cast(pa.int64()).to_numpy(), np.int64) % per_second)
        if len(fraction):
            row = _first_row(codes, int(fraction[0]))
            raise ConfigError(
                "time",
                f"column {column!r} holds a time at row {row} with a fraction of a second; the time step must be "
                "whole seconds",
            )
    elif not pa.types.is_date(kind):
        raise ConfigError("time", f"column {column!r} holds {kind}; times must be numbers, dates or timestamps")
    stamps = distinct.to_pylist()
    date_only = pa.types.is_date(kind)
    moments = [
        _moment(s if isinstance(s, dt.datetime) else dt.datetime.combine(s, dt.time()), date_only) for s in stamps
    ]
    return _date_times(moments, [s.isoformat() for s in stamps], codes, column, place)


def _parquet_panel_values(array: pa.Array, column: str, fill: str | None) -> np.ndarray:
    """(N,) float64, NaN where null or NaN (refused without ``fill``)."""
    values = _parquet_values(array, column, "input")
    missing = np.isnan(values)
    if missing.any():
        _refuse_missing(column, f"row {int(np.flatnonzero(missing)[0])}", fill)
    _check_parquet({column: values[~missing]}, np.flatnonzero(~missing), {column: "input"})
    return values


# ----- the grid ------------------------------------------------------------------------------


def _show(number: float) -> str:
    """A number as a person writes it: 3, 0.25."""
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def _step_text(clock: Clock) -> str:
    if clock.kind == "number":
        return _show(clock.step)
    count, unit = int(clock.step), "month"
    if clock.kind == "seconds":
        size, unit = next((s, u) for s, u in _UNITS if count % s == 0)
        count //= size
    return f"{count} {unit}{'s' if count != 1 else ''}"


def _assemble(table: _Table, fill: str | None) -> Panel:
    """Sort, check and grid the rows, then cut them into series."""
    ids, times, place = table.ids, table.times, table.place
    counts = np.bincount(ids.codes, minlength=len(ids.names))
    if (counts == 1).any():
        s = int(np.flatnonzero(counts == 1)[0])
        where = place(_first_row(ids.codes, s))
        raise ConfigError("data", f"series {ids.names[s]!r} has 1 row; a series needs at least 2 (at {where})")
    order = np.lexsort((times.values, ids.codes))  # stable: equal keys keep the file's order
    codes = ids.codes[order]
    _refuse_duplicates(table, order, codes)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    clock, ordinals = _grid(table, order, codes)
    rows = _Sorted(codes, ordinals, table.values[order], order, first, clock)
    _refuse_gaps(table, rows, fill)
    values = _filled(table, rows, fill) if fill is not None else np.split(rows.values, first[1:])
    return Panel(ids.names, tuple(values), ordinals[first].astype(np.int64), clock)


def _refuse_duplicates(table: _Table, order: np.ndarray, codes: np.ndarray) -> None:
    """A time twice in a series: the pair whose later row comes first in the file."""
    t = table.times.values[order]
    same = np.flatnonzero((codes[1:] == codes[:-1]) & (t[1:] == t[:-1]))
    if not len(same):
        return
    i = int(same[np.argmin(order[same + 1])])
    a, b = int(order[i]), int(order[i + 1])
    texts, tcodes, place = table.times.texts, table.times.codes, table.place
    shown = repr(texts[tcodes[a]]) + (f" (and {texts[tcodes[b]]!r})" if tcodes[a] != tcodes[b] else "")
    name = table.ids.names[int(codes[i])]
    raise ConfigError("data", f"series {name!r} has the time {shown} twice: at {place(a)} and at {place(b)}")


def _grid(table: _Table, order: np.ndarray, codes: np.ndarray) -> tuple[Clock, np.ndarray]:
    """The panel's clock and each sorted row's ordinal on it, (N,) int64. ``order``: (N,)
    the rows sorted by (series, time); ``codes``: (N,) their series."""
    times = table.times
    same = codes[1:] == codes[:-1]
    if times.kind == "number":
        return _number_grid(table, order, codes, times.values[order])
    months = times.months[order] if times.months is not None else None
    if months is not None and (np.diff(months)[same] > 0).all():
        t, kind, day, dates = months, "month", times.day, True
    else:
        t, kind, day, dates = times.values[order], "seconds", 1, times.dates
    step = int(np.diff(t)[same].min())
    clock = Clock(kind, float(t.min()), float(step), day, dates, utc=times.aware and kind == "seconds")
    off = (t - t.min()) % step != 0
    if off.any():
        _refuse_irregular(table, order, codes, t, clock, np.flatnonzero(off))
    return clock, (t - t.min()) // step


def _number_grid(table: _Table, order: np.ndarray, codes: np.ndarray, t: np.ndarray) -> tuple[Clock, np.ndarray]:
    """``_grid`` for number times ``t`` (N,), sorted: on the grid within a relative 1e-9."""
    step = float(np.diff(t)[codes[1:] == codes[:-1]].min())
    origin = float(t.min())
    for candidate in (float(f"{step:.12g}"), step):  # 0.1, not 0.09999999999999998
        k = (t - origin) / candidate
        ordinals = np.rint(k)
        off = np.abs(k - ordinals) > 1e-9 * np.maximum(1.0, np.abs(ordinals))
        if not off.any():
            return Clock("number", origin, candidate), ordinals.astype(np.int64)
    _refuse_irregular(table, order, codes, t, Clock("number", origin, step), np.flatnonzero(off))


def _refuse_irregular(
    table: _Table, order: np.ndarray, codes: np.ndarray, t: np.ndarray, clock: Clock, off: np.ndarray
) -> NoReturn:
    """Refuse the first row (in the file) off the grid, naming where the step comes from."""
    i = int(off[np.argmin(order[off])])
    same = np.flatnonzero(codes[1:] == codes[:-1])
    j = int(same[np.argmin(np.diff(t)[same])])
    texts, tcodes, place, names = table.times.texts, table.times.codes, table.place, table.ids.names
    row, a, b = int(order[i]), int(order[j]), int(order[j + 1])
    raise ConfigError(
        "data",
        f"irregular timestamps: series {names[int(codes[i])]!r} has {texts[tcodes[row]]!r} at {place(row)}, "
        f"not a whole number of steps after the panel's earliest time {clock.label(0)!r}; "
        f"the panel's step is {_step_text(clock)} (series {names[int(codes[j])]!r}: "
        f"{texts[tcodes[a]]!r} at {place(a)}, {texts[tcodes[b]]!r} at {place(b)})",
    )


def _refuse_gaps(table: _Table, rows: _Sorted, fill: str | None) -> None:
    """Without ``fill``, refuse the first missing time inside a series (in id order)."""
    inside = rows.codes[1:] == rows.codes[:-1]
    gaps = np.flatnonzero(inside & (np.diff(rows.ordinals) > 1))
    if fill is not None or not len(gaps):
        return
    i = int(gaps[0])
    a, b = int(rows.rows[i]), int(rows.rows[i + 1])
    texts, tcodes, place = table.times.texts, table.times.codes, table.place
    missing = int(rows.ordinals[i + 1] - rows.ordinals[i] - 1)
    raise ConfigError(
        "data",
        f"series {table.ids.names[int(rows.codes[i])]!r} has no value between {texts[tcodes[a]]!r} "
        f"({place(a)}) and {texts[tcodes[b]]!r} ({place(b)}): {missing} missing time"
        f"{'s' if missing != 1 else ''} on the panel's step of {_step_text(rows.clock)}; `fill` can fill them",
    )


def _filled(table: _Table, rows: _Sorted, fill: str) -> list[np.ndarray]:
    """Each series on every ordinal from its first to its last, gaps and missing values
    filled by ``fill``: S arrays."""
    last = np.append(rows.first[1:], len(rows.codes)) - 1
    spans = rows.ordinals[last] - rows.ordinals[rows.first] + 1
    if int(spans.sum()) > MAX_FILLED:
        s = int(np.argmax(spans))
        raise ConfigError(
            "fill",
            f"filling would make {int(spans.sum())} values, more than {MAX_FILLED} (series "
            f"{table.ids.names[s]!r} alone spans {int(spans[s])} steps of {_step_text(rows.clock)}): "
            "is the time column's step the one you meant?",
        )
    offsets = np.concatenate([[0], np.cumsum(spans)[:-1]]).astype(np.int64)
    flat = np.full(int(spans.sum()), np.nan)
    flat[offsets[rows.codes] + rows.ordinals - rows.ordinals[rows.first][rows.codes]] = rows.values
    _refuse_unfillable(table, rows, last, fill)
    return np.split(_fill(flat, fill), offsets[1:])


def _refuse_unfillable(table: _Table, rows: _Sorted, last: np.ndarray, fill: str) -> None:
    """Refuse a missing value that ``fill`` has nothing to fill from: a series' first with
    "previous", its first or last with "linear". ``last``: (S,) each series' last index."""
    for end, which, side in ((rows.first, "first", "before"), (last, "last", "after")):
        blank = np.flatnonzero(np.isnan(rows.values[end]))
        if fill == "zero" or (fill == "previous" and which == "last") or not len(blank):
            continue
        s = int(blank[0])
        raise ConfigError(
            "input",
            f"the {which} value of series {table.ids.names[s]!r} is missing (at "
            f"{table.place(int(rows.rows[end[s]]))}); `fill` {fill} has no value {side} it to fill it from",
        )


def _fill(flat: np.ndarray, fill: str) -> np.ndarray:
    """(T,) the series one after another, NaN filled; each series' first value (and with
    "linear" its last) is there, so no fill crosses from one series into the next."""
    missing = np.isnan(flat)
    if not missing.any():
        return flat
    if fill == "zero":
        return np.where(missing, 0.0, flat)
    at = np.arange(len(flat))
    if fill == "previous":
        return flat[np.maximum.accumulate(np.where(missing, 0, at))]
    return np.where(missing, np.interp(at, at[~missing], flat[~missing]), flat)


# ----- One stamp -----------------------------------------------------------------------------


def stamp_ordinal(clock: Clock, stamp: object) -> int:
    """The grid ordinal of one time on ``clock``: a number for a number clock, else an ISO
    8601 date or timestamp (text; without an offset, UTC). ConfigError (``start``) if it is
    not a time of that kind, or falls between the grid's steps."""
    if clock.kind == "number":
        if not isinstance(stamp, int | float) or isinstance(stamp, bool):
            raise ConfigError("start", f"must be a finite number, as the model's times are; got {str(stamp)[:40]!r}")
        try:
            k = (float(stamp) - clock.origin) / clock.step
        except OverflowError:  # an integer beyond any float
            k = math.inf
    else:
        if not isinstance(stamp, str):
            raise ConfigError("start", f"must be an ISO 8601 date or timestamp (text), as the model's times are; "
                              f"got {str(stamp)[:40]}")  # fmt: skip
        try:
            moment = _stamp(stamp.strip())
        except _Bad as e:
            raise ConfigError("start", f"{stamp[:40]!r} {e.problem}{e.remark}") from None
        if not isinstance(moment, _Moment):
            raise ConfigError("start", f"must be a date or timestamp, as the model's times are; got {stamp[:40]!r}")
        if clock.kind == "month" and (moment.day != clock.day or not moment.midnight):
            raise ConfigError("start", f"{stamp[:40]!r}: the model's months are dates, day {clock.day}, no time of day")
        k = ((moment.month if clock.kind == "month" else moment.posix) - clock.origin) / clock.step
    if not abs(k) <= MAX_ORDINAL:  # NaN and the infinities too
        far = f"lies more than {MAX_ORDINAL:.0e} steps from the model's first time"
        raise ConfigError("start", f"{str(stamp)[:40]} {far}")
    if abs(k - round(k)) > 1e-9 * max(1.0, abs(k)):
        raise ConfigError("start", f"{stamp!r} falls between the model's time steps ({_step_text(clock)})")
    return round(k)
