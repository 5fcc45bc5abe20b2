"""The terminal's summary: the models, the baselines and the skills, as the result holds them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from lstm_stateful.core import evaluate
from lstm_stateful.core.config import DataConfig, ExperimentConfig, TrainConfig, experiment_config
from lstm_stateful.core.data import Columns
from lstm_stateful.engine import experiment
from lstm_stateful.engine.experiment import RunResult
from lstm_stateful.render import console as con


def _shown(show: object, *args: object) -> str:
    """What ``show(console, *args)`` prints, as plain text, lines joined."""
    out = Console(record=True, width=120, color_system=None)
    show(out, *args)  # type: ignore[operator]
    return out.export_text()


@pytest.fixture(scope="module")
def generated() -> RunResult:
    data = DataConfig(input_len=120, tsteps=3, lahead=2, batch_size=2)
    return experiment.run(ExperimentConfig(data=data, train=TrainConfig(epochs=2), seeds=2))


def _rows(text: str, first: str) -> list[list[str]]:
    """The rows of the printed tables that start with ``first``, split into cells."""
    return [line.split() for line in text.splitlines() if line.split()[:1] == [first]]


def test_summary_shows_each_baseline_on_each_models_points(generated: RunResult) -> None:
    text = _shown(con.print_summary, generated)
    # The stateful model leaves out its warm-up: the baselines are scored on two sets of points.
    assert "MSE, stateful points" in text and "MSE, stateless points" in text
    for name in ("mean", "persistence", "linear"):
        expected = [f"{generated.baselines.mse[mode][name]:.2e}" for mode in ("stateful", "stateless")]
        assert _rows(text, name) == [[name, *expected]]
    assert "seasonal" not in text  # no season given


def test_summary_shows_each_models_skill_and_verdict_against_the_baselines(generated: RunResult) -> None:
    text = _shown(con.print_summary, generated)
    for mode, m in generated.models.items():
        skill_row = _rows(text, mode)[1]  # the first row of a model is in the models' table
        s = m.skill
        assert skill_row[:5] == [mode, s.baseline, f"{s.median:.3f}", f"{s.low:.3f}", f"{s.high:.3f}"]
        verdict = "beats baselines" if s.low > 0 else f"no better than {s.baseline}"
        assert " ".join(skill_row[5:]) == verdict


def test_an_exact_baseline_makes_skills_print_in_exponent_form() -> None:
    assert con._fmt_skill(-1.234e13) == "-1.23e+13" and con._fmt_skill(-0.1794) == "-0.179"
    assert con._fmt_skill(float("-inf")) == "-inf" and con._fmt_skill(float("nan")) == "nan"


def _file_config(path: str) -> ExperimentConfig:
    settings = {"data": path, "input": ["a", "b"], "task": "forecast", "lahead": 2}
    return experiment_config({**settings, "seeds": 2, "epochs": 1}, file_rows=80)


def test_a_file_run_shows_one_baseline_column_and_no_floor(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    inputs = np.cumsum(rng.normal(0, 1, (80, 2)), axis=0) + 100
    cfg = _file_config(str(tmp_path / "two.csv"))
    series, split = experiment.prepare(cfg, Columns(inputs))
    result = experiment.run(cfg, prepared=(series, split))
    text = _shown(con.print_summary, result)
    # A forecast scores every point of both models: one column.
    assert "MSE, stateful points" not in text
    assert _rows(text, "persistence") == [["persistence", f"{result.baselines.mse['stateless']['persistence']:.2e}"]]
    assert "No floor is known here: the baselines are the measure." in text
    for m in result.models.values():
        assert m.verdict == evaluate.baseline_verdict(m.skill) and m.verdict in text
    data = _shown(con.print_data, cfg, series, split)
    assert "a[t]" in data and "b[t]" in data
    head = _rows(data, str(cfg.data.to_drop))[0]  # the first row: a, b at t, then the target
    assert head[1:] == [f"{v:+.6f}" for v in (*series.inputs[0, 0], series.target[0])]


def test_the_data_table_names_each_lag(generated: RunResult) -> None:
    text = _shown(con.print_data, generated.config, generated.series, generated.split)
    assert _rows(text, "row") == [["row", "x[t]", "x[t-1]", "expected"]] * 2  # head and tail
    assert "Data: a[b].csv, input 'a', 'b'; target: a 1 steps ahead" in _shown(
        con.print_banner, _file_config("a[b].csv")
    )
