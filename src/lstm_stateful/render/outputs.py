"""A run directory's machine-readable files: ``results.json`` and ``predictions.csv``.

Every score, skill and prediction in them is in the data's units (``Series.data_units``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from lstm_stateful.core.config import MODES
from lstm_stateful.core.data import test_part
from lstm_stateful.core.evaluate import Skill, baseline_verdict, finite_median
from lstm_stateful.engine.experiment import ModeResult, RunResult
from lstm_stateful.io.atomic import write_atomic
from lstm_stateful.io.provenance import RESULTS_FORMAT, RESULTS_VERSION, data_file, package_versions


def versions() -> dict[str, str]:
    """Installed versions of the packages that decide the numbers, Python's, and the device."""
    import jax

    device = jax.devices()[0]
    return {**package_versions(), "device": f"{device.platform}: {device.device_kind}"}


def _finite(value: float) -> float | None:
    """JSON has no NaN or infinity: a diverged number is written as null."""
    return value if math.isfinite(value) else None


def _floats(array: np.ndarray) -> list:
    return [_finite(float(v)) for v in np.ravel(array)]


# How results.json describes a skill's interval (``evaluate.Skill``).
SKILL_INTERVAL = "from the lowest to the highest skill of the seeds that did not diverge"


def skill_summary(s: Skill) -> dict:
    """A model's skill over the best baseline, for ``results.json`` (per seed in ``per_seed``);
    its verdict against the baselines (the model's ``verdict`` on a data file)."""
    return {
        "verdict": baseline_verdict(s),
        "baseline": s.baseline,
        "baseline_mse": _finite(s.baseline_mse),
        "median": _finite(s.median),
        "interval": [_finite(s.low), _finite(s.high)],
        "interval_kind": SKILL_INTERVAL,
    }


def mode_summary(m: ModeResult) -> dict:
    """One model's numbers for ``results.json``."""
    return {
        "verdict": m.verdict,
        "seeds_converged": int(m.scores.converged.sum()),
        "seeds_diverged": int(m.scores.diverged.sum()),
        "median_seed": m.median_seed,
        "median_r2": _finite(finite_median(m.scores.r2)),
        "median_test_mse": _finite(finite_median(m.scores.mse)),
        "skill": skill_summary(m.skill),
        "per_seed": [
            {
                "seed_index": s,
                "test_mse": _finite(float(m.scores.mse[s])),
                "r2": _finite(float(m.scores.r2[s])),
                "skill": _finite(float(m.skill.per_seed[s])),
                "converged": bool(m.scores.converged[s]),
                "diverged": bool(m.scores.diverged[s]),
                "train_loss": _floats(m.train_loss[s]),
                "val_loss": _floats(m.val_loss[s]),
            }
            for s in range(m.train_loss.shape[0])
        ],
        "timings": {"compile_s": m.compile_s, "train_s": m.train_s},
    }


def results_dict(result: RunResult, extra_timings: dict[str, float] | None = None) -> dict:
    """Everything ``results.json`` holds: config, versions, losses, metrics, floors, baselines
    (each mode's: the MSE of each on the points that mode is scored on), skills, verdicts, timings."""
    return {
        "format": RESULTS_FORMAT,
        "format_version": RESULTS_VERSION,
        "config": result.config.to_dict(),
        "data_file": data_file(result.config.data.file),
        "versions": versions(),
        "banner": result.banner,
        "banner_held": result.banner_held,
        "floors": {name: _finite(value) for name, value in result.floors._asdict().items()},
        "scaling": result.series.scaling._asdict(),
        "baselines": {mode: {k: _finite(v) for k, v in result.baselines.mse[mode].items()} for mode in MODES},
        "models": {mode: mode_summary(result.models[mode]) for mode in MODES},
        "timings": dict(extra_timings or {}),
    }


def write_results(result: RunResult, path: Path, extra_timings: dict[str, float] | None = None) -> None:
    write_atomic(path, json.dumps(results_dict(result, extra_timings), indent=2) + "\n")


def prediction_columns(result: RunResult) -> dict[str, np.ndarray]:
    """``predictions.csv``'s columns, (n_test,) each, time order, in the data's units (undoing
    ``--standardize`` and ``--transform``): ``input``, the first input column's newest value;
    ``expected``, the target; each model's median seed; ``baseline_<name>``, each baseline."""
    test = test_part(result.series, result.config.data)
    columns = {"input": test.raw_input, "expected": result.baselines.truth}
    columns |= {mode: m.data_predictions[m.median_seed] for mode, m in result.models.items()}
    return columns | {f"baseline_{k}": v for k, v in result.baselines.predictions.items()}


def write_predictions(result: RunResult, path: Path) -> None:
    """One row per test sample: ``prediction_columns``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    columns = prediction_columns(result)
    writer.writerow(list(columns))
    for row in zip(*columns.values(), strict=True):
        writer.writerow([repr(float(v)) for v in row])
    write_atomic(path, buf.getvalue())


def write_models(result: RunResult, directory: Path) -> None:
    """Each model's median seed as a saved model: ``directory/stateful``, ``directory/stateless``."""
    import jax

    from lstm_stateful.models.model_io import save_model

    for mode in MODES:
        m = result.models[mode]
        seed = m.median_seed
        metrics = {"test_mse": _finite(float(m.scores.mse[seed])), "r2": _finite(float(m.scores.r2[seed]))}
        saved = {"mode": mode, "seed_index": seed, "scaling": result.series.scaling, "metrics": metrics}
        params = jax.tree.map(lambda a, s=seed: a[s], m.params)
        save_model(directory / mode, params, result.config, saved)
