"""Values and headers of your files that the command refuses in one line, exit status 2:
magnitudes float32 cannot hold, a column named twice, Parquet without pyarrow."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lstm_stateful.cli import main
from tests.helpers import usage_error

ROWS = 40
BAD_ROW = 30  # 0-based data row; line 32 of a CSV with a header line
EXTRA = "reading .parquet files needs the parquet extra: pip install 'lstm-stateful[parquet]'"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A saved stateful model, trained as briefly as the command allows."""
    root = tmp_path_factory.mktemp("model")
    args = ["run", "--out", str(root / "out"), "--save", str(root / "model"), "--epochs", "1", "--seeds", "1"]
    assert main([*args, "--input-len", "60"]) == 0
    return str(root / "model" / "stateful")


def _series(value: float | None = None) -> dict[str, np.ndarray]:
    x = np.sin(np.arange(ROWS) / 3.0)
    if value is not None:
        x[BAD_ROW] = value
    return {"x": x, "y": np.cos(np.arange(ROWS) / 3.0)}


def _write(path: Path, columns: dict[str, np.ndarray], names: list[str] | None = None) -> Path:
    """``columns`` as ``path`` (.csv or .parquet), their names in the header or ``names``."""
    names = names or list(columns)
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_arrays([pa.array(v) for v in columns.values()], names), path)
    else:
        rows = zip(*(v.tolist() for v in columns.values()), strict=True)
        path.write_text(",".join(names) + "\n" + "".join(",".join(map(repr, r)) + "\n" for r in rows))
    return path


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line the command printed, having exited 2."""
    return usage_error(argv, capsys)


def _commands(path: Path, model: str, tmp_path: Path) -> dict[str, list[str]]:
    out = tmp_path / "out"
    run = ["run", "--data", str(path), "--input", "x", "--epochs", "1", "--seeds", "1", "--out", str(out)]
    return {
        "run": run,
        "run --standardize": [*run, "--standardize"],
        "predict": ["predict", "--model", model, "--data", str(path), "--input", "x", "--out", str(out / "p.csv")],
    }


@pytest.mark.parametrize("value", [1e300, -1e39])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_values_beyond_float32_are_refused_naming_the_line_or_row(
    tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str], value: float, suffix: str
) -> None:
    path = _write(tmp_path / f"s{suffix}", _series(value))
    where = f"line {BAD_ROW + 2}" if suffix == ".csv" else f"row {BAD_ROW}"
    for argv in _commands(path, model, tmp_path).values():
        line = _error(argv, capsys)
        assert line.startswith(f"lstm-stateful: error: --input: column 'x' holds {value!r} at {where}; ")
        assert "float32" in line
    assert not (tmp_path / "out" / "p.csv").exists()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_column_named_twice_is_refused(
    tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    path = _write(tmp_path / f"s{suffix}", _series(), names=["x", "x"])
    for argv in _commands(path, model, tmp_path).values():
        assert _error(argv, capsys) == f"lstm-stateful: error: --data: {str(path)!r} has more than one column named 'x'"


def test_parquet_without_pyarrow_names_the_extra(
    tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "s.parquet", _series())
    for module in ("pyarrow", "pyarrow.parquet"):  # None: `import pyarrow` raises ImportError
        monkeypatch.setitem(sys.modules, module, None)
    for argv in _commands(path, model, tmp_path).values():
        assert _error(argv, capsys) == f"lstm-stateful: error: --data: {EXTRA}"
