"""The frozen configuration of a fleet run: one global model over a panel of series.

Pure Python, validated on creation like ``core.config``. The defaults differ from the
example's (``ExperimentConfig``): they are the ones measured best on a real monthly panel
(docs/fleets.md, "Defaults, by measurement").
"""

from __future__ import annotations

import dataclasses

from lstm_stateful.core.config import ModelConfig, TrainConfig, require_choice, require_int
from lstm_stateful.core.errors import ConfigError

# Per-series scaling, from each series' training part only: divide by the mean absolute
# value (as DeepAR does), standardise, or take log1p minus the recent mean.
SCALINGS = ("log", "mean-abs", "standard")
# How a horizon is forecast: the carried state rolls forward feeding back its own
# predictions, or one head emits every step at once from the state at the origin.
STRATEGIES = ("recursive", "direct")
# statsforecast's baselines a run may fit (the stats extra): AutoETS, AutoTheta, AutoARIMA.
STATS = ("ets", "theta", "arima")
# What the panel's missing timestamps and values become (None: refused).
FILLS = ("previous", "linear", "zero")
# How prediction intervals are made: split conformal prediction on the validation part.
CALIBRATIONS = ("conformal",)
# Features of each step: the value one step back; with a season also the value one season
# back and the season's phase (sine, cosine).
SEASONAL_FEATURES = 4


@dataclasses.dataclass(frozen=True)
class PanelConfig:
    """The panel and its protocol.

    file, id_col, time_col, value_col: the long-format file and its columns; horizon: H,
    steps forecast from each origin (the last H values of a series are its test, the H
    before them its validation part); windows: K rolling test origins, H apart (the last
    K*H values are tested; training ends K*H + H before the end); season: the period of the
    seasonal naive baseline, the MASE scale and the seasonal features (None: 1, none);
    scaling, strategy, fill: see SCALINGS, STRATEGIES, FILLS; lahead: the stateless model's
    window; chunk: steps per truncated-backpropagation chunk of the stateful model;
    batch_size: series per batch; stats: statsforecast's baselines to fit (at the test
    origins only: AutoARIMA costs about 0.25 s a series); levels: the prediction intervals'
    levels, per cent, in (0, 100), ascending; calibrate: how intervals are made ("conformal":
    split conformal prediction on the validation part, ``core.panel_intervals``), required
    with levels (a point forecast has no spread of its own).
    """

    file: str
    id_col: str
    time_col: str
    value_col: str
    horizon: int = 1
    windows: int = 1
    season: int | None = None
    scaling: str = "log"
    strategy: str = "recursive"
    fill: str | None = None
    lahead: int = 3
    chunk: int = 24
    batch_size: int = 64
    stats: tuple[str, ...] = ("ets", "theta", "arima")
    levels: tuple[float, ...] = ()
    calibrate: str | None = None

    def __post_init__(self) -> None:
        self._check_intervals()
        for name in ("horizon", "windows", "lahead", "chunk", "batch_size"):
            require_int(name, getattr(self, name))
        if self.season is not None:
            require_int("season", self.season, 2)
        require_choice("scaling", self.scaling, SCALINGS)
        require_choice("strategy", self.strategy, STRATEGIES)
        if self.fill is not None:
            require_choice("fill", self.fill, FILLS)
        if not isinstance(self.stats, tuple):
            raise ConfigError("stats", f"must be a tuple of baseline names, got {self.stats!r}")
        for name in self.stats:
            require_choice("stats", name, STATS)
        if len(set(self.stats)) < len(self.stats):
            raise ConfigError("stats", f"names a baseline twice: {', '.join(self.stats)}; name each once")
        cols = {"id": self.id_col, "time": self.time_col, "input": self.value_col}
        for name, col in cols.items():
            if not (isinstance(col, str) and col):
                raise ConfigError(name, f"must be a column name, got {col!r}")
        names = list(cols)
        if twice := next((n for i, n in enumerate(names) if cols[n] in [cols[m] for m in names[:i]]), None):
            raise ConfigError(twice, f"names the column {cols[twice]!r} that another of `id`, `time`, `input` names")

    def _check_intervals(self) -> None:
        levels = self.levels
        if not isinstance(levels, tuple) or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                                    for v in levels):  # fmt: skip
            raise ConfigError("level", f"must be a tuple of numbers (per cent), got {levels!r}")
        if (bad := next((v for v in levels if not 0 < v < 100), None)) is not None:
            raise ConfigError("level", f"must lie in (0, 100) (per cent), got {bad:g}")
        if len(set(levels)) < len(levels) or list(levels) != sorted(levels):
            raise ConfigError("level", f"must be ascending, each once, got {', '.join(f'{v:g}' for v in levels)}")
        if self.calibrate is not None:
            require_choice("calibrate", self.calibrate, CALIBRATIONS)
        if levels and self.calibrate is None:
            raise ConfigError("calibrate", "is required with `level`: a point forecast has no spread of its own; "
                              "`calibrate` conformal makes intervals from the validation part's errors")  # fmt: skip
        if self.calibrate is not None and not levels:
            raise ConfigError("calibrate", "needs `level`: the intervals' levels, per cent (80,95)")

    @property
    def linear_window(self) -> int:
        """Values the linear baseline fits its line to: the stateless window, at least two seasons."""
        return max(self.lahead, 2 * self.period)

    @property
    def period(self) -> int:
        """The season, or 1 without one (the MASE scale is then the naive error)."""
        return self.season or 1

    @property
    def n_features(self) -> int:
        return SEASONAL_FEATURES if self.season else 1

    @property
    def head(self) -> int:
        """Values the model outputs at each step: 1 (recursive) or H (direct)."""
        return self.horizon if self.strategy == "direct" else 1

    def min_length(self) -> int:
        """Values a series needs: its tests and validation part, and a training part with at
        least two targets after its first full set of inputs."""
        return (self.windows + 1) * self.horizon + self.period + 2


def fleet_model() -> ModelConfig:
    return ModelConfig(units=32, n_features=SEASONAL_FEATURES)


def fleet_train() -> TrainConfig:
    return TrainConfig(epochs=30, learning_rate=3e-3)


@dataclasses.dataclass(frozen=True)
class FleetConfig:
    """Everything a fleet run needs; reproducible from this alone."""

    panel: PanelConfig
    model: ModelConfig = dataclasses.field(default_factory=fleet_model)
    train: TrainConfig = dataclasses.field(default_factory=fleet_train)
    seeds: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        require_int("seeds", self.seeds)
        require_int("seed", self.seed, 0, 2**31)
        if self.model.n_features != self.panel.n_features:
            problem = f"is {self.model.n_features}; a panel {'with' if self.panel.season else 'without'} a season"
            raise ConfigError("n_features", f"{problem} feeds {self.panel.n_features} values per step")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FleetConfig:
        """The inverse of ``to_dict``, validated like any other config."""
        tuples = {"stats": tuple(d["panel"].get("stats", STATS)), "levels": tuple(d["panel"].get("levels", ()))}
        return cls(
            panel=PanelConfig(**{**d["panel"], **tuples}),
            model=ModelConfig(**d["model"]),
            train=TrainConfig(**d["train"]),
            seeds=d["seeds"],
            seed=d["seed"],
        )


# The flat settings of a fleet run (the CLI's flags), with the part and field each sets.
FLEET_SETTINGS: dict[str, tuple[str | None, str]] = {
    "data": ("panel", "file"), "id": ("panel", "id_col"), "time": ("panel", "time_col"),
    "input": ("panel", "value_col"),
    **{name: ("panel", name) for name in ("horizon", "windows", "season", "scaling", "strategy", "fill")},
    **{name: ("panel", name) for name in ("lahead", "chunk", "batch_size", "stats", "calibrate")},
    "level": ("panel", "levels"),
    **{"units": ("model", "units"), "cell": ("model", "cell"), "layers": ("model", "layers")},
    **{"epochs": ("train", "epochs"), "lr": ("train", "learning_rate")},
    **{"seeds": (None, "seeds"), "seed": (None, "seed")},
}  # fmt: skip


def fleet_config(settings: dict[str, object]) -> FleetConfig:
    """A fleet run from flat settings (names of ``FLEET_SETTINGS``; the rest keep the fleet
    defaults). ``input`` may be one name or a one-name tuple: a panel has one value column."""
    s = dict(settings)
    for name in s:
        if name not in FLEET_SETTINGS:
            keys = ", ".join(sorted(FLEET_SETTINGS))
            raise ConfigError(name, f"is not a setting of a panel run (with `id`); the settings are {keys}")
    for name in ("data", "id", "time", "input"):
        if s.get(name) is None:
            raise ConfigError(name, "is required for a panel run: `data` FILE `id` COL `time` COL `input` COL")
    value = s["input"]
    if isinstance(value, tuple | list):
        if len(value) != 1:
            raise ConfigError("input", f"a panel takes one value column, got {len(value)}: {', '.join(value)}")
        s["input"] = value[0]
    parts: dict[str | None, dict[str, object]] = {"panel": {}, "model": {}, "train": {}, None: {}}
    for name, value in s.items():
        part, field = FLEET_SETTINGS[name]
        parts[part][field] = value
    panel = PanelConfig(**parts["panel"])  # type: ignore[arg-type]  # each field checks its value
    model = dataclasses.replace(fleet_model(), n_features=panel.n_features, **parts["model"])  # type: ignore[arg-type]
    train = dataclasses.replace(fleet_train(), **parts["train"])  # type: ignore[arg-type]
    return FleetConfig(panel=panel, model=model, train=train, **parts[None])  # type: ignore[arg-type]
