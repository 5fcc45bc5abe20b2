"""A stacked, several-input Keras model, saved through our format and streamed point by
point, predicts what Keras predicts for the same windows with its stateful layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lstm_stateful.core.config import DataConfig, ExperimentConfig, ModelConfig
from lstm_stateful.core.data import Scaling
from lstm_stateful.models import model_io, stream
from tests import reference


@pytest.mark.keras
@pytest.mark.parametrize("cell", ["lstm", "gru", "simple"])
@pytest.mark.parametrize("order", ["newest-first", "oldest-first"])
def test_a_saved_keras_stack_streams_as_keras_predicts(tmp_path: Path, cell: str, order: str) -> None:
    lahead, n_features, units = 3, 3, 5
    model = reference.keras_model(True, lahead, 1, units, seed=11, cell=cell, layers=2, n_features=n_features)
    rng = np.random.default_rng(11)
    for layer in model.layers[:-1]:  # random biases: Keras starts some at zero
        kernel, recurrent, bias = layer.get_weights()
        layer.set_weights([kernel, recurrent, rng.normal(scale=0.5, size=bias.shape).astype(np.float32)])
    cfg = ExperimentConfig(
        data=DataConfig(lahead=lahead, order=order, file="f.csv", input_cols=("a", "b", "c")),
        model=ModelConfig(units=units, cell=cell, layers=2, n_features=n_features),
    )
    scaling = Scaling((0.0,) * n_features, (1.0,) * n_features)
    saved = {"mode": "stateful", "seed_index": 0, "scaling": scaling, "metrics": {}}
    model_io.save_model(tmp_path, reference.params_from_keras(model, cell), cfg, saved)
    values = rng.uniform(-1, 1, (24, n_features)).astype(np.float32).astype(np.float64)
    ours = stream.Predictor.load(tmp_path).predict(values)
    assert np.isnan(ours[: lahead - 1]).all()
    expected = []
    for t in range(lahead - 1, values.shape[0]):  # each full window, the states carried by Keras
        window = values[t - lahead + 1 : t + 1]  # oldest first
        window = window if order == "oldest-first" else window[::-1]
        expected.append(model.predict_on_batch(window[None].astype(np.float32))[0, 0])
    np.testing.assert_allclose(ours[lahead - 1 :], expected, rtol=0, atol=1e-6)
