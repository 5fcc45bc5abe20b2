"""`lstm-stateful run` against the Keras 3 + TensorFlow example, side by side, as ratios.

Each side runs in a fresh process, as a user would start it (imports and compilation
included); the wall time is measured from outside. Ours runs --repeat times and the
median is reported. Targets (issue 2, 2-core CPU): stateful training >= 100x faster than
Keras-TF; the whole run (5 seeds x 2 models, figures) >= 15x faster than Keras's single run.

    python benchmarks/bench_run.py [--repeat 3] [--seeds 5] [--skip-keras]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"benchmark: {' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


def ours(seeds: int, repeat: int) -> dict:
    """Median over ``repeat`` fresh `lstm-stateful run` processes."""
    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "lstm_stateful.cli", "run", "--seeds", str(seeds), "--out", tmp]
            wall, _ = timed(cmd)
            res = json.loads((Path(tmp) / "results.json").read_text())
        m = res["models"]
        runs.append(
            {
                "wall_s": wall,
                "compile_s": m["stateful"]["timings"]["compile_s"],
                "stateful_train_s": m["stateful"]["timings"]["train_s"],
                "stateless_train_s": m["stateless"]["timings"]["train_s"],
                "figures_s": res["timings"]["figures_s"],
                "stateful_mse": m["stateful"]["median_test_mse"],
                "stateless_mse": m["stateless"]["median_test_mse"],
            }
        )
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def keras() -> dict:
    wall, stdout = timed([sys.executable, str(HERE / "keras_example.py")])
    return {**json.loads(stdout.strip().splitlines()[-1]), "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--skip-keras", action="store_true", help="time ours only")
    a = parser.parse_args()
    us = ours(a.seeds, a.repeat)
    them = None if a.skip_keras else keras()
    print(f"{'':28s} {'Keras 3 + TF':>14s} {f'ours ({a.seeds} seeds)':>16s} {'ratio':>8s}")
    rows = [
        ("stateful training s", "stateful_train_s"),
        ("stateless training s", "stateless_train_s"),
        ("whole run, wall s", "wall_s"),
        ("stateful test MSE (median)", "stateful_mse"),
        ("stateless test MSE (median)", "stateless_mse"),
    ]
    for label, key in rows:
        theirs = them[key] if them else float("nan")
        ratio = f"{theirs / us[key]:7.1f}x" if "_s" in key and them else ""
        print(f"{label:28s} {theirs:14.4g} {us[key]:16.4g} {ratio:>8s}")
    print(f"ours: compile {us['compile_s']:.2f} s (shared by both models), figures {us['figures_s']:.2f} s")
    if them:
        per_seed = them["stateful_train_s"] / (us["stateful_train_s"] / a.seeds)
        print(f"stateful training per seed: {per_seed:.0f}x faster; Keras import alone {them['import_s']:.1f} s")


if __name__ == "__main__":
    main()
