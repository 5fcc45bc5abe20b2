"""``tune``: a search over settings driven by Optuna (``sweep.tune``), then the best
configuration trained on all the training rows and scored once on the test rows.

The study is Optuna's own SQLite storage, ``OUT/tune.sqlite``: the same command again
resumes it (finished trials are kept), and ``optuna-dashboard sqlite:///OUT/tune.sqlite``
shows it. Writes ``OUT/trials.csv`` (every trial) and ``OUT/best.json`` (the best params,
its config and the final run's results, baselines included). What the terminal shows
meanwhile goes through a ``TuneView``; ``None`` shows nothing.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from lstm_stateful.commands.run import read_columns
from lstm_stateful.core import compile_cache
from lstm_stateful.core.config import MODES, ExperimentConfig, require_int
from lstm_stateful.io import dirs
from lstm_stateful.io.atomic import write_atomic
from lstm_stateful.sweep.space import VALIDATION, Dimension, Search, check_scoring, parse_space

if TYPE_CHECKING:
    from lstm_stateful.engine.experiment import RunResult
    from lstm_stateful.sweep.tune import TrialRow

TRIALS_FILE = "trials.csv"
BEST_FILE = "best.json"


@dataclasses.dataclass(frozen=True)
class TuneConfig:
    """A search, validated on creation (the spaces' syntax and types; their values against
    the other settings and the data once ``tune`` has read the data).

    space: the ``--space`` texts (``sweep.space``); settings: the flat experiment settings
    every trial shares (``experiment_config``'s; ``seed`` also seeds the sampler); trials:
    the finished trials the study must hold; batch: trials asked and trained at a time;
    out: the directory of the study and the files; validation: the share of the training
    rows, the last ones, that scores a trial; mode: the model whose median validation MSE
    over the seeds is the objective; cache: use JAX's persistent compilation cache.
    """

    space: tuple[str, ...]
    settings: Mapping[str, object] = dataclasses.field(default_factory=dict)
    trials: int = 20
    batch: int = 8
    out: Path = Path("runs/tune")
    validation: float = VALIDATION
    mode: str = "stateful"
    cache: bool = True

    def __post_init__(self) -> None:
        require_int("trials", self.trials)
        require_int("batch", self.batch)
        check_scoring(self.validation, self.mode)
        parse_space(self.space)

    @property
    def dimensions(self) -> tuple[Dimension, ...]:
        return parse_space(self.space)


@dataclasses.dataclass(frozen=True)
class TuneOutput:
    """A finished search: every trial of the study (``sweep.tune.TrialRow``), the best one,
    its config, the final run (that config trained on all the training rows, scored on the
    test rows beside the baselines), where the files are, trials trained now, seconds."""

    search: Search
    trials: list[TrialRow]
    best: TrialRow
    best_config: ExperimentConfig
    result: RunResult
    out_dir: Path
    study_path: Path
    trained: int
    seconds: float


class TrialsProgress(Protocol):
    def batch_done(self, n: int) -> None: ...


class TuneView(Protocol):
    """What a front end shows during a search (the CLI's is ``render.tune_console.TuneConsole``)."""

    def warn(self, message: str) -> None: ...

    def planned(self, search: Search, trials: int, finished: int) -> None: ...

    def searching(self, trials: int, finished: int) -> AbstractContextManager[TrialsProgress]: ...

    def retraining(self, best: TrialRow, cfg: ExperimentConfig) -> None: ...


class _Quiet:
    """A view that shows nothing: ``tune`` called from Python."""

    def warn(self, message: str) -> None:
        pass

    def planned(self, search: Search, trials: int, finished: int) -> None:
        pass

    def searching(self, trials: int, finished: int) -> AbstractContextManager[TrialsProgress]:
        return nullcontext(self)

    def batch_done(self, n: int) -> None:
        pass

    def retraining(self, best: TrialRow, cfg: ExperimentConfig) -> None:
        pass


def tune(cfg: TuneConfig, view: TuneView | None = None) -> TuneOutput:
    """Run the search until its study holds ``cfg.trials`` finished trials, retrain the
    best, and write the files. On an interrupt the finished trials stay in the study, and
    the same call again trains only the rest."""
    from lstm_stateful.sweep import tune as search_mod

    start, view = time.perf_counter(), view or _Quiet()
    search_mod.import_optuna()  # a missing extra is said before anything is read or written
    out = dirs.writable(cfg.out, "out")
    columns = read_columns(cfg.settings)  # read once: every trial and the final run share them
    file_rows = None if columns is None else columns.input.shape[0]
    search = Search(cfg.dimensions, cfg.settings, file_rows, cfg.validation, cfg.mode)
    search_mod.check_data(search, columns)
    if cfg.cache and (problem := compile_cache.enable(compile_cache.default_cache_dir())):
        view.warn(f"{problem}; compiling without it")
    study_path = out / search_mod.STUDY_FILE
    study = search_mod.open_study(search, study_path, search.base.seed)
    done = search_mod.finished(study)
    view.planned(search, cfg.trials, done)
    with view.searching(cfg.trials, done) as progress:
        trained = search_mod.run_study(search, study, columns, cfg.trials, cfg.batch, progress.batch_done)
    rows, best = search_mod.trial_rows(study), search_mod.best_trial(study)
    best_config = search.config(best.params)
    write_atomic(out / TRIALS_FILE, trials_csv(search, rows))  # before the retraining: kept if it fails
    view.retraining(best, best_config)
    result = search_mod.final_run(search, best, columns)
    write_atomic(out / BEST_FILE, json.dumps(best_dict(search, best, result, study_path), indent=2) + "\n")
    return TuneOutput(search, rows, best, best_config, result, out, study_path, trained, time.perf_counter() - start)


def csv_cell(value: object) -> str:
    """A value as a CSV cell: empty for None, true/false, floats round-trippable."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, float) else str(value)


def trials_csv(search: Search, rows: list[TrialRow]) -> str:
    """``trials.csv``: one row per trial, by number: its state, value, params (a column per
    searched setting), each model's median validation MSE, and why it failed."""
    names = [d.name for d in search.dimensions]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["number", "state", "value", *names, *(f"val_mse_{m}" for m in MODES), "failure"])
    for r in rows:
        params = [csv_cell(r.params.get(n)) for n in names]
        writer.writerow([r.number, r.state, csv_cell(r.value), *params, *(csv_cell(r.mse[m]) for m in MODES),
                         csv_cell(r.failure)])  # fmt: skip
    return buf.getvalue()


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def best_dict(search: Search, best: TrialRow, result: RunResult, study_path: Path) -> dict:
    """``best.json``: the objective, the best trial, and the final run's results."""
    from lstm_stateful.render.outputs import results_dict
    from lstm_stateful.sweep.tune import STUDY_NAME

    share = f"{search.validation:.0%}"
    return {
        "study": {"storage": f"sqlite:///{study_path.resolve()}", "name": STUDY_NAME},
        "objective": f"median over the seeds of the {search.mode} model's MSE, in the data's units, on the "
        f"last {share} of the training rows, trained on the rest (minimised)",
        "space": [d.text for d in search.dimensions],
        "best_trial": best.number,
        "validation_mse": _finite(best.value),
        "params": best.params,
        "final": results_dict(result),
    }
