"""The frozen configuration of a run, one dataclass per concern, validated on creation.

Pure Python (no JAX, no NumPy): the CLI validates every flag before it imports anything
heavy, so bad input fails in milliseconds with nothing lost.
"""

from __future__ import annotations

import dataclasses
import math

from lstm_stateful.errors import ConfigError

# The two models every run trains and compares, in reporting order.
MODES = ("stateful", "stateless")
# Recurrent cells, by their ``--cell`` names: Keras's LSTM, GRU (reset_after) and SimpleRNN.
CELLS = ("lstm", "gru", "simple")
# Stateful batch layouts: Keras's row order, or batch_size contiguous streams side by side.
LAYOUTS = ("interleaved", "contiguous")
# Time order of the inputs inside a window, as fed to the cell.
ORDERS = ("newest-first", "oldest-first")


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
    """What series to generate and how to cut it (the example's editable parameters).

    ``batch_size`` lives here because the example's split depends on it.
    """

    input_len: int = 1000
    tsteps: int = 2
    lahead: int = 1
    batch_size: int = 1
    amplitude: float = 0.1
    data_seed: int = 1986
    train_ratio: float = 0.8

    def __post_init__(self) -> None:
        for name in ("input_len", "tsteps", "lahead", "batch_size"):
            _require_int(f"--{name.replace('_', '-')}", getattr(self, name))
        _require_int("--data-seed", self.data_seed, 0, 2**32)
        _require_positive_finite("--amplitude", self.amplitude)
        if not 0 < self.train_ratio < 1:
            raise ConfigError("--train-ratio", f"must be in (0, 1), got {self.train_ratio!r}")
        for name in ("tsteps", "lahead"):
            if getattr(self, name) > self.input_len:
                raise ConfigError(f"--{name}", f"must be <= --input-len ({self.input_len}), got {getattr(self, name)}")
        n_rows = int(self.input_len * self.train_ratio)
        if n_rows < self.batch_size:
            raise ConfigError(
                "--batch-size",
                f"must be <= the {n_rows} training rows of --input-len {self.input_len}, got {self.batch_size}",
            )
        n_test = split_sizes(self)[1]
        if n_test < self.tsteps:
            raise ConfigError(
                "--input-len",
                f"leaves {n_test} test rows at --batch-size {self.batch_size}; need at least --tsteps "
                f"({self.tsteps}) so the stateful score has a point left after dropping tsteps-1",
            )

    @property
    def to_drop(self) -> int:
        """Rows lost to the moving average and the window (DESIGN step 1)."""
        return max(self.tsteps - 1, self.lahead - 1)


def split_sizes(cfg: DataConfig) -> tuple[int, int]:
    """(n_train, n_test) rows after the example's batch-size trims (DESIGN step 6)."""
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
