"""``commands.export`` from Python: a trained model out to ONNX and Keras and back in, and
every bad input refused before anything is written."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from lstm_stateful.commands.export import ExportConfig, ExportOutput, ImportConfig, ImportOutput, export, import_keras
from lstm_stateful.commands.run import RunOptions, run
from lstm_stateful.core.config import experiment_config
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.models.stream import Predictor

VALUES = np.array([0.1 * math.sin(i / 7) + 0.01 * math.cos(i) for i in range(200)])


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained stateful GRU, 2 layers, windows of 3 (batch size 1: one state per stream)."""
    root = tmp_path_factory.mktemp("export")
    settings = {"seeds": 1, "epochs": 1, "input_len": 200, "tsteps": 3, "lahead": 3, "batch_size": 1}
    cfg = experiment_config(settings | {"cell": "gru", "layers": 2, "units": 6})
    run(cfg, RunOptions(out=root / "run", save=root / "model", cache=False))
    return root / "model" / "stateful"


def test_onnx_export_with_a_chunk_graph_predicts_as_the_predictor(model: Path, tmp_path: Path) -> None:
    from lstm_stateful.export.onnx_graph import OnnxPredictor

    out = tmp_path / "m.onnx"
    done = export(ExportConfig(model, "onnx", out, chunk=8))
    assert isinstance(done, ExportOutput) and done.model.mode == "stateful"
    assert done.files == (out, tmp_path / "m.chunk8.onnx") and all(f.is_file() for f in done.files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.chunk8.onnx", "m.onnx"]  # no temporaries left
    expected = Predictor.load(model).predict(VALUES)
    onnx_model = OnnxPredictor.load(out)
    ours = np.array([onnx_model.predict(v) for v in VALUES]).reshape(-1)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.keras
def test_keras_export_then_import_round_trips(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.keras"
    done = export(ExportConfig(model, "keras", out))
    assert done.files == (out, tmp_path / "m.step.keras")
    back = import_keras(ImportConfig(out, tmp_path / "back", order=done.model.data.order))
    assert isinstance(back, ImportOutput) and back.out == tmp_path / "back"
    assert (back.model.mode, back.model.model.cell, back.model.model.layers) == ("stateful", "gru", 2)
    expected = Predictor.load(model).predict(VALUES)
    np.testing.assert_allclose(Predictor.load(back.out).predict(VALUES), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "param", "fragment"),
    [
        ({"format": "tflite"}, "format", "must be one of onnx, keras"),
        ({"out": "m.keras"}, "out", "must end in .onnx"),
        ({"format": "keras", "out": "m.onnx"}, "out", "must end in .keras"),
        ({"chunk": 0}, "chunk", "must be a positive integer, got 0"),
        ({"format": "keras", "out": "m.keras", "chunk": 4}, "chunk", "--format onnx only"),
        ({"batch_size": 4}, "batch_size", "keras only"),
        ({"format": "keras", "out": "m.keras", "batch_size": 0}, "batch_size", "must be a positive integer"),
    ],
)
def test_bad_export_configs_are_refused(tmp_path: Path, kwargs: dict, param: str, fragment: str) -> None:
    settings = {"model": tmp_path, "format": "onnx", "out": "m.onnx"} | kwargs
    with pytest.raises(ConfigError, match=fragment) as e:
        ExportConfig(settings["model"], settings["format"], tmp_path / settings["out"],
                     settings.get("chunk"), settings.get("batch_size"))  # fmt: skip
    assert e.value.param == param


def test_an_out_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory") as e:
        ExportConfig(tmp_path, "onnx", tmp_path)
    assert e.value.param == "out"


def test_a_directory_that_is_not_a_model_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a saved model") as e:
        export(ExportConfig(tmp_path / "empty", "onnx", tmp_path / "out" / "m.onnx"))
    assert e.value.param == "model" and not (tmp_path / "out").exists()


def test_import_refuses_a_bad_order_and_layout(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be one of") as e:
        ImportConfig(tmp_path / "m.keras", tmp_path / "new", order="sideways")
    assert e.value.param == "order"
    with pytest.raises(ConfigError, match="must be one of interleaved, contiguous") as e:
        ImportConfig(tmp_path / "m.keras", tmp_path / "new", layout="rows")
    assert e.value.param == "layout"
