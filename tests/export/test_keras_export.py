"""Keras export: the files open with ``keras.saving.load_model`` and no custom objects, and
Keras (TensorFlow backend) predicts what our ``Predictor`` predicts: the stateful model on
consecutive windows, row i continuing row i, and the step model with its state fed by hand."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_stateful.core import cells
from lstm_stateful.core.config import DataConfig, ModelConfig
from lstm_stateful.core.data import Scaling
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.export import keras_export
from lstm_stateful.models.model_io import SavedModel
from lstm_stateful.models.stream import Predictor

pytestmark = pytest.mark.keras

LAHEAD, UNITS, STEPS = 3, 3, 9
TOLERANCE = 1e-5


def saved_model(
    cell: str, layers: int, mode: str, n_features: int = 1, order: str = "newest-first", **data: Any
) -> SavedModel:
    """A model with random weights and biases (Keras starts some biases at zero) and a scaling
    that is not the identity, so that the Normalization and Rescaling layers count."""
    rng = np.random.default_rng(layers * 10 + n_features)
    model = ModelConfig(units=UNITS, n_features=n_features, cell=cell, layers=layers)
    params = cells.init_params(rng, model)
    params = params._replace(
        cells=tuple(c._replace(bias=rng.normal(0, 0.5, np.shape(c.bias)).astype(np.float32)) for c in params.cells)
    )
    columns = {"file": "f.csv", "input_cols": tuple("abc"[:n_features])} if n_features > 1 else {}
    cfg = DataConfig(lahead=LAHEAD, order=order, **columns, **data)
    scaling = Scaling(tuple(0.3 - 0.2 * j for j in range(n_features)), tuple(2.0 - 0.5 * j for j in range(n_features)))
    return SavedModel(params, model, cfg, mode, scaling._replace(target_mean=0.1, target_scale=3.0), 0)


def windows(values: np.ndarray, order: str) -> np.ndarray:
    """(n, F) -> (n - LAHEAD + 1, LAHEAD, F) float32, every full window in the model's order."""
    stack = np.stack([values[t - LAHEAD + 1 : t + 1] for t in range(LAHEAD - 1, len(values))])  # oldest first
    return (stack if order == "oldest-first" else stack[:, ::-1]).astype(np.float32)


def series(streams: int, n_features: int, seed: int = 0) -> np.ndarray:
    """(streams, STEPS, F) values exact in float32 (Keras's inputs are float32)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (streams, STEPS, n_features)).astype(np.float32).astype(np.float64)


def ours(model: SavedModel, values: np.ndarray) -> np.ndarray:
    """The Predictor's predictions of each stream's full windows: (streams, n windows)."""
    table = values[..., 0] if values.shape[-1] == 1 else values  # one input: (B, n)
    predicted = Predictor(model, batch_size=values.shape[0]).predict(table)
    assert np.isnan(predicted[:, : LAHEAD - 1]).all()
    return predicted[:, LAHEAD - 1 :]


def load(path: Path) -> Any:
    return keras_export.keras_module().saving.load_model(path)  # no custom objects


def step_predictions(step: Any, model: SavedModel, wins: np.ndarray, slots: int) -> np.ndarray:
    """The step model driven by hand: wins (streams, n, LAHEAD, F); the state of window n
    comes from window n - slots (zeros before). Returns (streams, n)."""
    names = [i.name for i in step.inputs if i.name != "window"]
    zeros = {name: np.zeros((wins.shape[0], model.model.units), np.float32) for name in names}
    states, preds = [zeros] * slots, []
    for n in range(wins.shape[1]):
        out = step.predict_on_batch({"window": wins[:, n], **states[n % slots]})
        states[n % slots] = {name: np.asarray(out[f"next_{name}"]) for name in names}
        preds.append(np.asarray(out["y"])[:, 0])
    return np.stack(preds, axis=1)


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple"])
@pytest.mark.parametrize("layers", [1, 2])
def test_keras_predicts_what_the_predictor_predicts(tmp_path: Path, cell: str, layers: int) -> None:
    n_features = 2 if layers == 2 else 1  # several inputs, in time order, for the stacks
    order = "oldest-first" if layers == 2 else "newest-first"
    values = series(2, n_features)
    wins = np.stack([windows(v, order) for v in values])  # (2 streams, n, LAHEAD, F)
    for mode in ("stateful", "stateless"):
        model = saved_model(cell, layers, mode, n_features, order)
        path, step_file = keras_export.write_keras(model, tmp_path / f"{mode}.keras", batch_size=2)
        assert step_file == tmp_path / f"{mode}.step.keras"
        keras_model, step = load(path), load(step_file)
        expected = ours(model, values)
        # One row per stream, consecutive steps: row i of a call continues row i of the one before.
        got = keras_model.predict(wins.swapaxes(0, 1).reshape(-1, LAHEAD, n_features), batch_size=2, verbose=0)
        np.testing.assert_allclose(got.reshape(-1, 2).T, expected, rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(step_predictions(step, model, wins, 1), expected, rtol=0, atol=TOLERANCE)
        assert keras_model.inputs[0].shape == ((2 if mode == "stateful" else None), LAHEAD, n_features)
        assert len(step.inputs) == (1 + layers * (2 if cell == "lstm" else 1) if mode == "stateful" else 1)


@pytest.mark.parametrize("streams", [1, 2])
def test_an_interleaved_model_takes_consecutive_windows_of_a_stream_per_call(tmp_path: Path, streams: int) -> None:
    """Trained interleaved at batch size 2, the model keeps 2 states per stream: with B = 2 x
    streams, rows 2s and 2s+1 of each call hold windows n and n+1 of stream s."""
    model = saved_model("lstm", 1, "stateful", batch_size=2)
    values = series(streams, 1, seed=1)
    wins = np.stack([windows(v, model.data.order) for v in values])[:, :6]  # (streams, 6 windows, ...)
    expected = ours(model, values)[:, :6]
    path, step_file = keras_export.write_keras(model, tmp_path / "m.keras", batch_size=2 * streams)
    rows = wins.reshape(streams, 3, 2, LAHEAD, 1).swapaxes(0, 1).reshape(-1, LAHEAD, 1)  # per call: each stream's pair
    got = load(path).predict(rows, batch_size=2 * streams, verbose=0).reshape(3, streams, 2).swapaxes(0, 1)
    np.testing.assert_allclose(got.reshape(streams, 6), expected, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(step_predictions(load(step_file), model, wins, 2), expected, rtol=0, atol=TOLERANCE)
    # One state per stream would differ: the slots are what the model needs.
    assert np.abs(step_predictions(load(step_file), model, wins, 1) - expected).max() > 1e-3


def test_refusals_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    def refused(param: str, fragment: str, model: SavedModel, path: Path, batch_size: int = 1) -> None:
        with pytest.raises(ConfigError) as e:
            keras_export.write_keras(model, path, batch_size)
        assert e.value.param == param and fragment in str(e.value) and "\n" not in str(e.value)

    plain, path = saved_model("gru", 1, "stateful"), tmp_path / "m.keras"
    refused("model", "ONNX export carries it", saved_model("gru", 1, "stateful", transform="diff"), path)
    refused("batch_size", "must be a multiple of 2", saved_model("gru", 1, "stateful", batch_size=2), path, 3)
    refused("batch_size", "must be an integer in [1, 1000001), got 0", plain, path, 0)
    refused("batch_size", "got 1000001", plain, path, 1_000_001)
    refused("out", "must end in .keras", plain, tmp_path / "m.h5")
    refused("out", "cannot write", plain, tmp_path / "missing" / "m.keras")
    (tmp_path / "file").write_text("")
    refused("out", "cannot write", plain, tmp_path / "file" / "m.keras")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_failed_step_file_leaves_the_old_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.keras"
    path.write_bytes(b"old")
    real = keras_export.keras_models

    class Broken:
        def save(self, filepath: str) -> None:
            Path(filepath).write_bytes(b"half")
            raise RuntimeError("disk on fire")

    monkeypatch.setattr(keras_export, "keras_models", lambda m, b: (real(m, b)[0], Broken()))
    with pytest.raises(RuntimeError):
        keras_export.write_keras(saved_model("simple", 1, "stateless"), path, 1)
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"] and path.read_bytes() == b"old"


def test_step_path() -> None:
    assert keras_export.step_path(Path("out/m.keras")) == Path("out/m.step.keras")


def test_keras_missing_or_on_another_backend_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    keras = keras_export.keras_module()
    with monkeypatch.context() as m:
        m.setattr(keras.backend, "backend", lambda: "jax")
        with pytest.raises(ConfigError, match="jax backend; set KERAS_BACKEND=tensorflow"):
            keras_export.keras_module()
    monkeypatch.setitem(sys.modules, "keras", None)  # what a missing package looks like to import
    with pytest.raises(ConfigError) as e:
        keras_export.keras_module("keras_file")
    assert e.value.param == "keras_file" and e.value.problem == keras_export.KERAS_EXTRA
