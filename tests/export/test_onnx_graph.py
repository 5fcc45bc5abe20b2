"""The ONNX graph, run by ONNX Runtime one point at a time with its state carried through its
outputs, predicts what the ``Predictor`` predicts; files are checked, refused when broken,
and written whole or not at all."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from lstm_stateful.core import cells
from lstm_stateful.core.config import DataConfig, ExperimentConfig, ModelConfig
from lstm_stateful.core.data import Scaling
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.export import onnx_graph
from lstm_stateful.export.onnx_graph import OnnxPredictor, StateTensor
from lstm_stateful.models import model_io
from lstm_stateful.models.stream import Predictor

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

N_POINTS = 1000
# Raw-unit agreement: |ours - Predictor| <= TOL * max(1, |Predictor|), NaN where it is NaN.
TOL = 1e-5
COLUMNS = ("a", "b", "c")


def random_model(
    cell: str = "lstm",
    mode: str = "stateful",
    lahead: int = 3,
    n_features: int = 1,
    layers: int = 1,
    scaling: Scaling | None = None,
    **data: object,
) -> model_io.SavedModel:
    """A model with random weights and biases and a non-trivial scaling (a data file's
    columns, so that any number of inputs and any transform is allowed)."""
    cfg = ModelConfig(units=7, n_features=n_features, cell=cell, layers=layers)
    rng = np.random.default_rng([lahead, n_features, layers, len(cell)])
    params = cells.init_params(rng, cfg)

    def biased(p: cells.CellParams) -> cells.CellParams:
        return p._replace(bias=rng.normal(scale=0.5, size=np.shape(p.bias)).astype(np.float32))

    dense = params.dense._replace(bias=np.array([0.3], np.float32))
    params = cells.ModelParams(tuple(biased(c) for c in params.cells), dense)
    d = DataConfig(lahead=lahead, file="f.csv", input_cols=COLUMNS[:n_features], **data)
    if scaling is None:
        scaling = Scaling(
            tuple(rng.normal(scale=0.3, size=n_features)), tuple(rng.uniform(0.5, 2, n_features)), -0.4, 2.5
        )
    return model_io.SavedModel(params, cfg, d, mode, scaling, 0)


def uniform_values(b: int, n_features: int, seed: int = 0) -> np.ndarray:
    """(B, N) for one input, (B, N, F) for several; float32 values (the graph's input type)."""
    v = np.random.default_rng(seed).uniform(-1, 1, (b, N_POINTS, n_features)).astype(np.float32)
    return v.astype(np.float64)[..., 0] if n_features == 1 else v.astype(np.float64)


def price_values(b: int, n_features: int) -> np.ndarray:
    """Positive random walks, one level per stream from 1e2 to 1e4 (log-steps of 1 %)."""
    rng = np.random.default_rng(5)
    levels = np.geomspace(1e2, 1e4, b)[:, None, None]
    v = (levels * np.exp(np.cumsum(rng.normal(scale=0.01, size=(b, N_POINTS, n_features)), axis=1))).astype(np.float32)
    return v.astype(np.float64)[..., 0] if n_features == 1 else v.astype(np.float64)


def pointwise(predictor: OnnxPredictor, values: np.ndarray) -> np.ndarray:
    """ONNX Runtime fed one time step per call, the state carried through its outputs: (B, N)."""
    return np.stack([predictor.predict(values[:, t]) for t in range(values.shape[1])], axis=1)


def assert_close(ours: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected))
    ok = ~np.isnan(expected)
    err = np.abs(ours[ok] - expected[ok]) / np.maximum(1.0, np.abs(expected[ok]))
    assert err.max(initial=0.0) <= TOL, err.max()


def checked_file(model: model_io.SavedModel, path: Path, chunk: int | None = None) -> tuple[Path, ...]:
    files = onnx_graph.write_onnx(model, path, chunk)
    for f in files:
        onnx.checker.check_model(onnx.load(f), full_check=True)
    return files


def matches_predictor(model: model_io.SavedModel, path: Path, values: np.ndarray) -> None:
    """One graph (B is dynamic) serves B = 1 (the first stream's values) and B = len(values):
    each equals the Predictor fed the same values."""
    (file,) = checked_file(model, path)
    for b in (1, values.shape[0]):
        predictor, ours = Predictor(model, b), OnnxPredictor.load(file, b)
        assert_close(pointwise(ours, values[:b]), predictor.predict(values[:b]))
        assert_same_state(ours, predictor)


def assert_same_state(ours: OnnxPredictor, predictor: Predictor) -> None:
    """The graph's state tensors hold what the Predictor's state holds."""
    stream, history = predictor.snapshot()
    carry = {
        f"layer{k}_{part}": value for k, layer in enumerate(stream.carry) for part, value in layer._asdict().items()
    }
    expected = carry | {"window": stream.window, "filled": stream.filled, "steps": stream.steps}
    expected |= {"history": history.rows, "seen": history.seen}
    state = ours.state
    assert set(state) <= set(expected)
    for name, value in state.items():
        np.testing.assert_allclose(value, np.asarray(expected[name]), rtol=TOL, atol=TOL, err_msg=name)


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("n_features", [1, 3])
@pytest.mark.parametrize("lahead", [1, 3])
@pytest.mark.parametrize("mode", ["stateful", "stateless"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "simple"])
def test_the_graph_streams_as_the_predictor(
    tmp_path: Path, cell: str, mode: str, lahead: int, n_features: int, layers: int
) -> None:
    model = random_model(
        cell, mode, lahead, n_features, layers, order="oldest-first" if layers == 2 else "newest-first"
    )
    values = uniform_values(4, n_features)
    matches_predictor(model, tmp_path / "m.onnx", values)


@pytest.mark.parametrize("task", ["forecast", "moving-average"])
@pytest.mark.parametrize("transform", ["diff", "log-diff"])
def test_transformed_models_stream_prices_as_the_predictor(tmp_path: Path, transform: str, task: str) -> None:
    # Realistic scalings for the changes of a price series: 1 % log-steps, or ~1 % of 1e2..1e4.
    scale = 0.01 if transform == "log-diff" else 20.0
    scaling = Scaling((0.001, -0.002, 0.0), (scale, scale * 2, scale / 2), 0.0005, scale)
    tsteps = {"tsteps": 4} if task == "moving-average" else {"tsteps": 1}
    cfg_data = {"transform": transform, "task": task, **tsteps}
    model = random_model("lstm", "stateful", 3, 3, 2, scaling, **cfg_data)
    # Through the model files, as the export command reads them.
    cfg = ExperimentConfig(data=model.data, model=model.model)
    saved = {"mode": model.mode, "seed_index": 0, "scaling": model.scaling, "metrics": {}}
    model_io.save_model(tmp_path / "model", model.params, cfg, saved)
    model = model_io.load_model(tmp_path / "model")
    values = price_values(4, 3)
    predictor = Predictor(model, 4)
    expected = predictor.predict(values)
    first = 4 if task == "moving-average" else 3  # a first point has no change; then the window fills
    assert np.isnan(expected[:, :first]).all() and np.isfinite(expected[:, first:]).all()
    (file,) = checked_file(model, tmp_path / "m.onnx")
    ours = OnnxPredictor.load(file, 4)
    assert np.isnan(ours.predict(values[:, 0])).all()  # the first point: no change yet, the state stays empty
    state = ours.state
    assert not state["window"].any() and not state["filled"].any() and state["seen"].tolist() == [1] * 4
    assert_close(pointwise(ours, values[:, 1:]), expected[:, 1:])
    assert_same_state(ours, predictor)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_interleaved_slots_stream_as_the_predictor(tmp_path: Path, cell: str) -> None:
    model = random_model(cell, "stateful", 3, 1, 2, batch_size=4, layout="interleaved")
    assert [t.shape for t in onnx_graph.state_tensors(model) if t.name.startswith("layer")] == [("B", 4, 7)] * (
        4 if cell == "lstm" else 2
    )
    matches_predictor(model, tmp_path / "m.onnx", uniform_values(4, 1))


def test_the_chunk_graph_equals_one_step_calls(tmp_path: Path) -> None:
    model = random_model("lstm", "stateful", 3, 3, 2, batch_size=4, transform="diff", tsteps=2)
    one, chunked = checked_file(model, tmp_path / "m.onnx", chunk=8)
    assert chunked == tmp_path / "m.chunk8.onnx"
    values = price_values(4, 3)
    step, chunk = OnnxPredictor.load(one, 4), OnnxPredictor.load(chunked, 4)
    np.testing.assert_array_equal(chunk.predict(values), pointwise(step, values))
    assert chunk.state.keys() == step.state.keys()
    for name, value in chunk.state.items():
        np.testing.assert_array_equal(value, step.state[name], err_msg=name)
    inputs = {i.name: i.type.tensor_type.shape.dim for i in onnx.load(chunked).graph.input}
    assert [d.dim_param or d.dim_value for d in inputs["x"]] == ["B", 8, 3]
    with pytest.raises(ConfigError, match=r"values: 5 steps per stream: this graph takes 8"):
        chunk.predict(values[:, :5])


def test_metadata_lists_the_config_and_the_state_tensors_the_graph_has(tmp_path: Path) -> None:
    model = random_model("lstm", "stateful", 3, 3, 2, batch_size=4, transform="log-diff", task="forecast", tsteps=1)
    (file,) = checked_file(model, tmp_path / "m.onnx")
    proto = onnx.load(file)
    meta = {p.key: p.value for p in proto.metadata_props}
    config = json.loads(meta["config"])
    assert config["model"] == dataclasses.asdict(model.model)
    assert config["data"] == json.loads(json.dumps(dataclasses.asdict(model.data)))
    assert (meta["format"], meta["mode"], meta["steps"], meta["slots"]) == ("lstm-stateful/onnx", "stateful", "1", "4")
    assert json.loads(meta["scaling"]) == model.scaling._asdict() | {
        "input_mean": list(model.scaling.input_mean),
        "input_scale": list(model.scaling.input_scale),
    }
    state = [StateTensor(t["name"], t["output"], tuple(t["shape"]), t["dtype"]) for t in json.loads(meta["state"])]
    names = ["window", "filled", "steps", "layer0_h", "layer0_c", "layer1_h", "layer1_c", "history", "seen"]
    assert [t.name for t in state] == names
    assert state == list(onnx_graph.state_tensors(model))
    assert state[0] == StateTensor("window", "next_window", ("B", 3, 3), "float32")
    assert state[-2:] == [
        StateTensor("history", "next_history", ("B", 1, 3), "float32"),
        StateTensor("seen", "next_seen", ("B",), "int64"),
    ]
    dtype = {"float32": onnx.TensorProto.FLOAT, "int64": onnx.TensorProto.INT64}

    def described(values: list) -> list[tuple[str, int, tuple]]:
        return [
            (
                v.name,
                v.type.tensor_type.elem_type,
                tuple(d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim),
            )
            for v in values
        ]

    x = ("x", dtype["float32"], ("B", 3))
    assert described(proto.graph.input) == [x] + [(t.name, dtype[t.dtype], t.shape) for t in state]
    y = ("y", dtype["float32"], ("B", 1))
    assert described(proto.graph.output) == [y] + [(t.output, dtype[t.dtype], t.shape) for t in state]
    assert proto.opset_import[0].version == 17


def test_a_stateless_model_carries_no_recurrent_state() -> None:
    names = [t.name for t in onnx_graph.state_tensors(random_model("gru", "stateless", batch_size=4))]
    assert names == ["window", "filled"]
    ma = random_model("simple", "stateful", transform="diff", task="moving-average", tsteps=5)
    assert [(t.name, t.shape) for t in onnx_graph.state_tensors(ma)][-3:] == [
        ("layer0_h", ("B", 1, 7)),
        ("history", ("B", 5, 1)),
        ("seen", ("B",)),
    ]


def test_the_state_starts_at_zero_and_reset_empties_it(tmp_path: Path) -> None:
    (file,) = checked_file(random_model("lstm", "stateful", 2), tmp_path / "m.onnx")
    p = OnnxPredictor.load(file, 2)
    assert all(not v.any() for v in p.state.values())
    assert np.isnan(p.predict([0.1, 0.2])).all() and np.isfinite(p.predict([0.3, 0.4])).all()
    assert p.state["filled"].tolist() == [2, 2] and p.state["layer0_h"].any()
    p.state["filled"][:] = 0  # a copy: the predictor's own state is untouched
    assert p.state["filled"].tolist() == [2, 2]
    p.reset(3)
    assert p.state["window"].shape == (3, 2, 1) and all(not v.any() for v in p.state.values())


def test_bad_values_are_one_line(tmp_path: Path) -> None:
    model = random_model("gru", "stateful", 1, transform="log-diff", task="forecast", tsteps=1)
    (file,) = checked_file(model, tmp_path / "m.onnx")
    p = OnnxPredictor.load(file, 2)
    with pytest.raises(ConfigError, match=r"values: shape \(3,\) does not fit batch size 2"):
        p.predict([1.0, 2.0, 3.0])
    with pytest.raises(ConfigError, match="log-diff, which needs values > 0"):
        p.predict([1.0, -2.0])


def broken_files(tmp_path: Path) -> dict[str, Path]:
    (file,) = checked_file(random_model("lstm", "stateful", 3, 3, 2), tmp_path / "m.onnx")
    blob = file.read_bytes()
    files = {"truncated": blob[: len(blob) // 2], "garbage": b"\x08\x07not an onnx file\xff\xfe" * 10}
    weights = onnx.load(file)
    weights.graph.initializer[3].raw_data = bytes([weights.graph.initializer[3].raw_data[0] ^ 1]) + bytes(
        weights.graph.initializer[3].raw_data[1:]
    )
    files["edited"] = weights.SerializeToString()
    for key, old, new in (("state", '"int64"', '"int>4"'), ("config", '"n_features": 3', '"n_features": 2')):
        edited = onnx.load(file)
        prop = next(p for p in edited.metadata_props if p.key == key)
        assert old in prop.value
        prop.value = prop.value.replace(old, new)
        files[f"edited {key}"] = edited.SerializeToString()
    node = onnx.helper.make_node("Identity", ["x"], ["y"])
    tensor = onnx.helper.make_tensor_value_info
    graph = onnx.helper.make_graph([node], "g", [tensor("x", 1, [1])], [tensor("y", 1, [1])])
    files["foreign"] = onnx.helper.make_model(graph).SerializeToString()
    paths = {}
    for name, content in files.items():
        paths[name] = tmp_path / f"{name}.onnx"
        paths[name].write_bytes(content)
    return paths | {"missing": tmp_path / "none.onnx", "directory": tmp_path}


def test_broken_and_foreign_files_are_refused_in_one_line(tmp_path: Path) -> None:
    expected = {
        "truncated": "is not an ONNX file, or is truncated",
        "garbage": "is not an ONNX file, or is truncated",
        "edited": "does not match the checksum in its metadata",
        "edited state": "does not match the checksum in its metadata",
        "edited config": "does not match the checksum in its metadata",
        "foreign": "is not an lstm-stateful graph",
        "missing": "cannot be read",
        "directory": "cannot be read",
    }
    for name, path in broken_files(tmp_path).items():
        with pytest.raises(ConfigError) as caught:
            OnnxPredictor.load(path)
        assert caught.value.param == "model" and "\n" not in str(caught.value), (name, str(caught.value))
        assert expected[name] in str(caught.value), (name, str(caught.value))


def test_nothing_is_written_when_a_graph_fails_its_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = random_model()
    calls = []

    def check(proto: object, full_check: bool = False) -> None:
        calls.append(full_check)
        if len(calls) == 2:
            raise onnx.checker.ValidationError("broken")

    monkeypatch.setattr(onnx.checker, "check_model", check)
    with pytest.raises(onnx.checker.ValidationError):
        onnx_graph.write_onnx(model, tmp_path / "m.onnx", chunk=4)
    assert calls == [True, True] and list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "m.onnx").write_bytes(b"old")

    def half(self: Path, data: bytes) -> int:
        with open(self, "wb") as f:
            f.write(data[: len(data) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_bytes", half)
    with pytest.raises(ConfigError, match=r"^out: cannot write .*m\.onnx.*: disk full$"):
        onnx_graph.write_onnx(random_model(), tmp_path / "m.onnx")
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"] and (tmp_path / "m.onnx").read_bytes() == b"old"


def test_bad_arguments_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^chunk: must be a positive integer, got 0$"):
        onnx_graph.build_onnx(random_model(), chunk=0)
    with pytest.raises(ConfigError, match=r"^out: cannot write .*: No such file or directory$"):
        onnx_graph.write_onnx(random_model(), tmp_path / "no" / "m.onnx")
    assert onnx_graph.chunk_path(Path("d/model.onnx"), 16) == Path("d/model.chunk16.onnx")


def test_without_the_extra_one_line_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(ConfigError) as caught:
        onnx_graph.import_onnx()
    assert str(caught.value) == "format: ONNX export needs the onnx extra: pip install 'lstm-stateful[onnx]'"


def test_a_chunk_file_that_cannot_be_written_keeps_the_old_pair(tmp_path: Path) -> None:
    """The one-step file is renamed into place only after the T-step one is written: a T-step
    path that is a directory fails the export in one line, and the old one-step file stays."""
    (tmp_path / "m.onnx").write_bytes(b"old")
    (tmp_path / "m.chunk4.onnx").mkdir()
    with pytest.raises(ConfigError, match=r"^out: cannot write .*m\.chunk4\.onnx"):
        onnx_graph.write_onnx(random_model(), tmp_path / "m.onnx", chunk=4)
    assert (tmp_path / "m.onnx").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.chunk4.onnx", "m.onnx"]
