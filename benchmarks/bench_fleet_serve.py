"""A saved fleet model served and exported, against ``predict`` on the same histories, in one run.

Given a fleet model directory (``run --id ... --save DIR``: DIR/stateful) and the panel it
forecasts (the defaults: the README's M3 monthly worked example), this

1. forecasts every series from its end with ``predict`` (in process; the reference);
2. starts ``lstm-stateful serve`` on a free loopback port (a fresh state file), feeds every
   series its whole history in one request (one client), then asks each for its forecast
   of the model's horizon: seconds in all and per series, and the worst relative gap to
   ``predict`` over every series and step;
3. exports the model's one-step ONNX graph and runs every --onnx-every-th series through it
   under ONNX Runtime (its history, then the horizon rolled on its own forecasts): seconds
   and the worst relative gap to ``predict``.

    python benchmarks/bench_fleet_serve.py --model runs/m3-models/stateful --data m3.csv \\
        [--id unique_id --time ds --input y] [--onnx-every 14] [--json out.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lstm_stateful.commands import fleet_predict
from lstm_stateful.core.panel import Panel
from lstm_stateful.export.fleet_onnx import fleet_state_tensors, write_fleet_onnx
from lstm_stateful.io.panel_file import read_panel
from lstm_stateful.models.fleet_model import FleetModel, load_fleet_model

READY = re.compile(r"on http://127\.0\.0\.1:(\d+) ")


def _post(conn: http.client.HTTPConnection, path: str, body: dict) -> dict:
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    reply = conn.getresponse()
    data = json.loads(reply.read())
    if reply.status != 200:
        raise SystemExit(f"{path}: {reply.status} {data}")
    return data


def _gap(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.max(np.abs(got - expected) / np.maximum(np.abs(expected), 1e-12)))


def served(model_dir: Path, panel: Panel, expected: np.ndarray, horizon: int, scratch: Path) -> dict:
    """Every series through a real server: its history, then its forecast."""
    argv = [sys.executable, "-m", "lstm_stateful.cli", "serve", "--model", str(model_dir), "--port", "0",
            "--state", str(scratch / "streams.sqlite")]  # fmt: skip
    log = scratch / "serve.out"
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (m := READY.search(log.read_text())):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=60)
        start = time.perf_counter()
        for name, first, values in zip(panel.ids, panel.starts, panel.values, strict=True):
            label = panel.clock.label(int(first))
            time_of_first = float(label) if panel.clock.kind == "number" else label
            _post(conn, f"/v1/streams/{name}/predict", {"seq": 0, "values": values.tolist(), "start": time_of_first})
        fed = time.perf_counter() - start
        got = np.array([_post(conn, f"/v1/streams/{n}/forecast", {"horizon": horizon})["forecast"] for n in panel.ids])
        asked = time.perf_counter() - start - fed
    finally:
        proc.terminate()
        proc.wait(30)
    n = len(panel)
    return {"feed_s": fed, "feed_ms_per_series": 1e3 * fed / n, "forecast_s": asked,
            "forecast_ms_per_series": 1e3 * asked / n, "worst_relative_gap": _gap(got, expected)}  # fmt: skip


def onnx_run(model: FleetModel, panel: Panel, expected: np.ndarray, every: int, scratch: Path) -> dict:
    """Every ``every``-th series through the exported graph under ONNX Runtime: its history,
    then (recursive) the horizon rolled on its own forecasts, or (direct) the H values the
    last call gives."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(write_fleet_onnx(model, scratch / "fleet.onnx")[0]))
    scaling, _ = fleet_predict.scaling_for(model, panel)  # trained, or from a new series' first values
    period, horizon = model.config.panel.period, expected.shape[1]
    start, worst, picked = time.perf_counter(), 0.0, range(0, len(panel), every)
    for s in picked:
        state = {t.name: np.zeros([1 if d == "B" else d for d in t.shape], t.dtype) for t in fleet_state_tensors(model)}
        state["loc"][0], state["scale"][0] = scaling.loc[s], scaling.scale[s]
        state["phase"][0] = panel.starts[s] % period
        steps: list[np.ndarray] = []
        for v in panel.values[s]:
            y, *nxt = session.run(None, {"value": np.array([v]), "own": np.array([False])} | state)
            state = dict(zip(state, nxt, strict=True))
        steps.append(y[0])
        while sum(len(x) for x in steps) < horizon:
            y, *nxt = session.run(None, {"value": np.zeros(1), "own": np.array([True])} | state)
            state = dict(zip(state, nxt, strict=True))
            steps.append(y[0])
        worst = max(worst, _gap(np.concatenate(steps)[:horizon], expected[s]))
    return {"series": len(picked), "seconds": time.perf_counter() - start, "worst_relative_gap": worst}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a saved fleet model directory")
    parser.add_argument("--data", type=Path, required=True, help="the panel file")
    parser.add_argument("--id", default="unique_id")
    parser.add_argument("--time", default="ds")
    parser.add_argument("--input", default="y")
    parser.add_argument("--onnx-every", type=int, default=14, help="run every N-th series through ONNX")
    parser.add_argument("--json", default=None, help="also write the measurements here")
    a = parser.parse_args()
    model = load_fleet_model(a.model)
    panel = fleet_predict.aligned(model, read_panel(a.data, a.id, a.time, a.input))
    horizon = model.config.panel.horizon
    expected = fleet_predict.forecast(model, panel, horizon)
    with tempfile.TemporaryDirectory() as tmp:
        record = {
            "series": len(panel),
            "horizon": horizon,
            "served": served(a.model, panel, expected, horizon, Path(tmp)),
        }
        record["onnx"] = onnx_run(model, panel, expected, a.onnx_every, Path(tmp))
    s, o = record["served"], record["onnx"]
    print(f"served: {record['series']} histories in {s['feed_s']:.1f} s ({s['feed_ms_per_series']:.1f} ms a series), "
          f"{horizon}-step forecasts in {s['forecast_s']:.1f} s ({s['forecast_ms_per_series']:.1f} ms a series); "
          f"worst relative gap to predict {s['worst_relative_gap']:.1e}")  # fmt: skip
    gap = o["worst_relative_gap"]
    print(f"onnx: {o['series']} series in {o['seconds']:.1f} s; worst relative gap to predict {gap:.1e}")
    if a.json:
        Path(a.json).write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
