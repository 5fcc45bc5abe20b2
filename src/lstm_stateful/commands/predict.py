"""``predict``: stream a data file through a saved model, one point at a time, into a CSV."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from lstm_stateful.core.config import require_int
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.io import dirs, series_file
from lstm_stateful.io.atomic import write_with

if TYPE_CHECKING:
    from lstm_stateful.io.series_file import Chunk
    from lstm_stateful.models.model_io import SavedModel
    from lstm_stateful.models.stream import Predictor


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    """model: a saved model directory; data: a .csv or .parquet series of any length;
    input: its column to feed; out: the CSV to write; chunk: rows read and predicted at a
    time (memory stays bounded by it); drop_missing: skip rows whose input is empty or NaN."""

    model: Path
    data: Path
    input: str
    out: Path
    chunk: int = 65_536
    drop_missing: bool = False

    def __post_init__(self) -> None:
        require_int("chunk", self.chunk)
        if Path(self.out).is_dir():
            raise ConfigError("out", f"{str(self.out)!r} is a directory; give the path of the CSV file to write")


@dataclasses.dataclass(frozen=True)
class PredictOutput:
    """What ``predict`` did: rows predicted, by which model, in how long, into which file."""

    rows: int
    model: SavedModel
    seconds: float
    out: Path


def predict(cfg: PredictConfig) -> PredictOutput:
    """Predict every row of ``cfg.data`` with the saved model, its state starting from zero.

    Writes row, input, prediction (empty for the first lahead-1 rows, which fill the window),
    atomically: a bad value half-way through leaves no partial file.
    """
    from lstm_stateful.models.stream import Predictor

    series_file.check_path(cfg.data)
    dirs.writable(Path(cfg.out).parent, "out")
    predictor = Predictor.load(cfg.model)
    start = time.perf_counter()
    reading = series_file.Reading({cfg.input: "input"}, cfg.drop_missing)
    rows = _write_stream(predictor, series_file.iter_columns(cfg.data, reading, cfg.chunk), cfg.input, Path(cfg.out))
    return PredictOutput(rows, predictor.model, time.perf_counter() - start, Path(cfg.out))


def _write_stream(predictor: Predictor, chunks: Iterator[Chunk], column: str, out: Path) -> int:
    """Predict chunk by chunk into ``out``; returns the rows written. Numbers are written as
    Python's repr, which reads back to the same float64."""
    count = 0

    def write(tmp: Path) -> None:
        nonlocal count
        with open(tmp, "w", newline="") as f:
            f.write("row,input,prediction\n")
            for rows, values in chunks:
                preds = predictor.predict(values[column]).tolist()
                lines = zip(rows.tolist(), values[column].tolist(), preds, strict=True)
                # NaN (the window still filling) is written as an empty field.
                f.write("".join(f"{r},{x!r},{y!r}\n" if y == y else f"{r},{x!r},\n" for r, x, y in lines))
                count += len(preds)

    write_with(out, write)
    return count
