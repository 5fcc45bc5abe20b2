"""The OpenAPI description of the service's routes (the schemas /docs shows).

The routes read and write raw JSON (no pydantic model on the request path), so the
request and response schemas are declared here, as OpenAPI fragments.
"""

from __future__ import annotations

from typing import Any

from lstm_stateful.core.panel import Clock
from lstm_stateful.serve.body import FLOAT32_MAX

API_VERSION = "1"
DESCRIPTION = (
    "Streaming predictions from a stateful (or stateless) recurrent model, one state per stream, kept across "
    "requests and restarts.\n\n"
    "**Exactly once.** `seq` is how many values of the stream the client has already had accepted. The server "
    "applies a request only when `seq` equals its own count; a retry of the last applied request (same `seq`, "
    "same values) returns the same predictions without applying them again; anything else gets 409 with the "
    "server's `seq`, to resynchronise. A stream is created by its first request, with `seq` 0.\n\n"
    "**Durable.** Each accepted request is committed to SQLite before its response is sent."
)

_ERROR = {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}}
_CONFLICT = {
    "type": "object",
    "required": ["detail", "seq"],
    "properties": {"detail": {"type": "string"}, "seq": {"type": "integer", "description": "The server's seq."}},
}


def _content(schema: dict, example: object | None = None) -> dict:
    body: dict[str, Any] = {"schema": schema}
    if example is not None:
        body["example"] = example
    return {"application/json": body}


def _error(description: str) -> dict:
    return {"description": description, "content": _content(_ERROR)}


_AUTH = {401: _error("A token is required and was missing or wrong (`Authorization: Bearer <token>`).")}
_BAD_ID = {422: _error("The stream id is not 1 to 64 characters of A-Z a-z 0-9 . _ ~ -")}
_SEQ = {"type": "integer", "minimum": 0, "description": "Values of this stream accepted so far."}


def number(low: str = "any") -> dict:
    """A value the model takes: finite within float32's range; ``low`` "positive" (> 0,
    log-differences) or "non-negative" (>= 0, log scaling) narrows it."""
    schema: dict[str, Any] = {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}
    if low == "positive":
        schema = {"type": "number", "exclusiveMinimum": 0, "maximum": FLOAT32_MAX}
    elif low == "non-negative":
        schema["minimum"] = 0
    return schema


def values_schema(n_features: int, max_chunk: int, value: dict) -> dict:
    """``values`` exactly as the server takes them: one input, a number or a list of 1 to
    ``max_chunk`` numbers; F inputs, one list of F numbers or a list of 1 to ``max_chunk`` of them."""
    steps = {"type": "array", "minItems": 1, "maxItems": max_chunk}
    if n_features == 1:
        return {"oneOf": [value, steps | {"items": value}]}
    row = {"type": "array", "minItems": n_features, "maxItems": n_features, "items": value}
    return {"oneOf": [row, steps | {"items": row}]}


def predict_request(n_features: int, max_chunk: int, low: str) -> dict:
    """The body of a single-series model's predict request."""
    values = values_schema(n_features, max_chunk, number(low))
    values["description"] = (
        "One input: a number or a list of numbers. F inputs: one list of F numbers, or a list of them (one per "
        "step). Finite, within float32's range (> 0 for a model of log-differences)."
    )
    return {"type": "object", "required": ["seq", "values"], "additionalProperties": False,
            "properties": {"seq": _SEQ, "values": values}}  # fmt: skip


def start_schema(clock: Clock, far: float) -> dict:
    """The times a series may start at: the grid of ``clock``, within ``far`` steps of its
    origin. Numbers: a multiple of the step (where the origin is one); months: a year from
    1000, a month on the grid (every ``step``-th from the origin's) and the clock's day;
    other clocks: an ISO 8601 timestamp (the grid is checked by the server)."""
    if clock.kind == "number":
        low, high = clock.origin - far * clock.step, clock.origin + far * clock.step
        schema: dict[str, Any] = {"type": "number", "minimum": low, "maximum": high}
        if float(clock.origin / clock.step).is_integer():
            schema["multipleOf"] = clock.step
        return schema
    if clock.kind == "month":
        months = [m for m in range(12) if (m - int(clock.origin)) % int(clock.step) == 0]
        day = f"-{clock.day:02d}" if clock.day != 1 else f"(-{clock.day:02d})?"
        return {"type": "string", "pattern": f"^[1-9][0-9]{{3}}-({'|'.join(f'{m + 1:02d}' for m in months)}){day}$"}
    return {"type": "string", "format": "date-time"}


def fleet_predict_request(max_chunk: int, low: str, clock: Clock, seasonal: bool, far: float) -> dict:
    """The body of a fleet series' predict request. ``start`` comes with the first request
    only (seq 0), where a seasonal model (``seasonal``) requires it."""
    values = values_schema(1, max_chunk, number(low))
    values["description"] = (
        "The series' next values: a number or a list of numbers, finite (>= 0 with log scaling). A series the "
        "model was not trained on predicts null until its first `new_series_values` (GET /v1/model) have come: "
        "its scaling is set from them."
    )
    start = start_schema(clock, far) | {
        "description": "The first request only (seq 0): the time of its first value, on the model's clock. "
        "Required there when the model has a season."
    }
    first_only = {"if": {"required": ["start"]}, "then": {"properties": {"seq": {"const": 0}}}}
    rules = [first_only]
    if seasonal:
        rules.append({"if": {"properties": {"seq": {"const": 0}}}, "then": {"required": ["start"]}})
    return {"type": "object", "required": ["seq", "values"], "additionalProperties": False,
            "properties": {"seq": _SEQ, "values": values, "start": start}, "allOf": rules}  # fmt: skip


_VERSION = {"type": "integer", "minimum": 0, "description": "The weights' version that answered (0: as saved)."}
PREDICT_RESPONSE = {
    "type": "object",
    "required": ["seq", "predictions", "version"],
    "properties": {
        "seq": {"type": "integer", "description": "seq + number of values: the next request's seq."},
        "predictions": {
            "type": "array",
            "items": {"type": ["number", "null"]},
            "description": "One per value, in the data's units; null while the window fills.",
        },
        "version": _VERSION,
    },
}

_PREDICT_RESPONSES = {
    200: {"description": "Applied (or a retry of the last applied request).", "content": _content(PREDICT_RESPONSE)},
    409: {"description": "`seq` does not match the stream's.", "content": _content(_CONFLICT)},
    413: _error("The body is over the size limit."),
    422: _error("A bad body or stream id (one-line reason); nothing was applied."),
    **_AUTH,
}


def predict_route(request: dict, example: dict, fleet: bool) -> dict[str, Any]:
    """The predict route's OpenAPI description, with the model's own request schema."""
    summary = "Feed a series and get its one-step forecasts" if fleet else "Feed a stream and get its predictions"
    return {
        "summary": summary,
        "openapi_extra": {"requestBody": {"required": True, "content": _content(request, example)}},
        "responses": _PREDICT_RESPONSES,
    }


_HORIZON = {
    "type": "integer",
    "minimum": 1,
    "description": "H (default: the horizon the model learnt; a direct model emits at most that).",
}
FORECAST_RESPONSE = {
    "type": "object",
    "required": ["seq", "forecast", "version"],
    "properties": {
        "seq": {"type": "integer", "description": "The stream's values accepted: the forecast starts after them."},
        "forecast": {"type": "array", "items": {"type": ["number", "null"]}, "description": "The next H values."},
        "times": {"type": "array", "items": {"type": "string"}, "description": "Their times (when start was given)."},
        "version": _VERSION,
    },
}


def forecast_route(most: int, learnt: int) -> dict[str, Any]:
    """The forecast route's OpenAPI description: a horizon of 1 to ``most`` steps (default ``learnt``)."""
    body = {"type": "object", "additionalProperties": False, "properties": {"horizon": _HORIZON | {"maximum": most}}}
    return {
        "summary": "Forecast a series' next H values without feeding it",
        "openapi_extra": {"requestBody": {"required": False, "content": _content(body, {"horizon": learnt})}},
        "responses": {
            200: {"description": "The forecast; the stream is unchanged.", "content": _content(FORECAST_RESPONSE)},
            404: _error("Unknown stream."),
            409: {"description": "The stream has fewer values than a season.", "content": _content(_CONFLICT)},
            422: _error("A bad body or stream id (one-line reason)."),
            **_AUTH,
        },
    }


STREAM: dict[str, Any] = {
    "summary": "A stream's progress",
    "responses": {
        200: {
            "description": "The stream.",
            "content": _content(
                {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "seq": {"type": "integer"},
                        "created": {"type": "string", "format": "date-time"},
                        "updated": {"type": "string", "format": "date-time"},
                    },
                }
            ),
        },
        404: _error("Unknown stream."),
        **_BAD_ID,
        **_AUTH,
    },
}
DELETE: dict[str, Any] = {
    "summary": "Forget a stream",
    "responses": {204: {"description": "Forgotten."}, 404: _error("Unknown stream."), **_BAD_ID, **_AUTH},
}
MODEL: dict[str, Any] = {
    "summary": "The model served",
    "responses": {200: {"description": "Mode, cell, layers, inputs, scaling, metrics and config."}, **_AUTH},
}
_SNAPSHOT_REQUEST = {
    "type": "object",
    "required": ["directory"],
    "additionalProperties": False,
    "properties": {"directory": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^\\x00]*$",
                                 "description": "A new (or empty) directory inside the server's "
                                                "snapshot root (--snapshot-root), relative to it or absolute."}},
}  # fmt: skip
SNAPSHOT: dict[str, Any] = {
    "summary": "Write the learning model's current weights as a model directory",
    "openapi_extra": {"requestBody": {"required": True, "content": _content(_SNAPSHOT_REQUEST, {"directory": "snap"})}},
    "responses": {
        201: {"description": "Written: predict, export and serve load it.",
              "content": _content({"type": "object", "required": ["directory", "version"],
                                   "properties": {"directory": {"type": "string"}, "version": _VERSION}})},
        403: _error("The directory is outside the snapshot root, or cannot be written."),
        404: _error("The directory's parent does not exist."),
        409: _error("The directory exists and is not an empty directory."),
        413: _error("The body is over the size limit."),
        422: _error("A bad body (one-line reason)."),
        507: _error("The disk is full."),
        **_AUTH,
    },
}  # fmt: skip
METRICS: dict[str, Any] = {
    "summary": "Prometheus metrics",
    "responses": {
        200: {
            "description": "Requests and errors by route and status, latencies, rounds, streams held (text format).",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **_AUTH,
    },
}
HEALTH: dict[str, Any] = {
    "summary": "Liveness",
    "responses": {200: {"description": "Serving.", "content": _content({"type": "object"}, {"status": "ok"})}, **_AUTH},
}


def with_targets(route: dict[str, Any], window: int, low: str) -> dict[str, Any]:
    """The predict route of a learning single-series server: its bodies may carry
    ``targets``, the delayed labels of up to ``window`` of the stream's latest values."""
    target = {"type": "object", "required": ["seq", "value"], "additionalProperties": False,
              "properties": {"seq": {"type": "integer", "minimum": 0, "description": "The value's seq (0-based)."},
                             "value": number(low)}}  # fmt: skip
    targets = {
        "type": "array",
        "minItems": 1,
        "maxItems": window,
        "items": target,
        "description": f"Targets of the stream's latest {window} values (this request's included), once each.",
    }
    content = route["openapi_extra"]["requestBody"]["content"]["application/json"]
    schema = content["schema"]
    content["schema"] = schema | {"properties": schema["properties"] | {"targets": targets}}
    return route
