"""``run``: one experiment trained, scored and written to a run directory.

``configure`` turns flat settings into a config (reading a data file's columns once);
``rerun_config`` reads the config a ``results.json`` records; ``run`` trains it, scores
the models and the baselines, and writes ``results.json``, ``predictions.csv``, the figures
(``baselines.png`` among them) and ``report.html``. What the
terminal shows meanwhile goes through a ``RunView``; ``None`` shows nothing.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from lstm_stateful.core import compile_cache
from lstm_stateful.core.config import ExperimentConfig, experiment_config
from lstm_stateful.core.data import Columns, Series, Split
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.io import dirs, provenance, series_file

if TYPE_CHECKING:
    from lstm_stateful.engine.experiment import RunResult
    from lstm_stateful.render.figure_process import FigureProcess


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Where a run writes, as opposed to what it trains (the config).

    out: the run directory (None: ``runs/<UTC timestamp>``); save: also save each model's
    median seed there (``save/stateful``, ``save/stateless``); cache: use JAX's persistent
    compilation cache.
    """

    out: Path | None = None
    save: Path | None = None
    cache: bool = True


@dataclasses.dataclass(frozen=True)
class RunOutput:
    """A finished run: its result, where its files are, and its timings (seconds)."""

    result: RunResult
    out_dir: Path
    save_dir: Path | None
    timings: dict[str, float]


class TrainingView(Protocol):
    """Progress while the models train. ``on_epoch`` (None: no live updates) is called from
    inside the compiled program; ``stage`` names what is happening; ``finish`` shows the result."""

    on_epoch: Callable[..., None] | None

    def stage(self, name: str) -> None: ...

    def finish(self, result: RunResult) -> None: ...


class RunView(Protocol):
    """What a front end shows during a run (the CLI's is ``render.console.RunConsole``)."""

    def warn(self, message: str) -> None: ...

    def started(self, cfg: ExperimentConfig) -> None: ...

    def prepared(self, cfg: ExperimentConfig, series: Series, split: Split) -> None: ...

    def training(self, cfg: ExperimentConfig, steps: int) -> AbstractContextManager[TrainingView]: ...


class _Quiet:
    """A view that shows nothing: ``run`` called from Python."""

    on_epoch: Callable[..., None] | None = None

    def warn(self, message: str) -> None:
        pass

    def started(self, cfg: ExperimentConfig) -> None:
        pass

    def prepared(self, cfg: ExperimentConfig, series: Series, split: Split) -> None:
        pass

    def training(self, cfg: ExperimentConfig, steps: int) -> AbstractContextManager[TrainingView]:
        return nullcontext(self)

    def stage(self, name: str) -> None:
        pass

    def finish(self, result: RunResult) -> None:
        pass


class Configured(NamedTuple):
    """A config, and the data file's columns when it has one (read once, used by ``run``)."""

    config: ExperimentConfig
    columns: Columns | None


def _input_names(value: object) -> tuple[str, ...]:
    """The ``input`` setting as column names: one name, or several (a tuple or list); none
    when unset (``read_columns`` then says it is required)."""
    if isinstance(value, str):
        return (value,)
    return tuple(str(c) for c in value) if isinstance(value, list | tuple) else ()


def configure(settings: Mapping[str, object]) -> Configured:
    """The experiment for flat ``settings`` (see ``core.config.experiment_config``). With a
    ``data`` file, its columns are read here: their row count decides ``input_len``."""
    columns = read_columns(settings)
    if columns is None:
        return Configured(experiment_config(settings), None)
    return Configured(experiment_config(settings, file_rows=columns.input.shape[0]), columns)


def read_columns(settings: Mapping[str, object]) -> Columns | None:
    """The ``data`` file's columns that flat ``settings`` name (``input``, ``target``,
    ``drop_missing``), or None for the generated series."""
    if settings.get("data") is None:
        return None
    target = settings.get("target")
    return series_file.read_columns(
        str(settings["data"]),
        _input_names(settings.get("input")),
        None if target is None else str(target),
        bool(settings.get("drop_missing", False)),
    )


def rerun_config(results: Path, given: Iterable[str] = ()) -> ExperimentConfig:
    """The config a ``results.json`` records, to run again. ``given``: settings the caller
    also set (refused: the record is the config). The data file, if any, must still be at
    its recorded path with the recorded SHA-256."""
    for name in given:
        problem = "cannot be changed when rerunning `results`: edit the recorded config, or run without `results`"
        raise ConfigError(name, problem)
    cfg, recorded = provenance.read_results_config(results)
    if recorded is None:
        return cfg
    if not Path(recorded["path"]).is_file():
        raise ConfigError("results", f"the data file of that run, {recorded['path']!r}, is gone")
    current = provenance.data_file(recorded["path"])  # not None: the path is a file (checked above)
    if current is None or current["sha256"] != recorded["sha256"]:
        raise ConfigError("results", f"{recorded['path']!r} has changed since that run (its SHA-256 differs)")
    # The recorded absolute path: the rerun need not start in the first run's directory.
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, file=recorded["path"]))


def run(
    cfg: ExperimentConfig,
    options: RunOptions | None = None,
    view: RunView | None = None,
    columns: Columns | None = None,
) -> RunOutput:
    """Train both models on ``cfg``, score them, and write the run directory.

    Every file is written whole or not at all; on an interrupt (KeyboardInterrupt) or an
    error the figure process is stopped and the exception goes on. ``columns``: the data
    file's, if ``configure`` has read them.
    """
    from lstm_stateful.render.figure_process import FigureProcess

    start = time.perf_counter()
    options = options or RunOptions()
    save_dir = dirs.writable(options.save, "save") if options.save is not None else None
    out_dir = dirs.writable(options.out or dirs.timestamped(Path("runs")), "out")
    figures = FigureProcess(out_dir)  # imports matplotlib on the other core while we import JAX
    try:
        result = _train(cfg, options, view or _Quiet(), figures, columns)
        timings = _write(result, out_dir, save_dir, figures, start)
    except BaseException:
        figures.kill()  # no figure is drawn after the run has given up
        raise
    return RunOutput(result, out_dir, save_dir, timings)


def _train(
    cfg: ExperimentConfig, options: RunOptions, view: RunView, figures: FigureProcess, columns: Columns | None
) -> RunResult:
    # Imported here, not at the top: JAX takes a second to import, and the figure process
    # should already be running during it.
    from lstm_stateful.engine import experiment
    from lstm_stateful.render import plots

    if options.cache and (problem := compile_cache.enable(compile_cache.default_cache_dir())):
        view.warn(f"{problem}; compiling without it")
    view.started(cfg)
    series, split = experiment.prepare(cfg, columns)
    figures.draw("input", plots.input_data(series.raw_input, series.raw_target))
    view.prepared(cfg, series, split)
    steps = cfg.train.epochs * split.x_train.shape[0] // cfg.data.batch_size
    with view.training(cfg, steps) as progress:
        result = experiment.run(cfg, progress.on_epoch, progress.stage, prepared=(series, split))
        progress.finish(result)
    return result


def _write(
    result: RunResult, out_dir: Path, save_dir: Path | None, figures: FigureProcess, start: float
) -> dict[str, float]:
    """The run directory's files (and the saved models); returns the timings recorded."""
    from lstm_stateful.render import outputs, plots
    from lstm_stateful.render.report import write_report

    figure_data = plots.figure_data(result)
    for name in ("residuals", "losses", "baselines"):
        figures.draw(name, figure_data)
    outputs.write_predictions(result, out_dir / "predictions.csv")
    if save_dir is not None:
        outputs.write_models(result, save_dir)
    wait_start = time.perf_counter()
    try:
        figures.finish()
    finally:  # written even if drawing failed: the numbers are not lost with the figures
        end = time.perf_counter()
        timings = {"figures_wait_s": end - wait_start, "total_s": end - start}
        outputs.write_results(result, out_dir / "results.json", timings)
    write_report(out_dir)
    return timings
