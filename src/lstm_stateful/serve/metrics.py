"""The service's Prometheus metrics (``GET /metrics``, the text format), in a registry of
its own: requests and errors by route and status, latency by route, each round's size and
its compute and commit times, the streams held.

``HttpMetrics`` is pure ASGI middleware: it sees every answer, a 401 of the token check
and a 404 of an unknown path included (their route: ``unmatched``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Latency buckets in seconds, from a single value's round trip to a large chunk's.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"})
ROUND_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """The metrics of one service. streams: how many streams it holds, read at each scrape."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, streams: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("lstm_stateful_requests", "HTTP requests answered, by route, method and status.",
                                ["route", "method", "status"], registry=r)  # fmt: skip
        self.latency = Histogram("lstm_stateful_request_seconds", "Time from a request's arrival to its answer.",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.round_size = Histogram("lstm_stateful_round_requests", "Requests applied together in a round.",
                                    buckets=ROUND_SIZES, registry=r)  # fmt: skip
        self.round_seconds = Histogram("lstm_stateful_round_compute_seconds", "A round's compute (the model's steps).",
                                       buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.commit_seconds = Histogram("lstm_stateful_round_commit_seconds", "A round's commit to the state file.",
                                        buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        Gauge("lstm_stateful_streams", "Streams held (in memory and in the state file).",
              registry=r).set_function(streams)  # fmt: skip

    def round(self, size: int, compute_s: float, commit_s: float) -> None:
        """One round applied: its requests, compute and commit seconds."""
        self.round_size.observe(size)
        self.round_seconds.observe(compute_s)
        self.commit_seconds.observe(commit_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HttpMetrics:
    """Counts and times every HTTP answer by its route's path template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500  # a handler that fails before answering is a 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            # Any token is a method to HTTP: others are counted together, so clients cannot grow the labels.
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
