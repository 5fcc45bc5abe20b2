"""Shared by the service's process tests: saved models, `lstm-stateful serve` processes
started on a free loopback port (the ready line gives the port), stopped by their own pid,
and the offline ``Predictor`` every answer is compared with."""

from __future__ import annotations

import importlib.util
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from lstm_stateful.core import cells
from lstm_stateful.core.config import DataConfig, ExperimentConfig, ModelConfig
from lstm_stateful.core.data import Scaling
from lstm_stateful.models import model_io
from lstm_stateful.models.stream import Predictor

SERVE = [sys.executable, "-m", "lstm_stateful.cli", "serve"]
READY = re.compile(
    r"^Serving the (?P<learning>learning )?(?P<mode>\S+) (?P<cell>\S+) model of (?P<model>.+)"
    r" on http://(?P<host>\S+):(?P<port>\d+)"
    r" \(state (?P<state>.+)\); docs at http://\S+/docs$"
)
CLIENT_FILE = Path(__file__).parents[2] / "docs" / "serve_client.py"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 10.0


def _import_client() -> ModuleType:
    """docs/serve_client.py, the README's client (docs/ is no package), as module ``serve_client``."""
    spec = importlib.util.spec_from_file_location("serve_client", CLIENT_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["serve_client"] = module
    spec.loader.exec_module(module)
    return module


serve_client = _import_client()


def save_model(
    directory: Path, *, cell: str = "lstm", lahead: int = 3, n_features: int = 1, units: int = 8, **data: object
) -> Path:
    """A stateful model with random weights and a scaling that is not the identity, saved to ``directory``."""
    columns = {"file": "f.csv", "input_cols": tuple("abcdefgh"[:n_features])} if n_features > 1 else {}
    cfg = ExperimentConfig(
        data=DataConfig(**({"lahead": lahead} | columns | data)),  # type: ignore[arg-type]
        model=ModelConfig(units=units, cell=cell, n_features=n_features),
    )
    params = cells.init_params(np.random.default_rng(7), cfg.model)
    scaling = Scaling((0.5, -0.2, 0.1)[:n_features], (2.0, 0.5, 1.5)[:n_features], -1.0, 3.0)
    saved = {"mode": "stateful", "seed_index": 0, "scaling": scaling, "metrics": {"r2": 0.5}}
    model_io.save_model(directory, params, cfg, saved)
    return directory


def offline(model_dir: Path, series: np.ndarray) -> np.ndarray:
    """The offline ``Predictor``'s predictions for B streams' whole series: (B, n) or (B, n, F) -> (B, n)."""
    return Predictor.load(model_dir, batch_size=series.shape[0]).predict(series)


def as_floats(predictions: list) -> np.ndarray:
    """JSON predictions (null while the window fills) as float64, NaN for null."""
    return np.array([np.nan if p is None else p for p in predictions], np.float64)


@dataclass
class Server:
    """A running `lstm-stateful serve` process; its stdout and stderr go to files (a pipe
    nobody reads would block it)."""

    proc: subprocess.Popen
    stdout: Path
    stderr: Path
    match: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.match['host']}:{self.match['port']}"

    @property
    def port(self) -> int:
        return int(self.match["port"])

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as a power cut or the OOM killer leaves it."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT_S)

    def stop(self) -> None:
        """Terminate by its own pid, then kill it if it has not exited in time."""
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()


def _wait_ready(server: Server, timeout: float) -> Server:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in server.stdout.read_text().splitlines():
            if m := READY.match(line):
                server.match = m.groupdict()
                return server
        if server.proc.poll() is not None:
            raise AssertionError(f"the server exited {server.proc.returncode}: {server.stderr.read_text()[-2000:]}")
        time.sleep(0.05)
    server.stop()
    raise AssertionError(f"no ready line in {timeout} s: {server.stderr.read_text()[-2000:]}")


class Servers:
    """Starts servers in ``logs``; ``stop_all`` stops each still running, by its pid."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[Server] = []

    def start(self, model: Path, state: Path, *args: str, host: str = "127.0.0.1", port: int = 0) -> Server:
        n = len(self.started)
        out, err = self.logs / f"server{n}.out", self.logs / f"server{n}.err"
        argv = [*SERVE, "--model", str(model), "--state", str(state), "--host", host, "--port", str(port), *args]
        with out.open("w") as stdout, err.open("w") as stderr:
            proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
        server = Server(proc, out, err)
        self.started.append(server)
        return _wait_ready(server, START_TIMEOUT_S)

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


def refused(*args: str) -> tuple[int, list[str]]:
    """Run `lstm-stateful serve ARGS` expecting it to stop at start: its exit code and stderr lines."""
    proc = subprocess.run([*SERVE, *args], capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False)
    return proc.returncode, proc.stderr.splitlines()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    started = Servers(tmp_path)
    yield started
    started.stop_all()


@pytest.fixture(scope="module")
def module_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    started = Servers(tmp_path_factory.mktemp("servers"))
    yield started
    started.stop_all()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-input stateful LSTM: lahead 3 (two nulls first), a scaling that is not the identity."""
    return save_model(tmp_path_factory.mktemp("model") / "lstm")
