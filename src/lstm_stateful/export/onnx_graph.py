"""A saved model as an ONNX graph that takes one time step for B streams, with the stream's
state as explicit inputs and outputs, and ``OnnxPredictor``, which runs such a file under
ONNX Runtime.

The graph reproduces ``models.stream.Predictor`` step for step (read that module first):

    inputs   x (B, F) float32, raw units, and the state tensors (``state_tensors``)
    outputs  y (B, 1) float32, raw units (NaN where the Predictor predicts NaN), and
             ``next_<name>`` for each state tensor

B is a dynamic dimension; zero tensors of the listed shapes are every stream's initial
state. Inside the graph: the transform of the raw row (diff, log-diff, against the raw rows
kept in ``history``; float64), the scaling, the window (model units, the model's window
order), the recurrent stack (ONNX's own LSTM / GRU with ``linear_before_reset=1`` / RNN, the
Keras weights reordered), the Dense readout, and the way back to the data's units (float64).
Counters are int64 and tell which parts of the state are valid: ``filled`` (rows in the
window), ``steps`` (full windows seen: a stateful model trained interleaved at batch size S
keeps S states per stream and its n-th full window uses slot n mod S), ``seen`` (raw rows
fed). A stateless model carries no recurrent state: those tensors are left out.

The T-step variant (``chunk``) is an ONNX ``Scan`` over x (B, T, F) with the one-step graph as
its body: y (B, T), and the same state tensors. The graph's metadata holds the model's config,
mode and scaling, the state tensors (name, output, shape with "B", dtype) and a SHA-256 of the
graph and the rest of the metadata, which ``OnnxPredictor`` checks, so a truncated or edited
file is refused in one line.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import asdict
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from lstm_stateful import __version__
from lstm_stateful.core.cells import CARRY_TYPES, CellParams, GRUParams, LSTMParams
from lstm_stateful.core.config import DataConfig, ModelConfig, require_int
from lstm_stateful.core.errors import ConfigError, foreign
from lstm_stateful.io.atomic import write_bytes_atomic, write_with
from lstm_stateful.models.model_io import SavedModel
from lstm_stateful.models.stream import as_table, check_values, history_depth, slots

ONNX_EXTRA = "ONNX export needs the onnx extra: pip install 'lstm-stateful[onnx]'"
FORMAT = "lstm-stateful/onnx"
FORMAT_VERSION = 1
# The metadata key of the checksum over the graph and the rest of the metadata.
CHECKSUM_KEY = "sha256"
# Opset 17 and IR version 8 (the IR that introduced it): what most runtimes of the last years read.
OPSET = 17
IR_VERSION = 8
# ONNX TensorProto element types (fixed by the format).
_FLOAT, _INT64, _DOUBLE = 1, 7, 11
_DTYPES = {"float32": _FLOAT, "int64": _INT64}


def import_onnx() -> tuple[ModuleType, ModuleType]:
    """``onnx`` and ``onnxruntime``, or a one-line error naming the extra that installs them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as e:
        missing = (e.name or "").partition(".")[0] in ("onnx", "onnxruntime")
        raise ConfigError("format", ONNX_EXTRA if missing else f"cannot import {e.name}: {e}") from None
    return onnx, onnxruntime


class StateTensor(NamedTuple):
    """One state tensor of the graph: input ``name``, output ``output``, ``shape`` with "B"
    for the streams' axis, ``dtype`` ("float32" or "int64")."""

    name: str
    output: str
    shape: tuple[int | str, ...]
    dtype: str


def state_tensors(model: SavedModel) -> tuple[StateTensor, ...]:
    """The state a stream carries, in the graph's input order.

    window ("B", lahead, F) float32, the latest input rows in model units, newest first;
    filled ("B",) int64; steps ("B",) int64 where there are several slots; per layer k of a
    stateful model ``layer{k}_h`` (and ``layer{k}_c`` for an LSTM) ("B", slots, units);
    with a transform, history ("B", depth, F) float32, the latest raw rows, oldest first, and
    seen ("B",) int64.
    """
    d, m, s = model.data, model.model, slots(model)
    found: list[tuple[str, tuple[int | str, ...], str]] = [
        ("window", ("B", d.lahead, m.n_features), "float32"),
        ("filled", ("B",), "int64"),
    ]
    if s > 1:
        found.append(("steps", ("B",), "int64"))
    if model.mode == "stateful":
        parts = CARRY_TYPES[m.cell]._fields
        found += [(f"layer{k}_{p}", ("B", s, m.units), "float32") for k in range(m.layers) for p in parts]
    if d.transform != "none":
        found += [("history", ("B", history_depth(model), m.n_features), "float32"), ("seen", ("B",), "int64")]
    return tuple(StateTensor(name, f"next_{name}", shape, dtype) for name, shape, dtype in found)


class _Builder:
    """The nodes of one graph and the initializers of the whole model, every value named once.

    ``sub()`` starts a subgraph (a Scan body): its own nodes, the same initializers (a body
    reads them from the outer scope) and the same name counter.
    """

    def __init__(self, onnx: ModuleType, initializers: list | None = None, counter: list[int] | None = None) -> None:
        self.onnx = onnx
        self.nodes: list = []
        self.initializers = [] if initializers is None else initializers
        self._counter = [0] if counter is None else counter

    def sub(self) -> _Builder:
        return _Builder(self.onnx, self.initializers, self._counter)

    def fresh(self, hint: str) -> str:
        self._counter[0] += 1
        return f"{hint}_{self._counter[0]}"

    def const(self, value: np.ndarray | int | list[int], hint: str = "const") -> str:
        """An initializer: integers as int64, arrays of any other dtype as given."""
        arr = np.asarray(value)
        arr = arr.astype(np.int64) if arr.dtype.kind in "iu" else arr
        name = self.fresh(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def node(self, op_type: str, inputs: list[str], outputs: list[str], **attrs: Any) -> list[str]:
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, outputs, **attrs))
        return outputs

    def ops(self, op_type: str, inputs: list[str], n_out: int, **attrs: Any) -> list[str]:
        return self.node(op_type, inputs, [self.fresh(op_type.lower()) for _ in range(n_out)], **attrs)

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs: Any) -> str:
        return self.node(op_type, list(inputs), [out or self.fresh(op_type.lower())], **attrs)[0]

    def unsqueeze(self, value: str, *axes: int) -> str:
        return self.op("Unsqueeze", value, self.const(list(axes), "axes"))

    def double(self, value: str) -> str:
        return self.op("Cast", value, to=_DOUBLE)


class _Prepared(NamedTuple):
    """One raw row made ready for the model: z (B, F) float32 model units; ok (B,) bool,
    whether the stream takes the row (None: always); reference (B,) float64, r_t (None
    without a transform); known (B,) bool, where r_t exists (None: everywhere); the next
    history and seen (None without a transform)."""

    z: str
    ok: str | None
    reference: str | None
    known: str | None
    history: str | None
    seen: str | None


def _g(b: _Builder, transform: str, value: str) -> str:
    """core.transform.g: log for log-diff, the identity for diff."""
    return b.op("Log", value) if transform == "log-diff" else value


def _reference(b: _Builder, d: DataConfig, x64: str, history: str, seen: str) -> tuple[str, str | None]:
    """r_t (B,) float64 and where it is known: forecast, x_t's first input; moving average,
    the mean of the ``tsteps`` raw first-input values before t (history holds exactly those)."""
    if d.task == "forecast":
        return b.op("Gather", x64, b.const(0, "first"), axis=1), None
    first = b.double(b.op("Gather", history, b.const(0, "first"), axis=2))  # (B, tsteps)
    known = b.op("GreaterOrEqual", seen, b.const(d.tsteps, "tsteps"))
    return b.op("ReduceMean", first, axes=[1], keepdims=0), known


def _prepare(b: _Builder, model: SavedModel, x: str, state: dict[str, str]) -> _Prepared:
    """Raw row x (B, F) float32 -> the model's input (stream.prepare): the transform against
    the previous raw row, then the scaling, in float64; zeros where the stream takes no row."""
    d, s = model.data, model.scaling
    x64 = b.double(x)
    prepared = _Prepared("", None, None, None, None, None)
    if d.transform != "none":
        history, seen = state["history"], state["seen"]
        depth = history_depth(model)
        previous = b.double(b.op("Gather", history, b.const(depth - 1, "last"), axis=1))
        ok = b.op("Greater", seen, b.const(0, "zero"))
        reference, known = _reference(b, d, x64, history, seen)
        kept = b.op("Slice", history, b.const([1], "start"), b.const([depth], "end"), b.const([1], "axis"))
        rows = b.op("Concat", kept, b.unsqueeze(x, 1), axis=1)
        prepared = _Prepared("", ok, reference, known, rows, b.op("Add", seen, b.const(1, "one")))
        x64 = b.op("Sub", _g(b, d.transform, x64), _g(b, d.transform, previous))
    mean, scale = np.asarray(s.input_mean, np.float64), np.asarray(s.input_scale, np.float64)
    z = b.op("Cast", b.op("Div", b.op("Sub", x64, b.const(mean, "mean")), b.const(scale, "scale")), to=_FLOAT)
    if prepared.ok is not None:
        z = b.op("Where", b.unsqueeze(prepared.ok, 1), z, b.const(np.zeros((1, 1), np.float32), "zeros"))
    return prepared._replace(z=z)


def _window(b: _Builder, d: DataConfig, z: str, window: str, filled: str) -> tuple[str, str, str, str]:
    """The window with z pushed in (newest first), the filled count, ready (B,) bool, and the
    sequence the cells read, (lahead, B, F) in the model's window order."""
    if d.lahead == 1:
        new = b.unsqueeze(z, 1)
    else:
        older = b.op("Slice", window, b.const([0], "start"), b.const([d.lahead - 1], "end"), b.const([1], "axis"))
        new = b.op("Concat", b.unsqueeze(z, 1), older, axis=1)
    lahead = b.const(d.lahead, "lahead")
    count = b.op("Min", b.op("Add", filled, b.const(1, "one")), lahead)
    ready = b.op("GreaterOrEqual", count, lahead)
    seq = new
    if d.order == "oldest-first" and d.lahead > 1:
        seq = b.op("Gather", new, b.const(list(range(d.lahead - 1, -1, -1)), "reverse"), axis=1)
    return new, count, ready, b.op("Transpose", seq, perm=[1, 0, 2])


def _weights(b: _Builder, params: CellParams) -> tuple[str, str, str, str]:
    """A Keras cell's arrays as ONNX's W, R, B (one direction) and the op type. Keras's LSTM
    gates i, f, c, o are ONNX's i, o, f, c; GRU's z, r, h are in ONNX's order; the bias row
    is [Wb, Rb] (Keras's LSTM and SimpleRNN have one bias: Rb = 0)."""
    kernel, recurrent = np.asarray(params.kernel), np.asarray(params.recurrent_kernel)
    bias = np.asarray(params.bias)
    if isinstance(params, LSTMParams):
        u = recurrent.shape[0]
        order = np.r_[0:u, 3 * u : 4 * u, u : 2 * u, 2 * u : 3 * u]
        kernel, recurrent, bias = kernel[:, order], recurrent[:, order], np.r_[bias[order], np.zeros_like(bias)]
        op = "LSTM"
    elif isinstance(params, GRUParams):
        bias, op = bias.reshape(-1), "GRU"
    else:
        bias, op = np.r_[bias, np.zeros_like(bias)], "RNN"
    arrays = (kernel.T[None], recurrent.T[None], bias[None])
    w, r, bb = (b.const(np.ascontiguousarray(a, np.float32), name) for a, name in zip(arrays, "WRB", strict=True))
    return w, r, bb, op


def _slot_starts(b: _Builder, state: dict[str, str], n_slots: int) -> tuple[str | None, str | None]:
    """The slot each stream uses now, (B, 1) int64 for GatherND, and the (B, S, 1) one-hot of
    it; None for one slot."""
    if n_slots == 1:
        return None, None
    slot = b.op("Mod", state["steps"], b.const(n_slots, "slots"))
    onehot = b.op("Equal", b.unsqueeze(slot, 1), b.const(np.arange(n_slots)[None], "slot_ids"))
    return b.unsqueeze(slot, 1), b.unsqueeze(onehot, 2)


def _layer_start(b: _Builder, carry: str, slot: str | None) -> str:
    """A layer's state for this step, (1, B, units), from its (B, S, units) slots."""
    start = (
        b.op("Gather", carry, b.const(0, "slot0"), axis=1)
        if slot is None
        else b.op("GatherND", carry, slot, batch_dims=1)
    )
    return b.unsqueeze(start, 0)


def _stack(
    b: _Builder, model: SavedModel, seq: str, state: dict[str, str], slot: str | None
) -> tuple[str, dict[str, str]]:
    """The recurrent layers over the window: seq (lahead, B, F) -> the last layer's final h
    (B, units) and, for a stateful model, each carried state's new value (B, units) by name."""
    stateful, new = model.mode == "stateful", {}
    last = ""
    for k, params in enumerate(model.params.cells):
        w, r, bias, op = _weights(b, params)
        parts = CARRY_TYPES[model.model.cell]._fields
        starts = [_layer_start(b, state[f"layer{k}_{p}"], slot) for p in parts] if stateful else []
        attrs = {"linear_before_reset": 1} if op == "GRU" else {}
        inputs = [seq, w, r, bias, *(["", *starts] if starts else [])]  # "" : no sequence_lens
        y, *finals = b.ops(op, inputs, 1 + len(parts), hidden_size=model.model.units, **attrs)
        seq = b.op("Squeeze", y, b.const([1], "axes"))  # (lahead, 1, B, u) -> the next layer's input
        for p, value in zip(parts, finals, strict=True):
            new[f"layer{k}_{p}"] = b.op("Squeeze", value, b.const([0], "axes"))
        last = new[f"layer{k}_h"]
    return last, new if stateful else {}


def _readout(b: _Builder, model: SavedModel, h: str) -> str:
    """The Dense on the last layer's h (B, units) -> (B, 1) float32, model units."""
    dense = model.params.dense
    kernel, bias = np.asarray(dense.kernel, np.float32), np.asarray(dense.bias, np.float32)
    return b.op("Add", b.op("MatMul", h, b.const(kernel, "dense_kernel")), b.const(bias, "dense_bias"))


def _output(b: _Builder, model: SavedModel, pred: str, live: str, p: _Prepared) -> str:
    """pred (B, 1) model units -> y (B, 1) float32 in the data's units (float64 on the way:
    the scaling back, then g^-1(g(r) + z)); NaN where no prediction is made or r is unknown."""
    s, transform = model.scaling, model.data.transform
    scale, mean = np.asarray(s.target_scale, np.float64), np.asarray(s.target_mean, np.float64)
    y = b.op("Add", b.op("Mul", b.double(pred), b.const(scale, "target_scale")), b.const(mean, "target_mean"))
    valid = live
    if p.reference is not None:
        y = b.op("Add", _g(b, transform, b.unsqueeze(p.reference, 1)), y)
        y = b.op("Exp", y) if transform == "log-diff" else y
        valid = valid if p.known is None else b.op("And", valid, p.known)
    nan = b.const(np.full((1, 1), np.nan, np.float32), "nan")
    return b.op("Where", b.unsqueeze(valid, 1), b.op("Cast", y, to=_FLOAT), nan)


def _carried(b: _Builder, new: dict[str, str], state: dict[str, str], live: str, onehot: str | None) -> dict[str, str]:
    """Each layer state's slots (B, S, units) with the new value (B, units) in the slot used,
    where the stream made a prediction (its window full, its row taken)."""
    mask = b.unsqueeze(live, 1, 2)
    mask = mask if onehot is None else b.op("And", mask, onehot)  # (B, S, 1)
    return {name: b.op("Where", mask, b.unsqueeze(value, 1), state[name]) for name, value in new.items()}


def _step(b: _Builder, model: SavedModel, x: str, state: dict[str, str]) -> tuple[str, dict[str, str]]:
    """One time step (stream.stream_chunk's step, with the Predictor's conversions): x (B, F)
    float32 raw and the state by name -> y (B, 1) float32 raw and the next state by name."""
    p = _prepare(b, model, x, state)
    window, filled, ready, seq = _window(b, model.data, p.z, state["window"], state["filled"])
    live = ready if p.ok is None else b.op("And", ready, p.ok)
    slot, onehot = _slot_starts(b, state, slots(model))
    h, new = _stack(b, model, seq, state, slot)
    y = _output(b, model, _readout(b, model, h), live, p)
    if p.ok is not None:
        # A stream takes no row only at its first point: its window is all zeros, and the
        # zero row pushed in leaves it so; only the count must not move.
        filled = b.op("Where", p.ok, filled, state["filled"])
    nxt = {"window": window, "filled": filled} | _carried(b, new, state, live, onehot)
    if "steps" in state:
        nxt["steps"] = b.op("Add", state["steps"], b.op("Cast", live, to=_INT64))
    if p.history is not None and p.seen is not None:
        nxt |= {"history": p.history, "seen": p.seen}
    return y, nxt


def _value_info(onnx: ModuleType, name: str, dtype: str, shape: tuple[int | str, ...]) -> Any:
    return onnx.helper.make_tensor_value_info(name, _DTYPES[dtype], list(shape))


def _step_graph(b: _Builder, model: SavedModel, body: bool) -> Any:
    """The one-step graph (a ``GraphProto``) with the model's initializers: inputs x then the
    state, outputs y then the next state. As a Scan ``body``: its names prefixed (they must
    differ from the outer graph's), the state before x and y (Scan's order), no initializers
    (the outer graph holds them)."""
    tensors, f, prefix = state_tensors(model), model.model.n_features, "step_" if body else ""
    y, nxt = _step(b, model, f"{prefix}x", {t.name: f"{prefix}{t.name}" for t in tensors})
    b.op("Identity", y, out=f"{prefix}y")
    for t in tensors:
        b.op("Identity", nxt[t.name], out=f"{prefix}{t.output}")
    x = [_value_info(b.onnx, f"{prefix}x", "float32", ("B", f))]
    state = [_value_info(b.onnx, f"{prefix}{t.name}", t.dtype, t.shape) for t in tensors]
    y_info = [_value_info(b.onnx, f"{prefix}y", "float32", ("B", 1))]
    nxt_info = [_value_info(b.onnx, f"{prefix}{t.output}", t.dtype, t.shape) for t in tensors]
    inputs, outputs = (state + x, nxt_info + y_info) if body else (x + state, y_info + nxt_info)
    held = [] if body else b.initializers
    return b.onnx.helper.make_graph(b.nodes, f"{prefix}lstm_stateful_step", inputs, outputs, initializer=held)


def _chunk_graph(b: _Builder, model: SavedModel, chunk: int) -> Any:
    """x (B, T, F) -> y (B, T): a Scan over T with the one-step graph as its body."""
    tensors, f = state_tensors(model), model.model.n_features
    body = _step_graph(b.sub(), model, body=True)
    states, outputs = [t.name for t in tensors], [t.output for t in tensors]
    attrs = {"num_scan_inputs": 1, "scan_input_axes": [1], "scan_output_axes": [1]}
    b.node("Scan", [*states, "x"], [*outputs, "y_steps"], body=body, **attrs)  # y_steps (B, T, 1)
    b.op("Squeeze", "y_steps", b.const([2], "axes"), out="y")
    inputs = [_value_info(b.onnx, "x", "float32", ("B", chunk, f))]
    inputs += [_value_info(b.onnx, t.name, t.dtype, t.shape) for t in tensors]
    results = [_value_info(b.onnx, "y", "float32", ("B", chunk))]
    results += [_value_info(b.onnx, t.output, t.dtype, t.shape) for t in tensors]
    return b.onnx.helper.make_graph(b.nodes, "lstm_stateful_chunk", inputs, results, initializer=b.initializers)


def _checksum(graph: Any, meta: dict[str, str]) -> str:
    """SHA-256 of a GraphProto's deterministic serialization (nodes, weights, names and
    shapes) and of the metadata beside it (every key but this checksum's), so that an edit
    to either is caught."""
    digest = hashlib.sha256(graph.SerializeToString(deterministic=True))
    digest.update(json.dumps({k: v for k, v in meta.items() if k != CHECKSUM_KEY}, sort_keys=True).encode())
    return digest.hexdigest()


def _metadata(model: SavedModel, chunk: int | None) -> dict[str, str]:
    """What the graph's metadata_props hold, every value a string (JSON where structured)."""
    config = {"data": asdict(model.data), "model": asdict(model.model)}
    return {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config": json.dumps(config),
        "mode": model.mode,
        "seed_index": str(model.seed_index),
        "scaling": json.dumps(model.scaling._asdict()),
        "slots": str(slots(model)),
        "steps": str(chunk or 1),
        "state": json.dumps([t._asdict() for t in state_tensors(model)]),
    }


def build_onnx(model: SavedModel, chunk: int | None = None) -> Any:
    """The model as an ``onnx.ModelProto``: the one-step graph, or with ``chunk`` the T-step
    one (x (B, T, F), y (B, T), T = chunk). Pure: writes nothing."""
    onnx, _ = import_onnx()
    if chunk is not None:
        require_int("chunk", chunk)
    b = _Builder(onnx)
    graph = _step_graph(b, model, body=False) if chunk is None else _chunk_graph(b, model, chunk)
    return packaged(onnx, graph, _metadata(model, chunk))


def packaged(onnx: ModuleType, graph: Any, meta: dict[str, str]) -> Any:
    """A graph as an ``onnx.ModelProto`` of our opset and IR version, with its metadata and
    the checksum over both."""
    proto = onnx.helper.make_model(
        graph,
        opset_imports=[onnx.helper.make_opsetid("", OPSET)],
        producer_name="lstm-stateful",
        producer_version=__version__,
        ir_version=IR_VERSION,
    )
    onnx.helper.set_model_props(proto, meta | {CHECKSUM_KEY: _checksum(graph, meta)})
    return proto


def chunk_path(path: Path, chunk: int) -> Path:
    """Where the T-step graph goes beside ``path``: model.onnx -> model.chunk16.onnx."""
    path = Path(path)
    return path.with_name(f"{path.stem}.chunk{chunk}{path.suffix}")


def write_onnx(model: SavedModel, path: Path, chunk: int | None = None) -> tuple[Path, ...]:
    """Write the one-step graph to ``path`` and, with ``chunk``, the T-step one to
    ``chunk_path(path, chunk)``; each checked by ``onnx.checker`` (full check) before any is
    written, each written atomically. Returns the files written."""
    path = Path(path)
    graphs = [(path, build_onnx(model))]
    if chunk is not None:
        graphs.append((chunk_path(path, chunk), build_onnx(model, chunk)))
    return write_checked(graphs)


def write_checked(graphs: list[tuple[Path, Any]]) -> tuple[Path, ...]:
    """Write each (path, ModelProto), all checked by ``onnx.checker`` (full check) before any
    is written, each atomically (``_write_all``). Returns the files written."""
    onnx, _ = import_onnx()
    for _, proto in graphs:
        onnx.checker.check_model(proto, full_check=True)
    try:
        _write_all(graphs)
    except OSError as e:
        raise ConfigError("out", f"cannot write {str(e.filename or graphs[0][0])!r}: {e.strerror or e}") from None
    return tuple(target for target, _ in graphs)


def _write_all(graphs: list[tuple[Path, Any]]) -> None:
    """Write every graph, each atomically; the first is renamed into place only after the others
    are, so a failure leaves the old first file (or none) beside whatever others succeeded."""
    (first, proto), rest = graphs[0], graphs[1:]

    def write(tmp: Path) -> None:
        tmp.write_bytes(proto.SerializeToString())
        for target, other in rest:
            write_bytes_atomic(target, other.SerializeToString())

    write_with(first, write)


class GraphInfo(NamedTuple):
    """What ``OnnxPredictor`` reads from a graph's metadata: inputs per row, the transform
    (which values are allowed), steps per call (1, or the chunk's T) and the state tensors."""

    n_features: int
    transform: str
    steps: int
    state: tuple[StateTensor, ...]


def _bad(path: Path, problem: str) -> ConfigError:
    return ConfigError("model", f"{str(path)!r}: {problem}")


def _read_graph(onnx: ModuleType, path: Path) -> tuple[Any, bytes]:
    """The file's bytes and its ModelProto, or one line saying why it is not one."""
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise _bad(path, f"cannot be read ({e.strerror or e})") from None
    decode_error = importlib.import_module("google.protobuf.message").DecodeError  # onnx's own dependency
    try:
        return onnx.load_model_from_string(blob), blob
    except decode_error as e:
        raise _bad(path, f"is not an ONNX file, or is truncated ({foreign(str(e))})") from None


def _graph_info(proto: Any, path: Path) -> GraphInfo:
    """The metadata of a graph ``write_onnx`` wrote, checked against its checksum."""
    meta = {p.key: p.value for p in proto.metadata_props}
    if meta.get("format") != FORMAT:
        raise _bad(path, f"is not an lstm-stateful graph (metadata format {FORMAT!r} expected)")
    if meta.get("format_version") != str(FORMAT_VERSION):
        problem = f"has format version {meta.get('format_version')!r}; this lstm-stateful reads {FORMAT_VERSION}"
        raise _bad(path, problem)
    if meta.get(CHECKSUM_KEY) != _checksum(proto.graph, meta):
        raise _bad(path, "does not match the checksum in its metadata: the file is corrupted or was modified")
    try:
        config = json.loads(meta["config"])
        model = ModelConfig(**config["model"])
        data = DataConfig(**(config["data"] | {"input_cols": tuple(config["data"]["input_cols"])}))
        state = tuple(
            StateTensor(t["name"], t["output"], tuple(t["shape"]), t["dtype"]) for t in json.loads(meta["state"])
        )
        return GraphInfo(model.n_features, data.transform, int(meta["steps"]), state)
    except (KeyError, TypeError, ValueError) as e:  # ConfigError and JSONDecodeError are ValueErrors
        raise _bad(path, f"holds invalid metadata ({e})") from None


def _session(ort: ModuleType, blob: bytes, path: Path, info: GraphInfo) -> Any:
    """An ONNX Runtime session on the CPU whose inputs and outputs are the metadata's."""
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings are about its own optimisations
    try:
        session = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # ONNX Runtime's errors are bare Exception subclasses of its own
        raise _bad(path, f"ONNX Runtime cannot run it ({foreign(' '.join(str(e).split()))})") from None
    inputs, outputs = [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]
    if inputs != ["x", *(t.name for t in info.state)] or outputs != ["y", *(t.output for t in info.state)]:
        raise _bad(path, f"has inputs {inputs} and outputs {outputs}, not the ones its metadata lists")
    return session


def _concrete(shape: tuple[int | str, ...], batch_size: int) -> tuple[int, ...]:
    """A state tensor's shape with its "B" axis set."""
    return tuple(d if isinstance(d, int) else batch_size for d in shape)


class OnnxPredictor:
    """A graph ``write_onnx`` wrote, run by ONNX Runtime for ``batch_size`` streams, the state
    carried from call to call (``Predictor``'s counterpart).

    >>> p = OnnxPredictor.load("model.onnx")      # doctest: +SKIP
    >>> p.predict(0.05)                           # one value -> one prediction

    Values take the Predictor's shapes (see ``Predictor.predict``) and are rounded to float32,
    the graph's input type; predictions are float64 with the values' shape. The one-step graph
    runs once per time step; a chunk graph once per T steps (the steps per stream must be a
    multiple of T). ``info`` is what the graph's metadata says (``GraphInfo``).
    """

    def __init__(self, session: Any, info: GraphInfo, batch_size: int = 1) -> None:
        self._session, self.info = session, info
        self._batch_size = 0  # set by reset
        self.reset(batch_size)

    @classmethod
    def load(cls, path: str | Path, batch_size: int = 1) -> OnnxPredictor:
        """Read and check a file ``write_onnx`` wrote (format, checksum, metadata, inputs and
        outputs); every problem with it is one ``ConfigError`` on ``model``."""
        onnx, ort = import_onnx()
        proto, blob = _read_graph(onnx, Path(path))
        info = _graph_info(proto, Path(path))
        return cls(_session(ort, blob, Path(path), info), info, batch_size)

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def state(self) -> dict[str, np.ndarray]:
        """The streams' state tensors now, by input name (copies)."""
        return {name: value.copy() for name, value in self._state.items()}

    def reset(self, batch_size: int | None = None) -> None:
        """Start every stream afresh (zero state), optionally with a new batch size."""
        b = self._batch_size if batch_size is None else batch_size
        require_int("batch_size", b)
        self._batch_size = b
        self._state = {t.name: np.zeros(_concrete(t.shape, b), t.dtype) for t in self.info.state}

    def predict(self, values: float | np.ndarray) -> np.ndarray:
        """Feed values (the Predictor's shapes) and return predictions, float64, one per time step and stream."""
        table, shape = as_table(np.asarray(values, np.float64), self.batch_size, self.info.n_features)
        check_values(table, self.info.transform)
        n, t = table.shape[1], self.info.steps
        if n % t:
            raise ConfigError("values", f"{n} steps per stream: this graph takes {t} per call (a multiple of {t})")
        rows = table.astype(np.float32)
        ys = [self._run(rows[:, i] if t == 1 else rows[:, i : i + t]) for i in range(0, n, t)]
        out = np.concatenate([y.reshape(self.batch_size, -1) for y in ys], axis=1) if ys else rows[..., 0]
        return out.astype(np.float64).reshape(shape)

    def _run(self, x: np.ndarray) -> np.ndarray:
        """One call: x (B, F) or (B, T, F) float32 -> y (B, 1) or (B, T); the state moves on."""
        names = [t.output for t in self.info.state]
        y, *nxt = self._session.run(["y", *names], {"x": x, **self._state})
        self._state = dict(zip((t.name for t in self.info.state), nxt, strict=True))
        return np.asarray(y)
