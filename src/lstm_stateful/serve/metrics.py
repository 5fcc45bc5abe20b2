"""The service's Prometheus metrics (``GET /metrics``, the text format), in a registry of
its own: requests and errors by route and status, latency by route, each round's size and
its compute and commit times, the streams held; for a learning service, the weights'
version, the optimizer steps, rollbacks, drift alarms and the prequential scores.

``HttpMetrics`` is pure ASGI middleware: it sees every answer, a 401 of the token check
and a 404 of an unknown path included (their route: ``unmatched``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Latency buckets in seconds, from a single value's round trip to a large chunk's.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"})
ROUND_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class LearningCollector:
    """The learner's figures, read at each scrape from ``learning`` (``learner.info``)."""

    def __init__(self, learning: Callable[[], dict]) -> None:
        self.learning = learning

    def collect(self) -> Iterator[Metric]:
        info = self.learning()
        yield GaugeMetricFamily("lstm_stateful_model_version", "The weights' version that answers.",
                                value=info["version"])  # fmt: skip
        for name, value, text in (
            ("learning_updates", info["updates"], "Optimizer steps taken on the streams."),
            ("rollbacks", info["rollbacks"], "Rollbacks to the best version."),
            ("drift_alarms", info["drift"]["alarms"], "Page-Hinkley alarms on the errors."),
        ):
            yield CounterMetricFamily(f"lstm_stateful_{name}", text, value=value)
        scores = info["scores"]
        yield CounterMetricFamily("lstm_stateful_labels", "Labels scored (each new value).", value=scores["labels"])
        mae = GaugeMetricFamily("lstm_stateful_prequential_mae", "Prequential mean absolute one-step error, model "
                                "units, of the learning and frozen models (window: recent or all).",
                                labels=["model", "window"])  # fmt: skip
        for model in ("learning", "frozen"):
            for window, key in (("all", f"{model}_mae"), ("recent", f"{model}_recent_mae")):
                if scores[key] is not None:
                    mae.add_metric([model, window], scores[key])
        yield mae


class Metrics:
    """The metrics of one service. streams: how many streams it holds, read at each scrape;
    learning: a learning service's ``learner.info`` (None: it does not learn)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, streams: Callable[[], int], learning: Callable[[], dict] | None = None) -> None:
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
        if learning is not None:
            r.register(LearningCollector(learning))

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
