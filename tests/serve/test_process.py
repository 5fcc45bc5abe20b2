"""`lstm-stateful serve` as a real process on loopback: concurrent streams, chunks, clients
that vanish mid-request, kill -9 under load and a restart, one writer per state file, and
the refusals at start. Every prediction is compared with the offline ``Predictor`` fed the
same stream's values; the clients are docs/serve_client.py's ``StreamClient``.

Loops are bounded, ports are picked by the server (--port 0, read from its ready line), and
every server is stopped by its own pid.
"""

from __future__ import annotations

import http.client
import itertools
import json
import random
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.serve.conftest import Server, Servers, as_floats, offline, refused, save_model, serve_client

StreamClient, ServeError, SeqConflict = serve_client.StreamClient, serve_client.ServeError, serve_client.SeqConflict

STREAMS = 64
TOL = {"rtol": 1e-6, "atol": 1e-6}


@pytest.fixture
def connect() -> Iterator[Callable[..., Any]]:
    """``connect(url, stream, **options)``: a ``StreamClient`` that does not retry (a failure
    fails the test unless the test asks for retries), closed after the test."""
    opened: list[Any] = []

    def open_client(url: str, stream: str, **options: Any) -> Any:
        opened.append(StreamClient(url, stream, **({"retry_for": 0} | options)))
        return opened[-1]

    yield open_client
    for client in opened:
        client.close()


@pytest.fixture(scope="module")
def server(module_servers: Servers, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Server:
    """One server for the tests that only need it to run (each uses its own stream ids)."""
    return module_servers.start(model_dir, tmp_path_factory.mktemp("state") / "streams.sqlite")


def series_of(seed: int, n: int, streams: int = STREAMS) -> np.ndarray:
    """(streams, n) raw values, one row per stream."""
    return np.random.default_rng(seed).normal(0.5, 2.0, size=(streams, n))


def in_parallel(work: Callable[[int], object], streams: int = STREAMS) -> list:
    """``work(i)`` for every stream at once, one thread (one connection) per stream."""
    with ThreadPoolExecutor(streams) as pool:
        return list(pool.map(work, range(streams)))


def stream_all(url: str, prefix: str, series: np.ndarray, chunk: int) -> np.ndarray:
    """Every stream's series sent by its own client, ``chunk`` values per request (1: bare
    numbers); the predictions (streams, n). Nothing is retried: a failure fails the test."""

    def one(i: int) -> list[float]:
        out: list[float] = []
        with StreamClient(url, f"{prefix}-{i}", retry_for=0) as client:
            for start in range(0, series.shape[1], chunk):
                part = series[i, start : start + chunk].tolist()
                out += client.send(part[0] if chunk == 1 else part)
        return out

    return np.array(in_parallel(one))


def post(server: Server, stream: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """One raw POST to the stream's predict endpoint: (status, JSON body)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(
            "POST", f"/v1/streams/{stream}/predict", body, {"Content-Type": "application/json"} | (headers or {})
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def test_64_streams_of_single_values(server: Server, model_dir: Path, connect: Callable[..., Any]) -> None:
    series = series_of(1, 30)
    got = stream_all(server.url, "single", series, chunk=1)
    want = offline(model_dir, series)
    assert np.isnan(want[:, :2]).all() and np.isfinite(want[:, 2:]).all()  # lahead 3: two nulls first
    np.testing.assert_allclose(got, want, **TOL)
    info = connect(server.url, "single-5").info()
    assert info["seq"] == 30 and info["id"] == "single-5"
    created, updated = (datetime.fromisoformat(info[k]) for k in ("created", "updated"))
    assert created.utcoffset() == updated.utcoffset() == UTC.utcoffset(None) and created <= updated


def test_64_streams_of_100_value_chunks(server: Server, model_dir: Path) -> None:
    series = series_of(2, 300)
    got = stream_all(server.url, "chunks", series, chunk=100)
    np.testing.assert_allclose(got, offline(model_dir, series), **TOL)


def test_a_retry_is_answered_again_and_a_gap_is_refused(
    server: Server, model_dir: Path, connect: Callable[..., Any]
) -> None:
    series = series_of(3, 6, streams=1)[0]
    client = connect(server.url, "retry")
    first = client.send(series[:4].tolist())
    again = post(server, "retry", json.dumps({"seq": 0, "values": series[:4].tolist()}).encode())
    assert again == (200, {"seq": 4, "predictions": [None if np.isnan(p) else p for p in first], "version": 0})
    status, conflict = post(server, "retry", json.dumps({"seq": 0, "values": series[:3].tolist()}).encode())
    assert status == 409 and conflict["seq"] == 4 and "\n" not in conflict["detail"]
    for stream, seq, server_seq in (("retry", 9, 4), ("never-seen", 3, 0)):  # ahead; unknown and not 0
        status, conflict = post(server, stream, json.dumps({"seq": seq, "values": [1.0]}).encode())
        assert (status, conflict["seq"]) == (409, server_seq)
    rest = client.send(series[4:].tolist())
    np.testing.assert_allclose([*first, *rest], offline(model_dir, series[None])[0], **TOL)
    stale = connect(server.url, "retry")  # seq 0: the server is at 6
    with pytest.raises(SeqConflict) as conflict_info:
        stale.send(1.0)
    assert conflict_info.value.server_seq == 6


# Each gets 422 with a one-line reason: NaN, infinities (a literal, or a number beyond float64),
# not numbers, no values, a seq that is not an int >= 0, a nested list for a one-input model.
REFUSED_BODIES = [
    b'{"seq": 1, "values": [NaN]}',
    b'{"seq": 1, "values": [Infinity]}',
    b'{"seq": 1, "values": [1e999]}',
    b'{"seq": 1, "values": ["1"]}',
    b'{"seq": 1, "values": []}',
    b'{"seq": -1, "values": [1]}',
    b'{"seq": 1.5, "values": [1]}',
    b'{"seq": true, "values": [1]}',
    b'{"seq": 1, "values": [[1, 2]]}',
    b'{"values": [1]}',
    b'{"seq": 1}',
]


def test_refused_bodies_apply_nothing(server: Server, model_dir: Path, connect: Callable[..., Any]) -> None:
    series = series_of(4, 3, streams=1)[0]
    client = connect(server.url, "refused")
    client.send(series[:1].tolist())
    for body in REFUSED_BODIES:
        status, reply = post(server, "refused", body)
        assert status == 422, body
        assert isinstance(reply["detail"], str) and "\n" not in reply["detail"], reply
    assert post(server, "refused", b'{"seq": 1, "values": [1] ')[0] in (400, 422)  # not JSON
    assert post(server, "bad%21id", b'{"seq": 0, "values": [1]}')[0] == 422
    assert post(server, "x" * 65, b'{"seq": 0, "values": [1]}')[0] == 422
    too_long = json.dumps({"seq": 1, "values": [0.5] * 10_001}).encode()
    assert post(server, "refused", too_long)[0] == 422  # --max-chunk 10000
    # Over --max-body-bytes (1 MiB): said by Content-Length, or counted while a chunked body is read.
    assert raw_status(server, post_head("refused", "Content-Length: 1048577\r\n"), b'{"seq": 1, ') == 413
    chunk = b'{"seq": 1, "values": [' + b"0.5, " * 60_000
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4))  # 1.2 MB, no last chunk
    assert raw_status(server, post_head("refused", "Transfer-Encoding: chunked\r\n"), chunks) == 413
    assert client.info()["seq"] == 1
    got = [*client.send(series[1:].tolist())]
    np.testing.assert_allclose(got, offline(model_dir, series[None])[0, 1:], **TOL)


def raw_status(server: Server, head: bytes, body: bytes = b"") -> int:
    """Send a request's head and part of its body, then read the status line without
    sending the rest: a server that checks sizes answers anyway (one that waits for the
    whole body times out, and the test fails)."""
    with raw_socket(server) as sock:
        sock.sendall(head + body)
        reply = b""
        while b"\r\n" not in reply:
            data = sock.recv(4096)
            assert data, f"the server closed without a response; got {reply!r}"
            reply += data
    return int(reply.split(b" ", 2)[1])


def post_head(stream: str, extra: str) -> bytes:
    """A POST's request line and headers, ``extra`` (lines ending in CRLF) among them."""
    head = f"POST /v1/streams/{stream}/predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
    return (head + extra + "\r\n").encode()


def raw_socket(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def request_bytes(stream: str, seq: int, values: list[float]) -> bytes:
    """A whole predict request as it goes on the wire."""
    body = json.dumps({"seq": seq, "values": values}).encode()
    return post_head(stream, f"Content-Length: {len(body)}\r\n") + body


def test_clients_that_vanish_mid_request(server: Server, model_dir: Path, connect: Callable[..., Any]) -> None:
    """Half a body then gone: nothing applied. A whole request then gone before the answer:
    applied once or not at all, and the client's retry (same seq, same values) tells which."""
    n, streams = 20, 8
    series = series_of(5, 3 * n, streams)
    want = offline(model_dir, series)
    clients = [connect(server.url, f"vanish-{i}") for i in range(streams)]
    got: list[list[float]] = [c.send(series[i, :n].tolist()) for i, c in enumerate(clients)]
    for i in range(streams):
        message = request_bytes(f"vanish-{i}", n, series[i, n : 2 * n].tolist())
        with raw_socket(server) as sock:  # headers and half the body
            sock.sendall(message[: len(message) - 40])
        with raw_socket(server) as sock:  # the whole request, then gone before the response
            sock.sendall(message)
    statuses = []
    for i, client in enumerate(clients):
        statuses.append(client.info()["seq"])
        got[i] += client.send(series[i, n : 2 * n].tolist())  # the retry: applied now, or the stored response
        got[i] += client.send(series[i, 2 * n :].tolist())
    assert set(statuses) <= {n, 2 * n}  # never half, never twice
    np.testing.assert_allclose(np.array(got), want, **TOL)
    assert connect(server.url, "vanish-0").info()["seq"] == 3 * n


STRICT = 48  # of the 64 streams in the kill test; the other 16 retry through the kill


def test_kill_9_under_load_loses_nothing_acknowledged(
    servers: Servers, model_dir: Path, tmp_path: Path, connect: Callable[..., Any]
) -> None:
    """64 streams; SIGKILL at a random moment; a restart on the same state file. The first 48
    clients stop at the kill, knowing what was acknowledged and what was in flight; the
    other 16 retry (same seq, same values) until the new server answers on the same port,
    and carry on as if nothing had happened."""
    state, n, delay = tmp_path / "kill.sqlite", 2000, random.uniform(0.3, 1.5)
    print(f"SIGKILL {delay:.3f} s into the load")  # shown with a failure, to reproduce its moment
    series = series_of(6, n)
    first = servers.start(model_dir, state)
    clients = [connect(first.url, f"kill-{i}", timeout=5, retry_for=0 if i < STRICT else 60) for i in range(STREAMS)]
    pending: list[list[float]] = [[] for _ in range(STREAMS)]
    patient: list[list[float]] = [[] for _ in range(STREAMS)]
    running, restarted = threading.Event(), threading.Event()

    def strict(i: int) -> None:  # half single values, half chunks of 7
        client, chunk = clients[i], 1 if i % 2 == 0 else 7
        while client.seq + chunk <= n:
            pending[i] = series[i, client.seq : client.seq + chunk].tolist()
            try:
                client.send(pending[i])
            except (OSError, http.client.HTTPException, ServeError):
                return  # killed: client.seq is what was acknowledged, pending[i] what was in flight
            running.set()
        pending[i] = []

    def retrying(i: int) -> None:  # single values, 20 of them after the restart
        client, after = clients[i], 0
        while after < 20 and client.seq < n:
            patient[i] += client.send(series[i, client.seq])
            after += restarted.is_set()

    with ThreadPoolExecutor(STREAMS) as pool:
        futures = [pool.submit(strict if i < STRICT else retrying, i) for i in range(STREAMS)]
        assert running.wait(30)
        time.sleep(delay)
        first.kill()
        for f in futures[:STRICT]:
            f.result(timeout=60)
        second = servers.start(model_dir, state, port=first.port)
        restarted.set()
        for f in futures[STRICT:]:
            f.result(timeout=60)
    want = offline(model_dir, series)
    assert all(pending[:STRICT]), "a stream finished before the kill: make n larger"
    resumed = [connect(second.url, f"kill-{i}", seq=clients[i].seq) for i in range(STRICT)]
    ahead = sum(check_after_restart(c, pending[i], series[i], want[i]) for i, c in enumerate(resumed))
    for i in range(STRICT, STREAMS):
        assert len(patient[i]) == clients[i].seq < n
        np.testing.assert_allclose(patient[i], want[i, : clients[i].seq], **TOL, err_msg=f"stream {i}")
    print(f"killed after {delay:.2f} s, {sum(c.seq for c in clients)} values acknowledged; {ahead} one request ahead")


def check_after_restart(client: Any, sent: list[float], series: np.ndarray, want: np.ndarray) -> bool:
    """One stream after the restart, resumed at the seq it had acknowledged: the server is
    there or one request ahead (the one in flight, applied, its answer lost); sending that
    request again gets its predictions either way, and the next ones follow on. Whether the
    server was ahead."""
    acked, server_seq = client.seq, client.info()["seq"]
    assert server_seq in (acked, acked + len(sent)), (client.path, acked, server_seq)  # nothing acknowledged lost
    got = client.send(sent) + client.send(series[acked + len(sent) : acked + len(sent) + 5].tolist())
    np.testing.assert_allclose(got, want[acked : acked + len(sent) + 5], **TOL, err_msg=client.path)
    return server_seq > acked


def test_a_two_input_log_diff_model(servers: Servers, tmp_path: Path, connect: Callable[..., Any]) -> None:
    """Rows of two inputs, one F-list per step (a bare F-list: one step), for a GRU that
    learned log-differences: 16 streams, and the refusals such a model adds."""
    model = save_model(tmp_path / "two", cell="gru", lahead=2, n_features=2, transform="log-diff")
    server = servers.start(model, tmp_path / "s.sqlite")
    series = np.random.default_rng(8).uniform(0.5, 2.0, (16, 25, 2))

    def one(i: int) -> list[float]:
        client = connect(server.url, f"two-{i}")
        out = client.send(series[i, 0].tolist())  # one row, as a bare list of two numbers
        cuts = (1, 2, 3 + i % 5, 12 + i % 7, 25)  # chunks of other sizes for every stream, batched together
        for start, stop in itertools.pairwise(cuts):
            out += client.send(series[i, start:stop].tolist())
        return out

    got = np.array(in_parallel(one, 16))
    want = offline(model, series)
    assert np.isnan(want[:, :2]).all() and np.isfinite(want[:, 2:]).all()  # no difference first, then lahead 2
    np.testing.assert_allclose(got, want, **TOL)
    for values in ([[1.0, 0.0]], [[1.0, -2.0]], [[1.0]], [[1.0, 2.0, 3.0]], [0.5], 0.5):  # log-diff needs > 0
        status, reply = post(server, "two-0", json.dumps({"seq": 25, "values": values}).encode())
        assert status == 422 and "\n" not in reply["detail"], (values, reply)
    assert connect(server.url, "two-0").info()["seq"] == 25


def test_one_writer_per_state_file(server: Server, model_dir: Path, connect: Callable[..., Any]) -> None:
    state = server.match["state"]
    code, lines = refused("--model", str(model_dir), "--state", state, "--port", "0")
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("lstm-stateful: error: --state: ") and state in lines[0]
    assert lines[0].endswith("is in use by another server (one writer per state file)")
    assert connect(server.url, "still-serving").send(1.0)  # the first one serves on


def _tampered(model_dir: Path, tmp_path: Path) -> list[str]:
    copy = shutil.copytree(model_dir, tmp_path / "tampered", ignore=shutil.ignore_patterns("streams.sqlite*"))
    weights = copy / "weights.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-3] ^= 0x40
    weights.write_bytes(bytes(blob))
    return ["--model", str(copy)]


def _empty_token(model_dir: Path, tmp_path: Path) -> list[str]:
    (tmp_path / "token").write_text("")
    return ["--model", str(model_dir), "--token-file", str(tmp_path / "token")]


@pytest.mark.parametrize(
    ("make_args", "flags", "fragment"),
    [
        (_tampered, ("--model",), "checksum"),
        (lambda m, t: ["--model", str(m), "--host", "0.0.0.0"], ("--host", "--token-file"), "--token-file"),
        (_empty_token, ("--token-file",), ""),
        (lambda m, t: ["--model", str(t / "nowhere")], ("--model",), "nowhere"),
    ],
    ids=["tampered-weights", "public-host-without-token", "empty-token-file", "no-model"],
)
def test_refusals_at_start(
    make_args: Callable[[Path, Path], list[str]], flags: tuple[str, ...], fragment: str, model_dir: Path, tmp_path: Path
) -> None:
    args = make_args(model_dir, tmp_path)
    code, lines = refused(*args, "--state", str(tmp_path / "s.sqlite"), "--port", "0")
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(tuple(f"lstm-stateful: error: {f}" for f in flags)), lines[0]
    assert fragment in lines[0], lines[0]


def test_port_in_use_is_refused(server: Server, model_dir: Path, tmp_path: Path) -> None:
    code, lines = refused("--model", str(model_dir), "--state", str(tmp_path / "s.sqlite"), "--port", str(server.port))
    assert code == 2 and len(lines) == 1 and lines[0].startswith("lstm-stateful: error: --port"), lines


def test_a_token_is_required_when_given(
    servers: Servers, model_dir: Path, tmp_path: Path, connect: Callable[..., Any]
) -> None:
    token = "k3y-" + "x" * 40
    (tmp_path / "token").write_text(token)
    server = servers.start(model_dir, tmp_path / "s.sqlite", "--token-file", str(tmp_path / "token"))
    body = json.dumps({"seq": 0, "values": [0.25]}).encode()
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": token},
        {"Authorization": f"Basic {token}"},
    ):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("POST", "/v1/streams/guarded/predict", body, headers)
        response = conn.getresponse()
        assert response.status == 401 and response.getheader("WWW-Authenticate", "").startswith("Bearer")
        assert "\n" not in json.loads(response.read())["detail"]
        conn.close()
    assert connect(server.url, "guarded", token=token).info()["seq"] == 0  # nothing applied
    got = connect(server.url, "guarded", token=token).send([0.5, 1.0, 1.5])
    np.testing.assert_allclose(got, offline(model_dir, np.array([[0.5, 1.0, 1.5]]))[0], **TOL)


def test_a_state_file_of_another_model_is_refused(
    servers: Servers, model_dir: Path, tmp_path: Path, connect: Callable[..., Any]
) -> None:
    state = tmp_path / "s.sqlite"
    server = servers.start(model_dir, state)
    connect(server.url, "a").send(1.0)
    server.stop()
    other = save_model(tmp_path / "other", cell="gru")
    code, lines = refused("--model", str(other), "--state", str(state), "--port", "0")
    assert code == 2 and len(lines) == 1 and lines[0].startswith("lstm-stateful: error: --state"), lines


def test_json_predictions_are_null_while_the_window_fills(server: Server) -> None:
    status, reply = post(server, "nulls", b'{"seq": 0, "values": 0.5}')  # a bare number: one value
    assert status == 200 and reply["seq"] == 1 and reply["predictions"] == [None]
    assert as_floats(post(server, "nulls", b'{"seq": 1, "values": [0.1, 0.2]}')[1]["predictions"]).shape == (2,)
