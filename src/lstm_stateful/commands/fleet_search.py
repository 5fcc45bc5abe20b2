"""``sweep`` and ``tune`` on a panel (with ``--id``): many fleet runs, one per setting tried.

A point is a ``FleetConfig``: the base config with some settings changed (``VARIABLE``).
Each is trained and scored by ``engine.fleet.run_fleet`` on one panel, read once. Its
objective is the lowest mean validation MASE of our models (stateful, stateless, combined),
on the H values before each series' test: the test values never choose a point; their
scores are recorded beside it, with the best baseline's.

``fleet_sweep`` trains every combination of a grid, keeping each finished point as one line
of ``OUT/fleet_sweep.jsonl`` (a rerun trains only the rest) and writing ``OUT/summary.csv``.
``fleet_tune`` lets Optuna's TPE propose the points, in a study stored in
``OUT/fleet_tune.sqlite`` (the same search again resumes it), and writes ``OUT/trials.csv``
and ``OUT/best.json``. Nothing here prints.

What defines the problem (the panel, its protocol, the MASE scale: ``PROBLEM``) is set once
for every point: a grid or a space varying it is refused, as are the baselines (``stats``).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstm_stateful.commands.fleet import check, read
from lstm_stateful.commands.tune import csv_cell
from lstm_stateful.core.config import dashed, require_int
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.core.panel_config import FLEET_SETTINGS, SCALINGS, STRATEGIES, FleetConfig, fleet_config
from lstm_stateful.io import dirs, provenance
from lstm_stateful.io.atomic import write_atomic
from lstm_stateful.sweep.grid import GRID_KEYS, MAX_POINTS, Axis, Value, parse_grid, parse_range
from lstm_stateful.sweep.space import SEARCHABLE, SPACE_SYNTAX, Dimension, parse_space, shown

if TYPE_CHECKING:  # the CLI imports this module before JAX is loaded
    import optuna

    from lstm_stateful.core.panel import Panel
    from lstm_stateful.engine.fleet import FleetResult

# Our models, as ``engine.fleet.MODELS`` (not imported: it loads JAX).
OURS = ("stateful", "stateless", "combined")
# Settings a grid may vary, and those a search may (not ``seeds`` nor ``seed``: a search
# would only learn to pick the most seeds, or the luckiest draw of the validation part).
SEARCHED = ("units", "layers", "cell", "epochs", "lr", "lahead", "chunk", "batch_size", "scaling", "strategy")
VARIABLE = (*SEARCHED, "seeds", "seed")
# Settings that define the problem every point is scored on: the panel, its protocol
# (what is tested and validated) and the MASE scale (the season).
PROBLEM = ("data", "id", "time", "input", "fill", "horizon", "windows", "season")
# Fleet settings of a few words, which ``core.config`` does not know.
CHOICES: dict[str, tuple[str, ...]] = {"scaling": SCALINGS, "strategy": STRATEGIES}

SWEEP_STORE = "fleet_sweep.jsonl"
SUMMARY_FILE = "summary.csv"
STUDY_FILE = "fleet_tune.sqlite"
TRIALS_FILE = "trials.csv"
BEST_FILE = "best.json"
# A trial's user attribute holding its ``FleetScore`` (``sweep.tune.FAILURE`` holds why it failed).
SCORE_ATTR = "fleet_score"
OBJECTIVE = (
    "the lowest mean validation MASE (over the series, on the horizon before each series' test) "
    "of the stateful, stateless and combined models; minimised"
)


# ----- what may vary -----------------------------------------------------------------------------


def _key(param: str, text: str, allowed: tuple[str, ...], what: str) -> str:
    """``"batch-size"`` -> ``"batch_size"``, one of ``allowed``; a setting of the problem, the
    baselines or anything else is one ``ConfigError`` on ``param``."""
    name = text.strip().replace("-", "_")
    if name in PROBLEM:
        why = "defines the problem every point is scored on (the panel, its protocol, the MASE scale)"
        raise ConfigError(param, f"{dashed(name)} {why}; set it once with `{name}`")
    if name == "stats":
        raise ConfigError(param, "stats are baselines, the same at every point; set them once with `stats`")
    if name not in allowed:
        keys = ", ".join(dashed(k) for k in allowed)
        raise ConfigError(param, f"{text.strip()!r} is not a setting a panel {what} can vary; the keys are {keys}")
    return name


def _choices(param: str, key: str, text: str) -> tuple[str, ...]:
    """``log,standard`` -> the words, each one of ``CHOICES[key]``, each once."""
    values = tuple(v.strip() for v in text.split(","))
    if (bad := next((v for v in values if v not in CHOICES[key]), None)) is not None:
        raise ConfigError(param, f"{dashed(key)}={text}: {bad!r} is not one of {', '.join(CHOICES[key])}")
    if twice := next((v for i, v in enumerate(values) if v in values[:i]), None):
        raise ConfigError(param, f"{dashed(key)}={text}: lists {twice} twice")
    return values


def _axis(key: str, text: str) -> Axis:
    """The values of ``KEY=V1,V2,...``: read as a single-series grid reads them where the
    key is one of its own, else as words (``CHOICES``) or integers (ranges a:b too)."""
    if key in GRID_KEYS:
        return parse_grid([f"{key}={text}"])[0]
    if key in CHOICES:
        return Axis(key, _choices("grid", key, text))
    try:
        return Axis(key, parse_range("grid", text, 0 if key == "seed" else 1))
    except ConfigError as e:
        raise ConfigError("grid", f"{dashed(key)}={text}: {e.problem}") from None


def parse_fleet_grid(texts: Iterable[str]) -> tuple[Axis, ...]:
    """``["lr=1e-3,1e-2", "scaling=log,standard"]`` -> the axes, in the order given; every
    problem is a ``ConfigError`` on ``grid``."""
    return parse_grid(texts, lambda name: _key("grid", name, VARIABLE, "sweep"), _axis)


def _dimension(name: str, spec: str, text: str) -> Dimension:
    """One space: parsed by ``sweep.space`` where the key is one of its own; a fleet word
    setting is a list; ``chunk`` is an integer read as ``lahead`` is (same type, same bound)."""
    if name in SEARCHABLE:
        return parse_space([f"{name}={spec}"])[0]
    if name in CHOICES:
        if ":" in spec:
            raise ConfigError("space", f"{text!r}: {name} takes one of its values, not a range; list them (A,B,C)")
        return Dimension(name, "choice", choices=_choices("space", name, spec))
    try:
        return dataclasses.replace(parse_space([f"lahead={spec}"])[0], name=name)
    except ConfigError as e:
        raise ConfigError("space", e.problem.replace("lahead", name)) from None


def parse_fleet_space(texts: Sequence[str]) -> tuple[Dimension, ...]:
    """``--space`` values -> their dimensions, in the order given (``sweep.space`` syntax);
    every problem is a ``ConfigError`` on ``space``."""
    if not texts:
        raise ConfigError("space", f"give at least one setting to search: {SPACE_SYNTAX}")
    dims: list[Dimension] = []
    for text in texts:
        key, sep, spec = text.partition("=")
        if not sep or not key.strip() or not spec.strip():
            raise ConfigError("space", f"malformed {text!r}: {SPACE_SYNTAX}")
        name = _key("space", key, SEARCHED, "search")
        if any(d.name == name for d in dims):
            raise ConfigError("space", f"searches {name!r} twice; give each key once")
        dims.append(_dimension(name, spec.strip(), text))
    return tuple(dims)


def fleet_base(settings: Mapping[str, object], varied: Iterable[str] = (), param: str = "grid") -> FleetConfig:
    """The config every point shares: the flat ``settings`` (``FLEET_SETTINGS``), with the
    statsforecast baselines off unless ``stats`` is among them (they are the same at every
    point, and slow). A setting ``varied`` (by ``param``) may not be set here too."""
    for name in varied:
        if name in settings:
            raise ConfigError(param, f"varies {dashed(name)}, which `{name}` also sets; give it one way")
    return fleet_config({"stats": (), **settings})


def with_settings(base: FleetConfig, values: Mapping[str, object]) -> FleetConfig:
    """``base`` with the flat settings ``values`` (validated as any config is)."""
    parts: dict[str | None, dict[str, Any]] = {"panel": {}, "model": {}, "train": {}, None: {}}
    for key, value in values.items():
        part, field = FLEET_SETTINGS[key]
        parts[part][field] = value
    return dataclasses.replace(
        base,
        panel=dataclasses.replace(base.panel, **parts["panel"]),
        model=dataclasses.replace(base.model, **parts["model"]),
        train=dataclasses.replace(base.train, **parts["train"]),
        **parts[None],
    )


def _misfit(param: str, values: Mapping[str, object], e: ConfigError) -> ConfigError:
    """``e``, raised by the config or the panel at ``values``, as one error on ``param``."""
    at = ", ".join(f"{dashed(k)}={shown(v)}" for k, v in values.items())
    return ConfigError(param, f"at {at}, `{e.param}` {e.problem}")


# ----- a point's score ---------------------------------------------------------------------------


def _number(value: object) -> float:
    """A stored number (None: not finite) as a float."""
    return float("nan") if value is None else float(value)  # type: ignore[arg-type]


def _stored(value: float) -> float | None:
    """A float as JSON keeps it: None where it is not finite."""
    return value if math.isfinite(value) else None


@dataclasses.dataclass(frozen=True)
class FleetScore:
    """What one point scored. val_mase: each of our models' mean validation MASE; objective:
    the lowest finite of them (inf if none), objective_model: whose (empty if none);
    test_mase: each of ours' mean test MASE; best_baseline: the baseline of the lowest mean
    test MASE, baseline_mase: its; seconds: the run's."""

    val_mase: Mapping[str, float]
    objective: float
    objective_model: str
    test_mase: Mapping[str, float]
    best_baseline: str
    baseline_mase: float
    seconds: float

    @classmethod
    def of(cls, result: FleetResult, seconds: float) -> FleetScore:
        """The score of a finished ``run_fleet``."""
        val = {m: float(result.val_mase[m]) for m in OURS}
        finite = [(v, i, m) for i, (m, v) in enumerate(val.items()) if math.isfinite(v)]
        objective, _, model = min(finite) if finite else (math.inf, 0, "")
        test = {m: float(result.means[m]["mase"]) for m in OURS}
        baseline = result.verdict.best_baseline
        return cls(val, objective, model, test, baseline, float(result.means[baseline]["mase"]), seconds)

    def to_dict(self) -> dict[str, object]:
        """As JSON keeps it (strictly: a number that is not finite is None)."""
        d = dataclasses.asdict(self)
        for name in ("val_mase", "test_mase"):
            d[name] = {m: _stored(v) for m, v in d[name].items()}
        return d | {n: _stored(d[n]) for n in ("objective", "baseline_mase", "seconds")}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FleetScore:
        """The inverse of ``to_dict``."""
        val, test = ({m: _number(v) for m, v in d[n].items()} for n in ("val_mase", "test_mase"))
        objective = math.inf if d["objective"] is None else float(d["objective"])
        return cls(val, objective, str(d["objective_model"]), test, str(d["best_baseline"]),
                   _number(d["baseline_mase"]), _number(d["seconds"]))  # fmt: skip


def score_run(cfg: FleetConfig, panel: Panel) -> FleetScore:
    """Train and score ``cfg`` on ``panel`` (``run_fleet``), timed."""
    from lstm_stateful.engine.fleet import run_fleet

    start = time.perf_counter()
    result = run_fleet(cfg, panel)
    return FleetScore.of(result, time.perf_counter() - start)


SCORE_COLUMNS = (
    "objective", "objective_model", *(f"val_mase_{m}" for m in OURS), *(f"test_mase_{m}" for m in OURS),
    "best_baseline", "test_mase_best_baseline", "seconds",
)  # fmt: skip


def _score_cells(s: FleetScore) -> list[str]:
    """The ``SCORE_COLUMNS`` of ``s`` (floats in full: they read back equal)."""
    values = [s.objective, s.objective_model, *(s.val_mase[m] for m in OURS), *(s.test_mase[m] for m in OURS)]
    return [csv_cell(v) for v in (*values, s.best_baseline, s.baseline_mase, s.seconds)]


def _short(value: object) -> str:
    """A value as a table shows it: numbers to 4 significant digits."""
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.4g}"
    return shown(value)


def describe(values: Mapping[str, object], score: FleetScore) -> str:
    """One line for a point or trial: ``lr=0.01, units=8: validation MASE 0.812 (combined),
    test 0.903; 4.1 s``."""
    at = ", ".join(f"{dashed(k)}={_short(v)}" for k, v in values.items())
    model = score.objective_model or "none finite"
    test = _short(score.test_mase.get(score.objective_model, math.nan))
    return f"{at}: validation MASE {_short(score.objective)} ({model}), test {test}; {score.seconds:.1f} s"


def table_header(first: str, keys: Sequence[str]) -> list[str]:
    """The columns of a table of points or trials: ``first`` (what numbers them), the
    objective and its model, the settings ``keys``, that model's test MASE, the best
    baseline's, seconds (every score, and the baseline's name: ``summary.csv``, ``trials.csv``)."""
    return [first, "val MASE", "model", *(dashed(k) for k in keys), "test MASE", "baseline", "s"]


def table_row(first: str, values: Mapping[str, object], keys: Sequence[str], score: FleetScore) -> list[str]:
    """A row of ``table_header``'s columns."""
    test = _short(score.test_mase.get(score.objective_model, math.nan))
    settings = [_short(values.get(k)) for k in keys]
    tail = [test, _short(score.baseline_mase), f"{score.seconds:.1f}"]
    return [first, _short(score.objective), score.objective_model, *settings, *tail]


def data_digest(cfg: FleetConfig, panel: Panel) -> str:
    """The panel's identity: its file's SHA-256; for a panel given without its file, a hash
    of its ids, starts and values."""
    import numpy as np

    if os.path.isfile(cfg.panel.file):
        record = provenance.data_file(cfg.panel.file)
        assert record is not None  # a path was given
        return str(record["sha256"])
    digest = hashlib.sha256()
    for sid, start, values in zip(panel.ids, panel.starts, panel.values, strict=True):
        digest.update(f"{sid}\0{int(start)}\0".encode())
        digest.update(np.ascontiguousarray(values, np.float64).tobytes())
    return digest.hexdigest()


def _enable_cache(cache: bool) -> None:
    """JAX's persistent compilation cache, if ``cache`` (never worth failing for)."""
    if cache:
        from lstm_stateful.core import compile_cache

        compile_cache.enable(compile_cache.default_cache_dir())


# ----- sweep -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FleetPoint:
    """One point of a sweep: the grid's values (by setting, in the axes' order), its config
    and its score."""

    settings: Mapping[str, Value]
    config: FleetConfig
    score: FleetScore


@dataclasses.dataclass(frozen=True)
class FleetSweepOutput:
    """A finished sweep: every point, the lowest objective first; the grid's keys; where
    the files are; points trained now (the rest came from the store); seconds."""

    points: tuple[FleetPoint, ...]
    keys: tuple[str, ...]
    out_dir: Path
    store_path: Path
    summary_path: Path
    trained: int
    seconds: float


def sweep_points(base: FleetConfig, axes: Sequence[Axis]) -> list[tuple[dict[str, Value], FleetConfig]]:
    """Every combination of the axes' values (the last axis varying fastest) and its config.
    The keys are checked (``VARIABLE``); a value that makes no config is an error on ``grid``."""
    if not axes:
        raise ConfigError("grid", "give at least one KEY=V1,V2,... to vary")
    for i, axis in enumerate(axes):
        _key("grid", axis.key, VARIABLE, "sweep")
        if not axis.values:
            raise ConfigError("grid", f"{dashed(axis.key)} has no values: give at least one")
        if any(a.key == axis.key for a in axes[:i]):
            raise ConfigError("grid", f"{dashed(axis.key)} is given twice: list its values once")
    if (size := math.prod(len(a.values) for a in axes)) > MAX_POINTS:
        raise ConfigError("grid", f"the grid has {size:,} points; at most {MAX_POINTS:,}")
    points = []
    for combo in itertools.product(*(a.values for a in axes)):
        values = {a.key: v for a, v in zip(axes, combo, strict=True)}
        try:
            points.append((values, with_settings(base, values)))
        except ConfigError as e:
            raise _misfit("grid", values, e) from None
    return points


def point_key(cfg: FleetConfig, digest: str) -> str:
    """The store key of a point: a hash of its whole config (JSON, keys sorted) and the data's."""
    text = json.dumps({"config": cfg.to_dict(), "data_sha256": digest}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def load_store(path: Path) -> dict[str, FleetScore]:
    """The scores in a sweep's store by point key; a line that does not read (torn by a kill
    mid-write) is ignored."""
    if not path.exists():
        return {}
    scores = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            scores[str(record["key"])] = FleetScore.from_dict(record["score"])
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return scores


def append_record(path: Path, record: Mapping[str, object]) -> None:
    """One JSON line at the end of ``path``, flushed to the disk. After a torn last line the
    record starts a line of its own."""
    line = json.dumps(record, sort_keys=True, allow_nan=False).encode() + b"\n"
    with open(path, "a+b") as f:
        if f.seek(0, os.SEEK_END) > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                line = b"\n" + line
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def summary_csv(keys: Sequence[str], points: Sequence[FleetPoint]) -> str:
    """``summary.csv``: one row per point in the order given, its rank, the grid's values
    and its score (``SCORE_COLUMNS``)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["rank", *keys, *SCORE_COLUMNS])
    for rank, p in enumerate(points, 1):
        writer.writerow([rank, *(csv_cell(p.settings[k]) for k in keys), *_score_cells(p.score)])
    return buf.getvalue()


def _check_all(grid: Sequence[tuple[dict[str, Value], FleetConfig]], panel: Panel) -> None:
    """Every point against the panel (``commands.fleet.check``) before any trains."""
    for values, cfg in grid:
        try:
            check(cfg, panel)
        except ConfigError as e:
            raise _misfit("grid", values, e) from None


def _train_points(
    grid: Sequence[tuple[dict[str, Value], FleetConfig]],
    panel: Panel,
    store: Path,
    on_point: Callable[[FleetPoint], None] | None,
) -> tuple[list[FleetPoint], int]:
    """Each point's score: from the store, or trained now and appended to it. Returns the
    points in the grid's order and how many were trained now."""
    digest = data_digest(grid[0][1], panel)
    scores = load_store(store)
    points, trained = [], 0
    for values, cfg in grid:
        key = point_key(cfg, digest)
        if key in scores:
            points.append(FleetPoint(values, cfg, scores[key]))
            continue
        scores[key] = score_run(cfg, panel)
        append_record(store, {"key": key, "config": cfg.to_dict(), "score": scores[key].to_dict()})
        points.append(FleetPoint(values, cfg, scores[key]))
        trained += 1
        if on_point is not None:
            on_point(points[-1])
    return points, trained


def fleet_sweep(
    base: FleetConfig,
    axes: Sequence[Axis],
    out: Path,
    panel: Panel | None = None,
    *,
    cache: bool = True,
    on_point: Callable[[FleetPoint], None] | None = None,
) -> FleetSweepOutput:
    """Train every point of the grid ``axes`` around ``base`` that ``OUT/fleet_sweep.jsonl``
    lacks and write ``OUT/summary.csv`` (see the module). Every point is checked against the
    panel (read once, unless given) before any trains. ``on_point``: after each point
    trained now; ``cache``: JAX's persistent compilation cache."""
    start = time.perf_counter()
    grid = sweep_points(base, axes)
    panel = panel if panel is not None else read(base)
    _check_all(grid, panel)
    out = dirs.writable(out, "out")
    store = out / SWEEP_STORE
    _enable_cache(cache)
    points, trained = _train_points(grid, panel, store, on_point)
    ranked = tuple(sorted(points, key=lambda p: p.score.objective))
    keys = tuple(a.key for a in axes)
    write_atomic(out / SUMMARY_FILE, summary_csv(keys, ranked))
    return FleetSweepOutput(ranked, keys, out, store, out / SUMMARY_FILE, trained, time.perf_counter() - start)


# ----- tune --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FleetTrial:
    """One trial of a search: number; state (complete, failed, interrupted, running);
    params by setting name; score (None unless trained); failure: why its config was refused."""

    number: int
    state: str
    params: Mapping[str, object]
    score: FleetScore | None
    failure: str | None


@dataclasses.dataclass(frozen=True)
class FleetTuneOutput:
    """A finished search: every trial of the study by number, the best one (lowest
    objective) and its config, the spaces, where the files and the study are, trials
    trained now, seconds."""

    trials: tuple[FleetTrial, ...]
    best: FleetTrial
    best_config: FleetConfig
    dimensions: tuple[Dimension, ...]
    out_dir: Path
    study_path: Path
    study_name: str
    trained: int
    seconds: float


def _check_space(base: FleetConfig, dims: Sequence[Dimension], panel: Panel) -> None:
    """Every value of every space (a range's bounds, every choice) makes a config the panel
    takes; else one error on ``space``, before any trial."""
    if not dims:
        raise ConfigError("space", f"give at least one setting to search: {SPACE_SYNTAX}")
    for i, d in enumerate(dims):
        _key("space", d.name, SEARCHED, "search")
        if any(e.name == d.name for e in dims[:i]):
            raise ConfigError("space", f"searches {d.name!r} twice; give each key once")
        for value in d.extremes:
            try:
                check(with_settings(base, {d.name: value}), panel)
            except ConfigError as e:
                raise _misfit("space", {d.name: value}, e) from None


def study_name(base: FleetConfig, dims: Sequence[Dimension], digest: str) -> str:
    """The study of a search: named by its problem (the data's SHA-256, the horizon, the
    season) and a hash of the rest of what decides a trial's value (the spaces and the base
    config), so that the same search resumes its study and another starts its own."""
    search = json.dumps({"space": [d.text for d in dims], "base": base.to_dict()}, sort_keys=True)
    p = base.panel
    return f"fleet-{digest[:16]}-h{p.horizon}-s{p.season or 1}-{hashlib.sha256(search.encode()).hexdigest()[:12]}"


def open_fleet_study(path: Path, name: str, seed: int) -> optuna.Study:
    """The study ``name`` in the SQLite file ``path``, created if new. Trials left running by
    a killed search are marked failed (interrupted). TPE's seed is ``seed`` and the number of
    trials stored, so that a resumed search does not propose its first trials again."""
    from lstm_stateful.sweep.tune import import_optuna

    optuna = import_optuna()
    storage = f"sqlite:///{path.resolve()}"
    study = optuna.create_study(storage=storage, study_name=name, direction="minimize", load_if_exists=True)
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    n = len(study.get_trials(deepcopy=False))
    study.sampler = optuna.samplers.TPESampler(seed=(seed + 1_000_003 * n) % 2**32)
    return study


def _run_trial(study: optuna.Study, trial: optuna.Trial, base: FleetConfig, panel: Panel) -> None:
    """Train and tell one trial. A config refused (``ConfigError``) fails it with the reason;
    anything else (an interrupt) fails it without one (not counted) and is raised again."""
    from lstm_stateful.sweep.tune import FAILURE, import_optuna

    fail = import_optuna().trial.TrialState.FAIL
    try:
        cfg = with_settings(base, trial.params)
        check(cfg, panel)
        score = score_run(cfg, panel)
    except ConfigError as e:
        trial.set_user_attr(FAILURE, str(_misfit("space", trial.params, e)))
        study.tell(trial, state=fail)
        return
    except BaseException:
        study.tell(trial, state=fail)
        raise
    trial.set_user_attr(SCORE_ATTR, score.to_dict())
    study.tell(trial, score.objective)


def run_trials(
    study: optuna.Study,
    base: FleetConfig,
    dims: Sequence[Dimension],
    panel: Panel,
    trials: int,
    on_trial: Callable[[FleetTrial], None] | None = None,
) -> int:
    """Ask, train and tell trials one at a time until the study holds ``trials`` finished
    ones (``sweep.tune.finished``); returns how many were trained now."""
    from lstm_stateful.sweep.tune import distributions, finished

    space = distributions(dims)
    trained = 0
    while finished(study) < trials:
        trial = study.ask(space)
        _run_trial(study, trial, base, panel)
        trained += 1
        if on_trial is not None:
            on_trial(trial_row(study.get_trials(deepcopy=False)[-1]))
    return trained


def trial_row(t: optuna.trial.FrozenTrial) -> FleetTrial:
    """A stored trial as a ``FleetTrial``."""
    from lstm_stateful.sweep.tune import FAILURE

    state = t.state.name.lower()
    if t.state.name == "FAIL":
        state = "failed" if FAILURE in t.user_attrs else "interrupted"
    raw = t.user_attrs.get(SCORE_ATTR)
    score = None if raw is None else FleetScore.from_dict(raw)
    return FleetTrial(t.number, state, dict(t.params), score, t.user_attrs.get(FAILURE))


def best_trial(rows: Sequence[FleetTrial]) -> FleetTrial:
    """The complete trial of the lowest objective (the first of equals); a ``ConfigError``
    on ``space`` if none completed."""
    complete = [r for r in rows if r.state == "complete" and r.score is not None]
    if not complete:
        why = next((r.failure for r in rows if r.failure), "every trial was interrupted")
        raise ConfigError("space", f"no trial of the {len(rows)} completed; the first failure: {why}")
    return min(complete, key=lambda r: (r.score.objective if r.score else math.inf, r.number))


def trials_csv(dims: Sequence[Dimension], rows: Sequence[FleetTrial]) -> str:
    """``trials.csv``: one row per trial, by number: its state, params (a column per
    searched setting), score (``SCORE_COLUMNS``; empty unless trained) and why it failed."""
    names = [d.name for d in dims]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["number", "state", *names, *SCORE_COLUMNS, "failure"])
    for r in rows:
        score = _score_cells(r.score) if r.score is not None else [""] * len(SCORE_COLUMNS)
        writer.writerow([r.number, r.state, *(csv_cell(r.params.get(n)) for n in names), *score, csv_cell(r.failure)])
    return buf.getvalue()


def best_dict(o: FleetTuneOutput) -> dict[str, object]:
    """``best.json``: the study, the objective, the best trial's params, config and score
    (its test MASE from the same run: the test never chose it)."""
    assert o.best.score is not None  # a complete trial
    return {
        "study": {"storage": f"sqlite:///{o.study_path.resolve()}", "name": o.study_name},
        "objective": OBJECTIVE,
        "space": [d.text for d in o.dimensions],
        "best_trial": o.best.number,
        "params": dict(o.best.params),
        "score": o.best.score.to_dict(),
        "config": o.best_config.to_dict(),
    }


def fleet_tune(
    base: FleetConfig,
    space: Sequence[Dimension],
    trials: int,
    out: Path,
    panel: Panel | None = None,
    *,
    cache: bool = True,
    on_trial: Callable[[FleetTrial], None] | None = None,
) -> FleetTuneOutput:
    """Search ``space`` around ``base`` with Optuna's TPE (seeded from ``base.seed``) until
    the study in ``OUT/fleet_tune.sqlite`` holds ``trials`` finished trials, then write
    ``OUT/trials.csv`` and ``OUT/best.json`` (see the module). The panel is read once (unless
    given) and every space's extremes checked against it before any trial. ``on_trial``:
    after each trial trained now; ``cache``: JAX's persistent compilation cache."""
    from lstm_stateful.sweep.tune import import_optuna

    start, dims = time.perf_counter(), tuple(space)
    require_int("trials", trials)
    import_optuna()  # a missing extra is said before anything is read or written
    panel = panel if panel is not None else read(base)
    _check_space(base, dims, panel)
    out = dirs.writable(out, "out")
    name = study_name(base, dims, data_digest(base, panel))
    study = open_fleet_study(out / STUDY_FILE, name, base.seed)
    _enable_cache(cache)
    trained = run_trials(study, base, dims, panel, trials, on_trial)
    rows = tuple(trial_row(t) for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number))
    best = best_trial(rows)
    best_config = with_settings(base, best.params)
    o = FleetTuneOutput(rows, best, best_config, dims, out, out / STUDY_FILE, name, trained, 0.0)
    write_atomic(out / TRIALS_FILE, trials_csv(dims, rows))
    write_atomic(out / BEST_FILE, json.dumps(best_dict(o), indent=2, allow_nan=False) + "\n")
    return dataclasses.replace(o, seconds=time.perf_counter() - start)


def sweep_table(o: FleetSweepOutput) -> tuple[list[str], list[list[str]]]:
    """The header and rows of a table of a sweep's points, the best first."""
    rows = [table_row(str(i), p.settings, o.keys, p.score) for i, p in enumerate(o.points, 1)]
    return table_header("#", o.keys), rows


def tune_table(o: FleetTuneOutput, top: int = 10) -> tuple[list[str], list[list[str]]]:
    """The header and rows of a table of a search's ``top`` complete trials, the best first."""
    names = [d.name for d in o.dimensions]
    scored = [(t.score.objective, t.number, t.params, t.score) for t in o.trials if t.score is not None]
    rows = [table_row(str(n), params, names, score) for _, n, params, score in sorted(scored)[:top]]
    return table_header("trial", names), rows
