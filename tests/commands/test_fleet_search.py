"""``sweep`` and ``tune`` on a panel: every point a fleet run, scored as one run alone, resumed
from its store or study; the problem's settings refused; the CLI end to end."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from lstm_stateful.cli import main
from lstm_stateful.commands import fleet_search as fs
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.core.panel_config import FLEET_SETTINGS, FleetConfig
from lstm_stateful.engine import fleet
from tests.helpers import usage_error

optuna = pytest.importorskip("optuna")

SEASON, HORIZON, N_SERIES, LENGTH = 6, 4, 8, 40
# The cheapest fleet run: these tests check the search, not the models. lr and scaling are
# inputs of the compiled program, not its shape: every point here shares one compilation.
TINY = {"epochs": 1, "seeds": 1, "units": 4, "lahead": 2, "chunk": 8, "batch_size": 4}
TINY_FLAGS = ["--epochs", "1", "--seeds", "1", "--units", "4", "--lahead", "2", "--chunk", "8", "--batch-size", "4"]
GRID = ("lr=0.003,0.03", "scaling=log,standard")


def _write_panel(path: Path, low: float = 20) -> Path:
    """A panel of 8 series of 40 values, a season of 6, levels and phases apart, the lowest
    level about ``low`` (the default: all > 0)."""
    rng = np.random.default_rng(7)
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "t", "y"])
        for s in range(N_SERIES):
            t = np.arange(LENGTH)
            y = low + 3 * s + 5 * np.sin(2 * np.pi * (t + s) / SEASON) + 0.1 * t + rng.normal(0, 0.5, LENGTH)
            writer.writerows([f"s{s}", int(i), repr(float(v))] for i, v in zip(t, y, strict=True))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_panel(tmp_path_factory.mktemp("panel") / "panel.csv")


def _base(data: Path, **over: object) -> FleetConfig:
    settings = {"data": str(data), "id": "id", "time": "t", "input": "y", "horizon": HORIZON, "season": SEASON}
    return fs.fleet_base(settings | TINY | over)


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _count_runs(monkeypatch: pytest.MonkeyPatch) -> list[FleetConfig]:
    """Every config ``fleet_search`` trains from now on, in order."""
    trained: list[FleetConfig] = []
    real = fs.score_run

    def counting(cfg: FleetConfig, panel: object) -> fs.FleetScore:
        trained.append(cfg)
        return real(cfg, panel)  # type: ignore[arg-type]

    monkeypatch.setattr(fs, "score_run", counting)
    return trained


def test_our_models_are_the_engines() -> None:
    assert fs.OURS == fleet.MODELS
    # The baselines and the intervals are scored alike at every point: set once, never searched.
    assert set(fs.VARIABLE) | set(fs.PROBLEM) | {"stats", "level", "calibrate"} == set(FLEET_SETTINGS)


# ----- sweep -------------------------------------------------------------------------------------


def test_the_sweep_trains_every_point_and_scores_it_as_that_run_alone(data: Path, tmp_path: Path) -> None:
    base = _base(data)
    assert base.panel.stats == ()  # the statsforecast baselines are off unless asked for
    out = fs.fleet_sweep(base, fs.parse_fleet_grid(GRID), tmp_path / "out")
    assert out.trained == 4 and out.keys == ("lr", "scaling")
    assert {(p.settings["lr"], p.settings["scaling"]) for p in out.points} == {
        (lr, s) for lr in (0.003, 0.03) for s in ("log", "standard")
    }
    objectives = [p.score.objective for p in out.points]
    assert objectives == sorted(objectives)
    rows = _csv(out.summary_path)
    assert [float(r["objective"]) for r in rows] == objectives
    for p, row in zip(out.points, rows, strict=True):
        assert p.config.train.learning_rate == p.settings["lr"] and p.config.panel.scaling == p.settings["scaling"]
        assert (row["lr"], row["scaling"]) == (repr(p.settings["lr"]), p.settings["scaling"])
    point = out.points[-1]  # the worst: not merely the first trained
    alone = fleet.run_fleet(point.config, fs.read(point.config))
    ours = {m: alone.val_mase[m] for m in fleet.MODELS}
    assert float(rows[-1]["objective"]) == min(ours.values())
    assert rows[-1]["objective_model"] == min(ours, key=lambda m: ours[m])
    for m in fleet.MODELS:
        assert float(rows[-1][f"val_mase_{m}"]) == alone.val_mase[m]
        assert float(rows[-1][f"test_mase_{m}"]) == alone.means[m]["mase"]
    baseline = alone.verdict.best_baseline
    assert rows[-1]["best_baseline"] == baseline
    assert float(rows[-1]["test_mase_best_baseline"]) == alone.means[baseline]["mase"]


def test_a_rerun_trains_only_the_points_its_store_lacks(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, out = _base(data), tmp_path / "out"
    first = fs.fleet_sweep(base, fs.parse_fleet_grid(["lr=0.003,0.03"]), out)
    store = out / fs.SWEEP_STORE
    assert len(store.read_text().splitlines()) == 2
    with store.open("a") as f:  # a kill mid-write: a torn last line, no newline
        f.write('{"key": "abc", "score": {"val_')
    trained = _count_runs(monkeypatch)
    again = fs.fleet_sweep(base, fs.parse_fleet_grid(["lr=0.003,0.03,0.01"]), out)
    assert [c.train.learning_rate for c in trained] == [0.01]
    assert again.trained == 1 and len(again.points) == 3
    before = {p.settings["lr"]: p.score for p in first.points}
    assert all(p.score == before[p.settings["lr"]] for p in again.points if p.settings["lr"] in before)
    assert len(fs.load_store(store)) == 3  # the new record starts its own line
    fs.fleet_sweep(base, fs.parse_fleet_grid(["lr=0.003,0.03,0.01"]), out)
    assert len(trained) == 1


def test_every_point_is_checked_against_the_panel_before_any_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    negative = _write_panel(tmp_path / "negative.csv", low=0)  # log scaling needs values >= 0
    trained = _count_runs(monkeypatch)
    with pytest.raises(ConfigError) as e:  # the standard point alone would train
        fs.fleet_sweep(_base(negative), fs.parse_fleet_grid(["scaling=standard,log"]), tmp_path / "out")
    assert e.value.param == "grid" and e.value.problem.startswith("at scaling=log, `scaling` log needs values >= 0")
    assert trained == [] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("key", ["horizon", "windows", "season", "data", "id", "input", "fill", "stats"])
def test_a_grid_or_space_key_that_defines_the_problem_is_refused(key: str) -> None:
    for parse, param in ((fs.parse_fleet_grid, "grid"), (fs.parse_fleet_space, "space")):
        with pytest.raises(ConfigError) as e:
            parse([f"{key}=4,6"])
        assert e.value.param == param and "\n" not in str(e.value)
        assert e.value.problem.endswith(f"set {'them' if key == 'stats' else 'it'} once with `{key}`")


def test_the_sweep_refuses_a_problem_axis_given_from_python(data: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="horizon defines the problem"):
        fs.fleet_sweep(_base(data), (fs.Axis("horizon", (4, 6)),), tmp_path / "out")


def test_fleet_keys_read_their_values() -> None:
    axes = fs.parse_fleet_grid(["scaling=log,standard", "chunk=4:6", "batch-size=2,4", "seed=0,3"])
    assert [(a.key, a.values) for a in axes] == [
        ("scaling", ("log", "standard")), ("chunk", (4, 5, 6)), ("batch_size", (2, 4)), ("seed", (0, 3)),
    ]  # fmt: skip
    dims = fs.parse_fleet_space(["chunk=4:16", "strategy=recursive,direct", "lr=1e-3:1e-1:log"])
    assert [(d.name, d.kind) for d in dims] == [("chunk", "int"), ("strategy", "choice"), ("lr", "float")]
    for bad, fragment in (("scaling=log,cubic", "'cubic'"), ("chunk=0,4", "chunk=0,4"), ("cell=lstm,lstm", "twice")):
        with pytest.raises(ConfigError, match=fragment):
            fs.parse_fleet_grid([bad])
    with pytest.raises(ConfigError, match="chunk"):
        fs.parse_fleet_space(["chunk=a:b"])
    with pytest.raises(ConfigError, match="varies units"):
        fs.fleet_base({"units": 4}, ["units"])


# ----- tune --------------------------------------------------------------------------------------


SPACE = ("lr=1e-3:1e-1:log", "scaling=log,standard")


def test_tune_runs_its_trials_and_resumes_its_study_to_more(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, dims, out = _base(data), fs.parse_fleet_space(SPACE), tmp_path / "out"
    first = fs.fleet_tune(base, dims, 2, out)
    assert first.trained == 2 and [t.state for t in first.trials] == ["complete"] * 2
    trained = _count_runs(monkeypatch)
    again = fs.fleet_tune(base, dims, 4, out)
    assert again.trained == 2 and len(trained) == 2 and again.study_name == first.study_name
    study = optuna.load_study(study_name=again.study_name, storage=f"sqlite:///{again.study_path}")
    assert len(study.trials) == 4
    assert [t.params for t in again.trials[:2]] == [t.params for t in first.trials]
    scores = [t.score.objective for t in again.trials if t.score is not None]
    best = json.loads((out / fs.BEST_FILE).read_text())
    assert best["score"]["objective"] == min(scores) == again.best.score.objective  # type: ignore[union-attr]
    assert best["best_trial"] == again.best.number and best["params"] == again.best.params
    assert FleetConfig.from_dict(best["config"]) == again.best_config
    assert [int(r["number"]) for r in _csv(out / fs.TRIALS_FILE)] == [0, 1, 2, 3]


def test_a_trial_whose_config_is_refused_fails_and_the_study_goes_on(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, calls = fs.score_run, []

    def refuse_first(cfg: FleetConfig, panel: object) -> fs.FleetScore:
        calls.append(cfg)
        if len(calls) == 1:
            raise ConfigError("chunk", "does not fit")
        return real(cfg, panel)  # type: ignore[arg-type]

    monkeypatch.setattr(fs, "score_run", refuse_first)
    out = fs.fleet_tune(_base(data), fs.parse_fleet_space(SPACE[:1]), 2, tmp_path / "out")
    assert [t.state for t in out.trials] == ["failed", "complete"]
    assert "does not fit" in (out.trials[0].failure or "") and out.best.number == 1
    rows = _csv(tmp_path / "out" / fs.TRIALS_FILE)
    assert rows[0]["state"] == "failed" and rows[0]["objective"] == "" and "does not fit" in rows[0]["failure"]


def test_a_space_value_the_panel_refuses_is_refused_before_any_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    negative = _write_panel(tmp_path / "negative.csv", low=0)
    trained = _count_runs(monkeypatch)
    with pytest.raises(ConfigError) as e:
        fs.fleet_tune(_base(negative), fs.parse_fleet_space(["scaling=standard,log"]), 2, tmp_path / "out")
    assert e.value.param == "space" and e.value.problem.startswith("at scaling=log, `scaling` log needs values >= 0")
    assert trained == [] and not (tmp_path / "out").exists()


# ----- the command line --------------------------------------------------------------------------


def _panel_flags(data: Path, out: Path) -> list[str]:
    return ["--data", str(data), "--id", "id", "--time", "t", "--input", "y", "--horizon", str(HORIZON),
            "--season", str(SEASON), *TINY_FLAGS, "--out", str(out)]  # fmt: skip


def test_sweep_with_id_sweeps_the_panel(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sweep", *_panel_flags(data, tmp_path / "out"), "--grid", "lr=0.003,0.03"]
    assert main(argv) == 0
    shown = capsys.readouterr().out
    assert "objective" in shown and "summary.csv" in shown and "trained 2 of 2" in shown
    rows = _csv(tmp_path / "out" / fs.SUMMARY_FILE)
    assert len(rows) == 2 and all(math.isfinite(float(r["objective"])) for r in rows)
    assert main(argv) == 0 and "trained 0 of 2" in capsys.readouterr().out


def test_tune_with_id_searches_the_panel(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["tune", *_panel_flags(data, tmp_path / "out"), "--space", "lr=1e-3:1e-1:log", "--trials", "2"]
    assert main(argv) == 0
    shown = capsys.readouterr().out
    assert "Best: trial" in shown and "best.json" in shown
    assert len(_csv(tmp_path / "out" / fs.TRIALS_FILE)) == 2
    assert json.loads((tmp_path / "out" / fs.BEST_FILE).read_text())["score"]["objective"] > 0


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["sweep", "--grid", "horizon=4,6"], ("--grid", "horizon", "--horizon")),
        (["sweep", "--grid", "lr=0.01", "--jobs", "3"], ("--jobs", "sweep on a panel")),
        (["sweep"], ("--grid", "required with --id")),
        (["sweep", "--grid", "lr=0.01", "--tsteps", "2"], ("--tsteps", "single-series")),
        (["sweep", "--grid", "lr=0.01", "--lahead", "2:3"], ("--lahead", "one value")),
        (["sweep", "--grid", "units=4,8"], ("--grid", "units", "--units")),
        (["tune", "--space", "season=2:8"], ("--space", "season", "--season")),
        (["tune", "--space", "lr=1e-3:1e-1", "--mode", "stateless"], ("--mode", "tune on a panel")),
    ],
)
def test_bad_panel_searches_are_one_line(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], fragments: tuple[str, ...]
) -> None:
    usage_error([extra[0], *_panel_flags(data, tmp_path / "out"), *extra[1:]], capsys, *fragments)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [["sweep", "--grid", "lr=0.01"], ["tune", "--space", "lr=1e-3:1e-1"]])
def test_panel_flags_without_id_are_refused(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    usage_error([*command, "--scaling", "standard"], capsys, "--scaling", "--id")
