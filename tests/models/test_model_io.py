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
from lstm_stateful.models import model_io, stream

GOLDEN_V1 = Path(__file__).parent / "golden_v1"


def save(
    directory: Path, cell: str = "lstm", units: int = 6, layers: int = 1, n_features: int = 1
) -> tuple[cells.ModelParams, ExperimentConfig]:
    columns = tuple(f"c{j}" for j in range(n_features)) if n_features > 1 else ()
    data = DataConfig(lahead=3) if not columns else DataConfig(lahead=3, file="f.csv", input_cols=columns)
    cfg = ExperimentConfig(data=data, model=ModelConfig(units=units, cell=cell, layers=layers, n_features=n_features))
    params = cells.init_params(np.random.default_rng(7), cfg.model)
    saved = {"mode": "stateful", "seed_index": 2, "scaling": _scaling(n_features), "metrics": {"r2": 0.5}}
    model_io.save_model(directory, params, cfg, saved)
    return params, cfg


def _scaling(n_features: int) -> Scaling:
    return Scaling(tuple(1.0 + j for j in range(n_features)), tuple(2.0 + j for j in range(n_features)), 3.0, 4.0)


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple"])
@pytest.mark.parametrize(("layers", "n_features"), [(1, 1), (3, 2)])
def test_round_trip(tmp_path: Path, cell: str, layers: int, n_features: int) -> None:
    params, cfg = save(tmp_path / "m", cell, layers=layers, n_features=n_features)
    loaded = model_io.load_model(tmp_path / "m")
    assert jax.tree.structure(loaded.params) == jax.tree.structure(params) and len(loaded.params.cells) == layers
    for ours, theirs in zip(jax.tree.leaves(params), jax.tree.leaves(loaded.params), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert (loaded.model, loaded.data, loaded.mode, loaded.seed_index) == (cfg.model, cfg.data, "stateful", 2)
    assert loaded.scaling == _scaling(n_features)
    with np.load(tmp_path / "m" / "weights.npz", allow_pickle=False) as npz:  # plain arrays, no pickle
        assert sorted(npz.files) == sorted(model_io.expected_arrays(cfg.model))
    listed = _meta(tmp_path / "m")["weights"]["arrays"]
    names = [f"cells.{k}.{n}" for k in range(layers) for n in ("kernel", "recurrent_kernel", "bias")]
    assert list(listed) == [*names, "dense.kernel", "dense.bias"]
    assert listed[f"cells.{layers - 1}.kernel"]["shape"] == list(params.cells[-1].kernel.shape)
    assert listed["cells.0.kernel"]["shape"][0] == n_features


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
    with pytest.raises(ConfigError, match="format version 99; this lstm-stateful reads versions 1 and 2"):
        model_io.load_model(tmp_path / "m")
    wrong_units = json.loads(json.dumps(meta))
    wrong_units["experiment"]["model"]["units"] = 7
    _write_meta(tmp_path / "m", wrong_units)
    with pytest.raises(ConfigError, match=r"array cells\.0\.kernel is \(1, 24\) float32; the config says \(1, 28\)"):
        model_io.load_model(tmp_path / "m")
    wrong_cell = json.loads(json.dumps(meta))
    wrong_cell["experiment"]["model"]["cell"] = "gru"
    _write_meta(tmp_path / "m", wrong_cell)
    with pytest.raises(ConfigError, match=r"array cells\.0\.kernel is"):
        model_io.load_model(tmp_path / "m")
    _write_meta(tmp_path / "m", meta | {"format": "something-else"})
    with pytest.raises(ConfigError, match="not an lstm-stateful model file"):
        model_io.load_model(tmp_path / "m")
    (tmp_path / "m" / "model.json").write_text("{not json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        model_io.load_model(tmp_path / "m")


def test_float64_weights_are_refused(tmp_path: Path) -> None:
    params, cfg = save(tmp_path / "m")
    (cell,) = params.cells
    doubled = cells.ModelParams((type(cell)(*(np.asarray(a, np.float64) for a in cell)),), params.dense)
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


def test_layers_inputs_and_checksums_are_checked(tmp_path: Path) -> None:
    save(tmp_path / "m", "gru", layers=2, n_features=3)
    meta = _meta(tmp_path / "m")
    one_layer = json.loads(json.dumps(meta))
    one_layer["experiment"]["model"]["layers"] = 1
    _write_meta(tmp_path / "m", one_layer)
    with pytest.raises(ConfigError, match=r"holds arrays .*cells\.1\.kernel.*; a 1-layer gru model has \["):
        model_io.load_model(tmp_path / "m")
    edited = json.loads(json.dumps(meta))
    edited["weights"]["arrays"]["cells.1.recurrent_kernel"]["sha256"] = "0" * 64
    _write_meta(tmp_path / "m", edited)
    with pytest.raises(ConfigError, match=r"array cells\.1\.recurrent_kernel does not match its checksum in model"):
        model_io.load_model(tmp_path / "m")
    short = json.loads(json.dumps(meta))
    short["scaling"]["input_scale"] = [1.0, 2.0]
    _write_meta(tmp_path / "m", short)
    with pytest.raises(ConfigError, match=r"invalid scaling \(2 values for 3 input column\(s\)\)"):
        model_io.load_model(tmp_path / "m")
    _write_meta(tmp_path / "m", meta)
    assert model_io.load_model(tmp_path / "m").scaling.input_scale == (2.0, 3.0, 4.0)


@pytest.mark.parametrize("mode", ["stateful", "stateless"])
def test_models_saved_by_the_previous_version_still_load_and_predict_the_same(mode: str) -> None:
    # Written by format version 1's code (see golden_v1/README.md): arrays cell.*, scalar
    # scaling, input_col in the config.
    directory = GOLDEN_V1 / mode
    assert _meta(directory)["format_version"] == 1 and "input_col" in _meta(directory)["experiment"]["data"]
    loaded = model_io.load_model(directory)
    (cell,) = loaded.params.cells
    with np.load(directory / "weights.npz", allow_pickle=False) as npz:
        for name in ("kernel", "recurrent_kernel", "bias"):
            np.testing.assert_array_equal(getattr(cell, name), npz[f"cell.{name}"])
        np.testing.assert_array_equal(loaded.params.dense.kernel, npz["dense.kernel"])
    assert (loaded.model.layers, loaded.model.n_features, loaded.data.input_cols) == (1, 1, ("price",))
    assert loaded.scaling == Scaling((10.0073255,), (1.4179920067880483,), 10.0073255, 1.4179920067880483)
    golden = json.loads((GOLDEN_V1 / "predictions.json").read_text())
    ours = stream.Predictor(loaded).predict(np.array(golden["values"]))
    expected = np.array([np.nan if v is None else v for v in golden[mode]])
    np.testing.assert_array_equal(ours, expected)
