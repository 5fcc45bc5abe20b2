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

from lstm_stateful import console as con
from lstm_stateful import evaluate, plots
from lstm_stateful.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
from lstm_stateful.errors import ConfigError
from lstm_stateful.figure_process import FigureProcess, FigureProcessError

if TYPE_CHECKING:
    from lstm_stateful.data import Series
    from lstm_stateful.experiment import RunResult

EXIT_BAD_INPUT = 2
# Sequential training steps (epochs x batches) from which the progress bars update live,
# once per epoch; about 3 s of training on a laptop CPU. The example has 8,000.
LIVE_PROGRESS_STEPS = 100_000


def _prepare_out(out: Path | None) -> Path:
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
        raise ConfigError("--out", f"cannot write to directory {str(out)!r}: {e.strerror or e}") from None
    return out


@click.group(help="Train and compare stateful and stateless recurrent networks on time series.")
@click.version_option(package_name="lstm-stateful")
def cli() -> None:
    pass


def _int_option(name: str, default: int, help_text: str) -> Callable:
    return click.option(f"--{name}", type=int, default=default, show_default=True, help=help_text)


@cli.command()
@_int_option("input-len", 1000, "Length of the generated input series.")
@_int_option("tsteps", 2, "Window of the moving average the models must output.")
@_int_option("lahead", 1, "Input steps each sample feeds the LSTM.")
@_int_option("batch-size", 1, "Batch size (stateful: sample i of consecutive batches chains).")
@_int_option("epochs", 10, "Training epochs.")
@_int_option("units", 20, "LSTM units.")
@_int_option("seed", 0, "Base seed of the weight initialisations.")
@_int_option("seeds", 5, "Weight seeds trained at once; 1 gives the example's single run.")
@_int_option("data-seed", 1986, "Seed of the generated series (the example's).")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate.")
@click.option(
    "--out", type=click.Path(path_type=Path), default=None, help="Output directory [default: runs/<timestamp>]."
)
@click.option("--show", is_flag=True, help="Also open the figures in windows.")
@click.option("--no-cache", is_flag=True, help="Do not use JAX's persistent compilation cache.")
def run(
    input_len: int,
    tsteps: int,
    lahead: int,
    batch_size: int,
    epochs: int,
    units: int,
    seed: int,
    seeds: int,
    data_seed: int,
    lr: float,
    out: Path | None,
    show: bool,
    no_cache: bool,
) -> None:
    """The example: stateful vs stateless LSTM on a moving average, several seeds, scored honestly."""
    start = time.perf_counter()
    cfg = ExperimentConfig(
        data=DataConfig(input_len=input_len, tsteps=tsteps, lahead=lahead, batch_size=batch_size, data_seed=data_seed),
        model=ModelConfig(units=units),
        train=TrainConfig(epochs=epochs, learning_rate=lr),
        seeds=seeds,
        seed=seed,
    )
    options = RunOptions(out_dir=_prepare_out(out), show=show, cache=not no_cache, start=start)
    _run_and_write(cfg, options)


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How to run, as opposed to what (the experiment's config): outputs, windows, cache."""

    out_dir: Path
    show: bool
    cache: bool
    start: float  # perf_counter() when the command began


def _run_and_write(cfg: ExperimentConfig, options: RunOptions) -> None:
    out_dir, start = options.out_dir, options.start
    figures = FigureProcess(out_dir)  # imports matplotlib on the other core while we import JAX
    try:
        result = _train_and_report(cfg, figures, options.cache)
    except BaseException:
        figures.kill()
        raise
    figure_data = plots.figure_data(result)
    figures.draw("residuals", figure_data)
    figures.draw("losses", figure_data)
    from lstm_stateful import outputs

    outputs.write_predictions(result, out_dir / "predictions.csv")
    wait_start = time.perf_counter()
    try:
        figures.finish()
    finally:  # written even if drawing failed: the numbers are not lost with the figures
        end = time.perf_counter()
        timings = {"figures_wait_s": end - wait_start, "total_s": end - start}
        outputs.write_results(result, out_dir / "results.json", timings)
    console = Console(highlight=False)
    con.print_summary(console, result)
    console.print(f"Wrote results.json, predictions.csv and figures to {out_dir}/ in {timings['total_s']:.1f} s.")
    if options.show:
        plots.show_figures(_input_data(result.series), figure_data)


def _input_data(series: Series) -> plots.InputData:
    return plots.input_data(series.inputs, series.target)


def _train_and_report(cfg: ExperimentConfig, figures: FigureProcess, cache: bool) -> RunResult:
    # Imported here, not at the top: JAX takes a second to import, and bad flags should
    # fail before that, and the figure process should already be running during it.
    from lstm_stateful import compile_cache, experiment

    console = Console(highlight=False)
    problem = compile_cache.enable(compile_cache.default_cache_dir()) if cache else None
    if problem:
        console.print(f"[yellow]warning:[/yellow] {problem}; compiling without it")
    con.print_banner(console, evaluate.banner(cfg.data))
    series, split = experiment.prepare(cfg)
    figures.draw("input", _input_data(series))
    con.print_data(console, cfg, series, split)
    # Live per-epoch progress needs a host callback in the program, which JAX will not
    # cache; only runs long enough for a bar to be worth watching get one.
    live = cfg.train.epochs * split.x_train.shape[0] // cfg.data.batch_size >= LIVE_PROGRESS_STEPS
    with con.TrainingProgress(console, cfg.train.epochs, cfg.seeds) as progress:
        result = experiment.run(cfg, on_epoch=progress.on_epoch if live else None, on_stage=progress.stage)
        progress.finish(result)
    return result


def _one_line(message: str) -> str:
    return " ".join(message.split())


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input becomes one line on stderr and exit status 2, never a traceback."""
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
