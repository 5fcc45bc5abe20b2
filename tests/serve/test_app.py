"""The service over HTTP, in process (httpx on the ASGI app, its lifespan running): every
route, predictions equal to the offline Predictor fed the same values, exactly once
(retries, conflicts, deletes), bad requests refused with nothing applied, tokens, batching
of concurrent streams, a restart on the same state file; and the command's start-up checks
(one line each) and one real server process. Kill -9, load and many processes:
test_process.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import numpy as np
import pytest

from lstm_stateful.commands import serve as serve_cmd
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.models import model_io, stream
from lstm_stateful.serve.app import Settings, build_app, model_info
from lstm_stateful.serve.batcher import Batcher, Pending, take_round
from lstm_stateful.serve.engine import Engine
from lstm_stateful.serve.learner import LearnConfig
from lstm_stateful.serve.ops import Delete, Forecast, Predict, values_sha256
from lstm_stateful.serve.store import Store
from lstm_stateful.serve.streams import Service
from tests.helpers import usage_error
from tests.serve import saved_model

VALUES = np.random.default_rng(11).uniform(-1.0, 1.0, size=200)
TOKEN = "s3cret-t0ken"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Served(NamedTuple):
    client: httpx.AsyncClient
    service: Service
    model: model_io.SavedModel


@contextlib.asynccontextmanager
async def served(
    directory: Path, state: Path, max_streams: int | None = None, **settings: Any
) -> AsyncIterator[Served]:
    """The app over ``directory``'s model and the state file ``state``, its lifespan running."""
    model = model_io.load_model(directory)
    meta = json.loads((directory / model_io.CONFIG_FILE).read_text())
    with Store.open(state, serve_cmd.model_identity(meta)) as store:
        service = Service(Engine(model, max_batch=8), store, max_streams)
        app = build_app(service, model_info(model, meta), Settings(**settings))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield Served(client, service, model)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("model")
    saved_model(directory)
    return directory


@pytest.fixture
async def app(model_dir: Path, tmp_path: Path) -> AsyncIterator[Served]:
    async with served(model_dir, tmp_path / "s.sqlite", max_chunk=50, max_body_bytes=2000) as s:
        yield s


async def _post(client: httpx.AsyncClient, stream_id: str, seq: int, values: object, **kw: Any) -> httpx.Response:
    return await client.post(f"/v1/streams/{stream_id}/predict", json={"seq": seq, "values": values}, **kw)


def _predictions(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.array([np.nan if p is None else p for p in response.json()["predictions"]], np.float64)


async def _seq(client: httpx.AsyncClient, stream_id: str, **kw: Any) -> int | None:
    r = await client.get(f"/v1/streams/{stream_id}", **kw)
    return r.json()["seq"] if r.status_code == 200 else None


@pytest.mark.anyio
async def test_predictions_equal_the_offline_predictor(app: Served) -> None:
    offline = {name: stream.Predictor(app.model) for name in ("a", "b.1~x-Y_")}
    seqs = dict.fromkeys(offline, 0)
    for name, n in [("a", 1), ("b.1~x-Y_", 3), ("a", 4), ("a", 1), ("b.1~x-Y_", 10), ("a", 2)]:
        values = VALUES[seqs[name] : seqs[name] + n]
        r = await _post(app.client, name, seqs[name], values.tolist() if n > 1 else float(values[0]))
        expected = offline[name].predict(values)
        np.testing.assert_allclose(_predictions(r), expected, rtol=1e-6, atol=1e-6, equal_nan=True)
        seqs[name] += n
        assert r.json()["seq"] == seqs[name]
    first = (await _post(app.client, "c", 0, VALUES[:3].tolist())).json()["predictions"]
    assert first[:2] == [None, None] and isinstance(first[2], float)  # the window fills: JSON null


@pytest.mark.anyio
async def test_a_retry_gets_the_same_response_and_applies_nothing(app: Served) -> None:
    c = app.client
    first = await _post(c, "s", 0, VALUES[:3].tolist())
    again = await _post(c, "s", 0, VALUES[:3].tolist())
    assert again.status_code == 200 and again.content == first.content and await _seq(c, "s") == 3
    for seq, values in [(0, VALUES[:2].tolist()), (0, VALUES[1:4].tolist()), (5, [0.1]), (1, [0.1]), (2, [0.1])]:
        r = await _post(c, "s", seq, values)
        assert r.status_code == 409 and r.json()["seq"] == 3, (seq, r.text)
        assert "\n" not in r.json()["detail"]
    single = await _post(c, "s", 3, float(VALUES[3]))  # a bare number, then its retry as a list: the same values
    assert (await _post(c, "s", 3, [float(VALUES[3])])).content == single.content
    assert (await _post(c, "s", 0, VALUES[:3].tolist())).status_code == 409  # only the last applied one is kept
    expected = stream.Predictor(app.model).predict(VALUES[:6])
    np.testing.assert_allclose(_predictions(await _post(c, "s", 4, VALUES[4:6].tolist())), expected[4:], rtol=1e-6)


@pytest.mark.anyio
async def test_a_stream_starts_at_seq_0_and_delete_forgets_it(app: Served) -> None:
    c = app.client
    r = await _post(c, "new", 2, [0.5])
    assert r.status_code == 409 and r.json()["seq"] == 0 and "start it with seq 0" in r.json()["detail"]
    assert (await c.get("/v1/streams/new")).status_code == 404
    await _post(c, "new", 0, VALUES[:5].tolist())
    assert (await c.delete("/v1/streams/new")).status_code == 204
    assert (await c.get("/v1/streams/new")).status_code == 404
    assert (await c.delete("/v1/streams/new")).status_code == 404
    assert (await _post(c, "new", 5, [0.5])).json()["seq"] == 0
    restarted = _predictions(await _post(c, "new", 0, VALUES[10:15].tolist()))  # a zero state, an empty window
    np.testing.assert_allclose(restarted, stream.Predictor(app.model).predict(VALUES[10:15]), rtol=1e-6, equal_nan=True)


@pytest.mark.anyio
async def test_stream_model_and_health(app: Served, model_dir: Path) -> None:
    c = app.client
    await _post(c, "g", 0, [0.1])
    await _post(c, "g", 1, [0.2, 0.3])
    view = (await c.get("/v1/streams/g")).json()
    assert set(view) == {"id", "seq", "created", "updated"} and view["id"] == "g" and view["seq"] == 3
    created, updated = (datetime.fromisoformat(view[k]) for k in ("created", "updated"))
    offset = created.utcoffset()
    assert created <= updated and offset is not None and offset.total_seconds() == 0
    info = (await c.get("/v1/model")).json()
    meta = json.loads((model_dir / model_io.CONFIG_FILE).read_text())
    assert {k: info[k] for k in ("mode", "cell", "layers", "units", "n_features", "lahead", "order", "transform")} == {
        "mode": "stateful", "cell": "lstm", "layers": 1, "units": 8, "n_features": 1, "lahead": 3,
        "order": "newest-first", "transform": "none",
    }  # fmt: skip
    assert info["input_cols"] == ["a"] and info["config"] == meta["experiment"]
    assert info["scaling"] == {"input_mean": [0.5], "input_scale": [2.0], "target_mean": -1.0, "target_scale": 3.0}
    assert info["metrics"] == {"stateful": {"r2": 0.9, "mse": None}}  # NaN is no JSON: null
    assert (await c.get("/healthz")).json() == {"status": "ok"}


BAD_BODIES = [
    (b'{"seq": 3, "values": [NaN]}', "holds NaN, which JSON does not allow"),
    (b'{"seq": 3, "values": Infinity}', "holds Infinity"),
    (b'{"seq": 3, "values": [0.1, -Infinity]}', "holds -Infinity"),
    (b'{"seq": 3, "values": [0.1, 1e999]}', "values: item 1 is inf; values must be finite"),
    (b'{"seq": 3, "values": [1e39]}', "item 0 is 1e+39; values must be finite, within float32's range"),
    (b'{"seq": 3, "values": [0.1, "a"]}', 'values: item 1 is "a", not a number'),
    (b'{"seq": 3, "values": [true]}', "item 0 is true, not a number"),
    (b'{"seq": 3, "values": [null]}', "item 0 is null, not a number"),
    (b'{"seq": 3, "values": [[0.5]]}', "item 0 is [0.5], not a number"),
    (b'{"seq": 3, "values": []}', "values: must be a non-empty list, got []"),
    (b'{"seq": 3, "values": {"a": 1}}', "values: must be a non-empty list"),
    (b'{"seq": 3, "values": "0.5"}', "values: must be a non-empty list"),
    (b'{"seq": 3, "values": [' + b",".join([b"0.1"] * 51) + b"]}", "51 steps; at most 50 per request (--max-chunk)"),
    (b'{"seq": 3, "values": [1' + b"0" * 400 + b"]}", "an integer too large for a float"),
    (b'{"values": [0.1]}', "body: must be an object"),
    (b'{"seq": 3, "values": [0.1], "extra": 1}', "got fields ['extra', 'seq', 'values']"),
    (b'{"seq": -1, "values": [0.1]}', "seq: must be an integer >= 0"),
    (b'{"seq": 3.5, "values": [0.1]}', "seq: must be an integer >= 0"),
    (b'{"seq": "3", "values": [0.1]}', "seq: must be an integer >= 0"),
    (b'{"seq": true, "values": [0.1]}', "seq: must be an integer >= 0"),
    (b"[3, [0.1]]", "got a JSON list"),
    (b'{"seq": 3, "values": [0.1]', "body: not valid JSON"),
    (b"\xff\xfe", "body: not valid JSON"),
    (b"", "body: not valid JSON"),
]


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.anyio
async def test_bad_requests_are_refused_in_one_line_and_apply_nothing(app: Served) -> None:
    c = app.client
    await _post(c, "bad", 0, VALUES[:3].tolist())
    headers = {"content-type": "application/json"}
    for body, fragment in BAD_BODIES:
        r = await c.post("/v1/streams/bad/predict", content=body, headers=headers)
        assert r.status_code == 422, (body[:60], r.text)
        detail = r.json()["detail"]
        assert fragment in detail and "\n" not in detail, (body[:60], detail)
    for name in ("a b", "x" * 65, "é", "a:b"):
        for r in (await _post(c, name, 0, [0.1]), await c.get(f"/v1/streams/{name}"),
                  await c.delete(f"/v1/streams/{name}")):  # fmt: skip
            assert r.status_code == 422 and r.json()["detail"].startswith("stream id: "), (name, r.text)
    big = json.dumps({"seq": 3, "values": [0.1] * 500}).encode()  # 2,500 bytes, over --max-body-bytes
    r = await c.post("/v1/streams/bad/predict", content=big, headers=headers)
    assert r.status_code == 413 and "--max-body-bytes" in r.json()["detail"], r.text
    chunked = await c.post(
        "/v1/streams/bad/predict", content=_chunks(big[:1500], big[1500:2200], big[2200:]), headers=headers
    )
    assert "content-length" not in chunked.request.headers  # counted as it arrived
    assert chunked.status_code == 413 and "over the limit of 2000 bytes" in chunked.json()["detail"]
    assert await _seq(c, "bad") == 3 and await _seq(c, "a b") is None  # nothing was applied
    expected = stream.Predictor(app.model).predict(VALUES[:5])
    np.testing.assert_allclose(_predictions(await _post(c, "bad", 3, VALUES[3:5].tolist())), expected[3:], rtol=1e-6)


@pytest.mark.anyio
async def test_several_inputs_and_log_differences(tmp_path: Path) -> None:
    directory = tmp_path / "model"
    saved_model(directory, cell="gru", layers=2, n_features=2, transform="log-diff", task="forecast", tsteps=1)
    table = 2.0 + np.abs(np.random.default_rng(2).normal(size=(20, 2)))
    async with served(directory, tmp_path / "s.sqlite") as s:
        offline = stream.Predictor(s.model)
        one_step = await _post(s.client, "f", 0, table[0].tolist())  # one F-list: one step
        np.testing.assert_allclose(_predictions(one_step), offline.predict(table[:1]), equal_nan=True)
        np.testing.assert_allclose(_predictions(await _post(s.client, "f", 1, table[1:12].tolist())),
                                   offline.predict(table[1:12]), rtol=1e-6, equal_nan=True)  # fmt: skip
        for values, fragment in [
            ([[1.0, 2.0], [1.0]], "step 1 is [1.0]; the model takes a list of 2 numbers a step"),
            ([[1.0, 2.0, 3.0]], "step 0 is [1.0, 2.0, 3.0]"),
            (1.5, "step 0 is 1.5"),
            ([[1.0, 2.0], [3.0, 0.0]], "step 1, input 1, is 0.0; the model learned log-differences, which need"),
            ([[1.0, -2.0]], "step 0, input 1, is -2.0"),
        ]:  # fmt: skip
            r = await _post(s.client, "f", 12, values)
            assert r.status_code == 422 and fragment in r.json()["detail"], (values, r.text)
        np.testing.assert_allclose(_predictions(await _post(s.client, "f", 12, table[12:].tolist())),
                                   offline.predict(table[12:]), rtol=1e-6)  # fmt: skip


@pytest.mark.anyio
async def test_a_token_guards_every_route(model_dir: Path, tmp_path: Path) -> None:
    good = {"Authorization": f"Bearer {TOKEN}"}
    async with served(model_dir, tmp_path / "s.sqlite", token=TOKEN.encode()) as s:
        c = s.client
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                        {"Authorization": TOKEN}, {"Authorization": f"Bearer {TOKEN}x"}):  # fmt: skip
            gets = [await c.get(path, headers=headers) for path in ("/healthz", "/docs", "/openapi.json")]
            for r in [await _post(c, "t", 0, [0.1], headers=headers), *gets]:
                assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", (headers, r.text)
                assert "bearer token" in r.json()["detail"]
        assert await _seq(c, "t", headers=good) is None  # nothing applied
        assert (await _post(c, "t", 0, [0.1], headers=good)).status_code == 200
        assert (await _post(c, "t", 1, [0.1], headers={"Authorization": f"bearer {TOKEN}"})).status_code == 200
        assert (await c.get("/docs", headers=good)).status_code == 200


@pytest.mark.anyio
async def test_the_openapi_page_lists_the_routes(app: Served) -> None:
    spec = (await app.client.get("/openapi.json")).json()
    assert {path: set(ops) for path, ops in spec["paths"].items()} == {
        "/v1/streams/{stream_id}/predict": {"post"},
        "/v1/streams/{stream_id}": {"get", "delete"},
        "/v1/model": {"get"},
        "/metrics": {"get"},
        "/healthz": {"get"},
    }
    predict = spec["paths"]["/v1/streams/{stream_id}/predict"]["post"]
    body = predict["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["seq", "values"]
    # Exactly what the server takes (max_chunk 50, one input): a number, or 1 to 50 of them.
    number, steps = body["properties"]["values"]["oneOf"]
    assert number == {"type": "number", "minimum": -3.4028234663852886e38, "maximum": 3.4028234663852886e38}
    assert steps == {"type": "array", "minItems": 1, "maxItems": 50, "items": number}
    assert {"200", "409", "413", "422"} <= set(predict["responses"])
    assert predict["parameters"][0]["schema"]["pattern"] == "^[A-Za-z0-9._~-]{1,64}$"
    assert "swagger" in (await app.client.get("/docs")).text.lower()


def test_take_round_takes_one_request_per_stream_lowest_seq_first() -> None:
    def pending(op: Predict | Delete) -> Pending:
        return Pending(op, None, 0.0)  # type: ignore[arg-type]  # no future needed here

    def p(name: str, seq: int) -> Predict:
        return Predict(name, seq, np.zeros((1, 1)), "")

    queue = [pending(op) for op in (p("a", 1), p("b", 0), p("a", 0), Delete("b"), p("a", 2), p("c", 4),
                                    Delete("c"), p("c", 0), Delete("a"), p("a", -1))]  # fmt: skip
    taken, rest = take_round(queue)
    assert [item.op for item in taken] == [p("b", 0), p("a", 0), p("c", 4)]
    assert [item.op for item in rest] == [p("a", 1), Delete("b"), p("a", 2), Delete("c"), p("c", 0), Delete("a"),
                                          p("a", -1)]  # fmt: skip
    taken, rest = take_round(rest)
    assert [item.op for item in taken] == [p("a", 1), Delete("b"), Delete("c")]


def test_take_round_never_moves_a_predict_across_a_forecast() -> None:
    def pending(op: Predict | Forecast) -> Pending:
        return Pending(op, None, 0.0)  # type: ignore[arg-type]  # no future needed here

    def p(name: str, seq: int) -> Predict:
        return Predict(name, seq, np.zeros((1, 1)), "")

    queue = [pending(op) for op in (Forecast("a", 3), p("a", 1), p("a", 0), p("b", 2), Forecast("b", 1),
                                    p("b", 1), Forecast("c", 2), Forecast("c", 2))]  # fmt: skip
    taken, rest = take_round(queue)
    assert [item.op for item in taken] == [Forecast("a", 3), p("b", 2), Forecast("c", 2)]
    taken, rest = take_round(rest)
    # Predicts of one stream are taken lowest seq first; b's seq-1 predict came after its
    # forecast, and waits for it rather than passing it.
    assert [item.op for item in taken] == [p("a", 0), Forecast("b", 1), Forecast("c", 2)]
    assert [item.op for item in take_round(rest)[0]] == [p("a", 1), p("b", 1)]


@pytest.mark.anyio
async def test_concurrent_streams_are_batched_and_each_is_exact(model_dir: Path, tmp_path: Path) -> None:
    # 24 streams, each sending 6 requests one after the other, all streams at once; the
    # rounds gather several streams; every stream equals its own offline Predictor.
    batches: list[int] = []
    async with served(model_dir, tmp_path / "s.sqlite", batch_wait_ms=20) as s:
        step = s.service.engine.step
        s.service.engine.step = lambda states, table, *more: batches.append(len(states)) or step(states, table, *more)  # type: ignore[method-assign]

        async def one(name: str) -> list[float]:
            out, seq = [], 0
            for n in (1, 1, 3, 1, 2, 1):
                r = await _post(s.client, name, seq, VALUES[seq : seq + n].tolist())
                out += _predictions(r).tolist()
                seq += n
            return out

        async def out_of_order() -> list[int]:  # seq 1 sent before seq 0: applied in seq order
            later = asyncio.ensure_future(_post(s.client, "ooo", 1, [0.2]))
            await asyncio.sleep(0)
            first = await _post(s.client, "ooo", 0, [0.1])
            return [first.status_code, (await later).status_code]

        names = [f"c{i}" for i in range(24)]
        *results, ooo = await asyncio.gather(*(one(name) for name in names), out_of_order())
        expected = stream.Predictor(s.model).predict(VALUES[:9])
    assert ooo == [200, 200]
    for name, preds in zip(names, results, strict=True):
        np.testing.assert_allclose(preds, expected, rtol=1e-6, atol=1e-6, equal_nan=True, err_msg=name)
    assert sum(batches) == 24 * 6 + 2 and max(batches) > 8  # batched: more streams at once than a piece holds


@pytest.mark.anyio
async def test_a_request_whose_client_left_is_applied_once(model_dir: Path, tmp_path: Path) -> None:
    model = model_io.load_model(model_dir)
    values = VALUES[:4].reshape(4, 1)
    op = Predict("gone", 0, values, values_sha256(values))
    with Store.open(tmp_path / "s.sqlite", "x") as store:
        service = Service(Engine(model, max_batch=1), store)
        batcher = Batcher(service.process, wait_s=0.01)
        batcher.start()
        waiting = asyncio.ensure_future(batcher.submit(op))
        await asyncio.sleep(0)  # queued
        waiting.cancel()  # the client went away before its round
        for _ in range(3000):  # up to 30 s: the round compiles first, on a busy 2-core machine too
            if service.get("gone") is not None:
                break
            await asyncio.sleep(0.01)
        applied = service.get("gone")
        retry = await asyncio.wait_for(batcher.submit(op), 30)
        await batcher.stop()
    assert applied is not None and applied.seq == 4 and service.streams["gone"].seq == 4  # applied once
    assert retry.status == 200 and retry.body == applied.last_response  # the retry: the stored response
    preds = [np.nan if p is None else p for p in json.loads(retry.body)["predictions"]]
    np.testing.assert_allclose(preds, stream.Predictor(model).predict(VALUES[:4]), rtol=1e-6, equal_nan=True)


@pytest.mark.anyio
async def test_streams_continue_after_a_restart_on_the_same_state_file(model_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "s.sqlite"
    async with served(model_dir, state) as s:
        await _post(s.client, "r", 0, VALUES[:7].tolist())
        last = await _post(s.client, "r", 7, VALUES[7:9].tolist())
        await _post(s.client, "q", 0, VALUES[:2].tolist())
        assert (await s.client.delete("/v1/streams/q")).status_code == 204
    async with served(model_dir, state) as s:
        assert await _seq(s.client, "r") == 9 and await _seq(s.client, "q") is None
        assert (await _post(s.client, "r", 7, VALUES[7:9].tolist())).content == last.content  # the stored response
        got = _predictions(await _post(s.client, "r", 9, VALUES[9:20].tolist()))
        np.testing.assert_allclose(got, stream.Predictor(s.model).predict(VALUES[:20])[9:], rtol=1e-6, atol=1e-6)


@pytest.mark.anyio
async def test_a_round_that_fails_applies_nothing_and_the_service_goes_on(app: Served) -> None:
    c = app.client
    await _post(c, "w", 0, VALUES[:3].tolist())
    write, step = app.service.store.write, app.service.engine.step

    def full_disk(*args: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    app.service.store.write = full_disk  # type: ignore[method-assign]
    r = await _post(c, "w", 3, [0.4])
    assert r.status_code == 503 and "could not be written (database or disk is full); nothing was applied" in r.text
    app.service.store.write = write  # type: ignore[method-assign]
    app.service.engine.step = lambda *args: 1 / 0  # type: ignore[assignment,method-assign]
    r = await _post(c, "w", 3, [0.4])
    assert r.status_code == 500 and r.json()["detail"] == "internal error: ZeroDivisionError: division by zero"
    app.service.engine.step = step  # type: ignore[method-assign]
    assert await _seq(c, "w") == 3  # neither was applied
    expected = stream.Predictor(app.model).predict(VALUES[:4])
    np.testing.assert_allclose(_predictions(await _post(c, "w", 3, [float(VALUES[3])])), expected[3:], rtol=1e-6)


# The command: its config, its start-up checks (one line each), and one real server process.


def test_serve_config_rules(tmp_path: Path) -> None:
    assert all(serve_cmd.is_loopback(h) for h in ("127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost", "LOCALHOST"))
    assert not any(serve_cmd.is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.com", "128.0.0.1"))
    cfg = serve_cmd.ServeConfig(tmp_path)
    assert (cfg.host, cfg.port, cfg.state_file, cfg.max_body_bytes, cfg.max_chunk, cfg.batch_wait_ms) == (
        "127.0.0.1", 8000, tmp_path / "streams.sqlite", 1_048_576, 10_000, 2.0,
    )  # fmt: skip
    assert serve_cmd.ServeConfig(tmp_path, host="0.0.0.0", token_file=tmp_path / "t").host == "0.0.0.0"
    for kwargs, fragment in [
        ({"host": "0.0.0.0"}, "token_file: is required to listen on 0.0.0.0, which is not a loopback address"),
        ({"host": "example.com"}, "token_file: is required"),
        ({"host": ""}, "host: must be an address"),
        ({"port": 65_536}, "port: "),
        ({"port": -1}, "port: "),
        ({"max_chunk": 0}, "max_chunk: "),
        ({"max_body_bytes": 0}, "max_body_bytes: "),
        ({"batch_wait_ms": -1.0}, "batch_wait_ms: must be a number of milliseconds in [0, 1000]"),
        ({"batch_wait_ms": float("nan")}, "batch_wait_ms: "),
    ]:
        with pytest.raises(ConfigError) as e:
            serve_cmd.ServeConfig(tmp_path, **kwargs)
        assert str(e.value).startswith(fragment), (kwargs, str(e.value))


def test_a_missing_serve_extra_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)  # what an environment without it raises
    with pytest.raises(ConfigError) as e:
        serve_cmd.serve(serve_cmd.ServeConfig(tmp_path), print)
    assert str(e.value) == "model: serving needs the serve extra: pip install 'lstm-stateful[serve]'"


def test_token_files(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(f"  {TOKEN}\n")
    assert serve_cmd.read_token(path) == TOKEN.encode()
    for text, fragment in [("\n", "is empty"), ("two words", "printable ASCII without spaces"), ("é", "printable")]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=fragment):
            serve_cmd.read_token(path)
    with pytest.raises(ConfigError, match="cannot be read"):
        serve_cmd.read_token(tmp_path / "none")


def test_start_up_errors_are_one_line(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["serve", "--model", str(model_dir), "--port", "0"]
    usage_error(["serve", "--model", str(tmp_path / "none")], capsys, "--model: no model directory at")
    usage_error([*base, "--host", "0.0.0.0"], capsys, "--token-file: is required to listen on 0.0.0.0")
    (tmp_path / "empty").write_text("")
    usage_error(
        [*base, "--host", "0.0.0.0", "--token-file", str(tmp_path / "empty")], capsys, "--token-file: ", "is empty"
    )
    state = tmp_path / "s.sqlite"
    with Store.open(state, "ab" * 32):  # another model's, and in use
        in_use = f"lstm-stateful: error: --state: {state} is in use by another server (one writer per state file)"
        assert usage_error([*base, "--state", str(state)], capsys) == in_use
    usage_error([*base, "--state", str(state)], capsys, "--state: ", "holds the streams of another model")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        usage_error([*base[:-1], port, "--state", str(tmp_path / "p.sqlite")], capsys, f"--port: {port} is in use")
    usage_error([*base, "--port", "70000"], capsys, "--port: ")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / model_io.CONFIG_FILE).write_text("{")
    usage_error(["serve", "--model", str(tmp_path / "bad")], capsys, "--model: ", "is not valid JSON")


def test_the_command_serves_until_sigterm(model_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "s.sqlite"
    cmd = [sys.executable, "-m", "lstm_stateful.cli", "serve", "--model", str(model_dir), "--port", "0",
           "--state", str(state)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        ready = re.fullmatch(
            rf"Serving the stateful lstm model of {re.escape(str(model_dir))} on (http://127\.0\.0\.1:(\d+)) "
            rf"\(state {re.escape(str(state))}\); docs at \1/docs\n",
            line,
        )
        assert ready, line
        r = httpx.post(f"{ready[1]}/v1/streams/p/predict", json={"seq": 0, "values": VALUES[:4].tolist()}, timeout=30)
        expected = stream.Predictor(model_io.load_model(model_dir)).predict(VALUES[:4])
        np.testing.assert_allclose(_predictions(r), expected, rtol=1e-6, equal_nan=True)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and err == "" and out == "", (proc.returncode, err)
    identity = serve_cmd.model_identity(json.loads((model_dir / model_io.CONFIG_FILE).read_text()))
    with Store.open(state, identity) as store:
        assert [(row.id, row.seq) for row in store.rows()] == [("p", 4)]  # committed, and the lock released


def test_the_state_file_is_bound_to_what_the_states_depend_on(model_dir: Path) -> None:
    """Not the weights alone: a model.json whose scaling or mode differs reads states otherwise."""
    meta = json.loads((model_dir / model_io.CONFIG_FILE).read_text())
    base = serve_cmd.model_identity(meta)
    assert serve_cmd.model_identity(json.loads(json.dumps(meta))) == base
    assert serve_cmd.model_identity(meta | {"metrics": {"r2": 0.0}}) == base  # scores do not matter
    assert serve_cmd.model_identity(meta | {"mode": "stateless"}) != base
    scaled = meta | {"scaling": meta["scaling"] | {"target_scale": 2 * meta["scaling"]["target_scale"]}}
    assert serve_cmd.model_identity(scaled) != base
    data = meta["experiment"]["data"] | {"lahead": meta["experiment"]["data"]["lahead"] + 1}
    assert serve_cmd.model_identity(meta | {"experiment": meta["experiment"] | {"data": data}}) != base


def test_a_body_nested_too_deeply_is_a_422() -> None:
    """json.loads recurses per nesting level: a few kilobytes of brackets raise RecursionError,
    which must be a one-line 422, not a 500."""
    from lstm_stateful.serve.body import Limits, Rejected, parse_predict

    body = b'{"seq": 3, "values": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(Rejected, match=r"^body: nested too deeply") as e:
        parse_predict("s", body, Limits(1, "none", 10_000))
    assert e.value.status == 422


@pytest.mark.anyio
async def test_new_streams_beyond_the_limit_get_507(model_dir: Path, tmp_path: Path) -> None:
    async with served(model_dir, tmp_path / "s.sqlite", max_streams=2) as app:
        c = app.client
        assert [(await _post(c, name, 0, [0.1])).status_code for name in ("a", "b")] == [200, 200]
        full = await _post(c, "c", 0, [0.1])
        assert full.status_code == 507 and "limit of 2 streams (--max-streams)" in full.json()["detail"]
        assert (await _post(c, "a", 1, [0.2])).status_code == 200  # known streams go on
        assert (await c.delete("/v1/streams/b")).status_code == 204
        assert (await _post(c, "c", 0, [0.1])).status_code == 200 and await _seq(c, "c") == 1


def test_the_serve_flags_defaults_are_the_configs() -> None:
    """The CLI repeats ServeConfig's defaults in its --help: they must agree."""
    import dataclasses

    from lstm_stateful.cli import cli

    options = {p.name: p.default for p in cli.commands["serve"].params}
    for field in dataclasses.fields(serve_cmd.ServeConfig):
        if field.name in options and field.name not in ("model", "learn"):
            assert options[field.name] == field.default, field.name
    for field in dataclasses.fields(LearnConfig):
        flag = field.name if field.name.startswith("drift") else f"learn_{field.name}"
        assert options[flag] == field.default, flag


@pytest.mark.anyio
async def test_no_answer_goes_out_before_its_round_commits(model_dir: Path, tmp_path: Path) -> None:
    """The state file's write is held half-way: the request stays unanswered (and its stream
    unchanged in memory) until the commit returns; then the answer comes."""
    import threading

    model = model_io.load_model(model_dir)
    values = VALUES[:3].reshape(3, 1)
    writing, release = threading.Event(), threading.Event()
    with Store.open(tmp_path / "s.sqlite", "x") as store:
        write = store.write

        def held(*args: Any, **kwargs: Any) -> None:
            writing.set()
            assert release.wait(30)
            write(*args, **kwargs)

        store.write = held  # type: ignore[method-assign]
        service = Service(Engine(model, max_batch=1), store)
        batcher = Batcher(service.process, wait_s=0.0)
        batcher.start()
        answer = asyncio.ensure_future(batcher.submit(Predict("held", 0, values, values_sha256(values))))
        assert await asyncio.to_thread(writing.wait, 30)  # the round is writing its transaction
        await asyncio.sleep(0.05)
        assert not answer.done() and service.get("held") is None  # nothing answered, nothing current
        release.set()
        outcome = await asyncio.wait_for(answer, 30)
        await batcher.stop()
    assert outcome.status == 200 and service.get("held") is not None and service.streams["held"].seq == 3


def test_equal_numbers_are_the_same_values() -> None:
    """A retry that writes 0.0 as -0.0 (or 1 as 1.0) is the same request."""
    assert values_sha256(np.array([[-0.0], [1.0]])) == values_sha256(np.array([[0.0], [1]]))
    assert values_sha256(np.array([[0.0], [1.0]])) != values_sha256(np.array([[0.0], [1.5]]))


@pytest.mark.anyio
async def test_metrics_count_every_answer_and_round(app: Served) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    c = app.client
    await _post(c, "m1", 0, VALUES[:3].tolist())
    await _post(c, "m2", 0, VALUES[:2].tolist())
    await _post(c, "m1", 0, VALUES[:3].tolist())  # a retry: 200 again
    await _post(c, "m1", 9, [0.1])  # 409
    await _post(c, "m1", 3, [[1.0]])  # 422
    await c.get("/nowhere")  # 404, no route
    await c.put("/v1/streams/m1")  # 405
    scrape = await c.get("/metrics")
    assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(scrape.text) for s in family.samples}  # fmt: skip

    def answered(route: str, method: str, status: int) -> float:
        key = ("lstm_stateful_requests_total", (("method", method), ("route", route), ("status", str(status))))
        return samples.get(key, 0.0)

    predict = "/v1/streams/{stream_id}/predict"
    assert [answered(predict, "POST", code) for code in (200, 409, 422)] == [3.0, 1.0, 1.0]
    assert answered("unmatched", "GET", 404) == 1.0 and answered("/v1/streams/{stream_id}", "PUT", 405) == 1.0
    assert samples[("lstm_stateful_request_seconds_count", (("route", predict),))] == 5.0
    assert samples[("lstm_stateful_streams", ())] == 2.0
    # The 422 never reached a round: four rounds of one request each (two new, the retry, the 409).
    assert samples[("lstm_stateful_round_requests_count", ())] == 4.0
    assert samples[("lstm_stateful_round_requests_sum", ())] == 4.0
    assert samples[("lstm_stateful_round_commit_seconds_count", ())] == 4.0
