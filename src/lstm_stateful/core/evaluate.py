"""Scores, floors, skills and verdicts: how close each model came to what is possible,
and whether it beat the baselines (``core.baselines``).

For x ~ U(-a, a), var_x = a^2/3. Predicting zero scores var_x / tsteps; a stateless model
that sees only the newest ``lahead < tsteps`` inputs cannot beat
var_x (tsteps - lahead) / tsteps^2 (docs/protocol.md, "Floors and verdicts").
On a data file no floor is known: a model's verdict is its skill over the best baseline.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lstm_stateful.core.data import DataConfig, Series, stream_rows

# A seed converged when it explains at least this share of the test target's variance,
# i.e. its test MSE is at most a tenth of the best constant predictor's.
R2_CONVERGED = 0.9
# A model that did not converge but sits within this factor of its window floor has
# learned everything its window shows: it is limited by what it sees, not by training.
AT_FLOOR_FACTOR = 1.25


class Floors(NamedTuple):
    """MSE floors, in theory (from the distribution) and on the actual test targets, in the
    model's units. zero: predicting 0; window: the best a stateless model seeing ``lahead``
    inputs can do. NaN where a floor is not known. (Persistence, the naive forecast, is a
    baseline: ``core.baselines``.)
    """

    zero_theory: float
    window_theory: float
    zero_test: float
    window_test: float


class Scores(NamedTuple):
    """Per seed, (S,) each: test MSE, R^2, and whether the seed converged."""

    mse: np.ndarray
    r2: np.ndarray
    converged: np.ndarray

    @property
    def diverged(self) -> np.ndarray:
        """(S,) bool: seeds whose predictions went to NaN or infinity (training blew up).
        They are counted, never averaged: every median leaves them out."""
        return ~np.isfinite(self.mse)


def floors(cfg: DataConfig, test: Series) -> Floors:
    """``test``: the test rows in float64 (inputs (n, lahead, F) newest first; the generated
    series has F = 1).

    The test-set window floor is the MSE of the ideal stateless predictor: the part of the
    average made of inputs inside the window, so what remains is exactly the unseen part.
    That is the best possible only when the unseen inputs are independent of the seen ones
    with mean zero: true of the generated series (moving-average task, no transform), not of
    real data, where the past predicts the unseen part. Floors that are not known are NaN.
    """
    zero_test = float(np.mean(test.raw_target**2))  # the data's units, as every MSE
    if cfg.file is not None or cfg.task != "moving-average" or cfg.transform != "none":
        return Floors(float("nan"), float("nan"), zero_test, float("nan"))
    var_x = cfg.amplitude**2 / 3
    ideal = test.inputs[:, : min(cfg.lahead, cfg.tsteps), 0].sum(axis=1) / cfg.tsteps
    return Floors(
        zero_theory=var_x / cfg.tsteps,
        window_theory=var_x * max(cfg.tsteps - cfg.lahead, 0) / cfg.tsteps**2,
        zero_test=zero_test,
        window_test=float(np.mean((test.target - ideal) ** 2)),
    )


def scored_points(mode: str, cfg: DataConfig, n: int) -> np.ndarray:
    """(n,) bool: the test points a model is scored on. The stateful model starts each batch
    slot of the test set from a zero state (``data.stream_rows``), so the first tsteps-1
    outputs of each slot cannot know the average's older terms (the example drops them
    too, at batch size 1). The stateless model is scored on every point."""
    scored = np.ones(n, bool)
    if mode == "stateful" and cfg.task == "moving-average":
        scored[stream_rows(n, cfg.batch_size, cfg.layout)[:, : cfg.tsteps - 1].ravel()] = False
    return scored


def model_floor(floors: Floors, mode: str) -> float:
    """The lowest test MSE a model can reach: the window floor for the stateless model;
    0 for the stateful one, whose carried state can see the whole average. NaN where
    the data and task have no known floor (see ``floors``)."""
    if mode == "stateless" or not np.isfinite(floors.window_test):
        return floors.window_test
    return 0.0


def score(y_true: np.ndarray, predictions: np.ndarray, scored: np.ndarray | None = None) -> Scores:
    """y_true: (n, 1); predictions: (S, n, 1), time order. Only the points where
    ``scored`` (n,) is true count (see ``scored_points``); all of them by default."""
    keep = np.ones(y_true.shape[0], bool) if scored is None else scored
    if not keep.any():  # configs leave every stream a point (DataConfig); never a score of nothing
        raise ValueError("score: no test point is scored")
    y = y_true[keep, 0].astype(np.float64)
    pred = predictions[:, keep, 0].astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        mse = np.mean((pred - y) ** 2, axis=1)
        r2 = 1.0 - mse / np.var(y)
    converged = np.isfinite(r2) & (r2 >= R2_CONVERGED)
    return Scores(mse=mse, r2=r2, converged=converged)


def finite_median(values: np.ndarray) -> float:
    """Median over the finite values (diverged seeds left out); NaN if there are none."""
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")


def median_seed(scores: Scores) -> int:
    """Index of the seed with the median test MSE (the lower middle one for even S);
    diverged seeds (NaN) sort last."""
    order = np.argsort(np.where(np.isfinite(scores.mse), scores.mse, np.inf), kind="stable")
    return int(order[(len(order) - 1) // 2])


def verdict(scores: Scores, window_floor: float) -> str:
    """'converged', 'at window floor' or 'not converged', from the median over the seeds
    that did not diverge; 'diverged' if none is left."""
    if scores.diverged.all():
        return "diverged"
    if finite_median(scores.r2) >= R2_CONVERGED:
        return "converged"
    if window_floor > 0 and finite_median(scores.mse) <= AT_FLOOR_FACTOR * window_floor:
        return "at window floor"
    return "not converged"


class Skill(NamedTuple):
    """A model's skill over the best baseline on its scored points (``core.baselines``).

    baseline: the best baseline's name (lowest MSE); baseline_mse: its MSE; per_seed: (S,)
    ``skill`` of each seed (NaN where it diverged); median: over the seeds that did not
    diverge; low, high: the interval over seeds, the lowest and the highest skill of those
    seeds (their range: a model beats the baselines only if every seed that trained does).
    NaN where every seed diverged.
    """

    baseline: str
    baseline_mse: float
    per_seed: np.ndarray
    median: float
    low: float
    high: float


def skill(model_mse: np.ndarray, best: float) -> np.ndarray:
    """(S,) -> (S,): 1 - model_mse / best, per seed. 1 is a perfect model, 0 one as good as
    the best baseline, below 0 a worse one; NaN for a diverged seed, -inf for an imperfect
    model when the best baseline is exact (MSE 0), 0 for an exact one then (a tie)."""
    mse = np.asarray(model_mse, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mse == best, 0.0, 1.0 - mse / best)


def best_baseline(baseline_mses: dict[str, float]) -> tuple[str, float]:
    """The baseline with the lowest finite MSE (the first one named on a tie), and that MSE."""
    finite = {name: mse for name, mse in baseline_mses.items() if np.isfinite(mse)}
    if not finite:  # the mean baseline is always finite on finite data
        raise ValueError("best_baseline: no baseline has a finite MSE")
    name = min(finite, key=lambda n: finite[n])
    return name, finite[name]


def skill_summary(scores: Scores, baseline_mses: dict[str, float]) -> Skill:
    """Each seed's skill over the best of ``baseline_mses`` (the MSEs on the points the model
    is scored on), its median and its interval over the seeds that did not diverge."""
    name, best = best_baseline(baseline_mses)
    per_seed = skill(scores.mse, best)
    kept = per_seed[~scores.diverged]
    if not kept.size:
        return Skill(name, best, per_seed, float("nan"), float("nan"), float("nan"))
    return Skill(name, best, per_seed, float(np.median(kept)), float(kept.min()), float(kept.max()))


def baseline_verdict(s: Skill) -> str:
    """'beats baselines' when the skill's whole interval over seeds is above 0 (every seed
    that did not diverge has a lower MSE than the best baseline), 'no better than <the best
    baseline>' otherwise; 'diverged' if every seed diverged."""
    if np.isnan(s.median):
        return "diverged"
    return "beats baselines" if s.low > 0 else f"no better than {s.baseline}"


def model_verdict(cfg: DataConfig, scores: Scores, floors: Floors, mode: str, s: Skill) -> str:
    """A model's verdict: on a data file, against the baselines (``baseline_verdict``: no
    floor is known there); on the generated series, against its floor (``verdict``)."""
    if cfg.file is not None:
        return baseline_verdict(s)
    return verdict(scores, model_floor(floors, mode))


def rule_says_stateless_converges(tsteps: int, lahead: int) -> bool:
    """The example's rule: a stateless model converges iff its window covers the average."""
    return lahead >= tsteps


def rule_held(tsteps: int, lahead: int, stateless_verdict: str) -> bool:
    """Whether what the stateless model did matches the example's rule."""
    return (stateless_verdict == "converged") == rule_says_stateless_converges(tsteps, lahead)


def banner(cfg: DataConfig) -> str | None:
    """The example's claim, printed before training; None for tasks it says nothing about."""
    if cfg.task != "moving-average":
        return None
    if rule_says_stateless_converges(cfg.tsteps, cfg.lahead):
        return "STATELESS LSTM WILL ALSO CONVERGE"
    return "STATELESS LSTM WILL NOT CONVERGE"


def banner_held(cfg: DataConfig, stateless_verdict: str) -> bool | None:
    """Whether what the stateless model did matches the banner's claim (None: no claim, or
    nothing to check it against because every stateless seed diverged)."""
    if cfg.task != "moving-average" or stateless_verdict == "diverged":
        return None
    return rule_held(cfg.tsteps, cfg.lahead, stateless_verdict)
