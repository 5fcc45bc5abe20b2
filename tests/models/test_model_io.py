"""Saved models: round trips for every cell, and refusal of anything altered."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from lstm_stateful.core import cells
from lstm_stateful.core.config import DataConfig, ExperimentConfig, ModelConfig
from lstm_stateful.core.data import Scaling
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.models import model_io


def save(directory: Path, cell: str = "lstm", units: int = 6) -> tuple[cells.ModelParams, ExperimentConfig]:
    cfg = ExperimentConfig(data=DataConfig(lahead=3), model=ModelConfig(units=units, cell=cell))
    params = cells.init_params(np.random.default_rng(7), cfg.model)
    saved = {"mode": "stateful", "seed_index": 2, "scaling": Scaling(1.0, 2.0, 3.0, 4.0), "metrics": {"r2": 0.5}}
    model_io.save_model(directory, params, cfg, saved)
    return params, cfg


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple"])
def test_round_trip(tmp_path: Path, cell: str) -> None:
    params, cfg = save(tmp_path / "m", cell)
    loaded = model_io.load_model(tmp_path / "m")
    for ours, theirs in zip(jax.tree.leaves(params), jax.tree.leaves(loaded.params), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert type(loaded.params.cell) is type(params.cell)
    assert (loaded.model, loaded.data, loaded.mode, loaded.seed_index) == (cfg.model, cfg.data, "stateful", 2)
    assert loaded.scaling == Scaling(1.0, 2.0, 3.0, 4.0)
    with np.load(tmp_path / "m" / "weights.npz", allow_pickle=False) as npz:  # plain arrays, no pickle
        assert sorted(npz.files) == sorted(model_io.expected_arrays(cfg.model))


def _meta(directory: Path) -> dict:
    return json.loads((directory / "model.json").read_text())


def _write_meta(directory: Path, meta: dict) -> None:
    (directory / "model.json").write_text(json.dumps(meta))


def test_tampered_or_truncated_weights_are_refused(tmp_path: Path) -> None:
    save(tmp_path / "m")
    weights = tmp_path / "m" / "weights.npz"
    blob = bytearray(weights.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    weights.write_bytes(bytes(blob))
    with pytest.raises(ConfigError, match="truncated or was modified"):
        model_io.load_model(tmp_path / "m")
    weights.write_bytes(bytes(blob[: len(blob) // 3]))
    with pytest.raises(ConfigError, match="truncated or was modified"):
        model_io.load_model(tmp_path / "m")


def test_shapes_dtypes_and_versions_are_checked(tmp_path: Path) -> None:
    save(tmp_path / "m")
    meta = _meta(tmp_path / "m")
    _write_meta(tmp_path / "m", meta | {"format_version": 99})
    with pytest.raises(ConfigError, match="format version 99; this lstm-stateful reads version 1"):
        model_io.load_model(tmp_path / "m")
    wrong_units = json.loads(json.dumps(meta))
    wrong_units["experiment"]["model"]["units"] = 7
    _write_meta(tmp_path / "m", wrong_units)
    with pytest.raises(ConfigError, match=r"array cell.kernel is \(1, 24\) float32; the config says \(1, 28\)"):
        model_io.load_model(tmp_path / "m")
    wrong_cell = json.loads(json.dumps(meta))
    wrong_cell["experiment"]["model"]["cell"] = "gru"
    _write_meta(tmp_path / "m", wrong_cell)
    with pytest.raises(ConfigError, match=r"array cell\.kernel is"):
        model_io.load_model(tmp_path / "m")
    _write_meta(tmp_path / "m", meta | {"format": "something-else"})
    with pytest.raises(ConfigError, match="not an lstm-stateful model file"):
        model_io.load_model(tmp_path / "m")
    (tmp_path / "m" / "model.json").write_text("{not json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        model_io.load_model(tmp_path / "m")


def test_float64_weights_are_refused(tmp_path: Path) -> None:
    params, cfg = save(tmp_path / "m")
    doubled = cells.ModelParams(type(params.cell)(*(np.asarray(a, np.float64) for a in params.cell)), params.dense)
    saved = {"mode": "stateless", "seed_index": 0, "scaling": Scaling(), "metrics": {}}
    model_io.save_model(tmp_path / "m", doubled, cfg, saved)
    with pytest.raises(ConfigError, match="float64; the config says"):
        model_io.load_model(tmp_path / "m")


def test_missing_and_parent_directories(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no model directory"):
        model_io.load_model(tmp_path / "absent")
    save(tmp_path / "run" / "stateful")
    with pytest.raises(ConfigError, match="holds stateful models: give `model`"):
        model_io.load_model(tmp_path / "run")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"has no model\.json"):
        model_io.load_model(tmp_path / "empty")
