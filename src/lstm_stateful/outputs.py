"""A run directory's machine-readable files: ``results.json`` and ``predictions.csv``."""

from __future__ import annotations

import csv
import io
import json
import math
import platform
from importlib import metadata
from pathlib import Path

import numpy as np

from lstm_stateful.atomic import write_atomic
from lstm_stateful.config import MODES
from lstm_stateful.evaluate import finite_median
from lstm_stateful.experiment import ModeResult, RunResult

PACKAGES = ("lstm-stateful", "jax", "jaxlib", "optax", "numpy", "matplotlib")


def versions() -> dict[str, str]:
    """Installed versions of the packages that decide the numbers, Python's, and the device."""
    import jax

    device = jax.devices()[0]
    found = {"python": platform.python_version(), "device": f"{device.platform}: {device.device_kind}"}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _finite(value: float) -> float | None:
    """JSON has no NaN or infinity: a diverged number is written as null."""
    return value if math.isfinite(value) else None


def _floats(array: np.ndarray) -> list:
    return [_finite(float(v)) for v in np.ravel(array)]


def mode_summary(m: ModeResult) -> dict:
    """One model's numbers for ``results.json``."""
    return {
        "verdict": m.verdict,
        "seeds_converged": int(m.scores.converged.sum()),
        "median_seed": m.median_seed,
        "median_r2": _finite(finite_median(m.scores.r2)),
        "median_test_mse": _finite(finite_median(m.scores.mse)),
        "per_seed": [
            {
                "seed_index": s,
                "test_mse": _finite(float(m.scores.mse[s])),
                "r2": _finite(float(m.scores.r2[s])),
                "converged": bool(m.scores.converged[s]),
                "train_loss": _floats(m.train_loss[s]),
                "val_loss": _floats(m.val_loss[s]),
            }
            for s in range(m.train_loss.shape[0])
        ],
        "timings": {"compile_s": m.compile_s, "train_s": m.train_s},
    }


def results_dict(result: RunResult, extra_timings: dict[str, float] | None = None) -> dict:
    """Everything ``results.json`` holds: config, versions, losses, metrics, floors, verdicts, timings."""
    return {
        "format": "lstm-stateful/run-results",
        "format_version": 1,
        "config": result.config.to_dict(),
        "versions": versions(),
        "banner": result.banner,
        "banner_held": result.banner_held,
        "floors": result.floors._asdict(),
        "models": {mode: mode_summary(result.models[mode]) for mode in MODES},
        "timings": dict(extra_timings or {}),
    }


def write_results(result: RunResult, path: Path, extra_timings: dict[str, float] | None = None) -> None:
    write_atomic(path, json.dumps(results_dict(result, extra_timings), indent=2) + "\n")


def write_predictions(result: RunResult, path: Path) -> None:
    """One row per test sample: the newest input, the target, each model's median-seed prediction."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["input", "expected", *MODES])
    columns = [result.split.x_test[:, 0, 0], result.split.y_test[:, 0]]
    columns += [result.models[m].predictions[result.models[m].median_seed] for m in MODES]
    for row in zip(*columns, strict=True):
        writer.writerow([repr(float(v)) for v in row])
    write_atomic(path, buf.getvalue())
