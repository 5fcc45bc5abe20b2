"""Sweeps over any setting: learning rates vmapped in one program, and programs split by lanes.

Every sweep runs in a fresh process with a fresh store (``commands.sweep``, as the CLI
calls it), with the JAX compilation cache off, so "cold" includes compiling; "warm" is a
second sweep in the same process on a fresh store (its programs are compiled). Wall times
are measured around the sweep, and for the lr sweeps also around the whole process (imports
included: what a user waits for); compiles are the training programs traced
(``fit_problems``'s cache). Targets (issue 11, 2-core CPU, ratios side by side in one run):

- lr: a sweep over 4 learning rates x 8 seeds x 2 modes compiles once and costs at most
  1.5x one rate's sweep (the sweep a user starts: a process, compiling included; the
  training itself costs about 4x, every lane being compute-bound);
- lanes: per training, a 4x4 tsteps x lahead grid at 128 seeds costs no more than at 32
  (programs split at ``grid.MAX_TRAININGS_PER_PROGRAM`` trainings); "unsplit" is the
  grouping of the previous version (a program per lahead, up to 8 points, any lanes);
- caps: the per-training cost of one lahead's 4 points at 128 seeds for several caps,
  the measurement that chose ``MAX_TRAININGS_PER_PROGRAM``.

    python benchmarks/bench_grid.py [--only lr,lanes,caps] [--epochs 10] [--caps 32,64,128,256,512,1024]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The previous version's grouping: a program per lahead, up to 8 tsteps, any number of lanes.
UNSPLIT = {"cap": 10**9, "problems": 8}


def child(a: argparse.Namespace) -> None:
    """One process: the sweep cold, then again warm on a fresh store; prints JSON."""
    from lstm_stateful.commands import sweep as command
    from lstm_stateful.core.train import fit_problems
    from lstm_stateful.sweep import grid

    if a.cap:
        grid.MAX_TRAININGS_PER_PROGRAM = a.cap
    if a.problems:
        grid.MAX_PROBLEMS_PER_PROGRAM = a.problems
    settings = {"seeds": a.seeds, "epochs": a.epochs}
    spec = command.spec_of(a.tsteps, a.lahead, settings, a.grid or ())
    out: dict[str, object] = {"trainings": spec.trainings}
    for label in ("cold", "warm"):
        with tempfile.TemporaryDirectory() as tmp:
            options = command.SweepOptions(out=Path(tmp), jobs=a.jobs, cache=False)
            start = time.perf_counter()
            done = command.sweep(spec, options)
            out[f"{label}_s"] = time.perf_counter() - start
            out["groups"] = done.groups_trained
    out["compiles"] = fit_problems._cache_size()
    print(json.dumps(out))


def measure(args: list[str]) -> dict:
    """A child process sweeping with ``args``; its JSON, and its wall time (process_s)."""
    cmd = [sys.executable, __file__, "--child", *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"bench_grid: {' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "process_s": wall}


def lr(epochs: int) -> None:
    common = ["--seeds", "8", "--epochs", str(epochs), "--jobs", "1"]
    one = measure([*common, "--grid", "lr=1e-3"])
    four = measure([*common, "--grid", "lr=3e-4,1e-3,3e-3,1e-2"])
    print(f"lr grid, 8 seeds x 2 modes, {epochs} epochs (target: 4 rates compile once, cost <= 1.5x one rate):")
    for name, r in (("1 rate", one), ("4 rates", four)):
        print(f"  {name:8s} {r['trainings']:5d} trainings  {r['compiles']} compile(s)  {r['groups']} program(s)  "
              f"cold {r['cold_s']:6.2f} s  warm {r['warm_s']:6.2f} s  process {r['process_s']:6.2f} s")  # fmt: skip
    ratios = {k: four[f"{k}_s"] / one[f"{k}_s"] for k in ("process", "cold", "warm")}
    print("  ratio 4 rates / 1 rate: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))


def lanes(epochs: int) -> None:
    print(f"4x4 tsteps x lahead grid, {epochs} epochs, jobs 2: warm wall time per training (ms)")
    print(f"  {'seeds':>5s} {'trainings':>9s} {'split':>8s} {'unsplit':>8s}")
    for seeds in (32, 128):
        common = ["--tsteps", "1:4", "--lahead", "1:4", "--seeds", str(seeds), "--epochs", str(epochs), "--jobs", "2"]
        split = measure(common)
        unsplit = measure([*common, "--cap", str(UNSPLIT["cap"]), "--problems", str(UNSPLIT["problems"])])
        per = [1e3 * r["warm_s"] / r["trainings"] for r in (split, unsplit)]
        print(f"  {seeds:5d} {split['trainings']:9d} {per[0]:8.2f} {per[1]:8.2f}")


def caps(epochs: int, sizes: str) -> None:
    print(f"tsteps 1:4 x lahead 4, 128 seeds (1,024 trainings), {epochs} epochs, jobs 2: per training by program size")
    for cap in (int(c) for c in sizes.split(",")):
        common = ["--tsteps", "1:4", "--lahead", "4", "--seeds", "128", "--epochs", str(epochs), "--jobs", "2"]
        r = measure([*common, "--cap", str(cap)])
        warm, cold = (1e3 * r[f"{k}_s"] / r["trainings"] for k in ("warm", "cold"))
        programs = f"at most {cap:5d} trainings a program: {r['groups']:3d} programs"
        print(f"  {programs}, warm {warm:6.2f} ms, cold {cold:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="lr,lanes,caps")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--caps", default="32,64,128,256,512,1024", help="program sizes (trainings) that caps tries")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("--tsteps", "--lahead"):
        parser.add_argument(name, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--grid", action="append", help=argparse.SUPPRESS)
    for name in ("--seeds", "--jobs", "--cap", "--problems"):
        parser.add_argument(name, type=int, default=0, help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.child:
        return child(a)
    for part in a.only.split(","):
        if part == "caps":
            caps(a.epochs, a.caps)
        else:
            {"lr": lr, "lanes": lanes}[part](a.epochs)


if __name__ == "__main__":
    main()
