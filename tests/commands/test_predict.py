"""``commands.predict`` from Python: a saved model streamed over a CSV, without click."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from lstm_stateful.commands.predict import PredictConfig, PredictOutput, predict
from lstm_stateful.commands.run import RunOptions, run
from lstm_stateful.core import cells
from lstm_stateful.core.config import DataConfig, ExperimentConfig, ModelConfig, experiment_config, split_sizes
from lstm_stateful.core.data import Scaling
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.io import series_file
from lstm_stateful.models import model_io
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
    done = predict(PredictConfig(model, series, ("x",), out, chunk=64))
    assert isinstance(done, PredictOutput) and done.rows == ROWS and done.out == out
    assert (done.model.mode, done.model.data.lahead) == ("stateful", 3)
    rows = _read(out)
    assert list(rows[0]) == ["row", "x", "prediction"]
    assert [int(r["row"]) for r in rows] == list(range(ROWS))
    assert [float(r["x"]) for r in rows] == VALUES
    written = np.array([float(r["prediction"]) if r["prediction"] else np.nan for r in rows])
    expected = Predictor.load(model).predict(np.array(VALUES))
    assert np.isnan(written[:2]).all() and np.isfinite(written[2:]).all()  # lahead - 1 rows fill the window
    np.testing.assert_array_equal(written, expected)


def test_predict_leaves_only_the_csv(model: Path, series: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "preds.csv"
    predict(PredictConfig(model, series, ("x",), out))
    assert [p.name for p in out.parent.iterdir()] == ["preds.csv"]


def test_a_missing_column_writes_nothing(model: Path, series: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ConfigError) as e:
        predict(PredictConfig(model, series, ("nope",), out / "preds.csv"))
    assert e.value.param == "input" and "nope" in str(e.value)
    assert list(out.iterdir()) == []


def test_missing_files_name_their_field(model: Path, series: Path, tmp_path: Path) -> None:
    for cfg, param in (
        (PredictConfig(tmp_path / "absent", series, ("x",), tmp_path / "p.csv"), "model"),
        (PredictConfig(model, tmp_path / "absent.csv", ("x",), tmp_path / "p.csv"), "data"),
    ):
        with pytest.raises(ConfigError) as e:
            predict(cfg)
        assert e.value.param == param
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize(
    ("chunk", "out", "inputs", "param"),
    [
        (0, "p.csv", ("x",), "chunk"),
        (True, "p.csv", ("x",), "chunk"),
        (8, ".", ("x",), "out"),
        (8, "p.csv", (), "input"),
        (8, "p.csv", "x", "input"),
        (8, "p.csv", ("x", "y", "x"), "input"),
    ],
)
def test_bad_predict_config_names_the_field(tmp_path: Path, chunk: int, out: str, inputs: object, param: str) -> None:
    with pytest.raises(ConfigError) as e:
        PredictConfig(tmp_path, tmp_path / "s.csv", inputs, tmp_path / out, chunk=chunk)  # type: ignore[arg-type]
    assert e.value.param == param and str(e.value).startswith(f"{param}: ")


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer model on 2 inputs that learned differences (weights as initialised)."""
    cfg = ExperimentConfig(
        data=DataConfig(lahead=2, tsteps=1, task="forecast", file="f.csv", input_cols=("b", "a"), transform="log-diff"),
        model=ModelConfig(units=5, n_features=2, layers=2),
    )
    params = cells.init_params(np.random.default_rng(0), cfg.model)
    saved = {"mode": "stateful", "seed_index": 0, "scaling": Scaling((0.01, 0.0), (0.5, 2.0), 0.1, 0.3), "metrics": {}}
    directory = tmp_path_factory.mktemp("wide") / "model"
    model_io.save_model(directory, params, cfg, saved)
    return directory


def _write_table(path: Path, rows: int = 100) -> np.ndarray:
    """Columns t, a, b, c: a and b positive, c anything; returns a, b, c (rows, 3)."""
    rng = np.random.default_rng(2)
    table = np.column_stack([1 + rng.uniform(size=rows), 3 + rng.uniform(size=rows), rng.normal(size=rows)])
    path.write_text("t,a,b,c\n" + "".join(f"{i},{a!r},{b!r},{c!r}\n" for i, (a, b, c) in enumerate(table.tolist())))
    return table


def test_several_inputs_are_read_in_the_order_named(wide_model: Path, tmp_path: Path) -> None:
    table = _write_table(tmp_path / "s.csv")
    out = tmp_path / "p.csv"
    done = predict(PredictConfig(wide_model, tmp_path / "s.csv", ("b", "a"), out, chunk=16))
    assert done.rows == 100
    rows = _read(out)
    assert list(rows[0]) == ["row", "b", "a", "prediction"]
    assert [float(r["b"]) for r in rows] == table[:, 1].tolist() and [float(r["a"]) for r in rows] == table[
        :, 0
    ].tolist()
    written = np.array([float(r["prediction"]) if r["prediction"] else np.nan for r in rows])
    expected = Predictor.load(wide_model).predict(table[:, [1, 0]])  # (n, F) in the model's order
    assert np.isnan(written[:2]).all() and np.isfinite(written[2:]).all()  # log-diff: 1 row, then the window of 2
    np.testing.assert_array_equal(written, expected)
    # The trained columns in another order would feed each input the other's series.
    with pytest.raises(ConfigError) as e:
        predict(PredictConfig(wide_model, tmp_path / "s.csv", ("a", "b"), tmp_path / "q.csv"))
    assert e.value.param == "input" and "another order; it was trained on b,a" in str(e.value)
    assert not (tmp_path / "q.csv").exists()
    # Other names are another file's: they are fed in the order named.
    renamed = tmp_path / "r.csv"
    renamed.write_text((tmp_path / "s.csv").read_text().replace("a,b", "u,v", 1))
    predict(PredictConfig(wide_model, renamed, ("v", "u"), tmp_path / "r_out.csv"))
    again = np.array([float(r["prediction"]) if r["prediction"] else np.nan for r in _read(tmp_path / "r_out.csv")])
    np.testing.assert_array_equal(again, written)


def test_the_input_count_must_match_the_model(wide_model: Path, model: Path, tmp_path: Path) -> None:
    _write_table(tmp_path / "s.csv")
    for directory, inputs, message in (
        (wide_model, ("a",), "names 1 column(s); the model takes 2 input(s) (it was trained on b, a)"),
        (model, ("a", "b"), "names 2 column(s); the model takes 1 input(s)"),
    ):
        with pytest.raises(ConfigError) as e:
            predict(PredictConfig(directory, tmp_path / "s.csv", inputs, tmp_path / "p.csv"))
        assert e.value.param == "input" and message in str(e.value)
    assert not (tmp_path / "p.csv").exists()


def test_log_diff_names_the_line_of_a_value_that_is_not_positive(wide_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("a,b\n# a comment\n1.0,2.0\n1.5,2.5\n1.2,-0.5\n")
    with pytest.raises(ConfigError) as e:
        predict(PredictConfig(wide_model, path, ("b", "a"), tmp_path / "p.csv", chunk=1))
    assert e.value.param == "data"
    assert f"column 'b' holds -0.5 at line 5 of {str(path)!r}; the model learned log-diff" in str(e.value)
    assert not (tmp_path / "p.csv").exists()


def test_predict_reproduces_a_stacked_transformed_runs_predictions(tmp_path: Path) -> None:
    # A 2-layer model on 2 columns that learned log-differences, trained and saved by run:
    # predict on the test rows (started lahead rows early, as the window fills; the
    # stateful state from zero, as in the run's test pass) writes run's predictions, in
    # the data's units.
    t = np.arange(160)
    table = np.column_stack([10 + 2 * np.sin(t / 5) + 0.3 * np.cos(1.3 * t), 5 + np.cos(t / 7)])
    path = tmp_path / "two.csv"
    path.write_text("a,b\n" + "".join(f"{a!r},{b!r}\n" for a, b in table.tolist()))
    settings = {"data": str(path), "input": ("a", "b"), "transform": "log-diff", "task": "forecast", "layers": 2}
    settings |= {"standardize": True, "lahead": 3, "units": 6, "seeds": 1, "epochs": 2}
    columns = series_file.read_columns(path, ("a", "b"))
    cfg = experiment_config(settings, file_rows=columns.input.shape[0])
    run(cfg, RunOptions(out=tmp_path / "run", save=tmp_path / "model", cache=False), columns=columns)
    ran = _read(tmp_path / "run" / "predictions.csv")
    first_test_row = cfg.data.to_drop + split_sizes(cfg.data)[0]
    tail = tmp_path / "tail.csv"
    tail.write_text("a,b\n" + "".join(f"{a!r},{b!r}\n" for a, b in table[first_test_row - 3 :].tolist()))
    for mode in ("stateful", "stateless"):
        predict(PredictConfig(tmp_path / "model" / mode, tail, ("a", "b"), tmp_path / f"{mode}.csv"))
        written = [float(r["prediction"]) for r in _read(tmp_path / f"{mode}.csv")[3 : 3 + len(ran)]]
        np.testing.assert_allclose(written, [float(r[mode]) for r in ran], rtol=1e-6)
        assert np.isclose(float(ran[0]["input"]), table[first_test_row, 0])  # the rows line up
