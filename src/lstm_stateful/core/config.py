"""The frozen configuration of a run, one dataclass per concern, validated on creation.

Pure Python (no JAX, no NumPy): the CLI validates every flag before it imports anything
heavy, so bad input fails in milliseconds with nothing lost.
"""

from __future__ import annotations

import dataclasses
import math

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


def _require_int(flag: str, value: object, low: int = 1, high: int | None = None) -> None:
    """``value`` must be an int in [low, high); bool is not an int here."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value < high)
    if not ok:
        allowed = "a positive integer" if (low, high) == (1, None) else f"an integer in [{low}, {high})"
        raise ConfigError(flag, f"must be {allowed}, got {value!r}")


def _require_positive_finite(flag: str, value: object) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ConfigError(flag, f"must be a finite number > 0, got {value!r}")


def _require_choice(flag: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(flag, f"must be one of {', '.join(allowed)}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What series to use and how to cut it.

    The generated series is the example's (``amplitude``, ``data_seed``). With ``file``,
    the series is that file's ``input_col``, and ``input_len`` is the number of rows left
    after the drops (the CLI counts them when it reads the file). ``batch_size`` lives here
    because the split and the batch layout depend on it.
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
    input_col: str | None = None
    target_col: str | None = None
    standardize: bool = False
    drop_missing: bool = False

    def __post_init__(self) -> None:
        for name in ("input_len", "tsteps", "lahead", "batch_size", "horizon"):
            _require_int(f"--{name.replace('_', '-')}", getattr(self, name))
        _require_int("--data-seed", self.data_seed, 0, 2**32)
        _require_positive_finite("--amplitude", self.amplitude)
        if not 0 < self.train_ratio < 1:
            raise ConfigError("--train-ratio", f"must be in (0, 1), got {self.train_ratio!r}")
        _require_choice("--layout", self.layout, LAYOUTS)
        _require_choice("--order", self.order, ORDERS)
        _require_choice("--task", self.task, TASKS)
        self._check_source()
        self._check_sizes()

    def _check_source(self) -> None:
        """The task and the columns agree with where the series comes from."""
        file_only = {"--input": self.input_col is not None, "--target": self.task == "target"}
        file_only |= {"--standardize": self.standardize, "--drop-missing": self.drop_missing}
        if self.file is None and any(file_only.values()):
            flag = next(f for f, given in file_only.items() if given)
            raise ConfigError(flag, "needs --data FILE (the generated series has no columns to choose or scale)")
        if self.file is not None and not self.input_col:
            raise ConfigError("--input", "is required with --data: name the column that holds the input series")
        if (self.task == "target") != (self.target_col is not None):
            raise ConfigError("--target", f"--target COL and --task {self.task} do not go together")
        if self.task != "moving-average" and self.tsteps != 1:
            raise ConfigError("--tsteps", f"is the moving-average window; --task {self.task} takes none")

    def _check_sizes(self) -> None:
        length = "--data" if self.file else "--input-len"
        for name in ("tsteps", "lahead"):
            if getattr(self, name) > self.input_len:
                rows = f"the {self.input_len} rows of {length}"
                raise ConfigError(f"--{name}", f"must be <= {rows}, got {getattr(self, name)}")
        n_rows = int(self.input_len * self.train_ratio)
        if n_rows < self.batch_size:
            raise ConfigError(
                "--batch-size",
                f"must be <= the {n_rows} training rows of {length} ({self.input_len} rows), got {self.batch_size}",
            )
        n_test = split_sizes(self)[1]
        if n_test < max(self.tsteps, 1):
            raise ConfigError(
                length,
                f"leaves {n_test} test rows at --batch-size {self.batch_size}; need at least --tsteps "
                f"({self.tsteps}) so the stateful score has a point left after dropping tsteps-1",
            )
        per_stream = n_test // self.batch_size
        if self.layout == "contiguous" and per_stream < self.tsteps:
            raise ConfigError(
                "--batch-size",
                f"cuts the {n_test} test rows into {self.batch_size} contiguous streams of {per_stream}; "
                f"each needs at least --tsteps ({self.tsteps}) rows so its stateful score keeps a point",
            )

    @property
    def to_drop(self) -> int:
        """Leading rows lost to the moving average and the window (docs/protocol.md, step 1)."""
        return max(self.tsteps - 1, self.lahead - 1)

    @property
    def tail_drop(self) -> int:
        """Trailing rows lost because their target lies beyond the series (forecasts)."""
        return self.horizon if self.task == "forecast" else 0


def split_sizes(cfg: DataConfig) -> tuple[int, int]:
    """(n_train, n_test) rows after the example's batch-size trims (docs/protocol.md, step 6)."""
    n_train = int(cfg.input_len * cfg.train_ratio)
    n_train -= n_train % cfg.batch_size
    n_test = cfg.input_len - n_train - cfg.input_len % cfg.batch_size
    return n_train, n_test


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture: a ``cell`` layer of ``units`` (LSTM, GRU or SimpleRNN) then ``Dense(1)``,
    on ``n_features`` inputs per step."""

    units: int = 20
    n_features: int = 1
    cell: str = "lstm"

    def __post_init__(self) -> None:
        _require_int("--units", self.units)
        _require_choice("--cell", self.cell, CELLS)
        _require_int("n_features", self.n_features)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; static in the compiled program (changing one recompiles)."""

    epochs: int = 10
    learning_rate: float = 1e-3

    def __post_init__(self) -> None:
        _require_int("--epochs", self.epochs)
        _require_positive_finite("--lr", self.learning_rate)


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Everything a run needs; a run is reproducible from this alone."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    seeds: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        _require_int("--seeds", self.seeds)
        _require_int("--seed", self.seed, 0, 2**31)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ExperimentConfig:
        """The inverse of ``to_dict`` (validated like any other config)."""
        return cls(
            data=DataConfig(**d["data"]),
            model=ModelConfig(**d["model"]),
            train=TrainConfig(**d["train"]),
            seeds=d["seeds"],
            seed=d["seed"],
        )
