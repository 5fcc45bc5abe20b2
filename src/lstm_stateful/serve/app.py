"""The HTTP service: a FastAPI app over a ``Service`` (JSON in and out, OpenAPI at /docs).

Routes: ``POST /v1/streams/{id}/predict``, ``GET`` and ``DELETE /v1/streams/{id}``,
``GET /v1/model``, ``GET /healthz``. The predict route reads the raw body itself (its size
counted as it arrives: 413 over the limit) and checks it (``body``: 422 with one line)
before anything is queued; no pydantic model stands on that path, and the schemas are
declared for the OpenAPI page only. With a token, every request needs
``Authorization: Bearer <token>`` (401 otherwise, compared in constant time), the docs too.
Error bodies are ``{"detail": "one line"}`` (409 adds the server's ``seq``).

FastAPI is imported here: import this module only once the serve extra is known to be there.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import json
import math
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, NamedTuple

from fastapi import FastAPI, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from lstm_stateful.models.fleet_model import FleetModel, n_seeds, new_series_values
from lstm_stateful.models.model_io import SavedModel
from lstm_stateful.serve import learner as lr
from lstm_stateful.serve import openapi
from lstm_stateful.serve.batcher import Batcher
from lstm_stateful.serve.body import STREAM_ID, STREAM_ID_RULE, Rejected, check_stream_id, parse_snapshot
from lstm_stateful.serve.fleet_engine import FleetEngine
from lstm_stateful.serve.learning_engine import Learns
from lstm_stateful.serve.metrics import HttpMetrics, Metrics
from lstm_stateful.serve.ops import Delete, Op, error_body
from lstm_stateful.serve.streams import Service, unknown_body

JSON = "application/json"
# The path parameter as the OpenAPI page shows it; the routes check it themselves (one-line 422).
StreamId = Annotated[
    str,
    PathParam(description=f"The stream: {STREAM_ID_RULE}.", json_schema_extra={"pattern": f"^{STREAM_ID.pattern}$"}),
]


class Settings(NamedTuple):
    """token: the bearer token every request must carry (None: no auth); max_body_bytes:
    the largest body; max_chunk: the most steps a request; batch_wait_ms: how long a round
    gathers requests; snapshot_root: where a learning server's snapshots go (a request
    names a directory inside it)."""

    token: bytes | None = None
    max_body_bytes: int = 1 << 20
    max_chunk: int = 10_000
    batch_wait_ms: float = 2.0
    snapshot_root: Path = Path(".")


def _finite(value: Any) -> Any:
    """JSON-safe: NaN and the infinities (a metric not measured) as null, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def model_info(model: SavedModel, meta: dict) -> dict:
    """What ``GET /v1/model`` shows. meta: the model directory's ``model.json``."""
    d, m = model.data, model.model
    return _finite(
        {
            "mode": model.mode,
            "cell": m.cell,
            "layers": m.layers,
            "units": m.units,
            "n_features": m.n_features,
            "input_cols": list(d.input_cols),
            "lahead": d.lahead,
            "order": d.order,
            "transform": d.transform,
            "scaling": model.scaling._asdict(),
            "metrics": meta.get("metrics", {}),
            "config": meta.get("experiment", {}),
        }
    )


def fleet_info(model: FleetModel, meta: dict) -> dict:
    """What ``GET /v1/model`` shows for a fleet model. meta: its ``model.json``."""
    p, m = model.config.panel, model.config.model
    return _finite(
        {
            "kind": "fleet",
            "mode": model.mode,
            "cell": m.cell,
            "layers": m.layers,
            "units": m.units,
            "seeds": n_seeds(model),
            "season": p.season,
            "horizon": p.horizon,
            "strategy": p.strategy,
            "lahead": p.lahead,
            "scaling": model.scaling.kind,
            "series": len(model.ids),
            "new_series_values": new_series_values(model),
            "clock": meta.get("clock", {}),
            "config": meta.get("config", {}),
        }
    )


def _json(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status, headers=headers, media_type=JSON)


class BearerAuth:
    """Pure ASGI middleware: HTTP requests without ``Authorization: Bearer <token>`` get 401."""

    def __init__(self, app: ASGIApp, token: bytes) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        detail = "missing or wrong bearer token: send Authorization: Bearer <token>"
        response = _json(401, error_body(detail), {"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        value = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        scheme, _, credentials = value.partition(b" ")
        # Compared in constant time, whatever the scheme, so the timing tells nothing.
        same = hmac.compare_digest(credentials.strip(), self.token)
        return same and scheme.lower() == b"bearer"


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) once it is over ``limit`` bytes: by its Content-Length when it
    has one, else counted as it arrives (chunked)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise Rejected(413, f"body: {length} bytes, over the limit of {limit} (--max-body-bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejected(413, f"body: over the limit of {limit} bytes (--max-body-bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def build_app(service: Service, info: dict, settings: Settings) -> FastAPI:
    """The app. ``info``: what ``GET /v1/model`` returns (``model_info``)."""
    # A round is full at the engine's largest batch: more streams would be cut into pieces anyway.
    batcher = Batcher(service.process, settings.batch_wait_ms / 1000, full=service.engine.max_batch)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        try:
            yield
        finally:  # uvicorn has let the requests in flight finish: apply what is queued, then stop
            await batcher.stop()

    app = FastAPI(title="lstm-stateful serve", version=openapi.API_VERSION, description=openapi.DESCRIPTION,
                  lifespan=lifespan)  # fmt: skip
    if settings.token is not None:
        app.add_middleware(BearerAuth, token=settings.token)
    engine = service.engine
    learning = (lambda: lr.info(engine.learner)) if isinstance(engine, Learns) else None
    metrics = Metrics(lambda: len(service.streams), learning)
    service.on_round = metrics.round
    app.add_middleware(HttpMetrics, metrics=metrics)  # the outermost: it sees the token's refusals too
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    _stream_routes(app, service, batcher, settings)
    _model_routes(app, info, learning, metrics)
    if isinstance(engine, Learns):
        _snapshot_route(app, engine, settings)
    return app


def _stream_routes(app: FastAPI, service: Service, batcher: Batcher, settings: Settings) -> None:
    """POST /v1/streams/{id}/predict (and /forecast for a fleet model), GET and DELETE /v1/streams/{id}."""
    engine = service.engine
    parse = engine.parser(settings.max_chunk)

    @app.post("/v1/streams/{stream_id}/predict", **engine.predict_route(settings.max_chunk))
    async def predict(stream_id: StreamId, request: Request) -> Response:
        """Feed the stream one value or a chunk; its predictions (exactly once, see above)."""
        return await _submit(request, lambda body: parse(stream_id, body), batcher, settings)

    if isinstance(engine, FleetEngine):
        parse_forecast = engine.forecast_parser(settings.max_chunk)

        @app.post("/v1/streams/{stream_id}/forecast", **engine.forecast_route(settings.max_chunk))
        async def forecast(stream_id: StreamId, request: Request) -> Response:
            """The stream's next H values from its state, which stays as it is."""
            return await _submit(request, lambda body: parse_forecast(stream_id, body), batcher, settings)

    @app.get("/v1/streams/{stream_id}", **openapi.STREAM)
    async def get_stream(stream_id: StreamId) -> Response:
        """The stream's values accepted (seq), created and updated times."""
        if (refused := _bad_id(stream_id)) is not None:
            return refused
        record = service.get(stream_id)
        if record is None:
            return _json(404, unknown_body(stream_id))
        view = {"id": stream_id, "seq": record.seq, "created": record.created, "updated": record.updated}
        return _json(200, json.dumps(view).encode())

    @app.delete("/v1/streams/{stream_id}", status_code=204, **openapi.DELETE)
    async def delete_stream(stream_id: StreamId) -> Response:
        """Forget the stream: its next request starts from seq 0 and a zero state."""
        if (refused := _bad_id(stream_id)) is not None:
            return refused
        outcome = await batcher.submit(Delete(stream_id))
        return Response(status_code=204) if outcome.status == 204 else _json(outcome.status, outcome.body)


async def _submit(request: Request, parse: Callable[[bytes], Op], batcher: Batcher, settings: Settings) -> Response:
    """Read and check a request's body (``parse``), queue it for a round, answer its outcome."""
    try:
        op = parse(await read_body(request, settings.max_body_bytes))
    except Rejected as e:
        return _json(e.status, error_body(e.detail))
    except ClientDisconnect:  # gone before its body was read: nothing to apply, nobody to answer
        return Response(status_code=400)
    outcome = await batcher.submit(op)
    return _json(outcome.status, outcome.body)


def _bad_id(stream_id: str) -> Response | None:
    """The 422 for a stream id out of its alphabet or length, or None."""
    try:
        check_stream_id(stream_id)
    except Rejected as e:
        return _json(e.status, error_body(e.detail))
    return None


def _model_routes(app: FastAPI, info: dict, learning: Callable[[], dict] | None, metrics: Metrics) -> None:
    """GET /v1/model (``info``, with the learner's version, updates and scores when it
    learns), GET /metrics and GET /healthz."""
    static = json.dumps(info).encode()

    @app.get("/metrics", **openapi.METRICS)
    async def get_metrics() -> Response:
        """The service's metrics in Prometheus's text format."""
        return Response(metrics.render(), 200, media_type=metrics.content_type)

    @app.get("/v1/model", **openapi.MODEL)
    async def get_model() -> Response:
        """The model served: config, scores, scaling; a learning model's version, updates and scores."""
        if learning is None:
            return _json(200, static)
        return _json(200, json.dumps(_finite(info | {"learning": learning()})).encode())

    @app.get("/healthz", **openapi.HEALTH)
    async def healthz() -> Response:
        """Up and serving."""
        return _json(200, b'{"status":"ok"}')


def _snapshot_route(app: FastAPI, engine: Learns, settings: Settings) -> None:
    """POST /v1/model/snapshot: the weights that answer now, as a model directory."""

    @app.post("/v1/model/snapshot", status_code=201, **openapi.SNAPSHOT)
    async def snapshot(request: Request) -> Response:
        """Write the current weights as a model directory that predict, export and serve load."""
        try:
            name = parse_snapshot(await read_body(request, settings.max_body_bytes))
            directory = _snapshot_directory(settings.snapshot_root, name)
            version = await asyncio.to_thread(_write_snapshot, engine, directory)
        except Rejected as e:
            return _json(e.status, error_body(e.detail))
        except ClientDisconnect:
            return Response(status_code=400)
        return _json(201, json.dumps({"directory": str(directory), "version": version}).encode())


def _snapshot_directory(root: Path, name: str) -> Path:
    """A snapshot goes to a new or empty directory inside ``root`` (a path relative to it,
    or absolute) whose parent exists: 403 outside it (a client never writes elsewhere), 409
    over a file or a directory that holds files (or under a file), 404 without its parent."""
    directory = root / name
    try:
        if not directory.resolve().is_relative_to(root.resolve()):
            raise Rejected(403, f"directory: {name!r} is outside the snapshot root {str(root)!r}; give one inside")
        if directory.exists() and not (directory.is_dir() and not any(directory.iterdir())):
            raise Rejected(409, f"directory: {str(directory)!r} exists and is not an empty directory; give a new one")
        if directory.parent.exists() and not directory.parent.is_dir():
            raise Rejected(409, f"directory: the parent of {str(directory)!r} is not a directory")
        if not directory.parent.is_dir():
            raise Rejected(404, f"directory: the parent of {str(directory)!r} does not exist")
    except OSError as e:  # no access to a part of the path, a file as a part of it...
        raise Rejected(403, f"directory: {name!r} cannot be used ({e.strerror or e})") from None
    return directory


def _write_snapshot(engine: Learns, directory: Path) -> int:
    try:
        return engine.snapshot(directory)
    except OSError as e:
        status = 507 if e.errno == errno.ENOSPC else 403
        raise Rejected(status, f"directory: {str(directory)!r} cannot be written ({e.strerror or e})") from None


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """Starlette's own errors (an unknown path, a method the path does not take) as one line;
    a 405's ``Allow`` lists every method of every route of the path (Starlette's names only
    the first route's)."""
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        path = request.url.path
        methods = {m for r in request.app.routes if isinstance(r, Route | APIRoute) and r.path_regex.match(path)
                   for m in (r.methods or ())}  # fmt: skip
        headers["Allow"] = ", ".join(sorted(methods))
    return _json(exc.status_code, error_body(str(exc.detail)), headers)


async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
    """FastAPI's own checks (path parameters) as one line, as every other error."""
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    return _json(422, error_body(f"{where or 'request'}: {first.get('msg', 'invalid')}"))
