"""Panels: many series of one quantity (a fleet of sensors, stores, products), each with its
own length and start, on one regular time grid.

A ``Panel`` holds each series' values in time order and the ordinal of its first value on
the panel's grid (the ``Clock``): ordinal k is the k-th step after the grid's origin, so
series that share a time share an ordinal, and a season's phase is ``ordinal % season``
for every series alike. ``io.panel_file`` reads one from a long-format file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from lstm_stateful.core.errors import ConfigError

# How a clock counts: plain numbers, calendar months (monthly, quarterly, yearly data: a
# month has no fixed length), or a fixed length of time in seconds (days, hours...).
CLOCK_KINDS = ("number", "month", "seconds")


@dataclasses.dataclass(frozen=True)
class Clock:
    """The panel's time grid: ordinal k is the time ``origin + k * step``.

    kind "number": origin and step are numbers (a time column of integers or floats);
    "month": origin is the first grid month as ``year * 12 + month - 1``, step a count of
    months (1 monthly, 3 quarterly, 12 yearly), ``day`` the day of month every stamp has;
    "seconds": origin is a POSIX time in seconds (UTC), step a count of seconds.
    ``dates``: the file's stamps had no time of day (labels are then dates alone); ``utc``:
    they carried a UTC offset (labels are then in UTC, written with ``+00:00``).
    """

    kind: str = "number"
    origin: float = 0.0
    step: float = 1.0
    day: int = 1
    dates: bool = False
    utc: bool = False

    def __post_init__(self) -> None:
        if self.kind not in CLOCK_KINDS:
            raise ConfigError("time", f"clock kind must be one of {', '.join(CLOCK_KINDS)}, got {self.kind!r}")
        if not (np.isfinite(self.step) and self.step > 0):
            raise ConfigError("time", f"the time step must be a finite number > 0, got {self.step!r}")

    def label(self, ordinal: int) -> str:
        """The time of grid ordinal ``ordinal`` as the file would write it (ISO 8601 for dates)."""
        if self.kind == "number":
            # 12 significant digits: 0.1 steps label 2.8, not 2.8000000000000003.
            value = float(f"{self.origin + ordinal * self.step:.12g}")
            return str(int(value)) if value.is_integer() else repr(value)
        if self.kind == "month":
            month = int(self.origin) + ordinal * int(self.step)
            return dt.date(month // 12, month % 12 + 1, self.day).isoformat()
        moment = dt.datetime.fromtimestamp(self.origin + ordinal * self.step, dt.UTC)
        if self.dates:
            return moment.date().isoformat()
        return moment.isoformat() if self.utc else moment.replace(tzinfo=None).isoformat()

    def labels(self, ordinals: np.ndarray) -> list[str]:
        """``label`` of each ordinal (flattened), in order; each distinct ordinal is labelled
        once (a panel's forecast steps share a few hundred times)."""
        unique, inverse = np.unique(np.asarray(ordinals).ravel(), return_inverse=True)
        text = [self.label(int(k)) for k in unique]
        return [text[i] for i in inverse]


@dataclasses.dataclass(frozen=True, eq=False)
class Panel:
    """S series on one clock.

    ids: (S,) the series' ids as the file writes them, each once; values: S float64 arrays in
    time order, series s of its own length n_s; starts: (S,) int64, the grid ordinal of each
    series' first value (its value i is at ordinal ``starts[s] + i``); clock: the grid.
    """

    ids: tuple[str, ...]
    values: tuple[np.ndarray, ...]
    starts: np.ndarray
    clock: Clock = dataclasses.field(default_factory=Clock)

    def __post_init__(self) -> None:
        if not (len(self.ids) == len(self.values) == len(self.starts)):
            problem = f"{len(self.ids)} ids, {len(self.values)} value arrays and {len(self.starts)} starts"
            raise ValueError(f"Panel: ids, values and starts must match; got {problem}")

    @property
    def lengths(self) -> np.ndarray:
        """(S,) int64: each series' number of values."""
        return np.array([v.shape[0] for v in self.values], np.int64)

    def __len__(self) -> int:
        return len(self.ids)


def check_lengths(panel: Panel, horizon: int, windows: int, period: int, needed: int) -> None:
    """Every series is long enough for ``needed`` values (``PanelConfig.min_length``); else
    a one-line error naming the shortest series and what its values are used for."""
    lengths = panel.lengths
    if len(panel) == 0:
        raise ConfigError("data", "holds no series")
    shortest = int(np.argmin(lengths))
    if lengths[shortest] < needed:
        uses = f"{windows} test window(s) and a validation part of `horizon` {horizon} each, and a training part"
        uses += f" of at least {period + 2} values (`season` {period} + 2)" if period > 1 else " of at least 3 values"
        raise ConfigError(
            "data",
            f"series {panel.ids[shortest]!r} has {lengths[shortest]} values, too short: a series needs {needed} "
            f"({uses}); {int(np.sum(lengths < needed))} of {len(panel)} series fall short",
        )


@dataclasses.dataclass(frozen=True, eq=False)
class PanelScaling:
    """Each series' scaling, from its training part only: model units z from data units y.

    kind "log": z = log1p(y) - loc; "mean-abs": z = y / scale; "standard": z = (y - loc) / scale.
    loc, scale: (S,) float64.
    """

    kind: str
    loc: np.ndarray
    scale: np.ndarray

    def to_model(self, y: np.ndarray) -> np.ndarray:
        """y: (S, ...) data units -> model units, float64."""
        loc, scale = self._columns(y.ndim)
        return np.log1p(y) - loc if self.kind == "log" else (y - loc) / scale

    def to_data(self, z: np.ndarray) -> np.ndarray:
        """z: (S, ...) model units -> data units, float64."""
        loc, scale = self._columns(np.ndim(z))
        z = np.asarray(z, np.float64)
        return np.expm1(z + loc) if self.kind == "log" else z * scale + loc

    def _columns(self, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        shape = (-1,) + (1,) * (ndim - 1)
        return self.loc.reshape(shape), self.scale.reshape(shape)


def check_scaling_domain(kind: str, values: Sequence[np.ndarray], ids: Sequence[str]) -> None:
    """log scaling reads the values through log1p: all must be >= 0 (``values``: one array a
    series, named by ``ids``)."""
    if kind != "log":
        return
    for s, series in enumerate(values):
        if (low := float(np.min(series))) < 0:
            problem = f"log needs values >= 0; series {ids[s]!r} has {low:g}"
            raise ConfigError("scaling", f"{problem}; use mean-abs or standard")


def fit_scaling(kind: str, train: list[np.ndarray], ids: Sequence[str], recent: int) -> PanelScaling:
    """The scaling of each series from its training values ``train`` (S arrays, data units,
    named by ``ids``).

    log: loc is the mean of log1p over the last ``recent`` training values (the level the
    forecast starts from), and needs values >= 0; mean-abs: scale is the mean absolute
    value; standard: the mean and standard deviation. A zero scale (a constant or all-zero
    training part) becomes 1, so the series passes unscaled rather than dividing by zero.
    """
    check_scaling_domain(kind, train, ids)
    if kind == "log":
        loc = np.array([np.mean(np.log1p(v[-recent:])) for v in train])
        return PanelScaling(kind, loc, np.ones_like(loc))
    if kind == "mean-abs":
        scale = np.array([np.mean(np.abs(v)) for v in train])
        return PanelScaling(kind, np.zeros_like(scale), np.where(scale > 0, scale, 1.0))
    loc, scale = np.array([np.mean(v) for v in train]), np.array([np.std(v) for v in train])
    return PanelScaling(kind, loc, np.where(scale > 0, scale, 1.0))


class Layout(NamedTuple):
    """The panel right-aligned on N columns: every series ends in the last one, so the
    validation and test origins are the same columns for all. Padding columns come first.

    z: (S, N) float32 model units, 0 where the series has no value; present: (S, N) bool;
    valid: (S, N) bool, the step has every input (present, a season of values before it);
    phase: (S, N) float32, the season's phase in [0, 1) of each column's time;
    first_chunk, n_chunks: the training columns are [first_chunk, first_chunk + n_chunks *
    chunk), ending at the validation origin; origins: the validation origin, then the K test
    origins (columns; each forecasts the H columns from it); lead: columns of padding before
    the longest series.
    """

    z: np.ndarray
    present: np.ndarray
    valid: np.ndarray
    phase: np.ndarray
    first_chunk: int
    n_chunks: int
    origins: tuple[int, ...]
    lead: int


def _right_aligned(
    panel: Panel, scaling: PanelScaling, n: int, tail: int, period: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every series ending ``tail`` columns before the last of ``n``: z (S, n) float32 model
    units (0 where absent), present, valid (S, n) bool, phase (S, n) float32 (``Layout``)."""
    lengths = panel.lengths
    end = n - tail
    present = np.zeros((len(panel), n), bool)
    padded = np.zeros((len(panel), n))
    for s, values in enumerate(panel.values):
        padded[s, end - values.shape[0] : end] = values
        present[s, end - values.shape[0] : end] = True
    z = np.zeros((len(panel), n), np.float32)
    z[present] = scaling.to_model(padded)[present]
    local = np.arange(n)[None, :] - (end - lengths[:, None])  # each column's index in its series
    valid = present & (local >= period)
    phase = (np.mod(panel.starts[:, None] + local, period) / period).astype(np.float32)
    return z, present, valid, phase


def layout(
    panel: Panel, scaling: PanelScaling, horizon: int, windows: int, period: int, lahead: int, chunk: int
) -> Layout:
    """The arrays of the training and forecasting programs (see ``Layout``)."""
    longest = int(panel.lengths.max())
    train_stop = longest - (windows + 1) * horizon
    align = (-train_stop) % chunk
    lead = lahead - 1 + align + period  # a stateless window and a season before the first column
    arrays = _right_aligned(panel, scaling, lead + longest, 0, period)
    origins = tuple(lead + train_stop + k * horizon for k in range(windows + 1))
    return Layout(*arrays, lead - align, (align + train_stop) // chunk, origins, lead)


def future_layout(panel: Panel, scaling: PanelScaling, horizon: int, period: int, lahead: int) -> Layout:
    """The arrays to forecast every series' next ``horizon`` values from its end: the panel
    right-aligned, then ``horizon`` empty columns (their phase set by the clock); the one
    origin is the first of them. ``first_chunk`` and ``n_chunks`` are unused (0)."""
    lead = lahead - 1 + period
    n = lead + int(panel.lengths.max()) + horizon
    return Layout(*_right_aligned(panel, scaling, n, horizon, period), 0, 0, (n - horizon,), lead)
