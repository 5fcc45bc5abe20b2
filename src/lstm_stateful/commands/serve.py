"""``serve``: a saved model behind an HTTP service (``lstm_stateful.serve``), on uvicorn.

Everything that can go wrong at start is checked before the service says it is ready, each
as one ``ConfigError``: the serve extra, the token file, the model directory, the state
file (in use by another server, unusable, another model's), the address (not loopback
without a token, cannot be resolved, the port in use). The socket is bound here, before
uvicorn starts, so that ``--port 0`` (a free port) and a port in use are known first; the
ready line names the real port. Every size class is compiled before the line (the
persistent compilation cache makes a restart's compiles quick).

SIGTERM and Ctrl-C stop it cleanly: uvicorn lets the requests in flight finish, the last
round commits, and the state file and its lock are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import gc
import hashlib
import ipaddress
import json
import math
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

from lstm_stateful.core import compile_cache
from lstm_stateful.core.config import require_int
from lstm_stateful.core.errors import ConfigError

if TYPE_CHECKING:
    from lstm_stateful.serve.engine import Batched
    from lstm_stateful.serve.learner import LearnConfig

# What the serve extra installs (a missing one names the extra).
SERVE_PACKAGES = ("fastapi", "uvicorn", "starlette", "pydantic", "prometheus_client")
SERVE_EXTRA = "serving needs the serve extra: pip install 'lstm-stateful[serve]'"
# The state file beside the model's model.json when --state is not given.
STATE_FILE = "streams.sqlite"
LOOPBACK_NAMES = ("localhost",)
MAX_BATCH_WAIT_MS = 1000.0
_BACKLOG = 2048
_GRACEFUL_SHUTDOWN_S = 5


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """model: a saved model directory; host, port: where to listen (port 0: a free one);
    state: the SQLite state file (default ``model/streams.sqlite``); token_file: a file
    holding the bearer token every request must then carry (required for a host other than
    loopback); max_body_bytes: the largest request body (413 beyond); max_chunk: the most
    values of a request (422 beyond); batch_wait_ms: how long a round gathers requests;
    max_streams: the most streams held (a new one beyond gets 507; each is held in memory
    and on disk until deleted); learn: learn from the streams (``serve.learner.LearnConfig``;
    None: the weights stay as saved); snapshot_root: the directory a learning server writes
    its snapshots in (default: the state file's)."""

    model: Path
    host: str = "127.0.0.1"
    port: int = 8000
    state: Path | None = None
    token_file: Path | None = None
    max_body_bytes: int = 1 << 20
    max_chunk: int = 10_000
    batch_wait_ms: float = 2.0
    max_streams: int = 100_000
    learn: LearnConfig | None = None
    snapshot_root: Path | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.host, str) and self.host.strip()):
            raise ConfigError("host", f"must be an address or host name, got {self.host!r}")
        require_int("port", self.port, 0, 65_536)
        require_int("max_body_bytes", self.max_body_bytes)
        require_int("max_chunk", self.max_chunk)
        require_int("max_streams", self.max_streams)
        wait = self.batch_wait_ms
        if not (isinstance(wait, int | float) and not isinstance(wait, bool) and 0 <= wait <= MAX_BATCH_WAIT_MS):
            raise ConfigError("batch_wait_ms", f"must be a number of milliseconds in [0, {MAX_BATCH_WAIT_MS:g}]")
        if not math.isfinite(wait):
            raise ConfigError("batch_wait_ms", "must be finite")
        if self.snapshot_root is not None and self.learn is None:
            raise ConfigError("snapshot_root", "is a setting of --learn (where its snapshots go); add --learn")
        if self.snapshot_root is not None and not Path(self.snapshot_root).is_dir():
            raise ConfigError("snapshot_root", f"{str(self.snapshot_root)!r} is not a directory; give one that exists")
        if self.token_file is None and not is_loopback(self.host):
            raise ConfigError("token_file", f"is required to listen on {self.host}, which is not a loopback address "
                              "(127.0.0.1, ::1, localhost): every request then needs the token")  # fmt: skip

    @property
    def state_file(self) -> Path:
        return Path(self.model) / STATE_FILE if self.state is None else Path(self.state)

    @property
    def snapshots(self) -> Path:
        """Where snapshots go: ``snapshot_root``, or the state file's directory; absolute."""
        return (self.state_file.parent if self.snapshot_root is None else Path(self.snapshot_root)).resolve()


def import_serve() -> tuple[ModuleType, ModuleType]:
    """``fastapi`` and ``uvicorn``, or a one-line error naming the extra that installs them."""
    try:
        import fastapi
        import prometheus_client  # noqa: F401  # GET /metrics
        import uvicorn
    except ImportError as e:
        missing = (e.name or "").partition(".")[0] in SERVE_PACKAGES
        raise ConfigError("model", SERVE_EXTRA if missing else f"cannot import {e.name}: {e}") from None
    return fastapi, uvicorn


def read_token(path: Path) -> bytes:
    """The token in ``path``: one line of printable ASCII without spaces (surrounding
    whitespace and the final newline are dropped)."""
    try:
        text = Path(path).read_bytes().strip()
    except OSError as e:
        raise ConfigError("token_file", f"{str(path)!r} cannot be read ({e.strerror or e})") from None
    if not text:
        raise ConfigError("token_file", f"{str(path)!r} is empty; put the token clients must send in it")
    if not all(0x21 <= c <= 0x7E for c in text):
        raise ConfigError("token_file", f"{str(path)!r} must hold one token of printable ASCII without spaces")
    return text


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]  # fmt: skip
    except (socket.gaierror, UnicodeError) as e:
        raise ConfigError("host", f"{host!r} cannot be resolved ({e})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait out TIME_WAIT
        sock.bind(address)
        sock.listen(_BACKLOG)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            problem = f"{port} is in use on {host} (another server?); choose another, or 0 for a free one"
            raise ConfigError("port", problem) from None
        raise ConfigError("host", f"cannot listen on {host} port {port} ({e.strerror or e})") from None
    return sock


def model_identity(meta: dict) -> str:
    """What a state file is bound to: SHA-256 of everything in ``model.json`` that a stream's
    state depends on (the weights' checksum, the mode, the scaling, the data and model
    settings), so that states are never fed to a model that reads them otherwise."""
    experiment = meta.get("experiment", {})
    parts = {"weights": meta["weights"]["sha256"], "mode": meta.get("mode"), "scaling": meta.get("scaling"),
             "data": experiment.get("data"), "model": experiment.get("model")}  # fmt: skip
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _url(host: str, port: int) -> str:
    host = host.strip("[]")
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def fleet_identity(meta: dict) -> str:
    """``model_identity`` of a fleet model: its weights (with every series' scaling), mode,
    config, series and clock (a stream's phase and times are counted on it)."""
    parts = {"weights": meta["weights"]["sha256"]} | {k: meta.get(k) for k in ("mode", "config", "ids", "clock")}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class _Served(NamedTuple):
    """What ``serve`` needs of a model directory: its engine, identity, ``GET /v1/model`` and name."""

    engine: Batched
    identity: str
    info: dict
    name: str


def learning_identity(identity: str, learn: LearnConfig) -> str:
    """A learning service's state file holds more per stream (the frozen model's state and
    a window of ``learn.window`` values) and the learnt weights with a log that replays
    through the optimizer: bound to the window, the learning rate and the clip too."""
    settings = f"learn window {learn.window} lr {learn.lr!r} clip {learn.clip!r}"
    return hashlib.sha256(f"{identity} {settings}".encode()).hexdigest()


def _cannot_learn(why: str) -> ConfigError:
    return ConfigError("learn", f"{why}; --learn takes a fleet model with a recursive horizon (each value labels the "
                       "forecast before it) or a single-series model (a forecast labels itself; other targets "
                       "are sent with the values)")  # fmt: skip


def _load(directory: Path, learn: LearnConfig | None = None) -> _Served:
    """A single-series or fleet model directory, loaded with its engine (not yet compiled);
    a learning engine with ``learn``."""
    from lstm_stateful.models.fleet_model import is_fleet_model, load_fleet_model
    from lstm_stateful.models.model_io import CONFIG_FILE, load_model
    from lstm_stateful.serve import app as app_mod

    meta = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8")) if is_fleet_model(directory) else None
    if meta is not None:
        from lstm_stateful.serve.fleet_engine import FleetEngine

        fleet = load_fleet_model(directory)
        name = f"{fleet.mode} {fleet.config.model.cell}"
        if learn is None:
            return _Served(FleetEngine(fleet), fleet_identity(meta), app_mod.fleet_info(fleet, meta), name)
        if fleet.config.panel.strategy == "direct":
            raise _cannot_learn(f"{str(directory)!r} is a direct fleet model: its H outputs get their labels over "
                                "the next H values, which this version does not learn from")  # fmt: skip
        from lstm_stateful.serve.learning_engine import LearningFleetEngine

        identity = learning_identity(fleet_identity(meta), learn)
        return _Served(LearningFleetEngine(fleet, learn), identity, app_mod.fleet_info(fleet, meta), f"learning {name}")
    from lstm_stateful.serve.engine import Engine

    model = load_model(directory)
    meta = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    name, info = f"{model.mode} {model.model.cell}", app_mod.model_info(model, meta)
    if learn is None:
        return _Served(Engine(model), model_identity(meta), info, name)
    from lstm_stateful.core.config import ExperimentConfig
    from lstm_stateful.serve.learning_engine import LearningEngine

    if model.data.task == "forecast" and learn.window <= model.data.horizon:
        raise ConfigError("learn_window", f"must exceed the model's horizon ({model.data.horizon}): a value's target "
                          f"comes {model.data.horizon} values later, when it must still be in the window")  # fmt: skip
    engine = LearningEngine(model, ExperimentConfig.from_dict(meta["experiment"]), learn)
    return _Served(engine, learning_identity(model_identity(meta), learn), info, f"learning {name}")


def serve(cfg: ServeConfig, ready: Callable[[str], None]) -> None:
    """Serve until SIGTERM or Ctrl-C; ``ready`` gets the ready line once requests are served."""
    _, uvicorn = import_serve()
    from lstm_stateful.serve import app as app_mod
    from lstm_stateful.serve.store import Store
    from lstm_stateful.serve.streams import Service

    token = None if cfg.token_file is None else read_token(cfg.token_file)
    served = _load(Path(cfg.model), cfg.learn)
    compile_cache.enable(compile_cache.default_cache_dir())  # without a cache it only compiles each time
    with (
        Store.open(cfg.state_file, served.identity) as store,
        contextlib.closing(bind(cfg.host, cfg.port)) as sock,
    ):
        service = Service(served.engine, store, cfg.max_streams)
        served.engine.warm_up()
        settings = app_mod.Settings(token, cfg.max_body_bytes, cfg.max_chunk, float(cfg.batch_wait_ms), cfg.snapshots)
        app = app_mod.build_app(service, served.info, settings)
        url = _url(cfg.host, sock.getsockname()[1])
        line = (f"Serving the {served.name} model of {cfg.model} on {url} "
                f"(state {cfg.state_file}); docs at {url}/docs")  # fmt: skip
        # What start-up made (JAX, FastAPI: ~150,000 objects) lives as long as the server: out of
        # the collector's sight, a full collection takes microseconds instead of ~150 ms (the p99).
        gc.collect()
        gc.freeze()
        _run(uvicorn, app, sock, lambda: ready(line))


def _run(uvicorn: ModuleType, app: Any, sock: socket.socket, on_ready: Callable[[], None]) -> None:
    """Run uvicorn on ``sock`` until it stops; ``on_ready`` once it serves."""
    config = uvicorn.Config(
        app,
        loop="uvloop" if _importable("uvloop") else "asyncio",
        http="httptools" if _importable("httptools") else "h11",
        lifespan="on",
        access_log=False,
        log_level="warning",
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
    )
    server = uvicorn.Server(config)

    async def main() -> None:
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.005)
        if server.started:
            on_ready()
        await task

    with _sigterm_is_clean(), asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(main())


@contextlib.contextmanager
def _sigterm_is_clean() -> Iterator[None]:
    """uvicorn catches SIGTERM, shuts down, then raises it again for the handler found before:
    a handler that does nothing, so that a SIGTERM'd server exits 0 once shut down."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
