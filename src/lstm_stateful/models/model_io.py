"""Saved models: a directory with ``model.json`` (format, config, scaling, checksums) and
``weights.safetensors`` (plain float32 arrays in the safetensors format: a JSON header and
raw bytes, so reading it runs no code).

The arrays are named by layer: ``cells.0.kernel``, ``cells.0.recurrent_kernel``,
``cells.0.bias``, then ``cells.1.*`` for a second stacked layer, ..., ``dense.kernel`` and
``dense.bias``; ``model.json`` lists each with its shape, dtype and SHA-256. The weights
file's header (``__metadata__``) names the format and its version too, as strings
(safetensors' metadata holds only strings). The scaling holds one mean and scale per input
column. Loading checks the format and its version, the weights file's SHA-256 (a truncated
or edited file is refused), that the file parses and its header names the same format and
version, and every array's name, shape, dtype and checksum against the config and the
listing. Every problem is a ``ConfigError`` on ``model``: one line, never a traceback.

This is format version 3. Older directories are still read, with the same checks:
version 2 kept the same arrays and listing in ``weights.npz`` (read with
``allow_pickle=False``, never pickle); version 1 (one layer, arrays ``cell.*`` in
``weights.npz``, scalar scaling, ``input_col`` in the config, no per-array checksums) is
read as layer 0's arrays and the one column's scaling.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import safetensors
import safetensors.numpy

from lstm_stateful.core import cells
from lstm_stateful.core.config import MODES, DataConfig, ExperimentConfig, ModelConfig
from lstm_stateful.core.data import Scaling
from lstm_stateful.core.errors import ConfigError, foreign
from lstm_stateful.io.atomic import write_atomic, write_bytes_atomic

FORMAT = "lstm-stateful/model"
FORMAT_VERSION = 3
# Versions this code reads: 1 wrote one layer's arrays as ``cell.*`` and scalar scalings;
# 1 and 2 wrote the weights as NumPy's npz.
READABLE_VERSIONS = (1, 2, 3)
CONFIG_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"
NPZ_WEIGHTS_FILE = "weights.npz"


def _weights_file(version: int) -> str:
    """The weights file's name in a directory of format ``version``."""
    return WEIGHTS_FILE if version >= 3 else NPZ_WEIGHTS_FILE


def _stamp(version: int) -> dict[str, str]:
    """What the weights file's header metadata holds: the format and its version, as strings."""
    return {"format": FORMAT, "format_version": str(version)}


class SavedModel(NamedTuple):
    """One trained seed of one model, as ``predict`` needs it.

    params: weights (host float32 arrays), one cell per stacked layer; mode: "stateful"
    (every layer's state carried from point to point) or "stateless" (each window from a zero
    state); data: how its inputs were cut (input columns, lahead, order, task, transform);
    scaling: raw units <-> model units, one mean and scale per input column.
    """

    params: cells.ModelParams
    model: ModelConfig
    data: DataConfig
    mode: str
    scaling: Scaling
    seed_index: int


def flat_params(params: cells.ModelParams) -> dict[str, np.ndarray]:
    """{"cells.0.kernel": array, ..., "cells.1.bias": array, ..., "dense.bias": array}."""
    layers = {f"cells.{k}.{name}": a for k, cell in enumerate(params.cells) for name, a in cell._asdict().items()}
    dense = {f"dense.{name}": a for name, a in params.dense._asdict().items()}
    return {name: np.asarray(a) for name, a in (layers | dense).items()}


def unflat_params(arrays: dict[str, np.ndarray], cfg: ModelConfig) -> cells.ModelParams:
    """The inverse of ``flat_params`` (names checked by the caller)."""

    def part(prefix: str) -> dict[str, np.ndarray]:
        return {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}

    stack = tuple(cells.PARAM_TYPES[cfg.cell](**part(f"cells.{k}.")) for k in range(cfg.layers))
    return cells.ModelParams(stack, cells.DenseParams(**part("dense.")))


def array_sha256(a: np.ndarray) -> str:
    """An array's checksum: SHA-256 of its bytes in C order."""
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def expected_arrays(cfg: ModelConfig) -> dict[str, tuple[tuple[int, ...], str]]:
    """Name -> (shape, dtype) of every array a model of ``cfg`` has."""
    # The initialiser draws on the host in microseconds: the simplest source of the shapes.
    template = flat_params(cells.init_params(np.random.default_rng(0), cfg))
    return {name: (a.shape, str(a.dtype)) for name, a in template.items()}


def save_model(directory: Path, params: cells.ModelParams, cfg: ExperimentConfig, saved: dict) -> None:
    """Write one model. ``saved``: mode, seed_index, scaling (a ``Scaling``) and metrics.

    The weights go first and ``model.json`` last, each atomically, so a failure leaves the
    previous ``model.json``; a version 2 ``weights.npz`` the new ``model.json`` no longer
    names is then removed, so that the directory holds one model.
    """
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.ascontiguousarray(v) for k, v in flat_params(params).items()}
    blob = safetensors.numpy.save(arrays, metadata=_stamp(FORMAT_VERSION))
    listing = {k: {"shape": list(v.shape), "dtype": str(v.dtype), "sha256": array_sha256(v)} for k, v in arrays.items()}
    write_bytes_atomic(directory / WEIGHTS_FILE, blob)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "mode": saved["mode"],
        "seed_index": saved["seed_index"],
        "scaling": {k: list(v) if isinstance(v, tuple) else v for k, v in saved["scaling"]._asdict().items()},
        "metrics": saved["metrics"],
        "experiment": cfg.to_dict(),
        "weights": {
            "file": WEIGHTS_FILE,
            "sha256": hashlib.sha256(blob).hexdigest(),
            "arrays": listing,
        },
    }
    write_atomic(directory / CONFIG_FILE, json.dumps(meta, indent=2) + "\n")
    (directory / NPZ_WEIGHTS_FILE).unlink(missing_ok=True)


def _bad(path: Path, problem: str) -> ConfigError:
    return ConfigError("model", f"{str(path)!r}: {problem}")


def _read_meta(directory: Path) -> dict:
    path = directory / CONFIG_FILE
    if not directory.is_dir():
        raise ConfigError("model", f"no model directory at {str(directory)!r}")
    subdirs = [m for m in MODES if (directory / m / CONFIG_FILE).is_file()]
    if not path.is_file() and subdirs:
        raise _bad(directory, f"holds {' and '.join(subdirs)} models: give `model` {directory / subdirs[0]}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _bad(directory, f"has no {CONFIG_FILE}: not a saved model (run --save DIR writes them)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(path, f"is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _bad(path, f"is not an lstm-stateful model file (format {FORMAT!r} expected)")
    version = meta.get("format_version")
    if version not in READABLE_VERSIONS:
        readable = ", ".join(str(v) for v in READABLE_VERSIONS[:-1]) + f" and {READABLE_VERSIONS[-1]}"
        raise _bad(path, f"has format version {version!r}; this lstm-stateful reads versions {readable}")
    return meta


def _config(meta: dict, path: Path) -> ExperimentConfig:
    try:
        return ExperimentConfig.from_dict(meta["experiment"])
    except (KeyError, TypeError, ConfigError) as e:
        raise _bad(path, f"holds an invalid config ({e})") from None


def _read_arrays(directory: Path, meta: dict) -> dict[str, np.ndarray]:
    """The arrays of the weights file, once its checksum matches; version 1's ``cell.*`` as ``cells.0.*``."""
    version = meta["format_version"]
    path = directory / _weights_file(version)
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise _bad(path, f"cannot be read ({e.strerror or e})") from None
    if hashlib.sha256(blob).hexdigest() != meta["weights"].get("sha256"):
        raise _bad(path, f"does not match the checksum in {CONFIG_FILE}: the file is truncated or was modified")
    arrays = _parse_safetensors(path, blob, version) if version >= 3 else _parse_npz(path, blob)
    if version == 1:
        arrays = {("cells.0." + k.removeprefix("cell.") if k.startswith("cell.") else k): v for k, v in arrays.items()}
    return arrays


def _parse_npz(path: Path, blob: bytes) -> dict[str, np.ndarray]:
    """Versions 1 and 2: NumPy's npz, plain arrays only (``allow_pickle=False``)."""
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise _bad(path, f"is not a valid weights file ({foreign(str(e))})") from None


def _parse_safetensors(path: Path, blob: bytes, version: int) -> dict[str, np.ndarray]:
    """Version 3: safetensors, whose header metadata must name this format and ``version``."""
    try:
        arrays = safetensors.numpy.load(blob)
    except (safetensors.SafetensorError, ValueError) as e:
        raise _bad(path, f"is not a valid safetensors file ({foreign(str(e))})") from None
    except KeyError as e:  # safetensors.numpy's dtype table lacks it (BF16, F8_*)
        raise _bad(path, f"holds an array of dtype {e}, which NumPy cannot read; models hold float32") from None
    # The parse succeeded, so the header is there: 8 bytes of length (little-endian), then JSON.
    header = json.loads(blob[8 : 8 + int.from_bytes(blob[:8], "little")])
    metadata = header.get("__metadata__") or {}
    stamp = {k: metadata.get(k) for k in _stamp(version)}
    if stamp != _stamp(version):
        raise _bad(path, f"has header metadata {stamp}, not {_stamp(version)} as {CONFIG_FILE} says")
    # Copies: writable, and not views of the file's bytes.
    return {k: np.array(v) for k, v in arrays.items()}


def _check_arrays(path: Path, arrays: dict[str, np.ndarray], listing: dict | None, cfg: ModelConfig) -> None:
    """Names, shapes and dtypes as the config makes them; checksums as ``model.json`` lists them
    (``listing``; version 1 listed none: its file's checksum covers them)."""
    expected = expected_arrays(cfg)
    if set(arrays) != set(expected):
        model = f"a {cfg.layers}-layer {cfg.cell} model"
        raise _bad(path, f"holds arrays {sorted(arrays)}; {model} has {sorted(expected)}")
    for name, (shape, dtype) in expected.items():
        if arrays[name].shape != shape or str(arrays[name].dtype) != dtype:
            got = f"{arrays[name].shape} {arrays[name].dtype}"
            raise _bad(path, f"array {name} is {got}; the config says {shape} {dtype}")
        if listing is not None and listing.get(name, {}).get("sha256") != array_sha256(arrays[name]):
            raise _bad(path, f"array {name} does not match its checksum in {CONFIG_FILE}")


def _read_weights(directory: Path, meta: dict, cfg: ModelConfig) -> cells.ModelParams:
    weights = meta.get("weights")
    listing = weights.get("arrays") if isinstance(weights, dict) else None
    if not isinstance(listing, dict) or not all(isinstance(v, dict) for v in listing.values()):
        raise _bad(directory / CONFIG_FILE, "does not list the weights' arrays")
    arrays = _read_arrays(directory, meta)
    path = directory / _weights_file(meta["format_version"])
    _check_arrays(path, arrays, listing if meta["format_version"] > 1 else None, cfg)
    return unflat_params(arrays, cfg)


def _scaling(meta: dict, n_features: int, path: Path) -> Scaling:
    """The saved scaling: one mean and scale per input column (version 1: one float each)."""

    def column_values(v: Any) -> tuple[float, ...]:  # parsed JSON: a number, or a list of them
        values = tuple(float(x) for x in (v if isinstance(v, list) else [v]))
        if len(values) != n_features:
            raise ValueError(f"{len(values)} values for {n_features} input column(s)")
        return values

    try:
        s = meta["scaling"]
        scaling = Scaling(
            column_values(s["input_mean"]),
            column_values(s["input_scale"]),
            float(s["target_mean"]),
            float(s["target_scale"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise _bad(path, f"holds an invalid scaling ({e})") from None
    if not all(np.isfinite([*scaling.input_mean, *scaling.input_scale, scaling.target_mean, scaling.target_scale])):
        raise _bad(path, f"holds a scaling that is not finite: {scaling}")
    return scaling


def load_model(directory: str | Path) -> SavedModel:
    """Read and check a saved model directory (see the module's docstring)."""
    directory = Path(directory)
    meta = _read_meta(directory)
    path = directory / CONFIG_FILE
    cfg = _config(meta, path)
    if meta.get("mode") not in MODES:
        raise _bad(path, f"has mode {meta.get('mode')!r}; expected one of {', '.join(MODES)}")
    try:
        seed_index = int(meta["seed_index"])
    except (KeyError, TypeError, ValueError) as e:
        raise _bad(path, f"holds an invalid seed index ({e})") from None
    scaling = _scaling(meta, cfg.model.n_features, path)
    params = _read_weights(directory, meta, cfg.model)
    return SavedModel(params, cfg.model, cfg.data, meta["mode"], scaling, seed_index)
