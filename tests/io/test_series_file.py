"""Reading your series: CSV and Parquet, streamed in chunks, every bad value named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lstm_stateful.core.errors import ConfigError
from lstm_stateful.io import series_file


def _csv(tmp_path: Path, text: str, name: str = "s.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_columns_with_comments_and_chunks(tmp_path: Path) -> None:
    path = _csv(tmp_path, "# source: a test\nt,x,y\n0,1.5,2\n1,-2e-3,3\n\n2,4,5\n")
    cols = series_file.read_columns(path, "x", "y")
    assert cols.input.tolist() == [1.5, -0.002, 4.0] and cols.target.tolist() == [2.0, 3.0, 5.0]
    chunks = list(series_file.iter_columns(path, series_file.Reading({"x": "--input"}), chunk=2))
    assert [c.rows.tolist() for c in chunks] == [[0, 1], [2]]
    assert np.concatenate([c.values["x"] for c in chunks]).tolist() == cols.input.tolist()


def test_parquet_equals_csv(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=1000)
    pq.write_table(pa.table({"x": x, "label": ["a"] * 1000}), tmp_path / "s.parquet", row_group_size=300)
    chunks = list(series_file.iter_columns(tmp_path / "s.parquet", series_file.Reading({"x": "--input"}), chunk=256))
    assert max(len(c.rows) for c in chunks) <= 256
    np.testing.assert_array_equal(np.concatenate([c.values["x"] for c in chunks]), x)
    np.testing.assert_array_equal(np.concatenate([c.rows for c in chunks]), np.arange(1000))
    with pytest.raises(ConfigError, match="--input: column 'label' is not numeric"):
        series_file.read_columns(tmp_path / "s.parquet", "label")


def test_parquet_missing_and_drop_missing(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1.0, None, 3.0, float("inf")]}), tmp_path / "m.parquet")
    with pytest.raises(ConfigError, match=r"--input: column 'x' is empty .* at row 1"):
        series_file.read_columns(tmp_path / "m.parquet", "x")
    with pytest.raises(ConfigError, match="holds inf at row 3"):
        series_file.read_columns(tmp_path / "m.parquet", "x", drop_missing=True)


def test_drop_missing_skips_rows_and_keeps_their_numbers(tmp_path: Path) -> None:
    path = _csv(tmp_path, "x,y\n1,1\n,2\n3,NaN\n4,4\n")
    chunks = list(series_file.iter_columns(path, series_file.Reading({"x": "--input", "y": "--target"}, True)))
    assert chunks[0].rows.tolist() == [0, 3] and chunks[0].values["x"].tolist() == [1.0, 4.0]


@pytest.mark.parametrize(
    ("text", "columns", "message"),
    [
        (
            "x\n1\n\n,\n",
            ("x", None),
            "--input: column 'x' is empty (a missing value; --drop-missing skips such rows) at line 4",
        ),
        ("x,y\n1,2\nabc,3\n", ("x", "y"), "--input: column 'x' is not a number: 'abc' at line 3"),
        ("x,y\n1,2\n2,inf\n", ("x", "y"), "--target: column 'y' holds inf at line 3"),
        (
            "x\n1\nnan\n",
            ("x", None),
            "--input: column 'x' is empty (a missing value; --drop-missing skips such rows) at line 3",
        ),
        ("x,y\n1,2\n", ("z", None), "--input: no column 'z' in"),
        ("x,y\n1,2\n", ("x", "w"), "--target: no column 'w' in"),
        ("x,y\n1,2\n3\n", ("x", None), "--data: line 3 of"),
        ("# only a comment\n", ("x", None), "--data: "),
        ("x,y\n", ("x", None), "has a header but no rows"),
    ],
)
def test_bad_csv(tmp_path: Path, text: str, columns: tuple, message: str) -> None:
    path = _csv(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        series_file.read_columns(path, *columns)
    assert message in f"{e.value.param}: {e.value.problem}"


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--data: no such file"):
        series_file.read_columns(tmp_path / "absent.csv", "x")
    with pytest.raises(ConfigError, match=r"not a \.csv or \.parquet file"):
        series_file.read_columns(_csv(tmp_path, "x\n1\n", "s.txt"), "x")
    with pytest.raises(ConfigError, match=r"cannot read .* as Parquet"):
        series_file.read_columns(_csv(tmp_path, "x\n1\n", "s.parquet"), "x")
    (tmp_path / "bin.csv").write_bytes(b"x\n\xff\xfe\x00\n")
    with pytest.raises(ConfigError, match="not a text CSV file"):
        series_file.read_columns(tmp_path / "bin.csv", "x")


def test_chunks_are_read_lazily(tmp_path: Path) -> None:
    # Streaming: the first chunk arrives before the reader has seen the rest of the file.
    path = _csv(tmp_path, "x\n" + "1\n" * 5 + "oops\n")
    chunks = series_file.iter_columns(path, series_file.Reading({"x": "--input"}), chunk=2)
    assert next(chunks).values["x"].tolist() == [1.0, 1.0]
    with pytest.raises(ConfigError, match="line 7"):
        list(chunks)
