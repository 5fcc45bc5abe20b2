"""A Keras 3 ``.keras`` file read into a saved model (``models.model_io``), so that ``predict``
and the ``Predictor`` reproduce Keras's own predictions.

The file is read with ``keras.saving.load_model`` (safe mode, no custom objects, not compiled).
Accepted: a plain stack (one input, one output, each layer taking the one before it) of

    [Normalization]  LSTM | GRU (reset_after=True) | SimpleRNN, one type, 1+ layers  Dense(1)  [Rescaling]

the recurrent layers with activation tanh, recurrent activation sigmoid (LSTM, GRU), forwards
(not ``go_backwards``), the same number of units, all stateful or none, every one but the last
returning its sequence; the Dense linear; a Normalization on the last axis (not inverted) and a
scalar Rescaling, which become the saved scaling (so our own Keras exports read back). Dropout
arguments are fine (inference ignores them); a layer without a bias gets zeros. The window
length and the inputs per step come from the input shape (B, lahead, F), both fixed. Anything
else is refused in one line naming the layer, its name and class.

``order`` is the order in which the Keras model was fed each window: ``oldest-first`` (time
order, as most Keras code does) or ``newest-first`` (the example's shifted columns). A
stateful model with a fixed batch of B > 1 rows is read as B states per stream, the stream's
n-th window going to row n mod B (the layout a stateful Keras model trains and predicts in
when its rows are consecutive windows of one series, as the example's, and how
``keras_export`` writes such a model): ``data.batch_size`` B, ``layout`` interleaved. With
``layout="contiguous"`` its rows were independent streams (each row one stream's windows, or
one segment of a series): one state per stream, as a ``Predictor`` of any batch size keeps.

The model directory records what the file holds: the architecture, the mode, lahead, order,
the input columns (``inputs``, default ``x`` or ``x1``, ``x2``, ...: the names ``predict
--input`` takes), and the scaling (identity without Normalization and Rescaling). Named inputs
need a data source in the config: ``data.file`` records the Keras file the model was read
from. The training settings the file does not hold (series length, task, epochs) keep their
defaults, the length raised where a large batch needs it for the config to be valid; predicting
uses none of them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from lstm_stateful.core import cells
from lstm_stateful.core.config import LAYOUTS, ORDERS, DataConfig, ExperimentConfig, ModelConfig, require_choice
from lstm_stateful.core.data import Scaling
from lstm_stateful.core.errors import ConfigError, foreign
from lstm_stateful.export.keras_export import KERAS_LAYERS, SUFFIX, keras_module, native_stderr_silenced
from lstm_stateful.models import model_io
from lstm_stateful.models.model_io import SavedModel

PARAM = "keras_file"
# Keras's recurrent layer classes -> our --cell names.
CELLS = {name: cell for cell, name in KERAS_LAYERS.items()}
# A Keras model or layer (Keras ships no type information).
KerasObject = Any
_TAKES = "import takes"
_STACK = (
    "an optional Normalization, recurrent layers of one type (LSTM, GRU, SimpleRNN), Dense(1), an optional Rescaling"
)


class Stack(NamedTuple):
    """A Keras model's layers by role: ``normalization`` and ``rescaling`` None when absent."""

    normalization: KerasObject
    recurrent: list[KerasObject]
    dense: KerasObject
    rescaling: KerasObject


def _named(layer: KerasObject) -> str:
    return f"layer {layer.name!r} ({type(layer).__name__})"


def _refuse(layer: KerasObject, problem: str) -> ConfigError:
    return ConfigError(PARAM, f"{_named(layer)} {problem}")


def _load(keras: ModuleType, path: Path) -> KerasObject:
    """The model in ``path``, or one line naming the file."""
    where = repr(str(path))
    if not path.is_file():
        raise ConfigError(PARAM, f"{where} is not a file" if path.exists() else f"{where} does not exist")
    if path.suffix != SUFFIX:
        raise ConfigError(PARAM, f"{where} must be a Keras 3 {SUFFIX} file")
    if not zipfile.is_zipfile(path):
        raise ConfigError(PARAM, f"{where} is not a Keras 3 file (not a zip archive: truncated or corrupted?)")
    try:
        with native_stderr_silenced():  # TensorFlow logs natively on some files (float16 kernels)
            return keras.saving.load_model(path, compile=False)
    except Exception as e:  # Keras raises many kinds (ValueError, KeyError, OSError, BadZipFile...)
        raise ConfigError(PARAM, f"{where} cannot be read by Keras ({foreign(str(e)) or type(e).__name__})") from None


def _chain(keras: ModuleType, model: KerasObject) -> list[KerasObject]:
    """The model's layers, input layers left out, once each takes the output of the one before."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        names = ", ".join(t.name for t in model.inputs)
        raise ConfigError(PARAM, f"holds a model with inputs {names}: {_TAKES} one input (the window) and one output")
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if not layers:
        raise ConfigError(PARAM, f"holds a model without layers; {_TAKES} {_STACK}")
    if not isinstance(model, keras.Sequential):  # a Sequential is a chain by construction
        _check_calls(model.get_config(), layers)
    return layers


def _check_calls(config: dict, layers: list[KerasObject]) -> None:
    """A functional model's config lists every layer call: each layer must be called once, on
    the first output of the layer before it (the first on the input), and the last be the output."""
    calls = {spec.get("name"): spec.get("inbound_nodes") for spec in config.get("layers", [])}
    previous = _source(config.get("input_layers"))
    for layer in layers:
        if not _called_on(calls.get(layer.name), previous):
            raise _refuse(layer, f"does not just take the layer before it: {_TAKES} a plain stack of layers")
        previous = layer.name
    if _source(config.get("output_layers")) != previous:
        raise _refuse(layers[-1], "is not the model's output")


def _source(reference: object) -> str | None:
    """The layer of ``[name, 0, 0]`` (or a list of one such): its first output of its first call."""
    if isinstance(reference, list) and len(reference) == 1:
        reference = reference[0]
    return reference[0] if isinstance(reference, list) and reference[1:] == [0, 0] else None


def _called_on(nodes: object, previous: str | None) -> bool:
    """One call, with one tensor argument from ``previous`` and no other input (no initial state, no mask)."""
    if not (isinstance(nodes, list) and len(nodes) == 1 and isinstance(nodes[0], dict)):
        return False
    node = nodes[0]
    try:  # parsed JSON: any other shape is a KeyError, TypeError or ValueError
        [arg] = node["args"]
        source = _source(arg["config"]["keras_history"])
        kwargs = node.get("kwargs", {})
        return source == previous and set(kwargs) <= {"training", "mask"} and kwargs.get("mask") is None
    except (KeyError, TypeError, ValueError):
        return False


def _stack(keras: ModuleType, layers: list[KerasObject]) -> Stack:
    """Split the layers by role; any layer out of place or of another type is refused."""
    layers = list(layers)
    norm = layers.pop(0) if type(layers[0]) is keras.layers.Normalization else None
    rescale = layers.pop() if layers and type(layers[-1]) is keras.layers.Rescaling else None
    if not layers:
        lone = norm if rescale is None else rescale
        raise _refuse(lone, f"has no recurrent layers and Dense(1) with it: {_TAKES} {_STACK}")
    recurrent_types = tuple(getattr(keras.layers, name) for name in CELLS)
    *recurrent, dense = layers
    if type(dense) is not keras.layers.Dense:  # first: a layer after the Dense is the one out of place
        raise _refuse(dense, f"stands where the final Dense(1) belongs: {_TAKES} {_STACK}")
    for layer in recurrent:
        if type(layer) not in recurrent_types:
            raise _refuse(layer, f"cannot be imported: {_TAKES} {_STACK}")
    if not recurrent:
        raise _refuse(dense, f"has no recurrent layer before it: {_TAKES} {_STACK}")
    return Stack(norm, recurrent, dense, rescale)


def _check_recurrent(layers: list[KerasObject]) -> None:
    """One type, Keras's standard cell (tanh, sigmoid, reset_after), forwards, equal units,
    all stateful or none, every one but the last returning its sequence."""
    first, head = layers[0], layers[0].get_config()
    for k, layer in enumerate(layers):
        c = layer.get_config()
        wanted = {"activation": "tanh", "go_backwards": False, "return_state": False}
        wanted |= {"return_sequences": k < len(layers) - 1, "units": head["units"], "stateful": head["stateful"]}
        wanted |= {} if CELLS[type(layer).__name__] == "simple" else {"recurrent_activation": "sigmoid"}
        wanted |= {"reset_after": True} if CELLS[type(layer).__name__] == "gru" else {}
        if type(layer) is not type(first):
            raise _refuse(layer, f"follows a {type(first).__name__}: the recurrent layers must be of one type")
        for key, value in wanted.items():
            if c.get(key) != value:
                raise _refuse(layer, _mismatch(key, c.get(key), value, first))


def _mismatch(key: str, got: object, wanted: object, first: KerasObject) -> str:
    """Why a recurrent layer's setting is refused, in one phrase."""
    if key == "units":
        return f"has {got} units and {_named(first)} {wanted}: every recurrent layer must have the same units"
    if key == "stateful":
        return f"has stateful={got} and {_named(first)} stateful={wanted}: all stateful, or none"
    if key == "return_sequences":
        return f"has return_sequences={got}: every recurrent layer but the last must return its sequence"
    return f"has {key}={got!r}; import implements {key}={wanted!r} only"


def _check_dense(dense: KerasObject) -> None:
    c = dense.get_config()
    if c.get("units") != 1:
        raise _refuse(dense, f"has {c.get('units')} units; import takes a final Dense(1)")
    if c.get("activation") != "linear":
        raise _refuse(dense, f"has activation {c.get('activation')!r}; import implements a linear Dense only")


def _check_dtypes(stack: Stack) -> None:
    """Float32 or float64 layers only: a float16 (mixed precision) one computes too coarsely to reproduce."""
    for layer in (stack.normalization, *stack.recurrent, stack.dense, stack.rescaling):
        if layer is not None and layer.compute_dtype not in ("float32", "float64"):
            raise _refuse(layer, f"computes in {layer.compute_dtype}; import reproduces float32 models (or float64)")


def _input_shape(model: KerasObject, first: KerasObject) -> tuple[int, int, int | None]:
    """(lahead, F, B or None) from the input shape (B, lahead, F); lahead and F must be fixed."""
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 3:
        raise _refuse(first, f"takes inputs of shape {shape}: {_TAKES} windows (batch, lahead, features)")
    batch, lahead, features = shape
    if lahead is None or features is None:
        what = "the window length" if lahead is None else "the number of features"
        raise _refuse(first, f"takes windows of shape {shape}: {what} must be fixed")
    return lahead, features, batch


def _values(keras: ModuleType, value: object) -> np.ndarray:
    """A Keras tensor, variable, list or number -> a flat float64 array."""
    return np.asarray(keras.ops.convert_to_numpy(value), np.float64).reshape(-1)


def _scaling(keras: ModuleType, stack: Stack, n_features: int) -> Scaling:
    """The saved scaling: the inputs' from the Normalization, the target's from the Rescaling."""
    input_mean, input_scale = _input_scaling(keras, stack.normalization, n_features)
    return Scaling(input_mean, input_scale, *_target_scaling(keras, stack.rescaling))


def _input_scaling(
    keras: ModuleType, norm: KerasObject, n_features: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, scale) per input column from a Normalization on the last axis; identity if None."""
    if norm is None:
        return (0.0,) * n_features, (1.0,) * n_features
    c = norm.get_config()
    if c.get("invert") or tuple(c.get("axis") or ()) not in ((-1,), (2,)):
        raise _refuse(norm, f"has axis={c.get('axis')} invert={c.get('invert')}; import takes axis=-1, not inverted")
    if norm.mean is None or norm.variance is None:
        raise _refuse(norm, "has no mean and variance (it was never adapted)")
    mean, variance = _values(keras, norm.mean), _values(keras, norm.variance)
    if mean.size not in (1, n_features) or variance.size not in (1, n_features):
        raise _refuse(norm, f"holds {mean.size} means for {n_features} input(s)")
    # Keras divides by max(sqrt(variance), epsilon).
    scale = np.maximum(np.sqrt(variance), keras.backend.epsilon())
    mean, scale = np.broadcast_to(mean, (n_features,)), np.broadcast_to(scale, (n_features,))
    return tuple(float(v) for v in mean), tuple(float(v) for v in scale)


def _target_scaling(keras: ModuleType, rescale: KerasObject) -> tuple[float, float]:
    """(mean, scale) of the target from a scalar Rescaling (y * scale + offset); identity if None."""
    if rescale is None:
        return 0.0, 1.0
    scale, offset = _values(keras, rescale.scale), _values(keras, rescale.offset)
    if scale.size != 1 or offset.size != 1:
        raise _refuse(rescale, f"has {scale.size} scales and {offset.size} offsets; import takes one of each")
    return float(offset[0]), float(scale[0])


def _weights(layer: KerasObject, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """The layer's arrays as float32, kernel(s) then bias; a missing bias (use_bias=False) is zeros."""
    arrays = [np.asarray(w, np.float32) for w in layer.get_weights()]
    if len(arrays) == len(shapes) - 1:
        arrays.append(np.zeros(shapes[-1], np.float32))
    if [a.shape for a in arrays] != shapes:
        raise _refuse(layer, f"holds arrays {[a.shape for a in arrays]}; expected {shapes}")
    return arrays


def _params(stack: Stack, cfg: ModelConfig) -> cells.ModelParams:
    """Our parameter pytree from the layers (Keras's layouts are ours: no transpose)."""
    template = cells.init_params(np.random.default_rng(0), cfg)  # the shapes every array must have
    layers = tuple(
        type(cell)(*_weights(layer, [np.shape(a) for a in cell]))
        for layer, cell in zip(stack.recurrent, template.cells, strict=True)
    )
    dense = cells.DenseParams(*_weights(stack.dense, [np.shape(a) for a in template.dense]))
    return cells.ModelParams(layers, dense)


def _data(path: Path, lahead: int, order: str, inputs: tuple[str, ...], batch_size: int, layout: str) -> DataConfig:
    """What the file says of the data (see the module's docstring); the rest stays default."""
    input_len = max(DataConfig().input_len, lahead, 5 * batch_size)  # 5 B rows: a valid train/test split
    return DataConfig(
        input_len=input_len,
        lahead=lahead,
        batch_size=batch_size,
        layout=layout,
        order=order,
        file=str(path),
        input_cols=inputs,
    )


def _inputs(inputs: tuple[str, ...] | None, n_features: int) -> tuple[str, ...]:
    if inputs is None:
        return ("x",) if n_features == 1 else tuple(f"x{i + 1}" for i in range(n_features))
    if len(inputs) != n_features:
        raise ConfigError("input", f"names {len(inputs)} column(s); the Keras model takes {n_features} input(s)")
    return inputs


def read_keras(
    path: Path, order: str = "oldest-first", inputs: tuple[str, ...] | None = None, layout: str = "interleaved"
) -> SavedModel:
    """The Keras model in ``path`` as a ``SavedModel`` (in memory; see the module's docstring).

    order: how the Keras model was fed each window; inputs: names of its F input columns;
    layout: what the rows of a stateful model's fixed batch were (see the module's docstring).
    """
    require_choice("order", order, ORDERS)
    require_choice("layout", layout, LAYOUTS)
    keras = keras_module(PARAM)
    path = Path(path)
    loaded = _load(keras, path)
    stack = _stack(keras, _chain(keras, loaded))
    _check_recurrent(stack.recurrent)
    _check_dense(stack.dense)
    _check_dtypes(stack)
    head = stack.recurrent[0]
    first = head if stack.normalization is None else stack.normalization
    lahead, n_features, batch = _input_shape(loaded, first)
    cell, stateful = CELLS[type(head).__name__], bool(head.stateful)
    cfg = ModelConfig(units=head.units, n_features=n_features, cell=cell, layers=len(stack.recurrent))
    batch_size = (batch or 1) if stateful else 1
    data = _data(path, lahead, order, _inputs(inputs, n_features), batch_size, layout)
    scaling = _scaling(keras, stack, n_features)
    mode = "stateful" if stateful else "stateless"
    return SavedModel(_params(stack, cfg), cfg, data, mode, scaling, seed_index=0)


def import_keras_file(
    path: Path,
    out: Path,
    order: str = "oldest-first",
    inputs: tuple[str, ...] | None = None,
    layout: str = "interleaved",
) -> SavedModel:
    """``read_keras(path, order, inputs, layout)`` written as the model directory ``out``, which must
    not exist or be empty. The directory is written whole under a temporary name beside
    ``out`` and renamed into place: a failure leaves no directory behind."""
    out = Path(out).absolute()  # "." has no name to put a temporary beside
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise ConfigError("out", f"{str(out)!r} exists; give a new (or empty) directory for the model")
    model = read_keras(path, order, inputs, layout)
    save_imported(model, out)
    return model


def save_imported(model: SavedModel, out: Path) -> None:
    """Write ``model`` as the directory ``out`` (its parents made as needed), whole: under a
    temporary name beside it, then renamed into place."""
    cfg = ExperimentConfig(data=model.data, model=model.model, seeds=1)
    saved = {"mode": model.mode, "seed_index": model.seed_index, "scaling": model.scaling, "metrics": {}}
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()  # ours alone: an existing one (never in practice) is an error, not reused
    except OSError as e:
        raise _unwritable(out, e) from None
    try:
        model_io.save_model(tmp, model.params, cfg, saved)
        os.replace(tmp, out)  # onto an empty directory too (POSIX)
    except OSError as e:
        raise _unwritable(out, e) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)


def _unwritable(out: Path, e: OSError) -> ConfigError:
    return ConfigError("out", f"cannot write the model directory {str(out)!r}: {e.strerror or e}")
