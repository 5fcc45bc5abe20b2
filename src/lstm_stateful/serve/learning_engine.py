"""Models that learn from their own streams while they serve (``serve --learn``).

* A **fleet** model (``LearningFleetEngine``): each value a stream is fed is the label of
  the one-step forecast made before it; no field is needed.
* A **single-series** model (``LearningEngine``) whose target is not a later value of its
  inputs (task moving-average or a target column): labels come apart. A request may carry
  ``targets``, ``[{"seq": k, "value": y}]``, each the target of the stream's value k, one
  of its latest ``--learn-window`` values (this request's included), at most once. A value
  whose target never comes teaches nothing; once it has left the window its target is
  refused (409), as is a second one. A single-series model of task forecast (horizon h)
  needs none: the first input's value at k + h is the target of value k.

Beside its state, a learning stream keeps what its next labels need: the state of the
model as saved, fed the same values (the frozen model, scored on the same labels as the
learning one, ``learner.Scores``); its latest ``K`` values and the state before them (the
anchor: the truncated-BPTT window of its next labels); a single-series stream also keeps
both models' predictions of those values, made before their targets came, and which have
had one.

A round's groups feed their streams with the weights that answer now (the latest
committed), gather their windows, and the round then takes one optimizer step
(``learner.advance``); the new weights answer once they are committed with the round's
states (``commit``). The streams keep their states when the weights change.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from lstm_stateful.core.cells import ModelParams
from lstm_stateful.core.config import ExperimentConfig
from lstm_stateful.core.panel import PanelScaling
from lstm_stateful.models import fleet_learn, online, stream_learn
from lstm_stateful.models import fleet_stream as fs
from lstm_stateful.models import stream as st
from lstm_stateful.models.fleet_model import FleetModel, save_fleet_model
from lstm_stateful.models.model_io import SavedModel, save_model
from lstm_stateful.models.stream import bucket
from lstm_stateful.serve import learner as lr
from lstm_stateful.serve import openapi
from lstm_stateful.serve.body import Limits, parse_predict
from lstm_stateful.serve.engine import MAX_BATCH, Engine, Leaves, StateCodec
from lstm_stateful.serve.fleet_engine import FleetEngine, Served
from lstm_stateful.serve.ops import Predict
from lstm_stateful.serve.store import Store


class Learns:
    """What every learning engine shares: the learner, its version, the round's step."""

    cfg: lr.LearnConfig
    learner: lr.Learner
    weights_codec: StateCodec
    _params: Any

    def _start(self, params: ModelParams, per_seed: bool) -> None:
        """Version 0 (``self.cfg`` is set before the engine's own start: its states need it)."""
        self.per_seed = per_seed
        self.learner = lr.start(jax.tree.map(np.asarray, params), self.cfg, per_seed)
        self.weights_codec = lr.weights_codec(self.learner)

    def version(self) -> int:
        return self.learner.current.version

    def commit(self, learner: lr.Learner) -> None:
        """Make ``learner`` (committed to the state file) the one that answers."""
        if learner.current is not self.learner.current:
            self._params = jax.device_put(learner.current.params)
        self.learner = learner

    def grads(self, params: ModelParams, window: Any) -> tuple[ModelParams, jax.Array]:
        """The model's window gradient (``online.Grads``)."""
        raise NotImplementedError

    def window_template(self) -> Any:
        """A window of this model (its structure: what a replay decodes the log with)."""
        raise NotImplementedError

    def update(self, params: ModelParams, opt_state: optax.OptState, windows: Sequence[Any]
               ) -> tuple[ModelParams, optax.OptState, int]:  # fmt: skip
        """One optimizer step on a round's windows (``online.update``)."""
        return online.update(params, opt_state, windows, self.grads, self.cfg.lr, self.cfg.clip, self.per_seed)

    def learn(self, groups: list[lr.Labelled], requests: list[tuple[str, int]]) -> lr.Step:
        """The round's step (scored, then trained; not yet current: see ``commit``)."""
        return lr.advance(self.learner, groups, requests, self.update, self.cfg, self.weights_codec)

    def refuse(self, op: Predict, state: Leaves | None) -> str | None:
        """Why a request cannot be applied to its stream's learning state (None: it can)."""
        return None

    def targets(self, ops: list[Predict], n: int) -> np.ndarray | None:
        """The ops' targets as (B, K) data units in their streams' windows after their n
        values (NaN: none), or None when no op carries any."""
        return None

    def snapshot(self, directory: Path) -> int:
        """Write the weights that answer now as a model directory (``predict``, ``export``
        and ``serve`` load it); their version."""
        raise NotImplementedError

    def _compile_update(self, window: Any) -> None:
        """Compile the window's gradient and the optimizer step (at start, not under load)."""
        cur = self.learner.current
        g, _ = self.grads(cur.params, window)
        online.apply_update(cur.params, cur.opt_state, g, np.int32(1), lr=self.cfg.lr, clip=self.cfg.clip,
                            per_seed=self.per_seed)  # fmt: skip


class Learning(NamedTuple):
    """What a learning stream keeps beside its state (axis 0: B streams): frozen, anchor:
    ``Core``s; window: (B, K) float32 model units; held: (B,) int32 (see the module)."""

    frozen: fs.Core
    anchor: fs.Core
    window: np.ndarray
    held: np.ndarray


def _held_then_new(held: np.ndarray, k: int, n: int, steps: int) -> np.ndarray:
    """(steps, B) True where a window holds a value: the last ``held`` (B,) of its first k
    steps (the values kept, right-aligned), then the n new ones; padding after."""
    values = np.zeros((steps, held.shape[0]), bool)
    values[:k], values[k : k + n] = np.arange(k)[:, None] >= k - held[None, :], True
    return values


def _leaving(values: np.ndarray, held: np.ndarray, k: int, n: int) -> np.ndarray:
    """The window's values (``values`` (T, B)) that leave it after n new ones: the first
    held + n - k of each column (the anchor moves past them)."""
    drop = np.maximum(held + n - k, 0)
    return values & (np.cumsum(values, axis=0) <= drop[None, :])


def _kept(old: np.ndarray, new: np.ndarray, k: int) -> np.ndarray:
    """The latest k of ``old`` then ``new`` along axis 1."""
    return np.concatenate([old, new.astype(old.dtype)], axis=1)[:, -k:]


class LearningFleetEngine(Learns, FleetEngine):
    """A fleet model's batched steps that also learn (see the module's docstring)."""

    def __init__(self, model: FleetModel, cfg: lr.LearnConfig, max_batch: int = MAX_BATCH) -> None:
        self.cfg = cfg
        self.shape = fs.shape_of(model)
        self._base = jax.device_put(model.params)
        super().__init__(model, max_batch)
        self._start(model.params, per_seed=True)

    def grads(self, params: ModelParams, window: Any) -> tuple[ModelParams, jax.Array]:
        return fleet_learn.window_grads(params, window, shape=self.shape)

    def window_template(self) -> fleet_learn.Window:
        core = self._unpacked(self.initial).stream.core
        return fleet_learn.Window(core, np.zeros((1, 1)), np.zeros((1, 1), bool), np.zeros((1, 1), bool))

    def _learning(self, stream: fs.FleetStreamState) -> Learning:
        k = self.cfg.window
        return Learning(stream.core, stream.core, np.zeros((1, k), np.float32), np.zeros((1,), np.int32))

    def _scaled(
        self, stream: fs.FleetStreamState, values: np.ndarray, pending: np.ndarray
    ) -> tuple[Served, np.ndarray]:
        """A new series' first values: the learning and frozen models each fed them; its
        labels start with its next value."""
        fed, p = fs.feed(self.model, self._params, stream, values[None])
        frozen, _ = fs.feed(self.model, self._base, stream, values[None])
        learn = self._learning(fed)._replace(frozen=frozen.core)
        return Served(fed, pending, np.array([-1], np.int64), learn), p

    def _feed(self, state: Any, table: np.ndarray, b: int, sink: list | None, targets: np.ndarray | None = None
              ) -> tuple[Any, np.ndarray]:  # fmt: skip
        """B scaled streams fed n values each: the learning model's predictions (data units),
        the frozen model's state, the streams' windows; the first ``b`` rows' labels to ``sink``."""
        s, learn = state.stream, state.learn
        scaling = PanelScaling(self.model.scaling.kind, s.loc, s.scale)
        n, batch = table.shape[1], table.shape[0]
        z = scaling.to_model(table[..., 0]).astype(np.float32)  # (B, n)
        # Step 0 feeds nothing: its output is the forecast made before the first value.
        zs, fed = np.zeros((bucket(n + 1), batch), np.float32), np.zeros((bucket(n + 1), batch), bool)
        zs[1 : n + 1], fed[1 : n + 1] = z.T, True
        live, lp = fs.feed_core(self._params, s.core, zs, fed, shape=self.shape)
        frozen, fp = fs.feed_core(self._base, learn.frozen, zs, fed, shape=self.shape)
        lp, fp = np.asarray(lp, np.float64), np.asarray(fp, np.float64)  # (T, seeds, B)
        window, anchor, kept = self._window(learn, z)
        if sink is not None:
            sink.append(self._labelled(window, lp[:n].mean(axis=1), fp[:n].mean(axis=1), z.T, b))
        held = np.minimum(learn.held + n, self.cfg.window).astype(np.int32)
        learnt = Learning(frozen, anchor, kept, held)
        return state._replace(stream=fs.advanced(s, live, n), learn=learnt), fs.seed_mean(scaling, lp[1 : n + 1])

    def _window(self, learn: Learning, z: np.ndarray) -> tuple[fleet_learn.Window, fs.Core, np.ndarray]:
        """The streams' truncated-BPTT window (held values, then the new ``z`` (B, n)), their
        anchor moved past the values that leave it, and the values kept (B, K)."""
        k, (batch, n) = self.cfg.window, z.shape
        zs = np.zeros((k + bucket(n), batch), np.float32)
        zs[:k], zs[k : k + n] = learn.window.T, z.T
        fed = _held_then_new(learn.held, k, n, zs.shape[0])
        label = np.zeros_like(fed)
        label[k : k + n] = True
        anchor, _ = fs.feed_core(self._params, learn.anchor, zs, _leaving(fed, learn.held, k, n), shape=self.shape)
        return (
            fleet_learn.Window(learn.anchor, zs, fed, label),
            jax.tree.map(np.asarray, anchor),
            _kept(learn.window, z, k),
        )

    def _labelled(self, window: fleet_learn.Window, learning: np.ndarray, frozen: np.ndarray, z: np.ndarray,
                  b: int) -> lr.Labelled:  # fmt: skip
        """The first ``b`` streams' labels and both models' errors on them (stream by stream).
        learning, frozen: (n, B) forecasts of the values z (n, B), model units."""
        window = window._replace(label=window.label & (np.arange(window.label.shape[1]) < b)[None, :])
        el, ef = np.abs(learning - z).T[:b], np.abs(frozen - z).T[:b]
        ok = np.isfinite(el) & np.isfinite(ef)
        return lr.Labelled(window, el[ok], ef[ok])

    def warm_up(self) -> None:
        """``FleetEngine.warm_up``, then every size class's gradient for single values and the update."""
        super().warm_up()
        for size in self.classes:
            sink: list[lr.Labelled] = []
            self.step([self.initial] * size, np.ones((size, 1, 1)), sink)
            self._compile_update(sink[0].window)

    def snapshot(self, directory: Path) -> int:
        """Write the weights that answer now as a model directory; their version."""
        current = self.learner.current
        save_fleet_model(directory, self.model._replace(params=jax.tree.map(np.asarray, current.params)))
        return current.version


class StreamLearning(NamedTuple):
    """What a learning single-series stream keeps beside its predictor's state (axis 0: B
    streams; K: ``--learn-window``; its latest values right-aligned, ``held`` of them there).

    frozen, anchor: ``StreamState``s (the frozen model's; the learning model's before the
    held values); xs: (B, K, F) float32 their input rows, model units; fed: (B, K) bool;
    reference: (B, K) float64 each prediction's reference (data units); learning, frozen_pred:
    (B, K) float64 both models' predictions of them, model units (NaN: none); labelled: (B, K)
    bool which had their target; held: (B,) int32.
    """

    frozen: st.StreamState
    anchor: st.StreamState
    xs: np.ndarray
    fed: np.ndarray
    reference: np.ndarray
    learning: np.ndarray
    frozen_pred: np.ndarray
    labelled: np.ndarray
    held: np.ndarray


class Learnt(NamedTuple):
    """A learning single-series stream's state: its predictor's, and what it learns from."""

    predictor: st.PredictorState
    learn: StreamLearning


class LearningEngine(Learns, Engine):
    """A single-series model's batched steps that learn from delayed targets (see the module)."""

    def __init__(self, model: SavedModel, experiment: ExperimentConfig, cfg: lr.LearnConfig,
                 max_batch: int = MAX_BATCH) -> None:  # fmt: skip
        self.cfg, self.experiment = cfg, experiment
        # A forecast's target is the first input h values later: each value labels one before it.
        self.horizon = model.data.horizon if model.data.task == "forecast" else 0
        self._base = jax.device_put(model.params)
        self._kw = st.chunk_kwargs(model)
        super().__init__(model, max_batch)
        self._start(model.params, per_seed=False)

    def _template(self) -> Learnt:
        predictor = st.Predictor(self.model).snapshot()
        k, f, empty = self.cfg.window, self.model.model.n_features, predictor.stream
        nan = np.full((1, k), np.nan)
        learn = StreamLearning(empty, empty, np.zeros((1, k, f), np.float32), np.zeros((1, k), bool), nan, nan, nan,
                               np.zeros((1, k), bool), np.zeros((1,), np.int32))  # fmt: skip
        return Learnt(predictor, jax.tree.map(np.asarray, learn))

    def grads(self, params: ModelParams, window: Any) -> tuple[ModelParams, jax.Array]:
        return stream_learn.window_grads(params, window, **self._kw)

    def window_template(self) -> stream_learn.Window:
        learn = self._learnt(self.initial).learn
        return stream_learn.Window(learn.anchor, *(np.zeros((1, 1)),) * 4)

    def _learnt(self, leaves: Leaves) -> Learnt:
        return jax.tree.unflatten(self.codec.treedef, list(leaves))

    def parser(self, max_chunk: int) -> Any:
        """``Engine.parser``, taking ``targets`` of the latest ``--learn-window`` values."""
        d = self.model.data
        limits = Limits(self.model.model.n_features, d.transform, max_chunk, self.cfg.window, self.horizon > 0)
        return functools.partial(parse_predict, limits=limits)

    def predict_route(self, max_chunk: int) -> dict[str, Any]:
        route = super().predict_route(max_chunk)
        if self.horizon:
            return route
        return openapi.with_targets(route, self.cfg.window, self.lowest())

    def refuse(self, op: Predict, state: Leaves | None) -> str | None:
        """A target for a value not among the stream's latest K (this request's included),
        for one that already had its target, or given twice."""
        if len({seq for seq, _ in op.targets}) != len(op.targets):
            return "targets: a seq is given twice; each value takes one target"
        k, sent = self.cfg.window, op.seq + op.values.shape[0]
        labelled = None if state is None else self._learnt(state).learn.labelled[0]
        for seq, _ in op.targets:
            if not (oldest := max(sent - k, 0)) <= seq < sent:
                latest = f"[{oldest}, {sent - 1}] (the latest {k} with this request's, --learn-window)"
                return f"targets: seq {seq} is not one of the stream's latest values: give one in {latest}"
            at = seq - (op.seq - k)  # its place among the stream's latest k values before this request
            if labelled is not None and 0 <= at < k and labelled[at]:
                return f"targets: seq {seq} already had its target; each value takes one"
        return None

    def targets(self, ops: list[Predict], n: int) -> np.ndarray | None:
        """Sent (``op.targets``), or for a forecast, each value's first input as the target of
        the value h before it (while that one is among the latest K)."""
        if not self.horizon and not any(op.targets for op in ops):
            return None
        k, out = self.cfg.window, np.full((len(ops), self.cfg.window), np.nan)
        for i, op in enumerate(ops):
            first = op.seq + n - k  # the seq of the window's first place after this request
            labels = op.targets if not self.horizon else [(op.seq + j - self.horizon, float(y)) for j, y in
                                                          enumerate(op.values[:, 0])]  # fmt: skip
            for seq, y in labels:
                if seq >= max(first, 0):
                    out[i, seq - first] = y
        return out

    def _feed(self, state: Any, table: np.ndarray, b: int, sink: list | None, targets: np.ndarray | None = None
              ) -> tuple[Any, np.ndarray]:  # fmt: skip
        """B streams fed n rows each: the learning model's predictions (data units), the
        frozen model's state, the streams' windows; the first ``b`` rows' targets to ``sink``."""
        ps, learn = state.predictor, state.learn
        ready = st.prepare(self.model, ps.history, table)
        n, batch = table.shape[1], table.shape[0]
        xs, fed = st.padded_steps(ready)
        live, z = st.stream_chunk(self._params, ps.stream, xs, fed, **self._kw)
        frozen, fz = st.stream_chunk(self._base, learn.frozen, xs, fed, **self._kw)
        z, fz = np.asarray(z)[:n].T.astype(np.float64), np.asarray(fz)[:n].T.astype(np.float64)  # (B, n)
        k = self.cfg.window
        ring = StreamLearning(jax.tree.map(np.asarray, frozen), learn.anchor, _kept(learn.xs, ready.inputs, k),
                              _kept(learn.fed, ready.fed, k), _kept(learn.reference, ready.reference, k),
                              _kept(learn.learning, z, k), _kept(learn.frozen_pred, fz, k),
                              _kept(learn.labelled, np.zeros((batch, n), bool), k),
                              np.minimum(learn.held + n, k).astype(np.int32))  # fmt: skip
        window = self._window(learn, ready, n)
        if targets is not None:
            ring = self._labelled(ring, window, targets, b, n, sink)
        values = _held_then_new(learn.held, k, n, window.fed.shape[0])
        leaving = window.fed & _leaving(values, learn.held, k, n)  # a transformed first row is a value, not fed
        anchor, _ = st.stream_chunk(self._params, learn.anchor, window.xs, leaving, **self._kw)
        new = Learnt(st.PredictorState(live, ready.history), ring._replace(anchor=jax.tree.map(np.asarray, anchor)))
        return new, st.to_data(self.model, z, ready.reference)

    def _window(self, learn: StreamLearning, ready: st.Prepared, n: int) -> stream_learn.Window:
        """The held values then the new ones (K + bucket(n) steps), from the anchor; no label yet."""
        k, (batch, _, f) = self.cfg.window, ready.inputs.shape
        xs, fed = np.zeros((k + bucket(n), batch, f), np.float32), np.zeros((k + bucket(n), batch), bool)
        xs[:k], fed[:k] = learn.xs.swapaxes(0, 1), learn.fed.T
        xs[k : k + n], fed[k : k + n] = ready.inputs.swapaxes(0, 1), ready.fed.T
        return stream_learn.Window(learn.anchor, xs, fed, np.zeros(fed.shape, np.float32), np.zeros_like(fed))

    def _labelled(self, ring: StreamLearning, window: stream_learn.Window, targets: np.ndarray, b: int, n: int,
                  sink: list | None) -> StreamLearning:  # fmt: skip
        """The first ``b`` streams' targets (B, K) on the held values: scored (both models'
        predictions, made before), put in the window (held value p is its step n + p), marked."""
        k = self.cfg.window
        zt = stream_learn.target_in_model_units(self.model, targets, ring.reference)
        has = np.isfinite(targets) & (np.arange(targets.shape[0]) < b)[:, None]
        ok = has & np.isfinite(zt)
        target, label = window.target.copy(), window.label.copy()
        target[n : n + k] = np.where(ok, zt, 0.0).T
        label[n : n + k] = ok.T
        el, ef = np.abs(ring.learning - zt), np.abs(ring.frozen_pred - zt)
        scored = ok & np.isfinite(el) & np.isfinite(ef)
        if sink is not None and ok.any():
            sink.append(lr.Labelled(window._replace(target=target, label=label), el[scored], ef[scored]))
        return ring._replace(labelled=ring.labelled | has)

    def warm_up(self) -> None:
        """``Engine.warm_up``, then every size class's gradient for single values with a target and the update."""
        super().warm_up()
        steps, f = self.cfg.window + bucket(1), self.model.model.n_features
        for size in self.classes:
            anchor = self._learnt(self.initial).learn.anchor
            anchor = jax.tree.map(lambda a, size=size: np.repeat(a, size, axis=0), anchor)
            xs, fed = np.zeros((steps, size, f), np.float32), np.ones((steps, size), bool)
            st.stream_chunk(self._params, anchor, xs, fed, **self._kw)  # the anchor's move
            self._compile_update(stream_learn.Window(anchor, xs, fed, np.zeros(fed.shape, np.float32), fed))

    def snapshot(self, directory: Path) -> int:
        """Write the weights that answer now as a model directory; their version."""
        current, m = self.learner.current, self.model
        saved = {"mode": m.mode, "seed_index": m.seed_index, "scaling": m.scaling, "metrics": {}}
        save_model(directory, jax.tree.map(np.asarray, current.params), self.experiment, saved)
        return current.version


def replay(engine: Learns, store: Store) -> lr.Weights:
    """The weights the state file's log gives, replayed from its oldest checkpoint through
    the same compiled programs, version by version (the proof of exactly-once learning)."""
    version, blob = store.checkpoint()
    weights = lr.decode_weights(engine.weights_codec, version, blob)
    template = engine.window_template()
    for at, kind, record, _ in store.records(after=version):
        if kind == "rollback":
            weights = lr.decode_weights(engine.weights_codec, at, record)
            continue
        params, opt_state, _ = engine.update(weights.params, weights.opt_state, lr.decode_windows(record, template))
        weights = lr.Weights(at, params, opt_state)
    return weights
