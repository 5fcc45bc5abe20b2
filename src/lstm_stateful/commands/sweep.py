"""``sweep``: every grid point, every seed, both models, kept in a store; and its redraw.

``sweep`` trains the points the store lacks (on this machine or a Dask cluster) and
writes ``summary.csv``, the phase diagram and ``report.html``; ``redraw`` writes them again
from the store alone. What the terminal shows meanwhile goes through a ``SweepView``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Protocol

from lstm_stateful.core.config import ExperimentConfig, dashed, experiment_config, require_int
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.io import dirs
from lstm_stateful.sweep import executors
from lstm_stateful.sweep.grid import Axis, Group, SweepSpec, parse_grid, parse_range
from lstm_stateful.sweep.store import Store
from lstm_stateful.sweep.summary import SummaryRow


@dataclasses.dataclass(frozen=True)
class SweepOptions:
    """How and where a sweep runs, as opposed to what it trains (the ``SweepSpec``).

    out: the output directory; store: the SQLite store (None: ``out/sweep.sqlite``);
    jobs: groups trained at once in this process; workers: train on a new Dask
    LocalCluster of that many processes instead; scheduler: or on an existing Dask cluster;
    cache: use JAX's persistent compilation cache.
    """

    out: Path = Path("runs/sweep")
    store: Path | None = None
    jobs: int = 2
    workers: int | None = None
    scheduler: str | None = None
    cache: bool = True

    def __post_init__(self) -> None:
        require_int("jobs", self.jobs)
        if self.workers is not None:
            require_int("workers", self.workers)
        if self.workers is not None and self.scheduler is not None:
            raise ConfigError(
                "workers", "use `workers` (a new local cluster) or `scheduler` (an existing one), not both"
            )

    @property
    def store_path(self) -> Path:
        return self.store or self.out / "sweep.sqlite"


@dataclasses.dataclass(frozen=True)
class SweepOutput:
    """A finished (or redrawn) sweep: its spec, summary rows, where its files are, groups
    trained now (0 for a redraw or a sweep already complete), and seconds taken."""

    spec: SweepSpec
    rows: list[SummaryRow]
    out_dir: Path
    store_path: Path
    groups_trained: int
    seconds: float


class ProgressView(Protocol):
    def group_done(self, group: Group) -> None: ...


class SweepView(Protocol):
    """What a front end shows during a sweep (the CLI's is ``render.sweep_console.SweepConsole``)."""

    def warn(self, message: str) -> None: ...

    def planned(self, spec: SweepSpec, todo: list[Group], stored_points: int) -> None: ...

    def training(
        self, spec: SweepSpec, todo: list[Group], stored_trainings: int
    ) -> AbstractContextManager[ProgressView]: ...


class _Quiet:
    def warn(self, message: str) -> None:
        pass

    def planned(self, spec: SweepSpec, todo: list[Group], stored_points: int) -> None:
        pass

    def training(
        self, spec: SweepSpec, todo: list[Group], stored_trainings: int
    ) -> AbstractContextManager[ProgressView]:
        return nullcontext(self)

    def group_done(self, group: Group) -> None:
        pass


# The ranges of a sweep without --grid: the example's phase diagram, tsteps x lahead.
DEFAULT_RANGE = "1:8"


def base_config(settings: Mapping[str, object], axes: Sequence[Axis] = ()) -> ExperimentConfig:
    """The config every grid point shares, from flat settings (``experiment_config``'s; a
    data file's rows are counted here). The axes' settings are set per point; the base
    takes each axis's first value, so that it is a valid config like every point."""
    for axis in axes:
        if axis.key in settings:
            raise ConfigError(axis.key, "is an axis of the grid: give its values to the grid, not as a setting")
    first = {a.key: a.values[0] for a in axes}
    try:
        if settings.get("data") is None:
            return experiment_config({**settings, **first})
        from lstm_stateful.commands.run import configure  # reads the file's columns

        return configure({**settings, **{k: v for k, v in first.items() if k != "input_len"}}).config
    except ConfigError as e:
        flag = next((a.flag for a in axes if a.key == e.param), None)
        if flag == "grid":
            raise ConfigError("grid", f"{dashed(e.param)}={first[e.param]}: {e.problem}") from None
        raise


def spec_of(
    tsteps: str | None, lahead: str | None, settings: Mapping[str, object], grid: Sequence[str] = ()
) -> SweepSpec:
    """The sweep over ``grid`` (``KEY=V1,V2,...`` strings, see ``grid.parse_grid``) and
    the ranges ``tsteps`` and ``lahead`` (``"a:b"`` inclusive, or lists like ``"1,2,4"``;
    None: not given), over the config of flat ``settings`` (see ``base_config``).

    A range given is an axis, as a grid key is (a setting in both is refused). Without a
    grid, a range not given is ``1:8``: the phase diagram, tsteps x lahead.
    """
    axes = list(parse_grid(grid))
    for name, text in (("tsteps", tsteps), ("lahead", lahead)):
        if text is None and not grid:
            text = DEFAULT_RANGE
        if text is not None:
            if any(a.key == name for a in axes):
                raise ConfigError("grid", f"{name} is given twice: as `{name}` and in the grid; use one")
            axes.insert(len([a for a in axes if a.flag != "grid"]), Axis(name, parse_range(name, text), name))
    return SweepSpec(tuple(axes), base_config(settings, axes))


def sweep(spec: SweepSpec, options: SweepOptions | None = None, view: SweepView | None = None) -> SweepOutput:
    """Train the grid points of ``spec`` the store lacks, then write the sweep's files.

    Each group is written to the store as it finishes; on an interrupt the finished groups
    stay there, and the same call again trains only the rest.
    """
    start, options, view = time.perf_counter(), options or SweepOptions(), view or _Quiet()
    out = dirs.writable(options.out, "out")
    db = Store.open(options.store_path)
    try:
        todo, done = db.pending(spec)
        view.planned(spec, todo, len(done))
        if todo:
            _train(spec, db, todo, len(done) * spec.trainings_per_point, options, view)
        records = db.records(spec)
    finally:
        db.close()
    rows = _write_files(spec, records, out)
    return SweepOutput(spec, rows, out, options.store_path, len(todo), time.perf_counter() - start)


def redraw(options: SweepOptions | None = None, given: Iterable[str] = ()) -> SweepOutput:
    """Write the files of the last sweep recorded in the store again, training nothing.
    ``given``: grid settings the caller also set (refused: the store's spec is the grid)."""
    start, options = time.perf_counter(), options or SweepOptions()
    for name in given:
        raise ConfigError(name, "cannot be set when redrawing: the store's last sweep is redrawn as it was recorded")
    path = options.store_path
    if not path.is_file():
        raise ConfigError("store", f"no sweep store at {str(path)!r}: run the sweep first, or give `store`")
    db = Store.open(path)
    try:
        spec = db.latest_sweep()
        if spec is None:
            raise ConfigError("store", f"{str(path)!r} records no sweep yet")
        records = db.records(spec)
    finally:
        db.close()
    rows = _write_files(spec, records, dirs.writable(options.out, "out"))
    return SweepOutput(spec, rows, options.out, path, 0, time.perf_counter() - start)


def _write_files(spec: SweepSpec, records: list, out: Path) -> list[SummaryRow]:
    """summary.csv, the phase diagram and report.html; returns the summary rows."""
    from lstm_stateful.render import sweep_report
    from lstm_stateful.render.report import write_report

    rows = sweep_report.write_sweep_files(spec, records, out)
    write_report(out)
    return rows


def _executor(options: SweepOptions) -> executors.LocalExecutor | executors.DaskExecutor:
    if options.scheduler is not None:
        return executors.DaskExecutor.connect(options.scheduler)
    if options.workers is not None:
        return executors.DaskExecutor.local_cluster(options.workers)
    return executors.LocalExecutor(options.jobs)


def _train(spec: SweepSpec, db: Store, todo: list[Group], stored: int, options: SweepOptions, view: SweepView) -> None:
    from lstm_stateful.core import compile_cache
    from lstm_stateful.sweep.training import run_sweep

    executor = _executor(options)
    if options.cache and isinstance(executor, executors.DaskExecutor):
        executor.cache_dir = str(compile_cache.default_cache_dir())  # each worker turns it on
    elif options.cache and (problem := compile_cache.enable(compile_cache.default_cache_dir())):
        view.warn(f"{problem}; compiling without it")
    try:
        with view.training(spec, todo, stored) as progress:
            run_sweep(spec, db, executor, on_group=progress.group_done)
    finally:
        executor.close()
