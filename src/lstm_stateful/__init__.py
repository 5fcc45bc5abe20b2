"""lstm-stateful: stateful vs stateless recurrent networks on time series, in JAX.

The public API below is loaded on first use, so that importing a light module (the figure
process imports ``lstm_stateful.render.plots``) does not import JAX. The package is laid
out by role, each layer importing only those below it:

    core/      configs, errors, cells, optimizer, training, data, evaluation (pure numerics)
    io/        series files, provenance, atomic writes, output directories
    engine/    the experiment: config -> data -> one compiled training program -> scores
    models/    saved models and the streaming predictor
    export/    portable models: ONNX graphs with explicit state, Keras files out and in
    serve/     the prediction service: durable stream states, batched rounds, the HTTP app
    sweep/     grid, store, executors, sweep training, summary; the search (space, tune)
    render/    console, figures, HTML pages, a run's output files
    commands/  run, sweep, tune, predict, report, export, import, serve: a validated config
               in, a result object out
    cli.py     flags -> configs -> a command -> print

The commands are exported as ``run_command``, ``sweep_command``, ``tune_command``,
``predict_command``, ``report_command``, ``export_command``, ``import_command``,
``serve_command`` and ``fleet_command`` (``run`` on a panel; ``run`` is the experiment
itself, with no files). Fleets (one model over a panel of series): ``read_panel``,
``fleet_config``, ``run_fleet``, ``predict_fleet``, ``fleet_sweep`` and ``fleet_tune``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "lstm_stateful.core.cells": (
        "DenseParams", "GRUParams", "LSTMCarry", "LSTMParams", "ModelParams", "RNNCarry", "SimpleRNNParams",
        "cell_step", "dense", "forward", "gru_cell", "init_params", "lstm_cell", "simple_cell", "stack_step",
        "zero_carry",
    ),
    "lstm_stateful.core.config": (
        "DataConfig", "ExperimentConfig", "ModelConfig", "TrainConfig", "SETTINGS", "experiment_config", "settings_of",
    ),
    "lstm_stateful.core.data": (
        "Columns", "Scaling", "Series", "Split", "batches", "make_series", "split", "stream_rows", "time_order",
    ),
    "lstm_stateful.core.errors": ("ConfigError",),
    "lstm_stateful.core.evaluate": ("Floors", "Scores", "Skill", "banner", "floors", "score", "skill", "verdict"),
    "lstm_stateful.core.optim": ("keras_adam",),
    "lstm_stateful.core.train": ("Batches", "FitResult", "evaluate_batches", "fit", "fit_problems", "init_seeds"),
    "lstm_stateful.engine.experiment": ("ModeResult", "RunResult", "Training", "prepare", "run", "train"),
    "lstm_stateful.io.series_file": ("read_columns",),
    "lstm_stateful.models.model_io": ("SavedModel", "load_model", "save_model"),
    "lstm_stateful.models.stream": ("History", "Predictor", "PredictorState", "StreamState", "feed", "stream_chunk"),
    "lstm_stateful.sweep.executors": ("DaskExecutor", "LocalExecutor"),
    "lstm_stateful.sweep.grid": ("Axis", "Point", "Group", "SweepSpec", "point_key", "parse_grid", "parse_range"),
    "lstm_stateful.sweep.store": ("Record", "Store"),
    "lstm_stateful.sweep.summary": ("SummaryRow", "summarize"),
    "lstm_stateful.sweep.training": ("run_sweep", "train_group"),
    "lstm_stateful.commands.run": ("RunOptions", "RunOutput", "configure", "rerun_config"),
    "lstm_stateful.commands.sweep": ("SweepOptions", "SweepOutput", "base_config", "redraw", "spec_of"),
    "lstm_stateful.commands.predict": ("PredictConfig", "PredictOutput"),
    "lstm_stateful.commands.tune": ("TuneConfig", "TuneOutput"),
    "lstm_stateful.core.baselines": ("Baselines", "baseline_mses"),
    "lstm_stateful.commands.export": ("ExportConfig", "ExportOutput", "ImportConfig", "ImportOutput"),
    "lstm_stateful.export.onnx_graph": ("OnnxPredictor", "StateTensor", "build_onnx", "state_tensors", "write_onnx"),
    "lstm_stateful.export.keras_export": ("keras_models", "write_keras"),
    "lstm_stateful.export.keras_import": ("read_keras",),
    "lstm_stateful.commands.serve": ("ServeConfig",),
    "lstm_stateful.core.panel": ("Clock", "Panel", "PanelScaling"),
    "lstm_stateful.core.panel_config": ("FleetConfig", "PanelConfig", "fleet_config"),
    "lstm_stateful.core.panel_scores": ("bootstrap_difference", "mase_scale", "metrics"),
    "lstm_stateful.core.panel_baselines": ("simple_forecasts", "stats_forecasts"),
    "lstm_stateful.io.panel_file": ("read_panel",),
    "lstm_stateful.engine.fleet": ("FleetResult", "run_fleet"),
    "lstm_stateful.models.fleet_model": ("FleetModel", "load_fleet_model", "save_fleet_model"),
    "lstm_stateful.commands.fleet": ("FleetOptions", "FleetOutput"),
    "lstm_stateful.commands.fleet_predict": ("FleetPredictConfig", "FleetPredictOutput", "predict_fleet"),
    "lstm_stateful.commands.fleet_search": ("fleet_sweep", "fleet_tune"),
}  # fmt: skip
# Exported under another name: (module, attribute).
_RENAMED = {
    "run_command": ("lstm_stateful.commands.run", "run"),
    "sweep_command": ("lstm_stateful.commands.sweep", "sweep"),
    "predict_command": ("lstm_stateful.commands.predict", "predict"),
    "report_command": ("lstm_stateful.commands.report", "report"),
    "tune_command": ("lstm_stateful.commands.tune", "tune"),
    "export_command": ("lstm_stateful.commands.export", "export"),
    "import_command": ("lstm_stateful.commands.export", "import_keras"),
    "serve_command": ("lstm_stateful.commands.serve", "serve"),
    "fleet_command": ("lstm_stateful.commands.fleet", "fleet"),
}
_SOURCE = {name: (module, name) for module, names in _EXPORTS.items() for name in names} | _RENAMED

__all__ = sorted(_SOURCE)


def __getattr__(name: str) -> Any:
    if name not in _SOURCE:
        raise AttributeError(f"module 'lstm_stateful' has no attribute {name!r}")
    module, attribute = _SOURCE[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
