"""What the terminal shows: the example's prints made readable, progress, the final table."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from rich import box
from rich.console import Console
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
        scaled = ", standardized by the training rows" if d.standardize else ""
        inputs = ", ".join(map(repr, d.input_cols))
        console.print(f"Data: {d.file}, input {inputs}{scaled}; target: {task[d.task]}.", highlight=False)
    banner = evaluate.banner(d)
    if banner is None:
        return
    console.print("*" * 33, banner, "*" * 33, sep="\n", style="bold", highlight=False)


def _frame_table(title: str, series: Series, rows: np.ndarray, first_index: int) -> Table:
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    table.add_column("row", justify="right", style="dim")
    for lag in range(series.inputs.shape[1]):
        table.add_column(f"x[t-{lag}]" if lag else "x[t]", justify="right")
    table.add_column("expected", justify="right", style="cyan")
    for r in rows:
        table.add_row(str(r + first_index), *(f"{v:+.6f}" for v in series.inputs[r]), f"{series.target[r]:+.6f}")
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
    console.print(_frame_table("Head", series, head, cfg.data.to_drop))
    console.print(_frame_table("Tail", series, tail, cfg.data.to_drop))


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


def _floor_lines(f: evaluate.Floors) -> str:
    """What the floors say, leaving out the ones this data and task do not have."""
    zero = f"Predicting zero scores {f.zero_test:.3g} on the test set"
    if np.isfinite(f.zero_theory):
        zero += f" (theory {f.zero_theory:.3g})"
    if not np.isfinite(f.window_test):
        return f"{zero}, predicting the newest input {f.last_value_test:.3g}; no window floor is known here."
    theory = f" (theory {f.window_theory:.3g})" if np.isfinite(f.window_theory) else ""
    return f"{zero}; the stateless window floor is {f.window_test:.3g}{theory}."


def _seed_counts(scores: evaluate.Scores) -> str:
    """'4/5' converged, with the diverged seeds named only when there are some (the table
    stays within 80 columns)."""
    text = f"{int(scores.converged.sum())}/{scores.mse.shape[0]}"
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


def print_summary(console: Console, result: RunResult) -> None:
    """The final table: per model, seeds converged, median R^2 and MSE, floor, verdict, time."""
    f = result.floors
    table = Table(
        title="Test set, median over seeds",
        caption=_unscored_caption(result.config),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for name in ("model", "converged", "R^2", "MSE", "floor", "verdict", "train s"):
        table.add_column(name, justify="left" if name in ("model", "verdict") else "right", no_wrap=True)
    for mode in MODES:
        m = result.models[mode]
        table.add_row(
            mode,
            _seed_counts(m.scores),
            _fmt(evaluate.finite_median(m.scores.r2), ".3f"),
            _fmt(evaluate.finite_median(m.scores.mse), ".2e"),
            _fmt(evaluate.model_floor(f, mode), ".2e", missing="-"),
            m.verdict,
            f"{m.train_s:.2f}",
        )
    console.print(table)
    _warn_diverged(console, result)
    console.print(_floor_lines(f))
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
