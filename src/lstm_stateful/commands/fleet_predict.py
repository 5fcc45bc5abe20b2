"""``predict`` with ``--id``: forecast every series of a panel file from its end with a saved
fleet model (``run --id ... --save DIR`` writes ``DIR/stateful`` and ``DIR/stateless``).

Each series' state runs through its whole history, then the model forecasts its next H
values (the mean over the saved seeds). A series the model was trained on keeps the
scaling learnt in training; a new series takes its scaling from its first values (as many
as training used: ``new_series_values``), so the same series scales the same way however
long its history has grown.
"""

from __future__ import annotations

import csv
import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lstm_stateful.core.config import require_int
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.core.panel import Panel, PanelScaling
from lstm_stateful.io import dirs
from lstm_stateful.io.atomic import write_with
from lstm_stateful.models.fleet_model import new_series_scaling, new_series_values

if TYPE_CHECKING:
    from lstm_stateful.models.fleet_model import FleetModel


@dataclasses.dataclass(frozen=True)
class FleetPredictConfig:
    """model: a saved fleet model directory; data, id_col, time_col, value_col: the panel;
    out: the CSV to write; horizon: steps to forecast (None: the model's own); fill: as ``run``."""

    model: Path
    data: Path
    id_col: str
    time_col: str
    value_col: str
    out: Path
    horizon: int | None = None
    fill: str | None = None

    def __post_init__(self) -> None:
        if self.horizon is not None:
            require_int("horizon", self.horizon)
        if Path(self.out).is_dir():
            raise ConfigError("out", f"{str(self.out)!r} is a directory; give the path of the CSV file to write")


@dataclasses.dataclass(frozen=True)
class FleetPredictOutput:
    """What ``predict_fleet`` did: series forecast, new ones among them, steps, time, file."""

    series: int
    new_series: int
    horizon: int
    seconds: float
    out: Path
    model: FleetModel


def _horizon(model: FleetModel, asked: int | None) -> int:
    trained = model.config.panel.horizon
    if asked is None:
        return trained
    if model.config.panel.strategy == "direct" and asked != trained:
        raise ConfigError(
            "horizon", f"must be {trained}: a direct model's head emits exactly the {trained} steps it learnt"
        )
    return asked


def aligned(model: FleetModel, panel: Panel) -> Panel:
    """``panel`` on the model's clock: its starts counted from the model's origin, so a season's
    phase is the one training saw (its labels stay the file's own)."""
    a, b = model.clock, panel.clock
    if (a.kind, a.step) != (b.kind, b.step):
        raise ConfigError(
            "time", f"steps of {b.step:g} ({b.kind}); the model was trained on steps of {a.step:g} ({a.kind})"
        )
    offset = (b.origin - a.origin) / a.step
    if abs(offset - round(offset)) > 1e-6:
        raise ConfigError("time", "is off the model's time grid: its stamps fall between the training panel's steps")
    return Panel(panel.ids, panel.values, panel.starts + round(offset), a)


def scaling_for(model: FleetModel, panel: Panel) -> tuple[PanelScaling, int]:
    """Each series' scaling (known ids: the trained one; new ones: from their first values),
    and how many are new."""
    known = {i: k for k, i in enumerate(model.ids)}
    first = new_series_values(model)
    fresh = [s for s, i in enumerate(panel.ids) if i not in known]
    loc, scale = np.ones(len(panel)), np.ones(len(panel))
    if fresh:
        if (short := next((s for s in fresh if panel.values[s].shape[0] < first), None)) is not None:
            raise ConfigError("data", f"new series {panel.ids[short]!r} has {panel.values[short].shape[0]} values; "
                              f"a series the model has not seen needs {first} to set its scaling")  # fmt: skip
        own = new_series_scaling(model, [panel.values[s] for s in fresh], [panel.ids[s] for s in fresh])
        loc[fresh], scale[fresh] = own.loc, own.scale
    for s, i in enumerate(panel.ids):
        if i in known:
            loc[s], scale[s] = model.scaling.loc[known[i]], model.scaling.scale[known[i]]
    return PanelScaling(model.scaling.kind, loc, scale), len(fresh)


def forecast(model: FleetModel, panel: Panel, horizon: int) -> np.ndarray:
    """(S, horizon) data units: every series' next values, the mean over the model's seeds."""
    from lstm_stateful.core import panel_train as pt
    from lstm_stateful.core.panel import future_layout
    from lstm_stateful.engine.fleet import spec_of

    p = model.config.panel
    if (short := next((s for s, v in enumerate(panel.values) if v.shape[0] < p.period), None)) is not None:
        raise ConfigError("data", f"series {panel.ids[short]!r} has {panel.values[short].shape[0]} values; "
                          f"the model needs at least {p.period} (a season)")  # fmt: skip
    scaling, _ = scaling_for(model, panel)
    shape = future_layout(panel, scaling, horizon, p.period, p.lahead)
    cfg = dataclasses.replace(model.config, panel=dataclasses.replace(p, horizon=horizon))
    spec = spec_of(cfg, shape)
    data = pt.PanelData(shape.z, shape.valid, shape.phase)
    z = pt.forecast_model(model.params, data, origin=shape.origins[0], spec=spec, stateful=model.mode == "stateful")
    # Each seed back in data units, then the mean: as the run averages its seeds.
    return np.asarray(scaling.to_data(np.moveaxis(np.asarray(z, np.float64), 0, 1)).mean(axis=1))


def predict_fleet(cfg: FleetPredictConfig) -> FleetPredictOutput:
    """Forecast every series of ``cfg.data`` and write ``series, step, time, forecast``."""
    from lstm_stateful.io.panel_file import read_panel
    from lstm_stateful.models.fleet_model import load_fleet_model

    dirs.writable(Path(cfg.out).parent, "out")
    model = load_fleet_model(cfg.model)
    horizon = _horizon(model, cfg.horizon)
    start = time.perf_counter()
    read = read_panel(cfg.data, cfg.id_col, cfg.time_col, cfg.value_col, cfg.fill)
    panel = aligned(model, read)
    _, new = scaling_for(model, panel)
    values = forecast(model, panel, horizon)
    _write(Path(cfg.out), read, values)  # times as the file writes them, on its own clock
    return FleetPredictOutput(len(panel), new, horizon, time.perf_counter() - start, Path(cfg.out), model)


def _write(out: Path, panel: Panel, values: np.ndarray) -> None:
    """``series, step, time, forecast``: values (S, H) data units, times on ``panel``'s clock."""
    h = values.shape[1]
    labels = panel.clock.labels((panel.starts + panel.lengths)[:, None] + np.arange(h)[None, :])

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(("series", "step", "time", "forecast"))
            for s, series in enumerate(panel.ids):
                w.writerows((series, j + 1, labels[s * h + j], repr(float(values[s, j]))) for j in range(h))

    write_with(out, write)
