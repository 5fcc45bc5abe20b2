"""Streams and rounds: the exactly-once rules, and a round of requests applied together.

A stream's record (``Stream``) holds the values it has had accepted (``seq``), its state,
and the last request applied with the response sent for it. A request carries the ``seq``
its client believes in:

* ``seq`` equal to the stream's: the values are applied (a new stream is created by seq 0);
* ``seq`` and values equal to the last applied request's (a retry whose answer was lost):
  the stored response again, nothing applied;
* anything else: 409 with the stream's ``seq`` (0 for an unknown stream), to resynchronise.

A round takes at most one request per stream (the batcher sees to it). ``plan_round``
decides each, feeds the applied ones through the engine grouped by chunk length (one
batched step per length), and returns the outcomes with the records to write; ``Service``
writes them in one transaction and only then makes them current, so an outcome is
returned only for what is on the disk.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np

from lstm_stateful.core.errors import ConfigError
from lstm_stateful.serve import learner as lr
from lstm_stateful.serve.engine import Batched, Leaves
from lstm_stateful.serve.learning_engine import Learns
from lstm_stateful.serve.ops import Delete, Forecast, Op, Outcome, Predict, error_body
from lstm_stateful.serve.store import LearnWrite, Row, Store

log = logging.getLogger(__name__)


class Stream(NamedTuple):
    """One stream's record. seq: values accepted; state: its leaves (``engine``); last_seq,
    last_sha256, last_response: the last request applied (its seq, the SHA-256 of its
    values) and the JSON sent for it; created, updated: ISO 8601 UTC."""

    seq: int
    state: Leaves
    last_seq: int
    last_sha256: str
    last_response: bytes
    created: str
    updated: str


class Round(NamedTuple):
    """What a round decided: one outcome per request, the records to write, the streams to
    remove, and for a learning engine, its step (None: the engine does not learn)."""

    outcomes: list[Outcome]
    upserts: dict[str, Stream]
    deletes: list[str]
    learned: lr.Step | None = None


def utc_now() -> str:
    """Now, ISO 8601 UTC to the millisecond: ``2026-01-31T12:00:00.123Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def response_body(seq: int, predictions: np.ndarray, version: int) -> bytes:
    """``{"seq": seq, "predictions": [...], "version": v}``, NaN (a filling window) as null;
    version: the weights' that made the predictions."""
    preds = [p if math.isfinite(p) else None for p in predictions.tolist()]
    return json.dumps({"seq": seq, "predictions": preds, "version": version}, separators=(",", ":")).encode()


def decide(current: Stream | None, op: Predict) -> Outcome | None:
    """None: apply ``op``; else the answer without applying it (the stored response, or 409)."""
    server = 0 if current is None else current.seq
    if op.seq == server:
        return None
    if current is not None and op.seq == current.last_seq and op.sha256 == current.last_sha256:
        return Outcome(200, current.last_response)
    if current is None:
        detail = f"stream {op.stream!r} is unknown (new or deleted): start it with seq 0, not {op.seq}"
    elif op.seq == current.last_seq:
        other = "other values" if op.start is None else "other values or another start"
        detail = f"seq {op.seq} was applied with {other}; the stream has {server} values: send seq {server}"
    else:
        detail = f"seq {op.seq} does not match the stream's {server} values accepted: send seq {server}"
    return Outcome(409, error_body(detail, seq=server))


def plan_round(
    engine: Batched, streams: Mapping[str, Stream], ops: Sequence[Op], now: str, max_streams: int | None = None
) -> Round:
    """Decide and compute one round (at most one op per stream); changes nothing. A request
    that would start a stream beyond ``max_streams`` is refused (507)."""
    if len({op.stream for op in ops}) != len(ops):  # each is decided against its stream's record before the round
        raise ValueError("a round holds at most one request per stream")
    outcomes: dict[int, Outcome] = {}
    deletes: list[str] = []
    by_length: dict[int, list[tuple[int, Predict]]] = {}  # the requests to apply, by chunk length
    by_horizon: dict[int, list[tuple[int, Stream]]] = {}  # the forecasts, by horizon
    for i, op in enumerate(ops):
        current = streams.get(op.stream)
        if isinstance(op, Delete):
            if current is not None:
                deletes.append(op.stream)
            outcomes[i] = Outcome(204, b"") if current is not None else Outcome(404, unknown_body(op.stream))
        elif isinstance(op, Forecast):
            if current is None:
                outcomes[i] = Outcome(404, unknown_body(op.stream))
            else:
                by_horizon.setdefault(op.horizon, []).append((i, current))
        elif (answer := decide(current, op)) is not None:
            outcomes[i] = answer
        elif isinstance(engine, Learns) and (problem := engine.refuse(op, current and current.state)) is not None:
            outcomes[i] = Outcome(409, error_body(problem, seq=op.seq))  # its targets do not fit the stream
        elif current is None and max_streams is not None and len(streams) + _starting(by_length) >= max_streams:
            outcomes[i] = Outcome(507, _full(max_streams))
        else:
            by_length.setdefault(op.values.shape[0], []).append((i, op))
    upserts: dict[str, Stream] = {}
    sink: list[lr.Labelled] = []
    for n, group in by_length.items():
        records = _apply(engine, streams, [op for _, op in group], n, now, sink)
        for (i, op), record in zip(group, records, strict=True):
            upserts[op.stream] = record
            outcomes[i] = Outcome(200, record.last_response)
    for horizon, waiting in by_horizon.items():
        answers = engine.forecast([record.state for _, record in waiting], horizon)
        for (i, record), result in zip(waiting, answers, strict=True):
            outcomes[i] = _forecast_outcome(record.seq, result, engine.version())
    learned = None
    if isinstance(engine, Learns) and sink:  # a round that fed nothing learns nothing
        requests = [(op.stream, op.seq) for group in by_length.values() for _, op in group]
        learned = engine.learn(sink, requests)
    return Round([outcomes[i] for i in range(len(ops))], upserts, deletes, learned)


def _forecast_outcome(seq: int, answer: dict | str, version: int) -> Outcome:
    """A forecast's answer: 200 ``{"seq", "forecast", "times"?, "version"}``, or 409 with
    why the stream cannot forecast yet (``answer`` a string)."""
    if isinstance(answer, str):
        return Outcome(409, error_body(answer, seq=seq))
    return Outcome(200, json.dumps({"seq": seq, **answer, "version": version}, separators=(",", ":")).encode())


def _starting(by_length: Mapping[int, list[tuple[int, Predict]]]) -> int:
    """Requests of the round so far that start a new stream (seq 0)."""
    return sum(op.seq == 0 for group in by_length.values() for _, op in group)


def _full(max_streams: int) -> bytes:
    limit = f"the server holds its limit of {max_streams} streams (--max-streams)"
    return error_body(f"{limit}; delete streams no longer fed")


def unknown_body(stream: str) -> bytes:
    """The 404 body of a stream the service does not hold."""
    return error_body(f"stream {stream!r} is unknown (never started, or deleted)")


def _apply(engine: Batched, streams: Mapping[str, Stream], ops: Sequence[Predict], n: int, now: str,
           sink: list[lr.Labelled]) -> list[Stream]:  # fmt: skip
    """Feed requests of n values each in one batched step: their streams' new records (what
    a learning engine learns from goes to ``sink``)."""
    currents = [streams.get(op.stream) for op in ops]
    states = [engine.begin(op) if c is None else c.state for op, c in zip(ops, currents, strict=True)]
    targets = engine.targets(list(ops), n) if isinstance(engine, Learns) else None
    new_states, preds = engine.step(states, np.stack([op.values for op in ops]), sink, targets)
    records = []
    for op, current, state, p in zip(ops, currents, new_states, preds, strict=True):
        body = response_body(op.seq + n, p, engine.version())
        created = now if current is None else current.created
        records.append(Stream(op.seq + n, state, op.seq, op.sha256, body, created, now))
    return records


class Service:
    """The streams of one model, current in memory and durable in a ``Store``.

    ``process`` runs one round at a time (the batcher's worker thread); ``get`` may be
    called from any thread and sees only committed records.
    """

    def __init__(self, engine: Batched, store: Store, max_streams: int | None = None) -> None:
        self.engine = engine
        self.store = store
        self.max_streams = max_streams
        self.streams: dict[str, Stream] = {row.id: self._record(row) for row in store.rows()}
        if isinstance(engine, Learns):
            self._resume(engine)
        # Told of every round committed: its requests, compute and commit seconds (the metrics).
        self.on_round: Callable[[int, float, float], None] = lambda size, compute_s, commit_s: None

    def _record(self, row: Row) -> Stream:
        try:
            state = self.engine.codec.decode(bytes(row.state))
        except ValueError as e:
            raise ConfigError("state", f"{str(self.store.path)!r}: stream {row.id!r} holds a state that does not "
                              f"fit the model: {e}") from None  # fmt: skip
        return Stream(row.seq, state, row.last_seq, row.last_values_sha256, row.last_response.encode(),
                      row.created, row.updated)  # fmt: skip

    def get(self, stream: str) -> Stream | None:
        return self.streams.get(stream)

    def process(self, ops: Sequence[Op]) -> list[Outcome]:
        """Apply one round: compute, commit in one transaction, then make it current."""
        start = time.perf_counter()
        try:
            plan = plan_round(self.engine, self.streams, ops, utc_now(), self.max_streams)
        except Exception as e:  # a bug, not bad input: answer every request of the round, keep serving
            log.exception("a round failed")
            return [Outcome(500, error_body(f"internal error: {type(e).__name__}: {e}"))] * len(ops)
        rows = [self._row(name, record) for name, record in plan.upserts.items()]
        learned = None if plan.learned is None else self._learn_write(plan.learned)
        computed = time.perf_counter()
        try:
            self.store.write(rows, plan.deletes, learned)
        except (sqlite3.Error, OSError) as e:
            log.error("writing the state file failed: %s", e)
            failed = Outcome(503, error_body(f"the state could not be written ({e}); nothing was applied: retry"))
            changed = set(plan.upserts) | set(plan.deletes)
            return [failed if op.stream in changed else o for op, o in zip(ops, plan.outcomes, strict=True)]
        self.streams.update(plan.upserts)
        for name in plan.deletes:
            del self.streams[name]
        if plan.learned is not None:
            self.engine.commit(plan.learned.learner)  # type: ignore[attr-defined]
            for event in plan.learned.events:  # said once it happened: after the commit
                log.warning("%s", event)
        self.on_round(len(ops), computed - start, time.perf_counter() - computed)
        return plan.outcomes

    def _resume(self, engine: Learns) -> None:
        """The learner the state file holds (its first: version 0, written with a checkpoint)."""
        stored = self.store.learned()
        codec = engine.weights_codec
        if stored is None:
            start = engine.learner
            blob = lr.encode_weights(codec, start.current)
            self.store.write([], [], LearnWrite(0, blob, lr.stored_info(start), best=(0, blob), checkpoint=True))
            return
        current, best = stored
        try:
            weights = lr.decode_weights(codec, current.version, current.weights)
            best_weights = lr.decode_weights(codec, best.version, best.weights)
            learner = lr.resumed(weights, best_weights, current.info)
        except ValueError as e:
            raise ConfigError("state", f"{str(self.store.path)!r} holds learnt weights that do not fit the model "
                              f"or --learn's settings: {e}") from None  # fmt: skip
        engine.commit(learner)

    def _learn_write(self, step: lr.Step) -> LearnWrite:
        """What a learning round writes: its weights, its best ones if they changed, its log
        record, and every ``keep`` versions a checkpoint."""
        engine: Learns = self.engine  # type: ignore[assignment]
        new, codec = step.learner, engine.weights_codec
        # Without a new version the weights stay as stored: only the counters and scores move.
        blob = lr.encode_weights(codec, new.current) if step.record is not None else None
        best = None if new.best is engine.learner.best else (new.best.version, lr.encode_weights(codec, new.best))
        record = None if step.record is None else (step.record.version, step.record.kind, step.record.blob,
                                                   step.record.requests)  # fmt: skip
        checkpoint = step.record is not None and step.record.version % engine.cfg.keep == 0
        return LearnWrite(new.current.version, blob, lr.stored_info(new), best, record, checkpoint)

    def _row(self, name: str, r: Stream) -> Row:
        state = self.engine.codec.encode(r.state)
        return Row(name, r.seq, state, r.last_seq, r.last_sha256, r.last_response.decode(), r.created, r.updated)
