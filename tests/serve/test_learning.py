"""``serve --learn``: a fleet model that learns from its streams while it serves.

Through the app over HTTP (in process), beside a frozen server fed the same streams: after
a drift the learning server's one-step errors fall well below the frozen one's, and the
drift test raises its alarm; without drift learning does no harm. Through the service: the
replay log gives the weights bit for bit (with a bounded log, across a restart), a retry
learns nothing, a learning model worse than the frozen one rolls back. A real process
killed with -9 under load and restarted: the weights still equal the log's replay, and
every acknowledged request is in the log. The refusals."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jax
import numpy as np
import pytest

from lstm_stateful.commands import serve as serve_cmd
from lstm_stateful.commands.fleet import save_models
from lstm_stateful.core.panel import Clock, Panel, PanelScaling
from lstm_stateful.core.panel_config import fleet_config
from lstm_stateful.engine.fleet import run_fleet
from lstm_stateful.models import fleet_stream as fs
from lstm_stateful.models.fleet_model import CONFIG_FILE, load_fleet_model
from lstm_stateful.serve import learner as lr
from lstm_stateful.serve.app import Settings, build_app, fleet_info, model_info
from lstm_stateful.serve.engine import Batched, Engine
from lstm_stateful.serve.fleet_engine import FleetEngine
from lstm_stateful.serve.learning_engine import LearningEngine, LearningFleetEngine, replay
from lstm_stateful.serve.ops import Predict, request_sha256
from lstm_stateful.serve.store import Store
from lstm_stateful.serve.streams import Service
from tests.serve.conftest import Servers, refused, save_model, serve_client

P = 12  # the family's period and the model's season
CHANGE = 150  # the step at which the drifting streams gain a trend


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def family(n: int, length: int, seed: int, change: int | None = None) -> np.ndarray:
    """n series (n, length): a yearly cycle around 100 with noise; from ``change`` on, a
    trend of 1.5 a step that the model never saw."""
    rng, t = np.random.default_rng(seed), np.arange(length)
    rows = [100 + 10 * np.sin(2 * np.pi * (t + s) / P) + rng.normal(0, 1.0, length) for s in range(n)]
    trend = 0.0 if change is None else np.where(t >= change, (t - change) * 1.5, 0.0)
    return np.array(rows) + trend


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stateful recursive fleet model of the family (24 series of 96 steps)."""
    panel = Panel(tuple(f"s{i}" for i in range(24)), tuple(family(24, 96, 0)), np.zeros(24, int), Clock())
    settings = {"data": "x.csv", "id": "id", "time": "t", "input": "y", "horizon": 6, "units": 8, "season": P,
                "epochs": 30, "seeds": 1, "chunk": 24, "batch_size": 8, "stats": ()}  # fmt: skip
    directory = tmp_path_factory.mktemp("learn")
    save_models(run_fleet(fleet_config(settings), panel), directory)
    return directory / "stateful"


def _identity(directory: Path) -> str:
    return serve_cmd.fleet_identity(json.loads((directory / CONFIG_FILE).read_text()))


@contextlib.asynccontextmanager
async def client_of(engine: Batched, state: Path, directory: Path) -> AsyncIterator[httpx.AsyncClient]:
    meta = json.loads((directory / CONFIG_FILE).read_text())
    with Store.open(state, _identity(directory)) as store:
        settings = Settings(snapshot_root=state.parent)
        app = build_app(Service(engine, store), fleet_info(load_fleet_model(directory), meta), settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield client


async def _one_step_errors(client: httpx.AsyncClient, series: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Feed every series one value a request, all at once each step; the absolute error of
    each one-step forecast (NaN while there is none) (n, length - 1), and each step's version."""
    errors, versions = np.full((series.shape[0], series.shape[1] - 1), np.nan), []
    for t in range(series.shape[1]):

        async def post(i: int, t: int = t) -> dict:
            body = {"seq": t, "values": [series[i, t]]} | ({"start": 0} if t == 0 else {})
            r = await client.post(f"/v1/streams/d{i}/predict", json=body)
            assert r.status_code == 200, r.text
            return r.json()

        answers = await asyncio.gather(*(post(i) for i in range(series.shape[0])))
        versions.append(answers[0]["version"])
        if t + 1 < series.shape[1]:
            for i, a in enumerate(answers):
                if a["predictions"][0] is not None:
                    errors[i, t] = abs(a["predictions"][0] - series[i, t + 1])
    return errors, versions


async def _side_by_side(model_dir: Path, tmp_path: Path, series: np.ndarray) -> tuple[np.ndarray, ...]:
    """The one-step errors of a learning and a frozen server fed the same streams, and the learner's info."""
    model = load_fleet_model(model_dir)
    async with client_of(LearningFleetEngine(model, lr.LearnConfig(), max_batch=8), tmp_path / "l.sqlite",
                         model_dir) as learning:  # fmt: skip
        learnt, versions = await _one_step_errors(learning, series)
        info = (await learning.get("/v1/model")).json()["learning"]
        metrics = (await learning.get("/metrics")).text
    async with client_of(FleetEngine(model, max_batch=8), tmp_path / "f.sqlite", model_dir) as frozen:
        fixed, fixed_versions = await _one_step_errors(frozen, series)
    assert set(fixed_versions) == {0} and versions[0] == 0 and versions == sorted(versions)
    # An answer carries the version that made it; the round's update follows it.
    assert info["version"] - 1 <= versions[-1] <= info["version"] == info["updates"] + info["rollbacks"]
    assert info["version"] > 100
    assert f"lstm_stateful_model_version {float(info['version'])}" in metrics
    assert f"lstm_stateful_learning_updates_total {float(info['updates'])}" in metrics
    return learnt, fixed, info


@pytest.mark.anyio
async def test_after_a_drift_the_learning_server_forecasts_far_better(model_dir: Path, tmp_path: Path) -> None:
    series = family(8, 300, 1, change=CHANGE)
    learnt, fixed, info = await _side_by_side(model_dir, tmp_path, series)
    before = np.nanmean(learnt[:, P : CHANGE - 1]), np.nanmean(fixed[:, P : CHANGE - 1])
    after = np.nanmean(learnt[:, CHANGE + 30 :]), np.nanmean(fixed[:, CHANGE + 30 :])
    print(f"one-step MAE before the change: learning {before[0]:.3f}, frozen {before[1]:.3f}; "
          f"after: learning {after[0]:.3f}, frozen {after[1]:.3f}; {info}")  # fmt: skip
    assert after[0] < 0.5 * after[1]
    assert before[0] < 1.15 * before[1]
    assert info["drift"]["alarms"] >= 1 and info["drift"]["last_alarm_version"] >= CHANGE - P - 1
    assert info["scores"]["learning_mae"] < info["scores"]["frozen_mae"]


@pytest.mark.anyio
async def test_without_drift_learning_does_no_harm(model_dir: Path, tmp_path: Path) -> None:
    series = family(8, 240, 2)
    learnt, fixed, info = await _side_by_side(model_dir, tmp_path, series)
    print(f"one-step MAE: learning {np.nanmean(learnt):.3f}, frozen {np.nanmean(fixed):.3f}; {info}")
    assert np.nanmean(learnt) < 1.1 * np.nanmean(fixed)
    assert info["drift"]["alarms"] == 0


def _rounds(service: Service, series: np.ndarray, steps: range) -> list[bytes]:
    """Feed every series one value a round over ``steps``; the last round's bodies."""
    bodies: list[bytes] = []
    for t in steps:
        ops = []
        for i in range(series.shape[0]):
            v = series[i, t : t + 1, None]
            start = 0 if t == 0 else None
            ops.append(Predict(f"r{i}", t, v, request_sha256(v, start), start))
        outcomes = service.process(ops)
        assert all(o.status == 200 for o in outcomes), outcomes
        bodies = [o.body for o in outcomes]
    return bodies


def _same_weights(engine: LearningFleetEngine, a: lr.Weights, b: lr.Weights) -> bool:
    return lr.encode_weights(engine.weights_codec, a) == lr.encode_weights(engine.weights_codec, b)


def test_the_log_replays_to_the_same_weights_across_a_restart_and_a_retry_learns_nothing(
    model_dir: Path, tmp_path: Path
) -> None:
    model, cfg, state = load_fleet_model(model_dir), lr.LearnConfig(keep=5, lr=1e-3), tmp_path / "s.sqlite"
    series = family(4, 60, 3, change=30)
    with Store.open(state, "m") as store:
        engine = LearningFleetEngine(model, cfg, max_batch=4)
        last = _rounds(Service(engine, store), series, range(40))
        assert engine.version() > 20 and _same_weights(engine, replay(engine, store), engine.learner.current)
        logged = store._db.execute("SELECT count(*) FROM learn_log").fetchone()[0]
        checkpoints = [v for (v,) in store._db.execute("SELECT version FROM learn_checkpoints ORDER BY version")]
        assert logged <= 2 * cfg.keep and len(checkpoints) == 2 and checkpoints[-1] % cfg.keep == 0
        before = engine.learner
    with Store.open(state, "m") as store:  # a restart: the learner as committed, and it goes on
        engine = LearningFleetEngine(model, cfg, max_batch=4)
        service = Service(engine, store)
        assert lr.info(engine.learner) == lr.info(before) and _same_weights(engine, engine.learner.current,
                                                                             before.current)  # fmt: skip
        v = series[0, 39:40, None]
        again = service.process([Predict("r0", 39, v, request_sha256(v, None))])
        assert again[0].body == last[0]  # the retry was answered, not applied: nothing learnt
        assert engine.learner is before or lr.info(engine.learner) == lr.info(before)
        _rounds(service, series, range(40, 60))
        assert engine.version() > before.current.version
        assert _same_weights(engine, replay(engine, store), engine.learner.current)


def test_a_learning_model_worse_than_the_frozen_one_rolls_back_to_its_best(model_dir: Path, tmp_path: Path) -> None:
    model = load_fleet_model(model_dir)
    cfg = lr.LearnConfig(lr=0.3, guard=16, margin=0.0)  # a rate that wrecks the model
    with Store.open(tmp_path / "s.sqlite", "m") as store:
        engine = LearningFleetEngine(model, cfg, max_batch=4)
        _rounds(Service(engine, store), family(4, 60, 4), range(60))
        kinds = [kind for (kind,) in store._db.execute("SELECT kind FROM learn_log")]
        assert engine.learner.rollbacks >= 1 and kinds.count("rollback") == engine.learner.rollbacks
        assert _same_weights(engine, replay(engine, store), engine.learner.current)
        # Right after a rollback, the weights are the best version's.
        at = [v for (v,) in store._db.execute("SELECT version FROM learn_log WHERE kind = 'rollback'")][-1]
        blob = store._db.execute("SELECT blob FROM learn_log WHERE version = ?", (at,)).fetchone()[0]
        restored = lr.decode_weights(engine.weights_codec, at, blob)
        best = engine.learner.best if engine.learner.best.version <= at else None
        if best is not None:
            assert _same_weights(engine, restored, best)


@pytest.mark.anyio
async def test_snapshot_model_and_metrics(model_dir: Path, tmp_path: Path) -> None:
    model = load_fleet_model(model_dir)
    engine = LearningFleetEngine(model, lr.LearnConfig(lr=1e-3), max_batch=8)
    async with client_of(engine, tmp_path / "s.sqlite", model_dir) as c:
        await _one_step_errors(c, family(4, 40, 5, change=20))
        r = await c.post("/v1/model/snapshot", json={"directory": "snap"})
        assert r.status_code == 201, r.text
        assert r.json() == {"directory": str(tmp_path / "snap"), "version": engine.version()} and engine.version() > 0
        saved = load_fleet_model(tmp_path / "snap")
        for a, b in zip(jax.tree.leaves(saved.params), jax.tree.leaves(engine.learner.current.params), strict=True):
            np.testing.assert_array_equal(a, b)
        (tmp_path / "file").write_text("x")
        (tmp_path / "out").symlink_to(tmp_path.parent)
        for directory, status, text in (("snap", 409, "exists and is not an empty directory"),
                                        ("file", 409, "exists and is not an empty directory"),
                                        ("nothing/sub", 404, "does not exist"),
                                        ("file/sub", 409, "is not a directory"),
                                        (str(tmp_path.parent / "abs"), 403, "is outside the snapshot root"),
                                        ("../x", 403, "is outside the snapshot root"),
                                        ("out/x", 403, "is outside the snapshot root"),
                                        ("x" * 256, 422, "must be a path of 1 to 255 characters"),
                                        ("", 422, "directory: must be a path")):  # fmt: skip
            r = await c.post("/v1/model/snapshot", json={"directory": directory})
            assert r.status_code == status and text in r.json()["detail"], r.text
        assert (await c.post("/v1/model/snapshot", json={"dir": "x"})).status_code == 422
        info = (await c.get("/v1/model")).json()
        assert info["kind"] == "fleet" and info["learning"]["version"] == engine.version()
        assert info["learning"]["scores"]["labels"] > 0
        assert 'lstm_stateful_prequential_mae{model="frozen",window="all"}' in (await c.get("/metrics")).text


def test_refusals_at_start(model_dir: Path, tmp_path: Path) -> None:
    panel = Panel(tuple(f"s{i}" for i in range(4)), tuple(family(4, 60, 7)), np.zeros(4, int), Clock())
    settings = {"data": "x.csv", "id": "id", "time": "t", "input": "y", "horizon": 3, "units": 4, "season": P,
                "epochs": 1, "seeds": 1, "chunk": 24, "batch_size": 4, "stats": (), "strategy": "direct"}  # fmt: skip
    save_models(run_fleet(fleet_config(settings), panel), tmp_path / "direct")
    forecast = save_model(tmp_path / "forecast", task="forecast", horizon=2, tsteps=1)
    cases: list[tuple[list[str], str]] = [
        (["--model", str(tmp_path / "direct" / "stateful"), "--learn"], "is a direct fleet model"),
        (
            ["--model", str(forecast), "--learn", "--learn-window", "2"],
            "--learn-window: must exceed the model's horizon",
        ),
        (["--model", str(model_dir), "--learn", "--learn-lr", "0"], "--learn-lr: must be a number in (0, 1]"),
        (["--model", str(model_dir), "--learn", "--learn-window", "0"], "--learn-window"),
        (["--model", str(model_dir), "--learn-window", "8"], "--learn-window: is a setting of --learn"),
    ]
    for args, text in cases:
        code, lines = refused(*args, "--state", str(tmp_path / "s.sqlite"))
        assert code == 2 and len(lines) == 1 and text in lines[0], (args, lines)
    assert not (tmp_path / "s.sqlite").exists()


def test_kill_9_while_learning_under_load(servers: Servers, model_dir: Path, tmp_path: Path) -> None:
    """16 streams of single values; SIGKILL at a random moment; a restart on the same state
    file; the rest of the values; SIGTERM. No stream lost what it was told, the weights
    equal the log's replay bit for bit, and every request acknowledged with a label is in
    the log."""
    state, n, streams, delay = tmp_path / "learn.sqlite", 5000, 16, random.uniform(1.0, 2.5)
    print(f"SIGKILL {delay:.3f} s into the load")  # shown with a failure, to reproduce its moment
    series, args = family(streams, n, 6, change=200), ("--learn", "--learn-lr", "1e-3")
    print(f"{streams} streams of up to {n} values")
    first = servers.start(model_dir, state, *args)
    clients = [serve_client.StreamClient(first.url, f"k{i}", retry_for=0) for i in range(streams)]
    acked: list[list[int]] = [[] for _ in range(streams)]
    running = threading.Event()

    def feed(i: int, killed: bool) -> None:
        client, stop = clients[i], n if killed else clients[i].seq + 60  # after the restart, 60 more each
        while client.seq < stop:
            seq = client.seq
            try:
                client.send([float(series[i, seq])], **({"start": 0} if seq == 0 else {}))
            except Exception:
                if killed:
                    return  # client.seq is what was acknowledged
                raise
            acked[i].append(seq)
            running.set()

    with ThreadPoolExecutor(streams) as pool:
        futures = [pool.submit(feed, i, True) for i in range(streams)]
        assert running.wait(60)
        time.sleep(delay)
        first.kill()
        for f in futures:
            f.result(timeout=60)
    assert all(len(a) < n for a in acked), "a stream finished before the kill: make n larger"
    second = servers.start(model_dir, state, *args, port=first.port)
    for i in range(streams):
        clients[i] = serve_client.StreamClient(second.url, f"k{i}", retry_for=0, seq=clients[i].seq)
        assert clients[i].info()["seq"] in (clients[i].seq, clients[i].seq + 1)  # nothing acknowledged lost
    with ThreadPoolExecutor(streams) as pool:
        for f in [pool.submit(feed, i, False) for i in range(streams)]:
            f.result(timeout=120)
    second.stop()
    assert second.proc.returncode == 0
    engine = LearningFleetEngine(load_fleet_model(model_dir), lr.LearnConfig(lr=1e-3))
    with Store.open(state, serve_cmd.learning_identity(_identity(model_dir), engine.cfg)) as store:
        Service(engine, store)
        assert engine.version() > 100 and _same_weights(engine, replay(engine, store), engine.learner.current)
        logged = [tuple(r) for (text,) in store._db.execute("SELECT requests FROM learn_log") for r in json.loads(text)]
    labelled = {(f"k{i}", seq) for i in range(streams) for seq in acked[i] if seq >= P}
    assert labelled <= set(logged), sorted(labelled - set(logged))[:5]
    assert len(logged) == len(set(logged))  # each request learnt from once, the retried ones too
    for c in clients:
        c.close()


# A single-series model learns from delayed targets, sent with later requests.


def _single(tmp_path: Path) -> tuple[Path, Any]:
    from lstm_stateful.core.config import ExperimentConfig
    from lstm_stateful.models.model_io import CONFIG_FILE as MODEL_FILE
    from lstm_stateful.models.model_io import load_model

    directory = save_model(tmp_path / "single", lahead=3, units=8)
    meta = json.loads((directory / MODEL_FILE).read_text())
    return directory, (load_model(directory), ExperimentConfig.from_dict(meta["experiment"]), meta)


@contextlib.asynccontextmanager
async def single_client(engine: Engine, state: Path, meta: dict) -> AsyncIterator[tuple[httpx.AsyncClient, Store]]:
    with Store.open(state, "single") as store:
        app = build_app(Service(engine, store), model_info(engine.model, meta), Settings())
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield client, store


def _moving_average(x: np.ndarray) -> np.ndarray:
    """The targets the streams teach: the mean of each value and the one before (n, length)."""
    return np.concatenate([x[:, :1], (x[:, 1:] + x[:, :-1]) / 2], axis=1)


@pytest.mark.anyio
async def test_a_single_series_model_learns_from_delayed_targets(tmp_path: Path) -> None:
    """Random weights; each request carries the target of the value two requests back:
    the learning model's errors on the targets fall far below the frozen model's."""
    _, (model, experiment, meta) = _single(tmp_path)
    engine = LearningEngine(model, experiment, lr.LearnConfig(window=8, lr=1e-2, guard=2000), max_batch=8)
    x = np.random.default_rng(8).normal(0, 1, (8, 300))
    y = _moving_average(x)
    async with single_client(engine, tmp_path / "s.sqlite", meta) as (c, store):
        for t in range(300):

            async def post(i: int, t: int = t) -> None:
                body: dict = {"seq": t, "values": [x[i, t]]}
                if t >= 2:
                    body["targets"] = [{"seq": t - 2, "value": y[i, t - 2]}]
                r = await c.post(f"/v1/streams/u{i}/predict", json=body)
                assert r.status_code == 200, r.text

            await asyncio.gather(*(post(i) for i in range(8)))
        info = (await c.get("/v1/model")).json()["learning"]
        scores = info["scores"]
        print(info)
        assert scores["labels"] == 8 * 298 - 8 * 2  # the first two values' predictions wait for a full window
        assert scores["learning_recent_mae"] < 0.3 * scores["frozen_recent_mae"]
        assert info["version"] > 250 and _same_weights(engine, replay(engine, store), engine.learner.current)


@pytest.mark.anyio
async def test_targets_are_checked_and_applied_once(tmp_path: Path) -> None:
    _, (model, experiment, meta) = _single(tmp_path)

    async def post(c: httpx.AsyncClient, seq: int, values: list, targets: object = None, raw: bytes = b"") -> Any:
        body = {"seq": seq, "values": values} | ({} if targets is None else {"targets": targets})
        return await c.post("/v1/streams/u/predict", content=raw or json.dumps(body).encode())

    async with single_client(Engine(model), tmp_path / "frozen.sqlite", meta) as (c, _):
        r = await post(c, 0, [1.0], [{"seq": 0, "value": 1.0}])
        assert r.status_code == 422 and "this server does not learn" in r.json()["detail"]
    engine = LearningEngine(model, experiment, lr.LearnConfig(window=4), max_batch=8)
    async with single_client(engine, tmp_path / "s.sqlite", meta) as (c, _):
        assert (await post(c, 0, [0.1, 0.2, 0.3])).status_code == 200
        bad = [([{"seq": 4, "value": 1.0}], 409, "seq 4 is not one of the stream's latest values: give one in [0, 3]"),
               ([{"seq": 3, "value": 1.0}, {"seq": 3, "value": 2.0}], 409, "a seq is given twice"),
               ([{"seq": 2}], 422, "each must be an object"), ([], 422, "must be a list of 1 to 4"),
               ([{"seq": -1, "value": 1.0}], 422, "seq must be an integer >= 0")]  # fmt: skip
        for targets, status, text in bad:
            r = await post(c, 3, [0.4], targets)
            assert r.status_code == status and text in r.json()["detail"], r.text
        r = await post(c, 3, [0.4], raw=b'{"seq": 3, "values": [0.4], "targets": [{"seq": 2, "value": 1e999}]}')
        assert r.status_code == 422 and "finite number" in r.json()["detail"]
        first = await post(c, 3, [0.4], [{"seq": 3, "value": 0.5}, {"seq": 2, "value": 0.25}])
        assert first.status_code == 200 and engine.version() == 1
        again = await post(c, 3, [0.4], [{"seq": 3, "value": 0.5}, {"seq": 2, "value": 0.25}])
        assert again.json() == first.json() and engine.version() == 1  # a retry: answered, nothing applied
        other = await post(c, 3, [0.4], [{"seq": 3, "value": 0.6}])
        assert other.status_code == 409 and "other values" in other.json()["detail"]
        twice = await post(c, 4, [0.5], [{"seq": 3, "value": 0.5}])
        assert twice.status_code == 409 and "seq 3 already had its target" in twice.json()["detail"]
        assert (await c.get("/v1/streams/u")).json()["seq"] == 4  # the refused request applied nothing
        for seq in range(4, 9):
            assert (await post(c, seq, [0.5])).status_code == 200
        old = await post(c, 9, [0.5], [{"seq": 2, "value": 1.0}])
        assert old.status_code == 409 and "give one in [6, 9]" in old.json()["detail"]
        assert old.json()["seq"] == 9


@pytest.mark.anyio
async def test_a_single_series_forecast_labels_itself(tmp_path: Path) -> None:
    """A model of task forecast (2 steps ahead), random weights: each value is the target of
    the one 2 before it; no targets are sent (and any are refused)."""
    from lstm_stateful.core.config import ExperimentConfig
    from lstm_stateful.models.model_io import CONFIG_FILE as MODEL_FILE
    from lstm_stateful.models.model_io import load_model

    directory = save_model(tmp_path / "forecast", task="forecast", horizon=2, lahead=3, tsteps=1)
    meta = json.loads((directory / MODEL_FILE).read_text())
    engine = LearningEngine(load_model(directory), ExperimentConfig.from_dict(meta["experiment"]),
                            lr.LearnConfig(window=8, lr=1e-2, guard=1000), max_batch=8)  # fmt: skip
    t = np.arange(200)
    x = np.sin(2 * np.pi * (t[None, :] + np.arange(8)[:, None]) / 10)
    async with single_client(engine, tmp_path / "s.sqlite", meta) as (c, store):
        r = await c.post(
            "/v1/streams/u0/predict", json={"seq": 0, "values": [0.1], "targets": [{"seq": 0, "value": 1}]}
        )
        assert r.status_code == 422 and "label its predictions by themselves" in r.json()["detail"]
        for step in range(200):
            posts = (c.post(f"/v1/streams/u{i}/predict", json={"seq": step, "values": [x[i, step]]}) for i in range(8))
            answers = await asyncio.gather(*posts)
            assert all(a.status_code == 200 for a in answers)
        scores = (await c.get("/v1/model")).json()["learning"]["scores"]
        print(scores)
        # Value k is labelled by value k + 2; the first 2 values' predictions wait for a full window.
        assert scores["labels"] == 8 * (200 - 2 - 2)
        assert scores["learning_recent_mae"] < 0.3 * scores["frozen_recent_mae"]
        assert _same_weights(engine, replay(engine, store), engine.learner.current)


def test_a_fleet_streams_window_and_anchor_are_its_latest_values(model_dir: Path, tmp_path: Path) -> None:
    """K = 4. A stream's first request of 20 values; its next single value's window is the
    4 values before it and itself, from the state after the first 16 values (computed with
    the weights as saved: the first round's update came after)."""
    model = load_fleet_model(model_dir)
    engine = LearningFleetEngine(model, lr.LearnConfig(window=4), max_batch=4)
    values = family(1, 21, 9)[0]
    with Store.open(tmp_path / "s.sqlite", "m") as store:
        service = Service(engine, store)
        for seq, chunk in ((0, values[:20]), (20, values[20:])):
            start = 0 if seq == 0 else None
            service.process([Predict("s3", seq, chunk[:, None], request_sha256(chunk[:, None], start), start)])
        blob = store._db.execute("SELECT blob FROM learn_log ORDER BY version DESC LIMIT 1").fetchone()[0]
    (window,) = lr.decode_windows(blob, engine.window_template())
    k = model.ids.index("s3")
    scaling = PanelScaling(model.scaling.kind, model.scaling.loc[k : k + 1], model.scaling.scale[k : k + 1])
    state = fs.initial_state(model, scaling.loc, scaling.scale, np.zeros(1, np.int64))
    anchor, _ = fs.feed(model, model.params, state, values[None, :16])
    for got, want in zip(jax.tree.leaves(window.anchor), jax.tree.leaves(anchor.core), strict=True):
        np.testing.assert_allclose(np.asarray(got)[:1], np.asarray(want), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(window.zs[:5, 0], scaling.to_model(values[None, 16:21])[0], rtol=1e-6)
    assert window.fed[:5, 0].all() and not window.fed[5:, 0].any()
    assert window.label[:, 0].tolist() == [False] * 4 + [True] + [False] * (len(window.label) - 5)


def test_a_target_scores_the_prediction_of_its_own_value_and_only_its_streams(tmp_path: Path) -> None:
    """Two streams in one round, one sending a target: only that label counts, and it is
    scored against the prediction the server answered for that very value; the other
    stream's values wait for their own targets."""
    _, (model, experiment, _) = _single(tmp_path)
    engine = LearningEngine(model, experiment, lr.LearnConfig(window=8), max_batch=4)
    x = np.random.default_rng(3).normal(0, 1, (2, 7))

    def op(i: int, seq: int, values: np.ndarray, targets: tuple = ()) -> Predict:
        v = values[:, None]
        return Predict(f"u{i}", seq, v, request_sha256(v, None, targets), targets=targets)

    with Store.open(tmp_path / "s.sqlite", "m") as store:
        service = Service(engine, store)
        first = service.process([op(0, 0, x[0, :6]), op(1, 0, x[1, :6])])
        predicted = json.loads(first[0].body)["predictions"][3]  # value 3 of stream u0, data units
        service.process([op(0, 6, x[0, 6:], ((3, 0.7),)), op(1, 6, x[1, 6:])])
        scores = engine.learner.scores
        assert scores.labels == 1 and engine.version() == 1
        want = abs(predicted - 0.7) / model.scaling.target_scale  # model units: the target's scale
        assert scores.learning_sum == pytest.approx(want, rel=1e-6) == scores.frozen_sum
        later = service.process([op(1, 7, x[1, :1], ((3, 0.2),))])
        assert later[0].status == 200 and engine.learner.scores.labels == 2
