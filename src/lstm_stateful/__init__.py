"""lstm-stateful: stateful vs stateless recurrent networks on time series, in JAX.

The public API below is loaded on first use, so that importing a light module (the figure
process imports ``lstm_stateful.render.plots``) does not import JAX.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "lstm_stateful.core.cells": (
        "DenseParams", "GRUParams", "LSTMCarry", "LSTMParams", "ModelParams", "RNNCarry", "SimpleRNNParams",
        "cell_step", "dense", "forward", "gru_cell", "init_params", "lstm_cell", "simple_cell", "zero_carry",
    ),
    "lstm_stateful.core.config": ("DataConfig", "ExperimentConfig", "ModelConfig", "TrainConfig"),
    "lstm_stateful.core.data": (
        "Columns", "Scaling", "Series", "Split", "batches", "make_series", "split", "time_order",
    ),
    "lstm_stateful.core.errors": ("ConfigError",),
    "lstm_stateful.core.evaluate": ("Floors", "Scores", "banner", "floors", "score", "verdict"),
    "lstm_stateful.sweep.executors": ("DaskExecutor", "LocalExecutor"),
    "lstm_stateful.engine.experiment": ("ModeResult", "RunResult", "run"),
    "lstm_stateful.models.model_io": ("SavedModel", "load_model", "save_model"),
    "lstm_stateful.io.series_file": ("read_columns",),
    "lstm_stateful.models.stream": ("Predictor", "StreamState", "stream_chunk"),
    "lstm_stateful.sweep.grid": ("Point", "Group", "SweepSpec", "point_key", "parse_range"),
    "lstm_stateful.core.optim": ("keras_adam",),
    "lstm_stateful.sweep.store": ("Record", "Store"),
    "lstm_stateful.sweep.summary": ("SummaryRow", "summarize"),
    "lstm_stateful.sweep.training": ("run_sweep", "train_group"),
    "lstm_stateful.core.train": ("Batches", "FitResult", "evaluate_batches", "fit", "fit_problems", "init_seeds"),
}  # fmt: skip
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'lstm_stateful' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
