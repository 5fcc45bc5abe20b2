"""A predict request's body, checked before anything is queued: ``{"seq": n, "values": [...]}``.

One input (F = 1): ``values`` is a list of numbers, or one bare number. F inputs: a list of
F-number lists (one per step), or one F-number list (one step). Every value must be a JSON
number (not a boolean, not null), finite within float32's range (the model computes in
float32; JSON's NaN and Infinity literals are refused, and so is 1e999, which parses to an
infinity), and positive for a log-diff model; at most ``max_chunk`` steps. Any problem is
a ``Rejected`` with a one-line reason, so that nothing of a bad request is applied.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

import numpy as np

from lstm_stateful.core.errors import ConfigError
from lstm_stateful.core.panel import Clock
from lstm_stateful.io.panel_file import stamp_ordinal
from lstm_stateful.models.stream import first_unusable
from lstm_stateful.serve.ops import Forecast, Predict, request_sha256, values_sha256

STREAM_ID = re.compile(r"[A-Za-z0-9._~-]{1,64}")
STREAM_ID_RULE = "1 to 64 characters, each a letter, digit, '.', '_', '~' or '-'"
# The largest float32: the model computes in float32, so a value beyond it is refused.
FLOAT32_MAX = float(np.finfo(np.float32).max)
_NUMBER = (int, float)


class Rejected(Exception):
    """A request refused: HTTP ``status`` and a one-line ``detail``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Limits(NamedTuple):
    """What a request may hold: the model's inputs per step, its transform, steps per
    request; learn_window: how many of a stream's latest values may take a target (0: the
    server does not learn, a request holds no targets); self_labelled: the model's targets
    are its own later values (they label themselves: a request holds no targets)."""

    n_features: int
    transform: str
    max_chunk: int
    learn_window: int = 0
    self_labelled: bool = False


def check_stream_id(stream: str) -> None:
    if STREAM_ID.fullmatch(stream) is None:
        raise Rejected(422, f"stream id: {stream[:80]!r} is not {STREAM_ID_RULE}")


def _no_constant(name: str) -> Any:
    """json.loads' hook for the non-standard literals NaN, Infinity and -Infinity: refused."""
    raise Rejected(422, f"body: holds {name}, which JSON does not allow; values must be finite numbers")


def _document(body: bytes, required: set[str], optional: set[str], shape: str) -> dict:
    """The body as a JSON object with the ``required`` fields and perhaps the ``optional``
    ones (``shape``: how it looks, for the error)."""
    try:
        doc = json.loads(body, parse_constant=_no_constant)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise Rejected(422, f"body: not valid JSON: {e}") from None
    except RecursionError:  # lists nested a thousand deep: no body of ours is
        raise Rejected(422, "body: nested too deeply; values are numbers, or lists of numbers") from None
    if not isinstance(doc, dict) or not required <= set(doc) <= required | optional:
        got = f"fields {sorted(doc)}" if isinstance(doc, dict) else f"a JSON {type(doc).__name__}"
        raise Rejected(422, f"body: must be an object {shape}, got {got}")
    return doc


def _whole(value: object) -> object:
    """A JSON number with no fraction as an int (JSON Schema's integers include 94.0); anything else as it is."""
    return int(value) if type(value) is float and value.is_integer() else value


def _seq(doc: dict) -> int:
    seq = _whole(doc["seq"])
    if type(seq) is not int or seq < 0:
        raise Rejected(422, f"seq: must be an integer >= 0 (the values this stream has had accepted), got {seq!r}")
    return seq


def parse_predict(stream: str, body: bytes, limits: Limits) -> Predict:
    """The body of ``POST /v1/streams/{stream}/predict`` -> a checked ``Predict``; else ``Rejected`` (422)."""
    check_stream_id(stream)
    doc = _document(body, {"seq", "values"}, {"targets"}, '{"seq": n, "values": [...], "targets"?: [...]}')
    seq = _seq(doc)
    values = _table(doc["values"], limits)
    _check_finite(values, limits.transform)
    if "targets" not in doc:
        return Predict(stream, seq, values, values_sha256(values))
    targets = _targets(doc["targets"], limits)
    return Predict(stream, seq, values, request_sha256(values, None, targets), targets=targets)


def _targets(items: object, limits: Limits) -> tuple[tuple[int, float], ...]:
    """``[{"seq": k, "value": y}, ...]``: targets of the stream's values k (whether each is
    one of its latest values, and had none yet, is the round's to check: 409 otherwise)."""
    k_max = limits.learn_window
    if not k_max:
        raise Rejected(422, "targets: this server does not learn; start it with --learn to send targets")
    if limits.self_labelled:
        raise Rejected(422, "targets: the model forecasts its first input, whose later values label its "
                       "predictions by themselves; send none")  # fmt: skip
    if not isinstance(items, list) or not 1 <= len(items) <= k_max:
        raise Rejected(422, f'targets: must be a list of 1 to {k_max} objects {{"seq": k, "value": y}}')
    out = []
    for item in items:
        if not isinstance(item, dict) or set(item) != {"seq", "value"}:
            raise Rejected(422, f'targets: each must be an object {{"seq": k, "value": y}}, got {_short(item)}')
        k, y = _whole(item["seq"]), item["value"]
        if type(k) is not int or k < 0:
            raise Rejected(422, f"targets: seq must be an integer >= 0 (the value's), got {_short(k)}")
        # An int of 400 digits cannot become a float: compared first, it is refused like any other.
        usable = type(y) in (int, float) and abs(y) <= FLOAT32_MAX
        if not usable or first_unusable(np.array([y], np.float64), limits.transform) is not None:
            low = " and > 0 (the model learned log-diff)" if limits.transform == "log-diff" else ""
            raise Rejected(422, f"targets: the value of seq {k} must be a finite number within float32{low}, "
                           f"got {_short(y)}")  # fmt: skip
        out.append((k, float(y)))
    return tuple(out)


class FleetLimits(NamedTuple):
    """What a fleet stream's requests may hold. clock: the model's time grid; period: its
    season; log: values are read through log1p (>= 0); horizon: the steps it learnt;
    direct: its head emits them all at once (a forecast asks at most as many); max_chunk:
    the most values or steps a request."""

    clock: Clock
    period: int
    log: bool
    horizon: int
    direct: bool
    max_chunk: int


def parse_fleet_predict(stream: str, body: bytes, limits: FleetLimits) -> Predict:
    """``{"seq": n, "values": [...], "start": t}`` for a fleet stream -> a checked
    ``Predict``; else ``Rejected`` (422). A stream's first request (seq 0) carries the time
    of its first value (``start``, required with a season: the phase reads it)."""
    check_stream_id(stream)
    doc = _document(body, {"seq", "values"}, {"start"}, '{"seq": n, "values": [...], "start": time (seq 0)}')
    seq = _seq(doc)
    values = _table(doc["values"], Limits(1, "none", limits.max_chunk))
    _check_finite(values, "none")
    if limits.log and (low := float(values.min())) < 0:
        raise Rejected(422, f"values: hold {low!r}; the model scales by log1p, which needs values >= 0")
    start = _start(doc, seq, limits)
    return Predict(stream, seq, values, request_sha256(values, start), start)


def _start(doc: dict, seq: int, limits: FleetLimits) -> int | None:
    """The grid ordinal of a first request's first value (``start``), or None."""
    if "start" not in doc:
        if seq == 0 and limits.period > 1:
            raise Rejected(422, f"start: the first request (seq 0) gives the time of its first value: the model's "
                           f"season of {limits.period} steps reads the phase from it")  # fmt: skip
        return None
    if seq != 0:
        raise Rejected(422, f"start: only a stream's first request (seq 0) gives it, not seq {seq}")
    try:
        return stamp_ordinal(limits.clock, doc["start"])
    except ConfigError as e:
        raise Rejected(422, str(e)) from None


def parse_forecast(stream: str, body: bytes, limits: FleetLimits) -> Forecast:
    """``{"horizon": H}`` (or ``{}``: the horizon the model learnt) -> a ``Forecast``; else ``Rejected`` (422)."""
    check_stream_id(stream)
    doc = _document(body or b"{}", set(), {"horizon"}, '{"horizon": H}')
    horizon = _whole(doc.get("horizon", limits.horizon))
    most = limits.horizon if limits.direct else limits.max_chunk
    if type(horizon) is not int or not 1 <= horizon <= most:
        why = f"the direct model emits the {most} steps it learnt" if limits.direct else "--max-chunk"
        raise Rejected(422, f"horizon: must be an integer in [1, {most}] ({why}), got {_short(horizon)}")
    return Forecast(stream, horizon)


def _table(values: object, limits: Limits) -> np.ndarray:
    """``values`` as (n, F) float64, its shape and types checked."""
    f = limits.n_features
    if type(values) in _NUMBER or (f > 1 and isinstance(values, list) and values and type(values[0]) in _NUMBER):
        values = [values]  # one step: a bare number (F = 1), or one F-list
    if not isinstance(values, list) or not values:
        raise Rejected(422, f"values: must be a non-empty list, got {_short(values)}")
    if len(values) > limits.max_chunk:
        raise Rejected(422, f"values: {len(values)} steps; at most {limits.max_chunk} per request (--max-chunk)")
    if f == 1:
        bad = next((i for i, v in enumerate(values) if type(v) not in _NUMBER), None)
        if bad is not None:
            raise Rejected(422, f"values: item {bad} is {_short(values[bad])}, not a number")
    else:
        for i, step in enumerate(values):
            if not (isinstance(step, list) and len(step) == f and all(type(v) in _NUMBER for v in step)):
                raise Rejected(422, f"values: step {i} is {_short(step)}; the model takes a list of {f} numbers a step")
    try:
        return np.array(values, np.float64).reshape(len(values), f)
    except OverflowError:  # an integer beyond any float
        raise Rejected(422, "values: hold an integer too large for a float") from None


def _check_finite(table: np.ndarray, transform: str) -> None:
    """Finite, within float32's range, and > 0 for log-diff (``stream.first_unusable``). table: (n, F)."""
    bad = first_unusable(table, transform)
    if bad is None:
        return
    step, column = bad
    where = f"item {step}" if table.shape[1] == 1 else f"step {step}, input {column},"
    value = float(table[step, column])
    if abs(value) <= FLOAT32_MAX:
        raise Rejected(422, f"values: {where} is {value!r}; the model learned log-differences, which need values > 0")
    raise Rejected(422, f"values: {where} is {value!r}; values must be finite, within float32's range (3.4e38)")


def _short(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, float | int) or isinstance(value, bool) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_snapshot(body: bytes) -> str:
    """``{"directory": "path"}`` -> the path (1 to 255 characters, no NUL); else ``Rejected`` (422)."""
    doc = _document(body, {"directory"}, set(), '{"directory": "path"}')
    directory = doc["directory"]
    if not isinstance(directory, str) or not 1 <= len(directory) <= 255 or "\x00" in directory:
        raise Rejected(422, f"directory: must be a path of 1 to 255 characters, got {_short(directory)}")
    return directory
