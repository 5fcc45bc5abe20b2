"""What the terminal shows during and after a sweep: progress with time left, then the phase
diagram as two small tables and how often the example's rule held (a tsteps x lahead grid),
or a table of every grid point's median score and verdict per model (any other grid)."""

from __future__ import annotations

import numpy as np
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from lstm_stateful.core.config import MODES, dashed
from lstm_stateful.core.evaluate import rule_says_stateless_converges
from lstm_stateful.sweep.grid import Group, SweepSpec
from lstm_stateful.sweep.summary import SummaryRow, phase_grid


class SweepProgress:
    """Points (trainings) done / total and the time left. The bar advances by each group's
    estimated cost (``Group.work``), so a group with a long window counts for more and the
    estimate of the time left is not fooled by the cheap groups."""

    def __init__(self, console: Console, todo: list[Group], done_before: int, total: int) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[points]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=console,
        )
        self._done, self._total = done_before, total
        work = sum(g.work for g in todo)
        self._task = self._progress.add_task("trainings", total=work or 1, points=self._counts())

    def _counts(self) -> str:
        return f"{self._done:,}/{self._total:,}"

    def __enter__(self) -> SweepProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def group_done(self, group: Group) -> None:
        self._done += group.trainings
        self._progress.update(self._task, advance=group.work, points=self._counts())


def _grid_table(title: str, grid: np.ndarray, spec: SweepSpec) -> Table:
    tsteps, lahead = spec.values("tsteps"), spec.values("lahead")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("lahead \\ tsteps", justify="right", style="dim")
    for t in tsteps:
        table.add_column(str(t), justify="right")
    for i, la in reversed(list(enumerate(lahead))):
        points = []
        for j, t in enumerate(tsteps):
            text = "-" if np.isnan(grid[i, j]) else f"{grid[i, j]:.2f}"
            bold = rule_says_stateless_converges(t, la)  # type: ignore[arg-type]  # its axes hold ints
            points.append(f"[bold]{text}[/bold]" if bold else text)
        table.add_row(str(la), *points)
    return table


def rule_record(rows: list[SummaryRow]) -> str:
    """How often the example's rule held, over the points it can be checked on: a point whose
    every stateless seed diverged (banner_held None) neither held nor failed, so it is
    counted apart rather than as a success or a failure."""
    stateless = [r for r in rows if r.mode == "stateless"]
    checked = [r for r in stateless if r.banner_held is not None]
    held = sum(r.banner_held is True for r in checked)
    wrong = [f"(tsteps {r.tsteps}, lahead {r.lahead})" for r in checked if r.banner_held is False]
    unchecked = len(stateless) - len(checked)
    text = f"The example's rule (stateless converges iff lahead >= tsteps) held in {held} of {len(checked)} points"
    if unchecked:
        text += f"; {unchecked} cannot be checked (every stateless seed diverged)"
    if wrong:
        text += f"; not in {', '.join(wrong[:8])}{' ...' if len(wrong) > 8 else ''}"
    return text + "."


def print_sweep_summary(console: Console, rows: list[SummaryRow], spec: SweepSpec) -> None:
    """A tsteps x lahead grid: median R^2 per point for each model (bold: lahead >= tsteps),
    then the rule's record. Any other grid: ``print_points``."""
    if not spec.is_phase_diagram:
        print_points(console, rows, spec)
        return
    for mode in MODES:
        console.print(_grid_table(f"{mode}: median test R^2", phase_grid(rows, spec, mode, "r2_median"), spec))
    console.print(rule_record(rows))
    n_points = sum(r.mode == "stateless" for r in rows)
    n_seeds = max((r.n_seeds for r in rows), default=0)
    stateful_ok = sum(r.verdict == "converged" for r in rows if r.mode == "stateful")
    console.print(f"Stateful converged (median over {n_seeds} seeds) in {stateful_ok} of {n_points} points.")


def _score(row: SummaryRow, on_file: bool) -> str:
    """The row's median score: the skill and its interval over seeds on a file, else R^2."""
    if on_file:
        if np.isnan(row.skill_median):
            return "-"
        return f"{row.skill_median:+.3f} ({row.skill_low:+.3f}..{row.skill_high:+.3f})"
    return "-" if np.isnan(row.r2_median) else f"{row.r2_median:.3f}"


def print_points(console: Console, rows: list[SummaryRow], spec: SweepSpec) -> None:
    """Every grid point: its settings, then each model's median score (R^2; on a data file
    the skill over the best baseline, with its interval over seeds) and verdict; then the
    best point of each model."""
    on_file = spec.base.data.file is not None
    score = "median skill (the seeds' range)" if on_file else "median R^2"
    table = Table(title=f"Every grid point: {score} and verdict", title_justify="left", box=box.SIMPLE_HEAD)
    for key in spec.keys:
        table.add_column(dashed(key), justify="right", style="dim")
    for mode in MODES:
        table.add_column(f"{mode}", justify="right")
        table.add_column("verdict")
    by_point: dict[tuple, dict[str, SummaryRow]] = {}
    for row in rows:
        by_point.setdefault(row.settings, {})[row.mode] = row
    for settings, modes in by_point.items():
        cells = [str(v) for _, v in settings]
        for mode in MODES:
            found = modes.get(mode)
            cells += [_score(found, on_file), found.verdict] if found else ["-", ""]
        table.add_row(*cells)
    console.print(table)
    for mode in MODES:
        console.print(_best(rows, mode, on_file))


def _best(rows: list[SummaryRow], mode: str, on_file: bool) -> str:
    """The point where ``mode`` scored best (median over seeds)."""
    field = "skill_median" if on_file else "r2_median"
    scored = [r for r in rows if r.mode == mode and np.isfinite(getattr(r, field))]
    if not scored:
        return f"{mode}: no point scored (every seed diverged)."
    best = max(scored, key=lambda r: getattr(r, field))
    where = ", ".join(f"{dashed(k)}={v}" for k, v in best.settings)
    name = "skill" if on_file else "R^2"
    return f"{mode}: best median {name} {getattr(best, field):.3f} at {where} ({best.verdict})."


class SweepConsole:
    """What ``lstm-stateful sweep`` shows while it works (a ``commands.sweep.SweepView``)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/yellow] {message}")

    def planned(self, spec: SweepSpec, todo: list[Group], stored_points: int) -> None:
        """What the sweep will train, and what the store already holds."""
        n_points = len(spec.points)
        axes = " x ".join(f"{dashed(a.key)} {list(a.values)}" for a in spec.axes)
        self.console.print(
            f"Sweep: {axes} = {n_points} grid points x {len(MODES)} models x {spec.base.seeds} seeds = "
            f"{spec.trainings:,} trainings of {spec.base.train.epochs} epochs."
        )
        if stored_points:
            rest = f"training the other {n_points - stored_points}" if todo else "nothing left to train"
            self.console.print(f"{stored_points} of {n_points} points are already in the store; {rest}.")

    def training(self, spec: SweepSpec, todo: list[Group], stored_trainings: int) -> SweepProgress:
        return SweepProgress(self.console, todo, stored_trainings, spec.trainings)
