"""The ``lstm-stateful`` command. All printing and file writing for a run happens here."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from lstm_stateful.core.config import (
    CELLS,
    LAYOUTS,
    ORDERS,
    TASKS,
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
)
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.render import console as con
from lstm_stateful.render import plots, sweep_console, sweep_report
from lstm_stateful.render.figure_process import FigureProcess, FigureProcessError
from lstm_stateful.sweep import executors, grid
from lstm_stateful.sweep.store import Record, Store

if TYPE_CHECKING:
    from collections.abc import Iterator

    from lstm_stateful.core.data import Columns, Series
    from lstm_stateful.engine.experiment import RunResult
    from lstm_stateful.io.series_file import Chunk
    from lstm_stateful.models.stream import Predictor

EXIT_BAD_INPUT = 2
# Sequential training steps (epochs x batches) from which the progress bars update live,
# once per epoch; about 3 s of training on a laptop CPU. The example has 8,000.
LIVE_PROGRESS_STEPS = 100_000


def _prepare_out(out: Path | None, flag: str = "--out") -> Path:
    """Create the output directory (default ``runs/<UTC timestamp>``) and prove it writable
    before any training, so a bad ``--out`` costs nothing."""
    if out is None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / stamp
        n = 1
        while out.exists():
            out, n = Path("runs") / f"{stamp}-{n}", n + 1
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise ConfigError(flag, f"cannot write to directory {str(out)!r}: {e.strerror or e}") from None
    return out


@click.group(help="Train and compare stateful and stateless recurrent networks on time series.")
@click.version_option(package_name="lstm-stateful")
def cli() -> None:
    pass


def _int_option(name: str, default: int, help_text: str) -> Callable:
    return click.option(f"--{name}", type=int, default=default, show_default=True, help=help_text)


def _choice_option(name: str, choices: tuple[str, ...], help_text: str) -> Callable:
    # Validated by the config (one line naming the flag and the choices), not by click.
    return click.option(f"--{name}", default=choices[0], show_default=True, help=f"{help_text} [{'|'.join(choices)}]")


def _experiment_options(seeds: int) -> Callable:
    """The flags ``run`` and ``sweep`` share: everything but the grid and the outputs."""
    options = (
        _int_option("input-len", 1000, "Length of the generated input series."),
        _int_option("batch-size", 1, "Batch size (stateful: sample i of consecutive batches chains)."),
        _int_option("epochs", 10, "Training epochs."),
        _int_option("units", 20, "Units of the recurrent layer."),
        _choice_option("cell", CELLS, "Recurrent cell: Keras's LSTM, GRU (reset_after) or SimpleRNN."),
        _choice_option("layout", LAYOUTS, "Stateful batches: Keras's row order, or batch-size contiguous streams."),
        _choice_option("order", ORDERS, "Time order of the inputs inside a window, as fed to the cell."),
        _int_option("seed", 0, "Base seed of the weight initialisations."),
        _int_option("seeds", seeds, "Weight seeds trained at once; seed i is the same whatever their number."),
        _int_option("data-seed", 1986, "Seed of the generated series (the example's)."),
        click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate."),
        click.option("--no-cache", is_flag=True, help="Do not use JAX's persistent compilation cache."),
    )

    def decorate(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _experiment_config(tsteps: int, lahead: int, data: dict | None = None, **flags: object) -> ExperimentConfig:
    """The config from the shared flags (validated here: a bad value names its flag);
    ``data``: more DataConfig fields (your file's)."""
    return ExperimentConfig(
        data=DataConfig(
            input_len=flags["input_len"],
            tsteps=tsteps,
            lahead=lahead,
            batch_size=flags["batch_size"],
            data_seed=flags["data_seed"],
            layout=flags["layout"],
            order=flags["order"],
            **(data or {}),
        ),
        model=ModelConfig(units=flags["units"], cell=flags["cell"]),
        train=TrainConfig(epochs=flags["epochs"], learning_rate=flags["lr"]),
        seeds=flags["seeds"],
        seed=flags["seed"],
    )


_drop_missing_option = click.option(
    "--drop-missing", is_flag=True, help="Skip --data rows where a chosen column is empty or NaN (else: an error)."
)


def _data_file_options(command: Callable) -> Callable:
    """``run``'s flags for your own series."""
    options = (
        click.option("--data", "data_file", default=None, help="Your series: a .csv or .parquet file."),
        click.option("--input", "input_col", default=None, help="The --data column that feeds the model."),
        click.option("--target", "target_col", default=None, help="The --data column the model must output."),
        click.option(
            "--task", default=None, help="What to output when there is no --target [moving-average|forecast]."
        ),
        _int_option("horizon", 1, "With --task forecast: predict the input this many steps ahead."),
        click.option("--standardize", is_flag=True, help="Scale input and target by the training rows' mean and std."),
        _drop_missing_option,
    )
    for option in reversed(options):
        command = option(command)
    return command


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE


def _data_fields(ctx: click.Context, flags: dict) -> tuple[dict, Columns | None]:
    """DataConfig fields for the task and your file, and the file's columns (read once,
    here); sets the tsteps and input_len they imply."""
    task = flags.pop("task")
    target_col, data_file = flags.pop("target_col"), flags.pop("data_file")
    if task is not None and task not in TASKS[:2]:
        raise ConfigError("--task", f"must be one of moving-average, forecast, got {task!r} (or give --target COL)")
    if task is not None and target_col is not None:
        raise ConfigError("--target", "names the column to output; it does not go with --task")
    task = "target" if target_col is not None else task or "moving-average"
    if task != "moving-average" and not _given(ctx, "tsteps"):
        flags["tsteps"] = 1  # the moving-average window; other tasks have none
    if _given(ctx, "horizon") and task != "forecast":
        raise ConfigError("--horizon", "is the forecast distance; it goes with --task forecast only")
    fields = {"task": task, "horizon": flags.pop("horizon"), "standardize": flags.pop("standardize")}
    fields["drop_missing"] = flags.pop("drop_missing")
    fields |= {"input_col": flags.pop("input_col"), "target_col": target_col}
    if data_file is None:
        return fields, None
    if _given(ctx, "input_len"):
        raise ConfigError("--input-len", "sets the generated series' length; with --data the file's rows are used")
    from lstm_stateful.io import series_file

    columns = series_file.read_columns(data_file, fields["input_col"], target_col, fields["drop_missing"])
    flags["input_len"] = _usable_rows(data_file, columns.input.shape[0], fields, flags)
    return fields | {"file": data_file}, columns


def _usable_rows(path: str, n: int, fields: dict, flags: dict) -> int:
    """Of the file's n rows, those left after the drops: the series' input_len."""
    dropped = max(flags["tsteps"] - 1, flags["lahead"] - 1) + (fields["horizon"] if fields["task"] == "forecast" else 0)
    if n - dropped < 2:
        raise ConfigError("--data", f"{path!r} has {n} rows; the windows and the target use {dropped} of them, too few")
    return n - dropped


# run's flags that are not part of the experiment: they may go with --from.
RUN_OUTPUT_FLAGS = ("out", "save", "show", "no_cache", "rerun")


@cli.command()
@_int_option("tsteps", 2, "Window of the moving average the models must output.")
@_int_option("lahead", 1, "Input steps each sample feeds the model.")
@_experiment_options(seeds=5)
@_data_file_options
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Output directory [default: runs/<timestamp>]."
)
@click.option("--save", type=click.Path(path_type=Path), default=None, help="Save each model's median seed in DIR.")
@click.option("--show", is_flag=True, help="Also open the figures in windows.")
@click.option("--from", "rerun", type=click.Path(path_type=Path), default=None, help="Rerun a run's results.json.")
@click.pass_context
def run(
    ctx: click.Context, out: Path | None, save: Path | None, show: bool, rerun: Path | None, **flags: object
) -> None:
    """The example: stateful vs stateless LSTM on a moving average, several seeds, scored honestly.

    With --data FILE --input COL: the same on your series. With --from results.json: that run again.
    """
    start = time.perf_counter()
    no_cache = flags.pop("no_cache")
    if rerun is not None:
        cfg, columns = _rerun_config(ctx, rerun), None
    else:
        data, columns = _data_fields(ctx, flags)
        cfg = _experiment_config(flags.pop("tsteps"), flags.pop("lahead"), data, **flags)
    save_dir = _prepare_out(save, "--save") if save is not None else None
    options = RunOptions(out_dir=_prepare_out(out), show=show, cache=not no_cache, start=start, save_dir=save_dir)
    try:
        _run_and_write(cfg, options, columns)
    except KeyboardInterrupt:
        # A run is one compiled program: nothing of it is worth keeping half-done. Files are
        # written whole (temporary file, then rename) or not at all.
        print(
            f"Interrupted. {options.out_dir} holds only complete files; run the same command again to redo the run.",
            file=sys.stderr,
        )
        raise click.exceptions.Abort() from None


def _rerun_config(ctx: click.Context, path: Path) -> ExperimentConfig:
    """The config a results.json records, checked: no experiment flags beside it, and the
    same data file content as the run had."""
    given = [name for name in ctx.params if name not in RUN_OUTPUT_FLAGS and _given(ctx, name)]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise ConfigError(flag, "--from reruns the recorded config; change it in the file, or run without --from")
    from lstm_stateful.io import provenance

    cfg, recorded = provenance.read_results_config(path)
    if recorded is None:
        return cfg
    if not Path(recorded["path"]).is_file():
        raise ConfigError("--from", f"the data file of that run, {recorded['path']!r}, is gone")
    if provenance.data_file(recorded["path"])["sha256"] != recorded["sha256"]:
        raise ConfigError("--from", f"{recorded['path']!r} has changed since that run (its SHA-256 differs)")
    # The recorded absolute path: the rerun need not start in the first run's directory.
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, file=recorded["path"]))


@cli.command()
@click.option(
    "--model", "model_dir", required=True, help="A saved model directory (run --save DIR writes DIR/stateful)."
)
@click.option("--data", "data_file", required=True, help="The series: a .csv or .parquet file, of any length.")
@click.option("--input", "input_col", required=True, help="The --data column to feed the model.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Where to write the predictions (CSV).")
@_int_option("chunk", 65_536, "Rows read and predicted at a time (memory stays bounded by it).")
@_drop_missing_option
def predict(model_dir: str, data_file: str, input_col: str, out: Path, chunk: int, drop_missing: bool) -> None:
    """Stream a file through a saved model, one point at a time, the state starting from zero.

    Writes row, input, prediction (empty for the first lahead-1 rows, which fill the window).
    """
    from lstm_stateful.io import series_file

    if chunk < 1:
        raise ConfigError("--chunk", f"must be a positive integer, got {chunk}")
    series_file.check_path(data_file)
    if out.is_dir():
        raise ConfigError("--out", f"{str(out)!r} is a directory; give the path of the CSV file to write")
    _prepare_out(out.parent, "--out")
    from lstm_stateful.models.stream import Predictor

    predictor = Predictor.load(model_dir)
    start = time.perf_counter()
    reading = series_file.Reading({input_col: "--input"}, drop_missing)
    rows = _write_stream(predictor, series_file.iter_columns(data_file, reading, chunk), input_col, out)
    model = predictor.model
    Console(highlight=False).print(
        f"Predicted {rows:,} rows with the {model.mode} {model.model.cell} model (seed {model.seed_index}) "
        f"in {time.perf_counter() - start:.1f} s; wrote {out}."
    )


def _write_stream(predictor: Predictor, chunks: Iterator[Chunk], column: str, out: Path) -> int:
    """Predict chunk by chunk into ``out`` (atomically: a failure leaves no partial file).
    Numbers are written as Python's repr, which reads back to the same float64."""
    from lstm_stateful.io.atomic import write_with

    count = 0

    def write(tmp: Path) -> None:
        nonlocal count
        with open(tmp, "w", newline="") as f:
            f.write("row,input,prediction\n")
            for rows, values in chunks:
                preds = predictor.predict(values[column]).tolist()
                lines = zip(rows.tolist(), values[column].tolist(), preds, strict=True)
                # NaN (the window still filling) is written as an empty field.
                f.write("".join(f"{r},{x!r},{y!r}\n" if y == y else f"{r},{x!r},\n" for r, x, y in lines))
                count += len(preds)

    write_with(out, write)
    return count


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
def report(path: Path) -> None:
    """Write PATH/report.html, one self-contained page, for a run or a sweep directory."""
    from lstm_stateful.render.report import write_report

    if not path.is_dir():
        raise ConfigError("PATH", f"no such directory: {str(path)!r}")
    Console(highlight=False).print(f"Wrote {write_report(path)}.")


# Flags that decide what a sweep trains; ``--report`` redraws the stored sweep and takes none.
SWEEP_GRID_FLAGS = (
    *("tsteps", "lahead", "input_len", "batch_size", "epochs", "units", "seed", "seeds", "data_seed", "lr"),
    *("cell", "layout", "order"),
)


@cli.command()
@click.option("--tsteps", default="1:8", show_default=True, help="Moving-average windows: a:b (inclusive) or 1,2,4.")
@click.option("--lahead", default="1:8", show_default=True, help="Input windows: a:b (inclusive) or 1,2,4.")
@_experiment_options(seeds=8)
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("runs/sweep"), show_default=True, help="Output directory."
)
@click.option(
    "--store", type=click.Path(path_type=Path), default=None, help="SQLite store [default: OUT/sweep.sqlite]."
)
@click.option("--jobs", type=int, default=2, show_default=True, help="Groups trained at once by the local executor.")
@click.option("--workers", type=int, default=None, help="Train on a new Dask LocalCluster of this many processes.")
@click.option("--scheduler", default=None, help="Train on an existing Dask cluster, e.g. tcp://host:8786.")
@click.option("--report", is_flag=True, help="Redraw summary.csv and the figures of the last sweep in the store.")
@click.pass_context
def sweep(ctx: click.Context, tsteps: str, lahead: str, out: Path, store: Path | None, **flags: object) -> None:
    """Every (tsteps, lahead) grid point, every seed, both models: the phase diagram of the example's rule.

    Finished points are kept in the store; rerunning the same command trains only the rest.
    """
    options = _sweep_options(ctx, flags)
    if options.report:
        return _sweep_report(_prepare_out(out), store)
    base = _experiment_config(1, 1, **{k: v for k, v in flags.items() if k in SWEEP_GRID_FLAGS})
    spec = grid.SweepSpec(grid.parse_range("--tsteps", tsteps), grid.parse_range("--lahead", lahead), base)
    out = _prepare_out(out)
    _run_sweep(spec, out, store or out / "sweep.sqlite", options)


@dataclasses.dataclass(frozen=True)
class SweepOptions:
    """How a sweep runs: the executor, the cache, or only a report."""

    jobs: int
    workers: int | None
    scheduler: str | None
    cache: bool
    report: bool


def _sweep_options(ctx: click.Context, flags: dict) -> SweepOptions:
    """Validate the flags about how to run (not what), one error line each."""
    options = SweepOptions(flags["jobs"], flags["workers"], flags["scheduler"], not flags["no_cache"], flags["report"])
    if options.jobs < 1:
        raise ConfigError("--jobs", f"must be a positive integer, got {options.jobs}")
    if options.workers is not None and options.workers < 1:
        raise ConfigError("--workers", f"must be a positive integer, got {options.workers}")
    if options.workers is not None and options.scheduler is not None:
        raise ConfigError("--workers", "use --workers (new local cluster) or --scheduler (existing one), not both")
    if options.report:
        given = [n for n in SWEEP_GRID_FLAGS if ctx.get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise ConfigError(flag, "--report redraws the last sweep recorded in the store; it takes no grid flags")
    return options


def _sweep_report(out: Path, store_path: Path | None) -> None:
    path = store_path or out / "sweep.sqlite"
    if not path.is_file():
        raise ConfigError("--store", f"no sweep store at {str(path)!r}: run the sweep first, or give --store")
    db = Store.open(path)
    try:
        spec = db.latest_sweep()
        if spec is None:
            raise ConfigError("--store", f"{str(path)!r} records no sweep yet")
        records = db.records(spec)
    finally:
        db.close()
    _write_sweep_outputs(Console(highlight=False), spec, records, out, f"from {path}")


def _write_sweep_outputs(console: Console, spec: grid.SweepSpec, records: list[Record], out: Path, note: str) -> None:
    """summary.csv and the figure from ``records``, then the summary on the terminal."""
    from lstm_stateful.render.report import REPORT_FILE, write_report

    rows = sweep_report.write_sweep_files(spec, records, out)
    write_report(out)
    sweep_console.print_sweep_summary(console, rows, spec)
    files = f"{sweep_report.SUMMARY_FILE}, {sweep_report.PHASE_FILE} and {REPORT_FILE}"
    console.print(f"Wrote {files} to {out}/ {note}.")


def _executor(options: SweepOptions) -> executors.LocalExecutor | executors.DaskExecutor:
    if options.scheduler is not None:
        return executors.DaskExecutor.connect(options.scheduler)
    if options.workers is not None:
        return executors.DaskExecutor.local_cluster(options.workers)
    return executors.LocalExecutor(options.jobs)


def _run_sweep(spec: grid.SweepSpec, out: Path, store_path: Path, options: SweepOptions) -> None:
    start = time.perf_counter()
    console = Console(highlight=False)
    db = Store.open(store_path)
    try:
        todo, done = _sweep_plan(console, spec, db)
        if todo:
            _train_sweep(console, spec, db, todo, done, options)
        records = db.records(spec)
    finally:
        db.close()
    _write_sweep_outputs(console, spec, records, out, f"(store {store_path}) in {time.perf_counter() - start:.1f} s")


def _sweep_plan(console: Console, spec: grid.SweepSpec, db: Store) -> tuple[list[grid.Group], int]:
    """Say what the sweep will do; return the groups to train and the trainings already stored."""
    todo, done_points = db.pending(spec)
    n_points = len(spec.points)
    console.print(
        f"Sweep: tsteps {list(spec.tsteps)} x lahead {list(spec.lahead)} = {n_points} grid points x 2 models x "
        f"{spec.base.seeds} seeds = {spec.trainings:,} trainings of {spec.base.train.epochs} epochs."
    )
    if done_points:
        rest = f"training the other {n_points - len(done_points)}" if todo else "nothing left to train"
        console.print(f"{len(done_points)} of {n_points} points are already in the store; {rest}.")
    return todo, len(done_points) * spec.trainings_per_point


def _train_sweep(
    console: Console, spec: grid.SweepSpec, db: Store, todo: list[grid.Group], done: int, options: SweepOptions
) -> None:
    executor = _executor(options)
    if options.cache and isinstance(executor, executors.DaskExecutor):
        from lstm_stateful.core import compile_cache

        executor.cache_dir = str(compile_cache.default_cache_dir())  # each worker turns it on
    elif options.cache:
        _enable_cache(console)
    from lstm_stateful.sweep.training import run_sweep

    try:
        with sweep_console.SweepProgress(console, todo, done, spec.trainings) as progress:
            run_sweep(spec, db, executor, on_group=progress.group_done)
    except KeyboardInterrupt:
        console.print(f"Interrupted. Finished groups are kept in {db.path}; run the same command again to resume.")
        raise click.exceptions.Abort() from None
    finally:
        executor.close()


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How to run, as opposed to what (the experiment's config): outputs, windows, cache."""

    out_dir: Path
    show: bool
    cache: bool
    start: float  # perf_counter() when the command began
    save_dir: Path | None = None


def _run_and_write(cfg: ExperimentConfig, options: RunOptions, columns: Columns | None = None) -> None:
    out_dir, start = options.out_dir, options.start
    figures = FigureProcess(out_dir)  # imports matplotlib on the other core while we import JAX
    try:
        result = _train_and_report(cfg, figures, options.cache, columns)
    except BaseException:
        figures.kill()
        raise
    figure_data = plots.figure_data(result)
    figures.draw("residuals", figure_data)
    figures.draw("losses", figure_data)
    from lstm_stateful.render import outputs

    outputs.write_predictions(result, out_dir / "predictions.csv")
    if options.save_dir is not None:
        outputs.write_models(result, options.save_dir)
    wait_start = time.perf_counter()
    try:
        figures.finish()
    finally:  # written even if drawing failed: the numbers are not lost with the figures
        end = time.perf_counter()
        timings = {"figures_wait_s": end - wait_start, "total_s": end - start}
        outputs.write_results(result, out_dir / "results.json", timings)
    from lstm_stateful.render.report import write_report

    write_report(out_dir)
    console = Console(highlight=False)
    con.print_summary(console, result)
    console.print(
        f"Wrote results.json, predictions.csv, figures and report.html to {out_dir}/ in {timings['total_s']:.1f} s."
    )
    if options.save_dir is not None:
        save = options.save_dir
        console.print(f"Saved each model's median seed to {save}/stateful and {save}/stateless.")
    if options.show:
        plots.show_figures(_input_data(result.series), figure_data)


def _input_data(series: Series) -> plots.InputData:
    return plots.input_data(series.inputs, series.target)


def _train_and_report(cfg: ExperimentConfig, figures: FigureProcess, cache: bool, columns: Columns | None) -> RunResult:
    # Imported here, not at the top: JAX takes a second to import, and bad flags should
    # fail before that, and the figure process should already be running during it.
    from lstm_stateful.engine import experiment

    console = Console(highlight=False)
    if cache:
        _enable_cache(console)
    con.print_banner(console, cfg)
    series, split = experiment.prepare(cfg, columns)
    figures.draw("input", _input_data(series))
    con.print_data(console, cfg, series, split)
    # Live per-epoch progress needs a host callback in the program, which JAX will not
    # cache; only runs long enough for a bar to be worth watching get one.
    live = cfg.train.epochs * split.x_train.shape[0] // cfg.data.batch_size >= LIVE_PROGRESS_STEPS
    with con.TrainingProgress(console, cfg.train.epochs, cfg.seeds) as progress:
        on_epoch = progress.on_epoch if live else None
        result = experiment.run(cfg, on_epoch, progress.stage, prepared=(series, split))
        progress.finish(result)
    return result


def _enable_cache(console: Console) -> None:
    """Turn on JAX's persistent compilation cache in this process; warn if it cannot be."""
    from lstm_stateful.core import compile_cache

    if problem := compile_cache.enable(compile_cache.default_cache_dir()):
        console.print(f"[yellow]warning:[/yellow] {problem}; compiling without it")


def _one_line(message: str) -> str:
    return " ".join(message.split())


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input becomes one line on stderr and exit status 2, never a traceback."""
    from lstm_stateful.core import compile_cache

    compile_cache.set_xla_flags()
    try:
        result = cli.main(args=argv, prog_name="lstm-stateful", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as e:
        click.echo(e.ctx.get_help() if e.ctx else "")
        return 0
    except click.exceptions.UsageError as e:
        print(f"lstm-stateful: error: {_one_line(e.format_message())}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ConfigError as e:
        print(f"lstm-stateful: error: {e.param}: {_one_line(e.problem)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except FigureProcessError as e:
        print(f"lstm-stateful: error: drawing the figures failed: {e} (results.json was written)", file=sys.stderr)
        return 1
    except MemoryError:
        print("lstm-stateful: error: out of memory: try a smaller --input-len, --seeds or --units", file=sys.stderr)
        return 1
    except click.exceptions.Abort:
        print("lstm-stateful: interrupted", file=sys.stderr)
        return 130
    return result if isinstance(result, int) else 0


def entry() -> None:
    """The console script: ``main()``, then exit without the interpreter's teardown.

    Every output file is closed by then; tearing down JAX's runtime would only add about
    0.3 s to every command.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
