"""Reading a panel: a long-format CSV or Parquet file, many series on one grid, every bad
row named."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lstm_stateful.core.errors import ConfigError
from lstm_stateful.core.panel import Clock, Panel
from lstm_stateful.io import panel_file
from lstm_stateful.io.panel_file import read_panel


def _csv(tmp_path: Path, text: str, name: str = "p.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _read(tmp_path: Path, rows: str, fill: str | None = None) -> Panel:
    """A file with columns id, t, y and the given rows."""
    return read_panel(_csv(tmp_path, "id,t,y\n" + rows), "id", "t", "y", fill)


def _error(tmp_path: Path, rows: str, fill: str | None = None) -> str:
    with pytest.raises(ConfigError) as e:
        _read(tmp_path, rows, fill)
    assert "\n" not in e.value.problem
    return f"{e.value.param}: {e.value.problem}"


def _posix(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp).replace(tzinfo=dt.UTC).timestamp()


def _values(panel: Panel) -> list[list[float]]:
    return [v.tolist() for v in panel.values]


def test_monthly_unsorted_and_interleaved(tmp_path: Path) -> None:
    text = (
        "# sales by store\nstore,month,sales,note\n"
        "b,2020-03-01,30,x\na,2020-01-01,1,x\n# a comment\nb,2020-02-01,20,x\n\na,2020-03-01,3,x\n"
        "a,2020-02-01,2,x\nb,2020-04-01,40,x\nc,2020-06-01,600,x\nc,2020-05-01,500,x\n"
    )
    panel = read_panel(_csv(tmp_path, text), "store", "month", "sales")
    assert panel.ids == ("a", "b", "c") and len(panel) == 3
    assert _values(panel) == [[1, 2, 3], [20, 30, 40], [500, 600]]
    assert panel.starts.tolist() == [0, 1, 4] and panel.starts.dtype == np.int64
    assert panel.lengths.tolist() == [3, 3, 2] and panel.values[0].dtype == np.float64
    assert panel.clock == Clock("month", 2020 * 12, 1.0, 1, True)
    assert panel.clock.labels(np.array([0, 5, 12])) == ["2020-01-01", "2020-06-01", "2021-01-01"]


@pytest.mark.parametrize(
    ("stamps", "clock", "labels"),
    [
        (
            ["2020-01", "2020-04", "2020-07", "2020-10", "2021-01"],
            Clock("month", 2020 * 12, 3.0, 1, True),
            {1: "2020-04-01", 4: "2021-01-01", 7: "2021-10-01"},
        ),
        (
            ["2019-12-15", "2020-03-15", "2020-06-15", "2020-09-15", "2020-12-15"],
            Clock("month", 2019 * 12 + 11, 3.0, 15, True),
            {0: "2019-12-15", 2: "2020-06-15", 5: "2021-03-15"},
        ),
        (
            ["2016-01-01", "2017-01-01", "2018-01-01", "2019-01-01", "2020-01-01T00:00:00"],
            Clock("month", 2016 * 12, 12.0, 1, True),
            {4: "2020-01-01", 10: "2026-01-01"},
        ),
        (
            ["2020-02-27", "2020-02-28", "2020-02-29", "2020-03-01", "2020-03-02"],
            Clock("seconds", _posix("2020-02-27"), 86_400.0, 1, True),
            {2: "2020-02-29", 3: "2020-03-01", 400: "2021-04-02"},
        ),
        (
            ["2020-01-01 22:00", "2020-01-01T23:00:00", "2020-01-02 00:00", "2020-01-02T01:00", "2020-01-02 02:00"],
            Clock("seconds", _posix("2020-01-01T22:00"), 3_600.0, 1, False),
            {0: "2020-01-01T22:00:00", 2: "2020-01-02T00:00:00", 27: "2020-01-03T01:00:00"},
        ),
        (
            ["2020-01-01", "2020-01-08", "2020-01-15", "2020-01-22", "2020-01-29"],
            Clock("seconds", _posix("2020-01-01"), 7 * 86_400.0, 1, True),
            {5: "2020-02-05"},
        ),
    ],
)
def test_date_clocks(tmp_path: Path, stamps: list[str], clock: Clock, labels: dict[int, str]) -> None:
    # Series x holds the first three stamps, y the last three, given in reverse.
    rows = [f"x,{s},{i}" for i, s in enumerate(stamps[:3])] + [f"y,{s},{10 + i}" for i, s in enumerate(stamps[2:])]
    panel = _read(tmp_path, "\n".join(reversed(rows)) + "\n")
    assert panel.clock == clock
    assert panel.ids == ("x", "y") and _values(panel) == [[0, 1, 2], [10, 11, 12]]
    assert panel.starts.tolist() == [0, 2]
    assert {k: panel.clock.label(k) for k in labels} == labels


def test_stamps_with_an_offset_are_read_in_utc(tmp_path: Path) -> None:
    rows = "a,2020-01-01T02:00:00+02:00,1\na,2020-01-01T03:00:00+02:00,2\nb,2020-01-01T02:00:00Z,3\n"
    panel = _read(tmp_path, rows + "b,2020-01-01T01:00:00+00:00,4\n")
    assert panel.clock == Clock("seconds", _posix("2020-01-01T00:00"), 3_600.0, 1, False, utc=True)
    assert panel.starts.tolist() == [0, 1] and _values(panel) == [[1, 2], [4, 3]]
    hours = ["2020-01-01T00:00:00+00:00", "2020-01-01T01:00:00+00:00", "2020-01-01T02:00:00+00:00"]
    assert panel.clock.labels(np.arange(3)) == hours


def test_numbers_integer_ids_sorted_as_numbers(tmp_path: Path) -> None:
    rows = "10,2.0,4\n9,0.5,1\n1,3.0,8\n10,1.5,3\n9,1.0,2\n1,2.5,7\n9,1.5,2.5\n"
    panel = _read(tmp_path, rows)
    assert panel.ids == ("1", "9", "10")
    assert _values(panel) == [[7, 8], [1, 2, 2.5], [3, 4]]
    assert panel.starts.tolist() == [4, 0, 2]
    assert panel.clock == Clock("number", 0.5, 0.5, 1, False)
    assert [panel.clock.label(k) for k in (0, 1, 3, 4)] == ["0.5", "1", "2", "2.5"]


def test_number_steps_of_a_tenth_and_text_ids_sorted_as_text(tmp_path: Path) -> None:
    rows = "b,0.3,3\nB,0.1,1\nb,0.2,2\nB,0.2,2\nab,0.4,4\nab,0.5,5\n"
    panel = _read(tmp_path, rows)
    assert panel.ids == ("B", "ab", "b") and panel.starts.tolist() == [0, 3, 1]
    assert panel.clock.kind == "number" and panel.clock.step == 0.1 and panel.clock.origin == 0.1
    assert panel.clock.label(0) == "0.1"


def test_integer_times_and_spaces_around_ids(tmp_path: Path) -> None:
    panel = _read(tmp_path, "a,100,1\n a ,110, 2\nb , 120,3\nb,130,4\n")
    assert panel.ids == ("a", "b") and _values(panel) == [[1, 2], [3, 4]]
    assert panel.clock == Clock("number", 100.0, 10.0) and panel.starts.tolist() == [0, 2]
    assert panel.clock.labels(np.array([0, 3])) == ["100", "130"]


@pytest.mark.parametrize(
    ("fill", "a", "b"),
    [
        ("previous", [1, 1, 1, 7, 5], [10, 10, 10, 40]),
        ("linear", [1, 3, 5, 7, 5], [10, 20, 30, 40]),
        ("zero", [1, 0, 0, 7, 5], [10, 0, 0, 40]),
    ],
)
def test_fill_gaps_and_missing_values(tmp_path: Path, fill: str, a: list[float], b: list[float]) -> None:
    # Series a misses the value at 2 and the time 3; b the times 3 and 4.
    rows = "a,1,1\nb,5,40\na,2,\na,4,7\na,5,5\nb,2,10\n"
    panel = _read(tmp_path, rows, fill)
    assert _values(panel) == [a, b] and panel.starts.tolist() == [0, 1]
    assert panel.clock == Clock("number", 1.0, 1.0)


def test_fill_months_and_na_values(tmp_path: Path) -> None:
    rows = "a,2020-01,1\na,2020-02,NA\na,2020-05,4\nb,2020-03,null\nb,2020-04,2\n"
    panel = _read(tmp_path, rows, "zero")
    assert _values(panel) == [[1, 0, 0, 0, 4], [0, 2]] and panel.starts.tolist() == [0, 2]
    assert panel.clock == Clock("month", 2020 * 12, 1.0, 1, True)


def test_fill_refuses_what_it_cannot_fill(tmp_path: Path) -> None:
    first = "a,1,\na,2,2\nb,1,1\nb,2,2\n"
    assert _error(tmp_path, first, "previous") == (
        "input: the first value of series 'a' is missing (at line 2); `fill` previous has no value before it to "
        "fill it from"
    )
    assert _error(tmp_path, first, "linear").startswith("input: the first value of series 'a' is missing (at line 2)")
    assert _values(_read(tmp_path, first, "zero")) == [[0, 2], [1, 2]]
    last = "a,1,1\na,2,2\nb,1,1\nb,3,\n"
    assert _error(tmp_path, last, "linear") == (
        "input: the last value of series 'b' is missing (at line 5); `fill` linear has no value after it to "
        "fill it from"
    )
    assert _values(_read(tmp_path, last, "previous")) == [[1, 2], [1, 1, 1]]
    with pytest.raises(ConfigError) as e:
        read_panel(tmp_path / "p.csv", "id", "t", "y", "mean")
    assert e.value.param == "fill" and "must be one of previous, linear, zero" in e.value.problem


def test_fill_refuses_a_grid_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(panel_file, "MAX_FILLED", 10)
    rows = "a,0,1\na,1,1\na,9,1\nb,0,1\nb,2,1\n"
    assert "filling would make 13 values, more than 10 (series 'a' alone spans 10 steps of 1)" in _error(
        tmp_path, rows, "zero"
    )
    assert _values(_read(tmp_path, "a,0,1\na,1,1\na,9,1\n", "zero"))[0] == [1, 1] + [0] * 7 + [1]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            "1,1,1\n1,2,2\n2,1,1\n2,2,2\nA7,1,1\n",
            "id: column 'id' holds integers from line 2 on, then 'A7' (text) at line 6",
        ),
        ("x,1,1\nx,2,2\n3,1,1\n", "id: column 'id' holds text from line 2 on, then '3' (an integer) at line 4"),
        ("a,1,1\n,2,2\n", "id: column 'id' is empty at line 3"),
        ("a,1,1\na,2,\n", "input: column 'y' is empty (a missing value) at line 3; `fill` can fill missing values"),
        ("a,1,1\na,2,nan\n", "input: column 'y' is empty (a missing value) at line 3"),
        ("a,1,1\na,2,abc\n", "input: column 'y' is not a number: 'abc' at line 3"),
        ("a,1,1\na,2,-inf\n", "input: column 'y' holds -inf at line 3; only finite numbers are allowed"),
        ("a,1,1\na,2,1e39\n", "input: column 'y' holds 1e39 at line 3; the model computes in float32"),
        ("a,1,1\na,,2\n", "time: column 't' is empty at line 3; every row needs a time"),
        ("a,1,1\na,inf,2\n", "time: column 't' holds inf at line 3; times must be finite"),
        ("a,1,1\na,soon,2\n", "time: column 't' is neither a number nor an ISO 8601 date: 'soon' at line 3"),
        ("a,2020-13-01,1\na,2020-12-01,2\n", "time: column 't' is neither a number nor an ISO 8601 date: '2020-13-01'"),
        (
            "a,1,1\nb,1,1\na,2020-01-02,2\n",
            "time: column 't' mixes numbers and dates: '1' at line 2 but '2020-01-02' at line 4",
        ),
        (
            "a,2020-01-01T00:00+01:00,1\na,2020-01-02T00:00,2\n",
            "time: column 't' mixes stamps with and without a UTC offset: '2020-01-01T00:00+01:00' at line 2 but "
            "'2020-01-02T00:00' at line 3",
        ),
        (
            "a,2020-01-01T00:00:01,1\na,2020-01-01T00:00:01.5,2\n",
            "time: column 't' holds 2020-01-01T00:00:01.500000 at line 3, a fraction of a second",
        ),
        (
            "a,1,1\na,2,2\nb,1,1\na,2.0,3\nb,2,2\n",
            "data: series 'a' has the time '2' (and '2.0') twice: at line 3 and at line 5",
        ),
        (
            "a,2020-01,1\nb,2020-01,1\nb,2020-01-01,2\na,2020-02,1\n",
            "data: series 'b' has the time '2020-01' (and '2020-01-01') twice",
        ),
        ("a,1,1\na,2,2\nb,1,1\n", "data: series 'b' has 1 row; a series needs at least 2 (at line 4)"),
        ("a,1,1\n", "data: series 'a' has 1 row; a series needs at least 2 (at line 2)"),
        (
            "a,0,1\na,1,1\na,2,1\nb,0.5,1\nb,1.5,1\n",
            "data: irregular timestamps: series 'b' has '0.5' at line 5, not a whole number of steps after the panel's "
            "earliest time '0'; the panel's step is 1 (series 'a': '0' at line 2, '1' at line 3)",
        ),
        ("a,0,1\na,1,1\na,2.5,1\n", "data: irregular timestamps: series 'a' has '2.5' at line 4, not a whole number"),
        (
            "a,2020-01-01,1\na,2020-01-02,1\nb,2020-01-01T12:00,1\nb,2020-01-02T12:00,1\n",
            "data: irregular timestamps: series 'b' has '2020-01-01T12:00' at line 4, not a whole number of steps "
            "after the panel's earliest time '2020-01-01T00:00:00'; the panel's step is 1 day",
        ),
        (
            "a,2020-01,1\na,2020-03,1\nb,2020-03,1\nb,2020-06,1\n",
            "data: irregular timestamps: series 'b' has '2020-06' at line 5, not a whole number of steps after the "
            "panel's earliest time '2020-01-01'; the panel's step is 2 months",
        ),
        (
            "a,1,1\na,2,2\na,5,5\nb,1,1\nb,2,2\n",
            "data: series 'a' has no value between '2' (line 3) and '5' (line 4): 2 missing times on the panel's "
            "step of 1; `fill` can fill them",
        ),
        (
            "b,2020-01,1\nb,2020-02,1\na,2020-01,1\na,2020-02,1\na,2020-04,1\n",
            "data: series 'a' has no value between '2020-02' (line 5) and '2020-04' (line 6): 1 missing time on the "
            "panel's step of 1 month; `fill` can fill them",
        ),
        (
            "a,2020-01-01 00:00,1\na,2020-01-01 01:00,1\na,2020-01-01 04:00,1\n",
            "2 missing times on the panel's step of 1 hour; `fill` can fill them",
        ),
        ("a,1,1\na,2\n", "data: line 3 of"),
    ],
)
def test_refusals(tmp_path: Path, rows: str, message: str) -> None:
    assert message in _error(tmp_path, rows)


@pytest.mark.parametrize(
    ("header", "columns", "message"),
    [
        ("id,t,y", ("id", "t", "z"), "input: no column 'z' in"),
        ("id,t,y", ("id", "time", "y"), "time: no column 'time' in"),
        ("id,t,y", ("store", "t", "y"), "id: no column 'store' in"),
        ("id,t,y,t", ("id", "t", "y"), "data: "),
        ("id,t,y", ("id", "t", "id"), "input: column 'id' is the `id` column too; the columns must differ"),
        ("id,t,y", ("id", "id", "y"), "time: column 'id' is the `id` column too"),
        ("id,t,y", ("id", "t", "t"), "input: column 't' is the `time` column too"),
    ],
)
def test_bad_columns(tmp_path: Path, header: str, columns: tuple[str, str, str], message: str) -> None:
    path = _csv(tmp_path, f"{header}\na,1,1,1\na,2,2,2\n")
    with pytest.raises(ConfigError) as e:
        read_panel(path, *columns)
    assert message in f"{e.value.param}: {e.value.problem}"
    if "no column" in message:
        assert e.value.problem.endswith("it has: 'id', 't', 'y'")
    if header.endswith(",t"):
        assert e.value.problem == f"{str(path)!r} has more than one column named 't'"


def test_bad_files(tmp_path: Path) -> None:
    for text, message in [
        ("id,t,y\n", "has a header but no rows"),
        ("# nothing\n", "is empty: expected a header line"),
    ]:
        with pytest.raises(ConfigError, match=message) as e:
            read_panel(_csv(tmp_path, text), "id", "t", "y")
        assert e.value.param == "data"
    with pytest.raises(ConfigError, match="data: no such file"):
        read_panel(tmp_path / "absent.csv", "id", "t", "y")
    with pytest.raises(ConfigError, match=r"data: .* is not a \.csv or \.parquet file"):
        read_panel(_csv(tmp_path, "id,t,y\n", "p.txt"), "id", "t", "y")
    with pytest.raises(ConfigError, match=r"data: cannot read .* as Parquet"):
        read_panel(_csv(tmp_path, "id,t,y\n", "p.parquet"), "id", "t", "y")
    (tmp_path / "bin.csv").write_bytes(b"id,t,y\n\xff\xfe,1,1\n")
    with pytest.raises(ConfigError, match=r"data: .* is not a text CSV file"):
        read_panel(tmp_path / "bin.csv", "id", "t", "y")


def _parquet(tmp_path: Path, columns: dict[str, pa.Array | list[object]], name: str = "p.parquet") -> Path:
    path = tmp_path / name
    pq.write_table(pa.table(columns), path, row_group_size=3)
    return path


def test_parquet_equals_csv(tmp_path: Path) -> None:
    ids = [10, 9, 10, 9, 9, 1, 1]
    times = [pa.array([dt.date(2020, m, 1) for m in (3, 1, 2, 3, 2, 5, 6)], pa.date32())]
    values = [30.0, 1.0, 20.0, 3.0, 2.0, 500.0, 600.0]
    path = _parquet(tmp_path, {"id": pa.array(ids, pa.int32()), "t": times[0], "y": values})
    panel = read_panel(path, "id", "t", "y")
    assert panel.ids == ("1", "9", "10") and panel.starts.tolist() == [4, 0, 1]
    assert _values(panel) == [[500, 600], [1, 2, 3], [20, 30]]
    assert panel.clock == Clock("month", 2020 * 12, 1.0, 1, True)
    text = "id,t,y\n" + "".join(
        f"{i},2020-{t.month:02d}-01,{v}\n" for i, t, v in zip(ids, times[0].to_pylist(), values, strict=True)
    )
    from_csv = read_panel(_csv(tmp_path, text), "id", "t", "y")
    assert from_csv.ids == panel.ids and _values(from_csv) == _values(panel) and from_csv.clock == panel.clock


def test_parquet_times_of_each_type(tmp_path: Path) -> None:
    hours = [dt.datetime(2020, 1, 1, h) for h in (1, 0, 2, 1)]
    cases = [
        (pa.array(hours, pa.timestamp("ms")), Clock("seconds", _posix("2020-01-01T00:00"), 3_600.0, 1, False)),
        (
            pa.array([h.replace(tzinfo=dt.UTC) for h in hours], pa.timestamp("us", tz="UTC")),
            Clock("seconds", _posix("2020-01-01T00:00"), 3_600.0, 1, False, utc=True),
        ),
        (pa.array([1.0, 0.0, 2.0, 1.0]), Clock("number", 0.0, 1.0)),
        (pa.array([11, 10, 12, 11], pa.int64()), Clock("number", 10.0, 1.0)),
        (pa.array(["2020-01-01T01:00", "2020-01-01T00:00", "2020-01-01 02:00", "2020-01-01T01:00:00"]), None),
    ]
    for i, (times, clock) in enumerate(cases):
        path = _parquet(tmp_path, {"id": ["b", "a", "b", "a"], "t": times, "y": [2.0, 1.0, 3.0, 4.0]}, f"{i}.parquet")
        panel = read_panel(path, "id", "t", "y")
        assert panel.ids == ("a", "b") and _values(panel) == [[1, 4], [2, 3]] and panel.starts.tolist() == [0, 1]
        assert panel.clock == (clock or cases[0][1])
    assert panel.clock.label(2) == "2020-01-01T02:00:00"


def test_parquet_category_ids_and_fill(tmp_path: Path) -> None:
    ids = pa.array(["x", "y", "x", "x", "y"]).dictionary_encode()
    path = _parquet(tmp_path, {"id": ids, "t": [0, 0, 1, 3, 1], "y": [1.0, 5.0, None, 4.0, 6.0]})
    panel = read_panel(path, "id", "t", "y", "linear")
    assert panel.ids == ("x", "y") and _values(panel) == [[1, 2, 3, 4], [5, 6]]
    assert "input: column 'y' is empty (a missing value) at row 2" in _parquet_error(path)


def _parquet_error(path: Path) -> str:
    with pytest.raises(ConfigError) as e:
        read_panel(path, "id", "t", "y")
    return f"{e.value.param}: {e.value.problem}"


def test_parquet_refusals(tmp_path: Path) -> None:
    def error(name: str, **columns: object) -> str:
        base: dict[str, object] = {"id": ["a", "a", "b", "b"], "t": [0, 1, 0, 1], "y": [1.0, 2.0, 3.0, 4.0]}
        return _parquet_error(_parquet(tmp_path, base | columns, f"{name}.parquet"))  # type: ignore[arg-type]

    assert error("float_ids", id=[1.0, 1.0, 2.0, 2.0]) == "id: column 'id' holds double; ids must be integers or text"
    assert error("null_id", id=["a", "a", None, "b"]) == "id: column 'id' is empty at row 2"
    assert error("blank_id", id=["a", "a", "", "b"]) == "id: column 'id' is empty at row 2"
    assert error("null_time", t=[0, 1, None, 1]) == "time: column 't' is empty at row 2"
    assert (
        error("nan_time", t=[0.0, 1.0, float("nan"), 1.0])
        == "time: column 't' holds nan at row 2; times must be finite"
    )
    assert error("bool_time", t=[True, False, True, False]).startswith("time: column 't' holds bool")
    assert error("inf", y=[1.0, 2.0, 3.0, float("inf")]).startswith("input: column 'y' holds inf at row 3")
    assert error("big", y=[1.0, 1e39, 3.0, 4.0]).startswith("input: column 'y' holds 1e+39 at row 1; ")
    assert error("text_y", y=["1", "x", "3", "4"]).startswith("input: column 'y' is not numeric")
    assert error("dup", t=[0, 1, 1, 1], id=["a", "b", "b", "a"]) == (
        "data: series 'b' has the time '1' twice: at row 1 and at row 2"
    )
    assert error("gap", t=[0, 1, 0, 3]).startswith("data: series 'b' has no value between '0' (row 2) and '3' (row 3)")
    stamps = pa.array([dt.datetime(2020, 1, 1, 0, 0, s, 500_000 * (s % 2)) for s in range(4)], pa.timestamp("us"))
    assert error("fraction", t=stamps) == (
        "time: column 't' holds a time at row 1 with a fraction of a second; the time step must be whole seconds"
    )
    assert error("string_times", t=["0", "1", "2020-01-01", "1"]).startswith(
        "time: column 't' mixes numbers and dates: '0' at row 0 but '2020-01-01' at row 2"
    )


def test_parquet_without_pyarrow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _parquet(tmp_path, {"id": ["a", "a"], "t": [0, 1], "y": [1.0, 2.0]})
    for module in ("pyarrow", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, module, None)
    assert _parquet_error(path) == (
        "data: reading .parquet files needs the parquet extra: pip install 'lstm-stateful[parquet]'"
    )


def test_a_large_panel(tmp_path: Path) -> None:
    # 2,000 series of 100 days, written time-major (the series interleaved), starts staggered.
    n_series, n_days = 2_000, 100
    day = np.arange(n_days)
    lines = [
        f"{s},{np.datetime64('2021-01-01') + int(d) + s % 7},{s + d / 1000}\n" for d in day for s in range(n_series)
    ]
    panel = read_panel(_csv(tmp_path, "id,date,y\n" + "".join(lines)), "id", "date", "y")
    assert len(panel) == n_series and panel.ids[:3] == ("0", "1", "2") and panel.ids[-1] == "1999"
    assert (panel.lengths == n_days).all()
    assert panel.starts.tolist()[:9] == [0, 1, 2, 3, 4, 5, 6, 0, 1]
    assert panel.clock == Clock("seconds", _posix("2021-01-01"), 86_400.0, 1, True)
    assert panel.values[1234][[0, 1, 99]].tolist() == [1234.0, 1234.001, 1234.099]
    assert panel.clock.label(int(panel.starts[1234]) + 99) == "2021-04-12"


def test_one_stamp_on_a_clock() -> None:
    from lstm_stateful.io.panel_file import stamp_ordinal

    numbers = Clock("number", 1.0, 0.5)
    assert [stamp_ordinal(numbers, t) for t in (1, 1.5, 0, -2.0)] == [0, 1, -2, -6]
    months = Clock("month", 1990 * 12, 3.0, 1, dates=True)  # quarterly from January 1990
    assert stamp_ordinal(months, "1991-04-01") == 5 and stamp_ordinal(months, "1989-10") == -1
    hours = Clock("seconds", 1_700_000_000.0, 3600.0)
    stamp = "2023-11-14T22:13:20"  # 1_700_000_000 + 0
    assert stamp_ordinal(hours, stamp) == 0 and stamp_ordinal(hours, "2023-11-15T00:13:20+00:00") == 2
    for clock, bad, fragment in [
        (numbers, 1.25, "falls between the model's time steps (0.5)"),
        (numbers, 1e300, "lies more than 1e+12 steps"),
        (numbers, 10**400, "lies more than 1e+12 steps"),
        (numbers, True, "must be a finite number"),
        (numbers, "1990-01-01", "must be a finite number"),
        (months, 3, "must be an ISO 8601 date"),
        (months, "1990-02-01", "falls between the model's time steps (3 months)"),
        (months, "1990-04-15", "dates, day 1, no time of day"),
        (months, "1990-04-01T06:00", "no time of day"),
        (months, "soon", "is neither a number nor an ISO 8601 date"),
        (months, "7", "must be a date or timestamp"),
        (hours, "2023-11-14T22:43:20", "falls between the model's time steps (1 hour)"),
    ]:
        with pytest.raises(ConfigError, match=r"^start: ") as e:
            stamp_ordinal(clock, bad)
        assert fragment in str(e.value), (bad, str(e.value))
