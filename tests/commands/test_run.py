"""``commands.run`` from Python: configure, run, rerun_config and the view, without click."""

from __future__ import annotations

import contextlib
import csv
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest

from lstm_stateful.commands.run import Configured, RunOptions, RunOutput, configure, rerun_config, run
from lstm_stateful.core.config import ExperimentConfig, experiment_config, split_sizes
from lstm_stateful.core.data import Series, Split
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.engine.experiment import RunResult
from lstm_stateful.models.stream import Predictor

SMALL = {"seeds": 2, "epochs": 2, "input_len": 200, "tsteps": 3, "lahead": 3, "batch_size": 4}


class Recorder:
    """A ``RunView`` and its ``TrainingView``: records every call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.epochs: list[int] = []
        self.on_epoch: Callable[..., None] | None = self._epoch

    def _epoch(self, index: object, *_: object) -> None:  # from inside the compiled program
        self.epochs.append(int(np.asarray(index)))

    def warn(self, message: str) -> None:
        self.calls.append(("warn", message))

    def started(self, cfg: ExperimentConfig) -> None:
        self.calls.append(("started", cfg))

    def prepared(self, cfg: ExperimentConfig, series: Series, split: Split) -> None:
        self.calls.append(("prepared", split))

    @contextlib.contextmanager
    def training(self, cfg: ExperimentConfig, steps: int) -> Iterator[Recorder]:
        self.calls.append(("training", steps))
        yield self
        self.calls.append(("training done", None))

    def stage(self, name: str) -> None:
        self.calls.append(("stage", name))

    def finish(self, result: RunResult) -> None:
        self.calls.append(("finish", result))


class Ran(NamedTuple):
    cfg: ExperimentConfig
    output: RunOutput
    view: Recorder


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    root = tmp_path_factory.mktemp("run")
    cfg, view = experiment_config(SMALL), Recorder()
    output = run(cfg, RunOptions(out=root / "out", save=root / "model", cache=False), view)
    return Ran(cfg, output, view)


def test_run_output_holds_the_numbers_it_wrote(ran: Ran) -> None:
    out, result = ran.output, ran.output.result
    assert (out.out_dir.name, out.save_dir) == ("out", out.out_dir.parent / "model") and result.config == ran.cfg
    assert {p.name for p in out.out_dir.iterdir()} == {
        "results.json", "predictions.csv", "input.png", "residuals.png", "losses.png", "baselines.png", "report.html"
    }  # fmt: skip
    written = json.loads((out.out_dir / "results.json").read_text())
    assert written["timings"] == out.timings and out.timings["total_s"] > 0
    for mode, m in result.models.items():
        assert [s["test_mse"] for s in written["models"][mode]["per_seed"]] == m.scores.mse.tolist()
        assert written["models"][mode]["median_seed"] == m.median_seed
        assert len(m.scores.mse) == 2 and m.train_loss.shape == (2, 2)


def test_predictions_csv_is_the_median_seeds(ran: Ran) -> None:
    result = ran.output.result
    with (ran.output.out_dir / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == result.split.y_test.shape[0]
    for mode, m in result.models.items():
        column = np.array([float(r[mode]) for r in rows])
        np.testing.assert_array_equal(column, m.predictions[m.median_seed].astype(np.float64))


def test_results_json_holds_the_baselines_and_skills(ran: Ran) -> None:
    result = ran.output.result
    written = json.loads((ran.output.out_dir / "results.json").read_text())
    assert written["baselines"] == result.baselines.mse
    assert list(written["baselines"]["stateful"]) == ["mean", "persistence", "linear"]  # no season, no seasonal
    for mode, m in result.models.items():
        skill = written["models"][mode]["skill"]
        assert (skill["baseline"], skill["median"], skill["interval"]) == (m.skill.baseline, m.skill.median,
                                                                          [m.skill.low, m.skill.high])  # fmt: skip
        best = min(written["baselines"][mode].values())
        assert skill["baseline_mse"] == best and skill["verdict"] in (
            "beats baselines",
            f"no better than {m.skill.baseline}",
        )
        per_seed = [s["skill"] for s in written["models"][mode]["per_seed"]]
        np.testing.assert_allclose(per_seed, [1 - s["test_mse"] / best for s in written["models"][mode]["per_seed"]])
        assert skill["interval"] == [min(per_seed), max(per_seed)]


def test_predictions_csv_holds_the_baselines(ran: Ran) -> None:
    result = ran.output.result
    with (ran.output.out_dir / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "input", "expected", "stateful", "stateless", "baseline_mean", "baseline_persistence", "baseline_linear"
    ]  # fmt: skip
    column = {name: np.array([float(r[name]) for r in rows]) for name in rows[0]}
    np.testing.assert_array_equal(column["baseline_persistence"], column["input"])
    for name, mse in result.baselines.mse["stateless"].items():  # the stateless model scores every point
        assert np.mean((column[f"baseline_{name}"] - column["expected"]) ** 2) == pytest.approx(mse, rel=1e-12)


def test_saved_models_load_as_predictors(ran: Ran) -> None:
    for mode, m in ran.output.result.models.items():
        predictor = Predictor.load(ran.output.save_dir / mode)  # type: ignore[operator]
        assert (predictor.model.mode, predictor.model.seed_index) == (mode, m.median_seed)
        assert predictor.model.data == ran.cfg.data
        assert predictor.predict(np.zeros(5)).shape == (5,)


def test_view_receives_the_calls_in_order(ran: Ran) -> None:
    names = [name for name, _ in ran.view.calls]
    assert names == ["started", "prepared", "training", "stage", "finish", "training done"]
    calls = dict(ran.view.calls)
    assert calls["started"] == ran.cfg and calls["stage"] == "training"
    assert calls["finish"] is ran.output.result
    split = ran.output.result.split
    assert calls["prepared"] is split and calls["training"] == 2 * split.x_train.shape[0] // 4  # epochs * rows / batch
    assert sorted(ran.view.epochs) == [0, 1]


def test_rerun_config_reads_the_config_back(ran: Ran) -> None:
    assert rerun_config(ran.output.out_dir / "results.json") == ran.cfg


def test_rerun_config_refuses_other_settings(ran: Ran) -> None:
    with pytest.raises(ConfigError) as e:
        rerun_config(ran.output.out_dir / "results.json", given=["lahead"])
    assert e.value.param == "lahead" and str(e.value).startswith("lahead: ")


def test_configure_counts_the_rows_a_forecast_leaves(tmp_path: Path) -> None:
    data = tmp_path / "series.csv"
    data.write_text("x\n" + "".join(f"{math.sin(i / 5)!r}\n" for i in range(50)))
    settings = {"data": str(data), "input": "x", "task": "forecast", "horizon": 2, "lahead": 3}
    configured = configure(settings)
    assert isinstance(configured, Configured) and configured.columns is not None
    assert configured.columns.input.shape[0] == 50
    # 50 rows - (lahead - 1 = 2 lead rows without a full window) - (horizon = 2 rows without a target).
    assert configured.config.data.input_len == 46
    assert (configured.config.data.task, configured.config.data.tsteps) == ("forecast", 1)


def test_configure_without_data_reads_nothing() -> None:
    assert configure(SMALL) == Configured(experiment_config(SMALL), None)


def test_config_errors_name_the_setting() -> None:
    with pytest.raises(ConfigError) as e:
        experiment_config({"batch_size": 0})
    assert e.value.param == "batch_size" and str(e.value).startswith("batch_size:")
    assert e.value.render(lambda n: "--" + n.replace("_", "-")).startswith("--batch-size:")


def test_config_errors_render_every_named_setting() -> None:
    with pytest.raises(ConfigError) as e:
        experiment_config({"input_len": 10, "batch_size": 9})
    rendered = e.value.render(lambda n: "--" + n.replace("_", "-"))
    assert e.value.param == "batch_size" and "`input_len`" in str(e.value)
    assert rendered.startswith("--batch-size:") and "--input-len" in rendered and "`" not in rendered


def test_a_file_run_writes_its_numbers_in_the_data_units(tmp_path: Path) -> None:
    # A monthly wave with noise, learned as standardized differences; a 12-month season.
    t = np.arange(120)
    x = 50 + 10 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 0.5, 120)
    path = tmp_path / "monthly.csv"
    path.write_text("x\n" + "".join(f"{float(v)!r}\n" for v in x))
    settings = {"data": str(path), "input": "x", "task": "forecast", "lahead": 3, "transform": "diff"}
    configured = configure({**settings, "standardize": True, "season": 12, "seeds": 2, "epochs": 2})
    output = run(configured.config, RunOptions(out=tmp_path / "out", cache=False), columns=configured.columns)
    with (output.out_dir / "predictions.csv").open() as f:
        column = {k: np.array(v, float) for k, v in pd.DataFrame(list(csv.DictReader(f))).items()}
    cfg = configured.config.data
    rows = cfg.to_drop + split_sizes(cfg)[0] + np.arange(split_sizes(cfg)[1])  # the test rows' t in the file
    np.testing.assert_array_equal(column["input"], x[rows])
    np.testing.assert_allclose(column["expected"], x[rows + 1], rtol=1e-6)  # the float32 target, mapped back
    np.testing.assert_array_equal(column["baseline_seasonal"], x[rows + 1 - 12])
    written = json.loads((output.out_dir / "results.json").read_text())
    assert list(written["baselines"]["stateless"]) == ["mean", "persistence", "seasonal", "linear"]
    for mode in ("stateful", "stateless"):
        m = written["models"][mode]
        mse = np.mean((column[mode] - column["expected"]) ** 2)  # a forecast scores every point
        assert m["per_seed"][m["median_seed"]]["test_mse"] == pytest.approx(mse, rel=1e-9)
        assert m["verdict"] == m["skill"]["verdict"]  # on a file, the verdict is against the baselines


@pytest.mark.parametrize("given", [["y", "x"], ("y", "x")])
def test_configure_reads_every_input_column_in_order(tmp_path: Path, given: object) -> None:
    data = tmp_path / "two.csv"
    data.write_text("x,y\n" + "".join(f"{i},{10 * i}\n" for i in range(30)))
    configured = configure({"data": str(data), "input": given, "task": "forecast"})
    assert configured.config.data.input_cols == ("y", "x") and configured.config.model.n_features == 2
    assert configured.columns is not None
    np.testing.assert_array_equal(configured.columns.input[:3], [[0, 0], [10, 1], [20, 2]])
