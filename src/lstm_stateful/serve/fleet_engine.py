"""The service's batched step for a fleet model: each series a stream (``models.fleet_stream``).

A stream's id is its series' id. A series the model was trained on keeps the scaling it
learnt there; any other sets its own from its first ``new_series_values`` values (a season
or the horizon, whichever is longer), as ``predict`` does: they wait in its state
(``Served``), in as many requests as they come, predicting NaN.
The first request gives the time of its first value (``start``), which places the stream
on the model's clock: the season's phase, and the times of its forecasts. A forecast reads
a stream's state and leaves it as it was.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from lstm_stateful.io.panel_file import MAX_ORDINAL
from lstm_stateful.models import fleet_stream as fs
from lstm_stateful.models.fleet_model import FleetModel, new_series_scaling, new_series_values
from lstm_stateful.serve import openapi
from lstm_stateful.serve.body import FleetLimits, parse_fleet_predict, parse_forecast
from lstm_stateful.serve.engine import MAX_BATCH, Batched, Leaves
from lstm_stateful.serve.ops import Forecast, Predict


class Served(NamedTuple):
    """A served series (axis 0: B series): its stream state, and for a series the model was
    not trained on, the first values waiting to set its scaling. pending: (B, N) float64
    raw values; waiting: (B,) int64, how many of them are there, -1 once the series is scaled;
    learn: what a learning engine keeps of the series (``learning_engine.Learning``), else None."""

    stream: fs.FleetStreamState
    pending: np.ndarray
    waiting: np.ndarray
    learn: Any = None


class FleetEngine(Batched):
    """A fleet model's batched steps and forecasts for the service."""

    def __init__(self, model: FleetModel, max_batch: int = MAX_BATCH) -> None:
        self.model = model
        self._params = jax.device_put(model.params)
        self._known = {name: k for k, name in enumerate(model.ids)}
        self.first_values = new_series_values(model)
        super().__init__(self._served(0.0, 1.0, None, -1), max_batch)
        self._waiting = self.codec.names.index("waiting")  # a state's leaf telling whether it is scaled

    def _served(self, loc: float, scale: float, start: int | None, waiting: int) -> Served:
        ordinal = np.array([fs.NO_ORDINAL if start is None else start], np.int64)
        stream = fs.initial_state(self.model, np.array([loc]), np.array([scale]), ordinal)
        return Served(stream, np.zeros((1, self.first_values)), np.array([waiting], np.int64), self._learning(stream))

    def _learning(self, stream: fs.FleetStreamState) -> Any:
        """What a learning engine keeps of a new stream beside its state (nothing here)."""
        return None

    def _leaves(self, served: Served) -> Leaves:
        return tuple(np.asarray(leaf) for leaf in jax.tree.leaves(served))

    def _unpacked(self, leaves: Leaves) -> Served:
        return jax.tree.unflatten(self.codec.treedef, list(leaves))

    def limits(self, max_chunk: int) -> FleetLimits:
        p = self.model.config.panel
        return FleetLimits(self.model.clock, p.period, self.model.scaling.kind == "log", p.horizon,
                           p.strategy == "direct", max_chunk)  # fmt: skip

    def parser(self, max_chunk: int) -> Callable[[str, bytes], Predict]:
        return functools.partial(parse_fleet_predict, limits=self.limits(max_chunk))

    def forecast_parser(self, max_chunk: int) -> Callable[[str, bytes], Forecast]:
        return functools.partial(parse_forecast, limits=self.limits(max_chunk))

    def predict_route(self, max_chunk: int) -> dict[str, Any]:
        clock = self.model.clock
        first: float | str = float(clock.label(0)) if clock.kind == "number" else clock.label(0)
        example = {"seq": 0, "values": [112.0, 118.0], "start": first}
        low = "non-negative" if self.model.scaling.kind == "log" else "any"
        request = openapi.fleet_predict_request(max_chunk, low, clock, self.model.config.panel.period > 1, MAX_ORDINAL)
        return openapi.predict_route(request, example, fleet=True)

    def forecast_route(self, max_chunk: int) -> dict[str, Any]:
        p = self.model.config.panel
        return openapi.forecast_route(p.horizon if p.strategy == "direct" else max_chunk, p.horizon)

    def begin(self, op: Predict) -> Leaves:
        """A new stream: a series the model was trained on starts scaled as in training; any
        other waits for its first ``first_values`` values (``_gathered``)."""
        k = self._known.get(op.stream)
        if k is None:
            return self._leaves(self._served(0.0, 1.0, op.start, 0))
        s = self.model.scaling
        return self._leaves(self._served(float(s.loc[k]), float(s.scale[k]), op.start, -1))

    def step(self, states: Sequence[Leaves], table: np.ndarray, sink: list | None = None,
             targets: np.ndarray | None = None) -> tuple[list[Leaves], np.ndarray]:  # fmt: skip
        """``Batched.step`` for the scaled series; a series still gathering its first values
        one by one (``_gathered``)."""
        ready = [s[self._waiting][0] < 0 for s in states]
        if all(ready):
            return super().step(states, table, sink)
        out: list[Leaves] = list(states)
        preds = np.full(table.shape[:2], np.nan)
        if any(ready):
            at = [i for i, r in enumerate(ready) if r]
            new, p = super().step([states[i] for i in at], table[at], sink)
            for k, i in enumerate(at):
                out[i], preds[i] = new[k], p[k]
        for i in (i for i, r in enumerate(ready) if not r):
            out[i], preds[i] = self._gathered(self._unpacked(states[i]), table[i, :, 0])
        return out, preds

    def _gathered(self, served: Served, values: np.ndarray) -> tuple[Leaves, np.ndarray]:
        """A new series' values (n,): kept until ``first_values`` are there (predictions NaN);
        then its scaling is set from them, and every value so far runs through the model
        (this request's predictions are the last n)."""
        n, w, need = values.shape[0], int(served.waiting[0]), self.first_values
        values_so_far = np.concatenate([served.pending[0, :w], values])
        if values_so_far.shape[0] < need:
            pending = served.pending.copy()
            pending[0, w : w + n] = values
            waited = Served(served.stream, pending, np.array([w + n], np.int64), served.learn)
            return self._leaves(waited), np.full(n, np.nan)
        own = new_series_scaling(self.model, [values_so_far], ["new"])
        stream = fs.initial_state(self.model, own.loc, own.scale, served.stream.ordinal)
        done, p = self._scaled(stream, values_so_far, np.zeros_like(served.pending))
        return self._leaves(done), p[0, -n:]

    def _scaled(
        self, stream: fs.FleetStreamState, values: np.ndarray, pending: np.ndarray
    ) -> tuple[Served, np.ndarray]:
        """A new series just scaled (``stream``: its empty state) fed its first values (n,):
        its state and predictions (1, n)."""
        fed, p = fs.feed(self.model, self._params, stream, values[None])
        return Served(fed, pending, np.array([-1], np.int64), self._learning(fed)), p

    def _feed(self, state: Any, table: np.ndarray, b: int, sink: list | None, targets: np.ndarray | None = None
              ) -> tuple[Any, np.ndarray]:  # fmt: skip
        stream, preds = fs.feed(self.model, self._params, state.stream, table[..., 0])
        return state._replace(stream=stream), preds

    def warm_up(self) -> None:
        """Compile every size class for one value per stream, and for the learnt horizon's forecast."""
        for size in self.classes:
            self.step([self.initial] * size, np.ones((size, 1, 1)))
            self.forecast([self.initial] * size, self.model.config.panel.horizon)

    def _times(self, first: int, horizon: int) -> list[str] | None:
        """The labels of ordinals first..first + horizon - 1; None past the calendar's end (year 9999)."""
        try:
            return self.model.clock.labels(first + np.arange(horizon))
        except (ValueError, OverflowError):
            return None

    def forecast(self, states: Sequence[Leaves], horizon: int) -> list[dict | str]:
        """Each stream's next ``horizon`` values and their times (when its start was given),
        or why it cannot forecast yet (fewer values than a season, or than its scaling needs)."""
        period = self.model.config.panel.period
        answers: list[dict | str] = []
        for piece, _ in self.pieces(states, np.zeros(len(states))):
            b = len(piece)
            served: Served = self.stacked(piece, b)
            state = served.stream
            values = fs.forecast(self.model, self._params, state, horizon)[:b]
            seen = np.asarray(state.core.seen)[:b]
            for i in range(b):
                if (w := int(served.waiting[i])) >= 0:
                    answers.append(f"the stream has {w} values; a series the model was not trained on sets its "
                                   f"scaling from its first {self.first_values}")  # fmt: skip
                elif seen[i] < period:
                    answers.append(f"the stream has {seen[i]} values; a forecast needs a season of {period}")
                else:
                    answers.append(self._answer(values[i], int(state.ordinal[i]), horizon))
        return answers

    def _answer(self, values: np.ndarray, ordinal: int, horizon: int) -> dict:
        answer: dict = {"forecast": [v if math.isfinite(v) else None for v in values.tolist()]}
        if ordinal != fs.NO_ORDINAL and (times := self._times(ordinal, horizon)):
            answer["times"] = times
        return answer
