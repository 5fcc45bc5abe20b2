"""Saved fleet models: one global model of a panel run, every seed, with each series' scaling.

A directory holds ``model.json`` (format, version, the fleet config, the mode, the series'
ids and the clock, each array's shape, dtype and SHA-256, and the weights file's SHA-256)
and ``weights.safetensors``: the weights with a leading seed axis (``cells.0.kernel`` is
(seeds, n_in, G * units)...) and the per-series scaling (``scaling.loc``, ``scaling.scale``,
float64, one per id). A forecast is the mean of the seeds' forecasts, as in the run.
Loading checks every checksum, name, shape and dtype; every problem is one ``ConfigError``
on ``model``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import safetensors
import safetensors.numpy

from lstm_stateful.core import cells
from lstm_stateful.core.config import MODES
from lstm_stateful.core.errors import ConfigError, foreign
from lstm_stateful.core.panel import Clock, PanelScaling, fit_scaling
from lstm_stateful.core.panel_config import SCALINGS, FleetConfig
from lstm_stateful.io.atomic import write_atomic, write_bytes_atomic
from lstm_stateful.models.model_io import array_sha256, flat_params, unflat_params

FORMAT = "lstm-stateful/fleet-model"
FORMAT_VERSION = 1
CONFIG_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"


class FleetModel(NamedTuple):
    """One mode of a fleet run. params: every seed (leading axis); scaling: one loc and scale
    per id of ``ids`` (the series it was trained on), as the run computed them."""

    config: FleetConfig
    mode: str
    params: cells.ModelParams
    ids: tuple[str, ...]
    scaling: PanelScaling
    clock: Clock


def n_seeds(model: FleetModel) -> int:
    """Seeds the model holds (the leading axis of its weights)."""
    return int(np.asarray(model.params.dense.bias).shape[0])


def new_series_values(model: FleetModel) -> int:
    """Values a series the model was not trained on sets its scaling from (its first ones),
    as training set each series' from its training part: max(season, horizon)."""
    return max(model.config.panel.period, model.config.panel.horizon)


def new_series_scaling(model: FleetModel, firsts: list[np.ndarray], ids: Sequence[str]) -> PanelScaling:
    """The scaling of series the model was not trained on, each from its first
    ``new_series_values`` values (``firsts``, data units; named by ``ids``), as training set
    each series' from its training part."""
    need = new_series_values(model)
    return fit_scaling(model.scaling.kind, [v[:need] for v in firsts], ids, need)


def is_fleet_model(directory: str | Path) -> bool:
    """Whether ``directory`` holds a fleet model's ``model.json`` (its format named; loading checks the rest)."""
    try:
        meta = json.loads((Path(directory) / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def save_fleet_model(directory: Path, model: FleetModel) -> None:
    """Write ``model`` into ``directory`` (created): the weights first, ``model.json`` last,
    each atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = flat_params(model.params) | {"scaling.loc": model.scaling.loc, "scaling.scale": model.scaling.scale}
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    blob = safetensors.numpy.save(arrays, metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
    write_bytes_atomic(directory / WEIGHTS_FILE, blob)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "mode": model.mode,
        "seeds": n_seeds(model),
        "config": model.config.to_dict(),
        "scaling": model.scaling.kind,
        "ids": list(model.ids),
        "clock": {
            "kind": model.clock.kind,
            "origin": model.clock.origin,
            "step": model.clock.step,
            "day": model.clock.day,
            "dates": model.clock.dates,
            "utc": model.clock.utc,
        },
        "weights": {
            "file": WEIGHTS_FILE,
            "sha256": hashlib.sha256(blob).hexdigest(),
            "arrays": {
                k: {"shape": list(v.shape), "dtype": str(v.dtype), "sha256": array_sha256(v)} for k, v in arrays.items()
            },
        },
    }
    write_atomic(directory / CONFIG_FILE, json.dumps(meta, indent=2) + "\n")


def _bad(path: Path, problem: str) -> ConfigError:
    return ConfigError("model", f"{str(path)!r} {problem}")


def _meta(directory: Path) -> dict:
    path = directory / CONFIG_FILE
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise _bad(directory, f"holds no {CONFIG_FILE}: not a saved model directory") from None
    except (OSError, ValueError) as e:
        raise _bad(path, f"cannot be read as JSON ({foreign(str(e))})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise _bad(path, f"is not a fleet model of format {FORMAT} version {FORMAT_VERSION}")
    return meta


def _arrays(directory: Path, meta: dict) -> dict[str, np.ndarray]:
    path = directory / WEIGHTS_FILE
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise _bad(path, f"cannot be read ({e.strerror or e})") from None
    if hashlib.sha256(blob).hexdigest() != meta["weights"]["sha256"]:
        raise _bad(path, f"does not match its checksum in {CONFIG_FILE} (truncated or changed)")
    try:
        arrays = {k: np.array(v) for k, v in safetensors.numpy.load(blob).items()}
    except (safetensors.SafetensorError, ValueError, KeyError) as e:
        raise _bad(path, f"is not a valid safetensors file ({foreign(str(e))})") from None
    listing = meta["weights"]["arrays"]
    if set(arrays) != set(listing):
        raise _bad(path, f"holds arrays {sorted(arrays)}; {CONFIG_FILE} lists {sorted(listing)}")
    for name, a in arrays.items():
        want = listing[name]
        if list(a.shape) != want["shape"] or str(a.dtype) != want["dtype"] or array_sha256(a) != want["sha256"]:
            raise _bad(path, f"array {name} does not match its shape, dtype or checksum in {CONFIG_FILE}")
    return arrays


def load_fleet_model(directory: str | Path) -> FleetModel:
    """The fleet model saved in ``directory`` (see the module docstring)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError("model", f"no such directory: {str(directory)!r}")
    meta = _meta(directory)
    try:
        cfg = FleetConfig.from_dict(meta["config"])
        clock = Clock(**meta["clock"])
        ids = tuple(str(i) for i in meta["ids"])
        mode, kind = str(meta["mode"]), str(meta["scaling"])
    except (KeyError, TypeError) as e:
        raise _bad(directory / CONFIG_FILE, f"is missing or has a malformed field ({foreign(str(e))})") from None
    except ConfigError as e:
        raise _bad(directory / CONFIG_FILE, f"holds a bad setting: {e.render(str)}") from None
    if mode not in MODES or kind not in SCALINGS:
        raise _bad(directory / CONFIG_FILE, f"has mode {mode!r} and scaling {kind!r}; modes: {', '.join(MODES)}")
    arrays = _arrays(directory, meta)
    scaling = PanelScaling(kind, arrays.pop("scaling.loc", np.zeros(0)), arrays.pop("scaling.scale", np.zeros(0)))
    if scaling.loc.shape != (len(ids),) or scaling.scale.shape != (len(ids),):
        raise _bad(directory / WEIGHTS_FILE, f"holds {scaling.loc.shape} scalings for {len(ids)} series")
    _check_shapes(directory / WEIGHTS_FILE, arrays, cfg, int(meta.get("seeds", 0)))
    return FleetModel(cfg, mode, unflat_params(arrays, cfg.model), ids, scaling, clock)


def _check_shapes(path: Path, arrays: dict[str, np.ndarray], cfg: FleetConfig, seeds: int) -> None:
    """Every array a model of ``cfg`` has, with a leading axis of ``seeds``, and no other."""
    template = flat_params(cells.init_params(np.random.default_rng(0), cfg.model))
    template["dense.kernel"] = np.zeros((cfg.model.units, cfg.panel.head), np.float32)
    template["dense.bias"] = np.zeros((cfg.panel.head,), np.float32)
    want = {k: (seeds, *v.shape) for k, v in template.items()}
    got = {k: v.shape for k, v in arrays.items()}
    if seeds < 1 or got != want:
        raise _bad(path, f"holds arrays of shapes {got}; the config makes {want}")
