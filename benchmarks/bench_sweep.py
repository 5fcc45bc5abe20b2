"""`lstm-stateful sweep` over the 8x8 grid: trainings per second, local and Dask, against Keras.

Every sweep runs in a fresh process with a fresh store, as a user would start it, and the
wall time is measured from outside (imports, compilation, figures included). "Cold":
an empty JAX compilation cache; "warm": the cache the cold run wrote. The Dask run
starts a LocalCluster of 2 worker processes (cold: its workers compile too). Keras 3 +
TensorFlow trains the example once (lahead 1, its cheapest cell) for the per-training
time it would need for the same grid. Target (issue 3, 2-core CPU): the 8x8 grid x 8
seeds x 2 models at the example's defaults (1,024 trainings of 10 epochs) in under 60 s.

    python benchmarks/bench_sweep.py [--grid 1:8] [--seeds 8] [--skip-keras] [--skip-dask]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

from bench_run import COMMAND, keras, timed


def sweep(grid: str, seeds: int, cache_dir: str, extra: list[str], env: tuple[str, ...] = ()) -> dict:
    """One fresh `lstm-stateful sweep` process; its wall time and trainings per second.
    ``env``: more NAME=VALUE settings for the process (another version's PYTHONPATH)."""
    with tempfile.TemporaryDirectory() as out:
        cmd = ["env", f"LSTM_STATEFUL_CACHE_DIR={cache_dir}", *env, *COMMAND, "sweep", "--tsteps", grid]
        cmd += ["--lahead", grid]
        wall, _ = timed([*cmd, "--seeds", str(seeds), "--out", out, *extra])
        with (Path(out) / "summary.csv").open() as f:
            rows = list(csv.DictReader(f))
    trainings = sum(int(r["n_seeds"]) for r in rows)
    held = sum(r["banner_held"] == "True" for r in rows)
    return {"wall_s": wall, "trainings": trainings, "per_s": trainings / wall, "held": held, "cells": len(rows) // 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="1:8", help="tsteps and lahead range")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--skip-keras", action="store_true")
    parser.add_argument("--skip-dask", action="store_true")
    a = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as cache_dir:
        results["ours, local, cold cache"] = sweep(a.grid, a.seeds, cache_dir, [])
        results["ours, local, warm cache"] = sweep(a.grid, a.seeds, cache_dir, [])
    if not a.skip_dask:
        with tempfile.TemporaryDirectory() as cache_dir:
            results["ours, Dask LocalCluster x2, cold"] = sweep(a.grid, a.seeds, cache_dir, ["--workers", "2"])
    per_training = float("nan")
    if not a.skip_keras:
        k = keras()
        per_training = (k["stateful_train_s"] + k["stateless_train_s"]) / 2
    print(f"{'':34s} {'trainings':>9s} {'wall s':>8s} {'trainings/s':>11s} {'vs Keras':>9s}")
    for label, r in results.items():
        keras_s = per_training * r["trainings"]
        print(f"{label:34s} {r['trainings']:9d} {r['wall_s']:8.1f} {r['per_s']:11.1f} {keras_s / r['wall_s']:8.0f}x")
    if not a.skip_keras:
        n = next(iter(results.values()))["trainings"]
        print(f"Keras 3 + TF: {per_training:.1f} s per training -> {per_training * n / 3600:.1f} h for {n} trainings")
    first = next(iter(results.values()))
    print(f"The example's rule held in {first['held']} of {first['cells']} cells (stateless model, median of seeds).")


if __name__ == "__main__":
    main()
