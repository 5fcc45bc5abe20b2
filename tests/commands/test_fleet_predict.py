"""Saved fleet models: predict from a series' end equals the run's own forecast; checks and refusals."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from lstm_stateful.commands import fleet_predict
from lstm_stateful.commands.fleet import save_models
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.core.panel import Clock, Panel
from lstm_stateful.core.panel_config import fleet_config
from lstm_stateful.engine.fleet import FleetResult, run_fleet
from lstm_stateful.models.fleet_model import load_fleet_model

H, P = 5, 7


def _panel() -> Panel:
    rng = np.random.default_rng(11)
    lengths = (45, 52, 38, 60, 41, 47)
    values = tuple(
        20 + 4 * np.sin(2 * np.pi * (np.arange(n) + 2 * s) / P) + rng.normal(0, 0.4, n) for s, n in enumerate(lengths)
    )
    return Panel(tuple(f"u{s}" for s in range(len(lengths))), values, np.array([3, 0, 9, 1, 4, 2]), Clock())


def _write_csv(path: Path, panel: Panel, cut: int = 0) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("id", "t", "y"))
        for i, start, values in zip(panel.ids, panel.starts, panel.values, strict=True):
            kept = values[: len(values) - cut]
            w.writerows((i, int(start) + k, repr(float(v))) for k, v in enumerate(kept))


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[FleetResult, Path]:
    settings = {"data": "x.csv", "id": "id", "time": "t", "input": "y", "horizon": H, "season": P, "units": 5}
    settings |= {"epochs": 2, "seeds": 3, "lahead": 3, "chunk": 10, "batch_size": 4, "stats": ()}
    result = run_fleet(fleet_config(settings), _panel())
    directory = tmp_path_factory.mktemp("models")
    save_models(result, directory)
    return result, directory


@pytest.mark.parametrize("mode", ["stateful", "stateless"])
def test_predict_from_the_test_origin_equals_the_runs_forecast(
    saved: tuple[FleetResult, Path], tmp_path: Path, mode: str
) -> None:
    result, directory = saved
    _write_csv(tmp_path / "history.csv", result.panel, cut=H)  # each series up to its test origin
    out = tmp_path / "f.csv"
    cfg = fleet_predict.FleetPredictConfig(directory / mode, tmp_path / "history.csv", "id", "t", "y", out)
    done = fleet_predict.predict_fleet(cfg)
    assert (done.series, done.new_series, done.horizon) == (6, 0, H)
    rows = list(csv.DictReader(out.read_text().splitlines()))
    got = np.array([float(r["forecast"]) for r in rows]).reshape(6, H)
    np.testing.assert_allclose(got, result.forecasts[mode][:, 0], rtol=2e-6)
    # Times continue each series' own clock from its end.
    assert [r["time"] for r in rows[:H]] == [str(3 + 45 - H + j) for j in range(H)]


def test_a_saved_model_round_trips_and_a_changed_file_is_refused(saved: tuple[FleetResult, Path]) -> None:
    result, directory = saved
    model = load_fleet_model(directory / "stateful")
    assert model.ids == result.panel.ids and model.mode == "stateful"
    np.testing.assert_array_equal(model.scaling.loc, result.scaling.loc)
    np.testing.assert_array_equal(np.asarray(model.params.dense.kernel), np.asarray(result.params[0].dense.kernel))
    meta = json.loads((directory / "stateful" / "model.json").read_text())
    assert meta["seeds"] == 3 and meta["config"]["panel"]["horizon"] == H
    broken = directory / "broken"
    broken.mkdir()
    (broken / "model.json").write_text((directory / "stateful" / "model.json").read_text())
    blob = bytearray((directory / "stateful" / "weights.safetensors").read_bytes())
    blob[-3] ^= 1
    (broken / "weights.safetensors").write_bytes(bytes(blob))
    with pytest.raises(ConfigError, match="does not match its checksum") as e:
        load_fleet_model(broken)
    assert e.value.param == "model"


def test_a_new_series_takes_its_scaling_from_its_first_values(saved: tuple[FleetResult, Path]) -> None:
    result, directory = saved
    model = load_fleet_model(directory / "stateful")
    need = fleet_predict.new_series_values(model)
    assert need == max(P, H)
    values = 30 + np.arange(40.0)
    panel = Panel(("u0", "fresh"), (result.panel.values[0], values), np.array([3, 0]), Clock())
    scaling, new = fleet_predict.scaling_for(model, panel)
    assert new == 1
    assert scaling.loc[0] == model.scaling.loc[0]
    assert scaling.loc[1] == pytest.approx(np.mean(np.log1p(values[:need])))
    short = Panel(("fresh",), (values[: need - 1],), np.array([0]), Clock())
    with pytest.raises(ConfigError, match=f"needs {need} to set its scaling"):
        fleet_predict.scaling_for(model, short)


def test_another_time_step_and_a_direct_horizon_are_refused(saved: tuple[FleetResult, Path]) -> None:
    _, directory = saved
    model = load_fleet_model(directory / "stateful")
    panel = Panel(("u0",), (np.arange(30.0),), np.array([0]), Clock("number", 0.0, 2.0))
    with pytest.raises(ConfigError, match="the model was trained on steps of 1") as e:
        fleet_predict.aligned(model, panel)
    assert e.value.param == "time"
    direct = model._replace(
        config=dataclasses.replace(model.config, panel=dataclasses.replace(model.config.panel, strategy="direct"))
    )
    with pytest.raises(ConfigError, match=f"must be {H}"):
        fleet_predict._horizon(direct, H + 1)
    assert fleet_predict._horizon(model, H + 3) == H + 3


@pytest.mark.parametrize(
    ("edit", "text"),
    [
        (lambda m: m | {"mode": "sideways"}, "has mode 'sideways'"),
        (lambda m: m | {"scaling": "minmax"}, "scaling 'minmax'"),
        (lambda m: m | {"config": m["config"] | {"model": m["config"]["model"] | {"units": 7}}}, "the config makes"),
        (lambda m: m | {"config": m["config"] | {"seeds": 0}}, "holds a bad setting"),
        (lambda m: {k: v for k, v in m.items() if k != "ids"}, "missing or has a malformed field"),
    ],
)
def test_an_edited_model_json_is_refused_on_model(
    saved: tuple[FleetResult, Path], tmp_path: Path, edit: object, text: str
) -> None:
    _, directory = saved
    meta = json.loads((directory / "stateful" / "model.json").read_text())
    (tmp_path / "weights.safetensors").write_bytes((directory / "stateful" / "weights.safetensors").read_bytes())
    (tmp_path / "model.json").write_text(json.dumps(edit(meta)))  # type: ignore[operator]
    with pytest.raises(ConfigError, match=text) as e:
        load_fleet_model(tmp_path)
    assert e.value.param == "model"
