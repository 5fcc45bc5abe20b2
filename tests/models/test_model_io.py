"""Saved models: round trips for every cell, refusal of anything altered, and the directories
earlier format versions wrote (golden_v1, golden_v2) loading and predicting as they did."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest
import safetensors
import safetensors.numpy

from lstm_stateful.core import cells
from lstm_stateful.core.config import DataConfig, ExperimentConfig, ModelConfig
from lstm_stateful.core.data import Scaling
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.models import model_io, stream

GOLDEN_V1 = Path(__file__).parent / "golden_v1"
GOLDEN_V2 = Path(__file__).parent / "golden_v2"
STAMP = {"format": "lstm-stateful/model", "format_version": "3"}


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
    # Any safetensors reader opens the file: plain arrays, the format named in the header.
    with safetensors.safe_open(tmp_path / "m" / "weights.safetensors", framework="numpy") as f:
        assert f.metadata() == STAMP
        assert sorted(f.keys()) == sorted(model_io.expected_arrays(cfg.model))
        np.testing.assert_array_equal(f.get_tensor("dense.kernel"), params.dense.kernel)
        assert f.get_tensor(f"cells.{layers - 1}.bias").dtype == np.float32
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "weights.safetensors"]
    meta = _meta(tmp_path / "m")
    assert (meta["format_version"], meta["weights"]["file"]) == (3, "weights.safetensors")
    listed = meta["weights"]["arrays"]
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
    weights = tmp_path / "m" / "weights.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    weights.write_bytes(bytes(blob))
    with pytest.raises(ConfigError, match="truncated or was modified"):
        model_io.load_model(tmp_path / "m")
    weights.write_bytes(bytes(blob[: len(blob) // 3]))
    with pytest.raises(ConfigError, match="truncated or was modified"):
        model_io.load_model(tmp_path / "m")


def _refused(directory: Path, pattern: str) -> None:
    """Loading ``directory`` fails with one line on ``model`` matching ``pattern``."""
    with pytest.raises(ConfigError, match=pattern) as caught:
        model_io.load_model(directory)
    assert caught.value.param == "model" and "\n" not in str(caught.value)


def _with_checksum(directory: Path, blob: bytes) -> None:
    """Write ``blob`` as weights.safetensors, its checksum in model.json updated to match."""
    (directory / "weights.safetensors").write_bytes(blob)
    meta = _meta(directory)
    meta["weights"]["sha256"] = hashlib.sha256(blob).hexdigest()
    _write_meta(directory, meta)


def _replace_weights(directory: Path, arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = STAMP) -> None:
    """Rewrite the weights, and the file's checksum and the arrays' listing to match: only the
    checks after the checksums can catch what changed."""
    _with_checksum(directory, safetensors.numpy.save(arrays, metadata=metadata))
    meta = _meta(directory)
    meta["weights"]["arrays"] = {k: {"sha256": hashlib.sha256(v.tobytes()).hexdigest()} for k, v in arrays.items()}
    _write_meta(directory, meta)


def test_weights_that_do_not_parse_are_refused_even_with_a_matching_checksum(tmp_path: Path) -> None:
    save(tmp_path / "m")
    blob = (tmp_path / "m" / "weights.safetensors").read_bytes()
    header_length = int.from_bytes(blob[:8], "little")
    broken = bytearray(blob)
    broken[8] ^= 0xFF  # the header's opening brace: no longer JSON
    _with_checksum(tmp_path / "m", bytes(broken))
    _refused(tmp_path / "m", r"weights\.safetensors': is not a valid safetensors file \(Error while deserializing")
    _with_checksum(tmp_path / "m", blob[: 8 + header_length + 10])  # the header whole, the data cut
    _refused(tmp_path / "m", "is not a valid safetensors file")
    _with_checksum(tmp_path / "m", blob[:5])
    _refused(tmp_path / "m", "is not a valid safetensors file")
    data = np.zeros(4, np.float32)  # a bfloat16 array: valid safetensors that NumPy cannot hold
    spec = safetensors.TensorSpec(dtype="bfloat16", shape=(8,), data_ptr=data.ctypes.data, data_len=data.nbytes)
    _with_checksum(tmp_path / "m", bytes(safetensors.serialize({"dense.bias": spec}, metadata=STAMP)))
    _refused(tmp_path / "m", "holds an array of dtype 'BF16', which NumPy cannot read; models hold float32")
    (tmp_path / "m" / "weights.safetensors").unlink()
    _refused(tmp_path / "m", r"weights\.safetensors': cannot be read \(No such file or directory\)")


def test_header_metadata_must_name_the_format_and_version(tmp_path: Path) -> None:
    save(tmp_path / "m")
    arrays = safetensors.numpy.load((tmp_path / "m" / "weights.safetensors").read_bytes())
    for metadata in (STAMP | {"format_version": "2"}, STAMP | {"format": "other/model"}, None):
        _replace_weights(tmp_path / "m", arrays, metadata)
        _refused(
            tmp_path / "m",
            r"has header metadata \{.*\}, not \{'format': 'lstm-stateful/model', 'format_version': '3'\}",
        )
    _replace_weights(tmp_path / "m", arrays, STAMP | {"written_by": "someone else"})  # more keys: fine
    assert model_io.load_model(tmp_path / "m").mode == "stateful"


def test_renamed_reshaped_extra_or_missing_arrays_are_refused(tmp_path: Path) -> None:
    save(tmp_path / "m", "gru", layers=2, n_features=3)
    arrays = safetensors.numpy.load((tmp_path / "m" / "weights.safetensors").read_bytes())
    renamed = {k.replace("cells.1.bias", "cells.1.offset"): v for k, v in arrays.items()}
    _replace_weights(tmp_path / "m", renamed)
    _refused(tmp_path / "m", r"holds arrays \[.*'cells\.1\.offset'.*\]; a 2-layer gru model has \[")
    _replace_weights(tmp_path / "m", arrays | {"extra": np.zeros(2, np.float32)})
    _refused(tmp_path / "m", r"holds arrays \[.*'extra'")
    _replace_weights(tmp_path / "m", {k: v for k, v in arrays.items() if k != "dense.bias"})
    _refused(tmp_path / "m", r"holds arrays \[.*\]; a 2-layer gru model has")
    # The same bytes (so the same per-array checksum), another shape.
    kernel = arrays["cells.0.kernel"]
    assert kernel.shape == (3, 18)
    _replace_weights(tmp_path / "m", arrays | {"cells.0.kernel": kernel.reshape(18, 3)})
    _refused(tmp_path / "m", r"array cells\.0\.kernel is \(18, 3\) float32; the config says \(3, 18\) float32")
    _replace_weights(tmp_path / "m", arrays)
    assert len(model_io.load_model(tmp_path / "m").params.cells) == 2


def test_shapes_dtypes_and_versions_are_checked(tmp_path: Path) -> None:
    save(tmp_path / "m")
    meta = _meta(tmp_path / "m")
    _write_meta(tmp_path / "m", meta | {"format_version": 99})
    with pytest.raises(ConfigError, match="format version 99; this lstm-stateful reads versions 1, 2 and 3"):
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


def _golden_v2_predictions(loaded: model_io.SavedModel, name: str) -> tuple[np.ndarray, np.ndarray]:
    """What ``loaded`` predicts on golden_v2's rows, and what version 2 predicted (see its README)."""
    golden = json.loads((GOLDEN_V2 / "predictions.json").read_text())
    rows = np.array(golden["values"])[:, : loaded.model.n_features]
    ours = stream.Predictor(loaded).predict(rows if rows.shape[1] > 1 else rows[:, 0])
    return ours, np.array([np.nan if v is None else v for v in golden[name]])


@pytest.mark.parametrize(
    ("name", "layers", "inputs", "transform"),
    [("gru_stateful", 2, ("a", "b", "c"), "none"), ("lstm_stateless", 1, ("a",), "diff")],
)
def test_models_saved_by_format_version_2_still_load_and_predict_the_same(
    name: str, layers: int, inputs: tuple[str, ...], transform: str
) -> None:
    directory = GOLDEN_V2 / name
    assert _meta(directory)["format_version"] == 2 and not (directory / "weights.safetensors").exists()
    loaded = model_io.load_model(directory)
    assert (loaded.model.layers, loaded.data.input_cols, loaded.data.transform) == (layers, inputs, transform)
    with np.load(directory / "weights.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(model_io.expected_arrays(loaded.model))
        np.testing.assert_array_equal(
            loaded.params.cells[-1].recurrent_kernel, npz[f"cells.{layers - 1}.recurrent_kernel"]
        )
    ours, expected = _golden_v2_predictions(loaded, name)
    assert np.isnan(expected).sum() in (2, 3) and np.isfinite(expected).sum() >= 37
    np.testing.assert_array_equal(ours, expected)


def test_format_version_2_keeps_its_checks(tmp_path: Path) -> None:
    shutil.copytree(GOLDEN_V2 / "gru_stateful", tmp_path / "m")
    weights = tmp_path / "m" / "weights.npz"
    blob = weights.read_bytes()
    weights.write_bytes(blob[:-7])
    _refused(tmp_path / "m", r"weights\.npz': does not match the checksum in model\.json")
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["cells.1.bias"] = arrays["cells.1.bias"] + np.float32(1)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    weights.write_bytes(buffer.getvalue())
    meta = _meta(tmp_path / "m")
    meta["weights"]["sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    _write_meta(tmp_path / "m", meta)
    _refused(tmp_path / "m", r"weights\.npz': array cells\.1\.bias does not match its checksum in model\.json")


def test_a_model_saved_over_version_2_is_version_3_and_predicts_the_same(tmp_path: Path) -> None:
    shutil.copytree(GOLDEN_V2 / "gru_stateful", tmp_path / "m")
    old = model_io.load_model(tmp_path / "m")
    meta = _meta(tmp_path / "m")
    cfg = ExperimentConfig.from_dict(meta["experiment"])
    saved = {"mode": old.mode, "seed_index": old.seed_index, "scaling": old.scaling, "metrics": meta["metrics"]}
    model_io.save_model(tmp_path / "m", old.params, cfg, saved)
    # The npz the new model.json no longer names is gone: the directory holds one model.
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "weights.safetensors"]
    assert _meta(tmp_path / "m")["format_version"] == 3
    ours, expected = _golden_v2_predictions(model_io.load_model(tmp_path / "m"), "gru_stateful")
    np.testing.assert_array_equal(ours, expected)
