"""Keras import: a ``.keras`` file that Keras (TensorFlow backend) built, read into a model
directory whose ``Predictor`` predicts what Keras predicts; everything else refused in one line
naming the layer or the file, with nothing written."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest

from lstm_stateful.core.errors import ConfigError
from lstm_stateful.export import keras_export, keras_import
from lstm_stateful.models import model_io
from lstm_stateful.models.stream import Predictor
from tests import reference
from tests.export.test_keras_export import saved_model, series, windows

pytestmark = pytest.mark.keras

LAHEAD, UNITS = 3, 4
TOLERANCE = 1e-5


def keras_stack(cell: str, layers: int, stateful: bool, n_features: int) -> Any:
    """The example's model (Sequential, fixed batch of 1) stacked and with several inputs, random biases."""
    model = reference.keras_model(stateful, LAHEAD, 1, UNITS, seed=5, cell=cell, layers=layers, n_features=n_features)
    rng = np.random.default_rng(5)
    for layer in model.layers[:-1]:
        kernel, recurrent, bias = layer.get_weights()
        layer.set_weights([kernel, recurrent, rng.normal(scale=0.5, size=bias.shape).astype(np.float32)])
    return model


def predict_all(model: Any, values: np.ndarray, order: str) -> np.ndarray:
    """Keras's predictions of every full window of one stream (n, F), in order, its state carried."""
    return model.predict(windows(values, order), batch_size=1, verbose=0)[:, 0]


def predictor_all(predictor: Predictor, values: np.ndarray) -> np.ndarray:
    predicted = predictor.predict(values[:, 0] if values.shape[1] == 1 else values)
    assert np.isnan(predicted[: LAHEAD - 1]).all()
    return predicted[LAHEAD - 1 :]


CASES = [(cell, True, 2, 3, "oldest-first") for cell in ("lstm", "gru", "simple")]
CASES += [(cell, False, 1, 1, "newest-first") for cell in ("lstm", "gru", "simple")]


@pytest.mark.parametrize(("cell", "stateful", "layers", "n_features", "order"), CASES)
def test_the_imported_model_predicts_what_keras_predicts(
    tmp_path: Path, cell: str, stateful: bool, layers: int, n_features: int, order: str
) -> None:
    model = keras_stack(cell, layers, stateful, n_features)
    model.save(tmp_path / "k.keras")
    values = series(1, n_features, seed=2)[0]
    expected = predict_all(model, values, order)
    inputs = ("a", "b", "c") if n_features == 3 else None
    returned = keras_import.import_keras_file(tmp_path / "k.keras", tmp_path / "m", order, inputs)
    loaded = model_io.load_model(tmp_path / "m")
    assert loaded.mode == ("stateful" if stateful else "stateless") == returned.mode
    assert (loaded.model.cell, loaded.model.layers, loaded.model.units, loaded.model.n_features) == (
        cell, layers, UNITS, n_features,
    )  # fmt: skip
    assert (loaded.data.lahead, loaded.data.order) == (LAHEAD, order)
    assert loaded.data.input_cols == (("a", "b", "c") if n_features == 3 else ("x",))
    np.testing.assert_allclose(predictor_all(Predictor.load(tmp_path / "m"), values), expected, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(predictor_all(Predictor(returned), values), expected, rtol=0, atol=TOLERANCE)


def test_the_other_order_would_differ(tmp_path: Path) -> None:
    """The order matters: read with the wrong one, the same file predicts otherwise."""
    model = keras_stack("gru", 1, False, 1)
    model.save(tmp_path / "k.keras")
    values = series(1, 1, seed=3)[0]
    expected = predict_all(model, values, "oldest-first")
    wrong = Predictor(keras_import.read_keras(tmp_path / "k.keras", "newest-first"))
    assert np.abs(predictor_all(wrong, values) - expected).max() > 1e-3


def test_a_functional_model_with_an_adapted_normalization(tmp_path: Path) -> None:
    """Keras's usual preprocessing: a Normalization adapted to data, and a Rescaling to the target's units."""
    keras = keras_export.keras_module()
    values = series(1, 2, seed=6)[0] * 5 + 3
    norm = keras.layers.Normalization(axis=-1)
    norm.adapt(windows(values, "oldest-first"))
    window = keras.Input(shape=(LAHEAD, 2))
    h = keras.layers.GRU(UNITS, bias_initializer="random_normal")(norm(window))
    y = keras.layers.Rescaling(2.0, offset=0.5)(keras.layers.Dense(1, use_bias=False)(h))
    keras.Model(window, y).save(tmp_path / "k.keras")
    model = keras.saving.load_model(tmp_path / "k.keras")
    expected = predict_all(model, values, "oldest-first")
    got = predictor_all(Predictor(keras_import.read_keras(tmp_path / "k.keras")), values)
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


def test_the_examples_model_trained_by_keras(tmp_path: Path) -> None:
    """LSTM(20, stateful, batch_input_shape (1, 1, 1)) + Dense(1), the example's model, one
    epoch of Keras's own training on the example's data; its test predictions from a fresh state."""
    data = reference.example_arrays(input_len=60, tsteps=2, lahead=1, batch_size=1)
    model = reference.keras_model(True, lahead=1, batch_size=1, units=20, seed=0)
    reference.keras_fit(model, True, 1, 1, data)
    x_test = data[2]
    expected = model.predict(x_test, batch_size=1, verbose=0)[:, 0]
    model.save(tmp_path / "example.keras")
    keras_import.import_keras_file(tmp_path / "example.keras", tmp_path / "m", "newest-first")
    got = Predictor.load(tmp_path / "m").predict(x_test[:, 0, 0])
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)
    assert model_io.load_model(tmp_path / "m").data.batch_size == 1


def test_our_export_imports_back(tmp_path: Path) -> None:
    """Normalization and Rescaling become the scaling, the weights come back bit for bit, and a
    fixed batch of 2 becomes 2 states per stream (interleaved), as the model trained."""
    model = saved_model("lstm", 2, "stateful", 2, "oldest-first", batch_size=2)
    path, _ = keras_export.write_keras(model, tmp_path / "m.keras", batch_size=2)
    back = keras_import.import_keras_file(path, tmp_path / "back", "oldest-first", ("a", "b"))
    assert jax.tree.structure(back.params) == jax.tree.structure(model.params)
    for a, b in zip(jax.tree.leaves(model.params), jax.tree.leaves(back.params), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose((back.scaling.target_mean, back.scaling.target_scale), (0.1, 3.0), rtol=1e-7)
    np.testing.assert_allclose(back.scaling.input_mean, model.scaling.input_mean, rtol=1e-7)
    np.testing.assert_allclose(back.scaling.input_scale, model.scaling.input_scale, rtol=1e-7)
    assert (back.data.batch_size, back.data.layout, back.mode) == (2, "interleaved", "stateful")
    values = series(1, 2, seed=4)[0]
    expected = predictor_all(Predictor(model), values)
    np.testing.assert_allclose(predictor_all(Predictor.load(tmp_path / "back"), values), expected, rtol=0, atol=1e-6)


def sequential(*layers: Any, batch_shape: tuple[int | None, ...] = (None, LAHEAD, 1)) -> Any:
    keras = keras_export.keras_module()
    return keras.Sequential([keras.Input(batch_shape=batch_shape), *layers])


def _twice(k: Any) -> Any:
    """A functional model calling one layer twice: not a plain stack."""
    keras = keras_export.keras_module()
    window = keras.Input(shape=(LAHEAD, 1))
    twice = k.SimpleRNN(1, return_sequences=True, name="twice")
    return keras.Model(window, k.Dense(1)(k.SimpleRNN(1)(twice(twice(window)))))


REFUSED: dict[str, tuple[Callable[[Any], Any], str]] = {
    "conv1d": (lambda k: sequential(k.Conv1D(2, 1, name="conv"), k.LSTM(2), k.Dense(1)), "'conv' (Conv1D)"),
    "dropout": (lambda k: sequential(k.LSTM(2), k.Dropout(0.1, name="drop"), k.Dense(1)), "'drop' (Dropout)"),
    "relu": (
        lambda k: sequential(k.LSTM(2, activation="relu", name="r"), k.Dense(1)),
        "'r' (LSTM) has activation='relu'; import implements activation='tanh' only",
    ),
    "reset_after": (
        lambda k: sequential(k.GRU(2, reset_after=False, name="g"), k.Dense(1)),
        "'g' (GRU) has reset_after=False",
    ),
    "dense2": (lambda k: sequential(k.SimpleRNN(2), k.Dense(2, name="d2")), "'d2' (Dense) has 2 units"),
    "dense_relu": (
        lambda k: sequential(k.SimpleRNN(2), k.Dense(1, activation="relu", name="d")),
        "'d' (Dense) has activation 'relu'",
    ),
    "mixed_stateful": (
        lambda k: sequential(
            k.LSTM(2, stateful=True, return_sequences=True), k.LSTM(2, name="second"), k.Dense(1), batch_shape=(1, 3, 1)
        ),
        "'second' (LSTM) has stateful=False",
    ),
    "mixed_cells": (
        lambda k: sequential(k.LSTM(2, return_sequences=True), k.GRU(2, name="gru2"), k.Dense(1)),
        "'gru2' (GRU) follows a LSTM",
    ),
    "units": (
        lambda k: sequential(k.LSTM(2, return_sequences=True), k.LSTM(3, name="wide"), k.Dense(1)),
        "'wide' (LSTM) has 3 units",
    ),
    "backwards": (
        lambda k: sequential(k.SimpleRNN(2, go_backwards=True, name="b"), k.Dense(1)),
        "'b' (SimpleRNN) has go_backwards=True",
    ),
    "sequence_out": (
        lambda k: sequential(k.LSTM(2, return_sequences=True, name="seq"), k.Dense(1)),
        "'seq' (LSTM) has return_sequences=True",
    ),
    "no_dense": (lambda k: sequential(k.LSTM(2, name="last")), "'last' (LSTM) stands where the final Dense(1) belongs"),
    "called_twice": (_twice, "'twice' (SimpleRNN) does not just take the layer before it"),
    "after_dense": (
        lambda k: sequential(k.LSTM(2), k.Dense(1), k.Activation("relu", name="act")),
        "'act' (Activation) stands where the final Dense(1) belongs",
    ),
    "float16": (lambda k: sequential(k.LSTM(2, dtype="float16", name="half"), k.Dense(1)), "'half' (LSTM)"),
    "inverted": (
        lambda k: sequential(k.Normalization(mean=0.0, variance=1.0, invert=True, name="inv"), k.LSTM(2), k.Dense(1)),
        "'inv' (Normalization)",
    ),
    "time_axis_norm": (
        lambda k: sequential(
            k.Normalization(axis=1, mean=np.zeros(LAHEAD), variance=np.ones(LAHEAD), name="tn"), k.LSTM(2), k.Dense(1)
        ),
        "'tn' (Normalization)",
    ),
    "vector_rescaling": (
        lambda k: sequential(k.LSTM(2), k.Dense(1), k.Rescaling(scale=[2.0, 3.0], name="vec")),
        "'vec' (Rescaling)",
    ),
    "no_time_axis": (
        lambda k: sequential(k.LSTM(2, name="first"), k.Dense(1), batch_shape=(None, None, 1)),
        "'first' (LSTM) takes windows of shape (None, None, 1): the window length must be fixed",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_what_we_cannot_reproduce_is_refused_naming_the_layer(tmp_path: Path, case: str) -> None:
    build, fragment = REFUSED[case]
    build(keras_export.keras_module().layers).save(tmp_path / "k.keras")
    with pytest.raises(ConfigError) as e:
        keras_import.import_keras_file(tmp_path / "k.keras", tmp_path / "m")
    assert e.value.param == "keras_file" and fragment in str(e.value) and "\n" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.keras"]


def test_a_step_model_with_state_inputs_is_refused(tmp_path: Path) -> None:
    _, step = keras_export.write_keras(saved_model("gru", 1, "stateful"), tmp_path / "m.keras", 1)
    with pytest.raises(ConfigError, match="one input"):
        keras_import.read_keras(step)


def test_bad_files_are_one_line_naming_the_file(tmp_path: Path) -> None:
    keras_stack("simple", 1, False, 1).save(tmp_path / "good.keras")
    blob = (tmp_path / "good.keras").read_bytes()
    (tmp_path / "truncated.keras").write_bytes(blob[: len(blob) // 2])
    (tmp_path / "noise.keras").write_bytes(np.random.default_rng(0).bytes(2000))
    with zipfile.ZipFile(tmp_path / "emptied.keras", "w") as z:
        z.writestr("config.json", "{not json")
    (tmp_path / "good.h5").write_bytes(blob)
    cases = {
        "truncated.keras": "not a zip archive",
        "noise.keras": "not a zip archive",
        "emptied.keras": "cannot be read by Keras",
        "good.h5": "must be a Keras 3 .keras file",
        "absent.keras": "does not exist",
    }
    for name, fragment in cases.items():
        with pytest.raises(ConfigError) as e:
            keras_import.import_keras_file(tmp_path / name, tmp_path / "m")
        message = str(e.value)
        assert e.value.param == "keras_file" and name in message and fragment in message and "\n" not in message
    assert not (tmp_path / "m").exists()


def test_the_output_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keras_stack("simple", 1, False, 1).save(tmp_path / "k.keras")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(ConfigError, match="exists; give a new"):
        keras_import.import_keras_file(tmp_path / "k.keras", tmp_path / "full")
    (tmp_path / "empty").mkdir()
    keras_import.import_keras_file(tmp_path / "k.keras", tmp_path / "empty")  # an empty directory is fine
    assert model_io.load_model(tmp_path / "empty").model.cell == "simple"
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="cannot write the model directory"):
        keras_import.import_keras_file(tmp_path / "k.keras", tmp_path / "file" / "m")
    real = model_io.save_model

    def fails_half_way(directory: Path, *args: Any) -> None:
        real(directory, *args)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model_io, "save_model", fails_half_way)
    with pytest.raises(ConfigError, match="No space left"):
        keras_import.import_keras_file(tmp_path / "k.keras", tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "file", "full", "k.keras"]


def test_bad_arguments(tmp_path: Path) -> None:
    keras_stack("lstm", 1, False, 1).save(tmp_path / "k.keras")
    with pytest.raises(ConfigError, match="order: must be one of"):
        keras_import.read_keras(tmp_path / "k.keras", "backwards")
    with pytest.raises(ConfigError, match="input: names 2 column"):
        keras_import.read_keras(tmp_path / "k.keras", inputs=("a", "b"))


@pytest.mark.parametrize("layout", ["contiguous", "interleaved"])
def test_a_batch_of_independent_streams_imports_as_contiguous(tmp_path: Path, layout: str) -> None:
    """A stateful Keras model of 2 rows fed two independent streams, row i always stream i:
    with ``layout="contiguous"`` each stream keeps one state, as Keras's rows did; read as
    interleaved, the same file would send a stream's windows to both rows (and differ)."""
    model = reference.keras_model(True, LAHEAD, 2, UNITS, seed=7, cell="lstm")
    model.save(tmp_path / "k.keras")
    values = series(2, 1, seed=4)  # (2 streams, n, 1)
    wins = np.stack([windows(v, "oldest-first") for v in values], axis=1)  # (steps, 2, lahead, 1)
    expected = np.stack([model.predict_on_batch(w)[:, 0] for w in wins], axis=1)  # (2, steps)
    imported = keras_import.read_keras(tmp_path / "k.keras", "oldest-first", layout=layout)
    assert (imported.data.batch_size, imported.data.layout) == (2, layout)
    got = Predictor(imported, batch_size=2).predict(values[..., 0])[:, LAHEAD - 1 :]
    if layout == "contiguous":
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)
    else:
        assert np.abs(got - expected).max() > 1e-3


def test_a_constant_input_column_scales_by_kerass_epsilon(tmp_path: Path) -> None:
    """Keras's Normalization divides by max(sqrt(variance), epsilon): a column of variance 0 is
    scaled by epsilon, as Keras does, not by 0."""
    keras = keras_export.keras_module()
    sequential(keras.layers.Normalization(mean=0.5, variance=0.0), keras.layers.LSTM(2), keras.layers.Dense(1)).save(
        tmp_path / "k.keras"
    )
    scaling = keras_import.read_keras(tmp_path / "k.keras").scaling
    assert scaling.input_mean == (0.5,) and scaling.input_scale == (pytest.approx(keras.config.epsilon(), rel=1e-6),)
