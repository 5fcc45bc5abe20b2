"""This version against an earlier one, side by side in one run, as ratios.

Each version runs from its own source tree (an earlier commit is checked out into a
temporary git worktree) with the same installed packages, in fresh processes, the two
versions alternating so that both see the same machine: the whole `lstm-stateful run` on
the example's defaults, cold (an empty compilation cache) and warm (the cache it wrote),
and the 8x8 sweep x 8 seeds, cold and warm. Medians over the rounds; ratio = before /
after (above 1: this version is faster).

    python benchmarks/bench_versions.py [--before 341eee8] [--rounds 9] [--sweep-rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench_run import ours
from bench_sweep import sweep

ROOT = Path(__file__).resolve().parent.parent


def run_walls(src: Path, warm_cache: str) -> tuple[float, float, float]:
    """One cold run (its own empty cache), one warm run (a cache kept across rounds), and
    the warm run's stateful median test MSE."""
    env = (f"PYTHONPATH={src}",)
    with tempfile.TemporaryDirectory() as cold_cache:
        cold = ours(5, 1, cold_cache, env)["wall_s"]
    warm = ours(5, 1, warm_cache, env)
    return cold, warm["wall_s"], warm["stateful_mse"]


def sweep_walls(src: Path) -> tuple[float, float]:
    env = (f"PYTHONPATH={src}",)
    with tempfile.TemporaryDirectory() as cache:
        return sweep("1:8", 8, cache, [], env)["wall_s"], sweep("1:8", 8, cache, [], env)["wall_s"]


def measure(trees: dict[str, Path], rounds: int, sweep_rounds: int) -> dict[str, dict[str, list[float]]]:
    """Alternate the versions, run by run; every figure per version and round."""
    out: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    caches = {name: tempfile.mkdtemp(prefix="bench-cache-") for name in trees}
    for name, src in trees.items():  # fill the warm caches
        run_walls(src, caches[name])
    for _ in range(rounds):
        for name, src in trees.items():
            keys = ("run, cold", "run, warm", "run: stateful median MSE")
            for key, value in zip(keys, run_walls(src, caches[name]), strict=True):
                out[name].setdefault(key, []).append(value)
    for _ in range(sweep_rounds):
        for name, src in trees.items():
            for key, value in zip(("8x8 sweep, cold", "8x8 sweep, warm"), sweep_walls(src), strict=True):
                out[name].setdefault(key, []).append(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="341eee8", help="the earlier commit")
    parser.add_argument("--rounds", type=int, default=9, help="cold and warm runs of each version")
    parser.add_argument("--sweep-rounds", type=int, default=2, help="cold and warm sweeps of each version")
    a = parser.parse_args()
    with tempfile.TemporaryDirectory() as tree:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", tree, a.before], check=True,
                       capture_output=True)  # fmt: skip
        try:
            got = measure({"before": Path(tree) / "src", "after": ROOT / "src"}, a.rounds, a.sweep_rounds)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", tree], check=False)
    print(f"{'median of rounds':28s} {'before ' + a.before:>16s} {'after':>10s} {'before/after':>13s}")
    for key in got["before"]:
        before, after = statistics.median(got["before"][key]), statistics.median(got["after"][key])
        ratio = f"{before / after:12.2f}x" if "MSE" not in key else ""
        print(f"{key:28s} {before:16.4g} {after:10.4g} {ratio:>13s}")


if __name__ == "__main__":
    main()
