"""The search: trials scored on validation rows (never the test rows), batches that share a
program trained in it, the study in Optuna's storage, and the best config's final run."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from lstm_stateful.core.config import MODES, ExperimentConfig, split_sizes
from lstm_stateful.core.data import Columns, Split
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.core.evaluate import finite_median
from lstm_stateful.engine import experiment
from lstm_stateful.io.series_file import read_columns
from lstm_stateful.sweep import grid, tune
from lstm_stateful.sweep import training as sweep_training
from lstm_stateful.sweep.grid import Group
from lstm_stateful.sweep.space import Search, parse_space

optuna = pytest.importorskip("optuna")

SETTINGS = {"input_len": 60, "epochs": 1, "seeds": 2}


class Studied(NamedTuple):
    search: Search
    study: optuna.Study
    calls: list[list[ExperimentConfig]]  # the configs of every program trained


@pytest.fixture(scope="module")
def studied(tmp_path_factory: pytest.TempPathFactory) -> Studied:
    """Four trials over units x order, asked as one batch, on the generated series."""
    search = Search(parse_space(["units=2,3", "order=newest-first,oldest-first"]), SETTINGS)
    study = tune.open_study(search, tmp_path_factory.mktemp("tune") / tune.STUDY_FILE, seed=0)
    calls: list[list[ExperimentConfig]] = []
    train = sweep_training.train_program

    def counted(group: Group, splits: Sequence[Split]) -> experiment.Training:
        calls.append(list(group.configs))
        return train(group, splits)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sweep_training, "train_program", counted)
        assert tune.run_study(search, study, None, trials=4, batch=4) == 4
    return Studied(search, study, calls)


def _validation_by_hand(cfg: ExperimentConfig, fraction: float) -> ExperimentConfig:
    """The validation problem built apart from ``space.validation_config``: the training
    rows alone, as a generated series that many rows long, the last ``fraction`` scored."""
    n_train = split_sizes(cfg.data)[0]
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, input_len=n_train, train_ratio=1 - fraction))


def test_a_trials_value_is_its_validation_mse_from_a_plain_run(studied: Studied) -> None:
    rows = tune.trial_rows(studied.study)
    assert [r.state for r in rows] == ["complete"] * 4
    row = rows[0]
    cfg = studied.search.config(row.params)
    val = _validation_by_hand(cfg, 0.2)
    # The validation rows are the full problem's training rows: the first 80% train, the rest score.
    full, part = experiment.prepare(cfg)[1], experiment.prepare(val)[1]
    n = split_sizes(val.data)[0]
    np.testing.assert_array_equal(part.x_train, full.x_train[:n])
    np.testing.assert_array_equal(part.x_test, full.x_train[n:])
    result = experiment.run(val)
    for mode in MODES:
        expected = finite_median(result.models[mode].scores.mse)
        assert row.mse[mode] == pytest.approx(expected, rel=1e-5, abs=0), mode
    assert row.value == row.mse["stateful"]


def test_trials_of_one_program_train_together(studied: Studied) -> None:
    # The four trials span two unit counts: one program each, the orders (data only) sharing it.
    units = [c.model.units for call in studied.calls for c in call]
    assert sorted(units) == sorted(r.params["units"] for r in tune.trial_rows(studied.study))
    assert len(studied.calls) == len(set(units))
    for call in studied.calls:
        assert len({c.model for c in call}) == 1
    assert max(len(call) for call in studied.calls) >= 2


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[Group]:
    groups: list[Group] = []
    train = sweep_training.train_program

    def counted(group: Group, splits: Sequence[Split]) -> experiment.Training:
        groups.append(group)
        return train(group, splits)

    monkeypatch.setattr(sweep_training, "train_program", counted)
    return groups


def test_trials_differing_in_learning_rate_share_a_program(monkeypatch: pytest.MonkeyPatch) -> None:
    search = Search(parse_space(["lr=1e-3:1e-2:log"]), SETTINGS)
    groups = _counting(monkeypatch)
    together = tune.evaluate_params(search, [{"lr": 1e-3}, {"lr": 3e-3}, {"lr": 1e-2}], None)
    assert [len(g.configs) for g in groups] == [3]
    alone = tune.evaluate_params(search, [{"lr": 3e-3}], None)
    assert len(groups) == 2 and together[1].value == pytest.approx(alone[0].value, rel=1e-5)
    assert together[0].value != together[1].value


def test_many_seeds_split_into_programs_of_a_trial_s_seeds(monkeypatch: pytest.MonkeyPatch) -> None:
    search = Search(parse_space(["units=2,3"]), {**SETTINGS, "seeds": 3})
    whole = tune.evaluate_params(search, [{"units": 2}], None)
    groups = _counting(monkeypatch)
    monkeypatch.setattr(grid, "MAX_TRAININGS_PER_PROGRAM", 4)  # 2 seeds x 2 modes a program
    split = tune.evaluate_params(search, [{"units": 2}], None)
    assert [(g.first_seed, g.stop_seed) for g in groups] == [(0, 2), (2, 3)]
    for mode in MODES:
        assert split[0].mse[mode] == pytest.approx(whole[0].mse[mode], rel=1e-5)


def test_the_final_run_is_a_plain_run_of_the_best_config(studied: Studied) -> None:
    best = tune.best_trial(studied.study)
    assert best.value == min(r.value for r in tune.trial_rows(studied.study) if r.value is not None)
    final = tune.final_run(studied.search, best, None)
    plain = experiment.run(studied.search.config(best.params))
    assert final.config == plain.config and final.config.model.units == best.params["units"]
    for mode in MODES:
        np.testing.assert_array_equal(final.models[mode].scores.mse, plain.models[mode].scores.mse)


def test_the_study_holds_the_finished_trials(studied: Studied) -> None:
    assert tune.finished(studied.study) == 4
    more = tune.run_study(studied.search, studied.study, None, trials=4, batch=2)
    assert more == 0  # already complete: nothing trained


def _walk(n: int, seed: int = 3) -> np.ndarray:
    """A positive random walk: a price-like series."""
    return 100 + np.cumsum(np.random.default_rng(seed).normal(0, 1, n))


def _csv(path: Path, values: np.ndarray) -> Path:
    path.write_text("value\n" + "".join(f"{float(v)!r}\n" for v in values))
    return path


def test_the_test_rows_never_reach_a_trial(tmp_path: Path) -> None:
    values = _walk(100)
    changed = values.copy()
    changed[85:] = changed[85:] * 3 + 5  # only test rows: a trial's rows end at 81 at most
    settings = {"task": "forecast", "standardize": True, "epochs": 1, "seeds": 2}
    params = [{"lahead": 1, "batch_size": 1}, {"lahead": 3, "batch_size": 2}, {"lahead": 2, "batch_size": 1}]
    outcomes, finals = [], []
    for name, series in (("a.csv", values), ("b.csv", changed)):
        path = _csv(tmp_path / name, series)
        columns = read_columns(path, ("value",))
        search = Search(parse_space(["lahead=1:3", "batch-size=1,2"]), {**settings, "data": str(path),
                        "input": ("value",)}, file_rows=100)  # fmt: skip
        outcomes.append(tune.evaluate_params(search, params, columns))
        finals.append(tune.final_run(search, tune.TrialRow(0, "complete", params[1], 0.0, {}, None), columns))
    assert all(o.failure is None and np.isfinite(o.value) for o in outcomes[0])
    assert outcomes[0] == outcomes[1]
    # The same configs' test scores do see the change.
    assert not np.array_equal(finals[0].models["stateful"].scores.mse, finals[1].models["stateful"].scores.mse)


def test_impossible_combinations_fail_their_trial_alone() -> None:
    search = Search(parse_space(["batch-size=1,2", "lahead=1:30"]), {"input_len": 60, "epochs": 1, "seeds": 1})
    good, bad = tune.evaluate_params(search, [{"batch_size": 1, "lahead": 2}, {"batch_size": 60}], None)
    assert good.failure is None and good.value is not None and np.isfinite(good.value)
    assert bad.value is None and bad.failure is not None and bad.failure.startswith("batch_size: must be <=")


def test_values_that_do_not_fit_the_data_are_refused_before_any_trial() -> None:
    # The generated series has values <= 0: log-diff is refused with the search itself.
    with pytest.raises(ConfigError) as e:
        Search(parse_space(["transform=none,log-diff"]), {"input_len": 60})
    assert e.value.param == "space" and "transform=log-diff (of 'transform=none,log-diff') makes an impossible" in str(
        e.value
    )
    # A file's values are known once it is read: check_data refuses them before any trial.
    x = np.linspace(1.0, 2.0, 80)
    x[30] = -1.0
    columns, settings = Columns(x[:, None]), {"data": "f.csv", "input": ("x",), "task": "forecast"}
    with pytest.raises(ConfigError) as e:
        tune.check_data(Search(parse_space(["transform=none,log-diff"]), settings, 80), columns)
    assert e.value.param == "space"
    assert "transform=log-diff (of 'transform=none,log-diff') does not fit the data: `transform`" in e.value.problem
    assert "holds -1.0 at row 30" in e.value.problem
    tune.check_data(Search(parse_space(["transform=none,diff"]), settings, 80), columns)


def test_a_diverged_seed_counts_as_the_worst() -> None:
    assert tune.objective(np.array([1.0, 2.0, 3.0])) == 2.0
    assert tune.objective(np.array([1.0, np.nan, 3.0])) == 3.0
    assert tune.objective(np.array([np.nan, np.inf, 3.0])) == np.inf


def _asked(path: Path, seed: int, search: Search, n: int = 3) -> list[dict]:
    study = tune.open_study(search, path, seed)
    space = tune.distributions(search.dimensions)
    return [study.ask(space).params for _ in range(n)]


def test_the_sampler_is_seeded_and_a_resumed_study_asks_new_points(tmp_path: Path) -> None:
    search = Search(parse_space(["lr=1e-4:1e-2:log", "units=2:64"]), SETTINGS)
    first = _asked(tmp_path / "a.sqlite", 0, search)
    assert first == _asked(tmp_path / "b.sqlite", 0, search)
    assert first != _asked(tmp_path / "c.sqlite", 1, search)
    # Reopened, the three trials asked and never told were interrupted: marked failed, not
    # counted, and the sampler does not start its sequence over.
    study = tune.open_study(search, tmp_path / "a.sqlite", 0)
    assert [r.state for r in tune.trial_rows(study)] == ["interrupted"] * 3
    assert tune.finished(study) == 0
    assert study.ask(tune.distributions(search.dimensions)).params not in first


def test_a_study_of_another_search_is_refused(tmp_path: Path) -> None:
    path = tmp_path / tune.STUDY_FILE
    tune.open_study(Search(parse_space(["units=2,4"]), SETTINGS), path, 0)
    tune.open_study(Search(parse_space(["units=2,4"]), dict(SETTINGS)), path, 0)  # the same: resumed
    with pytest.raises(ConfigError) as e:
        tune.open_study(Search(parse_space(["units=2,8"]), SETTINGS), path, 0)
    assert e.value.param == "out" and "another search" in e.value.problem


def test_without_optuna_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    with pytest.raises(ConfigError) as e:
        tune.import_optuna()
    assert e.value.param == "space" and "pip install 'lstm-stateful[tune]'" in e.value.problem


def test_a_file_is_cut_to_the_rows_of_the_validation_problem() -> None:
    columns = Columns(np.arange(20.0)[:, None], np.arange(20.0) * 2, rows=np.arange(20), lines=np.arange(20) + 2)
    search = Search(parse_space(["units=2,3"]), {"data": "x.csv", "input": ("a",), "target": "b", "tsteps": 1},
                    file_rows=20)  # fmt: skip
    cfg = search.config({})
    cut = tune.truncated(columns, cfg)
    assert cut is not None and cut.input.shape == (20, 1)  # the run's config: every row
    val = tune.validation_problem(search, {}, columns)
    assert val.config.data.input_len == split_sizes(cfg.data)[0] == 16
    assert val.series.raw_target.tolist() == (np.arange(16.0) * 2).tolist()
