"""Stacked layers side by side: ``--layers 1`` against ``--layers 2`` and ``--layers 3``.

Issue 11's target: training with ``--layers 2`` costs at most 2.5x ``--layers 1`` (the
second layer doubles the recurrent work, and nothing else should grow). Each
configuration is ``experiment.run`` at the defaults otherwise (both models, 5 seeds,
10 epochs), for every cell; the time is the training alone (compilation excluded), the
fastest of ``--repeat`` runs, alternating the configurations so drift hits them alike.

    python benchmarks/bench_stacks.py [--repeat 3] [--input-len 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from lstm_stateful.core import compile_cache

compile_cache.set_xla_flags()  # as the CLI does, before JAX starts

import jax  # noqa: E402

from lstm_stateful.core.config import DataConfig, ExperimentConfig, ModelConfig  # noqa: E402
from lstm_stateful.engine import experiment  # noqa: E402

LAYERS = (1, 2, 3)
CELLS = ("lstm", "gru", "simple")


def config(cell: str, layers: int, input_len: int) -> ExperimentConfig:
    return ExperimentConfig(data=DataConfig(input_len=input_len), model=ModelConfig(cell=cell, layers=layers))


def train_seconds(cfg: ExperimentConfig) -> float:
    result = experiment.run(cfg)
    return result.models["stateful"].train_s


def measure(cell: str, input_len: int, repeat: int) -> dict[int, float]:
    """The fastest training time of each layer count, runs alternating."""
    configs = {n: config(cell, n, input_len) for n in LAYERS}
    for cfg in configs.values():  # compile every program first
        train_seconds(cfg)
    best = {n: float("inf") for n in LAYERS}
    for _ in range(repeat):
        for n, cfg in configs.items():
            best[n] = min(best[n], train_seconds(cfg))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--input-len", type=int, default=1000)
    parser.add_argument("--json", default=None, help="Also write the rows here.")
    a = parser.parse_args()
    device = jax.devices()[0]
    defaults = dataclasses.asdict(ExperimentConfig())
    print(f"device: {device.platform} {device.device_kind}; input_len {a.input_len}, "
          f"{defaults['train']['epochs']} epochs, {defaults['seeds']} seeds x 2 modes")  # fmt: skip
    print(f"{'cell':6s} " + " ".join(f"{f'{n} layer(s) s':>14s}" for n in LAYERS) + f" {'2 vs 1':>7s} {'3 vs 1':>7s}")
    rows = []
    for cell in CELLS:
        best = measure(cell, a.input_len, a.repeat)
        ratios = {n: best[n] / best[1] for n in LAYERS}
        rows.append({"cell": cell, "train_s": best, "ratio_vs_1": ratios})
        times = " ".join(f"{best[n]:14.3f}" for n in LAYERS)
        print(f"{cell:6s} {times} {ratios[2]:6.2f}x {ratios[3]:6.2f}x")
    worst = max(r["ratio_vs_1"][2] for r in rows)
    print(f"--layers 2 vs --layers 1, worst cell: {worst:.2f}x (target at most 2.5x)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
