"""What a sweep trains: the (tsteps, lahead) grid, validated, and its split into groups.

Pure Python (no JAX, no NumPy), like ``config``: a malformed range or a point that does
not fit the series fails before anything heavy is imported or trained.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

from lstm_stateful.core.config import MODES, ExperimentConfig
from lstm_stateful.core.errors import ConfigError

# Part of every point's key: bump it when a change to the training protocol makes results
# stored by an earlier version wrong for the same config.
PROTOCOL_VERSION = 1
# The most values one --tsteps or --lahead range may hold, and the most points in a grid:
# far beyond any sweep worth running, and small enough to check every point at once.
MAX_RANGE_VALUES = 1024
MAX_POINTS = 16_384
# The most tsteps values trained in one compiled program (x 2 modes x seeds lanes):
# bounds the memory and the work lost to a kill mid-group.
MAX_TSTEPS_PER_GROUP = 8


def parse_range(flag: str, text: str) -> tuple[int, ...]:
    """``"a:b"`` (inclusive) or ``"1,2,4"`` -> sorted distinct positive ints."""
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
        if low < 1:
            raise ConfigError(flag, f"must be positive integers, got {low} in {text!r}")
        if high < low:
            raise ConfigError(flag, f"range {part.strip()!r} is empty: its end must be >= its start")
        if high - low + 1 + len(values) > MAX_RANGE_VALUES:
            raise ConfigError(flag, f"{text!r} holds more than {MAX_RANGE_VALUES} values")
        values.extend(range(low, high + 1))
    return tuple(sorted(set(values)))


@dataclasses.dataclass(frozen=True)
class Point:
    """One point of the grid; trained for every seed and both modes."""

    tsteps: int
    lahead: int


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """The grid and the config every point shares (its tsteps and lahead are replaced per point)."""

    tsteps: tuple[int, ...]
    lahead: tuple[int, ...]
    base: ExperimentConfig = dataclasses.field(default_factory=ExperimentConfig)

    def __post_init__(self) -> None:
        for flag, values in (("tsteps", self.tsteps), ("lahead", self.lahead)):
            if not values:
                raise ConfigError(flag, "the grid is empty: give at least one value")
        if len(self.tsteps) * len(self.lahead) > MAX_POINTS:
            raise ConfigError(
                "lahead", f"the grid has {len(self.tsteps) * len(self.lahead):,} points; at most {MAX_POINTS:,}"
            )
        for point in self.points:  # each point's DataConfig names the flag that does not fit
            self.config(point)

    @property
    def points(self) -> tuple[Point, ...]:
        return tuple(Point(t, la) for la in self.lahead for t in self.tsteps)

    def config(self, point: Point) -> ExperimentConfig:
        return point_config(self.base, point)

    @property
    def trainings_per_point(self) -> int:
        """Models trained per point: both modes x every seed."""
        return len(MODES) * self.base.seeds

    @property
    def trainings(self) -> int:
        return len(self.points) * self.trainings_per_point

    def to_dict(self) -> dict:
        return {"tsteps": list(self.tsteps), "lahead": list(self.lahead), "base": self.base.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> SweepSpec:
        return cls(tuple(d["tsteps"]), tuple(d["lahead"]), ExperimentConfig.from_dict(d["base"]))


def point_config(base: ExperimentConfig, point: Point) -> ExperimentConfig:
    """``base`` with the point's tsteps and lahead (validated: a misfit names its flag)."""
    data = dataclasses.replace(base.data, tsteps=point.tsteps, lahead=point.lahead)
    return dataclasses.replace(base, data=data)


# Config fields added after protocol 1, with the value that reproduces protocol 1: left
# out of the key at that value, so stores written before them keep their keys.
LATER_FIELDS: dict[str, dict[str, object]] = {
    "data": {
        **{"layout": "interleaved", "order": "newest-first", "task": "moving-average", "horizon": 1},
        **{"file": None, "input_cols": (), "target_col": None, "standardize": False, "drop_missing": False},
    },
    "model": {"cell": "lstm"},
}


def point_key(cfg: ExperimentConfig) -> str:
    """The store key of a point's config: a hash of everything that decides its results.

    ``seeds`` is left out: seed i's weights do not depend on how many seeds run, so a
    rerun with more seeds keeps the seeds already trained.
    """
    d = cfg.to_dict()
    del d["seeds"]
    for part, fields in LATER_FIELDS.items():
        for name, old_value in fields.items():
            if d[part][name] == old_value:
                del d[part][name]
    d["protocol"] = PROTOCOL_VERSION
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:32]


@dataclasses.dataclass(frozen=True)
class Group:
    """Points that share array shapes (one lahead), trained by one compiled program."""

    lahead: int
    tsteps: tuple[int, ...]
    base: ExperimentConfig

    @property
    def points(self) -> tuple[Point, ...]:
        return tuple(Point(t, self.lahead) for t in self.tsteps)

    @property
    def trainings(self) -> int:
        """Trained models: points x modes x seeds."""
        return len(self.tsteps) * len(MODES) * self.base.seeds

    @property
    def work(self) -> float:
        """Relative cost, for the time-left estimate: sequential LSTM steps x lanes."""
        return self.trainings * (self.lahead + 1)


def groups(spec: SweepSpec, pending: set[Point]) -> list[Group]:
    """The pending points in groups, the most expensive first (the sweep ends sooner)."""
    out = []
    for lahead in spec.lahead:
        tsteps = tuple(t for t in spec.tsteps if Point(t, lahead) in pending)
        for i in range(0, len(tsteps), MAX_TSTEPS_PER_GROUP):
            out.append(Group(lahead, tsteps[i : i + MAX_TSTEPS_PER_GROUP], spec.base))
    return sorted(out, key=lambda g: -g.work)
