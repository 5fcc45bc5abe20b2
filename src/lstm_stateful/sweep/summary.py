"""A sweep's records summarised per grid point and mode: the rows of ``summary.csv``, the
phase-diagram grids and the score of every seed. Pure NumPy; no JAX, no files."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from lstm_stateful.core import evaluate
from lstm_stateful.core.config import MODES, ExperimentConfig
from lstm_stateful.sweep.grid import Point, SweepSpec, Value, point_key
from lstm_stateful.sweep.store import Record

# Resamples behind each 95% interval; a fixed seed keeps the summary reproducible.
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
NAN = float("nan")


@dataclasses.dataclass(frozen=True)
class SummaryRow:
    """One grid point and mode over its seeds; diverged seeds (NaN) are counted, not averaged.

    settings: the point's value of each grid axis, (setting, value) in axis order.
    *_ci95_*: 95% bootstrap interval (percentile) of the mean over the finite seeds; NaN
    with fewer than two. floor: the lowest MSE this model can reach (window floor if
    stateless, else 0). banner_held: whether the example's rule (stateless converges iff
    lahead >= tsteps) matched this model's verdict; only defined for the stateless model on
    the generated series' moving average, and None where every stateless seed diverged
    (nothing to check the rule against). best_baseline, best_baseline_mse: the baseline
    with the lowest test MSE on this model's scored points ("" and NaN for records of
    earlier versions, which stored none); skill_*: each seed's ``1 - mse / best_baseline_mse``,
    its median and interval (lowest to highest) over the seeds that did not diverge. verdict:
    on a data file against the baselines (``evaluate.baseline_verdict``), else against the
    floor (``evaluate.verdict``), as ``run``'s.
    """

    tsteps: int
    lahead: int
    mode: str
    n_seeds: int
    n_diverged: int
    converged_fraction: float
    r2_mean: float
    r2_median: float
    r2_ci95_low: float
    r2_ci95_high: float
    mse_mean: float
    mse_median: float
    mse_ci95_low: float
    mse_ci95_high: float
    floor: float
    window_floor: float
    zero_floor: float
    verdict: str
    banner_held: bool | None
    settings: tuple[tuple[str, Value], ...] = ()
    best_baseline: str = ""
    best_baseline_mse: float = NAN
    skill_median: float = NAN
    skill_low: float = NAN
    skill_high: float = NAN


def bootstrap_ci(values: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """95% percentile interval of the mean of ``values`` (finite ones), by resampling."""
    finite = values[np.isfinite(values)]
    if finite.size < 2:
        return float("nan"), float("nan")
    means = rng.choice(finite, size=(BOOTSTRAP_RESAMPLES, finite.size)).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def _banner_held(cfg: ExperimentConfig, mode: str, verdict: str) -> bool | None:
    """As ``evaluate.banner_held`` for a sweep's point: the rule speaks of the stateless model
    on the generated series only, and a point whose every stateless seed diverged says
    nothing about it (diverging is neither converging nor the window's limit)."""
    if mode != "stateless" or cfg.data.file is not None:
        return None
    return evaluate.banner_held(cfg.data, verdict)


def _finite_mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _scores(records: list[Record]) -> evaluate.Scores:
    return evaluate.Scores(
        mse=np.array([r.mse for r in records]),
        r2=np.array([r.r2 for r in records]),
        converged=np.array([r.converged for r in records]),
    )


def _skill(records: list[Record]) -> evaluate.Skill | None:
    """The records' skill over their best baseline (None: no baseline stored)."""
    if not records[0].baselines:
        return None
    return evaluate.skill_summary(_scores(records), dict(records[0].baselines))


def _row(point: Point, cfg: ExperimentConfig, mode: str, records: list[Record]) -> SummaryRow:
    scores = _scores(records)
    first, skill = records[0], _skill(records)
    on_file = cfg.data.file is not None and skill is not None
    verdict = evaluate.baseline_verdict(skill) if on_file and skill else evaluate.verdict(scores, first.floor)
    rng = np.random.default_rng([BOOTSTRAP_SEED, cfg.data.tsteps, cfg.data.lahead, MODES.index(mode)])
    r2_ci, mse_ci = bootstrap_ci(scores.r2, rng), bootstrap_ci(scores.mse, rng)
    return SummaryRow(
        tsteps=cfg.data.tsteps, lahead=cfg.data.lahead, mode=mode, n_seeds=len(records),
        n_diverged=int(np.sum(scores.diverged)), converged_fraction=float(np.mean(scores.converged)),
        r2_mean=_finite_mean(scores.r2), r2_median=evaluate.finite_median(scores.r2), r2_ci95_low=r2_ci[0],
        r2_ci95_high=r2_ci[1], mse_mean=_finite_mean(scores.mse), mse_median=evaluate.finite_median(scores.mse),
        mse_ci95_low=mse_ci[0], mse_ci95_high=mse_ci[1], floor=first.floor, window_floor=first.window_floor,
        zero_floor=first.zero_floor, verdict=verdict, banner_held=_banner_held(cfg, mode, verdict),
        settings=point.values,
        best_baseline=skill.baseline if skill else "", best_baseline_mse=skill.baseline_mse if skill else NAN,
        skill_median=skill.median if skill else NAN, skill_low=skill.low if skill else NAN,
        skill_high=skill.high if skill else NAN,
    )  # fmt: skip


def by_point(spec: SweepSpec, records: Iterable[Record]) -> list[tuple[Point, ExperimentConfig, str, list[Record]]]:
    """(point, config, mode, its records by seed) for each point and mode with records, grid order."""
    found: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        found[(r.config_hash, r.mode)].append(r)
    out = []
    for point in spec.points:
        cfg = spec.config(point)
        key = point_key(cfg)
        for mode in MODES:
            if mine := found.get((key, mode)):
                out.append((point, cfg, mode, sorted(mine, key=lambda r: r.seed_index)))
    return out


def summarize(spec: SweepSpec, records: Iterable[Record]) -> list[SummaryRow]:
    """One row per point and mode that has records, in grid order (the first axis fastest), modes in turn."""
    return [_row(point, cfg, mode, mine) for point, cfg, mode, mine in by_point(spec, records)]


def seed_scores(spec: SweepSpec, records: Iterable[Record]) -> list[tuple[Point, str, np.ndarray]]:
    """(point, mode, (S,) score of each seed): R^2 on the generated series, the skill over
    the best baseline on a data file (NaN where a seed diverged)."""
    out = []
    for point, cfg, mode, mine in by_point(spec, records):
        skill = _skill(mine) if cfg.data.file is not None else None
        values = skill.per_seed if skill is not None else np.array([r.r2 for r in mine])
        out.append((point, mode, np.where(np.isfinite(values), values, np.nan)))
    return out


def score_name(spec: SweepSpec) -> str:
    """What ``seed_scores`` holds: "R^2", or "skill" on a data file."""
    return "skill" if spec.base.data.file is not None else "R^2"


def phase_grid(rows: Iterable[SummaryRow], spec: SweepSpec, mode: str, field: str) -> np.ndarray:
    """(len(lahead values), len(tsteps values)) of ``field`` for ``mode``; NaN where not trained yet."""
    tsteps, lahead = spec.values("tsteps"), spec.values("lahead")
    grid = np.full((len(lahead), len(tsteps)), np.nan)
    for row in rows:
        if row.mode == mode and row.lahead in lahead and row.tsteps in tsteps:
            grid[lahead.index(row.lahead), tsteps.index(row.tsteps)] = getattr(row, field)
    return grid
