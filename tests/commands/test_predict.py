"""``commands.predict`` from Python: a saved model streamed over a CSV, without click."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from lstm_stateful.commands.predict import PredictConfig, PredictOutput, predict
from lstm_stateful.commands.run import RunOptions, run
from lstm_stateful.core.config import experiment_config
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.models.stream import Predictor

ROWS = 300
VALUES = [0.1 * math.sin(i / 7) + 0.01 * math.cos(i) for i in range(ROWS)]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("predict")
    cfg = experiment_config({"seeds": 1, "epochs": 1, "input_len": 200, "tsteps": 3, "lahead": 3, "batch_size": 4})
    run(cfg, RunOptions(out=root / "run", save=root / "model", cache=False))
    return root / "model" / "stateful"


@pytest.fixture
def series(tmp_path: Path) -> Path:
    path = tmp_path / "series.csv"
    path.write_text("t,x\n" + "".join(f"{i},{v!r}\n" for i, v in enumerate(VALUES)))
    return path


def _read(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_predict_writes_what_the_predictor_predicts(model: Path, series: Path, tmp_path: Path) -> None:
    out = tmp_path / "preds.csv"
    done = predict(PredictConfig(model, series, "x", out, chunk=64))
    assert isinstance(done, PredictOutput) and done.rows == ROWS and done.out == out
    assert (done.model.mode, done.model.data.lahead) == ("stateful", 3)
    rows = _read(out)
    assert [int(r["row"]) for r in rows] == list(range(ROWS))
    assert [float(r["input"]) for r in rows] == VALUES
    written = np.array([float(r["prediction"]) if r["prediction"] else np.nan for r in rows])
    expected = Predictor.load(model).predict(np.array(VALUES))
    assert np.isnan(written[:2]).all() and np.isfinite(written[2:]).all()  # lahead - 1 rows fill the window
    np.testing.assert_array_equal(written, expected)


def test_predict_leaves_only_the_csv(model: Path, series: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "preds.csv"
    predict(PredictConfig(model, series, "x", out))
    assert [p.name for p in out.parent.iterdir()] == ["preds.csv"]


def test_a_missing_column_writes_nothing(model: Path, series: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ConfigError) as e:
        predict(PredictConfig(model, series, "nope", out / "preds.csv"))
    assert e.value.param == "input" and "nope" in str(e.value)
    assert list(out.iterdir()) == []


def test_missing_files_name_their_field(model: Path, series: Path, tmp_path: Path) -> None:
    for cfg, param in (
        (PredictConfig(tmp_path / "absent", series, "x", tmp_path / "p.csv"), "model"),
        (PredictConfig(model, tmp_path / "absent.csv", "x", tmp_path / "p.csv"), "data"),
    ):
        with pytest.raises(ConfigError) as e:
            predict(cfg)
        assert e.value.param == param
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize(("chunk", "out", "param"), [(0, "p.csv", "chunk"), (True, "p.csv", "chunk"), (8, ".", "out")])
def test_bad_predict_config_names_the_field(tmp_path: Path, chunk: int, out: str, param: str) -> None:
    with pytest.raises(ConfigError) as e:
        PredictConfig(tmp_path, tmp_path / "s.csv", "x", tmp_path / out, chunk=chunk)
    assert e.value.param == param and str(e.value).startswith(f"{param}: ")
