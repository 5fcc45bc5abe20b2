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

import json
from collections.abc import Sequence

import jax
import numpy as np
import safetensors
import safetensors.numpy

from lstm_stateful.core.cells import ModelParams
from lstm_stateful.models import stream
from lstm_stateful.models.model_io import SavedModel

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

    template: a batch-1 ``PredictorState`` of the model (its leaves' names, dtypes and shapes).
    """

    def __init__(self, template: stream.PredictorState) -> None:
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


class Engine:
    """A model's batched step for the service (see the module's docstring).

    model: the saved model; max_batch: the largest padded batch (>= 1; rounded down to a
    size class).
    """

    def __init__(self, model: SavedModel, max_batch: int = MAX_BATCH) -> None:
        self.model = model
        self.classes = size_classes(max(1, max_batch))
        self.max_batch = self.classes[-1]
        self._params: ModelParams = jax.device_put(model.params)
        template = stream.Predictor(model).snapshot()
        self.codec = StateCodec(template)
        self.initial: Leaves = tuple(np.asarray(leaf) for leaf in jax.tree.leaves(template))

    def warm_up(self) -> None:
        """Compile every size class for one value per stream."""
        table = np.ones((1, 1, self.model.model.n_features))
        for size in self.classes:
            self.step([self.initial] * size, np.repeat(table, size, axis=0))

    def step(self, states: Sequence[Leaves], table: np.ndarray) -> tuple[list[Leaves], np.ndarray]:
        """Feed B streams n raw values each (checked: ``stream.check_values``).

        states: B streams' leaves; table: (B, n, F). Returns their leaves after the values
        and the predictions (B, n), float64, in the data's units (NaN while a window fills).
        """
        out: list[Leaves] = []
        preds = []
        for start in range(0, len(states), self.max_batch):
            piece, rows = states[start : start + self.max_batch], table[start : start + self.max_batch]
            new, p = self._padded_step(piece, rows)
            out.extend(new)
            preds.append(p)
        return out, np.concatenate(preds)

    def _padded_step(self, states: Sequence[Leaves], table: np.ndarray) -> tuple[list[Leaves], np.ndarray]:
        b = len(states)
        pad = size_class(b, self.classes) - b
        stacked = [np.concatenate([s[j] for s in states] + [states[0][j]] * pad) for j in range(len(self.initial))]
        rows = np.concatenate([table, np.repeat(table[:1], pad, axis=0)]) if pad else table
        state = jax.tree.unflatten(self.codec.treedef, stacked)
        new, preds = stream.feed(self.model, self._params, state, rows)
        host = [np.asarray(leaf) for leaf in jax.tree.leaves(new)]
        return [tuple(leaf[i : i + 1] for leaf in host) for i in range(b)], preds[:b]
