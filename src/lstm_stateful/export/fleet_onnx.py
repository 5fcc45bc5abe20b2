"""A fleet model as an ONNX graph of one step for B series, each series' state explicit.

The graph does what ``models.fleet_stream`` does for one value (read that module first):

    inputs   value (B,) float64, each series' next value in its data units;
             own (B,) bool, True to feed every seed its own forecast instead of ``value``
             (a recursive forecast rolled on: see below); then the state tensors
    outputs  forecast (B, head) float64: the next value (recursive, head 1) or the next H
             (direct) in the data units, the mean over the seeds, NaN until a season of
             values is there; then ``next_<name>`` for each state tensor

The state tensors (``fleet_state_tensors``) are each series' scaling (``loc``, ``scale``,
float64: the trained ones are in the metadata under ``series``; a new series sets its own
from its first values as ``predict`` does), the latest values of every seed (``recent``),
the counters ``seen`` and ``phase`` (the next value's place in the season, int64), the
cells' states of every seed (stateful) and every seed's latest output (``head``). A series
starts from zeros, with its scaling and the phase of its first value.

A recursive forecast of H values feeds the series' values (own False), then calls the graph
H - 1 more times on a copy of the state with own True, reading ``forecast`` each time: each
seed rolls on its own forecasts, as ``predict`` and ``serve`` do. Inside: the scaling, each
seed's lag-1 / lag-P / phase inputs, its recurrent stack (ONNX's LSTM, GRU with
``linear_before_reset=1`` or RNN, one step per node, masked as in training), its Dense, the
seasonal naive reference added back and the scaling undone. The metadata holds the fleet's
config, the state tensors and a SHA-256 over the graph and the metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from lstm_stateful.core.cells import CARRY_TYPES, CellParams
from lstm_stateful.export.onnx_graph import (
    _DOUBLE,
    _FLOAT,
    _INT64,
    StateTensor,
    _Builder,
    _weights,
    import_onnx,
    packaged,
    write_checked,
)
from lstm_stateful.models.fleet_model import FleetModel, n_seeds, new_series_values
from lstm_stateful.models.fleet_stream import shape_of

FORMAT = "lstm-stateful/fleet-onnx"
FORMAT_VERSION = 1
_BOOL = 9  # ONNX TensorProto BOOL


def fleet_state_tensors(model: FleetModel) -> tuple[StateTensor, ...]:
    """The state a series carries, in the graph's input order (see the module docstring)."""
    shape, seeds = shape_of(model), n_seeds(model)
    found: list[tuple[str, tuple[int | str, ...], str]] = [
        ("loc", ("B",), "float64"),
        ("scale", ("B",), "float64"),
        ("recent", ("B", seeds, shape.depth), "float32"),
        ("seen", ("B",), "int64"),
        ("phase", ("B",), "int64"),
    ]
    if shape.stateful:
        parts = CARRY_TYPES[shape.model.cell]._fields
        found += [(f"layer{k}_{p}", ("B", seeds, shape.model.units), "float32")
                  for k in range(shape.model.layers) for p in parts]  # fmt: skip
    found.append(("head", ("B", seeds, shape.head), "float32"))
    return tuple(StateTensor(name, f"next_{name}", shape_, dtype) for name, shape_, dtype in found)


class _Seed(NamedTuple):
    """One seed's slices of the state: recent (B, depth), head (B, head), carry by layer part (B, units)."""

    recent: str
    head: str
    carry: dict[str, str]


def _col(b: _Builder, value: str, index: int) -> str:
    """value[:, index] of a (B, n) tensor -> (B,)."""
    return b.op("Gather", value, b.const(index, "index"), axis=1)


def _to_model(b: _Builder, kind: str, value: str, loc: str, scale: str) -> str:
    """value (B,) float64 data units -> float32 model units (``PanelScaling.to_model``)."""
    if kind == "log":
        z = b.op("Sub", b.op("Log", b.op("Add", value, b.const(np.array(1.0), "one"))), loc)
    else:
        z = b.op("Div", b.op("Sub", value, loc), scale)
    return b.op("Cast", z, to=_FLOAT)


def _to_data(b: _Builder, kind: str, z: str, loc: str, scale: str) -> str:
    """z (B, n) float32 model units -> float64 data units (``PanelScaling.to_data``)."""
    z64, loc2, scale2 = b.op("Cast", z, to=_DOUBLE), b.unsqueeze(loc, 1), b.unsqueeze(scale, 1)
    if kind == "log":
        return b.op("Sub", b.op("Exp", b.op("Add", z64, loc2)), b.const(np.array(1.0), "one"))
    return b.op("Add", b.op("Mul", z64, scale2), loc2)


def _row(b: _Builder, recent: str, phase: str, back: int, period: int, depth: int) -> str:
    """The inputs of the step ``back`` before the next one: (B, F) float32 (``fleet_stream._row``)."""
    lag1 = b.unsqueeze(_col(b, recent, depth - 1 - back), 1)
    if period == 1:
        return lag1
    lagp = b.unsqueeze(_col(b, recent, depth - period - back), 1)
    place = b.op("Mod", b.op("Sub", phase, b.const(back, "back")), b.const(period, "period"))
    angle = b.op("Mul", b.op("Cast", place, to=_FLOAT), b.const(np.array(2 * np.pi / period, np.float32), "radians"))
    return b.op("Concat", lag1, lagp, b.unsqueeze(b.op("Sin", angle), 1), b.unsqueeze(b.op("Cos", angle), 1), axis=1)


def _cell(b: _Builder, params: CellParams, cell: str, units: int, x: str, carry: dict[str, str]
          ) -> dict[str, str]:  # fmt: skip
    """One step of one layer: x (B, n_in), its state by part (B, units) -> the new state."""
    w, r, bias, op = _weights(b, params)
    parts = CARRY_TYPES[cell]._fields
    attrs = {"linear_before_reset": 1} if op == "GRU" else {}
    starts = [b.unsqueeze(carry[p], 0) for p in parts]
    _, *finals = b.ops(op, [b.unsqueeze(x, 0), w, r, bias, "", *starts], 1 + len(parts), hidden_size=units, **attrs)
    return {p: b.op("Squeeze", value, b.const([0], "axes")) for p, value in zip(parts, finals, strict=True)}


def _stack_step(b: _Builder, model: FleetModel, s: int, x: str, carry: dict[str, str], ok: str
                ) -> tuple[dict[str, str], str]:  # fmt: skip
    """``panel_train._masked_step`` for seed s: every layer's new state where ok (B,), else
    the old; and the top layer's new h (B, units)."""
    cfg, new = model.config.model, dict[str, str]()
    for k, cells in enumerate(model.params.cells):
        params = type(cells)(*(np.asarray(a)[s] for a in cells))
        layer = _cell(
            b, params, cfg.cell, cfg.units, x, {p: carry[f"layer{k}_{p}"] for p in CARRY_TYPES[cfg.cell]._fields}
        )
        new |= {f"layer{k}_{p}": v for p, v in layer.items()}
        x = layer["h"]
    mask = b.unsqueeze(ok, 1)
    return {name: b.op("Where", mask, value, carry[name]) for name, value in new.items()}, x


def _head(b: _Builder, model: FleetModel, s: int, recent: str, carry: dict[str, str], seen: str, phase: str
          ) -> tuple[dict[str, str], str]:  # fmt: skip
    """Seed s's step after the newest value (``fleet_stream._head``): its state and output (B, head)."""
    shape = shape_of(model)
    if shape.stateful:
        ok = b.op("GreaterOrEqual", seen, b.const(shape.period, "period"))
        carry, h = _stack_step(b, model, s, _row(b, recent, phase, 0, shape.period, shape.depth), carry, ok)
    else:
        zeros = b.op(
            "Mul",
            b.unsqueeze(b.op("Cast", seen, to=_FLOAT), 1),
            b.const(np.zeros((1, shape.model.units), np.float32), "zeros"),
        )
        window = {
            f"layer{k}_{p}": zeros for k in range(shape.model.layers) for p in CARRY_TYPES[shape.model.cell]._fields
        }
        for back in range(shape.lahead - 1, -1, -1):
            ok = b.op("GreaterOrEqual", b.op("Sub", seen, b.const(back, "back")), b.const(shape.period, "period"))
            window, h = _stack_step(b, model, s, _row(b, recent, phase, back, shape.period, shape.depth), window, ok)
    dense = model.params.dense
    kernel, bias = np.asarray(dense.kernel[s], np.float32), np.asarray(dense.bias[s], np.float32)
    out = b.op("Add", b.op("MatMul", h, b.const(kernel, "dense_kernel")), b.const(bias, "dense_bias"))
    return carry, out


def _seed(b: _Builder, state: dict[str, str], s: int, names: list[str]) -> _Seed:
    """Seed s's slices of the (B, seeds, ...) state tensors."""

    def pick(name: str) -> str:
        return b.op("Gather", state[name], b.const(s, "seed"), axis=1)

    return _Seed(pick("recent"), pick("head"), {name: pick(name) for name in names})


def _forecast(b: _Builder, model: FleetModel, recent: str, head: str) -> str:
    """Seed's forecast (B, head) model units from its output: the change over the value a
    season back (recursive), or over the seasonal naive forecast (direct)."""
    shape = shape_of(model)
    p, depth = shape.period, shape.depth
    back = [p * -(-(j + 1) // p) - j for j in range(shape.head)]
    naive = b.op("Gather", recent, b.const(np.array([depth - k for k in back]), "naive"), axis=1)
    return b.op("Add", head, naive)


def _step(b: _Builder, model: FleetModel, state: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The graph's body: inputs ``value``, ``own`` and the state by name -> forecast (B, head)
    float64 and the next state by name."""
    shape, kind = shape_of(model), model.scaling.kind
    carry_names = [t.name for t in fleet_state_tensors(model) if t.name.startswith("layer")]
    z_in = _to_model(b, kind, "value", state["loc"], state["scale"])
    seen = b.op("Add", state["seen"], b.const(1, "one"))
    phase = b.op("Mod", b.op("Add", state["phase"], b.const(1, "one")), b.const(shape.period, "period"))
    valid = b.op("GreaterOrEqual", seen, b.const(shape.period, "period"))
    recents, heads, data = [], [], []
    carries: dict[str, list[str]] = {name: [] for name in carry_names}
    for s in range(n_seeds(model)):
        old = _seed(b, state, s, carry_names)
        own = _col(b, _forecast(b, model, old.recent, old.head), 0)
        z = b.unsqueeze(b.op("Where", "own", own, z_in), 1)
        recent = b.op(
            "Concat", b.op("Slice", old.recent, b.const([1]), b.const([shape.depth]), b.const([1])), z, axis=1
        )
        carry, out = _head(b, model, s, recent, old.carry, seen, phase)
        head = b.op("Where", b.unsqueeze(valid, 1), out, old.head)
        data.append(b.unsqueeze(_to_data(b, kind, _forecast(b, model, recent, head), state["loc"], state["scale"]), 0))
        recents.append(b.unsqueeze(recent, 1))
        heads.append(b.unsqueeze(head, 1))
        for name in carry_names:
            carries[name].append(b.unsqueeze(carry[name], 1))
    mean = b.op("ReduceMean", b.op("Concat", *data, axis=0), axes=[0], keepdims=0)  # axes an attribute in opset 17
    nan = b.const(np.full((1, 1), np.nan), "nan")
    forecast = b.op("Where", b.unsqueeze(valid, 1), mean, nan)
    nxt = {"loc": state["loc"], "scale": state["scale"], "seen": seen, "phase": phase}
    nxt |= {"recent": b.op("Concat", *recents, axis=1), "head": b.op("Concat", *heads, axis=1)}
    nxt |= {name: b.op("Concat", *parts, axis=1) for name, parts in carries.items()}
    return forecast, nxt


def _metadata(model: FleetModel) -> dict[str, str]:
    """The graph's metadata_props, every value a string (JSON where structured)."""
    c = model.clock
    series = {name: [float(model.scaling.loc[k]), float(model.scaling.scale[k])] for k, name in enumerate(model.ids)}
    return {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config": json.dumps(model.config.to_dict()),
        "mode": model.mode,
        "seeds": str(n_seeds(model)),
        "scaling": model.scaling.kind,
        "new_series_values": str(new_series_values(model)),
        "clock": json.dumps({"kind": c.kind, "origin": c.origin, "step": c.step, "day": c.day}),
        "series": json.dumps(series),
        "state": json.dumps([t._asdict() for t in fleet_state_tensors(model)]),
    }


def build_fleet_onnx(model: FleetModel) -> Any:
    """The fleet model's one-step graph as an ``onnx.ModelProto``. Pure: writes nothing."""
    onnx, _ = import_onnx()
    b = _Builder(onnx)
    tensors = fleet_state_tensors(model)
    forecast, nxt = _step(b, model, {t.name: t.name for t in tensors})
    b.op("Identity", forecast, out="forecast")
    for t in tensors:
        b.op("Identity", nxt[t.name], out=t.output)
    types = {"float32": _FLOAT, "float64": _DOUBLE, "int64": _INT64}

    def info(name: str, dtype: str, shape: tuple[int | str, ...]) -> Any:
        return onnx.helper.make_tensor_value_info(name, types[dtype], list(shape))

    inputs = [info("value", "float64", ("B",)), onnx.helper.make_tensor_value_info("own", _BOOL, ["B"])]
    inputs += [info(t.name, t.dtype, t.shape) for t in tensors]
    outputs = [info("forecast", "float64", ("B", shape_of(model).head))]
    outputs += [info(t.output, t.dtype, t.shape) for t in tensors]
    graph = onnx.helper.make_graph(b.nodes, "lstm_stateful_fleet_step", inputs, outputs, initializer=b.initializers)
    return packaged(onnx, graph, _metadata(model))


def write_fleet_onnx(model: FleetModel, path: Path) -> tuple[Path, ...]:
    """Write the one-step graph to ``path``, checked by ``onnx.checker`` (full check) first, atomically."""
    return write_checked([(Path(path), build_fleet_onnx(model))])
