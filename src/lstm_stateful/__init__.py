"""lstm-stateful: stateful vs stateless recurrent networks on time series, in JAX.

The public API below is loaded on first use, so that importing a light module (the figure
process imports ``lstm_stateful.plots``) does not import JAX.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "lstm_stateful.cells": (
        "DenseParams", "GRUParams", "LSTMCarry", "LSTMParams", "ModelParams", "RNNCarry", "SimpleRNNParams",
        "cell_step", "dense", "forward", "gru_cell", "init_params", "lstm_cell", "simple_cell", "zero_carry",
    ),
    "lstm_stateful.config": ("DataConfig", "ExperimentConfig", "ModelConfig", "TrainConfig"),
    "lstm_stateful.data": ("Columns", "Scaling", "Series", "Split", "batches", "make_series", "split", "time_order"),
    "lstm_stateful.errors": ("ConfigError",),
    "lstm_stateful.evaluate": ("Floors", "Scores", "banner", "floors", "score", "verdict"),
    "lstm_stateful.executors": ("DaskExecutor", "LocalExecutor"),
    "lstm_stateful.experiment": ("ModeResult", "RunResult", "run"),
    "lstm_stateful.model_io": ("SavedModel", "load_model", "save_model"),
    "lstm_stateful.series_file": ("read_columns",),
    "lstm_stateful.stream": ("Predictor", "StreamState", "stream_chunk"),
    "lstm_stateful.grid": ("Cell", "Group", "SweepSpec", "cell_key", "parse_range"),
    "lstm_stateful.optim": ("keras_adam",),
    "lstm_stateful.store": ("Record", "Store"),
    "lstm_stateful.summary": ("SummaryRow", "summarize"),
    "lstm_stateful.sweep": ("run_sweep", "train_group"),
    "lstm_stateful.train": ("Batches", "FitResult", "evaluate_batches", "fit", "fit_grid", "init_seeds"),
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
