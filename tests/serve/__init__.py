"""Tests of the prediction service (``lstm_stateful.serve``, ``lstm-stateful serve``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstm_stateful.core import cells
from lstm_stateful.core.config import DataConfig, ExperimentConfig, ModelConfig
from lstm_stateful.core.data import Scaling
from lstm_stateful.models import model_io


def saved_model(
    directory: Path, mode: str = "stateful", cell: str = "lstm", layers: int = 1, n_features: int = 1, **data: object
) -> model_io.SavedModel:
    """A random model of 8 units, windows of 3 (unless ``data`` says otherwise), a scaling
    that is not the identity, saved in ``directory`` and loaded back."""
    columns = {"file": "f.csv", "input_cols": tuple("abcdefgh"[:n_features])}
    model = ModelConfig(units=8, cell=cell, layers=layers, n_features=n_features)
    cfg = ExperimentConfig(data=DataConfig(**({"lahead": 3} | columns | data)), model=model)
    params = cells.init_params(np.random.default_rng(3), cfg.model)
    scaling = Scaling((0.5, 0.1, -0.2)[:n_features], (2.0, 0.5, 1.5)[:n_features], -1.0, 3.0)
    metrics = {"stateful": {"r2": 0.9, "mse": float("nan")}}
    model_io.save_model(directory, params, cfg, {"mode": mode, "seed_index": 0, "scaling": scaling, "metrics": metrics})
    return model_io.load_model(directory)
