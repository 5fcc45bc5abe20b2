"""Serving a fleet model: each series a stream. Through the app (in process) and a real
process: forecasts equal ``predict``'s from the same history, whatever the chunks; a new
series scales itself from its first values; a forecast consumes nothing; the refusals;
kill -9 and a restart continue every series where it was acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import numpy as np
import pytest

from lstm_stateful.commands import fleet_predict
from lstm_stateful.commands import serve as serve_cmd
from lstm_stateful.commands.fleet import save_models
from lstm_stateful.core.panel import Clock, Panel
from lstm_stateful.core.panel_config import fleet_config
from lstm_stateful.engine.fleet import run_fleet
from lstm_stateful.models.fleet_model import CONFIG_FILE, FleetModel, load_fleet_model
from lstm_stateful.serve.app import Settings, build_app, fleet_info
from lstm_stateful.serve.fleet_engine import FleetEngine
from lstm_stateful.serve.store import Store
from lstm_stateful.serve.streams import Service
from tests.serve.conftest import Servers, serve_client

H, P = 4, 6
MONTHS = Clock("month", 2000 * 12, 1.0, 1, dates=True)  # January 2000 is ordinal 0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _panel() -> Panel:
    rng = np.random.default_rng(5)
    lengths = (30, 37, 26, 41, 33)
    values = tuple(
        50 + 8 * np.sin(2 * np.pi * (np.arange(n) + 2 * s) / P) + rng.normal(0, 1.0, n) for s, n in enumerate(lengths)
    )
    return Panel(tuple(f"s{s}" for s in range(len(lengths))), values, np.array([0, 4, 9, 2, 7]), MONTHS)


def _saved(tmp_path_factory: pytest.TempPathFactory, **extra: object) -> Path:
    settings = {"data": "x.csv", "id": "id", "time": "t", "input": "y", "horizon": H, "units": 5}
    settings |= {"epochs": 2, "seeds": 2, "lahead": 3, "chunk": 8, "batch_size": 4, "stats": ()} | extra
    result = run_fleet(fleet_config(settings), _panel())
    directory = tmp_path_factory.mktemp("fleet")
    save_models(result, directory)
    return directory


@pytest.fixture(scope="module", params=["recursive", "direct"])
def fleet_models(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both modes of a seasonal fleet (DIR/stateful, DIR/stateless)."""
    return _saved(tmp_path_factory, season=P, strategy=request.param)


@pytest.fixture(scope="module")
def fleet_dir(fleet_models: Path) -> Path:
    return fleet_models / "stateful"


class Served(NamedTuple):
    client: httpx.AsyncClient
    model: FleetModel


@contextlib.asynccontextmanager
async def served(directory: Path, state: Path, **settings: Any) -> AsyncIterator[Served]:
    model = load_fleet_model(directory)
    meta = json.loads((directory / CONFIG_FILE).read_text())
    with Store.open(state, serve_cmd.fleet_identity(meta)) as store:
        app = build_app(Service(FleetEngine(model, max_batch=8), store), fleet_info(model, meta), Settings(**settings))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield Served(client, model)


async def _feed(c: httpx.AsyncClient, name: str, values: np.ndarray, cuts: tuple[int, ...], start: str) -> list:
    """A series' values in chunks ending at ``cuts``; the predictions of every request."""
    preds, seq = [], 0
    for a, b in zip((0, *cuts), (*cuts, len(values)), strict=True):
        body: dict = {"seq": seq, "values": values[a:b].tolist()} | ({"start": start} if seq == 0 else {})
        r = await c.post(f"/v1/streams/{name}/predict", json=body)
        assert r.status_code == 200, r.text
        preds += r.json()["predictions"]
        seq = b
    return preds


async def _forecast(c: httpx.AsyncClient, name: str, **body: object) -> httpx.Response:
    return await c.post(f"/v1/streams/{name}/forecast", json=body)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["stateful", "stateless"])
async def test_served_forecasts_equal_predict_from_the_same_history(
    fleet_models: Path, tmp_path: Path, mode: str
) -> None:
    panel = _panel()
    async with served(fleet_models / mode, tmp_path / "s.sqlite") as s:
        expected = fleet_predict.forecast(s.model, panel, H)
        for k, (name, values) in enumerate(zip(panel.ids, panel.values, strict=True)):
            start = MONTHS.label(int(panel.starts[k]))
            preds = await _feed(s.client, name, values, (1 + k, 9 + k), start)
            assert preds[: P - 1] == [None] * (P - 1) and None not in preds[P - 1 :]  # a season first
            r = await _forecast(s.client, name, horizon=H)
            assert r.status_code == 200, r.text
            got = r.json()
            assert got["seq"] == len(values)
            np.testing.assert_allclose(got["forecast"], expected[k], rtol=1e-5)
            assert got["times"] == [MONTHS.label(int(panel.starts[k]) + len(values) + j) for j in range(H)]
            assert preds[-1] == pytest.approx(got["forecast"][0], rel=1e-6)  # the last one-step forecast
        # A forecast consumes nothing: asked again (without a body: the learnt horizon), the
        # same; the stream's seq is unchanged.
        again = await s.client.post(f"/v1/streams/{name}/forecast")
        assert again.json() == got and (await s.client.get(f"/v1/streams/{name}")).json()["seq"] == len(values)
        # Fewer steps are the first ones; a recursive model rolls on past the learnt horizon.
        assert (await _forecast(s.client, name, horizon=2)).json()["forecast"] == got["forecast"][:2]
        if s.model.config.panel.strategy == "recursive":
            longer = (await _forecast(s.client, name, horizon=H + 3)).json()
            np.testing.assert_allclose(longer["forecast"][:H], got["forecast"], rtol=1e-6)
            assert len(longer["times"]) == H + 3
        info = (await s.client.get("/v1/model")).json()
        assert (info["kind"], info["season"], info["series"], info["new_series_values"]) == ("fleet", P, 5, P)


@pytest.mark.anyio
async def test_a_new_series_scales_itself_from_its_first_values(fleet_dir: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    values = 400 + 60 * np.sin(2 * np.pi * np.arange(28) / P) + rng.normal(0, 5, 28)  # another level altogether
    new = Panel(("fresh",), (values,), np.array([-4]), MONTHS)  # it starts before the model's clock: Sept 1999
    async with served(fleet_dir, tmp_path / "s.sqlite") as s:
        # Its first values wait for the scaling (null), then every value so far goes through the model.
        assert await _feed(s.client, "fresh", values[:5], (2,), "1999-09-01") == [None] * 5
        waiting = await _forecast(s.client, "fresh")
        assert waiting.status_code == 409 and "its first 6" in waiting.json()["detail"]
        for seq, stop in ((5, 7), (7, len(values))):
            r = await s.client.post("/v1/streams/fresh/predict", json={"seq": seq, "values": values[seq:stop].tolist()})
            assert r.status_code == 200 and None not in r.json()["predictions"]  # a season is there from value 6
        got = (await _forecast(s.client, "fresh")).json()["forecast"]
        np.testing.assert_allclose(got, fleet_predict.forecast(s.model, new, H)[0], rtol=1e-5)
        assert 300 < np.mean(got) < 500


@pytest.mark.anyio
async def test_refusals(fleet_dir: Path, tmp_path: Path) -> None:
    async with served(fleet_dir, tmp_path / "s.sqlite", max_chunk=100) as s:
        c = s.client

        async def predict(body: dict, name: str = "s1") -> tuple[int, str]:
            r = await c.post(f"/v1/streams/{name}/predict", json=body)
            return r.status_code, r.json().get("detail", "")

        assert (await predict({"seq": 0, "values": [50.0]}))[1].startswith("start: the first request (seq 0)")
        number = await predict({"seq": 0, "values": [1.0], "start": 3})  # a number on a calendar clock
        assert number == (422, "start: must be an ISO 8601 date or timestamp (text), as the model's times are; got 3")
        assert "day 1, no time of day" in (await predict({"seq": 0, "values": [1.0], "start": "2001-05-17"}))[1]
        assert "no time of day" in (await predict({"seq": 0, "values": [1.0], "start": "2001-05-01T05:00"}))[1]
        huge = await predict({"seq": 0, "values": [1.0], "start": 10**400})
        assert huge[0] == 422 and len(huge[1]) < 200
        assert (await predict({"seq": 0, "values": [-1.0], "start": "2001-05-01"}))[1].startswith("values: hold -1.0")
        assert (await predict({"seq": 0, "values": [50.0, 51.0], "start": "2001-05-01"}))[0] == 200
        assert (await predict({"seq": 2, "values": [50.0], "start": "2001-07-01"}))[1].startswith("start: only")
        # The first request's retry must name the same start: another is another request (409).
        retry = await predict({"seq": 0, "values": [50.0, 51.0], "start": "2001-06-01"})
        assert retry[0] == 409 and "other values or another start" in retry[1]
        assert (await predict({"seq": 0, "values": [50.0, 51.0], "start": "2001-05-01"}))[0] == 200
        r = await _forecast(c, "s1")
        assert r.status_code == 409 and r.json()["seq"] == 2 and "a season of 6" in r.json()["detail"]
        assert (await _forecast(c, "nobody")).status_code == 404
        for bad in (0, -1, 1.5, "4", 101, True):
            r = await _forecast(c, "s1", horizon=bad)
            assert r.status_code == 422 and r.json()["detail"].startswith("horizon: must be an integer"), bad
        r = await c.post("/v1/streams/s1/forecast", json={"steps": 3})
        assert r.status_code == 422 and r.json()["detail"].startswith("body:")
        if s.model.config.panel.strategy == "direct":
            assert (await _forecast(c, "s1", horizon=H + 1)).status_code == 422


def test_a_fleet_server_killed_and_restarted_continues_every_series(
    servers: Servers, fleet_dir: Path, tmp_path: Path
) -> None:
    """Through the README's client (docs/serve_client.py), as a user would."""
    panel, state = _panel(), tmp_path / "streams.sqlite"
    expected = fleet_predict.forecast(load_fleet_model(fleet_dir), panel, H)
    server = servers.start(fleet_dir, state)
    for k, (name, values) in enumerate(zip(panel.ids, panel.values, strict=True)):
        with serve_client.StreamClient(server.url, name, retry_for=0) as client:
            client.send(values[:-5].tolist(), start=MONTHS.label(int(panel.starts[k])))
    server.kill()
    server = servers.start(fleet_dir, state)
    for k, (name, values) in enumerate(zip(panel.ids, panel.values, strict=True)):
        with serve_client.StreamClient(server.url, name, retry_for=0) as client:
            client.seq = client.info()["seq"]
            assert client.seq == len(values) - 5
            client.send(values[-5:].tolist())
            np.testing.assert_allclose(client.forecast(H)["forecast"], expected[k], rtol=1e-5)
            with pytest.raises(serve_client.ServeError, match="horizon: must be an integer"):
                client.forecast(0)
    server.stop()
    assert server.proc.returncode == 0


@pytest.mark.anyio
async def test_a_forecast_and_a_predict_on_one_stream_at_once(fleet_dir: Path, tmp_path: Path) -> None:
    """They may land in one queue: neither is reordered around the other, both are answered,
    and the service goes on serving."""
    values = _panel().values[0]
    async with served(fleet_dir, tmp_path / "s.sqlite", batch_wait_ms=50.0) as s:
        await _feed(s.client, "s0", values[:20], (), "2000-01-01")
        body = {"seq": 20, "values": values[20:24].tolist()}
        forecast, fed = await asyncio.gather(
            _forecast(s.client, "s0"), s.client.post("/v1/streams/s0/predict", json=body)
        )
        assert forecast.status_code == 200 and fed.status_code == 200 and fed.json()["seq"] == 24
        assert forecast.json()["seq"] in (20, 24)
        assert (await _forecast(s.client, "s0")).json()["seq"] == 24


@pytest.mark.anyio
async def test_a_fleet_without_a_season_needs_no_start(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    directory = _saved(tmp_path_factory) / "stateful"
    panel = _panel()
    async with served(directory, tmp_path / "s.sqlite") as s:
        expected = fleet_predict.forecast(s.model, panel, H)
        for k, (name, values) in enumerate(zip(panel.ids, panel.values, strict=True)):
            r = await s.client.post(f"/v1/streams/{name}/predict", json={"seq": 0, "values": values.tolist()})
            assert r.status_code == 200 and None not in r.json()["predictions"]  # a season of one value
            got = (await _forecast(s.client, name)).json()
            assert "times" not in got  # no start given: no times
            np.testing.assert_allclose(got["forecast"], expected[k], rtol=1e-5)
