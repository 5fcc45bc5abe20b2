"""A client of `lstm-stateful serve` that retries safely: the standard library only.

    from serve_client import StreamClient

    with StreamClient("http://127.0.0.1:8000", "sensor-7") as client:
        for value in readings:
            prediction = client.send(value)[0]    # NaN while the model's window fills

Every request carries ``seq``, how many values of this stream the server had accepted
before it, and the server applies a request only when ``seq`` matches its own count. A
request whose answer was lost (a timeout, a dropped connection, a server killed and
restarted) can therefore be sent again as it was, with the same ``seq`` and values: if the
server had applied it, it answers with the stored response and applies nothing; if not, it
applies it now. Either way it is applied exactly once. ``send`` retries so for
``retry_for`` seconds, then raises the last error; calling it again with the same values is
just as safe.

A client that only retries its own last request never gets a 409. One means that the
stream moved without this client (another client on the same id, a DELETE) or that the
client lost count: ``send`` raises ``SeqConflict``, whose ``server_seq`` says where the
server is, and the caller decides what to send from there. A client that restarts reads the
server's count with ``info()["seq"]`` and carries on with ``seq=`` from there: it must
still have the values after it, as nothing here keeps values that were never sent.

    python docs/serve_client.py http://127.0.0.1:8000 demo 0.1 0.2 0.3
"""

from __future__ import annotations

import http.client
import json
import math
import sys
import time
import urllib.parse

# Worth another try: the server is (re)starting or overloaded, or a proxy could not reach it.
RETRY_STATUS = frozenset({502, 503, 504})


class ServeError(Exception):
    """A response that retrying cannot change: ``status`` and the server's one-line ``detail``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status, self.detail = status, detail


class SeqConflict(ServeError):
    """The server's count of the stream's values is not the client's: ``server_seq``."""

    def __init__(self, detail: str, server_seq: int) -> None:
        super().__init__(409, detail)
        self.server_seq = server_seq


class StreamClient:
    """One stream of one server. ``seq``: values the server has accepted so far (0: a new
    stream); ``version``: the weights' version of the latest answer (a learning server's
    grows). Failed connections are retried for ``retry_for`` seconds (0: never)."""

    def __init__(
        self,
        base_url: str,
        stream_id: str,
        token: str | None = None,
        *,
        seq: int = 0,
        timeout: float = 10.0,
        retry_for: float = 30.0,
    ) -> None:
        url = urllib.parse.urlsplit(base_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.path = f"/v1/streams/{urllib.parse.quote(stream_id, safe='')}"
        self.headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
        self.seq, self.timeout, self.retry_for, self.version = seq, timeout, retry_for, 0
        self._conn: http.client.HTTPConnection | None = None

    def send(
        self, values: float | list, start: float | str | None = None, targets: dict[int, float] | None = None
    ) -> list[float]:
        """Feed one value or a list of them (F inputs: an F-list per step, or one F-list);
        one prediction per step, NaN while the model's window fills. A fleet model's series
        gives the time of its first value with its first request (``start``, seq 0 only).
        A learning single-series server takes ``targets``: {seq: target} of recent values."""
        body = {"seq": self.seq, "values": values} | ({"start": start} if start is not None else {})
        if targets:
            body["targets"] = [{"seq": k, "value": y} for k, y in targets.items()]
        status, reply = self._request("POST", self.path + "/predict", body)
        if status == 409:  # the 409's body carries the server's seq
            raise SeqConflict(reply.get("detail", ""), int(reply.get("seq", -1)))
        if status != 200:
            raise ServeError(status, reply.get("detail", ""))
        self.seq, self.version = reply["seq"], reply.get("version", 0)
        return [math.nan if p is None else p for p in reply["predictions"]]

    def forecast(self, horizon: int | None = None) -> dict:
        """A fleet model's series: ``{"seq", "forecast": [...], "times": [...], "version"}``, its next
        ``horizon`` values (None: the model's own horizon), the stream left as it was."""
        status, reply = self._request("POST", self.path + "/forecast", {} if horizon is None else {"horizon": horizon})
        if status != 200:
            raise ServeError(status, reply.get("detail", ""))
        return reply

    def info(self) -> dict:
        """``{"id", "seq", "created", "updated"}``; seq 0 for a stream the server does not know."""
        status, reply = self._request("GET", self.path)
        if status == 404:
            return {"id": self.path.rsplit("/", 1)[1], "seq": 0}
        if status != 200:
            raise ServeError(status, reply.get("detail", ""))
        return reply

    def close(self) -> None:
        """Close the connection (the next request opens another)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> StreamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        """One request, sent again as it was after a failed connection or a 502/503/504."""
        data = None if body is None else json.dumps(body, allow_nan=False).encode()
        deadline, pause = time.monotonic() + self.retry_for, 0.05
        while True:
            try:
                status, raw = self._once(method, path, data)
                if status not in RETRY_STATUS:
                    return status, _json_or_text(raw)
                failure: Exception = ServeError(status, raw.decode(errors="replace"))
            except (OSError, http.client.HTTPException) as e:  # refused, reset, timed out, cut short
                self.close()
                failure = e
            if time.monotonic() + pause > deadline:
                raise failure
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def _once(self, method: str, path: str, data: bytes | None) -> tuple[int, bytes]:
        """One exchange on the keep-alive connection: (status, body)."""
        if self._conn is None:  # one keep-alive connection, reopened after a failure
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self._conn.request(method, path, body=data, headers=self.headers)
        response = self._conn.getresponse()
        return response.status, response.read()


def _json_or_text(raw: bytes) -> dict:
    """The server's JSON body; a body that is not JSON (from a proxy, say) as its ``detail``."""
    try:
        reply = json.loads(raw or b"{}")
    except ValueError:
        reply = None
    return reply if isinstance(reply, dict) else {"detail": raw.decode(errors="replace")}


def main(argv: list[str]) -> None:
    """``URL STREAM VALUE...``: send the values one by one, print each prediction."""
    with StreamClient(argv[0], argv[1]) as client:
        client.seq = client.info()["seq"]  # carry on where the stream is
        for value in argv[2:]:
            print(value, client.send(float(value))[0])


if __name__ == "__main__":
    main(sys.argv[1:])
