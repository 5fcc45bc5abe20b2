"""``commands.tune`` from Python: a tiny search on a data file, its files, what the terminal
shows, resumption (after a SIGKILL of a real process too), and bad input."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from rich.console import Console

from lstm_stateful.cli import flag_of
from lstm_stateful.commands.tune import TuneConfig, TuneOutput, tune
from lstm_stateful.core.config import MODES, ExperimentConfig
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.engine import experiment
from lstm_stateful.render.tune_console import TuneConsole, print_tune_summary

optuna = pytest.importorskip("optuna")
pd = pytest.importorskip("pandas")

SPACE = ("lr=1e-3:1e-2:log", "units=2,3")


def _csv(path: Path, n: int = 80) -> Path:
    """A positive random walk and a second input column."""
    rng = np.random.default_rng(5)
    walk = 100 + np.cumsum(rng.normal(0, 1, n))
    other = rng.normal(0, 1, n)
    path.write_text(
        "price,volume\n" + "".join(f"{float(a)!r},{float(b)!r}\n" for a, b in zip(walk, other, strict=True))
    )
    return path


def _settings(data: Path) -> dict[str, object]:
    return {"data": str(data), "input": ("price", "volume"), "task": "forecast", "standardize": True,
            "epochs": 1, "seeds": 2, "seed": 3}  # fmt: skip


class Tuned(NamedTuple):
    config: TuneConfig
    output: TuneOutput
    said: str


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Tuned:
    root = tmp_path_factory.mktemp("tune")
    cfg = TuneConfig(SPACE, _settings(_csv(root / "walk.csv")), trials=4, batch=2, out=root / "out", cache=False)
    buf = io.StringIO()
    console = Console(file=buf, width=200, highlight=False)
    output = tune(cfg, TuneConsole(console))
    print_tune_summary(console, output.search, output.trials, output.best, output.result)
    return Tuned(cfg, output, " ".join(buf.getvalue().split()))


def test_the_files_hold_every_trial_and_the_best(tuned: Tuned) -> None:
    out = tuned.output
    assert out.trained == 4 and len(out.trials) == 4 and out.study_path == tuned.config.out / "tune.sqlite"
    # trials.csv against Optuna's own table of the stored study, read by pandas.
    table = pd.read_csv(out.out_dir / "trials.csv")
    study = optuna.load_study(study_name="tune", storage=f"sqlite:///{out.study_path}")
    frame = study.trials_dataframe()
    assert table["number"].tolist() == frame["number"].tolist()
    np.testing.assert_array_equal(table["value"], frame["value"])
    np.testing.assert_array_equal(table["lr"], frame["params_lr"])
    assert table["units"].tolist() == frame["params_units"].tolist()
    assert table["state"].tolist() == ["complete"] * 4
    np.testing.assert_array_equal(table["val_mse_stateful"], table["value"])
    np.testing.assert_array_equal(table["val_mse_stateless"], frame["user_attrs_val_mse_stateless"])
    best = json.loads((out.out_dir / "best.json").read_text())
    assert best["best_trial"] == out.best.number == int(table.loc[table["value"].idxmin(), "number"])
    assert best["validation_mse"] == table["value"].min() and best["params"] == out.best.params
    assert best["space"] == ["lr=0.001:0.01:log", "units=2,3"]
    assert ExperimentConfig.from_dict(best["final"]["config"]) == out.best_config == out.result.config


def test_the_final_run_is_a_plain_run_of_the_best_config_on_the_test_rows(tuned: Tuned) -> None:
    out = tuned.output
    assert out.best_config.train.learning_rate == out.best.params["lr"]
    assert out.best_config.model.units == out.best.params["units"] and out.best_config.model.n_features == 2
    plain = experiment.run(out.best_config)
    for mode in MODES:
        np.testing.assert_array_equal(out.result.models[mode].scores.mse, plain.models[mode].scores.mse)
    assert out.result.baselines.mse == plain.baselines.mse


def test_the_terminal_shows_the_plan_the_best_trials_and_the_test_scores(tuned: Tuned) -> None:
    said, best = tuned.said, tuned.output.best
    assert "Search: lr=0.001:0.01:log, units=2,3; 4 trials, each 2 models x 2 seeds." in said
    assert "median MSE on the last 20% of the training rows" in said
    assert f"Best configuration (trial {best.number}): lr={best.params['lr']:.3g} units={best.params['units']}." in said
    assert "Best trials of 4, by validation MSE (stateful)" in said
    assert "Baselines, test set" in said and "persistence" in said


def test_the_same_search_again_trains_nothing_and_more_trials_extend_it(tuned: Tuned) -> None:
    again = tune(tuned.config)
    assert again.trained == 0 and again.trials == tuned.output.trials and again.best == tuned.output.best
    more = tune(TuneConfig(**{**tuned.config.__dict__, "trials": 5, "batch": 4}))
    assert more.trained == 1 and more.trials[:4] == tuned.output.trials and len(more.trials) == 5


def test_another_search_in_the_same_directory_is_refused(tuned: Tuned) -> None:
    other = TuneConfig(("units=2,4",), tuned.config.settings, trials=2, out=tuned.config.out, cache=False)
    with pytest.raises(ConfigError) as e:
        tune(other)
    assert e.value.render(flag_of).startswith("--out: holds the study of another search")


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"trials": 0}, "trials"),
        ({"batch": 0}, "batch"),
        ({"validation": 1.0}, "validation"),
        ({"mode": "both"}, "mode"),
        ({"space": ("lr=1e-2:1e-4:log",)}, "space"),
        ({"space": ()}, "space"),
    ],
)
def test_bad_options_name_the_option(kwargs: dict[str, object], param: str) -> None:
    with pytest.raises(ConfigError) as e:
        TuneConfig(**{"space": SPACE, **kwargs})  # type: ignore[arg-type]
    assert e.value.param == param


def test_a_space_that_does_not_fit_the_data_fails_before_training(tmp_path: Path) -> None:
    data = _csv(tmp_path / "walk.csv")
    cfg = TuneConfig(("transform=none,log-diff",), {**_settings(data), "input": ("volume",)}, out=tmp_path / "o")
    with pytest.raises(ConfigError) as e:
        tune(cfg)
    line = e.value.render(flag_of)
    assert line.startswith("--space: transform=log-diff (of 'transform=none,log-diff') does not fit the data")
    assert not (tmp_path / "o" / "tune.sqlite").exists()


SCRIPT = """
import sys
from pathlib import Path
from lstm_stateful.commands.tune import TuneConfig, tune
settings = {"input_len": 60, "epochs": 2, "seeds": 1}
tune(TuneConfig(("units=2:9",), settings, trials=int(sys.argv[2]), batch=1, out=Path(sys.argv[1]), cache=False))
"""


def _trials(db: Path) -> tuple[dict[int, float], int]:
    """The study's SQLite file read with sqlite3 alone: its complete trials (number ->
    value), and how many trials are running."""
    if not db.exists():
        return {}, 0
    with sqlite3.connect(db) as con:
        try:
            complete = con.execute(
                "SELECT t.number, v.value FROM trials t JOIN trial_values v ON v.trial_id = t.trial_id "
                "WHERE t.state = 'COMPLETE'"
            ).fetchall()
            (running,) = con.execute("SELECT count(*) FROM trials WHERE state = 'RUNNING'").fetchone()
        except sqlite3.OperationalError:  # the tables are still being created
            return {}, 0
    return dict(complete), running


def test_a_search_killed_mid_study_resumes_with_its_finished_trials(tmp_path: Path) -> None:
    out, n = tmp_path / "out", 8
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(out), str(n)], env={**os.environ})
    try:
        deadline = time.monotonic() + 240
        # Killed while it trains its third trial or a later one: two or more are finished.
        while proc.poll() is None and time.monotonic() < deadline:
            complete, running = _trials(out / "tune.sqlite")
            if len(complete) >= 2 and running:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the search ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    kept, running = _trials(out / "tune.sqlite")
    assert 2 <= len(kept) < n and running == 1
    settings = {"input_len": 60, "epochs": 2, "seeds": 1}
    resumed = tune(TuneConfig(("units=2:9",), settings, trials=n, batch=1, out=out, cache=False))
    assert resumed.trained == n - len(kept)
    complete = {r.number: r.value for r in resumed.trials if r.state == "complete"}
    assert len(complete) == n and all(complete[k] == v for k, v in kept.items())
    states = [r.state for r in resumed.trials]
    assert set(states) == {"complete", "interrupted"} and len(states) == n + states.count("interrupted")
    assert len(pd.read_csv(out / "trials.csv")) == len(states)
