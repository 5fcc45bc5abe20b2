"""A fleet model that learns from its own streams while it serves (``serve --learn``).

Each value a stream is fed is the label of the one-step forecast the model made before it.
Beside its state (``fleet_stream``), a learning stream keeps:

* ``frozen``: the state of the model as saved, fed the same values: the frozen model's
  forecasts are scored on the same labels as the learning model's (``learner.Scores``);
* ``anchor`` and ``window``: its state ``K`` values back and those values (model units,
  right-aligned; ``held`` of them are values), the truncated-BPTT window of its next labels.

A round's groups feed their streams with the weights that answer now (the latest
committed), gather their windows, and the round then takes one optimizer step
(``learner.advance``); the new weights answer once they are committed with the round's
states (``commit``). The streams keep their states when the weights change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from lstm_stateful.core.panel import PanelScaling
from lstm_stateful.models import fleet_learn
from lstm_stateful.models import fleet_stream as fs
from lstm_stateful.models.fleet_model import FleetModel, save_fleet_model
from lstm_stateful.models.stream import _bucket
from lstm_stateful.serve import learner as lr
from lstm_stateful.serve.engine import MAX_BATCH
from lstm_stateful.serve.fleet_engine import FleetEngine, Served
from lstm_stateful.serve.store import Store


class Learning(NamedTuple):
    """What a learning stream keeps beside its state (axis 0: B streams): frozen, anchor:
    ``Core``s; window: (B, K) float32 model units; held: (B,) int32 (see the module)."""

    frozen: fs.Core
    anchor: fs.Core
    window: np.ndarray
    held: np.ndarray


def _dropped(fed: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """The first ``drop`` (B,) fed steps of each column of ``fed`` (T, B)."""
    return fed & (np.cumsum(fed, axis=0) <= drop[None, :])


class LearningFleetEngine(FleetEngine):
    """A fleet model's batched steps that also learn (see the module's docstring)."""

    def __init__(self, model: FleetModel, cfg: lr.LearnConfig, max_batch: int = MAX_BATCH) -> None:
        self.cfg = cfg
        self.shape = fs.shape_of(model)
        self._base = jax.device_put(model.params)
        super().__init__(model, max_batch)
        self.learner = lr.start(jax.tree.map(np.asarray, model.params), cfg)
        self.weights_codec = lr.weights_codec(self.learner)

    def version(self) -> int:
        return self.learner.current.version

    def commit(self, learner: lr.Learner) -> None:
        """Make ``learner`` (committed to the state file) the one that answers."""
        if learner.current is not self.learner.current:
            self._params = jax.device_put(learner.current.params)
        self.learner = learner

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
        learn = Learning(frozen.core, fed.core, np.zeros((1, self.cfg.window), np.float32), np.zeros((1,), np.int32))
        return Served(fed, pending, np.array([-1], np.int64), learn), p

    def _feed(self, state: Any, table: np.ndarray, b: int, sink: list | None) -> tuple[Any, np.ndarray]:
        """B scaled streams fed n values each: the learning model's predictions (data units),
        the frozen model's state, the streams' windows; the first ``b`` rows' labels to ``sink``."""
        s, learn = state.stream, state.learn
        scaling = PanelScaling(self.model.scaling.kind, s.loc, s.scale)
        n, batch = table.shape[1], table.shape[0]
        z = scaling.to_model(table[..., 0]).astype(np.float32)  # (B, n)
        # Step 0 feeds nothing: its output is the forecast made before the first value.
        zs, fed = np.zeros((_bucket(n + 1), batch), np.float32), np.zeros((_bucket(n + 1), batch), bool)
        zs[1 : n + 1], fed[1 : n + 1] = z.T, True
        live, lp = fs.feed_core(self._params, s.core, zs, fed, shape=self.shape)
        frozen, fp = fs.feed_core(self._base, learn.frozen, zs, fed, shape=self.shape)
        lp, fp = np.asarray(lp, np.float64), np.asarray(fp, np.float64)  # (T, seeds, B)
        window, anchor, kept = self._window(learn, z)
        if sink is not None:
            sink.append(self._labelled(window, lp[:n].mean(axis=1), fp[:n].mean(axis=1), z.T, b))
        ordinal = np.where(s.ordinal == fs.NO_ORDINAL, fs.NO_ORDINAL, s.ordinal + n)
        stream = fs.FleetStreamState(live, s.loc, s.scale, ordinal)
        preds = scaling.to_data(np.transpose(lp[1 : n + 1], (2, 0, 1))).mean(axis=2)
        held = np.minimum(learn.held + n, self.cfg.window).astype(np.int32)
        return state._replace(stream=stream, learn=Learning(frozen, anchor, kept, held)), preds

    def _window(self, learn: Learning, z: np.ndarray) -> tuple[fleet_learn.Window, fs.Core, np.ndarray]:
        """The streams' truncated-BPTT window (held values, then the new ``z`` (B, n)), their
        anchor moved past the values that leave it, and the values kept (B, K)."""
        k, (batch, n) = self.cfg.window, z.shape
        zs, fed = np.zeros((k + _bucket(n), batch), np.float32), np.zeros((k + _bucket(n), batch), bool)
        zs[:k], zs[k : k + n] = learn.window.T, z.T
        fed[:k] = np.arange(k)[:, None] >= k - learn.held[None, :]
        fed[k : k + n] = True
        label = np.zeros_like(fed)
        label[k : k + n] = True
        drop = np.maximum(learn.held + n - k, 0)
        anchor, _ = fs.feed_core(self._params, learn.anchor, zs, _dropped(fed, drop), shape=self.shape)
        kept = np.concatenate([learn.window, z], axis=1)[:, -k:]
        return fleet_learn.Window(learn.anchor, zs, fed, label), jax.tree.map(np.asarray, anchor), kept

    def _labelled(self, window: fleet_learn.Window, learning: np.ndarray, frozen: np.ndarray, z: np.ndarray,
                  b: int) -> lr.Labelled:  # fmt: skip
        """The first ``b`` streams' labels and both models' errors on them (stream by stream).
        learning, frozen: (n, B) forecasts of the values z (n, B), model units."""
        window = window._replace(label=window.label & (np.arange(window.label.shape[1]) < b)[None, :])
        el, ef = np.abs(learning - z).T[:b], np.abs(frozen - z).T[:b]
        ok = np.isfinite(el) & np.isfinite(ef)
        return lr.Labelled(window, el[ok], ef[ok])

    def learn(self, groups: list[lr.Labelled], requests: list[tuple[str, int]]) -> lr.Step:
        """The round's step (scored, then trained; not yet current: see ``commit``)."""
        return lr.advance(self.learner, groups, requests, self.shape, self.cfg, self.weights_codec)

    def warm_up(self) -> None:
        """``FleetEngine.warm_up``, then every size class's gradient for single values and the update."""
        super().warm_up()
        for size in self.classes:
            sink: list[lr.Labelled] = []
            self.step([self.initial] * size, np.ones((size, 1, 1)), sink)
            cur = self.learner.current
            fleet_learn.update(cur.params, cur.opt_state, [g.window for g in sink], self.shape, self.cfg.lr,
                               self.cfg.clip)  # fmt: skip
            window = sink[0].window
            label = np.zeros_like(window.label)
            label[-1], label[-2] = True, True  # a forced label so that the update itself compiles too
            g, _ = fleet_learn.window_grads(cur.params, window._replace(label=label), shape=self.shape)
            fleet_learn.apply_update(cur.params, cur.opt_state, g, np.int32(1), lr=self.cfg.lr, clip=self.cfg.clip)

    def snapshot(self, directory: Path) -> int:
        """Write the weights that answer now as a model directory; their version."""
        current = self.learner.current
        save_fleet_model(directory, self.model._replace(params=jax.tree.map(np.asarray, current.params)))
        return current.version


def replay(engine: LearningFleetEngine, store: Store) -> lr.Weights:
    """The weights the state file's log gives, replayed from its oldest checkpoint through
    the same compiled programs, version by version (the proof of exactly-once learning)."""
    version, blob = store.checkpoint()
    weights = lr.decode_weights(engine.weights_codec, version, blob)
    cfg, core = engine.cfg, engine._unpacked(engine.initial).stream.core
    for at, kind, record, _ in store.records(after=version):
        if kind == "rollback":
            weights = lr.decode_weights(engine.weights_codec, at, record)
            continue
        windows = lr.decode_windows(record, core)
        params, opt_state, _ = fleet_learn.update(weights.params, weights.opt_state, windows, engine.shape, cfg.lr,
                                                  cfg.clip)  # fmt: skip
        weights = lr.Weights(at, params, opt_state)
    return weights
