"""lstm-stateful: stateful vs stateless recurrent networks on time series, in JAX."""

from lstm_stateful.cells import (
    DenseParams,
    LSTMCarry,
    LSTMParams,
    ModelConfig,
    ModelParams,
    dense,
    forward,
    init_params,
    lstm_cell,
    zero_carry,
)
from lstm_stateful.data import DataConfig, Series, Split, batches, make_series, split
from lstm_stateful.errors import ConfigError
from lstm_stateful.evaluate import Floors, Scores, banner, floors, score, verdict
from lstm_stateful.experiment import ExperimentConfig, ModeResult, RunResult, run
from lstm_stateful.optim import keras_adam
from lstm_stateful.train import Batches, FitResult, TrainConfig, evaluate_batches, fit, init_seeds

__all__ = [
    "Batches",
    "ConfigError",
    "DataConfig",
    "DenseParams",
    "ExperimentConfig",
    "FitResult",
    "Floors",
    "LSTMCarry",
    "LSTMParams",
    "ModeResult",
    "ModelConfig",
    "ModelParams",
    "RunResult",
    "Scores",
    "Series",
    "Split",
    "TrainConfig",
    "banner",
    "batches",
    "dense",
    "evaluate_batches",
    "fit",
    "floors",
    "forward",
    "init_params",
    "init_seeds",
    "keras_adam",
    "lstm_cell",
    "make_series",
    "run",
    "score",
    "split",
    "verdict",
    "zero_carry",
]
__version__ = "0.1.0"
