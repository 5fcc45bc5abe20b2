"""What a learning service keeps of its weights (``serve --learn``): the version, the
optimizer, the guard rails and the log a replay needs. Host-side and pure: each round's
``advance`` returns the next ``Learner``, which the service makes current only once it is
committed with the round's stream states.

* **Prequential scores**: each label is first a test (the forecast made before it, by the
  learning model and by the frozen model it started from, on the same label), then a
  training example. Errors are absolute, in model units (each series' scaling), so that
  series of any size count alike: since start, and over the latest ``guard`` labels.
* **Rollback**: once ``guard`` labels are there, a learning model whose recent mean error
  exceeds the frozen model's by more than ``margin`` (relative) goes back to its best
  version (the one with the best recent ratio to the frozen model; at first the frozen
  model itself), as a new version.
* **Drift**: a Page-Hinkley test on the learning model's error stream raises an alarm when
  the errors rise above their running mean by more than ``drift_delta`` of it for long
  enough (``drift_threshold`` running means in all).
* **Replay log**: one record per version: the inputs of its update (the windows' arrays)
  or the weights a rollback restored, with the (stream, seq) of the requests it learnt
  from. A checkpoint of the weights every ``keep`` versions bounds it: the records
  before the older of the last two checkpoints are dropped.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
import optax
import safetensors.numpy

from lstm_stateful.core.cells import ModelParams
from lstm_stateful.core.config import require_int
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.models import online
from lstm_stateful.serve.engine import StateCodec

# Errors the drift test reads before it may raise an alarm: its running mean must mean something.
PH_MIN_ERRORS = 30


def _require_number(name: str, value: object, low: float, high: float, low_open: bool) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (low < value if low_open else low <= value) or value > high:  # type: ignore[operator]
        bracket = "(" if low_open else "["
        raise ConfigError(name, f"must be a number in {bracket}{low:g}, {high:g}], got {value!r}")


@dataclasses.dataclass(frozen=True)
class LearnConfig:
    """window: values of truncated backpropagation before each label (K); lr: Adam's
    constant learning rate; clip: the gradients' global-norm bound; guard: labels over
    which the learning and frozen models are compared; margin: how much worse (relative)
    the learning model may be before it rolls back; drift_delta, drift_threshold: the
    Page-Hinkley test's tolerance and alarm level, both relative to the errors' running
    mean (``page_hinkley``); keep: versions between
    checkpoints of the replay log."""

    window: int = 16
    lr: float = 3e-4
    clip: float = 1.0
    guard: int = 500
    margin: float = 0.1
    drift_delta: float = 0.5
    drift_threshold: float = 50.0
    keep: int = 1_000

    def __post_init__(self) -> None:
        require_int("learn_window", self.window, 1, 1025)
        _require_number("learn_lr", self.lr, 0.0, 1.0, low_open=True)
        _require_number("learn_clip", self.clip, 0.0, 1e6, low_open=True)
        require_int("learn_guard", self.guard, 1, 1_000_000)
        _require_number("learn_margin", self.margin, 0.0, 100.0, low_open=False)
        _require_number("drift_delta", self.drift_delta, 0.0, 1e6, low_open=False)
        _require_number("drift_threshold", self.drift_threshold, 0.0, 1e9, low_open=True)
        require_int("learn_keep", self.keep, 1, 100_000_000)


class Scores(NamedTuple):
    """Prequential absolute errors (model units): sums and count since start, and the latest
    ``guard`` of each model (oldest first)."""

    learning_sum: float = 0.0
    frozen_sum: float = 0.0
    labels: int = 0
    learning_recent: np.ndarray = np.zeros(0)
    frozen_recent: np.ndarray = np.zeros(0)

    def view(self) -> dict[str, Any]:
        """The scores as ``GET /v1/model`` shows them (null until a label came)."""

        def mean(a: float | np.ndarray, n: int) -> float | None:
            return float(np.sum(a)) / n if n else None

        recent = len(self.learning_recent)
        return {"labels": self.labels, "recent_labels": recent,
                "learning_mae": mean(self.learning_sum, self.labels), "frozen_mae": mean(self.frozen_sum, self.labels),
                "learning_recent_mae": mean(self.learning_recent, recent),
                "frozen_recent_mae": mean(self.frozen_recent, recent)}  # fmt: skip


class Drift(NamedTuple):
    """A Page-Hinkley test's state (n, running mean, cumulative deviation and its minimum),
    the alarms raised and the version at the latest."""

    n: int = 0
    mean: float = 0.0
    cumulative: float = 0.0
    minimum: float = 0.0
    alarms: int = 0
    last_alarm_version: int | None = None


def page_hinkley(drift: Drift, errors: np.ndarray, delta: float, threshold: float, version: int) -> Drift:
    """The test after ``errors`` in order, scale-free: the cumulative excess of the errors
    over their running mean times (1 + ``delta``) rising ``threshold`` running means above
    its minimum is an alarm (not before ``PH_MIN_ERRORS`` errors); it restarts after one."""
    n, mean, cum, low, alarms, last = drift
    for x in errors.tolist():
        n += 1
        mean += (x - mean) / n
        cum += x - mean * (1 + delta)
        low = min(low, cum)
        if n >= PH_MIN_ERRORS and cum - low > threshold * mean:
            alarms, last = alarms + 1, version
            n, mean, cum, low = 0, 0.0, 0.0, 0.0
    return Drift(n, mean, cum, low, alarms, last)


class Weights(NamedTuple):
    """A version's weights and optimizer state (host arrays, leading seed axis)."""

    version: int
    params: ModelParams
    opt_state: optax.OptState


class Learner(NamedTuple):
    """The committed learning state: the current weights, the best so far and their recent
    error ratio to the frozen model's, the optimizer steps, rollbacks, scores and drift."""

    current: Weights
    best: Weights
    best_ratio: float
    updates: int
    rollbacks: int
    scores: Scores
    drift: Drift


class Record(NamedTuple):
    """One version's entry in the replay log: kind "update" (blob: its windows) or
    "rollback" (blob: the weights restored); requests: the (stream, seq) it learnt from."""

    version: int
    kind: str
    blob: bytes
    requests: str


class Labelled(NamedTuple):
    """What one group of a round gives the learner: its window (``fleet_learn.Window``,
    ``stream_learn.Window``), and the errors (model units) of the learning and frozen
    models' predictions of its labels, made before the labels came, in stream order."""

    window: Any
    learning_errors: np.ndarray
    frozen_errors: np.ndarray


# A model's step on a round's windows: (params, optimizer state, windows) -> (params, optimizer state, labels).
Update = Callable[[ModelParams, optax.OptState, Sequence[Any]], tuple[ModelParams, optax.OptState, int]]


class Step(NamedTuple):
    """A round's outcome for the learner: the next state, its log record (None: no new
    version), and what to tell the operator once it is committed (a rollback, an alarm)."""

    learner: Learner
    record: Record | None
    events: tuple[str, ...] = ()


def start(params: ModelParams, cfg: LearnConfig, per_seed: bool) -> Learner:
    """Version 0: the frozen model's weights with a fresh optimizer (one per seed: ``per_seed``)."""
    weights = Weights(0, params, online.init_opt_state(params, cfg.lr, cfg.clip, per_seed))
    return Learner(weights, weights, 1.0, 0, 0, Scores(), Drift())


def _scored(scores: Scores, learning: np.ndarray, frozen: np.ndarray, guard: int) -> Scores:
    return Scores(scores.learning_sum + float(learning.sum()), scores.frozen_sum + float(frozen.sum()),
                  scores.labels + len(learning), np.concatenate([scores.learning_recent, learning])[-guard:],
                  np.concatenate([scores.frozen_recent, frozen])[-guard:])  # fmt: skip


def advance(learner: Learner, groups: Sequence[Labelled], requests: Sequence[tuple[str, int]], update: Update,
            cfg: LearnConfig, codec: StateCodec) -> Step:  # fmt: skip
    """The learner after a round's labelled groups: scored (test), then one optimizer step
    (train); rolled back instead when the guard says so."""
    learning = np.concatenate([g.learning_errors for g in groups]) if groups else np.zeros(0)
    frozen = np.concatenate([g.frozen_errors for g in groups]) if groups else np.zeros(0)
    scores = _scored(learner.scores, learning, frozen, cfg.guard)
    cur = learner.current
    drift = page_hinkley(learner.drift, learning, cfg.drift_delta, cfg.drift_threshold, cur.version)
    alarm = f"drift: the one-step errors rose (Page-Hinkley alarm {drift.alarms} at version {cur.version})"
    events: tuple[str, ...] = (alarm,) if drift.alarms > learner.drift.alarms else ()
    best, best_ratio = learner.best, learner.best_ratio
    if len(scores.learning_recent) >= cfg.guard and scores.frozen_recent.sum() > 0:
        ratio = float(scores.learning_recent.sum() / scores.frozen_recent.sum())
        if ratio > 1 + cfg.margin:
            why = f"the learning model's recent error is {ratio:.3f}x the frozen model's"
            return _rolled_back(learner._replace(scores=scores, drift=drift), why, requests, codec, events)
        if ratio < best_ratio:
            best, best_ratio = cur, ratio
    windows = [g.window for g in groups]
    params, opt_state, count = update(cur.params, cur.opt_state, windows)
    nxt = Learner(cur, best, best_ratio, learner.updates, learner.rollbacks, scores, drift)
    if count == 0:
        return Step(nxt, None, events)
    if not all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(params)):
        return _rolled_back(nxt, "the update gave weights that are not finite", requests, codec, events)
    version = cur.version + 1
    record = Record(version, "update", encode_windows(windows), json.dumps(list(requests)))
    return Step(nxt._replace(current=Weights(version, params, opt_state), updates=learner.updates + 1), record, events)


def _rolled_back(learner: Learner, why: str, requests: Sequence[tuple[str, int]], codec: StateCodec,
                 events: tuple[str, ...]) -> Step:  # fmt: skip
    """Back to the best version's weights, as a new version; the recent scores start again."""
    best, version = learner.best, learner.current.version + 1
    weights = Weights(version, best.params, best.opt_state)
    scores = learner.scores._replace(learning_recent=np.zeros(0), frozen_recent=np.zeros(0))
    record = Record(version, "rollback", encode_weights(codec, weights), json.dumps(list(requests)))
    nxt = learner._replace(current=weights, rollbacks=learner.rollbacks + 1, scores=scores)
    return Step(nxt, record, (*events, f"rollback: {why}; version {version} restores version {best.version}"))


def weights_codec(learner: Learner) -> StateCodec:
    """The codec of a model's weights and optimizer state (safetensors bytes of named arrays)."""
    return StateCodec((learner.current.params, learner.current.opt_state))


def encode_weights(codec: StateCodec, weights: Weights) -> bytes:
    return codec.encode(tuple(np.asarray(x) for x in jax.tree.leaves((weights.params, weights.opt_state))))


def decode_weights(codec: StateCodec, version: int, blob: bytes) -> Weights:
    """Bytes of ``encode_weights`` -> the weights; ValueError if they do not fit the model."""
    params, opt_state = jax.tree.unflatten(codec.treedef, list(codec.decode(blob)))
    return Weights(version, params, opt_state)


def encode_windows(windows: Sequence[Any]) -> bytes:
    """A round's windows as safetensors bytes (``g.<group>.<leaf>``)."""
    arrays = {f"g.{g}.{i}": np.ascontiguousarray(leaf) for g, w in enumerate(windows)
              for i, leaf in enumerate(jax.tree.leaves(w))}  # fmt: skip
    return safetensors.numpy.save(arrays)


def decode_windows(blob: bytes, template: Any) -> list[Any]:
    """Bytes of ``encode_windows`` -> the windows (``template``: any window, for its structure)."""
    arrays = safetensors.numpy.load(blob)
    treedef, n_leaves = jax.tree.structure(template), len(jax.tree.leaves(template))
    groups = len({k.split(".")[1] for k in arrays})
    return [jax.tree.unflatten(treedef, [arrays[f"g.{g}.{i}"] for i in range(n_leaves)]) for g in range(groups)]


def info(learner: Learner) -> dict[str, Any]:
    """The learner's counters and scores as ``GET /v1/model`` and the metrics show them."""
    d = learner.drift
    return {"version": learner.current.version, "updates": learner.updates, "rollbacks": learner.rollbacks,
            "best_version": learner.best.version, "best_ratio": learner.best_ratio, "scores": learner.scores.view(),
            "drift": {"alarms": d.alarms, "last_alarm_version": d.last_alarm_version}}  # fmt: skip


def stored_info(learner: Learner) -> str:
    """What the state file keeps beside the weights to resume the learner exactly."""
    s = learner.scores
    scores = [s.learning_sum, s.frozen_sum, s.labels, s.learning_recent.tolist(), s.frozen_recent.tolist()]
    return json.dumps({"updates": learner.updates, "rollbacks": learner.rollbacks, "best_ratio": learner.best_ratio,
                       "scores": scores, "drift": list(learner.drift)})  # fmt: skip


def resumed(current: Weights, best: Weights, stored: str) -> Learner:
    """The learner a state file holds (``stored_info``'s JSON beside its weights);
    ValueError if it is damaged."""
    try:
        d = json.loads(stored)
        ls, fs, n, lr, fr = d["scores"]
        scores = Scores(float(ls), float(fs), int(n), np.asarray(lr, np.float64), np.asarray(fr, np.float64))
        return Learner(current, best, float(d["best_ratio"]), int(d["updates"]), int(d["rollbacks"]), scores,
                       Drift(*d["drift"]))  # fmt: skip
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"its learner's record is damaged ({type(e).__name__}: {e})") from None
