"""The seed protocol end to end: ``run(config) -> RunResult``.

config -> data -> one compiled training program (both modes, all seeds) -> scores.
No files and no printing here; the CLI does those with what this returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import jax
import numpy as np

from lstm_stateful.core import data as data_mod
from lstm_stateful.core import evaluate
from lstm_stateful.core.cells import ModelParams
from lstm_stateful.core.config import MODES, ExperimentConfig
from lstm_stateful.core.train import Batches, EpochCallback, FitResult, fit, init_seeds
from lstm_stateful.io import series_file

# Told what a run is doing now: "compiling", then "training".
StageCallback = Callable[[str], None]


class ModeResult(NamedTuple):
    """One model (stateful or stateless), all seeds.

    train_loss, val_loss: (S, epochs); predictions: (S, n_test) float32;
    params: final weights with a leading seed axis.
    """

    train_loss: np.ndarray
    val_loss: np.ndarray
    predictions: np.ndarray
    params: ModelParams
    scores: evaluate.Scores
    median_seed: int
    verdict: str
    compile_s: float
    train_s: float


class RunResult(NamedTuple):
    config: ExperimentConfig
    series: data_mod.Series
    split: data_mod.Split
    floors: evaluate.Floors
    models: dict[str, ModeResult]
    banner: str | None  # None: the example's rule says nothing about this task
    banner_held: bool | None


def prepare(cfg: ExperimentConfig, columns: data_mod.Columns | None = None) -> tuple[data_mod.Series, data_mod.Split]:
    """docs/protocol.md, steps 1-6, on the generated series or on ``cfg.data.file``'s columns (read
    here unless the caller has already read them)."""
    if cfg.data.file is not None and columns is None:
        d = cfg.data
        columns = series_file.read_columns(d.file, d.input_col, d.target_col, d.drop_missing)
    series = data_mod.make_series(cfg.data, columns)
    return series, data_mod.split(series, cfg.data)


def test_floors(cfg: ExperimentConfig, series: data_mod.Series) -> evaluate.Floors:
    """The floors on this config's test rows (float64)."""
    return evaluate.floors(cfg.data, data_mod.test_part(series, cfg.data))


def score_model(cfg: ExperimentConfig, mode: str, split: data_mod.Split, predictions: np.ndarray) -> evaluate.Scores:
    """Score one model's seeds, predictions (S, n_test, 1) in time order, on the test points
    it is scored on."""
    scored = evaluate.scored_points(mode, cfg.data, split.y_test.shape[0])
    return evaluate.score(split.y_test, predictions, scored)


def model_batches(cfg: ExperimentConfig, x: np.ndarray, y: np.ndarray) -> Batches:
    """Rows (n, ...) as the model sees them: (n_batches, batch_size, ...) in ``cfg``'s layout."""
    b, layout = cfg.data.batch_size, cfg.data.layout
    return Batches(data_mod.batches(x, b, layout), data_mod.batches(y, b, layout))


def time_ordered(cfg: ExperimentConfig, predictions: jax.Array) -> np.ndarray:
    """(..., S, n_test, 1) in the order the model saw the test rows -> host array in time order."""
    preds = np.asarray(predictions)
    flat = preds.reshape(-1, *preds.shape[-2:])
    return data_mod.time_order(flat, cfg.data.batch_size, cfg.data.layout).reshape(preds.shape)


def _train_both(
    cfg: ExperimentConfig, split: data_mod.Split, on_epoch: EpochCallback | None, on_stage: StageCallback
) -> dict[str, tuple[FitResult, float, float]]:
    """Compile once (the mode is a runtime flag), then train each mode: (result, compile s, train s)."""
    args = (
        init_seeds(cfg.seed, cfg.seeds, cfg.model),
        np.asarray(True),
        jax.device_put(model_batches(cfg, split.x_train, split.y_train)),
        jax.device_put(model_batches(cfg, split.x_test, split.y_test)),
    )
    on_stage("compiling")
    start = time.perf_counter()
    compiled = fit.lower(*args, model=cfg.model, train=cfg.train, on_epoch=on_epoch).compile()
    compile_s = time.perf_counter() - start
    on_stage("training")

    def train(mode: str) -> tuple[FitResult, float]:
        start = time.perf_counter()
        result = jax.block_until_ready(compiled(args[0], np.asarray(mode == "stateful"), *args[2:]))
        return result, time.perf_counter() - start

    # The two models train concurrently (each call releases the GIL); each keeps its own
    # wall time. Only the first pays for compilation: both share the executable.
    with ThreadPoolExecutor(max_workers=len(MODES)) as pool:
        trained = dict(zip(MODES, pool.map(train, MODES), strict=True))
    return {mode: (r, compile_s if mode == MODES[0] else 0.0, s) for mode, (r, s) in trained.items()}


def _mode_result(
    cfg: ExperimentConfig, mode: str, fitted: tuple, split: data_mod.Split, floors: evaluate.Floors
) -> ModeResult:
    result, compile_s, train_s = fitted
    preds = time_ordered(cfg, result.predictions)
    scores = score_model(cfg, mode, split, preds)
    return ModeResult(
        train_loss=np.asarray(result.train_loss),
        val_loss=np.asarray(result.val_loss),
        predictions=preds[..., 0],
        params=jax.tree.map(np.asarray, result.params),
        scores=scores,
        median_seed=evaluate.median_seed(scores),
        verdict=evaluate.verdict(scores, evaluate.model_floor(floors, mode)),
        compile_s=compile_s,
        train_s=train_s,
    )


def run(
    cfg: ExperimentConfig,
    on_epoch: EpochCallback | None = None,
    on_stage: StageCallback | None = None,
    prepared: tuple[data_mod.Series, data_mod.Split] | None = None,
) -> RunResult:
    """Train the stateful and the stateless model on the example's data, all seeds, and score them.

    ``on_epoch`` is called from inside the compiled program after every epoch (a host
    callback: JAX does not keep such a program in its persistent cache); ``on_stage``
    with "compiling", then "training". ``prepared``: ``prepare(cfg)``'s result, if the
    caller already has it.
    """
    series, split = prepared or prepare(cfg)
    floors = test_floors(cfg, series)
    fitted = _train_both(cfg, split, on_epoch, on_stage or (lambda stage: None))
    models = {mode: _mode_result(cfg, mode, fitted[mode], split, floors) for mode in MODES}
    return RunResult(
        config=cfg,
        series=series,
        split=split,
        floors=floors,
        models=models,
        banner=evaluate.banner(cfg.data),
        banner_held=evaluate.banner_held(cfg.data, models["stateless"].verdict),
    )
