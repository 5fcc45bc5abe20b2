"""The service's batched step: streams stacked into padded batches equal each stream fed
alone (the offline Predictor, and Keras's stateful layers with one row per stream), single
values compile nothing after the warm-up, and a state's bytes are safetensors'."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jax
import numpy as np
import pytest
import safetensors.numpy

from lstm_stateful.core.config import DataConfig, ExperimentConfig, ModelConfig
from lstm_stateful.core.data import Scaling
from lstm_stateful.models import model_io, stream
from lstm_stateful.serve import engine as engine_mod
from lstm_stateful.serve.engine import Engine
from tests import reference
from tests.serve import saved_model

RNG = np.random.default_rng(7)
# Positive values (log-diff models need them), near the scaling's means.
VALUES = 1.0 + RNG.uniform(0.0, 1.0, size=(40, 30, 3))


def test_size_classes() -> None:
    assert engine_mod.size_classes(64) == (1, 2, 4, 8, 16, 32, 64)
    assert engine_mod.size_classes(256) == (1, 2, 4, 8, 16, 32, 64, 128, 192, 256)
    assert engine_mod.size_classes(1) == (1,)
    classes = engine_mod.size_classes(192)
    assert [engine_mod.size_class(b, classes) for b in (1, 3, 5, 17, 33, 64, 65, 130, 192)] == [
        1, 4, 8, 32, 64, 64, 128, 192, 192,
    ]  # fmt: skip


def _feed(eng: Engine, states: dict[int, engine_mod.Leaves], streams: list[int], table: np.ndarray) -> np.ndarray:
    new, preds = eng.step([states[s] for s in streams], table)
    states.update(zip(streams, new, strict=True))
    return preds


@pytest.mark.parametrize(
    ("mode", "cell", "layers", "n_features", "data"),
    [
        ("stateful", "lstm", 1, 1, {}),
        ("stateful", "gru", 2, 3, {"order": "oldest-first"}),
        ("stateless", "simple", 1, 1, {}),
        ("stateful", "lstm", 1, 2, {"transform": "log-diff", "task": "forecast", "tsteps": 1}),
        ("stateful", "gru", 1, 1, {"transform": "diff", "tsteps": 4}),
        ("stateful", "lstm", 1, 1, {"batch_size": 3}),  # trained interleaved: 3 states per stream
    ],
)
def test_batched_rounds_equal_each_stream_alone(
    tmp_path: Path, mode: str, cell: str, layers: int, n_features: int, data: dict
) -> None:
    # Five streams in rounds of ragged membership and chunk lengths, padded to 8 (and 4,
    # 2, 1), against one Predictor per stream fed the same values one call at a time.
    model = saved_model(tmp_path, mode, cell, layers, n_features, **data)
    eng = Engine(model, max_batch=4)  # 5 streams: a piece of 4 and a piece of 1
    alone = [stream.Predictor(model) for _ in range(5)]
    states = dict.fromkeys(range(5), eng.initial)
    rounds = [(range(5), 7), ([1, 3, 4], 1), ([0, 2], 5), (range(5), 1), ([4, 0, 2, 1, 3], 8)]
    fed = [0] * 5
    for members, n in rounds:
        members = list(members)
        table = np.stack([VALUES[s, fed[s] : fed[s] + n, :n_features] for s in members])
        ours = _feed(eng, states, members, table)
        for k, s in enumerate(members):
            expected = alone[s].predict(table[k, :, 0] if n_features == 1 else table[k])
            np.testing.assert_allclose(ours[k], expected, rtol=1e-6, atol=1e-6)
            fed[s] += n
    assert np.isfinite(ours).all()  # the last round: every window full, every stream predicting


@pytest.fixture
def compiles() -> Iterator[list[str]]:
    """Every XLA compilation while the test runs (JAX's monitoring events). The persistent
    compilation cache, which another test may have turned on, is off meanwhile: a program
    it loads is compiled all the same, yet reported as no compilation."""
    seen: list[str] = []
    cache = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)

    def listen(event: str, duration: float, **_: object) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            seen.append(event)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
        jax.config.update("jax_enable_compilation_cache", cache)


def test_after_the_warm_up_new_batch_sizes_compile_nothing(tmp_path: Path, compiles: list[str]) -> None:
    eng = Engine(saved_model(tmp_path), max_batch=64)
    eng.warm_up()
    programs = stream.stream_chunk._cache_size()
    compiles.clear()
    states = [eng.initial] * 100
    for b in (3, 5, 17, 40, 63, 64, 100, 7, 1, 2):  # 100: pieces of 64 and 36
        new, preds = eng.step(states[:b], RNG.uniform(size=(b, 1, 1)))
        assert len(new) == b and preds.shape == (b, 1)
        states[:b] = new
    assert compiles == [] and stream.stream_chunk._cache_size() == programs
    eng.step(states[:3], RNG.uniform(size=(3, 2, 1)))  # a chunk of 2: a new program, which the counters see
    assert compiles and stream.stream_chunk._cache_size() == programs + 1


def test_padding_does_not_leak_into_the_streams(tmp_path: Path) -> None:
    # The padded rows copy the first stream: the real ones must not change with the padding.
    model = saved_model(tmp_path)
    values = RNG.uniform(size=(3, 6, 1))
    padded, _ = Engine(model).step([Engine(model).initial] * 3, values)  # padded to 4
    exact, _ = Engine(model, max_batch=1).step([Engine(model).initial] * 3, values)  # three of 1
    for a, b in zip(padded, exact, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


def test_a_state_is_safetensors_bytes_of_named_arrays(tmp_path: Path) -> None:
    model = saved_model(tmp_path, cell="gru", layers=2, n_features=2, transform="diff")
    eng = Engine(model)
    (state,), _ = eng.step([eng.initial], VALUES[0, :5, :2][None])
    blob = eng.codec.encode(state)
    named = dict(zip(eng.codec.names, state, strict=True))
    assert blob == safetensors.numpy.save(named)  # the library's own bytes
    assert set(safetensors.numpy.load(blob)) == {
        "stream.carry.0.h", "stream.carry.1.h", "stream.window", "stream.filled", "stream.steps",
        "history.rows", "history.seen",
    }  # fmt: skip
    back = eng.codec.decode(blob)
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(back, state, strict=True))
    with pytest.raises(ValueError, match="not a safetensors state"):
        eng.codec.decode(blob[:-3])
    other = Engine(saved_model(tmp_path / "other", cell="lstm"))
    with pytest.raises(ValueError, match="holds arrays"):
        other.codec.decode(blob)
    wider = Engine(saved_model(tmp_path / "wider", cell="gru", layers=2, n_features=2, transform="diff", lahead=4))
    with pytest.raises(ValueError, match=r"array stream.window is \(1, 3, 2\) float32, not \(1, 4, 2\) float32"):
        wider.codec.decode(blob)


@pytest.mark.keras
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_batched_streams_equal_a_stateful_keras_model_with_one_row_per_stream(tmp_path: Path, cell: str) -> None:
    # Keras's stateful layers with batch size B carry row b's state to row b of the next
    # call: B independent streams. Five of them, in batches padded to 8, step by step.
    b, lahead, n_features, units = 5, 2, 2, 6
    keras_model = reference.keras_model(True, lahead, b, units, seed=5, cell=cell, layers=2, n_features=n_features)
    cfg = ExperimentConfig(
        data=DataConfig(lahead=lahead, file="f.csv", input_cols=("a", "b")),
        model=ModelConfig(units=units, cell=cell, layers=2, n_features=n_features),
    )
    scaling = Scaling((0.0,) * n_features, (1.0,) * n_features)
    saved = {"mode": "stateful", "seed_index": 0, "scaling": scaling, "metrics": {}}
    model_io.save_model(tmp_path, reference.params_from_keras(keras_model, cell), cfg, saved)
    eng = Engine(model_io.load_model(tmp_path))
    values = RNG.uniform(-1, 1, (b, 12, n_features)).astype(np.float32).astype(np.float64)
    states = [eng.initial] * b
    ours = []
    for t in range(values.shape[1]):
        states, preds = eng.step(states, values[:, t : t + 1])
        ours.append(preds[:, 0])
    expected = [
        keras_model.predict_on_batch(values[:, t - lahead + 1 : t + 1][:, ::-1].astype(np.float32))[:, 0]
        for t in range(lahead - 1, values.shape[1])
    ]  # each stream's full windows, newest first, the states carried by Keras
    assert np.isnan(ours[0]).all()
    np.testing.assert_allclose(np.array(ours[lahead - 1 :]), np.array(expected), rtol=0, atol=1e-6)
