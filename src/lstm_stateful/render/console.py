"""What the terminal shows: the example's prints made readable, progress, the final tables
(the models, the baselines, each model's skill over the best baseline)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from lstm_stateful.core import evaluate
from lstm_stateful.core.config import MODES, ExperimentConfig
from lstm_stateful.core.data import Series, Split

if TYPE_CHECKING:  # the CLI imports this module before JAX is loaded
    import jax

    from lstm_stateful.engine.experiment import RunResult

HEAD_ROWS = 5
# Sequential training steps (epochs x batches) from which the progress bars update live,
# once per epoch; about 3 s of training on a laptop CPU. The example has 8,000. (A live
# bar needs a host callback in the program, which JAX does not keep in its cache.)
LIVE_PROGRESS_STEPS = 100_000


class RunConsole:
    """What ``lstm-stateful run`` shows while it works (a ``commands.run.RunView``)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/yellow] {message}")

    def started(self, cfg: ExperimentConfig) -> None:
        print_banner(self.console, cfg)

    def prepared(self, cfg: ExperimentConfig, series: Series, split: Split) -> None:
        print_data(self.console, cfg, series, split)

    def training(self, cfg: ExperimentConfig, steps: int) -> TrainingProgress:
        live = steps >= LIVE_PROGRESS_STEPS
        return TrainingProgress(self.console, cfg.train.epochs, cfg.seeds, live)


def print_banner(console: Console, cfg: ExperimentConfig) -> None:
    """The example's banner, framed by asterisks as it prints it; for your file, what is
    read and what the models must output instead (the example's rule is about its task)."""
    d = cfg.data
    if d.file is not None:
        task = {"moving-average": f"the {d.tsteps}-point moving average of {d.input_cols[0]}"}
        task |= {"forecast": f"{d.input_cols[0]} {d.horizon} steps ahead", "target": str(d.target_col)}
        learned = "" if d.transform == "none" else f", learned as its {d.transform}"
        scaled = ", standardized by the training rows" if d.standardize else ""
        inputs = ", ".join(map(repr, d.input_cols))
        line = f"Data: {d.file}, input {inputs}{learned}{scaled}; target: {task[d.task]}."
        console.print(escape(line), highlight=False)  # a name with brackets is not markup
    banner = evaluate.banner(d)
    if banner is None:
        return
    console.print("*" * 33, banner, "*" * 33, sep="\n", style="bold", highlight=False)


def _frame_table(title: str, cfg: ExperimentConfig, series: Series, rows: np.ndarray) -> Table:
    """The model's view of ``rows``: one input column's whole window, or with several
    columns each one's newest value (a window of each would not fit), and the target."""
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    table.add_column("row", justify="right", style="dim")
    n_features = series.inputs.shape[2]
    if n_features == 1:
        heads = [f"x[t-{lag}]" if lag else "x[t]" for lag in range(series.inputs.shape[1])]
        shown = series.inputs[:, :, 0]
    else:
        heads, shown = [f"{c}[t]" for c in cfg.data.input_cols], series.inputs[:, 0, :]
    for head in heads:
        table.add_column(escape(head), justify="right")  # "[t]" is not a style
    table.add_column("expected", justify="right", style="cyan")
    for r in rows:
        values = (f"{v:+.6f}" for v in shown[r])
        table.add_row(str(r + cfg.data.to_drop), *values, f"{series.target[r]:+.6f}")
    return table


def print_data(console: Console, cfg: ExperimentConfig, series: Series, split: Split) -> None:
    """Shapes, then the head and tail of the input windows and the expected output.

    Rows are numbered as in the example's frame (it keeps pandas's index after the drop).
    """
    n = series.inputs.shape[0]
    console.print(f"Input shape: {series.inputs.shape}   Output shape: {series.target.shape}")
    console.print(
        f"x_train {split.x_train.shape}  y_train {split.y_train.shape}  "
        f"x_test {split.x_test.shape}  y_test {split.y_test.shape}"
    )
    head, tail = np.arange(min(HEAD_ROWS, n)), np.arange(max(n - HEAD_ROWS, 0), n)
    console.print(_frame_table("Head", cfg, series, head))
    console.print(_frame_table("Tail", cfg, series, tail))


class TrainingProgress:
    """One progress bar per model: the stage, epochs done, median losses. ``on_epoch``
    advances it from inside the compiled program (None unless ``live``); ``finish`` fills
    it from the result."""

    def __init__(self, console: Console, epochs: int, n_seeds: int, live: bool = False) -> None:
        self.on_epoch = self._on_epoch if live else None
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._tasks = {
            mode: self._progress.add_task(f"{mode:9s} x{n_seeds} seeds", total=epochs, status="") for mode in MODES
        }

    def __enter__(self) -> TrainingProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def stage(self, name: str) -> None:
        for task in self._tasks.values():
            self._progress.update(task, status=name)

    def _show(self, mode: str, epochs_done: int, train: np.ndarray, val: np.ndarray) -> None:
        status = f"median train {np.median(train):.2e}  val {np.median(val):.2e}"
        self._progress.update(self._tasks[mode], completed=epochs_done, status=status)

    def _on_epoch(self, index: jax.Array, stateful: jax.Array, train: jax.Array, val: jax.Array) -> None:
        """From inside the training program: per-lane flags and losses, (L,) each."""
        flags, train_np, val_np = np.asarray(stateful), np.asarray(train), np.asarray(val)
        for mode in MODES:
            lanes = flags == (mode == "stateful")
            self._show(mode, int(index) + 1, train_np[lanes], val_np[lanes])

    def finish(self, result: RunResult) -> None:
        for mode, m in result.models.items():
            self._show(mode, m.train_loss.shape[1], m.train_loss[:, -1], m.val_loss[:, -1])


def _fmt(value: float, spec: str, missing: str = "nan") -> str:
    return missing if not np.isfinite(value) else format(value, spec)


def _unscored_caption(cfg: ExperimentConfig) -> str | None:
    d = cfg.data
    if d.task != "moving-average" or d.tsteps == 1:
        return None
    where = f"points of each of the {d.batch_size} {d.layout} test streams" if d.batch_size > 1 else "points"
    return f"the stateful model is scored without its first tsteps-1 {where}"


def _floor_lines(cfg: ExperimentConfig, f: evaluate.Floors) -> str:
    """What the floors say, leaving out the ones this data and task do not have. On a file
    or with a transform none is a floor in the data's units: the baselines say it all."""
    if cfg.data.file is not None or cfg.data.transform != "none":
        return "No floor is known here: the baselines are the measure."
    zero = f"Predicting zero scores {f.zero_test:.3g} on the test set"
    if np.isfinite(f.zero_theory):
        zero += f" (theory {f.zero_theory:.3g})"
    if not np.isfinite(f.window_test):
        return f"{zero}; no window floor is known here."
    theory = f" (theory {f.window_theory:.3g})" if np.isfinite(f.window_theory) else ""
    return f"{zero}; the stateless window floor is {f.window_test:.3g}{theory}."


def _seed_counts(scores: evaluate.Scores, counted: np.ndarray) -> str:
    """'4/5': the seeds ``counted`` (converged, or beat the best baseline), with the diverged
    seeds named only when there are some (the table stays within 80 columns)."""
    text = f"{int(np.sum(counted))}/{scores.mse.shape[0]}"
    n = int(scores.diverged.sum())
    return f"{text} ({n} diverged)" if n else text


def _warn_diverged(console: Console, result: RunResult) -> None:
    for mode in MODES:
        scores = result.models[mode].scores
        if n := int(scores.diverged.sum()):
            console.print(
                f"[yellow]warning:[/yellow] {n} of {scores.mse.shape[0]} {mode} seeds diverged (NaN or infinite "
                f"predictions at --lr {result.config.train.learning_rate:g}): counted, left out of every median."
            )


def _table(title: str, columns: tuple[str, ...], left: tuple[str, ...], caption: str | None = None) -> Table:
    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for name in columns:
        table.add_column(name, justify="left" if name in left else "right", no_wrap=True)
    return table


def _models_table(result: RunResult) -> Table:
    """Per model: seeds converged (on a file: seeds that beat the best baseline), median R^2
    and MSE, floor (generated series only: a file has none), verdict, time."""
    on_file = result.config.data.file is not None
    counted = "beat best" if on_file else "converged"
    columns = ("model", counted, "R^2", "MSE", *(() if on_file else ("floor",)), "verdict", "train s")
    table = _table("Test set, median over seeds", columns, ("model", "verdict"), _unscored_caption(result.config))
    for mode in MODES:
        m = result.models[mode]
        floor = () if on_file else (_fmt(evaluate.model_floor(result.floors, mode), ".2e", missing="-"),)
        table.add_row(
            mode,
            _seed_counts(m.scores, m.skill.per_seed > 0 if on_file else m.scores.converged),
            _fmt(evaluate.finite_median(m.scores.r2), ".3f"),
            _fmt(evaluate.finite_median(m.scores.mse), ".2e"),
            *floor,
            m.verdict,
            f"{m.train_s:.2f}",
        )
    return table


def _baselines_table(result: RunResult) -> Table:
    """Each baseline's test MSE: one column, or one per model where they are scored on
    different points (the stateful model leaves out its warm-up)."""
    mses = result.baselines.mse
    modes = MODES if mses["stateful"] != mses["stateless"] else MODES[:1]
    heads = tuple(f"MSE, {mode} points" for mode in modes) if len(modes) > 1 else ("MSE",)
    table = _table("Baselines, test set", ("baseline", *heads), ("baseline",))
    for name in mses[MODES[0]]:
        table.add_row(name, *(_fmt(mses[mode][name], ".2e") for mode in modes))
    return table


def _fmt_skill(value: float) -> str:
    """A skill to 3 decimals; far below 0 (against a nearly exact baseline) in exponent
    form; -inf against an exact one."""
    if value == -np.inf:
        return "-inf"
    return _fmt(value, ".3f" if not np.isfinite(value) or abs(value) < 1000 else ".2e")


def _skill_table(result: RunResult) -> Table:
    """Per model: the best baseline, the skill's median and range over seeds, and (on the
    generated series, whose verdicts are about floors) the verdict against the baselines;
    on a file the models' table already shows it."""
    verdict = () if result.config.data.file is not None else ("against the baselines",)
    columns = ("model", "best baseline", "skill", "min", "max", *verdict)
    caption = "skill = 1 - MSE / best baseline's MSE"
    table = _table("Skill, median and range over seeds", columns, ("model", "best baseline", *verdict), caption)
    for mode in MODES:
        s = result.models[mode].skill
        row = (_fmt_skill(s.median), _fmt_skill(s.low), _fmt_skill(s.high))
        table.add_row(mode, s.baseline, *row, *((evaluate.baseline_verdict(s),) if verdict else ()))
    return table


def print_summary(console: Console, result: RunResult) -> None:
    """The final tables (models, baselines, skills), the floors, and what the verdicts say."""
    console.print(_models_table(result))
    _warn_diverged(console, result)
    console.print(_baselines_table(result))
    console.print(_skill_table(result))
    console.print(_floor_lines(result.config, result.floors))
    _print_rule(console, result)


def _print_rule(console: Console, result: RunResult) -> None:
    """Whether the example's banner held, or what the verdicts are where it says nothing."""
    verdicts = f"the stateless model's verdict is '{result.models['stateless'].verdict}', the stateful model's"
    if result.banner is None:
        console.print(
            f"The example's rule is about moving averages; here {verdicts} '{result.models['stateful'].verdict}'."
        )
        return
    if result.banner_held is None:
        console.print(f'The example\'s banner "{result.banner}" cannot be checked: every stateless seed diverged.')
        return
    held = "[green]held[/green]" if result.banner_held else "[red]did NOT hold[/red]"
    console.print(
        f"The example's banner \"{result.banner}\" {held}: the stateless model's verdict is "
        f"'{result.models['stateless'].verdict}', the stateful model's '{result.models['stateful'].verdict}'."
    )
