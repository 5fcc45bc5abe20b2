"""What the terminal shows during and after a search: its plan, progress over the trials,
the best trials, and the best configuration's test scores beside the baselines."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from lstm_stateful.core.config import MODES, ExperimentConfig
from lstm_stateful.sweep.space import Search

if TYPE_CHECKING:  # the CLI imports this module before JAX is loaded
    from lstm_stateful.engine.experiment import RunResult
    from lstm_stateful.sweep.tune import TrialRow

# Trials listed after a search: the best ones, by value.
TOP_TRIALS = 10


def _value(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "inf" if math.isinf(v) else f"{v:.3g}"
    return str(v).lower() if isinstance(v, bool) else str(v)


def _params(params: dict[str, object]) -> str:
    return " ".join(f"{k.replace('_', '-')}={_value(v)}" for k, v in params.items())


class TrialsBar:
    """Trials finished / the study's total, and the time left."""

    def __init__(self, console: Console, trials: int, finished: int) -> None:
        self._progress = Progress(
            TextColumn("trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=console,
        )
        self._task = self._progress.add_task("trials", total=trials, completed=min(finished, trials))

    def __enter__(self) -> TrialsBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def batch_done(self, n: int) -> None:
        self._progress.update(self._task, advance=n)


class TuneConsole:
    """What ``lstm-stateful tune`` shows while it works (a ``commands.tune.TuneView``)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/yellow] {message}")

    def planned(self, search: Search, trials: int, finished: int) -> None:
        """What the search explores, how a trial is scored, and what the study holds."""
        base = search.base
        spaces = ", ".join(d.text for d in search.dimensions)
        self.console.print(
            f"Search: {spaces}; {trials} trials, each {len(MODES)} models x {base.seeds} seeds. Objective: the "
            f"{search.mode} model's median MSE on the last {search.validation:.0%} of the training rows."
        )
        if finished:
            rest = f"training {trials - finished} more" if finished < trials else "nothing left to train"
            self.console.print(f"The study already holds {finished} finished trials; {rest}.")

    def searching(self, trials: int, finished: int) -> TrialsBar:
        return TrialsBar(self.console, trials, finished)

    def retraining(self, best: TrialRow, cfg: ExperimentConfig) -> None:
        self.console.print(
            f"Best: trial {best.number} ({_params(best.params)}), validation MSE {_value(best.value)}. "
            "Retraining it on all the training rows, scored once on the test rows."
        )


def _trials_table(rows: list[TrialRow], search: Search) -> Table:
    complete = sorted((r for r in rows if r.state == "complete"), key=lambda r: (r.value, r.number))
    title = f"Best trials of {len(rows)}, by validation MSE ({search.mode})"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("trial", justify="right")
    for d in search.dimensions:
        table.add_column(d.name.replace("_", "-"), justify="right")
    for mode in MODES:
        table.add_column(f"{mode} MSE", justify="right")
    for r in complete[:TOP_TRIALS]:
        table.add_row(str(r.number), *(_value(r.params.get(d.name)) for d in search.dimensions),
                      *(_value(r.mse[m]) for m in MODES))  # fmt: skip
    return table


def print_tune_summary(
    console: Console, search: Search, trials: list[TrialRow], best: TrialRow, result: RunResult
) -> None:
    """The best ``trials``, what failed, then the final run's tables (``console.print_summary``):
    ``result``, the ``best`` trial's config trained on all the training rows."""
    from lstm_stateful.render.console import print_summary

    console.print(_trials_table(trials, search))
    failed = [r for r in trials if r.state == "failed"]
    interrupted = sum(r.state == "interrupted" for r in trials)
    if failed:
        console.print(f"{len(failed)} trials failed; the first: {failed[0].failure}")
    if interrupted:
        console.print(f"{interrupted} trials were interrupted (not counted; trained again as new trials).")
    console.print(f"Best configuration (trial {best.number}): {_params(best.params)}.")
    print_summary(console, result)
