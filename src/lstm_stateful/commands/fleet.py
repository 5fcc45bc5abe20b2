"""``run`` on a panel: one global model over many series, written to a run directory.

``configure`` turns flat settings into a ``FleetConfig``; ``fleet`` reads the panel, checks
everything that can be checked before training (series lengths, the scaling's domain),
trains and scores (``engine.fleet.run_fleet``), and writes ``forecasts.csv``,
``metrics.csv``, ``results.json``, the figures and ``report.html``. The directory appears
whole or not at all: the files are written into a hidden sibling and moved into place at
the end, so a run that fails or is interrupted leaves nothing half-written.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from lstm_stateful.core.errors import ConfigError
from lstm_stateful.core.panel import Panel
from lstm_stateful.core.panel_config import FleetConfig, fleet_config
from lstm_stateful.io import dirs, provenance

if TYPE_CHECKING:
    from lstm_stateful.engine.fleet import FleetResult


@dataclasses.dataclass(frozen=True)
class FleetOptions:
    """Where a fleet run writes. out: the run directory (None: ``runs/<UTC timestamp>``);
    save: also save both models, every seed, in ``save/stateful`` and ``save/stateless``
    (``predict --id`` forecasts with them); seed_forecasts: also write each seed's forecasts;
    cache: JAX's persistent compilation cache."""

    out: Path | None = None
    save: Path | None = None
    seed_forecasts: bool = False
    cache: bool = True


@dataclasses.dataclass(frozen=True)
class FleetOutput:
    """A finished fleet run: its result and where its files are."""

    result: FleetResult
    out_dir: Path


def configure(settings: Mapping[str, object]) -> FleetConfig:
    """The fleet run for flat ``settings`` (``core.panel_config.FLEET_SETTINGS``)."""
    return fleet_config(dict(settings))


def read(cfg: FleetConfig) -> Panel:
    """The panel ``cfg`` names, read and checked (``io.panel_file``)."""
    from lstm_stateful.io.panel_file import read_panel

    p = cfg.panel
    return read_panel(p.file, p.id_col, p.time_col, p.value_col, p.fill)


def check(cfg: FleetConfig, panel: Panel) -> None:
    """What can be refused before training: too short a series, a scaling outside its domain,
    too few series for the intervals' levels, a panel whose every series is constant before
    its test (MASE then has no scale)."""
    import numpy as np

    from lstm_stateful.core.panel import check_scaling_domain
    from lstm_stateful.core.panel_intervals import check_enough
    from lstm_stateful.core.panel_scores import mase_scale
    from lstm_stateful.engine.fleet import split

    parts = split(cfg, panel)
    check_scaling_domain(cfg.panel.scaling, panel.values, panel.ids)
    if cfg.panel.levels:
        check_enough(cfg.panel.levels, len(panel))
    if not any(np.isfinite(mase_scale(h, cfg.panel.period)) for h in parts.histories[-1]):
        problem = "every series is constant before its test: MASE has no scale and no model can be scored"
        raise ConfigError("data", problem)


def fleet(
    cfg: FleetConfig,
    options: FleetOptions | None = None,
    panel: Panel | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> FleetOutput:
    """Read (unless ``panel`` is given), train, score and write a fleet run (see the module)."""
    from lstm_stateful.core import compile_cache
    from lstm_stateful.engine.fleet import run_fleet

    options = options or FleetOptions()
    panel = panel if panel is not None else read(cfg)
    check(cfg, panel)
    out_dir = options.out or dirs.timestamped(Path("runs"))
    partial = _partial_dir(out_dir)
    if options.save is not None:  # created only once the run has succeeded
        _check_parent(options.save, "save")
    try:
        if options.cache:
            compile_cache.enable(compile_cache.default_cache_dir())
        result = run_fleet(cfg, panel, on_stage)
        _write(result, partial, options)
        _move_into(partial, out_dir)
        if options.save is not None:
            save_models(result, options.save)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return FleetOutput(result, out_dir)


def save_models(result: FleetResult, directory: Path) -> None:
    """Both models of ``result``, every seed, as ``directory/stateful`` and ``directory/stateless``."""
    from lstm_stateful.models.fleet_model import FleetModel, save_fleet_model

    for mode, params in zip(("stateful", "stateless"), result.params, strict=True):
        model = FleetModel(result.config, mode, params, result.panel.ids, result.scaling, result.panel.clock)
        save_fleet_model(directory / mode, model)


def _check_parent(path: Path, param: str) -> None:
    """``path`` can be made later: it is a directory or absent, under a writable directory."""
    if path.exists() and not path.is_dir():
        raise ConfigError(param, f"{str(path)!r} exists and is not a directory")
    parent = next(p for p in (path, *path.parents) if p.exists())
    if not os.access(parent, os.W_OK):
        raise ConfigError(param, f"cannot write under {str(parent)!r}")


def _partial_dir(out_dir: Path) -> Path:
    """A new hidden directory beside ``out_dir`` (proved writable), where the files are made."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError("out", f"{str(out_dir)!r} exists and is not a directory")
    dirs.writable(out_dir.parent if str(out_dir.parent) else Path("."), "out")
    return dirs.writable(out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}", "out")


def _move_into(partial: Path, out_dir: Path) -> None:
    """The finished files into ``out_dir``: the directory renamed into place when it does not
    exist yet, else each file moved over (each move is atomic on one file system)."""
    if not out_dir.exists():
        partial.rename(out_dir)
        return
    for item in partial.iterdir():
        os.replace(item, out_dir / item.name)


def _write(result: FleetResult, out: Path, options: FleetOptions) -> None:
    from lstm_stateful.render import fleet_outputs, fleet_plots
    from lstm_stateful.render.fleet_report import write_fleet_report

    start = time.perf_counter()
    fleet_outputs.write_forecasts(result, out / "forecasts.csv", seeds=options.seed_forecasts)
    fleet_outputs.write_metrics(result, out / "metrics.csv")
    fleet_plots.series_figure(result, out / "series.png")
    fleet_plots.mase_histogram(result, out / "mase.png")
    data = provenance.data_file(result.config.panel.file)
    fleet_outputs.write_results(
        result, out / "results.json", {"data_file": data, "write_s": time.perf_counter() - start}
    )
    write_fleet_report(out)
