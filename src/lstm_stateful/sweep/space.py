"""What a search (``lstm-stateful tune``) explores: its spaces, parsed and validated, and the
validation problem its trials are scored on.

Pure Python (no JAX, no NumPy, no Optuna), like ``config``: a bad space fails before
anything heavy is imported or trained.

A space is ``KEY=LOW:HIGH`` (a float range; ``:log`` samples it on a log scale; ``:int``
makes it an integer range, the default for integer settings) or ``KEY=A,B,C`` (a list of
values to choose from). Keys are the settings of ``experiment_config`` that change the
model or its training, never the task or the data the trials are compared on.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence

from lstm_stateful.core.config import (
    MODES,
    ExperimentConfig,
    experiment_config,
    first_repeated,
    setting_name,
    setting_value,
    split_sizes,
    value_type,
)
from lstm_stateful.core.errors import ConfigError

# The settings a space may search (their values read by ``config.setting_value``).
SEARCHABLE = (
    "lr", "units", "layers", "epochs", "batch_size", "lahead", "cell", "order", "layout", "transform", "standardize",
)  # fmt: skip
# Share of the training rows, the last ones, that score a trial (the test rows never do).
VALIDATION = 0.2
SPACE_SYNTAX = "use KEY=LOW:HIGH (optionally :int, :log) or KEY=A,B,C"


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One searched setting: a float or int range (``low``..``high`` inclusive, on a log
    scale if ``log``), or ``choices``."""

    name: str
    kind: str  # "float", "int" or "choice"
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[object, ...] = ()

    @property
    def extremes(self) -> tuple[object, ...]:
        """The values to check against the other settings: a range's bounds, or every choice."""
        return self.choices if self.kind == "choice" else (self.low, self.high)

    @property
    def text(self) -> str:
        """The space as ``--space`` takes it, in canonical form."""
        key = self.name.replace("_", "-")
        if self.kind == "choice":
            return f"{key}={','.join(shown(c) for c in self.choices)}"
        marks = ":int" * (self.kind == "int") + ":log" * self.log
        return f"{key}={shown(self.low)}:{shown(self.high)}{marks}"


def shown(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def parse_space(texts: Sequence[str]) -> tuple[Dimension, ...]:
    """``--space`` values -> their dimensions, in the order given. Every problem is a
    ``ConfigError`` on ``space``."""
    if not texts:
        raise ConfigError("space", f"give at least one setting to search: {SPACE_SYNTAX}")
    dims = tuple(_parse_one(text) for text in texts)
    names = [d.name for d in dims]
    if twice := next((n for i, n in enumerate(names) if n in names[:i]), None):
        raise ConfigError("space", f"searches {twice!r} twice; give each key once")
    return dims


def _parse_one(text: str) -> Dimension:
    key, sep, spec = text.partition("=")
    if not sep or not key.strip() or not spec.strip():
        raise ConfigError("space", f"malformed {text!r}: {SPACE_SYNTAX}")
    name = setting_name(
        "space", key, SEARCHABLE, "a search can vary", "decides the task or the data every trial is scored on"
    )
    if ":" in spec:
        return _parse_range(name, spec, text)
    return _parse_choices(name, spec, text)


def _parse_range(name: str, spec: str, text: str) -> Dimension:
    low_text, high_text, *marks = (p.strip() for p in spec.split(":"))
    kind = value_type(name)
    if len(set(marks)) != len(marks) or not set(marks) <= {"int", "log"}:
        raise ConfigError("space", f"malformed range {text!r}: LOW:HIGH, then optionally :int and :log")
    if kind in (str, bool):
        raise ConfigError("space", f"{text!r}: {name} takes one of its values, not a range; list them (A,B,C)")
    if "int" in marks and kind is float:
        raise ConfigError("space", f"{text!r}: {name} takes any number in its range; :int is for integer settings")
    low, high = setting_value("space", name, low_text), setting_value("space", name, high_text)
    assert isinstance(low, int | float) and isinstance(high, int | float)  # _value of a number type
    if low > high:
        raise ConfigError("space", f"{text!r} is reversed: its start must be <= its end")
    if "log" in marks and low <= 0:
        raise ConfigError("space", f"{text!r}: a log scale needs bounds > 0, got {shown(low)}")
    return Dimension(name, "int" if kind is int else "float", low, high, "log" in marks)


def _parse_choices(name: str, spec: str, text: str) -> Dimension:
    parts = [p.strip() for p in spec.split(",")]
    if not all(parts):
        raise ConfigError("space", f"malformed list {text!r}: values separated by commas, none empty")
    values = tuple(setting_value("space", name, p) for p in parts)
    if (twice := first_repeated(values)) is not None:
        raise ConfigError("space", f"{text!r} lists {shown(twice)} twice")
    return Dimension(name, "choice", choices=values)


@dataclasses.dataclass(frozen=True)
class Search:
    """A search's identity: what it explores (``dimensions``) around the flat ``settings``
    every trial shares (``file_rows``: a data file's row count, as ``experiment_config``
    takes it), and how a trial is scored: ``mode``'s median validation MSE over the seeds,
    in the data's units, on the last ``validation`` share of the training rows.

    Validated on creation: every value of every space (a range's bounds) is a possible
    config with the other settings, and the base config leaves validation rows to score.
    """

    dimensions: tuple[Dimension, ...]
    settings: Mapping[str, object] = dataclasses.field(default_factory=dict)
    file_rows: int | None = None
    validation: float = VALIDATION
    mode: str = "stateful"

    def __post_init__(self) -> None:
        check_scoring(self.validation, self.mode)
        for d in self.dimensions:
            if d.name in self.settings:
                raise ConfigError("space", f"searches {d.name!r}, which `{d.name}` also sets; give it one way")
            for value in d.extremes:
                self._check(d, value)
        validation_config(self.base, self.validation)

    def _check(self, d: Dimension, value: object) -> None:
        try:
            validation_config(self.config({d.name: value}), self.validation)
        except ConfigError as e:
            setting = f"{d.name.replace('_', '-')}={shown(value)}"
            problem = f"{setting} (of {d.text!r}) makes an impossible config: `{e.param}` {e.problem}"
            raise ConfigError("space", problem) from None

    @property
    def base(self) -> ExperimentConfig:
        """The config of the settings alone, every searched setting at its default."""
        return experiment_config(self.settings, self.file_rows)

    def config(self, params: Mapping[str, object]) -> ExperimentConfig:
        """A trial's config: the settings with the trial's ``params`` (by setting name)."""
        return experiment_config({**self.settings, **params}, self.file_rows)

    def identity(self) -> str:
        """What a resumed study must share with the one stored (JSON): everything that
        decides a trial's value. The number of trials and the batches are not in it."""
        spaces = [d.text for d in self.dimensions]
        base = self.base.to_dict()
        return json.dumps({"space": spaces, "base": base, "validation": self.validation, "mode": self.mode})


def check_scoring(validation: object, mode: object) -> None:
    """A validation share in (0, 1), and a model whose score is the objective."""
    if not (isinstance(validation, int | float) and not isinstance(validation, bool) and 0 < validation < 1):
        raise ConfigError("validation", f"must be in (0, 1), got {validation!r}")
    if mode not in MODES:
        raise ConfigError("mode", f"must be one of {', '.join(MODES)}, got {mode!r}")


def validation_config(cfg: ExperimentConfig, fraction: float) -> ExperimentConfig:
    """The validation problem of ``cfg``: its training rows alone, the first ``1 - fraction``
    of them to train on and the rest to score, as the test rows of a run would be.

    Its rows are a prefix of ``cfg``'s (the generated series draws the same numbers first;
    a file is cut after the rows the training windows and targets use): nothing of the
    test rows reaches it, nor the standardisation's mean and scale.
    """
    n_train = split_sizes(cfg.data)[0]
    try:
        data = dataclasses.replace(cfg.data, input_len=n_train, train_ratio=1 - fraction)
    except ConfigError as e:
        # Named as settings of the validation problem (a run of the training rows), not as flags.
        run = f"{e.param} {e.problem}".replace("`", "")
        problem = f"{fraction} of the {n_train} training rows leaves too few to train and score (as a run: {run})"
        raise ConfigError("validation", problem) from None
    return dataclasses.replace(cfg, data=data)


def raw_rows(cfg: ExperimentConfig) -> int:
    """The rows of the data (file or generated) that ``cfg``'s series is made from."""
    return cfg.data.input_len + cfg.data.to_drop + cfg.data.tail_drop
