"""A search (``lstm-stateful tune``): Optuna's TPE sampler proposes trials in batches; the
trials of a batch that share a compiled program train in it together; each is told its
validation score.

A batch's trials train as a sweep's grid points do (``grid.program_key``,
``training.train_program``): seeds x modes are a program's lanes, the trials its problems,
each with its own data and learning rate.

A trial's value is the median, over the seeds, of one model's (``Search.mode``) MSE in the
data's units on the last ``Search.validation`` share of the training rows, having trained
on the rest (``space.validation_config``); a diverged seed counts as infinitely bad. The
test rows never reach a trial. The study lives in Optuna's own RDB storage (SQLite): a
killed search resumes from its finished trials, and ``optuna-dashboard`` shows it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from lstm_stateful.core import data as data_mod
from lstm_stateful.core.config import MODES, ExperimentConfig
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.engine import experiment
from lstm_stateful.sweep import grid
from lstm_stateful.sweep import training as sweep_training
from lstm_stateful.sweep.space import Dimension, Search, raw_rows, shown, validation_config

if TYPE_CHECKING:  # Optuna is optional (the tune extra): imported when a search starts
    import optuna

STUDY_NAME = "tune"
STUDY_FILE = "tune.sqlite"
TUNE_EXTRA = "the search needs Optuna, the tune extra: pip install 'lstm-stateful[tune]'"
# A trial's user attributes: why it failed (none: interrupted), each model's validation MSE.
FAILURE = "failure"
MSE_ATTR = "val_mse_{mode}"
# The study's user attribute holding its ``Search.identity``.
SEARCH_ATTR = "search"


def import_optuna() -> ModuleType:
    """``optuna``, quiet (its per-trial log lines would cut through the progress bar), or a
    one-line error naming the extra that installs it."""
    try:
        import optuna
    except ImportError as e:
        missing = (e.name or "").partition(".")[0] == "optuna"  # only a missing Optuna is cured by the extra
        raise ConfigError("space", TUNE_EXTRA if missing else f"cannot import optuna: {e}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def distributions(dims: Sequence[Dimension]) -> dict[str, optuna.distributions.BaseDistribution]:
    """Optuna's distribution of each dimension, by setting name."""
    d = import_optuna().distributions
    out: dict[str, optuna.distributions.BaseDistribution] = {}
    for dim in dims:
        if dim.kind == "choice":
            out[dim.name] = d.CategoricalDistribution(dim.choices)
        elif dim.kind == "int":
            out[dim.name] = d.IntDistribution(int(dim.low), int(dim.high), log=dim.log)
        else:
            out[dim.name] = d.FloatDistribution(dim.low, dim.high, log=dim.log)
    return out


class Problem(NamedTuple):
    """A trial's validation problem: its config (``validation_config``), series and split."""

    config: ExperimentConfig
    series: data_mod.Series
    split: data_mod.Split


class Outcome(NamedTuple):
    """What a trial scored: value, the objective (None: failed, for ``failure``); mse: each
    model's median validation MSE over the seeds (inf where most seeds diverged)."""

    value: float | None
    mse: dict[str, float]
    failure: str | None = None


def truncated(columns: data_mod.Columns | None, cfg: ExperimentConfig) -> data_mod.Columns | None:
    """A data file's columns cut to the rows ``cfg`` is made from (every per-row array)."""
    if columns is None:
        return None
    n = raw_rows(cfg)
    return columns._replace(**{k: a[:n] for k, a in columns._asdict().items() if isinstance(a, np.ndarray)})


def validation_problem(search: Search, params: Mapping[str, object], columns: data_mod.Columns | None) -> Problem:
    """The problem a trial with ``params`` is scored on. ``columns``: the whole data file's
    (cut here to the training rows), None for the generated series."""
    cfg = validation_config(search.config(params), search.validation)
    series, split = experiment.prepare(cfg, truncated(columns, cfg))
    return Problem(cfg, series, split)


def check_data(search: Search, columns: data_mod.Columns | None) -> None:
    """Every value of every space (a range's bounds) makes a series of the data: what the
    configs alone cannot tell (a log of a non-positive value, a constant column to
    standardize) fails here, before any trial, as a ``ConfigError`` on ``space``."""
    for d in search.dimensions:
        for value in d.extremes:
            try:
                validation_problem(search, {d.name: value}, columns)
                cfg = search.config({d.name: value})
                experiment.prepare(cfg, columns)
            except ConfigError as e:
                setting = f"{d.name.replace('_', '-')}={shown(value)} (of {d.text!r})"
                raise ConfigError("space", f"{setting} does not fit the data: `{e.param}` {e.problem}") from None


def objective(mse: np.ndarray) -> float:
    """(S,) validation MSEs -> the trial's value: their median, a diverged seed (NaN or
    inf) counting as the worst, so that a config most of whose seeds diverge is worst."""
    return float(np.median(np.where(np.isfinite(mse), mse, np.inf)))


def _outcome(search: Search, problem: Problem, predictions: np.ndarray) -> Outcome:
    """A trial's problem scored from its predictions (M, S, n_val), as ``experiment.run``
    scores a test set."""
    cfg, series, split = problem
    mse = {mode: experiment.score_model(cfg, mode, split, predictions[m], series).mse for m, mode in enumerate(MODES)}
    return Outcome(objective(mse[search.mode]), {mode: objective(v) for mode, v in mse.items()})


def programs(problems: Mapping[int, Problem]) -> list[grid.Group]:
    """The problems (by trial index) in groups that each train as one compiled program,
    packed as a sweep's points are (``grid.pack``: one ``grid.program_key``, whose data,
    order, layout and learning rate may differ, and bounded programs). A group's points
    hold the trial indices."""
    members: dict[tuple, list[tuple[grid.Point, ExperimentConfig]]] = {}
    for i, problem in problems.items():
        key = (grid.program_key(problem.config), problem.config.seeds)
        members.setdefault(key, []).append((grid.Point((("trial", i),)), problem.config))
    return [group for (_, seeds), points in members.items() for group in grid.pack(points, 0, seeds)]


def evaluate_params(
    search: Search, trials: Sequence[Mapping[str, object]], columns: data_mod.Columns | None
) -> list[Outcome]:
    """Train and score a batch of trials (each its params by setting name): those that
    share a program train in it together (``programs``). A trial whose params make an
    impossible config (a combination the spaces' bounds alone do not show) fails with the
    reason."""
    outcomes: dict[int, Outcome] = {}
    problems: dict[int, Problem] = {}
    for i, params in enumerate(trials):
        try:
            problems[i] = validation_problem(search, params, columns)
        except ConfigError as e:
            outcomes[i] = Outcome(None, {}, str(e))
    predictions: dict[int, list[np.ndarray]] = {i: [] for i in problems}
    for group in programs(problems):
        indices = [int(point["trial"]) for point in group.points]
        training = sweep_training.train_program(group, [problems[i].split for i in indices])
        for p, i in enumerate(indices):
            predictions[i].append(training.predictions[p])  # (M, seeds of the group, n_val)
    for i, problem in problems.items():
        outcomes[i] = _outcome(search, problem, np.concatenate(predictions[i], axis=1))
    return [outcomes[i] for i in range(len(trials))]


def open_study(search: Search, path: Path, seed: int) -> optuna.Study:
    """The study stored at ``path`` (SQLite), created if new; refused if it holds another
    search. Trials left running by a killed search are marked failed (one search per study
    at a time). The TPE sampler's seed is ``seed`` and the number of trials stored, so that
    a resumed search does not propose its first trials again."""
    optuna = import_optuna()
    storage = f"sqlite:///{path.resolve()}"
    study = optuna.create_study(storage=storage, study_name=STUDY_NAME, direction="minimize", load_if_exists=True)
    stored = study.user_attrs.get(SEARCH_ATTR)
    if stored is None:
        study.set_user_attr(SEARCH_ATTR, search.identity())
    elif stored != search.identity():
        problem = f"holds the study of another search in {str(path)!r} (other spaces, settings or objective)"
        raise ConfigError("out", f"{problem}: search the same way to resume it, or give another `out`")
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    n = len(study.get_trials(deepcopy=False))
    study.sampler = optuna.samplers.TPESampler(seed=(seed + 1_000_003 * n) % 2**32)
    return study


def finished(study: optuna.Study) -> int:
    """Trials that count towards the search's total: complete, or failed for a reason
    (an impossible config), not the interrupted ones."""
    return sum(t.state.name == "COMPLETE" or FAILURE in t.user_attrs for t in study.get_trials(deepcopy=False))


def _tell(study: optuna.Study, trial: optuna.Trial, outcome: Outcome) -> None:
    for mode, mse in outcome.mse.items():
        trial.set_user_attr(MSE_ATTR.format(mode=mode), mse if np.isfinite(mse) else None)
    if outcome.failure is not None:
        trial.set_user_attr(FAILURE, outcome.failure)
        study.tell(trial, state=import_optuna().trial.TrialState.FAIL)
    else:
        study.tell(trial, outcome.value)


def run_study(
    search: Search,
    study: optuna.Study,
    columns: data_mod.Columns | None,
    trials: int,
    batch: int,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Ask, train and tell trials, ``batch`` at a time, until the study holds ``trials``
    finished ones; returns how many were trained now. ``on_batch(n)`` after each batch of n.
    On an interrupt the batch in training is marked failed (interrupted) and not counted."""
    space = distributions(search.dimensions)
    trained = 0
    while (left := trials - finished(study)) > 0:
        asked = [study.ask(space) for _ in range(min(batch, left))]
        try:
            outcomes = evaluate_params(search, [t.params for t in asked], columns)
        except BaseException:
            for t in asked:
                study.tell(t, state=import_optuna().trial.TrialState.FAIL)
            raise
        for t, outcome in zip(asked, outcomes, strict=True):
            _tell(study, t, outcome)
        trained += len(asked)
        if on_batch is not None:
            on_batch(len(asked))
    return trained


class TrialRow(NamedTuple):
    """One trial of the study: number; state (complete, failed, interrupted, running);
    params by setting name; value (None unless complete); each model's median validation
    MSE (None: not scored, or diverged); failure: why it failed."""

    number: int
    state: str
    params: dict[str, object]
    value: float | None
    mse: dict[str, float | None]
    failure: str | None


def trial_rows(study: optuna.Study) -> list[TrialRow]:
    """Every trial stored, by number."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        state = t.state.name.lower()
        if t.state.name == "FAIL":
            state = "failed" if FAILURE in t.user_attrs else "interrupted"
        mse = {mode: t.user_attrs.get(MSE_ATTR.format(mode=mode)) for mode in MODES}
        rows.append(TrialRow(t.number, state, dict(t.params), t.value, mse, t.user_attrs.get(FAILURE)))
    return sorted(rows, key=lambda r: r.number)


def best_trial(study: optuna.Study) -> TrialRow:
    """The complete trial of the lowest value (the first of equals); a ``ConfigError`` on
    ``space`` if no trial completed."""
    rows = trial_rows(study)
    complete = [r for r in rows if r.state == "complete"]
    if not complete:
        why = next((r.failure for r in rows if r.failure), "every trial was interrupted")
        raise ConfigError("space", f"no trial of the {len(rows)} completed; the first failure: {why}")
    return min(complete, key=lambda r: (r.value, r.number))


def final_run(
    search: Search, best: TrialRow, columns: data_mod.Columns | None, on_stage: experiment.StageCallback | None = None
) -> experiment.RunResult:
    """The best trial's config trained on all the training rows and scored once on the
    test rows, beside the baselines: ``experiment.run`` of that config."""
    cfg = search.config(best.params)
    return experiment.run(cfg, on_stage=on_stage, prepared=experiment.prepare(cfg, columns))
