"""The service's batched step for a fleet model: each series a stream (``models.fleet_stream``).

A stream's id is its series' id. A series the model was trained on keeps the scaling it
learnt there; any other sets its own from the values of its first request (at least
``new_series_values``: a season or the horizon, whichever is longer), as ``predict`` does.
The first request gives the time of its first value (``start``), which places the stream
on the model's clock: the season's phase, and the times of its forecasts. A forecast reads
a stream's state and leaves it as it was.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from lstm_stateful.core.panel import fit_scaling
from lstm_stateful.models import fleet_stream as fs
from lstm_stateful.models.fleet_model import FleetModel, new_series_values
from lstm_stateful.serve import openapi
from lstm_stateful.serve.body import FleetLimits, parse_fleet_predict, parse_forecast
from lstm_stateful.serve.engine import MAX_BATCH, Batched, Leaves
from lstm_stateful.serve.ops import Forecast, Predict


class FleetEngine(Batched):
    """A fleet model's batched steps and forecasts for the service."""

    def __init__(self, model: FleetModel, max_batch: int = MAX_BATCH) -> None:
        self.model = model
        self._params = jax.device_put(model.params)
        self._known = {name: k for k, name in enumerate(model.ids)}
        self.first_values = new_series_values(model)
        super().__init__(self._state(0.0, 1.0, None), max_batch)

    def _state(self, loc: float, scale: float, start: int | None) -> fs.FleetStreamState:
        ordinal = np.array([fs.NO_ORDINAL if start is None else start], np.int64)
        return fs.initial_state(self.model, np.array([loc]), np.array([scale]), ordinal)

    def limits(self, max_chunk: int) -> FleetLimits:
        p = self.model.config.panel
        return FleetLimits(self.model.clock, p.period, self.model.scaling.kind == "log", self.first_values,
                           frozenset(self._known), p.horizon, p.strategy == "direct", max_chunk)  # fmt: skip

    def parser(self, max_chunk: int) -> Callable[[str, bytes], Predict]:
        return functools.partial(parse_fleet_predict, limits=self.limits(max_chunk))

    def forecast_parser(self, max_chunk: int) -> Callable[[str, bytes], Forecast]:
        return functools.partial(parse_forecast, limits=self.limits(max_chunk))

    def predict_route(self, max_chunk: int) -> dict[str, Any]:
        clock = self.model.clock
        first: float | str = float(clock.label(0)) if clock.kind == "number" else clock.label(0)
        example = {"seq": 0, "values": [112.0, 118.0], "start": first}
        low = "non-negative" if self.model.scaling.kind == "log" else "any"
        return openapi.predict_route(openapi.fleet_predict_request(max_chunk, low), example, fleet=True)

    def forecast_route(self, max_chunk: int) -> dict[str, Any]:
        p = self.model.config.panel
        return openapi.forecast_route(p.horizon if p.strategy == "direct" else max_chunk, p.horizon)

    def begin(self, op: Predict) -> Leaves:
        """A new stream: the trained scaling of a known series, else one set from its first values."""
        s = self.model.scaling
        k = self._known.get(op.stream)
        if k is not None:
            loc, scale = float(s.loc[k]), float(s.scale[k])
        else:
            first = op.values[: self.first_values, 0]
            own = fit_scaling(s.kind, [first], [op.stream], self.first_values)
            loc, scale = float(own.loc[0]), float(own.scale[0])
        return tuple(np.asarray(leaf) for leaf in jax.tree.leaves(self._state(loc, scale, op.start)))

    def _feed(self, state: Any, table: np.ndarray) -> tuple[Any, np.ndarray]:
        return fs.feed(self.model, self._params, state, table[..., 0])

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
        or why it cannot forecast yet (fewer values than a season)."""
        period = self.model.config.panel.period
        answers: list[dict | str] = []
        for piece, _ in self.pieces(states, np.zeros(len(states))):
            b = len(piece)
            state: fs.FleetStreamState = self.stacked(piece, b)
            values = fs.forecast(self.model, self._params, state, horizon)[:b]
            seen = np.asarray(state.core.seen)[:b]
            for i in range(b):
                if seen[i] < period:
                    answers.append(f"the stream has {seen[i]} values; a forecast needs a season of {period}")
                    continue
                answer: dict = {"forecast": [v if math.isfinite(v) else None for v in values[i].tolist()]}
                if state.ordinal[i] != fs.NO_ORDINAL and (times := self._times(state.ordinal[i], horizon)):
                    answer["times"] = times
                answers.append(answer)
        return answers
