"""Batched steps: many streams' states stacked into one compiled call, and back.

A stream's state is what a batch-1 ``Predictor`` carries (``PredictorState``), kept as the
flat tuple of its leaves (host NumPy arrays, axis 0 of size 1): stacking B of them is one
``np.concatenate`` per leaf. B streams fed n values each go through ``stream.feed`` on a
batch padded up to a size class (1, 2, 4, ..., 64, then multiples of 64 up to
``max_batch``; larger groups are cut in pieces of ``max_batch``), padded with copies of the
first stream, whose results are dropped. With the chunk axis bucketed to powers of two
inside ``stream.feed``, the programs are one per (size class, bucket): ``warm_up`` compiles
every class for single values, so that single values never compile under load.

A state is stored as safetensors bytes of its named arrays (``StateCodec``). Every stream of
a model has the same names, dtypes and shapes, so the header is the same for all of them:
encoding is that header and the arrays' bytes, the same bytes ``safetensors.numpy.save``
writes, without building it anew for each stream.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import safetensors
import safetensors.numpy

from lstm_stateful.core.cells import ModelParams
from lstm_stateful.models import stream
from lstm_stateful.models.model_io import SavedModel
from lstm_stateful.serve import openapi
from lstm_stateful.serve.body import Limits, parse_predict
from lstm_stateful.serve.ops import Predict

Leaves = tuple[np.ndarray, ...]
# The largest batch class by default: batch sizes are powers of two up to it, multiples of it beyond.
MAX_BATCH = 64


def size_classes(max_batch: int) -> tuple[int, ...]:
    """The padded batch sizes: 1, 2, 4, ..., 64, then 128, 192, ... up to ``max_batch``."""
    powers = tuple(1 << k for k in range(MAX_BATCH.bit_length()) if 1 << k <= max_batch)
    return powers + tuple(range(2 * MAX_BATCH, max_batch + 1, MAX_BATCH))


def size_class(b: int, classes: Sequence[int]) -> int:
    """The smallest class that holds ``b`` streams (b <= the largest class)."""
    return next(c for c in classes if c >= b)


def _leaf_name(path: tuple) -> str:
    """A leaf's tree path as a dotted name: ``stream.carry.0.h``, ``history.rows``."""
    return ".".join(str(getattr(k, "name", getattr(k, "idx", k))) for k in path)


class StateCodec:
    """A model's stream state <-> safetensors bytes of named arrays.

    template: a batch-1 state of the model (a pytree: its leaves' names, dtypes and shapes).
    """

    def __init__(self, template: object) -> None:
        paths, self.treedef = jax.tree_util.tree_flatten_with_path(template)
        self.names = tuple(_leaf_name(path) for path, _ in paths)
        arrays = {name: np.asarray(leaf) for name, (_, leaf) in zip(self.names, paths, strict=True)}
        blob = safetensors.numpy.save(arrays)
        size = int.from_bytes(blob[:8], "little")
        self._header = blob[: 8 + size]
        spec = json.loads(blob[8 : 8 + size])
        # The data section holds the arrays in the header's offset order, not the leaves' order.
        self._order = tuple(sorted(range(len(self.names)), key=lambda i: spec[self.names[i]]["data_offsets"][0]))
        self._spec = {name: (a.shape, a.dtype) for name, a in arrays.items()}

    def encode(self, leaves: Leaves) -> bytes:
        """A stream's leaves -> the bytes ``safetensors.numpy.save`` gives for them."""
        return b"".join([self._header, *(np.ascontiguousarray(leaves[i]).tobytes() for i in self._order)])

    def decode(self, blob: bytes) -> Leaves:
        """Bytes written by ``encode`` -> the leaves. ValueError if they do not fit the model."""
        try:
            arrays = safetensors.numpy.load(blob)
        except (safetensors.SafetensorError, ValueError, KeyError) as e:
            raise ValueError(f"not a safetensors state ({e})") from None
        if set(arrays) != set(self.names):
            raise ValueError(f"holds arrays {sorted(arrays)}, not {sorted(self.names)}")
        for name, (shape, dtype) in self._spec.items():
            if arrays[name].shape != shape or arrays[name].dtype != dtype:
                raise ValueError(f"array {name} is {arrays[name].shape} {arrays[name].dtype}, not {shape} {dtype}")
        return tuple(arrays[name] for name in self.names)


class Batched:
    """What every engine shares: stream states as leaves, batched in padded size classes.

    template: a batch-1 state of the model (any pytree of arrays, axis 0 of size 1);
    max_batch: the largest padded batch (>= 1; rounded down to a size class).
    """

    def __init__(self, template: object, max_batch: int) -> None:
        self.classes = size_classes(max(1, max_batch))
        self.max_batch = self.classes[-1]
        self.codec = StateCodec(template)
        self.initial: Leaves = tuple(np.asarray(leaf) for leaf in jax.tree.leaves(template))

    def _feed(self, state: Any, table: np.ndarray, b: int, sink: list | None, targets: np.ndarray | None = None
              ) -> tuple[Any, np.ndarray]:  # fmt: skip
        """The model's step on B stacked streams (the first ``b`` real, the rest padding):
        (their state after ``table``, predictions (B, n)). A learning engine adds what the
        round learns from to ``sink`` (when given), with the streams' ``targets``."""
        raise NotImplementedError

    def version(self) -> int:
        """The version of the weights that answer now (0: the model as saved; a learning
        engine counts its updates)."""
        return 0

    def begin(self, op: Predict) -> Leaves:
        """The state a new stream starts from, before ``op`` (its first request) is applied."""
        raise NotImplementedError

    def parser(self, max_chunk: int) -> Callable[[str, bytes], Predict]:
        """The predict body's parser for this model: (stream id, body) -> a checked ``Predict``."""
        raise NotImplementedError

    def warm_up(self) -> None:
        """Compile what requests will run, so that nothing compiles under load."""
        raise NotImplementedError

    def predict_route(self, max_chunk: int) -> dict[str, Any]:
        """The predict route's OpenAPI description: exactly the bodies ``parser`` takes."""
        raise NotImplementedError

    def forecast(self, states: Sequence[Leaves], horizon: int) -> list[dict | str]:
        """Each stream's next ``horizon`` values (``{"forecast": [...], ...}``), or why it
        cannot forecast (a string); models that do not forecast have no forecast route."""
        raise NotImplementedError

    def step(self, states: Sequence[Leaves], table: np.ndarray, sink: list | None = None,
             targets: np.ndarray | None = None) -> tuple[list[Leaves], np.ndarray]:  # fmt: skip
        """Feed B streams n raw values each (checked by the request's parser).

        states: B streams' leaves; table: (B, n, F). Returns their leaves after the values
        and the predictions (B, n), float64, in the data's units (NaN while a window fills).
        sink: where a learning engine puts what the round learns from; targets: (B, K) the
        streams' delayed labels (``learning_engine.Learns.targets``).
        """
        out: list[Leaves] = []
        preds = []
        pieces = self.pieces(states, table)
        marks = [None] * len(pieces) if targets is None else [t for _, t in self.pieces(states, targets)]
        for (piece, rows), mine in zip(pieces, marks, strict=True):
            b = len(piece)
            new, p = self._feed(self.stacked(piece, b), self.padded(rows, b), b, sink,
                                None if mine is None else self.padded(mine, b))  # fmt: skip
            host = [np.asarray(leaf) for leaf in jax.tree.leaves(new)]
            out.extend(tuple(leaf[i : i + 1] for leaf in host) for i in range(b))
            preds.append(p[:b])
        return out, np.concatenate(preds)

    def pieces(self, states: Sequence[Leaves], rows: np.ndarray) -> list[tuple[Sequence[Leaves], np.ndarray]]:
        """States and their rows in pieces of at most ``max_batch``."""
        size = self.max_batch
        return [(states[i : i + size], rows[i : i + size]) for i in range(0, len(states), size)]

    def stacked(self, states: Sequence[Leaves], b: int) -> Any:
        """B <= max_batch streams' leaves stacked and padded up to their size class (with
        copies of the first stream, whose results are dropped), as the model's state pytree."""
        pad = size_class(b, self.classes) - b
        stacked = [np.concatenate([s[j] for s in states] + [states[0][j]] * pad) for j in range(len(self.initial))]
        return jax.tree.unflatten(self.codec.treedef, stacked)

    def padded(self, rows: np.ndarray, b: int) -> np.ndarray:
        """rows (B, ...) padded with copies of the first up to B's size class."""
        pad = size_class(b, self.classes) - b
        return np.concatenate([rows, np.repeat(rows[:1], pad, axis=0)]) if pad else rows


class Engine(Batched):
    """A saved model's batched step for the service (see the module's docstring)."""

    def __init__(self, model: SavedModel, max_batch: int = MAX_BATCH) -> None:
        self.model = model
        self._params: ModelParams = jax.device_put(model.params)
        super().__init__(self._template(), max_batch)

    def _template(self) -> Any:
        """A new stream's state (batch 1): the predictor's."""
        return stream.Predictor(self.model).snapshot()

    def begin(self, op: Predict) -> Leaves:
        """A new stream's state: empty, whatever the stream."""
        return self.initial

    def parser(self, max_chunk: int) -> Callable[[str, bytes], Predict]:
        """The predict body's parser for this model (``body.parse_predict``)."""
        limits = Limits(self.model.model.n_features, self.model.data.transform, max_chunk)
        return functools.partial(parse_predict, limits=limits)

    def lowest(self) -> str:
        """What values the model takes (``openapi.number``): > 0 for log-differences."""
        return "positive" if self.model.data.transform == "log-diff" else "any"

    def predict_route(self, max_chunk: int) -> dict[str, Any]:
        f = self.model.model.n_features
        low = self.lowest()
        example = {"seq": 0, "values": [0.05] if f == 1 else [[0.05] * f]}
        return openapi.predict_route(openapi.predict_request(f, max_chunk, low), example, fleet=False)

    def warm_up(self) -> None:
        """Compile every size class for one value per stream."""
        table = np.ones((1, 1, self.model.model.n_features))
        for size in self.classes:
            self.step([self.initial] * size, np.repeat(table, size, axis=0))

    def _feed(self, state: Any, table: np.ndarray, b: int, sink: list | None, targets: np.ndarray | None = None
              ) -> tuple[Any, np.ndarray]:  # fmt: skip
        return stream.feed(self.model, self._params, state, table)
