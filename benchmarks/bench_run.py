"""`lstm-stateful run` against the Keras 3 + TensorFlow example, side by side, as ratios.

Each side runs in a fresh process, as a user would start it (imports and compilation
included); the wall time is measured from outside. Ours runs first with an empty JAX
compilation cache ("cold": it compiles), then --repeat times with the cache it wrote
("warm": the usual case from the second run on); medians are reported. Targets (issue 2,
2-core CPU): stateful training >= 100x faster than Keras-TF; the whole run (5 seeds x 2
models, figures) >= 15x faster than Keras's single run.

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
# The console script a user runs, from the same environment as this interpreter.
SCRIPT = Path(sys.executable).parent / "lstm-stateful"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "lstm_stateful.cli"]


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"benchmark: {' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


def ours(seeds: int, repeat: int, cache_dir: str, env: tuple[str, ...] = ()) -> dict:
    """Median over ``repeat`` fresh `lstm-stateful run` processes sharing ``cache_dir``;
    ``env``: more NAME=VALUE settings for the process (another version's PYTHONPATH)."""
    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = ["env", f"LSTM_STATEFUL_CACHE_DIR={cache_dir}", *env, *COMMAND, "run", "--seeds", str(seeds)]
            cmd += ["--out", tmp]
            wall, _ = timed(cmd)
            res = json.loads((Path(tmp) / "results.json").read_text())
        m = res["models"]
        runs.append(
            {
                "wall_s": wall,
                "compile_s": m["stateful"]["timings"]["compile_s"],
                "stateful_train_s": m["stateful"]["timings"]["train_s"],
                "stateless_train_s": m["stateless"]["timings"]["train_s"],
                "figures_wait_s": res["timings"]["figures_wait_s"],
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
    with tempfile.TemporaryDirectory() as cache_dir:
        cold = ours(a.seeds, 1, cache_dir)
        warm = ours(a.seeds, a.repeat, cache_dir)
    them = keras() if not a.skip_keras else dict.fromkeys(warm, float("nan"))
    print(f"{'':28s} {'Keras 3 + TF':>13s} {'ours, cold':>11s} {'ratio':>7s} {'ours, warm':>11s} {'ratio':>7s}")
    rows = [
        ("stateful training s", "stateful_train_s"),
        ("stateless training s", "stateless_train_s"),
        ("whole run, wall s", "wall_s"),
        ("stateful test MSE (median)", "stateful_mse"),
        ("stateless test MSE (median)", "stateless_mse"),
    ]
    for label, key in rows:
        line = f"{label:28s} {them[key]:13.4g}"
        for us in (cold, warm):
            ratio = f"{them[key] / us[key]:6.1f}x" if key.endswith("_s") else ""
            line += f" {us[key]:11.4g} {ratio:>7s}"
        print(line)
    print(
        f"ours ({a.seeds} seeds per model): compile {cold['compile_s']:.2f} s cold, {warm['compile_s']:.2f} s warm "
        f"(shared by both models); waiting for figures {warm['figures_wait_s']:.2f} s"
    )
    if not a.skip_keras:
        per_seed = them["stateful_train_s"] / (warm["stateful_train_s"] / a.seeds)
        print(f"stateful training per seed: {per_seed:.0f}x faster; Keras's import alone: {them['import_s']:.1f} s")


if __name__ == "__main__":
    main()
