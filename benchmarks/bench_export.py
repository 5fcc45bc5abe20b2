"""One model, three runtimes: the ONNX graph under ONNX Runtime, our ``Predictor`` (JAX), and
the exported stateful Keras model (TensorFlow backend), side by side in one run.

Two measures, each after a warm-up:
- latency: one stream fed one point per call; the median and 99th percentile of a call;
- throughput: 1,000 streams fed one point each per call; predictions per second.

The model is the example's architecture by default (one LSTM layer of 20 units, windows of
lahead = 1, stateful) with random weights: the weights do not change the cost. Keras is timed
with ``predict_on_batch`` (its fastest path for one batch) and ``predict`` too (what most code
calls; fewer calls, as each costs tens of milliseconds). The ONNX graph's and the Keras model's
predictions are checked against the Predictor's first, over 200 points of one stream.

    python benchmarks/bench_export.py [--cell lstm] [--layers 1] [--lahead 1] [--features 1]
        [--calls 2000] [--streams 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from lstm_stateful.core import compile_cache

compile_cache.set_xla_flags()  # as the CLI does, before JAX starts

import numpy as np  # noqa: E402

from lstm_stateful.core import cells  # noqa: E402
from lstm_stateful.core.config import DataConfig, ExperimentConfig, ModelConfig  # noqa: E402
from lstm_stateful.core.data import Scaling  # noqa: E402
from lstm_stateful.export import keras_export, onnx_graph  # noqa: E402
from lstm_stateful.models import model_io  # noqa: E402
from lstm_stateful.models.stream import Predictor  # noqa: E402


def saved_model(root: Path, cell: str, layers: int, lahead: int, features: int) -> model_io.SavedModel:
    """A stateful model of the example's size with random weights, saved and loaded back."""
    cols = tuple(f"x{i}" for i in range(features)) if features > 1 else ()
    data = DataConfig(lahead=lahead, file="series.csv", input_cols=cols) if cols else DataConfig(lahead=lahead)
    cfg = ExperimentConfig(data=data, model=ModelConfig(cell=cell, layers=layers, n_features=features))
    params = cells.init_params(np.random.default_rng(0), cfg.model)
    scaling = Scaling((0.0,) * features, (1.0,) * features, 0.0, 1.0)
    model_io.save_model(root, params, cfg, {"mode": "stateful", "seed_index": 0, "scaling": scaling, "metrics": {}})
    return model_io.load_model(root)


def call_times(call: Callable[[np.ndarray], object], points: np.ndarray, warmup: int) -> np.ndarray:
    """Seconds of each call, one point (row of ``points``) per call, after ``warmup`` calls."""
    for p in points[:warmup]:
        call(p)
    times = np.empty(len(points) - warmup)
    for i, p in enumerate(points[warmup:]):
        start = time.perf_counter()
        call(p)
        times[i] = time.perf_counter() - start
    return times


def keras_window(lahead: int, streams: int, features: int) -> Callable[[np.ndarray], np.ndarray]:
    """Values (streams, F) -> the Keras model's input (streams, lahead, F): the window a
    stream of these values has, in the model's own order (the benchmark feeds equal rows, so
    the order does not matter)."""
    return lambda v: np.repeat(v.reshape(streams, 1, features), lahead, axis=1).astype(np.float32)


def runtimes(model: model_io.SavedModel, directory: Path, streams: int) -> dict[str, Callable]:
    """name -> a call feeding one point to ``streams`` streams."""
    lahead, features = model.data.lahead, model.model.n_features
    onnx_path = directory / "model.onnx"
    onnx_graph.write_onnx(model, onnx_path)
    ours = Predictor(model, batch_size=streams)
    runner = onnx_graph.OnnxPredictor.load(onnx_path, batch_size=streams)
    stateful, _ = keras_export.keras_models(model, streams)
    window = keras_window(lahead, streams, features)
    calls = {
        "predictor (jax)": lambda v: ours.predict(v),
        "onnx runtime": lambda v: runner.predict(v),
        "keras predict_on_batch": lambda v: stateful.predict_on_batch(window(v)),
    }
    calls["keras predict"] = lambda v: stateful.predict(window(v), batch_size=streams, verbose=0)
    return calls


def check_agreement(model: model_io.SavedModel, directory: Path) -> dict[str, float]:
    """The largest gap between each runtime's predictions and the Predictor's over 200 points
    of one stream (the full windows; Keras is fed each window in the model's own order)."""
    lahead, features = model.data.lahead, model.model.n_features
    values = np.random.default_rng(1).uniform(-1, 1, (200, features)).astype(np.float32).astype(np.float64)
    expected = Predictor(model).predict(values[:, 0] if features == 1 else values)[lahead - 1 :]
    onnx_path = directory / "check.onnx"
    onnx_graph.write_onnx(model, onnx_path)
    runner = onnx_graph.OnnxPredictor.load(onnx_path)
    by_onnx = np.array([runner.predict(v[0] if features == 1 else v) for v in values]).reshape(-1)[lahead - 1 :]
    stateful, _ = keras_export.keras_models(model, 1)
    windows = np.stack([values[t - lahead + 1 : t + 1] for t in range(lahead - 1, len(values))])  # oldest first
    windows = windows if model.data.order == "oldest-first" else windows[:, ::-1]
    by_keras = np.array([stateful.predict_on_batch(w[None].astype(np.float32))[0, 0] for w in windows])
    return {"onnx runtime": float(np.max(np.abs(by_onnx - expected))),
            "keras": float(np.max(np.abs(by_keras - expected)))}  # fmt: skip


def measure(model: model_io.SavedModel, directory: Path, calls: int, streams: int) -> dict[str, dict]:
    features = model.model.n_features
    rng = np.random.default_rng(2)
    rows = {}
    one = rng.uniform(-1, 1, (calls, 1, features)).reshape(calls, *((features,) if features > 1 else ()))
    for name, call in runtimes(model, directory, 1).items():
        n = calls if "predict_on" in name or "keras" not in name else max(calls // 10, 50)  # predict is slow
        t = call_times(call, one[:n], warmup=min(50, n // 5))
        rows[name] = {"latency_p50_ms": 1e3 * float(np.median(t)), "latency_p99_ms": 1e3 * float(np.quantile(t, 0.99))}
    many = rng.uniform(-1, 1, (200, streams, features)).reshape(200, streams, *((features,) if features > 1 else ()))
    for name, call in runtimes(model, directory, streams).items():
        slow = name == "keras predict"  # tens of milliseconds a call: fewer calls
        t = call_times(call, many[:40] if slow else many, warmup=5 if slow else 20)
        rows.setdefault(name, {})["throughput_preds_per_s"] = streams / float(np.median(t))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", default="lstm", choices=("lstm", "gru", "simple"))
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--lahead", type=int, default=1)
    parser.add_argument("--features", type=int, default=1)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--json", default=None, help="Also write the rows here.")
    a = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        model = saved_model(directory / "model", a.cell, a.layers, a.lahead, a.features)
        gaps = check_agreement(model, directory)
        rows = measure(model, directory, a.calls, a.streams)
    m = model.model
    print(f"model: stateful {m.layers}-layer {m.cell}, {m.units} units, lahead {model.data.lahead}, "
          f"{m.n_features} input(s); largest gap to the Predictor over 200 points: "
          + ", ".join(f"{k} {v:.1e}" for k, v in gaps.items()))  # fmt: skip
    print(f"{'runtime':24s} {'p50 ms':>8s} {'p99 ms':>8s} {f'{a.streams} streams preds/s':>22s}")
    base = rows["predictor (jax)"]
    for name, r in rows.items():
        thr = r.get("throughput_preds_per_s")
        shown = f"{thr:14,.0f} ({thr / base['throughput_preds_per_s']:.2f}x)" if thr else f"{'-':>22s}"
        print(f"{name:24s} {r['latency_p50_ms']:8.3f} {r['latency_p99_ms']:8.3f} {shown:>22s}")
    print("latency ratios to the Predictor (p50): "
          + ", ".join(f"{k} {r['latency_p50_ms'] / base['latency_p50_ms']:.2f}x" for k, r in rows.items()))  # fmt: skip
    if a.json:
        with open(a.json, "w") as f:
            shape = {"cell": m.cell, "layers": m.layers, "units": m.units, "lahead": model.data.lahead}
            record = {"model": shape | {"features": m.n_features}, "max_gap_to_predictor": gaps, "rows": rows}
            json.dump(record, f, indent=2)


if __name__ == "__main__":
    main()
