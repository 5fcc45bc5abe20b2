"""Stateful batch layouts side by side: batch 16 contiguous, batch 16 interleaved, batch 1.

Issue 4's targets, on input_len 20,000 (16,000 training rows) at the defaults otherwise
(tsteps 2, lahead 1, 10 epochs, 5 seeds): at batch size 16 the contiguous layout converges
(stateful median R^2 >= 0.9) where Keras's interleaved layout does not, and trains at
least 10x faster than batch size 1 on the same data.

Each configuration is ``experiment.run`` (both models, all seeds, as ``lstm-stateful run``
trains them), repeated; the training time excludes compilation and is the fastest repeat.

    python benchmarks/bench_layouts.py [--repeat 3] [--input-len 20000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

from lstm_stateful.core import compile_cache

compile_cache.set_xla_flags()  # as the CLI does, before JAX starts

import jax  # noqa: E402
import numpy as np  # noqa: E402

from lstm_stateful.core.config import DataConfig, ExperimentConfig  # noqa: E402
from lstm_stateful.engine import experiment  # noqa: E402

CONFIGS = (("contiguous", 16), ("interleaved", 16), ("interleaved", 1))


def measure(layout: str, batch_size: int, input_len: int, repeat: int) -> dict:
    cfg = ExperimentConfig(data=DataConfig(input_len=input_len, batch_size=batch_size, layout=layout))
    train_s, wall_s = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        result = experiment.run(cfg)
        wall_s.append(time.perf_counter() - start)
        train_s.append(result.models["stateful"].train_s)
    stateful = result.models["stateful"]
    return {
        "layout": layout,
        "batch_size": batch_size,
        "stateful_median_r2": float(np.median(stateful.scores.r2)),
        "stateful_converged": f"{int(stateful.scores.converged.sum())}/{cfg.seeds}",
        "stateful_verdict": stateful.verdict,
        "stateless_median_r2": float(np.median(result.models["stateless"].scores.r2)),
        "train_s": min(train_s),
        "wall_s": min(wall_s),
        "sequential_steps": cfg.train.epochs * (result.split.x_train.shape[0] // batch_size),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--input-len", type=int, default=20_000)
    parser.add_argument("--json", default=None, help="Also write the rows here.")
    a = parser.parse_args()
    device = jax.devices()[0]
    print(f"device: {device.platform} {device.device_kind}; input_len {a.input_len}, 10 epochs, 5 seeds")
    rows = [measure(layout, b, a.input_len, a.repeat) for layout, b in CONFIGS]
    base = rows[-1]["train_s"]
    header = ("layout", "batch", "steps", "R^2 stateful", "converged", "train s", "vs batch 1")
    print("{:12s} {:>5s} {:>7s} {:>12s} {:>9s} {:>8s} {:>10s}".format(*header))
    for r in rows:
        r["speedup_vs_batch_1"] = base / r["train_s"]
        print(
            f"{r['layout']:12s} {r['batch_size']:5d} {r['sequential_steps']:7d} {r['stateful_median_r2']:12.3f} "
            f"{r['stateful_converged']:>9s} {r['train_s']:8.3f} {r['speedup_vs_batch_1']:9.1f}x"
        )
    contiguous, interleaved = rows[0], rows[1]
    print(
        f"contiguous converges where interleaved does not: "
        f"{contiguous['stateful_median_r2'] >= 0.9 > interleaved['stateful_median_r2']}; "
        f"contiguous batch 16 vs batch 1: {contiguous['speedup_vs_batch_1']:.1f}x (target 10x)"
    )
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"device": f"{device.platform} {device.device_kind}", "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
