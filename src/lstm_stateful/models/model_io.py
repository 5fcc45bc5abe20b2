"""Saved models: a directory with ``model.json`` (format, config, scaling, checksums) and
``weights.npz`` (plain float32 arrays; loaded with ``allow_pickle=False``, never pickle).

Loading checks the format and its version, the weights file's SHA-256 (a truncated or
edited file is refused), and every array's name, shape and dtype against the config.
Every problem is a ``ConfigError`` on ``model``: one line, never a traceback.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from lstm_stateful.core import cells
from lstm_stateful.core.config import MODES, DataConfig, ExperimentConfig, ModelConfig
from lstm_stateful.core.data import Scaling
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.io.atomic import write_atomic, write_with

FORMAT = "lstm-stateful/model"
FORMAT_VERSION = 1
CONFIG_FILE = "model.json"
WEIGHTS_FILE = "weights.npz"


class SavedModel(NamedTuple):
    """One trained seed of one model, as ``predict`` needs it.

    params: weights (host float32 arrays); mode: "stateful" (state carried from point to
    point) or "stateless" (each window from a zero state); data: how its inputs were cut
    (lahead, order, task); scaling: raw units <-> model units.
    """

    params: cells.ModelParams
    model: ModelConfig
    data: DataConfig
    mode: str
    scaling: Scaling
    seed_index: int


def _flat(params: cells.ModelParams) -> dict[str, np.ndarray]:
    """{"cell.kernel": array, ..., "dense.bias": array}."""
    return {
        f"{part}.{name}": np.asarray(a)
        for part, leaves in params._asdict().items()
        for name, a in leaves._asdict().items()
    }


def expected_arrays(cfg: ModelConfig) -> dict[str, tuple[tuple[int, ...], str]]:
    """Name -> (shape, dtype) of every array a model of ``cfg`` has."""
    # The initialiser draws on the host in microseconds: the simplest source of the shapes.
    template = _flat(cells.init_params(np.random.default_rng(0), cfg))
    return {name: (a.shape, str(a.dtype)) for name, a in template.items()}


def save_model(directory: Path, params: cells.ModelParams, cfg: ExperimentConfig, saved: dict) -> None:
    """Write one model. ``saved``: mode, seed_index, scaling (a ``Scaling``) and metrics."""
    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    # Typed Any: NumPy 2's stub matches a **dict[str, ndarray] against savez's own keyword
    # allow_pickle (a bool); passing allow_pickle instead would not do, as NumPy 1.26 lacks it.
    arrays: dict[str, Any] = _flat(params)
    np.savez(buffer, **arrays)
    blob = buffer.getvalue()

    def write_weights(tmp: Path) -> None:
        tmp.write_bytes(blob)

    write_with(directory / WEIGHTS_FILE, write_weights)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "mode": saved["mode"],
        "seed_index": saved["seed_index"],
        "scaling": saved["scaling"]._asdict(),
        "metrics": saved["metrics"],
        "experiment": cfg.to_dict(),
        "weights": {
            "file": WEIGHTS_FILE,
            "sha256": hashlib.sha256(blob).hexdigest(),
            "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in _flat(params).items()},
        },
    }
    write_atomic(directory / CONFIG_FILE, json.dumps(meta, indent=2) + "\n")


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
    if version != FORMAT_VERSION:
        raise _bad(path, f"has format version {version!r}; this lstm-stateful reads version {FORMAT_VERSION}")
    return meta


def _config(meta: dict, path: Path) -> ExperimentConfig:

    try:
        return ExperimentConfig.from_dict(meta["experiment"])
    except (KeyError, TypeError, ConfigError) as e:
        raise _bad(path, f"holds an invalid config ({e})") from None


def _read_weights(directory: Path, meta: dict, cfg: ModelConfig) -> cells.ModelParams:
    path = directory / WEIGHTS_FILE
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise _bad(path, f"cannot be read ({e.strerror or e})") from None
    if hashlib.sha256(blob).hexdigest() != meta.get("weights", {}).get("sha256"):
        raise _bad(path, f"does not match the checksum in {CONFIG_FILE}: the file is truncated or was modified")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise _bad(path, f"is not a valid weights file ({e})") from None
    expected = expected_arrays(cfg)
    if set(arrays) != set(expected):
        raise _bad(path, f"holds arrays {sorted(arrays)}; a {cfg.cell} model has {sorted(expected)}")
    for name, (shape, dtype) in expected.items():
        if arrays[name].shape != shape or str(arrays[name].dtype) != dtype:
            got = f"{arrays[name].shape} {arrays[name].dtype}"
            raise _bad(path, f"array {name} is {got}; the config says {shape} {dtype}")
    leaves = {
        part: {k.split(".")[1]: v for k, v in arrays.items() if k.startswith(part + ".")} for part in ("cell", "dense")
    }
    return cells.ModelParams(cells.PARAM_TYPES[cfg.cell](**leaves["cell"]), cells.DenseParams(**leaves["dense"]))


def load_model(directory: str | Path) -> SavedModel:
    """Read and check a saved model directory (see the module's docstring)."""
    directory = Path(directory)
    meta = _read_meta(directory)
    path = directory / CONFIG_FILE
    cfg = _config(meta, path)
    if meta.get("mode") not in MODES:
        raise _bad(path, f"has mode {meta.get('mode')!r}; expected one of {', '.join(MODES)}")
    try:
        scaling = Scaling(**{k: float(v) for k, v in meta["scaling"].items()})
        seed_index = int(meta["seed_index"])
    except (KeyError, TypeError, ValueError) as e:
        raise _bad(path, f"holds an invalid scaling or seed index ({e})") from None
    params = _read_weights(directory, meta, cfg.model)
    return SavedModel(params, cfg.model, cfg.data, meta["mode"], scaling, seed_index)
