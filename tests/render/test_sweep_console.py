"""What the terminal says after a sweep: the rule's record, counting only the points it can be
checked on; any other grid's table of scores, and the best point."""

from __future__ import annotations

import dataclasses
import io
import math

from rich.console import Console

from lstm_stateful.core.config import DataConfig, ExperimentConfig
from lstm_stateful.render.sweep_console import print_sweep_summary
from lstm_stateful.sweep.grid import SweepSpec, parse_grid
from lstm_stateful.sweep.summary import SummaryRow

NAN = math.nan


def _row(tsteps: int, lahead: int, mode: str, verdict: str, held: bool | None) -> SummaryRow:
    r2 = NAN if verdict == "diverged" else 0.95 if verdict == "converged" else 0.3
    return SummaryRow(
        tsteps=tsteps, lahead=lahead, mode=mode, n_seeds=3, n_diverged=3 if verdict == "diverged" else 0,
        converged_fraction=float(verdict == "converged"), r2_mean=r2, r2_median=r2, r2_ci95_low=r2, r2_ci95_high=r2,
        mse_mean=NAN, mse_median=NAN, mse_ci95_low=NAN, mse_ci95_high=NAN, floor=0.0, window_floor=0.0,
        zero_floor=1.0, verdict=verdict, banner_held=held,
    )  # fmt: skip


def _said(rows: list[SummaryRow], spec: SweepSpec) -> str:
    out = io.StringIO()
    print_sweep_summary(Console(file=out, width=300, highlight=False), rows, spec)
    return " ".join(out.getvalue().split())


def test_points_where_every_stateless_seed_diverged_are_not_counted_as_held_or_failed() -> None:
    # Grid tsteps 1:3 x lahead 1: the rule says the stateless model converges at (1, 1) only.
    spec = SweepSpec.ranges((1, 2, 3), (1,))
    rows = [_row(t, 1, "stateful", "converged", None) for t in (1, 2, 3)]
    rows += [
        _row(1, 1, "stateless", "converged", True),
        _row(2, 1, "stateless", "diverged", None),
        _row(3, 1, "stateless", "converged", False),
    ]
    said = _said(rows, spec)
    assert "held in 1 of 2 points; 1 cannot be checked (every stateless seed diverged)" in said
    assert "not in (tsteps 3, lahead 1)." in said and "(tsteps 2, lahead 1)" not in said
    assert "Stateful converged (median over 3 seeds) in 3 of 3 points." in said


def test_rule_record_without_diverged_points_names_none_uncheckable() -> None:
    spec = SweepSpec.ranges((1, 2), (1,))
    rows = [_row(1, 1, "stateless", "converged", True), _row(2, 1, "stateless", "not converged", True)]
    said = _said(rows, spec)
    assert "held in 2 of 2 points." in said and "cannot be checked" not in said


def _grid_row(lr: float, mode: str, r2: float, skill: tuple[float, float, float], verdict: str) -> SummaryRow:
    row = _row(2, 1, mode, "not converged", None)
    return dataclasses.replace(
        row, settings=(("lr", lr),), r2_median=r2, skill_median=skill[0], skill_low=skill[1], skill_high=skill[2],
        verdict=verdict, best_baseline="persistence",
    )  # fmt: skip


def test_any_other_grid_shows_each_points_score_and_the_best_point() -> None:
    spec = SweepSpec(parse_grid(["lr=1e-3,1e-2"]))
    rows = [
        _grid_row(1e-3, "stateful", 0.5, (NAN, NAN, NAN), "not converged"),
        _grid_row(1e-3, "stateless", 0.25, (NAN, NAN, NAN), "not converged"),
        _grid_row(1e-2, "stateful", 0.95, (NAN, NAN, NAN), "converged"),
    ]
    said = _said(rows, spec)
    assert "median R^2 and verdict" in said and "held in" not in said
    assert "0.001 0.500 not converged 0.250 not converged" in said
    assert "0.01 0.950 converged - " in said  # no stateless row stored for it yet
    assert "stateful: best median R^2 0.950 at lr=0.01 (converged)." in said
    assert "stateless: best median R^2 0.250 at lr=0.001 (not converged)." in said


def test_on_a_data_file_the_score_is_the_skill_with_its_interval() -> None:
    base = ExperimentConfig(data=DataConfig(input_len=100, tsteps=1, file="x.csv", input_cols=("x",)))
    spec = SweepSpec(parse_grid(["lr=1e-3"]), base)
    rows = [
        _grid_row(1e-3, "stateful", 0.9, (0.1, -0.05, 0.2), "no better than persistence"),
        _grid_row(1e-3, "stateless", 0.9, (0.3, 0.2, 0.4), "beats baselines"),
    ]
    said = _said(rows, spec)
    assert "median skill (the seeds' range) and verdict" in said
    assert "+0.100 (-0.050..+0.200) no better than persistence +0.300 (+0.200..+0.400) beats baselines" in said
    assert "stateless: best median skill 0.300 at lr=0.001 (beats baselines)." in said
