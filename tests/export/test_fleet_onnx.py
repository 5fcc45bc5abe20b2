"""A fleet model's one-step ONNX graph under ONNX Runtime forecasts what ``predict`` forecasts
from the same history: every mode, strategy, scaling and cell, a season or none."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from lstm_stateful.cli import main
from lstm_stateful.commands import fleet_predict
from lstm_stateful.commands.fleet import save_models
from lstm_stateful.core.panel import Clock, Panel
from lstm_stateful.core.panel_config import fleet_config
from lstm_stateful.engine.fleet import run_fleet
from lstm_stateful.export.fleet_onnx import fleet_state_tensors, write_fleet_onnx
from lstm_stateful.models.fleet_model import FleetModel, load_fleet_model
from tests.helpers import usage_error

H = 4
CASES = {
    "recursive-lstm-log": {"strategy": "recursive", "season": 5, "scaling": "log"},
    "direct-gru-standard": {"strategy": "direct", "season": 5, "scaling": "standard", "cell": "gru", "layers": 2},
    "recursive-rnn-mean-abs-no-season": {"strategy": "recursive", "scaling": "mean-abs", "cell": "simple"},
}


def _panel() -> Panel:
    rng = np.random.default_rng(2)
    lengths = (30, 26, 35, 28)
    values = tuple(
        30 + 5 * np.sin(2 * np.pi * np.arange(n) / 5 + s) + rng.normal(0, 0.5, n) for s, n in enumerate(lengths)
    )
    return Panel(tuple(f"p{s}" for s in range(4)), values, np.array([1, 0, 4, 2]), Clock())


@pytest.fixture(scope="module", params=list(CASES))
def fleet_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    settings = {"data": "x.csv", "id": "id", "time": "t", "input": "y", "horizon": H, "units": 4, "epochs": 2}
    settings |= {"seeds": 2, "lahead": 3, "chunk": 8, "batch_size": 2, "stats": ()} | CASES[request.param]
    result = run_fleet(fleet_config(settings), _panel())
    directory = tmp_path_factory.mktemp("fleet")
    save_models(result, directory)
    return directory


def _run(session: ort.InferenceSession, model: FleetModel, panel: Panel, horizon: int) -> np.ndarray:
    """Every series through the graph, one value a call, then its forecast: (S, horizon)."""
    meta = {p.key: p.value for p in onnx.load(session._model_path).metadata_props}  # type: ignore[attr-defined]
    series = json.loads(meta["series"])
    period = model.config.panel.period
    out = []
    for name, start, values in zip(panel.ids, panel.starts, panel.values, strict=True):
        tensors = fleet_state_tensors(model)
        state = {t.name: np.zeros([1 if d == "B" else d for d in t.shape], t.dtype) for t in tensors}
        state["loc"][0], state["scale"][0] = series[name]
        state["phase"][0] = start % period
        for v in values:
            y, *nxt = session.run(None, {"value": np.array([v]), "own": np.array([False])} | state)
            state = dict(zip(state, nxt, strict=True))
        steps = [y[0]]
        while sum(len(s) for s in steps) < horizon:  # a recursive model rolls on its own forecasts
            y, *nxt = session.run(None, {"value": np.zeros(1), "own": np.array([True])} | state)
            state = dict(zip(state, nxt, strict=True))
            steps.append(y[0])
        out.append(np.concatenate(steps)[:horizon])
    return np.array(out)


@pytest.mark.parametrize("mode", ["stateful", "stateless"])
def test_the_graph_forecasts_what_predict_forecasts(fleet_dir: Path, tmp_path: Path, mode: str) -> None:
    model = load_fleet_model(fleet_dir / mode)
    path = write_fleet_onnx(model, tmp_path / "fleet.onnx")[0]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    panel = _panel()
    np.testing.assert_allclose(_run(session, model, panel, H), fleet_predict.forecast(model, panel, H), rtol=2e-5)


def test_the_forecast_is_nan_until_a_season_of_values(fleet_dir: Path, tmp_path: Path) -> None:
    model = load_fleet_model(fleet_dir / "stateful")
    session = ort.InferenceSession(str(write_fleet_onnx(model, tmp_path / "f.onnx")[0]))
    state = {t.name: np.zeros([1 if d == "B" else d for d in t.shape], t.dtype) for t in fleet_state_tensors(model)}
    state["scale"][0] = 1.0
    got = []
    for v in _panel().values[0][: model.config.panel.period + 1]:
        y, *nxt = session.run(None, {"value": np.array([v]), "own": np.array([False])} | state)
        state = dict(zip(state, nxt, strict=True))
        got.append(bool(np.isnan(y).all()))
    period = model.config.panel.period
    assert got == [True] * (period - 1) + [False, False]


def test_export_writes_the_fleet_graph_and_refuses_what_it_cannot_hold(
    fleet_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(fleet_dir / "stateless")
    capsys.readouterr()
    assert main(["export", "--model", model, "--format", "onnx", "--out", str(tmp_path / "f.onnx")]) == 0
    said = capsys.readouterr().out
    assert said.startswith("Exported the stateless ") and "fleet model (2 seeds, 4 series) as onnx" in said
    assert onnx.load(str(tmp_path / "f.onnx")).graph.input[0].name == "value"
    export = ["export", "--model", model, "--format"]
    usage_error([*export, "keras", "--out", str(tmp_path / "k" / "f.keras")], capsys, "--format: a fleet model exports")
    refused = [*export, "onnx", "--chunk", "4", "--out", str(tmp_path / "k" / "f.onnx")]
    usage_error(refused, capsys, "--chunk: a fleet model's graph takes one step")
    assert not (tmp_path / "k").exists()
