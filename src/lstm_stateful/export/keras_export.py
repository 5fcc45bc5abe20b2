"""A saved model as two Keras 3 files that ``keras.saving.load_model`` opens with no custom
objects (built-in layers only, no Lambda):

``FILE.keras``, the model for ``predict``: ``window`` (B, lahead, F) float32 in the data's
units, each window in the model's own order (``data.order``; newest-first windows are
x[t], x[t-1], ..., as the example's shifted columns), then ``Normalization`` by the saved
input scaling, the recurrent layers (every one but the last returns its sequence), ``Dense(1)``
and ``Rescaling`` back to the target's units: y (B, 1). A stateful model's layers are
``stateful=True`` with a fixed batch of B rows: row i of one call continues row i of the call
before, so each row is one stream; call ``predict(windows, batch_size=B)`` with the windows of
consecutive steps, B rows per step, and ``layer.reset_state()`` to start afresh. A stateless
model's layers are ``stateful=False`` and its batch axis is free (B is not used).

A stateful model trained interleaved at batch size S (``models.stream.slots``) carried its
state from a window to the window S later, so a stream has S states. Keras's row-i-continues-
row-i is exactly that when one stream's S consecutive windows fill S rows: B must be a multiple
of S, and rows s*S .. s*S + S - 1 of every call hold windows n .. n + S - 1 of stream s, n a
multiple of S counted from the stream's first full window (B = S: one stream).

``FILE.step.keras`` (``step_path``), one window with the state explicit, the pattern
TensorFlow's converters take: inputs ``window`` (None, lahead, F) as above and, for a stateful
model, ``layer{k}_h`` (and ``layer{k}_c`` for an LSTM) (None, units) for each layer k, zeros
for a new stream; outputs ``y`` (None, 1) in the target's units and ``next_layer{k}_h`` (and
``next_layer{k}_c``), the states after the window. A stream of S slots feeds each window the
states the window S before returned. A stateless model's step model has no state inputs or
outputs (every window starts from zeros): ``window`` in, ``y`` out.

The raw values are float32 in Keras (the Predictor scales in float64): predictions agree to
about float32's precision relative to the data's magnitude. A model with a transform (diff,
log-diff) needs the previous raw row, which a plain Keras model cannot hold: refused, and the
ONNX export carries it. Keras is imported when first needed (the ``keras`` extra), on its
TensorFlow backend, where stateful layers work.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from lstm_stateful.core.cells import CARRY_TYPES, CellParams, ModelParams
from lstm_stateful.core.config import require_int
from lstm_stateful.core.data import Scaling
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.io.atomic import write_with
from lstm_stateful.models.model_io import SavedModel
from lstm_stateful.models.stream import slots

KERAS_EXTRA = "Keras export and import need the keras extra: pip install 'lstm-stateful[keras]'"
SUFFIX = ".keras"
# Our --cell names -> Keras's layer classes (same weight layouts: core/cells.py).
KERAS_LAYERS = {"lstm": "LSTM", "gru": "GRU", "simple": "SimpleRNN"}
# A Keras model or layer (Keras ships no type information).
KerasObject = Any


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at the null device for a while. TensorFlow's C++ start-up
    writes log lines there (absl, oneDNN) before any Python setting can stop them, and a
    command's stderr holds its one error line; Python's own exceptions still propagate."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def keras_module(param: str = "format") -> ModuleType:
    """``keras`` on its TensorFlow backend, or a one-line ``ConfigError`` on ``param``: the
    extra to install, or the other backend it was already imported with.

    Sets KERAS_BACKEND=tensorflow, unless set, before the first import only.
    """
    first = "keras" not in sys.modules
    if first:
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        with native_stderr_silenced() if first else contextlib.nullcontext():
            keras = importlib.import_module("keras")
    except ImportError as e:
        missing = (e.name or "").partition(".")[0] in ("keras", "tensorflow")
        raise ConfigError(param, KERAS_EXTRA if missing else f"cannot import keras: {e}") from None
    backend = keras.backend.backend()
    if backend != "tensorflow":
        problem = "set KERAS_BACKEND=tensorflow (stateful layers need that backend)"
        raise ConfigError(param, f"Keras was loaded with its {backend} backend; {problem}")
    return keras


# The largest stateful batch written: a million streams' states are tens of megabytes to
# gigabytes; beyond that building the model exhausts memory instead of failing in one line.
MAX_BATCH_SIZE = 1_000_000


def step_path(path: Path) -> Path:
    """Where the step model goes beside ``path``: ``m.keras`` -> ``m.step.keras``."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(SUFFIX) + ".step" + SUFFIX)


def check_exportable(model: SavedModel, batch_size: int) -> None:
    """Refuse what a plain Keras model cannot reproduce: a transform, or B not a multiple of
    the stream's slots; and a B whose states alone would not fit in memory (Keras allocates
    them when it builds the model)."""
    require_int("batch_size", batch_size, 1, MAX_BATCH_SIZE + 1)
    if model.data.transform != "none":
        problem = "needs the previous raw rows, which a plain Keras model cannot hold"
        raise ConfigError("model", f"learned {model.data.transform}: the transform {problem}; ONNX export carries it")
    s = slots(model)
    if batch_size % s:
        why = f"keeps {s} states per stream (it trained interleaved at batch size {s})"
        raise ConfigError("batch_size", f"must be a multiple of {s}: the model {why}, got {batch_size}")


def _recurrent(keras: ModuleType, model: SavedModel, k: int, **options: bool) -> KerasObject:
    """Layer k of the stack, named ``{cell}_{k}``."""
    layer = getattr(keras.layers, KERAS_LAYERS[model.model.cell])
    gru = {"reset_after": True} if model.model.cell == "gru" else {}
    return layer(model.model.units, name=f"{model.model.cell}_{k}", **gru, **options)


def _normalization(keras: ModuleType, scaling: Scaling) -> KerasObject:
    """(x - mean) / sqrt(variance), per input column: the saved input scaling."""
    variance = [s * s for s in scaling.input_scale]
    return keras.layers.Normalization(axis=-1, mean=list(scaling.input_mean), variance=variance, name="normalization")


def _readout(keras: ModuleType, scaling: Scaling, h: KerasObject) -> tuple[KerasObject, KerasObject]:
    """Dense(1) and the way back to the target's units; returns the Dense and y."""
    dense = keras.layers.Dense(1, name="dense")
    rescale = keras.layers.Rescaling(scale=scaling.target_scale, offset=scaling.target_mean, name="rescaling")
    return dense, rescale(dense(h))


def _set_weights(layers: list[KerasObject], dense: KerasObject, params: ModelParams) -> None:
    """Copy the weights across unchanged (the layouts are Keras's)."""
    for layer, cell in zip(layers, params.cells, strict=True):
        layer.set_weights(_arrays(cell))
    dense.set_weights([np.asarray(params.dense.kernel, np.float32), np.asarray(params.dense.bias, np.float32)])


def _arrays(cell: CellParams) -> list[np.ndarray]:
    return [np.asarray(a, np.float32) for a in (cell.kernel, cell.recurrent_kernel, cell.bias)]


def _predict_model(keras: ModuleType, model: SavedModel, batch_size: int) -> KerasObject:
    """The model for ``predict``: stateful with a fixed batch, or stateless with a free one."""
    m, stateful = model.model, model.mode == "stateful"
    shape = (batch_size if stateful else None, model.data.lahead, m.n_features)
    window = keras.Input(batch_shape=shape, name="window")
    layers = [
        _recurrent(keras, model, k, stateful=stateful, return_sequences=k < m.layers - 1) for k in range(m.layers)
    ]
    x = _normalization(keras, model.scaling)(window)
    for layer in layers:
        x = layer(x)
    dense, y = _readout(keras, model.scaling, x)
    out = keras.Model(window, y, name=f"{model.mode}_{m.cell}")
    _set_weights(layers, dense, params=model.params)
    return out


def _state_names(model: SavedModel) -> list[list[str]]:
    """Per layer, its state inputs' names: ``layer{k}_h`` (and ``layer{k}_c``); none if stateless."""
    if model.mode != "stateful":
        return [[] for _ in range(model.model.layers)]
    parts = CARRY_TYPES[model.model.cell]._fields
    return [[f"layer{k}_{p}" for p in parts] for k in range(model.model.layers)]


def _step_model(keras: ModuleType, model: SavedModel) -> KerasObject:
    """One window, the states explicit: {window, layer{k}_h, ...} -> {y, next_layer{k}_h, ...}."""
    m, names = model.model, _state_names(model)
    window = keras.Input(shape=(model.data.lahead, m.n_features), name="window")
    inputs: dict[str, KerasObject] = {"window": window}
    outputs: dict[str, KerasObject] = {}
    x = _normalization(keras, model.scaling)(window)
    layers = []
    for k, layer_names in enumerate(names):
        states = [keras.Input(shape=(m.units,), name=name) for name in layer_names]
        inputs |= dict(zip(layer_names, states, strict=True))
        layer = _recurrent(keras, model, k, return_sequences=k < m.layers - 1, return_state=bool(states))
        layers.append(layer)
        x, *new = layer(x, initial_state=states) if states else [layer(x)]
        outputs |= {f"next_{name}": state for name, state in zip(layer_names, new, strict=True)}
    dense, y = _readout(keras, model.scaling, x)
    out = keras.Model(inputs, {"y": y} | outputs, name=f"{model.mode}_{m.cell}_step")
    _set_weights(layers, dense, params=model.params)
    return out


def keras_models(model: SavedModel, batch_size: int) -> tuple[KerasObject, KerasObject]:
    """The model for ``predict`` (B = ``batch_size`` streams if stateful) and the step model
    (see the module's docstring). Refuses a transform, and a B that is not a multiple of a
    stateful interleaved model's slots."""
    check_exportable(model, batch_size)
    keras = keras_module()
    return _predict_model(keras, model, batch_size), _step_model(keras, model)


def write_keras(model: SavedModel, path: Path, batch_size: int) -> tuple[Path, Path]:
    """Write ``path`` (``.keras``) and ``step_path(path)``; returns both paths.

    Both models are built before a file is touched. Each file goes to a temporary beside it
    and is renamed into place; the step file is renamed only once the main one is written
    whole, and the main one only after it, so a failure leaves the old files or none.
    """
    path = Path(path)
    if path.suffix != SUFFIX:
        raise ConfigError("out", f"{str(path)!r} must end in {SUFFIX} (Keras saves no other name)")
    predict_model, step_model = keras_models(model, batch_size)
    step = step_path(path)

    def write(tmp: Path) -> None:
        predict_model.save(str(tmp))
        write_with(step, lambda step_tmp: step_model.save(str(step_tmp)))

    try:
        write_with(path, write)
    except OSError as e:
        raise ConfigError("out", f"cannot write {str(path)!r}: {e.strerror or e}") from None
    return path, step
