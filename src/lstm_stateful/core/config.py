"""The frozen configuration of a run, one dataclass per concern, validated on creation.

Pure Python (no JAX, no NumPy): the CLI validates every flag before it imports anything
heavy, so bad input fails in milliseconds with nothing lost.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from lstm_stateful.core.errors import ConfigError

# The two models every run trains and compares, in reporting order.
MODES = ("stateful", "stateless")
# Recurrent cells, by their ``--cell`` names: Keras's LSTM, GRU (reset_after) and SimpleRNN.
CELLS = ("lstm", "gru", "simple")
# Stateful batch layouts: Keras's row order, or batch_size contiguous streams side by side.
LAYOUTS = ("interleaved", "contiguous")
# Time order of the inputs inside a window, as fed to the cell.
ORDERS = ("newest-first", "oldest-first")
# What the model outputs at t: the input's trailing mean (the example's task), the input
# ``horizon`` steps ahead, or another column of the data file.
TASKS = ("moving-average", "forecast", "target")
# What the models learn: the series itself, its differences, or the differences of its log
# (docs/protocol.md, "Transforms"); predictions and scores are back in the data's units.
TRANSFORMS = ("none", "diff", "log-diff")


def require_int(flag: str, value: object, low: int = 1, high: int | None = None) -> None:
    """``value`` must be an int in [low, high); bool is not an int here."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value < high)
    if not ok:
        allowed = "a positive integer" if (low, high) == (1, None) else f"an integer in [{low}, {high})"
        raise ConfigError(flag, f"must be {allowed}, got {value!r}")


def require_columns(param: str, cols: object, empty: bool = False) -> None:
    """``cols`` must be a tuple of distinct, non-empty column names (and hold one, unless ``empty``)."""
    if not (isinstance(cols, tuple) and (cols or empty) and all(isinstance(c, str) and c for c in cols)):
        kind = "a tuple" if empty else "a non-empty tuple"
        raise ConfigError(param, f"must be {kind} of column names, got {cols!r}")
    if twice := next((c for i, c in enumerate(cols) if c in cols[:i]), None):
        raise ConfigError(param, f"lists the column {twice!r} twice; name each input column once")


def _require_positive_finite(flag: str, value: object) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ConfigError(flag, f"must be a finite number > 0, got {value!r}")


def require_choice(flag: str, value: object, allowed: tuple[str, ...]) -> None:
    """``value`` must be one of ``allowed``."""
    if value not in allowed:
        raise ConfigError(flag, f"must be one of {', '.join(allowed)}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What series to use and how to cut it.

    The generated series is the example's (``amplitude``, ``data_seed``). With ``file``,
    the inputs are that file's ``input_cols`` (the first one is the series the task is made
    from), and ``input_len`` is the number of rows left after the drops
    (``experiment_config`` counts them from the file's rows). ``batch_size`` lives here
    because the split and the batch layout depend on it. ``transform`` is what the models
    learn (the series, or its differences); ``season`` the period of the seasonal naive
    baseline (None: no seasonal baseline).
    """

    input_len: int = 1000
    tsteps: int = 2
    lahead: int = 1
    batch_size: int = 1
    amplitude: float = 0.1
    data_seed: int = 1986
    train_ratio: float = 0.8
    layout: str = "interleaved"
    order: str = "newest-first"
    task: str = "moving-average"
    horizon: int = 1
    file: str | None = None
    input_cols: tuple[str, ...] = ()
    target_col: str | None = None
    standardize: bool = False
    drop_missing: bool = False
    transform: str = "none"
    season: int | None = None

    def __post_init__(self) -> None:
        for name in ("input_len", "tsteps", "lahead", "batch_size", "horizon"):
            require_int(name, getattr(self, name))
        require_int("data_seed", self.data_seed, 0, 2**32)
        _require_positive_finite("amplitude", self.amplitude)
        if not (isinstance(self.train_ratio, int | float) and 0 < self.train_ratio < 1):
            raise ConfigError("train_ratio", f"must be in (0, 1), got {self.train_ratio!r}")
        require_choice("layout", self.layout, LAYOUTS)
        require_choice("order", self.order, ORDERS)
        require_choice("task", self.task, TASKS)
        require_choice("transform", self.transform, TRANSFORMS)
        self._check_inputs()
        self._check_source()
        self._check_sizes()

    def _check_inputs(self) -> None:
        """Input columns: a tuple of distinct, non-empty names; a season: an int >= 2."""
        require_columns("input", self.input_cols, empty=True)
        if self.season is not None:
            require_int("season", self.season, 2)
            if self.season < self.horizon:
                raise ConfigError("season", f"must be >= `horizon` ({self.horizon}), got {self.season}")

    @property
    def n_features(self) -> int:
        """Values per time step: the input columns of a file, the generated series' one."""
        return max(1, len(self.input_cols))

    def _check_source(self) -> None:
        """The task and the columns agree with where the series comes from."""
        file_only = {"input": bool(self.input_cols), "target": self.task == "target"}
        file_only |= {"standardize": self.standardize, "drop_missing": self.drop_missing}
        if self.file is None and any(file_only.values()):
            name = next(f for f, given in file_only.items() if given)
            raise ConfigError(name, "needs a `data` file (the generated series has no columns to choose or scale)")
        if self.file is not None and not self.input_cols:
            raise ConfigError("input", "is required with `data`: name the column (or columns) that feed the model")
        if (self.task == "target") != (self.target_col is not None):
            raise ConfigError("target", f"a target column and `task` {self.task} do not go together")
        if self.task != "forecast" and self.horizon != 1:
            raise ConfigError("horizon", "is the forecast distance; it goes with `task` forecast only")
        if self.task != "moving-average" and self.tsteps != 1:
            raise ConfigError("tsteps", f"is the moving-average window; `task` {self.task} takes none")
        if self.file is None and self.transform == "log-diff":
            problem = "needs a positive series; the generated one (uniform around 0) has non-positive values"
            raise ConfigError("transform", f"log-diff {problem}: use diff, or a `data` file")
        if self.task == "target" and self.transform != "none":
            problem = "needs a target made from the input (a target column's past values are not inputs)"
            raise ConfigError("transform", f"{self.transform} {problem}; use `task` forecast or moving-average")

    def _check_sizes(self) -> None:
        length = "data" if self.file else "input_len"
        for name in ("tsteps", "lahead"):
            if getattr(self, name) > self.input_len:
                rows = f"the {self.input_len} rows of `{length}`"
                raise ConfigError(name, f"must be <= {rows}, got {getattr(self, name)}")
        n_rows = int(self.input_len * self.train_ratio)
        if n_rows < self.batch_size:
            raise ConfigError(
                "batch_size",
                f"must be <= the {n_rows} training rows of `{length}` ({self.input_len} rows), got {self.batch_size}",
            )
        n_test = split_sizes(self)[1]
        if n_test < max(self.tsteps, 1):
            raise ConfigError(
                length,
                f"leaves {n_test} test rows at `batch_size` {self.batch_size}; need at least `tsteps` "
                f"({self.tsteps}) so the stateful score has a point left after dropping tsteps-1",
            )
        if self.season is not None and self.season > split_sizes(self)[0]:
            problem = f"must be <= the {split_sizes(self)[0]} training rows (the first test rows look back a season)"
            raise ConfigError("season", f"{problem}, got {self.season}")
        per_stream = n_test // self.batch_size
        if per_stream < self.tsteps:
            raise ConfigError(
                "batch_size",
                f"cuts the {n_test} test rows into {self.batch_size} {self.layout} streams of {per_stream}; "
                f"each needs at least `tsteps` ({self.tsteps}) rows so its stateful score keeps a point",
            )

    @property
    def to_drop(self) -> int:
        """Leading rows lost to the moving average, the window and the transform (docs/protocol.md, step 1)."""
        return leading_drop(self.tsteps, self.lahead, self.transform)

    @property
    def tail_drop(self) -> int:
        """Trailing rows lost because their target lies beyond the series (forecasts)."""
        return trailing_drop(self.task, self.horizon)


def leading_drop(tsteps: int, lahead: int, transform: str = "none") -> int:
    """Rows at the start without a full moving average or window (docs/protocol.md, step 1).

    A transform costs one row more: the first difference needs the value before it.
    """
    return max(tsteps - 1, lahead - 1) + (transform != "none")


def trailing_drop(task: str, horizon: int) -> int:
    """Rows at the end whose forecast target lies beyond the series."""
    return horizon if task == "forecast" else 0


def split_sizes(cfg: DataConfig) -> tuple[int, int]:
    """(n_train, n_test) rows after the example's batch-size trims (docs/protocol.md, step 6)."""
    n_train = int(cfg.input_len * cfg.train_ratio)
    n_train -= n_train % cfg.batch_size
    n_test = cfg.input_len - n_train - cfg.input_len % cfg.batch_size
    return n_train, n_test


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture: ``layers`` stacked ``cell`` layers of ``units`` each (LSTM, GRU or
    SimpleRNN; each passes its whole sequence to the next) then ``Dense(1)`` on the last
    layer's final output, on ``n_features`` inputs per step."""

    units: int = 20
    n_features: int = 1
    cell: str = "lstm"
    layers: int = 1

    def __post_init__(self) -> None:
        require_int("units", self.units)
        require_choice("cell", self.cell, CELLS)
        require_int("n_features", self.n_features)
        require_int("layers", self.layers)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. ``epochs`` is static in the compiled program (another count
    recompiles); ``learning_rate`` is one of its inputs (another rate does not)."""

    epochs: int = 10
    learning_rate: float = 1e-3

    def __post_init__(self) -> None:
        require_int("epochs", self.epochs)
        _require_positive_finite("lr", self.learning_rate)


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything a run needs; a run is reproducible from this alone."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    seeds: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        require_int("seeds", self.seeds)
        require_int("seed", self.seed, 0, 2**31)
        if self.model.n_features != self.data.n_features:
            problem = f"is {self.model.n_features}; the data has {self.data.n_features} input column(s)"
            raise ConfigError("n_features", problem)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ExperimentConfig:
        """The inverse of ``to_dict`` (validated like any other config). Also reads the
        dicts of earlier versions: one ``input_col`` (or None) before several inputs."""
        data = dict(d["data"])
        if "input_col" in data:
            column = data.pop("input_col")
            data["input_cols"] = () if column is None else (column,)
        if isinstance(data.get("input_cols"), list):  # JSON has no tuples
            data["input_cols"] = tuple(data["input_cols"])
        return cls(
            data=DataConfig(**data),
            model=ModelConfig(**d["model"]),
            train=TrainConfig(**d["train"]),
            seeds=d["seeds"],
            seed=d["seed"],
        )


# Every setting of an experiment by its flat name (the CLI's flags, a sweep's grid keys),
# with the config part and field it sets (None: ``ExperimentConfig`` itself).
SETTINGS: dict[str, tuple[str | None, str]] = {
    **{name: ("data", name) for name in ("input_len", "tsteps", "lahead", "batch_size", "data_seed")},
    **{name: ("data", name) for name in ("amplitude", "train_ratio", "layout", "order", "task", "horizon")},
    **{name: ("data", name) for name in ("standardize", "drop_missing", "transform", "season")},
    **{"data": ("data", "file"), "input": ("data", "input_cols"), "target": ("data", "target_col")},
    **{"units": ("model", "units"), "cell": ("model", "cell"), "layers": ("model", "layers")},
    **{"epochs": ("train", "epochs"), "lr": ("train", "learning_rate")},
    **{"seeds": (None, "seeds"), "seed": (None, "seed")},
}


# How a setting's values read as text (a sweep's --grid, a search's --space): numbers,
# one of a few words, or a switch; every other setting is an integer.
FLOAT_SETTINGS = ("lr", "amplitude", "train_ratio")
CHOICE_SETTINGS: dict[str, tuple[str, ...]] = {
    "cell": CELLS, "layout": LAYOUTS, "order": ORDERS, "transform": TRANSFORMS, "task": TASKS,
}  # fmt: skip
SWITCH_SETTINGS = ("standardize", "drop_missing")
TEXT_SETTINGS = ("data", "input", "target")


def dashed(name: str) -> str:
    """A setting as a user types it: ``batch_size`` -> ``batch-size``."""
    return name.replace("_", "-")


def value_type(name: str) -> type:
    """The type of a setting's values: float, str (a choice or a name), bool or int."""
    if name in FLOAT_SETTINGS:
        return float
    if name in CHOICE_SETTINGS or name in TEXT_SETTINGS:
        return str
    return bool if name in SWITCH_SETTINGS else int


def setting_name(param: str, text: str, allowed: tuple[str, ...], varies: str, why: str = "") -> str:
    """``"batch-size"`` -> ``"batch_size"``, which must be one of ``allowed``; else a
    ConfigError on ``param`` listing them. ``varies``: who varies them ("a grid can vary");
    ``why``: what a setting left out of ``allowed`` decides, if one is named."""
    name = text.strip().replace("-", "_")
    if name not in allowed:
        what = why if why and name in SETTINGS else f"is not a setting {varies}"
        keys = ", ".join(sorted(dashed(k) for k in allowed))
        raise ConfigError(param, f"{text.strip()!r} {what}; the keys are {keys}")
    return name


def setting_value(param: str, name: str, text: str) -> int | float | str | bool:
    """One value of setting ``name`` read from ``text`` by its type (a choice must be one of
    its words, a number finite); the config checks its range later. Errors name ``param``
    and say ``name=text``."""
    kind, where = value_type(name), f"{dashed(name)}={text}"
    if name in CHOICE_SETTINGS:
        if text not in CHOICE_SETTINGS[name]:
            raise ConfigError(param, f"{where}: must be one of {', '.join(CHOICE_SETTINGS[name])}")
        return text
    if kind is bool:
        if text.lower() not in ("true", "false"):
            raise ConfigError(param, f"{where}: must be true or false")
        return text.lower() == "true"
    if kind is str:
        return text
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError(param, f"{where}: {text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if not math.isfinite(value):
        raise ConfigError(param, f"{where}: {text!r} is not a finite number")
    return value


def first_repeated(values: Sequence[object]) -> object | None:
    """The first value met twice in ``values`` (a list, so that True and 1 differ), or None."""
    return next((v for i, v in enumerate(values) if any(v == w and type(v) is type(w) for w in values[:i])), None)


def settings_of(cfg: ExperimentConfig) -> dict[str, object]:
    """Every setting of ``cfg`` by its flat name: the inverse of ``experiment_config``."""
    parts = {"data": cfg.data, "model": cfg.model, "train": cfg.train, None: cfg}
    return {name: getattr(parts[part], field) for name, (part, field) in SETTINGS.items()}


def _resolve_task(s: dict[str, object]) -> None:
    """The task a target column or ``task`` names, and the tsteps it implies (in place)."""
    task, target = s.get("task"), s.get("target")
    if task is not None and task not in TASKS[:2]:
        raise ConfigError("task", f"must be one of {', '.join(TASKS[:2])}, got {task!r} (or name a `target` column)")
    if task is not None and target is not None:
        raise ConfigError("target", "names the column to output; it does not go with `task`")
    s["task"] = "target" if target is not None else task or "moving-average"
    if s["task"] != "moving-average":
        s.setdefault("tsteps", 1)  # the moving-average window; other tasks have none


def usable_rows(s: dict[str, object], file_rows: int) -> int:
    """Of a data file's rows, those left once the windows and the target drop theirs: the
    series' ``input_len``. s: resolved settings (task and tsteps set)."""
    defaults = DataConfig()
    tsteps, lahead = s.get("tsteps", defaults.tsteps), s.get("lahead", defaults.lahead)
    horizon = s.get("horizon", defaults.horizon)
    for name, value in (("tsteps", tsteps), ("lahead", lahead), ("horizon", horizon)):
        require_int(name, value)
    assert isinstance(tsteps, int) and isinstance(lahead, int) and isinstance(horizon, int)  # checked above
    transform = str(s.get("transform", defaults.transform))
    dropped = leading_drop(tsteps, lahead, transform) + trailing_drop(str(s["task"]), horizon)
    if file_rows - dropped < 2:
        problem = f"{s['data']!r} has {file_rows} rows; the windows and the target use {dropped}, too few"
        raise ConfigError("data", problem)
    return file_rows - dropped


def experiment_config(settings: Mapping[str, object], file_rows: int | None = None) -> ExperimentConfig:
    """An experiment from flat settings (names of ``SETTINGS``; the others keep their defaults).

    A ``target`` column makes the task ``target``; a task other than the moving average
    implies tsteps 1. With a ``data`` file, ``file_rows`` is its row count (after
    ``drop_missing``) and ``input_len`` is what the windows leave of it.
    """
    s = dict(settings)
    for name in s:
        if name not in SETTINGS:
            raise ConfigError(name, f"is not a setting; the settings are {', '.join(sorted(SETTINGS))}")
    _resolve_task(s)
    if s.get("data") is not None:
        if "input_len" in s:
            raise ConfigError("input_len", "sets the generated series' length; with `data` the file's rows are used")
        if file_rows is None:
            raise ValueError("experiment_config: file_rows is required with a data file")
        s["input_len"] = usable_rows(s, file_rows)
    inputs = s.get("input")
    if isinstance(inputs, str | list):  # one name, or a list: the tuple the config holds
        s["input"] = (inputs,) if isinstance(inputs, str) else tuple(inputs)
    parts: dict[str | None, dict[str, object]] = {"data": {}, "model": {}, "train": {}, None: {}}
    for name, value in s.items():
        part, field = SETTINGS[name]
        parts[part][field] = value
    parts["model"].setdefault("n_features", max(1, len(s.get("input") or ())))  # type: ignore[arg-type]
    return ExperimentConfig(
        data=DataConfig(**parts["data"]),  # type: ignore[arg-type]  # each field checks its value
        model=ModelConfig(**parts["model"]),  # type: ignore[arg-type]
        train=TrainConfig(**parts["train"]),  # type: ignore[arg-type]
        **parts[None],  # type: ignore[arg-type]
    )
