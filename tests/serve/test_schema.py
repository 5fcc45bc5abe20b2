"""The service tested as its OpenAPI schema says: Schemathesis (``schemathesis run --checks
all``, positive and negative requests, stateful sequences over the API's links) against
real servers on loopback, each answer checked for a server error, an undocumented status,
a body that breaks its schema, a valid request refused or an invalid one accepted, and a
405 whose Allow header lists other methods than the path's.

Bounded: a fixed seed and number of examples per operation (a few seconds a server)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lstm_stateful.commands.fleet import save_models
from lstm_stateful.core.panel import Clock, Panel
from lstm_stateful.core.panel_config import fleet_config
from lstm_stateful.engine.fleet import run_fleet
from tests.serve.conftest import Servers, save_model

SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli"]
EXAMPLES = "60"
SEED = os.environ.get("SCHEMATHESIS_SEED", "1")  # another seed explores other requests


def _schemathesis(url: str, workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    argv = [*SCHEMATHESIS, "run", f"{url}/openapi.json", "--checks", "all", "--max-examples", EXAMPLES,
            "--seed", SEED, "--no-color", *extra]  # fmt: skip
    return subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=600, check=False)


def _fleet(directory: Path) -> Path:
    rng = np.random.default_rng(4)
    values = tuple(40 + 5 * np.sin(np.arange(30 + s) * 2 * np.pi / 4) + rng.normal(0, 1, 30 + s) for s in range(4))
    panel = Panel(tuple(f"s{s}" for s in range(4)), values, np.zeros(4, np.int64), Clock())
    settings = {"data": "x.csv", "id": "id", "time": "t", "input": "y", "horizon": 3, "season": 4, "units": 4}
    settings |= {"epochs": 1, "seeds": 1, "lahead": 2, "chunk": 8, "batch_size": 4, "stats": ()}
    save_models(run_fleet(fleet_config(settings), panel), directory)
    return directory / "stateful"


@pytest.mark.parametrize(
    "model", [{}, {"cell": "gru", "n_features": 2, "transform": "log-diff"}], ids=["one-input", "two-input-log-diff"]
)
def test_the_server_and_its_schema_agree(servers: Servers, tmp_path: Path, model: dict) -> None:
    server = servers.start(save_model(tmp_path / "model", **model), tmp_path / "s.sqlite", "--max-chunk", "50")
    done = _schemathesis(server.url, tmp_path)
    assert done.returncode == 0, done.stdout[-6000:]
    assert "No issues found" in done.stdout, done.stdout[-3000:]
    assert int(re.search(r"(\d+) generated, \1 passed", done.stdout)[1]) > 300  # type: ignore[index]
    assert server.proc.poll() is None  # still serving


def test_a_fleet_server_and_its_schema_agree(servers: Servers, tmp_path: Path) -> None:
    server = servers.start(_fleet(tmp_path / "fleet"), tmp_path / "s.sqlite", "--max-chunk", "50")
    done = _schemathesis(server.url, tmp_path)
    # It may warn that forecasts of streams nobody started answer 404 (they must), and passes.
    assert done.returncode == 0 and re.search(r"(\d+) generated, \1 passed", done.stdout), done.stdout[-6000:]
    assert server.proc.poll() is None


@pytest.mark.parametrize("kind", ["single-series", "fleet"])
def test_a_learning_server_and_its_schema_agree(servers: Servers, tmp_path: Path, kind: str) -> None:
    """With --learn: the targets of a single-series model's requests, and the snapshot route
    (its directories land in the state file's directory, a scratch one here)."""
    model = save_model(tmp_path / "model") if kind == "single-series" else _fleet(tmp_path / "fleet")
    state = tmp_path / "state" / "s.sqlite"
    state.parent.mkdir()
    server = servers.start(model, state, "--max-chunk", "50", "--learn", "--learn-window", "8")
    done = _schemathesis(server.url, tmp_path)
    assert done.returncode == 0 and re.search(r"(\d+) generated, \1 passed", done.stdout), done.stdout[-6000:]
    assert server.proc.poll() is None
