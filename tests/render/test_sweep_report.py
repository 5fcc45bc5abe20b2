"""A sweep's files: summary.csv's columns, and the figure each kind of grid gets."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from lstm_stateful.core.config import DataConfig, ExperimentConfig
from lstm_stateful.render.sweep_report import figure_file, scores_figure, summary_csv, write_sweep_files
from lstm_stateful.sweep.grid import SweepSpec, parse_grid, point_key
from lstm_stateful.sweep.store import Record
from lstm_stateful.sweep.summary import summarize

SPEC = SweepSpec(parse_grid(["units=4,8", "cell=lstm,gru"]), ExperimentConfig(data=DataConfig(input_len=100)))


def _records(spec: SweepSpec, r2: dict[tuple, list[float]]) -> list[Record]:
    """Records of every point of ``spec``, R^2 per seed from ``r2[point values]`` (MSE = 1 - R^2)."""
    out = []
    for point in spec.points:
        for mode in ("stateful", "stateless"):
            for s, value in enumerate(r2[point.values]):
                out.append(
                    Record(
                        config_hash=point_key(spec.config(point)), seed_index=s, mode=mode, tsteps=2, lahead=1,
                        config="{}", mse=1 - value, r2=value, converged=value >= 0.9, floor=0.0, window_floor=0.1,
                        zero_floor=1.0, train_loss=(1.0,), val_loss=(1.0,), group_s=1.0, baselines=(("mean", 1.0),),
                    )
                )  # fmt: skip
    return out


R2 = {p.values: [0.1 * (i + 1), 0.1 * (i + 1) + 0.02, math.nan] for i, p in enumerate(SPEC.points)}


def test_summary_csv_leads_with_the_grid_settings() -> None:
    rows = summarize(SPEC, _records(SPEC, R2))
    read = list(csv.DictReader(io.StringIO(summary_csv(rows))))
    assert list(read[0])[:5] == ["units", "cell", "tsteps", "lahead", "mode"]
    assert [(r["units"], r["cell"], r["mode"]) for r in read[:3]] == [
        ("4", "lstm", "stateful"), ("4", "lstm", "stateless"), ("8", "lstm", "stateful"),
    ]  # fmt: skip
    assert read[0]["n_diverged"] == "1" and read[0]["mse_ci95_low"] != ""  # two finite seeds: an interval
    # The mean baseline's MSE is 1, so a seed's skill 1 - (1 - R^2) / 1 is its R^2.
    assert read[0]["best_baseline"] == "mean" and math.isclose(float(read[0]["skill_median"]), 0.11)


def test_the_scores_figure_has_a_panel_per_setting_and_pools_the_other_settings() -> None:
    fig = scores_figure(SPEC, _records(SPEC, R2))
    assert len(fig.axes) == 2
    units, cell = fig.axes
    assert units.get_xlabel() == "units" and cell.get_xlabel() == "cell"
    stateful = units.containers[0]  # the errorbar of the first mode: its dots are the medians
    # units 4: the lstm and gru points (R^2 0.1, 0.12 and 0.3, 0.32; NaN left out) pooled
    np.testing.assert_allclose(stateful.lines[0].get_ydata(), [np.median([0.1, 0.12, 0.3, 0.32]),
                                                              np.median([0.2, 0.22, 0.4, 0.42])])  # fmt: skip


def test_a_phase_grid_draws_the_phase_diagram_any_other_the_scores(tmp_path: Path) -> None:
    assert figure_file(SweepSpec.ranges((1, 2), (1, 2))) == "phase_diagram.png"
    assert figure_file(SPEC) == "scores.png"
    (tmp_path / "phase_diagram.png").write_bytes(b"an earlier sweep's")
    write_sweep_files(SPEC, _records(SPEC, R2), tmp_path)
    assert (tmp_path / "scores.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "phase_diagram.png").exists()  # the directory describes this sweep
