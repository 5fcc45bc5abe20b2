"""The learner's host-side rules: the drift test (no alarm on a steady error, an alarm soon
after a rise, whatever the errors' scale), the rollback and the best version, the settings'
checks, and its state through the state file's JSON."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_stateful.core.errors import ConfigError
from lstm_stateful.serve import learner as lr


def _alarm_at(errors: np.ndarray) -> list[int]:
    """Where the test raises its alarms, fed one error at a time."""
    drift, at = lr.Drift(), []
    for i, e in enumerate(errors):
        drift = lr.page_hinkley(drift, np.array([e]), 0.5, 50.0, version=i)
        if drift.last_alarm_version == i:
            at.append(i)
    return at


def test_the_drift_test_is_quiet_on_steady_errors_and_raises_soon_after_a_rise() -> None:
    rng = np.random.default_rng(0)
    steady = np.abs(rng.normal(0, 1, 5000))  # half-normal: the errors of a model that fits
    assert _alarm_at(steady) == []
    risen = np.concatenate([steady[:1000], 2.5 * np.abs(rng.normal(0, 1, 1000))])
    alarms = _alarm_at(risen)
    # Each error past the rise adds about (2.5 - 1.5) means: 50 means take some 50 to 100 errors.
    assert alarms and 1040 <= alarms[0] <= 1150, alarms
    # Scale-free: the same errors in other units raise the same alarms.
    assert _alarm_at(risen * 1e-3) == alarms == _alarm_at(risen * 1e3)
    # One alarm per change: it restarts, and the new level is its new normal.
    assert len(alarms) == 1


def test_the_alarm_waits_for_enough_errors() -> None:
    jump = np.concatenate([np.full(3, 1e-6), np.full(20, 100.0)])
    assert _alarm_at(jump) == []  # fewer than PH_MIN_ERRORS: its mean means nothing yet
    assert len(jump) < lr.PH_MIN_ERRORS


def _learner(guard: int) -> tuple[lr.Learner, lr.LearnConfig]:
    cfg = lr.LearnConfig(guard=guard, margin=0.1)
    params = {"w": np.zeros(3, np.float32)}
    return lr.start(params, cfg, per_seed=False), cfg  # type: ignore[arg-type]


def _group(learning: float, frozen: float, n: int) -> lr.Labelled:
    return lr.Labelled(None, np.full(n, learning), np.full(n, frozen))


def _moved(params: object, opt_state: object, windows: object) -> tuple[dict, object, int]:
    """A stand-in update: every step adds 1 to the weights."""
    return {"w": params["w"] + 1}, opt_state, 1  # type: ignore[index]


def test_a_worse_learning_model_rolls_back_to_its_best_version() -> None:
    learner, cfg = _learner(guard=4)
    codec = lr.weights_codec(learner)
    # Better than the frozen model over 4 labels: its version becomes the best, and it learns on.
    step = lr.advance(learner, [_group(0.5, 1.0, 4)], [("a", 0)], _moved, cfg, codec)
    assert step.record is not None and step.record.kind == "update" and step.learner.current.version == 1
    assert step.learner.best.version == 0 and step.learner.best_ratio == 0.5
    step = lr.advance(step.learner, [_group(0.6, 1.0, 4)], [("a", 1)], _moved, cfg, codec)
    assert step.learner.best.version == 0  # 0.6 is no better than 0.5
    step = lr.advance(step.learner, [_group(0.4, 1.0, 4)], [("a", 2)], _moved, cfg, codec)
    assert step.learner.best.version == 2 and step.learner.current.version == 3
    # Worse than the frozen model by more than the margin: back to version 2's weights, as version 4.
    step = lr.advance(step.learner, [_group(1.2, 1.0, 4)], [("a", 3)], _moved, cfg, codec)
    after = step.learner
    assert step.record is not None and step.record.kind == "rollback" and after.current.version == 4
    assert after.rollbacks == 1 and after.updates == 3 and float(after.current.params["w"][0]) == 2.0
    assert lr.decode_weights(codec, 4, step.record.blob).params["w"].tolist() == [2.0] * 3
    assert len(after.scores.learning_recent) == 0  # the recent scores start again
    # Within the margin: no rollback.
    step = lr.advance(after, [_group(1.05, 1.0, 4)], [("a", 4)], _moved, cfg, codec)
    assert step.record is not None and step.record.kind == "update"


def test_a_round_without_labels_makes_no_version() -> None:
    learner, cfg = _learner(guard=4)
    step = lr.advance(learner, [], [], lambda p, o, w: (p, o, 0), cfg, lr.weights_codec(learner))
    assert step.record is None and step.learner.current is learner.current


def test_the_learner_resumes_from_its_stored_state() -> None:
    learner, cfg = _learner(guard=3)
    codec = lr.weights_codec(learner)
    for k in range(4):
        learner = lr.advance(learner, [_group(0.1 * (k + 1), 0.3, 2)], [("a", k)], _moved, cfg, codec).learner
    weights = lr.decode_weights(codec, learner.current.version, lr.encode_weights(codec, learner.current))
    best = lr.decode_weights(codec, learner.best.version, lr.encode_weights(codec, learner.best))
    again = lr.resumed(weights, best, lr.stored_info(learner))
    assert lr.info(again) == lr.info(learner) and again.drift == learner.drift
    np.testing.assert_array_equal(again.scores.learning_recent, learner.scores.learning_recent)


@pytest.mark.parametrize(
    "settings, name",
    [({"window": 0}, "learn_window"), ({"lr": 0.0}, "learn_lr"), ({"lr": 2.0}, "learn_lr"),
     ({"clip": -1.0}, "learn_clip"), ({"guard": 0}, "learn_guard"), ({"margin": float("nan")}, "learn_margin"),
     ({"drift_threshold": 0.0}, "drift_threshold"), ({"keep": 0}, "learn_keep"), ({"lr": True}, "learn_lr")],
)  # fmt: skip
def test_settings_out_of_range_are_refused(settings: dict, name: str) -> None:
    with pytest.raises(ConfigError) as e:
        lr.LearnConfig(**settings)
    assert e.value.param == name


def test_the_window_takes_1_to_1024() -> None:
    assert lr.LearnConfig(window=1).window == 1 and lr.LearnConfig(window=1024).window == 1024
    with pytest.raises(ConfigError, match="learn_window"):
        lr.LearnConfig(window=1025)
