"""Gathering concurrent requests into rounds (asyncio).

Requests wait in one queue. A single worker takes a round when the oldest has waited
``wait_s`` (at once when ``full`` are pending, or when requests piled up during the last
round): at most one request per stream, so that a stream's requests are applied one after
the other, never in the same round; later ones wait for the next round. The round runs in
one worker thread (compute, then the commit), so the event loop keeps accepting requests,
and one round at a time. A request whose client went away is applied all the same: its
retry then gets the stored response.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from lstm_stateful.serve.engine import MAX_BATCH
from lstm_stateful.serve.ops import Op, Outcome, Predict, error_body


class Pending(NamedTuple):
    """A queued request: the op, its answer to come, when it arrived (the loop's clock)."""

    op: Op
    future: asyncio.Future[Outcome]
    arrived: float


def take_round(pending: Sequence[Pending]) -> tuple[list[Pending], list[Pending]]:
    """Split the queue into this round (at most one request per stream) and the rest, in order.

    A stream's first request is taken; a later predict with a lower ``seq`` replaces it (a
    client's requests may arrive out of order), but never across a delete or a forecast of
    that stream.
    """
    chosen: dict[str, int] = {}
    closed: set[str] = set()  # streams whose choice is final (a delete or a forecast is in the way)
    for i, item in enumerate(pending):
        op, name, j = item.op, item.op.stream, chosen.get(item.op.stream)
        if j is None:
            chosen[name] = i
            continue
        first = pending[j].op
        if name in closed:
            continue
        if not (isinstance(op, Predict) and isinstance(first, Predict)):
            closed.add(name)  # a delete or a forecast: nothing is reordered around it
        elif op.seq < first.seq:
            chosen[name] = i
    taken = set(chosen.values())
    return [pending[i] for i in sorted(taken)], [p for i, p in enumerate(pending) if i not in taken]


class Batcher:
    """The queue and its worker. process: one round's ops -> their outcomes (runs in a thread)."""

    def __init__(self, process: Callable[[Sequence[Op]], list[Outcome]], wait_s: float, full: int = MAX_BATCH) -> None:
        self._process = process
        self.wait_s = wait_s
        self.full = full
        self._pending: list[Pending] = []
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._wake = asyncio.Event()
        self._filled = asyncio.Event()

    def start(self) -> None:
        """Start the worker (in the running event loop)."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lstm-stateful-round")
        self._task = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        """Apply what is queued, then stop the worker and its thread."""
        self._stopping = True
        self._wake.set()
        self._filled.set()
        if self._task is not None:
            await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def submit(self, op: Op) -> Outcome:
        """Queue ``op`` and wait for its outcome."""
        if self._stopping or self._task is None:
            return Outcome(503, error_body("the server is shutting down: retry later"))
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._pending.append(Pending(op, future, asyncio.get_running_loop().time()))
        self._wake.set()
        if len(self._pending) >= self.full:
            self._filled.set()
        return await future

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending or not self._stopping:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._gather(loop)
            batch, self._pending = take_round(self._pending)
            try:
                outcomes = await loop.run_in_executor(self._executor, self._process, [p.op for p in batch])
            except Exception as e:  # process answers its own failures; this is a last guard for the worker
                outcomes = [Outcome(500, error_body(f"internal error: {type(e).__name__}: {e}"))] * len(batch)
            for item, outcome in zip(batch, outcomes, strict=True):
                if not item.future.done():  # cancelled: its client went away (the op was applied)
                    item.future.set_result(outcome)

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until the oldest request has waited ``wait_s``, or ``full`` are pending."""
        delay = self._pending[0].arrived + self.wait_s - loop.time()
        if delay <= 0 or len(self._pending) >= self.full or self._stopping:
            return
        self._filled.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._filled.wait(), delay)
