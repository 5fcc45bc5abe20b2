"""Requests/s and latency of `lstm-stateful serve`, with its load generator in the same run.

The server is the real command (`python -m lstm_stateful.cli serve`, its own process) on
127.0.0.1 and a free port, serving a model of the example's size: a stateful LSTM of 20
units, lahead 1, one input, random weights (the weights do not change the cost), with a
fresh state file (SQLite, synchronous=FULL: every accepted request is on the disk before its
response) in the temporary directory (TMPDIR picks the disk; on a tmpfs, syncs cost nothing,
so the figures would flatter). The load generator runs in a second process, so that each gets a core of a
2-core machine: plain asyncio (uvloop when installed) on raw sockets, one HTTP/1.1
keep-alive connection per stream, request bytes built by hand, responses read by their
Content-Length, and only the status and the seq looked at, so it costs little of its core.

Closed loop: each stream sends its next request once the previous response is in, so the
streams are the concurrency. Each load runs ``--warmup`` seconds unmeasured (new streams, the
server's batch sizes compiled), then ``--seconds`` measured: requests/s counts the requests
that started and ended inside that window; latency is send-to-last-byte on the client, p50
and p99 over those requests. Every response must be 200 with the seq the stream expects (the
values it has sent), or the run stops. Rows: single values at 1, 16 and 64
concurrent streams; 100-value chunks at 64 streams (predictions/s = requests/s x 100).
Then a second server learns (`serve --learn`): a stateful LSTM(20) fleet model of the 64
series (one epoch on a random walk; no season), each single value the label of the forecast
before it, one optimizer step a round: labelled values/s = requests/s.
Server CPU is its user + system time over the row's wall time, in cores (Linux).

    python benchmarks/bench_serve.py [--seconds 5] [--warmup 2] [--batch-wait-ms MS]
        [--json benchmarks/results/serve_cpu.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.pool
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# The targets, on the 2-core machine.
TARGET_RPS, TARGET_P99_MS, TARGET_PREDS = 1500.0, 50.0, 50_000.0
TARGET_LEARN_RPS, TARGET_LEARN_P99_MS = 1000.0, 100.0
SEQ = re.compile(rb'"seq":\s*(\d+)')
READY = re.compile(r"^Serving the .* on http://(?P<host>[^\s:]+):(?P<port>\d+) ")
LOADS = (("single values", 1, 1), ("single values", 16, 1), ("single values", 64, 1), ("100-value chunks", 64, 100))
LEARN_LOAD = ("learning, single", 64, 1)
LEARN_PREFIX = "learn"  # the learning row's streams are the fleet's own series: learn-0 ... learn-63


def save_example_model(directory: Path) -> Path:
    """The example's model (stateful LSTM(20), lahead 1) with random weights."""
    import numpy as np

    from lstm_stateful.core import cells
    from lstm_stateful.core.config import DataConfig, ExperimentConfig, ModelConfig
    from lstm_stateful.core.data import Scaling
    from lstm_stateful.models import model_io

    cfg = ExperimentConfig(data=DataConfig(lahead=1), model=ModelConfig(units=20))
    params = cells.init_params(np.random.default_rng(0), cfg.model)
    saved = {"mode": "stateful", "seed_index": 0, "scaling": Scaling((0.0,), (1.0,), 0.0, 1.0), "metrics": {}}
    model_io.save_model(directory, params, cfg, saved)
    return directory


def save_fleet_model(directory: Path) -> Path:
    """A stateful LSTM(20) fleet model of 64 random walks (one epoch; standard scaling, no season)."""
    import numpy as np

    from lstm_stateful.commands.fleet import save_models
    from lstm_stateful.core.panel import Clock, Panel
    from lstm_stateful.core.panel_config import fleet_config
    from lstm_stateful.engine.fleet import run_fleet

    walks = np.cumsum(np.random.default_rng(0).normal(0, 0.05, (LEARN_LOAD[1], 64)), axis=1)
    ids = tuple(f"{LEARN_PREFIX}-{i}" for i in range(LEARN_LOAD[1]))
    panel = Panel(ids, tuple(walks), np.zeros(len(ids), int), Clock())
    settings = {"data": "x.csv", "id": "id", "time": "t", "input": "y", "horizon": 1, "units": 20, "epochs": 1,
                "seeds": 1, "scaling": "standard", "chunk": 16, "batch_size": 16, "stats": ()}  # fmt: skip
    save_models(run_fleet(fleet_config(settings), panel), directory)
    return directory / "stateful"


class Server:
    """`lstm-stateful serve` in its own process; stdout is drained by a thread (the ready line
    gives the port), stderr goes to a file."""

    def __init__(self, model: Path, state: Path, log: Path, extra: list[str]) -> None:
        argv = [sys.executable, "-m", "lstm_stateful.cli", "serve", "--model", str(model), "--state", str(state)]
        with log.open("w") as err:
            self.proc = subprocess.Popen([*argv, "--port", "0", *extra], stdout=subprocess.PIPE, stderr=err, text=True)
        self.log, self.ready = log, threading.Event()
        self.host, self.port = "", 0
        threading.Thread(target=self._drain, daemon=True).start()
        if not self.ready.wait(120):
            self.stop()
            raise SystemExit(f"the server did not start: {log.read_text()[-2000:]}")

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if not self.ready.is_set() and (m := READY.match(line)):
                self.host, self.port = m["host"], int(m["port"])
                self.ready.set()

    def cpu_seconds(self) -> float | None:
        """User + system CPU time so far (Linux's /proc), else None."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """Terminate by its pid, then kill it if it is still there."""
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# The load generator: the standard library only (and uvloop if installed), in its own process.


def _quantile(ordered: list[float], q: float) -> float:
    """The q-quantile of sorted values (the nearest rank below)."""
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(status, body) of one response, the body read by its Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    at = head.lower().find(b"content-length:") + len(b"content-length:")
    length = int(head[at : head.index(b"\r\n", at)])
    return int(head[9:12]), await reader.readexactly(length)


async def _stream(host: str, port: int, name: str, bodies: list[bytes], per: int, window: tuple[float, float]) -> list:
    """One stream, closed loop, until the window ends: (start, latency) of each request."""
    reader, writer = await asyncio.open_connection(host, port)
    head = f"POST /v1/streams/{name}/predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    head_bytes, seq, times = head.encode() + b"Content-Length: %d\r\n\r\n", 0, []
    while (start := time.perf_counter()) < window[1]:
        body = b'{"seq":%d,"values":%s}' % (seq, bodies[seq // per % len(bodies)])
        writer.write(head_bytes % len(body) + body)
        status, reply = await _read_response(reader)
        seq += per
        if status != 200 or (m := SEQ.search(reply)) is None or int(m[1]) != seq:
            raise RuntimeError(f"stream {name}: HTTP {status} {reply[:200]!r}, expected seq {seq}")
        times.append((start, time.perf_counter() - start))
    writer.close()
    return times


def generate(host: str, port: int, prefix: str, streams: int, per: int, warmup: float, seconds: float) -> dict:
    """Run one load (in the generator's process): requests/s, p50 and p99 in ms, own CPU."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    rng = random.Random(prefix)
    values = [f"{rng.uniform(-0.1, 0.1):.6f}" for _ in range(997 * per)]
    # A chunk is a JSON list; a single value goes as a bare number (the contract allows both).
    bodies = [
        (f"[{','.join(values[i : i + per])}]" if per > 1 else values[i]).encode() for i in range(0, len(values), per)
    ]
    begin = time.perf_counter() + warmup
    window = (begin, begin + seconds)

    async def everyone() -> list:
        names = [f"{prefix}-{i}" for i in range(streams)]
        return await asyncio.gather(*(_stream(host, port, n, bodies, per, window) for n in names))

    cpu = time.process_time()
    timed = [t for times in runner(everyone()) for t in times]
    measured = [lat for start, lat in timed if start >= begin and start + lat <= window[1]]
    measured.sort()
    return {
        "requests_per_s": len(measured) / seconds,
        "predictions_per_s": len(measured) * per / seconds,
        "p50_ms": 1e3 * _quantile(measured, 0.50),
        "p99_ms": 1e3 * _quantile(measured, 0.99),
        "requests": len(measured),
        "generator_cpu": (time.process_time() - cpu) / (warmup + seconds),
    }


def run_load(server: Server, pool: multiprocessing.pool.Pool, load: tuple[str, int, int], prefix: str,
             warmup: float, seconds: float) -> dict:  # fmt: skip
    """One row: the load against ``server``, with the server's CPU."""
    name, streams, per = load
    cpu, wall = server.cpu_seconds(), time.perf_counter()
    row = pool.apply(generate, (server.host, server.port, prefix, streams, per, warmup, seconds))
    used = server.cpu_seconds()
    server_cpu = None if cpu is None or used is None else (used - cpu) / (time.perf_counter() - wall)
    return {"load": name, "streams": streams, "values_per_request": per, **row, "server_cpu": server_cpu}


def learnt(server: Server) -> dict:
    """The learning server's version, optimizer steps and labels scored (GET /v1/model)."""
    import urllib.request

    with urllib.request.urlopen(f"http://{server.host}:{server.port}/v1/model", timeout=10) as reply:
        info = json.load(reply)["learning"]
    return {"version": info["version"], "updates": info["updates"], "labels": info["scores"]["labels"]}


def verdicts(rows: list[dict]) -> dict[str, bool]:
    single = next(r for r in rows if r["load"] == "single values" and r["streams"] == 64)
    chunks = next(r for r in rows if r["values_per_request"] > 1)
    learning = next(r for r in rows if r["load"] == LEARN_LOAD[0])
    return {
        "single_64_requests_per_s": single["requests_per_s"] >= TARGET_RPS,
        "single_64_p99_ms": single["p99_ms"] < TARGET_P99_MS,
        "chunks_predictions_per_s": chunks["predictions_per_s"] >= TARGET_PREDS,
        "learning_64_labelled_per_s": learning["requests_per_s"] >= TARGET_LEARN_RPS,
        "learning_64_p99_ms": learning["p99_ms"] < TARGET_LEARN_P99_MS,
    }


def show(rows: list[dict], met: dict[str, bool], a: argparse.Namespace) -> None:
    print(f"lstm-stateful serve: stateful LSTM(20), lahead 1; {os.cpu_count()} CPU cores; "
          f"{a.warmup:g} s warm-up, then {a.seconds:g} s measured per row")  # fmt: skip
    print(f"{'load':18s} {'streams':>7s} {'requests/s':>11s} {'p50 ms':>7s} {'p99 ms':>7s} "
          f"{'predictions/s':>14s} {'server CPU':>10s} {'gen CPU':>7s}")  # fmt: skip
    for r in rows:
        cpu = f"{r['server_cpu']:.2f}" if r["server_cpu"] is not None else "-"
        print(f"{r['load']:18s} {r['streams']:7d} {r['requests_per_s']:11,.0f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} "
              f"{r['predictions_per_s']:14,.0f} {cpu:>10s} {r['generator_cpu']:7.2f}")  # fmt: skip
    if learning := rows[-1].get("learning"):
        print(f"the learning server took {learning['updates']:,} optimizer steps on {learning['labels']:,} labels "
              f"(version {learning['version']:,})")  # fmt: skip
    word = {True: "met", False: "MISSED"}
    print(f"targets: 64 streams >= {TARGET_RPS:,.0f} requests/s ({word[met['single_64_requests_per_s']]}), "
          f"p99 < {TARGET_P99_MS:g} ms ({word[met['single_64_p99_ms']]}); 100-value chunks >= "
          f"{TARGET_PREDS:,.0f} predictions/s ({word[met['chunks_predictions_per_s']]}); learning at 64 streams >= "
          f"{TARGET_LEARN_RPS:,.0f} labelled values/s ({word[met['learning_64_labelled_per_s']]}), p99 < "
          f"{TARGET_LEARN_P99_MS:g} ms ({word[met['learning_64_p99_ms']]})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="Measured seconds per row.")
    parser.add_argument("--warmup", type=float, default=2.0, help="Unmeasured seconds before each row.")
    parser.add_argument("--batch-wait-ms", default=None, help="Passed to the server (default: its own).")
    parser.add_argument("--json", default=None, help="Also write the rows here.")
    a = parser.parse_args()
    extra = [] if a.batch_wait_ms is None else ["--batch-wait-ms", a.batch_wait_ms]
    with tempfile.TemporaryDirectory() as tmp, multiprocessing.get_context("spawn").Pool(1) as pool:
        model = save_example_model(Path(tmp) / "model")
        server = Server(model, Path(tmp) / "streams.sqlite", Path(tmp) / "server.log", extra)
        try:
            rows = [run_load(server, pool, load, f"load{k}", a.warmup, a.seconds) for k, load in enumerate(LOADS)]
        finally:
            server.stop()
        fleet = save_fleet_model(Path(tmp) / "fleet")
        server = Server(fleet, Path(tmp) / "learn.sqlite", Path(tmp) / "learn.log", [*extra, "--learn"])
        try:
            rows.append(run_load(server, pool, LEARN_LOAD, LEARN_PREFIX, a.warmup, a.seconds))
            rows[-1]["learning"] = learnt(server)
        finally:
            server.stop()
    met = verdicts(rows)
    show(rows, met, a)
    if a.json:
        machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
        targets = {"requests_per_s": TARGET_RPS, "p99_ms": TARGET_P99_MS, "chunk_predictions_per_s": TARGET_PREDS,
                   "learning_labelled_per_s": TARGET_LEARN_RPS, "learning_p99_ms": TARGET_LEARN_P99_MS}  # fmt: skip
        settings = {"seconds": a.seconds, "warmup": a.warmup, "batch_wait_ms": a.batch_wait_ms}
        model_shape = {"cell": "lstm", "units": 20, "layers": 1, "lahead": 1, "mode": "stateful"}
        out = {"machine": machine, "model": model_shape, "settings": settings, "targets": targets, "met": met}
        Path(a.json).write_text(json.dumps(out | {"rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
