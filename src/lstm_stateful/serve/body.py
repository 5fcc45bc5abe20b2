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

from lstm_stateful.models.stream import first_unusable
from lstm_stateful.serve.streams import Predict, values_sha256

STREAM_ID = re.compile(r"[A-Za-z0-9._~-]{1,64}")
STREAM_ID_RULE = "1 to 64 characters, each a letter, digit, '.', '_', '~' or '-'"
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_NUMBER = (int, float)


class Rejected(Exception):
    """A request refused: HTTP ``status`` and a one-line ``detail``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Limits(NamedTuple):
    """What a request may hold: the model's inputs per step, its transform, steps per request."""

    n_features: int
    transform: str
    max_chunk: int


def check_stream_id(stream: str) -> None:
    if STREAM_ID.fullmatch(stream) is None:
        raise Rejected(422, f"stream id: {stream[:80]!r} is not {STREAM_ID_RULE}")


def _no_constant(name: str) -> Any:
    """json.loads' hook for the non-standard literals NaN, Infinity and -Infinity: refused."""
    raise Rejected(422, f"body: holds {name}, which JSON does not allow; values must be finite numbers")


def parse_predict(stream: str, body: bytes, limits: Limits) -> Predict:
    """The body of ``POST /v1/streams/{stream}/predict`` -> a checked ``Predict``; else ``Rejected`` (422)."""
    check_stream_id(stream)
    try:
        doc = json.loads(body, parse_constant=_no_constant)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise Rejected(422, f"body: not valid JSON: {e}") from None
    except RecursionError:  # lists nested a thousand deep: no body of ours is
        raise Rejected(422, "body: nested too deeply; values are numbers, or lists of numbers") from None
    if not isinstance(doc, dict) or set(doc) != {"seq", "values"}:
        got = f"fields {sorted(doc)}" if isinstance(doc, dict) else f"a JSON {type(doc).__name__}"
        raise Rejected(422, f'body: must be an object {{"seq": n, "values": [...]}}, got {got}')
    seq = doc["seq"]
    if type(seq) is not int or seq < 0:
        raise Rejected(422, f"seq: must be an integer >= 0 (the values this stream has had accepted), got {seq!r}")
    values = _table(doc["values"], limits)
    _check_finite(values, limits.transform)
    return Predict(stream, seq, values, values_sha256(values))


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
    if abs(value) <= _FLOAT32_MAX:
        raise Rejected(422, f"values: {where} is {value!r}; the model learned log-differences, which need values > 0")
    raise Rejected(422, f"values: {where} is {value!r}; values must be finite, within float32's range (3.4e38)")


def _short(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, float | int) or isinstance(value, bool) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
