"""Reading your series: CSV and Parquet, streamed in chunks, every bad value named."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lstm_stateful.core import data
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.io import series_file


def _csv(tmp_path: Path, text: str, name: str = "s.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_columns_with_comments_and_chunks(tmp_path: Path) -> None:
    path = _csv(tmp_path, "# source: a test\nt,x,y\n0,1.5,2\n1,-2e-3,3\n\n2,4,5\n")
    cols = series_file.read_columns(path, ("x",), "y")
    assert cols.input[:, 0].tolist() == [1.5, -0.002, 4.0] and cols.target.tolist() == [2.0, 3.0, 5.0]
    chunks = list(series_file.iter_columns(path, series_file.Reading({"x": "input"}), chunk=2))
    assert [c.rows.tolist() for c in chunks] == [[0, 1], [2]]
    assert np.concatenate([c.values["x"] for c in chunks]).tolist() == cols.input[:, 0].tolist()


def test_parquet_equals_csv(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=1000)
    pq.write_table(pa.table({"x": x, "label": ["a"] * 1000}), tmp_path / "s.parquet", row_group_size=300)
    chunks = list(series_file.iter_columns(tmp_path / "s.parquet", series_file.Reading({"x": "input"}), chunk=256))
    assert max(len(c.rows) for c in chunks) <= 256
    np.testing.assert_array_equal(np.concatenate([c.values["x"] for c in chunks]), x)
    np.testing.assert_array_equal(np.concatenate([c.rows for c in chunks]), np.arange(1000))
    with pytest.raises(ConfigError, match="input: column 'label' is not numeric"):
        series_file.read_columns(tmp_path / "s.parquet", ("label",))


def test_parquet_missing_and_drop_missing(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1.0, None, 3.0, float("inf")]}), tmp_path / "m.parquet")
    with pytest.raises(ConfigError, match=r"input: column 'x' is empty .* at row 1"):
        series_file.read_columns(tmp_path / "m.parquet", ("x",))
    with pytest.raises(ConfigError, match="holds inf at row 3"):
        series_file.read_columns(tmp_path / "m.parquet", ("x",), drop_missing=True)


def test_drop_missing_skips_rows_and_keeps_their_numbers(tmp_path: Path) -> None:
    path = _csv(tmp_path, "x,y\n1,1\n,2\n3,NaN\n4,4\n")
    chunks = list(series_file.iter_columns(path, series_file.Reading({"x": "input", "y": "target"}, True)))
    assert chunks[0].rows.tolist() == [0, 3] and chunks[0].values["x"].tolist() == [1.0, 4.0]


@pytest.mark.parametrize(
    ("text", "columns", "message"),
    [
        (
            "x\n1\n\n,\n",
            ("x", None),
            "input: column 'x' is empty (a missing value; `drop_missing` skips such rows) at line 4",
        ),
        ("x,y\n1,2\nabc,3\n", ("x", "y"), "input: column 'x' is not a number: 'abc' at line 3"),
        ("x,y\n1,2\n2,inf\n", ("x", "y"), "target: column 'y' holds inf at line 3"),
        (
            "x\n1\nnan\n",
            ("x", None),
            "input: column 'x' is empty (a missing value; `drop_missing` skips such rows) at line 3",
        ),
        ("x,y\n1,2\n", ("z", None), "input: no column 'z' in"),
        ("x,y\n1,2\n", ("x", "w"), "target: no column 'w' in"),
        ("x,y\n1,2\n3\n", ("x", None), "data: line 3 of"),
        ("# only a comment\n", ("x", None), "data: "),
        ("x,y\n", ("x", None), "has a header but no rows"),
    ],
)
def test_bad_csv(tmp_path: Path, text: str, columns: tuple, message: str) -> None:
    path = _csv(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        series_file.read_columns(path, *columns)
    assert message in f"{e.value.param}: {e.value.problem}"


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data: no such file"):
        series_file.read_columns(tmp_path / "absent.csv", ("x",))
    with pytest.raises(ConfigError, match=r"not a \.csv or \.parquet file"):
        series_file.read_columns(_csv(tmp_path, "x\n1\n", "s.txt"), "x")
    with pytest.raises(ConfigError, match=r"cannot read .* as Parquet"):
        series_file.read_columns(_csv(tmp_path, "x\n1\n", "s.parquet"), "x")
    (tmp_path / "bin.csv").write_bytes(b"x\n\xff\xfe\x00\n")
    with pytest.raises(ConfigError, match="not a text CSV file"):
        series_file.read_columns(tmp_path / "bin.csv", ("x",))


def test_chunks_are_read_lazily(tmp_path: Path) -> None:
    # Streaming: the first chunk arrives before the reader has seen the rest of the file.
    path = _csv(tmp_path, "x\n" + "1\n" * 5 + "oops\n")
    chunks = series_file.iter_columns(path, series_file.Reading({"x": "input"}), chunk=2)
    assert next(chunks).values["x"].tolist() == [1.0, 1.0]
    with pytest.raises(ConfigError, match="line 7"):
        list(chunks)


F32_MAX = float(np.finfo(np.float32).max)


@pytest.mark.parametrize("text", ["1e300", "-1e39", "3.5e38", "-3.4028236e38", "1e400"])
@pytest.mark.parametrize("drop_missing", [False, True])
def test_csv_values_beyond_float32_are_refused_by_line(tmp_path: Path, text: str, drop_missing: bool) -> None:
    # The model computes in float32: such a value would become an infinity on the way in.
    path = _csv(tmp_path, f"x,y\n1,2\n3,4\n5,{text}\n")
    with pytest.raises(ConfigError) as e:
        series_file.read_columns(path, ("x",), "y", drop_missing=drop_missing)
    assert f"{e.value.param}: {e.value.problem}".startswith(f"target: column 'y' holds {text} at line 4; ")
    assert "float32" in e.value.problem and "\n" not in e.value.problem
    chunks = series_file.iter_columns(path, series_file.Reading({"y": "target"}, drop_missing), chunk=2)
    assert next(chunks).values["y"].tolist() == [2.0, 4.0]
    with pytest.raises(ConfigError, match=re.escape(f"holds {text} at line 4")):
        next(chunks)


def test_csv_float32_max_itself_is_read(tmp_path: Path) -> None:
    path = _csv(tmp_path, f"x\n{F32_MAX!r}\n{-F32_MAX!r}\n1e-300\n")
    assert series_file.read_columns(path, ("x",)).input[:, 0].tolist() == [F32_MAX, -F32_MAX, 1e-300]


@pytest.mark.parametrize("value", [1e300, -1e39])
@pytest.mark.parametrize("drop_missing", [False, True])
def test_parquet_values_beyond_float32_are_refused_by_row(tmp_path: Path, value: float, drop_missing: bool) -> None:
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"x": [1.0, None, 3.0, 4.0, value]}), path)
    with pytest.raises(ConfigError) as e:
        list(series_file.iter_columns(path, series_file.Reading({"x": "input"}, True), chunk=2))
    assert e.value.param == "input" and e.value.problem.startswith(f"column 'x' holds {value!r} at row 4; ")
    with pytest.raises(ConfigError, match="at row 1" if not drop_missing else re.escape(f"holds {value!r} at row 4")):
        series_file.read_columns(path, ("x",), drop_missing=drop_missing)
    pq.write_table(pa.table({"x": np.array([1.0, F32_MAX, -F32_MAX])}), path)
    assert series_file.read_columns(path, ("x",)).input[:, 0].tolist() == [1.0, F32_MAX, -F32_MAX]


@pytest.mark.parametrize("header", ["x,y,x", "x, y ,y", "a,x,b,x,x"])
def test_csv_duplicate_column_names_are_refused(tmp_path: Path, header: str) -> None:
    name = "x" if header.count("x") > 1 else "y"
    path = _csv(tmp_path, f"{header}\n" + ",".join(["1"] * header.count(",")) + ",1\n")
    for reading in ({"x": "input"}, {"a": "input"} if "a" in header else {"y": "input"}):
        with pytest.raises(ConfigError) as e:
            list(series_file.iter_columns(path, series_file.Reading(reading)))
        assert e.value.param == "data"
        assert e.value.problem == f"{str(path)!r} has more than one column named {name!r}"


def test_csv_blank_names_may_repeat(tmp_path: Path) -> None:
    # Trailing commas (some spreadsheets write them) give several unnamed columns, which
    # no flag can choose; they are not refused. Choosing the blank name is.
    path = _csv(tmp_path, "x,,\n1,,\n2,,\n")
    assert series_file.read_columns(path, ("x",)).input[:, 0].tolist() == [1.0, 2.0]
    with pytest.raises(ConfigError, match="has more than one column named ''"):
        series_file.read_columns(path, ("",))


def test_parquet_duplicate_column_names_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array([1.0]), pa.array([2.0]), pa.array([3.0])], ["x", "y", "x"]), path)
    for column in ("x", "y"):
        with pytest.raises(ConfigError) as e:
            series_file.read_columns(path, column)
        assert f"{e.value.param}: {e.value.problem}" == (f"data: {str(path)!r} has more than one column named 'x'")


def test_parquet_without_pyarrow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"x": [1.0, 2.0]}), path)
    # None in sys.modules makes `import pyarrow...` raise ImportError, as if not installed.
    for module in ("pyarrow", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, module, None)
    expected = "data: reading .parquet files needs the parquet extra: pip install 'lstm-stateful[parquet]'"
    for read in (
        lambda: series_file.read_columns(path, ("x",)),
        lambda: series_file.check_path(path),
        lambda: next(series_file.iter_columns(path, series_file.Reading({"x": "input"}))),
    ):
        with pytest.raises(ConfigError) as e:
            read()
        assert f"{e.value.param}: {e.value.problem}" == expected
    # CSV files need no pyarrow.
    assert series_file.read_columns(_csv(tmp_path, "x\n1\n"), "x").input[:, 0].tolist() == [1.0]


def test_several_input_columns_csv_and_parquet(tmp_path: Path) -> None:
    # The columns come in the order the flag names them, not the file's; a column may be
    # both an input and the target.
    path = _csv(tmp_path, "# prices\nt,a,b,c\n0,1,10,100\n# a comment\n1,2,20,200\n\n2,3,30,300\n")
    cols = series_file.read_columns(path, ("c", "a", "b"), "a")
    assert cols.input.tolist() == [[100, 1, 10], [200, 2, 20], [300, 3, 30]] and cols.input.dtype == np.float64
    assert cols.target.tolist() == [1.0, 2.0, 3.0]
    assert cols.rows.tolist() == [0, 1, 2] and cols.lines.tolist() == [3, 5, 7]
    assert [cols.where(i) for i in range(3)] == ["line 3", "line 5", "line 7"]
    pq.write_table(
        pa.table({"a": [1.0, 2.0, 3.0], "b": [10, 20, 30], "c": [100.0, 200.0, 300.0]}), tmp_path / "s.parquet"
    )
    from_parquet = series_file.read_columns(tmp_path / "s.parquet", ("c", "a", "b"), "a")
    np.testing.assert_array_equal(from_parquet.input, cols.input)
    np.testing.assert_array_equal(from_parquet.target, cols.target)
    assert from_parquet.lines is None and from_parquet.where(2) == "row 2"
    assert (
        next(series_file.iter_columns(tmp_path / "s.parquet", series_file.Reading({"b": "input"}))).where(1) == "row 1"
    )
    with pytest.raises(ConfigError, match=r"^input: no column 'd' in"):
        series_file.read_columns(path, ("a", "d"))
    with pytest.raises(ConfigError, match=r"^input: column 'b' is not a number: 'x' at line 3"):
        series_file.read_columns(_csv(tmp_path, "a,b\n1,2\n3,x\n", "bad.csv"), ("a", "b"))


@pytest.mark.parametrize("chunk", [2, series_file.CHUNK_ROWS])
def test_drop_missing_keeps_lines_and_rows(tmp_path: Path, chunk: int) -> None:
    path = _csv(tmp_path, "a,b\n1,1\n,2\n# note\n3,3\n4,NaN\n5,5\n")
    chunks = list(series_file.iter_columns(path, series_file.Reading({"a": "input", "b": "input"}, True), chunk))
    assert np.concatenate([c.lines for c in chunks]).tolist() == [2, 5, 7]
    assert np.concatenate([c.rows for c in chunks]).tolist() == [0, 2, 4]
    assert [c.where(len(c.rows) - 1) for c in chunks][-1] == "line 7"  # what a Predictor's error names
    cols = series_file.read_columns(path, ("a", "b"), drop_missing=True)
    assert cols.input[:, 0].tolist() == [1.0, 3.0, 5.0] and cols.lines.tolist() == [2, 5, 7]


def _log_diff_error(path: Path, drop_missing: bool) -> str:
    """The one-line error of a log-diff run on ``path``'s columns a, b."""
    columns = series_file.read_columns(path, ("a", "b"), drop_missing=drop_missing)
    cfg = data.DataConfig(
        input_len=columns.input.shape[0] - 2,
        tsteps=1,
        task="forecast",
        file=str(path),
        input_cols=("a", "b"),
        transform="log-diff",
        drop_missing=drop_missing,
    )
    with pytest.raises(ConfigError) as e:
        data.make_series(cfg, columns)
    return f"{e.value.param}: {e.value.problem}"


@pytest.mark.parametrize("drop_missing", [False, True])
def test_log_diff_names_the_line_of_a_non_positive_value(tmp_path: Path, drop_missing: bool) -> None:
    missing = "\n,7" if drop_missing else ""  # a skipped row shifts the rows, not the lines
    text = f"# header next\na,b\n1,2{missing}\n2,3\n\n# gap\n3,4\n4,-0.25\n5,6\n6,7\n7,8\n"
    path = _csv(tmp_path, text)
    expected = f"transform: log-diff needs positive values; column 'b' holds -0.25 at line {9 if drop_missing else 8}"
    assert _log_diff_error(path, drop_missing) == f"{expected} of {str(path)!r}; `transform` diff takes any sign"


@pytest.mark.parametrize("drop_missing", [False, True])
def test_log_diff_names_the_row_of_a_parquet_value(tmp_path: Path, drop_missing: bool) -> None:
    a = [1.0, None, 2.0, 0.0, 4.0, 5.0, 6.0] if drop_missing else [1.0, 1.5, 2.0, 0.0, 4.0, 5.0, 6.0]
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"a": a, "b": [1.0] * 7}), path)
    assert _log_diff_error(path, drop_missing).startswith(
        "transform: log-diff needs positive values; column 'a' holds 0.0 at row 3 of"
    )
