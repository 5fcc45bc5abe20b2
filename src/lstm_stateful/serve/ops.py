"""The operations a round applies, and their outcomes (imported by every serve module).

A ``Predict`` feeds a stream; a ``Forecast`` reads a stream's next values without feeding
it (fleet models); a ``Delete`` forgets it. An ``Outcome`` is the HTTP answer to one.
"""

from __future__ import annotations

import hashlib
import json
from typing import NamedTuple

import numpy as np


class Predict(NamedTuple):
    """A checked request: feed ``values`` (n, F) raw float64 to stream ``stream`` at ``seq``.
    start: the grid ordinal of the first value (a fleet stream's first request; else None);
    targets: (seq, value) delayed labels of earlier values (a learning server); both part of
    the request's identity ``sha256``."""

    stream: str
    seq: int
    values: np.ndarray
    sha256: str
    start: int | None = None
    targets: tuple[tuple[int, float], ...] = ()


class Delete(NamedTuple):
    """Forget stream ``stream``: its next request starts from seq 0 and a zero state."""

    stream: str


class Forecast(NamedTuple):
    """The next ``horizon`` values of stream ``stream`` from its state, which stays as it is."""

    stream: str
    horizon: int


Op = Predict | Delete | Forecast


class Outcome(NamedTuple):
    """An answer: HTTP status and JSON body (empty for 204)."""

    status: int
    body: bytes


def values_sha256(values: np.ndarray) -> str:
    """The identity of a request's values: SHA-256 of their float64 bytes, (n, F) in C order.
    -0.0 counts as 0.0 (adding 0.0 makes it so): equal numbers are the same values."""
    return hashlib.sha256((np.ascontiguousarray(values, np.float64) + 0.0).tobytes()).hexdigest()


def request_sha256(values: np.ndarray, start: int | None, targets: tuple[tuple[int, float], ...] = ()) -> str:
    """The identity of a predict request: its values' (``values_sha256``), and its start and
    targets if it has them."""
    digest = values_sha256(values)
    if start is not None:
        digest = hashlib.sha256(f"{digest} start {start}".encode()).hexdigest()
    if targets:
        digest = hashlib.sha256(f"{digest} targets {[(k, float(y) + 0.0) for k, y in targets]}".encode()).hexdigest()
    return digest


def error_body(detail: str, **extra: object) -> bytes:
    """``{"detail": "..."}`` (one line), with any extra fields."""
    return json.dumps({"detail": " ".join(detail.split()), **extra}).encode()
