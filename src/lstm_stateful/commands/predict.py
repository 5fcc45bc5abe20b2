"""``predict``: stream a data file through a saved model, one point at a time, into a CSV."""

from __future__ import annotations

import csv
import dataclasses
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lstm_stateful.core.config import require_columns, require_int
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
    inputs: its columns to feed, in the order the model was trained on (as many as it has
    inputs); out: the CSV to write; chunk: rows read and predicted at a time (memory stays
    bounded by it); drop_missing: skip rows where an input is empty or NaN."""

    model: Path
    data: Path
    inputs: tuple[str, ...]
    out: Path
    chunk: int = 65_536
    drop_missing: bool = False

    def __post_init__(self) -> None:
        require_columns("input", self.inputs)
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

    Writes row, each input column (named as in the file), prediction (in the data's units;
    empty for the first rows, which fill the window), atomically: a bad value half-way
    through leaves no partial file.
    """
    from lstm_stateful.models.stream import Predictor

    series_file.check_path(cfg.data)
    dirs.writable(Path(cfg.out).parent, "out")
    predictor = Predictor.load(cfg.model)
    _check_inputs(cfg.inputs, predictor.model)
    start = time.perf_counter()
    reading = series_file.Reading(dict.fromkeys(cfg.inputs, "input"), cfg.drop_missing)
    chunks = series_file.iter_columns(cfg.data, reading, cfg.chunk)
    rows = _write_stream(predictor, chunks, cfg, Path(cfg.out))
    return PredictOutput(rows, predictor.model, time.perf_counter() - start, Path(cfg.out))


def _check_inputs(inputs: tuple[str, ...], model: SavedModel) -> None:
    """As many columns as the model has inputs (it was trained on ``data.input_cols``). Other
    names are fine (another file may name its columns otherwise), but the trained columns in
    another order would feed each input the wrong series: refused."""
    n, trained = model.model.n_features, model.data.input_cols
    if len(inputs) != n:
        named = f" (it was trained on {', '.join(trained)})" if trained else ""
        raise ConfigError("input", f"names {len(inputs)} column(s); the model takes {n} input(s){named}")
    if inputs != trained and sorted(inputs) == sorted(trained):
        raise ConfigError("input", f"names the model's columns in another order; it was trained on {','.join(trained)}")


def _table(chunk: Chunk, cfg: PredictConfig, transform: str) -> np.ndarray:
    """The chunk's inputs as the Predictor takes them: (n,) for one input, (n, F) for several.
    A log-diff model's values must be positive: the first that is not names its line."""
    table = np.stack([chunk.values[c] for c in cfg.inputs], axis=1)
    if transform == "log-diff" and not (table > 0).all():
        i, j = (int(k) for k in np.argwhere(~(table > 0))[0])
        where = f"{chunk.where(i)} of {str(cfg.data)!r}"
        problem = f"column {cfg.inputs[j]!r} holds {float(table[i, j])!r} at {where}; the model learned log-diff"
        raise ConfigError("data", f"{problem}, which needs values > 0")
    return table[:, 0] if table.shape[1] == 1 else table


def _write_stream(predictor: Predictor, chunks: Iterator[Chunk], cfg: PredictConfig, out: Path) -> int:
    """Predict chunk by chunk into ``out``; returns the rows written. Numbers are written as
    Python's repr, which reads back to the same float64."""
    count = 0
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(["row", *cfg.inputs, "prediction"])  # quotes odd names

    def write(tmp: Path) -> None:
        nonlocal count
        with open(tmp, "w", newline="") as f:
            f.write(header.getvalue())
            for chunk in chunks:
                preds = predictor.predict(_table(chunk, cfg, predictor.model.data.transform)).tolist()
                inputs = zip(*(chunk.values[c].tolist() for c in cfg.inputs), strict=True)
                f.write("".join(map(_line, chunk.rows.tolist(), inputs, preds)))
                count += len(preds)

    write_with(out, write)
    return count


def _line(row: int, inputs: tuple[float, ...], prediction: float) -> str:
    """One CSV line; a NaN prediction (the window still filling) is an empty field."""
    shown = repr(prediction) if prediction == prediction else ""
    return ",".join([str(row), *map(repr, inputs), shown]) + "\n"
