"""A fleet run end to end: ``run_fleet(config, panel) -> FleetResult``.

panel -> split by the competitions' protocol (per series: the last K*H values are K test
windows, the H before them the validation part, the rest trains) -> per-series scaling from
the training part -> one compiled training program (both models, every seed) -> forecasts
from the validation origin and each test origin -> baselines -> metrics per series, their
means, and the verdict. No files and no printing here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lstm_stateful.core import panel_baselines, panel_intervals, panel_scores
from lstm_stateful.core import panel_train as pt
from lstm_stateful.core.cells import ModelParams
from lstm_stateful.core.panel import (
    Layout,
    Panel,
    PanelScaling,
    check_lengths,
    check_scaling_domain,
    fit_scaling,
    layout,
)
from lstm_stateful.core.panel_config import FleetConfig

# Our models, in reporting order: "combined" is the mean of the two models' forecasts.
MODELS = ("stateful", "stateless", "combined")
# Told what a run is doing now ("training").
StageCallback = Callable[[str], None]


class Split(NamedTuple):
    """Each series' parts (data units): train: S arrays; validation: (S, H); tests: (S, K, H);
    histories: for the validation origin and each test origin, the S arrays before it."""

    train: list[np.ndarray]
    validation: np.ndarray
    tests: np.ndarray
    histories: list[list[np.ndarray]]


class Verdict(NamedTuple):
    """The best model on mean MASE, and each of our models against the best baseline:
    versus: model -> (mean MASE difference over series, bootstrap low, high); negative is better."""

    best: str
    best_baseline: str
    versus: dict[str, tuple[float, float, float]]


class FleetResult(NamedTuple):
    """A finished fleet run.

    forecasts: model -> (S, K, H) data units (our models: the mean over seeds);
    seed_forecasts: "stateful"/"stateless" -> (seeds, S, K, H); validation: model -> (S, H),
    forecasts of the validation part; metrics: model -> metric -> (S,), each series' score
    averaged over its test windows; means: model -> metric -> mean over series (and "beats
    seasonal naive": the share of series whose MASE is below seasonal naive's);
    val_mase: model -> mean validation MASE; params: (stateful, stateless), leading seed
    axis; losses: (2, seeds, epochs); origins: (S, K) each test origin's ordinal on the clock;
    with ``level``s, for each model with validation forecasts: intervals: model -> (L, 2, S,
    K, H) lower and upper bounds, data units; widths: model -> (L, H) the conformal
    half-widths in MASE-scale units; step_coverage: model -> (L, H) test coverage per step.
    """

    config: FleetConfig
    panel: Panel
    scaling: PanelScaling
    split: Split
    forecasts: dict[str, np.ndarray]
    seed_forecasts: dict[str, np.ndarray]
    validation: dict[str, np.ndarray]
    metrics: dict[str, dict[str, np.ndarray]]
    means: dict[str, dict[str, float]]
    val_mase: dict[str, float]
    verdict: Verdict
    params: tuple[ModelParams, ModelParams]
    losses: np.ndarray
    origins: np.ndarray
    notes: tuple[str, ...]
    timings: dict[str, float]
    intervals: dict[str, np.ndarray]
    widths: dict[str, np.ndarray]
    step_coverage: dict[str, np.ndarray]


def split(cfg: FleetConfig, panel: Panel) -> Split:
    """The protocol's parts of every series (``check_lengths`` first)."""
    h, k = cfg.panel.horizon, cfg.panel.windows
    check_lengths(panel, h, k, cfg.panel.period, cfg.panel.min_length())
    train: list[np.ndarray] = []
    validation: list[np.ndarray] = []
    tests: list[np.ndarray] = []
    histories: list[list[np.ndarray]] = [[] for _ in range(k + 1)]
    for values in panel.values:
        cut = values.shape[0] - k * h
        train.append(values[: cut - h])
        validation.append(values[cut - h : cut])
        tests.append(values[cut:].reshape(k, h))
        for w in range(k + 1):
            histories[w].append(values[: cut - h + w * h])
    return Split(train, np.stack(validation), np.stack(tests), histories)


def spec_of(cfg: FleetConfig, shape: Layout) -> pt.FleetSpec:
    p = cfg.panel
    return pt.FleetSpec(
        cfg.model, p.period, p.head, p.horizon, p.lahead, p.chunk, p.batch_size,
        shape.first_chunk, shape.n_chunks, cfg.train.epochs,
    )  # fmt: skip


def train_and_forecast(
    cfg: FleetConfig, panel: Panel, scaling: PanelScaling
) -> tuple[tuple[ModelParams, ModelParams], np.ndarray, np.ndarray]:
    """Both models, every seed: (params, losses (2, seeds, epochs), forecasts (2, seeds, S,
    K + 1, H) in data units, the validation origin's first)."""
    p = cfg.panel
    shape = layout(panel, scaling, p.horizon, p.windows, p.period, p.lahead, p.chunk)
    spec = spec_of(cfg, shape)
    data = pt.PanelData(shape.z, shape.valid, shape.phase)
    inits = [pt.init_fleet(cfg.seed, cfg.seeds, spec, mode) for mode in (0, 1)]
    key = jax.random.key(cfg.seed)
    fit = pt.fit_fleet(*inits, data, key, jnp.float32(cfg.train.learning_rate), spec=spec)
    z = np.asarray(pt.forecast_fleet(*fit.params, data, origins=shape.origins, spec=spec), np.float64)
    forecasts = scaling.to_data(np.moveaxis(z, 2, 0))  # series first, for the per-series scaling
    return fit.params, np.asarray(fit.losses), np.moveaxis(forecasts, 0, 2)


def _scores(cfg: FleetConfig, s: Split, forecasts: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """model -> metric -> (S,): each series' metrics averaged over its K test windows."""
    out = {}
    for model, f in forecasts.items():
        per_window = [
            panel_scores.metrics(s.histories[w + 1], s.tests[:, w], f[:, w], cfg.panel.period)
            for w in range(cfg.panel.windows)
        ]
        out[model] = {m: np.mean([pw[m] for pw in per_window], axis=0) for m in panel_scores.METRICS}
    return out


def baselines(cfg: FleetConfig, s: Split, notes: list[str]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every baseline's forecasts: (test model -> (S, K, H), validation model -> (S, H)).
    statsforecast's (the stats extra) are fitted at the test origins only; without the extra
    a note says so and they are left out."""
    p = cfg.panel
    per_origin = [panel_baselines.simple_forecasts(h, p.horizon, p.period, p.linear_window) for h in s.histories]
    tests = {n: np.stack([o[n] for o in per_origin[1:]], axis=1) for n in per_origin[0]}
    if p.stats and (missing := panel_baselines.stats_available()) is not None:
        notes.append(missing)
    elif p.stats:
        fitted = [panel_baselines.stats_forecasts(h, p.horizon, p.period, p.stats) for h in s.histories[1:]]
        tests |= {n: np.stack([f[n] for f in fitted], axis=1) for n in p.stats}
    return tests, per_origin[0]


def _means(metrics: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, float]]:
    snaive = metrics["seasonal-naive"]["mase"]
    out = {}
    for model, per in metrics.items():
        out[model] = {m: panel_scores.mean_over_series(v) for m, v in per.items()}
        both = np.isfinite(per["mase"]) & np.isfinite(snaive)
        out[model]["beats_seasonal_naive"] = float(np.mean(per["mase"][both] < snaive[both])) if both.any() else 0.0
    return out


def verdict(metrics: dict[str, dict[str, np.ndarray]], means: dict[str, dict[str, float]], seed: int) -> Verdict:
    """The best model, and each of ours against the best baseline, on mean MASE."""
    mase = {m: v["mase"] for m, v in means.items()}
    best = panel_scores.best_model(mase)
    best_baseline = panel_scores.best_model({m: v for m, v in mase.items() if m not in MODELS})
    versus = {
        m: panel_scores.bootstrap_difference(metrics[m]["mase"], metrics[best_baseline]["mase"], seed=seed)
        for m in MODELS
    }
    return Verdict(best, best_baseline, versus)


def run_fleet(cfg: FleetConfig, panel: Panel, on_stage: StageCallback | None = None) -> FleetResult:
    """Train, forecast and score ``cfg`` on ``panel`` (see the module docstring)."""
    stage = on_stage or (lambda name: None)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    parts = split(cfg, panel)
    p = cfg.panel
    check_scaling_domain(p.scaling, panel.values, panel.ids)
    if p.levels:
        panel_intervals.check_enough(p.levels, len(panel))
    scaling = fit_scaling(p.scaling, parts.train, panel.ids, max(p.period, p.horizon))
    stage("training")
    params, losses, ours = train_and_forecast(cfg, panel, scaling)
    timings["train_s"] = time.perf_counter() - start
    stage("baselines")
    notes: list[str] = []
    tests, validation = baselines(cfg, parts, notes)
    timings["baselines_s"] = time.perf_counter() - start - timings["train_s"]
    seed_forecasts = {"stateful": ours[0, :, :, 1:], "stateless": ours[1, :, :, 1:]}
    means_of = {m: f.mean(axis=0) for m, f in seed_forecasts.items()}
    means_of["combined"] = (means_of["stateful"] + means_of["stateless"]) / 2
    val = {m: ours[i, :, :, 0].mean(axis=0) for i, m in enumerate(MODELS[:2])}
    val["combined"] = (val["stateful"] + val["stateless"]) / 2
    forecasts, validation = {**means_of, **tests}, {**val, **validation}
    metrics = _scores(cfg, parts, forecasts)
    intervals = _intervals(cfg, parts, forecasts, validation, metrics)
    means = _means(metrics)
    val_mase = {
        m: panel_scores.mean_over_series(
            panel_scores.metrics(parts.histories[0], parts.validation, f, p.period)["mase"]
        )
        for m, f in validation.items()
    }
    origins = _origin_ordinals(cfg, panel)
    timings["total_s"] = time.perf_counter() - start
    return FleetResult(
        cfg, panel, scaling, parts, forecasts, seed_forecasts, validation, metrics, means, val_mase,
        verdict(metrics, means, cfg.seed), params, losses, origins, tuple(notes), timings, *intervals,
    )  # fmt: skip


def _intervals(cfg: FleetConfig, s: Split, forecasts: dict[str, np.ndarray], validation: dict[str, np.ndarray],
               metrics: dict[str, dict[str, np.ndarray]]) -> tuple[dict, dict, dict]:  # fmt: skip
    """Each model's conformal intervals (from its validation errors: models forecast at the
    test origins only have none), with their scores added to ``metrics``: (intervals,
    widths, step coverage), each model -> array (see ``FleetResult``)."""
    p = cfg.panel
    if not p.levels:
        return {}, {}, {}
    scale_at = [np.array([panel_scores.mase_scale(h, p.period) for h in hist]) for hist in s.histories]
    test_scale = np.stack(scale_at[1:], axis=1)  # (S, K)
    intervals, widths, coverage = {}, {}, {}
    for model in (m for m in forecasts if m in validation):
        widths[model] = panel_intervals.conformal_widths(s.validation, validation[model], scale_at[0], p.levels)
        intervals[model] = panel_intervals.bounds(forecasts[model], test_scale, widths[model])
        metrics[model] |= panel_intervals.scores(s.tests, intervals[model], test_scale, p.levels)
        coverage[model] = panel_intervals.step_coverage(s.tests, intervals[model])
    return intervals, widths, coverage


def _origin_ordinals(cfg: FleetConfig, panel: Panel) -> np.ndarray:
    """(S, K): the clock ordinal of each series' test origins (its first forecast step)."""
    k, h = cfg.panel.windows, cfg.panel.horizon
    first_test = panel.starts + panel.lengths - k * h
    return first_test[:, None] + h * np.arange(k)[None, :]
