"""A fleet model fed series as streams: the forecast from a stream's state equals the panel
forecast from the same history (``predict``), whatever the chunks; no retrace."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lstm_stateful.commands import fleet_predict
from lstm_stateful.commands.fleet import save_models
from lstm_stateful.core.panel import Clock, Panel
from lstm_stateful.core.panel_config import fleet_config
from lstm_stateful.engine.fleet import run_fleet
from lstm_stateful.models import fleet_stream as fs
from lstm_stateful.models.fleet_model import load_fleet_model

H = 5


def _panel(period: int) -> Panel:
    rng = np.random.default_rng(3)
    lengths = (40, 47, 33, 52, 36)
    values = tuple(
        20 + 4 * np.sin(2 * np.pi * (np.arange(n) + 3 * s) / max(period, 4)) + rng.normal(0, 0.5, n)
        for s, n in enumerate(lengths)
    )
    return Panel(tuple(f"s{s}" for s in range(len(lengths))), values, np.array([2, 0, 7, 1, 5]), Clock())


CASES = [("recursive", 6, "log"), ("direct", 6, "standard"), ("recursive", 1, "mean-abs")]


@pytest.fixture(scope="module", params=CASES)
def models(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Panel, Path]:
    strategy, season, scaling = request.param
    settings = {"data": "x.csv", "id": "id", "time": "t", "input": "y", "horizon": H, "units": 5, "epochs": 2}
    settings |= {"seeds": 2, "lahead": 3, "chunk": 8, "batch_size": 4, "stats": (), "strategy": strategy}
    settings |= {"scaling": scaling} | ({"season": season} if season > 1 else {})
    panel = _panel(season)
    result = run_fleet(fleet_config(settings), panel)
    directory = tmp_path_factory.mktemp("fleet")
    save_models(result, directory)
    return panel, directory


@pytest.mark.parametrize("mode", ["stateful", "stateless"])
def test_a_streams_forecast_equals_predict_from_the_same_history(models: tuple[Panel, Path], mode: str) -> None:
    panel, directory = models
    model = load_fleet_model(directory / mode)
    expected = fleet_predict.forecast(model, panel, H)
    scaling, _ = fleet_predict.scaling_for(model, panel)
    for s, values in enumerate(panel.values):
        state = fs.initial_state(model, scaling.loc[s : s + 1], scaling.scale[s : s + 1], panel.starts[s : s + 1])
        for a, b in ((0, 7), (7, 8), (8, len(values))):  # chunks of any sizes
            state, preds = fs.feed(model, model.params, state, values[None, a:b])
        got = fs.forecast(model, model.params, state, H)[0]
        np.testing.assert_allclose(got, expected[s], rtol=1e-5)
        # The one-step forecast after the last value is the horizon's first step.
        np.testing.assert_allclose(preds[0, -1], got[0], rtol=1e-6)
        assert state.ordinal[0] == panel.starts[s] + len(values)


def test_chunks_and_batches_give_what_one_call_gives(models: tuple[Panel, Path]) -> None:
    panel, directory = models
    model = load_fleet_model(directory / "stateful")
    scaling, _ = fleet_predict.scaling_for(model, panel)
    n = min(len(v) for v in panel.values)
    table = np.stack([v[:n] for v in panel.values])
    empty = fs.initial_state(model, scaling.loc, scaling.scale, panel.starts)
    whole, preds = fs.feed(model, model.params, empty, table)
    state = fs.initial_state(model, scaling.loc, scaling.scale, panel.starts)
    parts = []
    for a, b in ((0, 1), (1, 13), (13, n)):
        state, p = fs.feed(model, model.params, state, table[:, a:b])
        parts.append(p)
    np.testing.assert_allclose(np.concatenate(parts, axis=1), preds, rtol=1e-6)
    np.testing.assert_allclose(fs.forecast(model, model.params, state, H), fs.forecast(model, model.params, whole, H))
    # Nothing before a season of values: the forecasts after the first P - 1 values are NaN.
    period = model.config.panel.period
    assert np.isnan(preds[:, : period - 1]).all() and np.isfinite(preds[:, period - 1 :]).all()


def test_a_forecast_changes_nothing_and_does_not_retrace(models: tuple[Panel, Path]) -> None:
    panel, directory = models
    model = load_fleet_model(directory / "stateful")
    scaling, _ = fleet_predict.scaling_for(model, panel)
    state = fs.initial_state(model, scaling.loc[:1], scaling.scale[:1], panel.starts[:1])
    state, _ = fs.feed(model, model.params, state, panel.values[0][None, :20])
    first = fs.forecast(model, model.params, state, H)
    size = fs.forecast_core._cache_size()
    np.testing.assert_array_equal(fs.forecast(model, model.params, state, H), first)
    if model.config.panel.strategy == "recursive":
        # A longer horizon of the same size class reuses the program, and begins as the shorter one.
        longer = fs.forecast(model, model.params, state, H + 2)
        np.testing.assert_array_equal(longer[:, :H], first)
    assert fs.forecast_core._cache_size() == size
    fed = fs.feed_core._cache_size()
    fs.feed(model, model.params, state, panel.values[0][None, 20:25])
    fs.feed(model, model.params, state, panel.values[0][None, 25:32])  # 5 and 7 values pad to 8
    assert fs.feed_core._cache_size() == fed + 1
