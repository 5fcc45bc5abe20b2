"""What a sweep trains: a grid over settings, validated, and its split into programs.

A grid has axes, each a setting and its values (``--grid lr=1e-3,1e-2``, or the ranges
``--tsteps 1:8 --lahead 1:8``); a point is one value per axis, and its config is the
base config with those values. Points that share a compiled program's shapes and static
settings train together (``groups``). Pure Python (no JAX, no NumPy), like ``config``: a
malformed grid or a point that does not fit the series fails before anything heavy is
imported or trained.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from lstm_stateful.core.config import (
    MODES,
    SETTINGS,
    ExperimentConfig,
    dashed,
    first_repeated,
    setting_name,
    setting_value,
    split_sizes,
    usable_rows,
    value_type,
)
from lstm_stateful.core.errors import ConfigError

# Part of every point's key: bump it when a change to the training protocol makes results
# stored by an earlier version wrong for the same config.
PROTOCOL_VERSION = 1
# The most values one --tsteps or --lahead range may hold, and the most points in a grid:
# far beyond any sweep worth running, and small enough to check every point at once.
MAX_RANGE_VALUES = 1024
MAX_POINTS = 16_384
# The most points trained in one compiled program: bounds the memory and the work lost
# to a kill mid-program.
MAX_PROBLEMS_PER_PROGRAM = 8
# The most trainings (points x modes x seeds) in one compiled program. The more lanes a
# program vmaps, the larger its working set, and past a few hundred it outgrows the caches:
# every training gets slower. Measured (benchmarks/bench_grid.py --only caps, 2-core CPU,
# 1,024 trainings of lahead 4): 18-19 ms a training in programs of 16 to 64, 20.5 ms at
# 128, 22 ms at 256, 54 ms in one program of 1,024. Bigger groups split, by points first,
# then by seeds.
MAX_TRAININGS_PER_PROGRAM = 64

# The settings a grid may vary (their values read by ``config.setting_value``). Left out:
# what the data is (data, input, target, task: one sweep studies one series and one
# target, so scores compare), what every point trains anyway (seeds, and seed: seed i of
# --seeds is already another initialisation), and what trains nothing (season: a
# baseline's period; drop_missing: which rows exist).
GRID_KEYS = (
    "tsteps", "lahead", "batch_size", "epochs", "units", "layers", "horizon", "input_len", "data_seed",
    "lr", "amplitude", "train_ratio", "cell", "layout", "order", "transform", "standardize",
)  # fmt: skip
# Settings of the generated series: with a data file they would change nothing.
GENERATED_ONLY = ("input_len", "amplitude", "data_seed")

Value = int | float | str | bool


def parse_range(flag: str, text: str, low_bound: int = 1) -> tuple[int, ...]:
    """``"a:b"`` (inclusive) or ``"1,2,4"`` -> sorted distinct ints >= low_bound (positive ones by default)."""
    values: list[int] = []
    for part in text.split(","):
        bounds = part.strip().split(":")
        try:
            numbers = [int(b) for b in bounds]
        except ValueError:
            numbers = []
        if len(numbers) not in (1, 2) or "" in (b.strip() for b in bounds):
            raise ConfigError(flag, f"malformed range {text!r}: use a:b (inclusive) or a list like 1,2,4")
        low, high = numbers[0], numbers[-1]
        if low < low_bound:
            allowed = "positive integers" if low_bound == 1 else f"integers >= {low_bound}"
            raise ConfigError(flag, f"must be {allowed}, got {low} in {text!r}")
        if high < low:
            raise ConfigError(flag, f"range {part.strip()!r} is empty: its end must be >= its start")
        if high - low + 1 + len(values) > MAX_RANGE_VALUES:
            raise ConfigError(flag, f"{text!r} holds more than {MAX_RANGE_VALUES} values")
        values.extend(range(low, high + 1))
    return tuple(sorted(set(values)))


@dataclasses.dataclass(frozen=True)
class Axis:
    """One setting of the grid and its values. ``flag``: the parameter that gave it
    (``grid``, or ``tsteps``/``lahead`` for their ranges), named by its errors."""

    key: str
    values: tuple[Value, ...]
    flag: str = "grid"


def _values(key: str, text: str) -> tuple[Value, ...]:
    """The values of one ``KEY=V1,V2,...``; integers also as ranges a:b. Numbers sorted."""
    if value_type(key) is int:
        try:
            return parse_range("grid", text, 0 if key == "data_seed" else 1)
        except ConfigError as e:
            raise ConfigError("grid", f"{dashed(key)}={text}: {e.problem}") from None
    parts = [p.strip() for p in text.split(",")]
    if "" in parts:
        raise ConfigError("grid", f"{dashed(key)}={text}: give values separated by commas, like {dashed(key)}=V1,V2")
    values = [setting_value("grid", key, p) for p in parts]
    if (twice := first_repeated(values)) is not None:
        raise ConfigError("grid", f"{dashed(key)}={text}: lists {twice} twice")
    return tuple(sorted(values)) if value_type(key) is float else tuple(values)


def parse_grid(
    texts: Iterable[str],
    key_of: Callable[[str], str] | None = None,
    axis_of: Callable[[str, str], Axis] | None = None,
) -> tuple[Axis, ...]:
    """``["lr=1e-3,1e-2", "units=8:16"]`` -> the axes, in the order given. Keys are setting
    names with dashes or underscores (``batch-size``); each may be given once. ``key_of``
    turns a key as typed into a setting's name (default: one of ``GRID_KEYS``), ``axis_of``
    reads its values (default: by the setting's type): a panel sweep passes its own."""
    key_of = key_of or (lambda name: setting_name("grid", name, GRID_KEYS, "a grid can vary"))
    axis_of = axis_of or (lambda key, values: Axis(key, _values(key, values)))
    axes: list[Axis] = []
    for text in texts:
        name, sep, values = text.partition("=")
        if not sep:
            raise ConfigError("grid", f"{text!r} is not KEY=V1,V2,...: name a setting, like lr=1e-3,1e-2")
        key = key_of(name)
        if any(a.key == key for a in axes):
            raise ConfigError("grid", f"{dashed(key)} is given twice: list its values once, {dashed(key)}=V1,V2,...")
        axes.append(axis_of(key, values))
    return tuple(axes)


@dataclasses.dataclass(frozen=True)
class Point:
    """One point of the grid, a value per axis, (setting, value) in the spec's axis order;
    trained for every seed and both modes."""

    values: tuple[tuple[str, Value], ...]

    def __getitem__(self, key: str) -> Value:
        return dict(self.values)[key]

    @property
    def label(self) -> str:
        """``lr=0.001, units=8``."""
        return ", ".join(f"{dashed(k)}={v}" for k, v in self.values)


def _file_rows(base: ExperimentConfig) -> int:
    """A data file's rows (after ``drop_missing``): what the base config's drops left, plus them."""
    return base.data.input_len + base.data.to_drop + base.data.tail_drop


def _changed(base: ExperimentConfig, values: Mapping[str, Value]) -> ExperimentConfig:
    """``base`` with the settings ``values`` (validated). With a data file, ``input_len`` is
    what the file's rows leave after this point's windows and target drop theirs."""
    parts: dict[str | None, dict[str, Any]] = {"data": {}, "model": {}, "train": {}, None: {}}
    for key, value in values.items():
        part, field = SETTINGS[key]
        parts[part][field] = value
    if base.data.file is not None:
        d = {**dataclasses.asdict(base.data), **parts["data"]}
        drops = {name: d[name] for name in ("tsteps", "lahead", "horizon", "transform", "task")}
        parts["data"]["input_len"] = usable_rows({**drops, "data": base.data.file}, _file_rows(base))
    return dataclasses.replace(
        base,
        data=dataclasses.replace(base.data, **parts["data"]),
        model=dataclasses.replace(base.model, **parts["model"]),
        train=dataclasses.replace(base.train, **parts["train"]),
    )


def point_config(base: ExperimentConfig, point: Point) -> ExperimentConfig:
    """``base`` with the point's values (validated: a misfit names its setting)."""
    return _changed(base, dict(point.values))


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """The grid's axes and the config every point shares (each point replaces its axes' settings)."""

    axes: tuple[Axis, ...]
    base: ExperimentConfig = dataclasses.field(default_factory=ExperimentConfig)

    @classmethod
    def ranges(
        cls, tsteps: tuple[int, ...], lahead: tuple[int, ...], base: ExperimentConfig | None = None
    ) -> SweepSpec:
        """The phase diagram's grid: tsteps x lahead (``--tsteps``, ``--lahead``)."""
        return cls((Axis("tsteps", tsteps, "tsteps"), Axis("lahead", lahead, "lahead")), base or ExperimentConfig())

    def __post_init__(self) -> None:
        for axis in self.axes:
            if not axis.values:
                raise ConfigError(axis.flag, "the grid is empty: give at least one value")
            if self.base.data.file is not None and axis.key in GENERATED_ONLY:
                problem = "shapes the generated series; with `data` the file's rows are used"
                raise ConfigError(axis.flag, f"{dashed(axis.key)} {problem}")
        size = math.prod(len(a.values) for a in self.axes)
        if size > MAX_POINTS:
            flag = "grid" if any(a.flag == "grid" for a in self.axes) else self.axes[-1].flag
            raise ConfigError(flag, f"the grid has {size:,} points; at most {MAX_POINTS:,}")
        for point in self.points:  # each point's config names the setting that does not fit
            self.config(point)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(a.key for a in self.axes)

    @property
    def is_phase_diagram(self) -> bool:
        """Whether the grid is tsteps x lahead (the example's phase diagram), and nothing else."""
        return sorted(self.keys) == ["lahead", "tsteps"]

    def values(self, key: str) -> tuple[Value, ...]:
        return next(a.values for a in self.axes if a.key == key)

    @property
    def points(self) -> tuple[Point, ...]:
        """Every combination, the first axis varying fastest (tsteps within lahead)."""
        combos = itertools.product(*(a.values for a in reversed(self.axes)))
        return tuple(Point(tuple(zip(reversed(self.keys), combo, strict=True))[::-1]) for combo in combos)

    def config(self, point: Point) -> ExperimentConfig:
        """The point's config; a misfit is a ``ConfigError`` naming the flag that gave it."""
        try:
            return point_config(self.base, point)
        except ConfigError as e:
            raise self._misfit(point, e) from None

    def _misfit(self, point: Point, e: ConfigError) -> ConfigError:
        """``e`` as the user's flags put it: a range's own error names the range's flag
        (``lahead``), a grid value's names ``grid``, the key and its value."""
        flags = {a.key: a.flag for a in self.axes}
        if flags.get(e.param, "grid") != "grid" or all(f != "grid" for f in flags.values()):
            return e
        if e.param in flags:
            return ConfigError("grid", f"{dashed(e.param)}={point[e.param]}: {e.problem}")
        grid_values = ", ".join(f"{dashed(k)}={v}" for k, v in point.values if flags[k] == "grid")
        return ConfigError("grid", f"at {grid_values}, `{e.param}` {e.problem}")

    @property
    def trainings_per_point(self) -> int:
        """Models trained per point: both modes x every seed."""
        return len(MODES) * self.base.seeds

    @property
    def trainings(self) -> int:
        return len(self.points) * self.trainings_per_point

    def to_dict(self) -> dict:
        axes = [{"key": a.key, "values": list(a.values), "flag": a.flag} for a in self.axes]
        return {"axes": axes, "base": self.base.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> SweepSpec:
        """The inverse of ``to_dict``; also reads the tsteps x lahead specs of earlier versions."""
        base = ExperimentConfig.from_dict(d["base"])
        if "axes" not in d:
            return cls.ranges(tuple(d["tsteps"]), tuple(d["lahead"]), base)
        return cls(tuple(Axis(a["key"], tuple(a["values"]), a["flag"]) for a in d["axes"]), base)


# Config fields added after protocol 1, with the value that reproduces protocol 1: left
# out of the key at that value, so stores written before them keep their keys.
LATER_FIELDS: dict[str, dict[str, object]] = {
    "data": {
        **{"layout": "interleaved", "order": "newest-first", "task": "moving-average", "horizon": 1},
        **{"file": None, "input_col": None, "target_col": None, "standardize": False, "drop_missing": False},
        **{"transform": "none", "season": None},
    },
    "model": {"cell": "lstm", "layers": 1},
}


def point_key(cfg: ExperimentConfig) -> str:
    """The store key of a point's config: a hash of everything that decides its results.

    ``seeds`` is left out: seed i's weights do not depend on how many seeds run, so a
    rerun with more seeds keeps the seeds already trained. One input column hashes as the
    single ``input_col`` of earlier versions did, so their stores keep their keys.
    """
    d = cfg.to_dict()
    del d["seeds"]
    columns = d["data"].pop("input_cols")
    if len(columns) <= 1:
        d["data"]["input_col"] = columns[0] if columns else None
    else:
        d["data"]["input_cols"] = list(columns)
    for part, fields in LATER_FIELDS.items():
        for name, old_value in fields.items():
            if name in d[part] and d[part][name] == old_value:
                del d[part][name]
    d["protocol"] = PROTOCOL_VERSION
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:32]


def program_key(cfg: ExperimentConfig) -> tuple:
    """What a compiled training program fixes: the model, epochs and initial weights, and
    the shapes of the batches. Points equal in it train in one program (their data,
    layout, order and learning rate may differ)."""
    d = cfg.data
    return (cfg.model, cfg.train.epochs, cfg.seed, d.lahead, d.batch_size, split_sizes(d))


@dataclasses.dataclass(frozen=True)
class Group:
    """Points trained by one compiled program (equal ``program_key``), for the seeds
    ``first_seed`` to ``stop_seed - 1`` and both modes; ``configs`` are the points' configs."""

    points: tuple[Point, ...]
    configs: tuple[ExperimentConfig, ...]
    first_seed: int
    stop_seed: int

    @property
    def seeds(self) -> int:
        return self.stop_seed - self.first_seed

    @property
    def trainings(self) -> int:
        """Trained models: points x modes x seeds."""
        return len(self.points) * len(MODES) * self.seeds

    @property
    def work(self) -> float:
        """Relative cost, for the time-left estimate: trainings x sequential cell steps."""
        cfg = self.configs[0]
        n_train, n_test = split_sizes(cfg.data)
        batches = (n_train * cfg.train.epochs + n_test * (cfg.train.epochs + 1)) / cfg.data.batch_size
        return self.trainings * batches * (cfg.data.lahead + 1) * cfg.model.layers


def seed_chunks(first: int, stop: int, cap: int | None = None) -> list[tuple[int, int]]:
    """Seeds first..stop-1 in near-equal contiguous chunks of at most cap // 2 seeds (both
    modes train each seed: 2 lanes); cap: trainings a program holds (None: the module's
    ``MAX_TRAININGS_PER_PROGRAM``)."""
    n, per = stop - first, max(1, (cap or MAX_TRAININGS_PER_PROGRAM) // len(MODES))
    count = -(-n // per)
    bounds = [first + round(i * n / count) for i in range(count + 1)]
    return list(itertools.pairwise(bounds))


def groups(spec: SweepSpec, pending: Mapping[Point, int]) -> list[Group]:
    """The pending points, each from its first seed not stored (``pending``) to the last,
    in groups that each train as one compiled program (``pack``), the most expensive first
    (the sweep ends sooner)."""
    members: dict[tuple, list[tuple[Point, ExperimentConfig]]] = defaultdict(list)
    for point in spec.points:
        if point in pending:
            cfg = spec.config(point)
            members[(program_key(cfg), pending[point])].append((point, cfg))
    out = [g for (_, first), points in members.items() for g in pack(points, first, spec.base.seeds)]
    return sorted(out, key=lambda g: -g.work)


def pack(members: Sequence[tuple[Point, ExperimentConfig]], first: int, stop: int) -> list[Group]:
    """Points of one ``program_key``, to train for seeds first..stop-1, in groups of at most
    ``MAX_PROBLEMS_PER_PROGRAM`` points and ``MAX_TRAININGS_PER_PROGRAM`` trainings: the
    seeds split first (``seed_chunks``, when one point alone has more lanes than that),
    then the points, into near-equal parts (so that most groups share one shape)."""
    out = []
    for low, high in seed_chunks(first, stop):
        per_program = MAX_TRAININGS_PER_PROGRAM // (len(MODES) * (high - low))
        out.extend(_split(members, max(1, min(MAX_PROBLEMS_PER_PROGRAM, per_program)), low, high))
    return out


def _split(points: Sequence[tuple[Point, ExperimentConfig]], size: int, first: int, stop: int) -> list[Group]:
    """``points`` in near-equal groups of at most ``size``."""
    count = -(-len(points) // size)
    bounds = [round(i * len(points) / count) for i in range(count + 1)]
    return [
        Group(tuple(p for p, _ in points[a:b]), tuple(c for _, c in points[a:b]), first, stop)
        for a, b in itertools.pairwise(bounds)
    ]
