"""The seed protocol end to end: ``run(config) -> RunResult``.

config -> data -> baselines -> one compiled training program (both modes, all seeds) ->
scores and skills, in the data's units. No files and no printing here; the commands
(``lstm_stateful.commands``) do those with what this returns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import jax
import numpy as np

from lstm_stateful.core import baselines as baselines_mod
from lstm_stateful.core import data as data_mod
from lstm_stateful.core import evaluate
from lstm_stateful.core.cells import ModelParams
from lstm_stateful.core.config import MODES, ExperimentConfig
from lstm_stateful.core.train import Batches, EpochCallback, FitResult, fit_problems, init_seeds
from lstm_stateful.io import series_file

# Told what a run is doing now ("training").
StageCallback = Callable[[str], None]
# How often a wait for the training program looks whether it has finished (seconds).
WAIT_POLL_S = 0.005
# JAX's monitoring events that time tracing, lowering, compiling and persistent-cache loads.
COMPILE_EVENTS = ("/jax/core/compile/", "/jax/compilation_cache/cache_retrieval_time_sec")


class ModeResult(NamedTuple):
    """One model (stateful or stateless), all seeds.

    train_loss, val_loss: (S, epochs); predictions: (S, n_test) float32, the model's units
    (as it outputs them); data_predictions: (S, n_test) float64, the same in the data's
    units (``Series.data_units``); params: final weights with a leading seed axis; scores:
    in the data's units; skill: over the best baseline of its scored points; verdict: on a
    data file against the baselines, otherwise against the model's floor
    (``evaluate.model_verdict``).
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
    data_predictions: np.ndarray
    skill: evaluate.Skill


class RunResult(NamedTuple):
    config: ExperimentConfig
    series: data_mod.Series
    split: data_mod.Split
    floors: evaluate.Floors
    models: dict[str, ModeResult]
    banner: str | None  # None: the example's rule says nothing about this task
    banner_held: bool | None
    baselines: baselines_mod.Baselines  # every baseline's forecasts and MSEs, per mode's scored points


def prepare(cfg: ExperimentConfig, columns: data_mod.Columns | None = None) -> tuple[data_mod.Series, data_mod.Split]:
    """docs/protocol.md, steps 1-6, on the generated series or on ``cfg.data.file``'s columns (read
    here unless the caller has already read them)."""
    if (file := cfg.data.file) is not None and columns is None:
        d = cfg.data
        columns = series_file.read_columns(file, d.input_cols, d.target_col, d.drop_missing)
    series = data_mod.make_series(cfg.data, columns)
    return series, data_mod.split(series, cfg.data)


def test_floors(cfg: ExperimentConfig, series: data_mod.Series) -> evaluate.Floors:
    """The floors on this config's test rows (float64)."""
    return evaluate.floors(cfg.data, data_mod.test_part(series, cfg.data))


def score_model(
    cfg: ExperimentConfig,
    mode: str,
    split: data_mod.Split,
    predictions: np.ndarray,
    series: data_mod.Series | None = None,
) -> evaluate.Scores:
    """Score one model's seeds, predictions (S, n_test) in time order and the model's units,
    on the test points it is scored on.

    With ``series`` (the config's, ``prepare``), in the data's units: the predictions and
    the float32 test target both mapped back (``Series.data_units``), as the baselines are
    scored. Without it, in the model's units, which are the data's unless ``transform`` or
    ``standardize`` is set. On the generated series both give the same numbers, bit for bit.
    """
    if series is None:
        scored = evaluate.scored_points(mode, cfg.data, split.y_test.shape[0])
        return evaluate.score(split.y_test, predictions[..., None], scored)
    return _score_in_data_units(cfg, mode, series, data_mod.test_part(series, cfg.data).data_units(predictions))


def _score_in_data_units(
    cfg: ExperimentConfig, mode: str, series: data_mod.Series, predictions: np.ndarray
) -> evaluate.Scores:
    """Score predictions (S, n_test) already in the data's units against the truth the
    baselines are scored against, on the mode's scored points."""
    truth = baselines_mod.truth(cfg.data, series)
    scored = evaluate.scored_points(mode, cfg.data, truth.shape[0])
    return evaluate.score(truth[:, None], predictions[..., None], scored)


def model_batches(cfg: ExperimentConfig, x: np.ndarray, y: np.ndarray) -> Batches:
    """Rows (n, ...) as the model sees them: (n_batches, batch_size, ...) in ``cfg``'s layout."""
    b, layout = cfg.data.batch_size, cfg.data.layout
    return Batches(data_mod.batches(x, b, layout), data_mod.batches(y, b, layout))


def time_ordered(cfg: ExperimentConfig, predictions: jax.Array | np.ndarray) -> np.ndarray:
    """(..., S, n_test, 1) in the order the model saw the test rows -> host array in time order."""
    preds = np.asarray(predictions)
    flat = preds.reshape(-1, *preds.shape[-2:])
    return data_mod.time_order(flat, cfg.data.batch_size, cfg.data.layout).reshape(preds.shape)


class Training(NamedTuple):
    """What one compiled program trained for P problems, M modes and S seeds (host arrays).

    params: final weights, leading axes (P, M, S); train_loss, val_loss: (P, M, S, epochs);
    predictions: (P, M, S, n_test), float32, time order; compile_s: seconds spent tracing
    and compiling (or loading from the persistent cache); train_s: the rest of the call.
    """

    params: ModelParams
    train_loss: np.ndarray
    val_loss: np.ndarray
    predictions: np.ndarray
    compile_s: float
    train_s: float


def lanes(cfg: ExperimentConfig, seeds: range | None = None) -> tuple[ModelParams, np.ndarray]:
    """The lanes of the training program: every mode x every seed of ``seeds`` (default: all
    of ``cfg.seeds``), mode-major.

    Returns weights with a leading axis M * S (seed i's weights, ``init_seeds``, in each
    mode) and the (M * S,) stateful flags.
    """
    seeds = seeds if seeds is not None else range(cfg.seeds)
    weights = init_seeds(cfg.seed, len(seeds), cfg.model, seeds.start)
    params = jax.tree.map(lambda a: np.concatenate([a] * len(MODES)), weights)
    return params, np.repeat([mode == "stateful" for mode in MODES], len(seeds))


def _by_mode(array: jax.Array, n_seeds: int) -> np.ndarray:
    """(P, M * S, ...) lanes -> (P, M, S, ...) host array."""
    a = np.asarray(array)
    return a.reshape(a.shape[0], len(MODES), n_seeds, *a.shape[2:])


def _check_one_program(configs: Sequence[ExperimentConfig]) -> ExperimentConfig:
    """The configs train in one program only if they share its static settings and shapes:
    they may differ in their data (series, layout, order) and learning rate, at one batch size."""
    base = configs[0]
    for cfg in configs[1:]:
        rate = dataclasses.replace(cfg.train, learning_rate=base.train.learning_rate)
        same_rest = dataclasses.replace(cfg, data=base.data, train=base.train) == base and rate == base.train
        if not same_rest or cfg.data.batch_size != base.data.batch_size:
            raise ValueError("configs trained together may differ only in data and learning rate, at one batch size")
    return base


def learning_rates(configs: Sequence[ExperimentConfig]) -> np.ndarray:
    """float32 (), one rate shared by every problem (each problem's numbers are then those
    it gets trained alone, bit for bit), or (P,), a rate per problem (vmapped: equal to
    training alone up to float32 rounding; see ``fit_problems``)."""
    rates = np.array([c.train.learning_rate for c in configs], np.float32)
    return rates[0] if np.all(rates == rates[0]) else rates


def train(
    configs: Sequence[ExperimentConfig],
    splits: Sequence[data_mod.Split],
    on_epoch: EpochCallback | None = None,
    on_stage: StageCallback | None = None,
    seeds: range | None = None,
) -> Training:
    """Train both modes and the seeds (``seeds``, default all) of each config on its split:
    one compiled program.

    This is the one training path (``fit_problems``): ``run`` trains a single problem, a
    sweep's group or a search's batch one per point or trial. The splits must share shapes.
    The learning rate is a traced input: another rate (or other data of the same shapes)
    reuses the compiled program.
    """
    base = _check_one_program(configs)
    seeds = seeds if seeds is not None else range(base.seeds)
    args = _program_args(configs, splits, seeds)
    (on_stage or (lambda stage: None))("training")
    statics = {"model": base.model, "epochs": base.train.epochs, "on_epoch": on_epoch}
    with compile_timer() as compile_s:
        start = time.perf_counter()
        result = _interruptible(lambda: fit_problems(*args, **statics), blocking=on_epoch is not None)
        total = time.perf_counter() - start
    predictions = _by_mode(result.predictions, len(seeds))
    ordered = [time_ordered(cfg, predictions[p]) for p, cfg in enumerate(configs)]
    return Training(
        params=jax.tree.map(lambda a: _by_mode(a, len(seeds)), result.params),
        train_loss=_by_mode(result.train_loss, len(seeds)),
        val_loss=_by_mode(result.val_loss, len(seeds)),
        predictions=np.stack(ordered)[..., 0],
        compile_s=compile_s[0],
        train_s=total - compile_s[0],
    )


def _program_args(configs: Sequence[ExperimentConfig], splits: Sequence[data_mod.Split], seeds: range) -> tuple:
    """The training program's arguments: the lanes' weights and flags, the learning rate(s),
    and the train and test batches (each config's in its own layout) on a leading problem axis."""
    params, stateful = lanes(configs[0], seeds)
    pairs = list(zip(configs, splits, strict=True))
    train_data = _stacked([model_batches(c, s.x_train, s.y_train) for c, s in pairs])
    test_data = _stacked([model_batches(c, s.x_test, s.y_test) for c, s in pairs])
    return (params, stateful, learning_rates(configs), train_data, test_data)


def _interruptible(call: Callable[[], FitResult], blocking: bool) -> FitResult:
    """``call()``, waited for in short sleeps so that Ctrl-C stays deliverable: a blocking
    wait would hold the main thread until the whole training program ends. ``blocking``:
    the call itself blocks in JAX's runtime until the end (the dispatch of a program with
    a host callback does), so it runs on a helper thread that this one joins in short
    waits; otherwise it returns once dispatched, and this thread polls its arrays. On an
    interrupt the program runs on, abandoned."""
    if not blocking:
        result = call()
        leaves = jax.tree.leaves(result)
        while not all(leaf.is_ready() for leaf in leaves):
            time.sleep(WAIT_POLL_S)
        return result
    box: list[FitResult | BaseException] = []

    def work() -> None:
        try:
            box.append(jax.block_until_ready(call()))
        except BaseException as e:  # handed to the waiting thread
            box.append(e)

    thread = threading.Thread(target=work, name="lstm-stateful-training", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(WAIT_POLL_S)
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def _stacked(per_problem: Sequence[Batches]) -> Batches:
    """Each problem's batches stacked on a leading problem axis."""
    return jax.tree.map(lambda *a: np.stack(a), *per_problem)


@contextlib.contextmanager
def compile_timer() -> Iterator[list[float]]:
    """Seconds JAX spends tracing, lowering and compiling (or loading compiled programs from
    its persistent cache) while the block runs, in a one-element list filled on exit."""
    seconds = [0.0]

    def listen(event: str, duration_secs: float, **kwargs: str | int) -> None:
        if event.startswith(COMPILE_EVENTS):
            seconds[0] += duration_secs

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        yield seconds
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)


class _Judged(NamedTuple):
    """What a run's models are scored against: the series, split, floors and baselines."""

    series: data_mod.Series
    split: data_mod.Split
    floors: evaluate.Floors
    baselines: baselines_mod.Baselines


def _mode_result(cfg: ExperimentConfig, m: int, training: Training, judged: _Judged) -> ModeResult:
    """Problem 0, mode ``MODES[m]``, scored in the data's units and judged."""
    mode = MODES[m]
    preds = training.predictions[0, m]
    data_predictions = data_mod.test_part(judged.series, cfg.data).data_units(preds)
    scores = _score_in_data_units(cfg, mode, judged.series, data_predictions)
    skill = evaluate.skill_summary(scores, judged.baselines.mse[mode])
    return ModeResult(
        train_loss=training.train_loss[0, m],
        val_loss=training.val_loss[0, m],
        predictions=preds,
        params=jax.tree.map(lambda a: a[0, m], training.params),
        scores=scores,
        median_seed=evaluate.median_seed(scores),
        verdict=evaluate.model_verdict(cfg.data, scores, judged.floors, mode, skill),
        # One program trains both modes: its compilation and its time are shared.
        compile_s=training.compile_s,
        train_s=training.train_s,
        data_predictions=data_predictions,
        skill=skill,
    )


def run(
    cfg: ExperimentConfig,
    on_epoch: EpochCallback | None = None,
    on_stage: StageCallback | None = None,
    prepared: tuple[data_mod.Series, data_mod.Split] | None = None,
) -> RunResult:
    """Train the stateful and the stateless model on ``cfg``'s data, all seeds; score them
    and the baselines on the same test points, in the data's units; judge each model.

    A run is a sweep of one grid point: it trains through ``train`` as a sweep's group does.
    ``on_epoch`` is called from inside the compiled program after every epoch (a host
    callback: JAX does not keep such a program in its persistent cache); ``on_stage``
    with "training". ``prepared``: ``prepare(cfg)``'s result, if the caller already has it.
    """
    series, split = prepared or prepare(cfg)
    judged = _Judged(series, split, test_floors(cfg, series), baselines_mod.baselines(cfg.data, series))
    training = train([cfg], [split], on_epoch, on_stage)
    models = {mode: _mode_result(cfg, m, training, judged) for m, mode in enumerate(MODES)}
    return RunResult(
        config=cfg,
        series=series,
        split=split,
        floors=judged.floors,
        models=models,
        banner=evaluate.banner(cfg.data),
        banner_held=evaluate.banner_held(cfg.data, models["stateless"].verdict),
        baselines=judged.baselines,
    )
