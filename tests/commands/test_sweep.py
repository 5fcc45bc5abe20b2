"""``commands.sweep`` from Python: a 2x2 grid, its rows, resumption and redraw, without click."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from lstm_stateful.commands.report import report
from lstm_stateful.commands.run import RunOptions, run
from lstm_stateful.commands.sweep import SweepOptions, SweepOutput, base_config, redraw, spec_of, sweep
from lstm_stateful.core.config import MODES
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.sweep.grid import Axis, Point, SweepSpec
from lstm_stateful.sweep.summary import SummaryRow
from tests.sweep.test_store import earlier_store

BASE = {"seeds": 2, "epochs": 2, "input_len": 200, "batch_size": 4}


class Swept(NamedTuple):
    spec: SweepSpec
    options: SweepOptions
    output: SweepOutput


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Swept:
    spec = SweepSpec.ranges((1, 3), (1, 2), base_config(BASE))
    options = SweepOptions(out=tmp_path_factory.mktemp("sweep") / "out", jobs=1, cache=False)
    return Swept(spec, options, sweep(spec, options))


def _rows(rows: list[SummaryRow]) -> list[str]:
    """Rows compared by their repr: exact, and NaN (a CI of fewer than 2 seeds) equals NaN."""
    return [repr(r) for r in rows]


def test_one_row_per_point_and_mode(swept: Swept) -> None:
    out = swept.output
    assert out.groups_trained >= 1 and out.spec == swept.spec
    assert out.out_dir == swept.options.out and out.store_path == swept.options.out / "sweep.sqlite"
    keys = sorted((r.tsteps, r.lahead, r.mode) for r in out.rows)
    assert keys == sorted((t, la, m) for t in (1, 3) for la in (1, 2) for m in MODES)
    assert all(r.n_seeds == 2 for r in out.rows)
    with (out.out_dir / "summary.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 8
    assert {"summary.csv", "phase_diagram.png", "report.html", "sweep.sqlite"} <= {
        p.name for p in out.out_dir.iterdir()
    }


def test_a_points_rows_equal_a_run_of_its_config(swept: Swept, tmp_path: Path) -> None:
    point = Point((("tsteps", 3), ("lahead", 2)))
    result = run(swept.spec.config(point), RunOptions(out=tmp_path / "run", cache=False)).result
    for mode in MODES:
        row = next(r for r in swept.output.rows if (r.tsteps, r.lahead, r.mode) == (3, 2, mode))
        assert row.mse_median == np.median(result.models[mode].scores.mse)
        assert row.r2_median == np.median(result.models[mode].scores.r2)
        assert row.verdict == result.models[mode].verdict


def test_the_same_sweep_again_trains_nothing(swept: Swept) -> None:
    again = sweep(swept.spec, swept.options)
    assert again.groups_trained == 0
    assert _rows(again.rows) == _rows(swept.output.rows)


def test_redraw_gives_the_same_rows(swept: Swept, tmp_path: Path) -> None:
    options = SweepOptions(out=tmp_path / "redrawn", store=swept.output.store_path)
    drawn = redraw(options)
    assert drawn.groups_trained == 0 and drawn.spec == swept.spec
    assert _rows(drawn.rows) == _rows(swept.output.rows)
    assert (tmp_path / "redrawn" / "summary.csv").read_text() == (swept.options.out / "summary.csv").read_text()


def test_report_writes_the_sweeps_page_again(swept: Swept) -> None:
    page = swept.options.out / "report.html"
    first = page.read_bytes()
    page.unlink()
    assert report(swept.options.out) == page and page.read_bytes() == first


def test_redraw_refuses_grid_settings(swept: Swept, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        redraw(SweepOptions(out=tmp_path, store=swept.output.store_path), given=["tsteps"])
    assert e.value.param == "tsteps"


def test_redraw_without_a_store_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        redraw(SweepOptions(out=tmp_path / "none"))
    assert e.value.param == "store" and "no sweep store" in str(e.value)


def test_base_config_refuses_a_setting_that_is_an_axis() -> None:
    with pytest.raises(ConfigError) as e:
        base_config({**BASE, "units": 2}, [Axis("units", (4, 8))])
    assert e.value.param == "units"


@pytest.mark.parametrize(
    ("kwargs", "param"), [({"jobs": 0}, "jobs"), ({"workers": 2, "scheduler": "tcp://x:1"}, "workers")]
)
def test_bad_options_name_the_option(kwargs: dict[str, object], param: str) -> None:
    with pytest.raises(ConfigError) as e:
        SweepOptions(**kwargs)  # type: ignore[arg-type]
    assert e.value.param == param


def test_spec_of_reads_the_ranges_and_settings() -> None:
    spec = spec_of("1:3", "4,2", {"seeds": 2, "epochs": 3})
    assert (spec.values("tsteps"), spec.values("lahead"), spec.base.seeds, spec.base.train.epochs) == (
        (1, 2, 3), (2, 4), 2, 3,
    )  # fmt: skip
    with pytest.raises(ConfigError) as e:
        spec_of("0:2", "1", {})
    assert e.value.param == "tsteps" and str(e.value).startswith("tsteps: must be positive")


def test_spec_of_a_grid_and_ranges() -> None:
    default = spec_of(None, None, {})  # no grid: the phase diagram, 1:8 x 1:8
    assert default == SweepSpec.ranges(tuple(range(1, 9)), tuple(range(1, 9)), default.base)
    lr = spec_of(None, None, {"seeds": 2}, ["lr=1e-3,1e-2"])  # a grid alone: tsteps and lahead keep their defaults
    assert lr.keys == ("lr",) and (lr.base.data.tsteps, lr.base.data.lahead) == (2, 1)
    both = spec_of("1:2", None, {}, ["units=4,8", "cell=gru"])
    assert both.keys == ("tsteps", "units", "cell") and both.axes[0].flag == "tsteps"
    assert both.base.model.units == 4  # the base takes each axis's first value
    with pytest.raises(ConfigError) as e:
        spec_of("1:2", None, {}, ["tsteps=3"])
    assert e.value.param == "grid" and "tsteps is given twice" in e.value.problem
    with pytest.raises(ConfigError) as e:
        spec_of(None, None, {"input_len": 100}, ["lahead=1,2,200"])
    assert str(e.value) == "grid: lahead=200: must be <= the 100 rows of `input_len`, got 200"
    with pytest.raises(ConfigError) as e:
        spec_of(None, None, {}, ["lr=0,1"])  # the base's first value already fails: named as the grid's
    assert str(e.value) == "grid: lr=0.0: must be a finite number > 0, got 0.0"


@pytest.fixture(scope="module")
def lr_sweep(tmp_path_factory: pytest.TempPathFactory) -> SweepOutput:
    spec = spec_of(None, None, BASE, ["lr=1e-3,1e-2"])
    return sweep(spec, SweepOptions(out=tmp_path_factory.mktemp("lr") / "out", jobs=1, cache=False))


def test_a_grid_over_any_setting_writes_a_row_per_point_and_mode_and_the_scores_figure(lr_sweep: SweepOutput) -> None:
    with (lr_sweep.out_dir / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["lr"], r["mode"]) for r in rows] == [(lr, m) for lr in ("0.001", "0.01") for m in MODES]
    assert list(rows[0])[:4] == ["lr", "tsteps", "lahead", "mode"]
    assert {r["best_baseline"] for r in rows} == {"linear"}  # on the generated series, the window floor
    files = {p.name for p in lr_sweep.out_dir.iterdir()}
    assert {"summary.csv", "scores.png", "report.html", "sweep.json"} <= files and "phase_diagram.png" not in files
    assert (lr_sweep.out_dir / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_grid_points_rows_are_its_runs(lr_sweep: SweepOutput, tmp_path: Path) -> None:
    spec = lr_sweep.spec
    for point in spec.points:
        result = run(spec.config(point), RunOptions(out=tmp_path / point.label, cache=False)).result
        for mode in MODES:
            row = next(r for r in lr_sweep.rows if r.settings == point.values and r.mode == mode)
            # One program for both rates, vmapped: equal up to float32 rounding.
            assert np.isclose(row.mse_median, np.median(result.models[mode].scores.mse), rtol=1e-5)
            assert row.verdict == result.models[mode].verdict


def test_redraw_of_a_store_written_by_an_earlier_version(tmp_path: Path) -> None:
    store = tmp_path / "old.sqlite"
    spec = earlier_store(store)
    drawn = redraw(SweepOptions(out=tmp_path / "out", store=store))
    assert drawn.spec == spec and [(r.tsteps, r.lahead, r.mode) for r in drawn.rows] == [(3, 2, m) for m in MODES]
    assert drawn.rows[0].mse_median == np.median([1e-4, 2e-4]) and drawn.rows[0].best_baseline == ""
    assert (tmp_path / "out" / "phase_diagram.png").is_file()
    again = sweep(spec, SweepOptions(out=tmp_path / "out", store=store, cache=False))
    assert again.groups_trained == 0  # resumed: every seed of the point is there


def test_a_sweep_over_a_data_file_scores_skill_against_the_baselines(tmp_path: Path) -> None:
    path = tmp_path / "series.csv"
    values = np.sin(np.arange(160) / 5) + np.random.default_rng(0).normal(0, 0.1, 160)
    path.write_text("x\n" + "\n".join(f"{v:.6f}" for v in values) + "\n")
    settings = {"data": str(path), "input": "x", "task": "forecast", "seeds": 2, "epochs": 2}
    spec = spec_of(None, None, settings, ["lahead=1,3", "transform=none,diff"])
    output = sweep(spec, SweepOptions(out=tmp_path / "out", jobs=1, cache=False))
    assert len(output.rows) == 4 * 2 and {r.best_baseline for r in output.rows} <= {"persistence", "linear", "mean"}
    assert all(r.verdict == "beats baselines" or r.verdict.startswith("no better than") for r in output.rows)
    cfg = spec.config(spec.points[3])  # lahead 3, diff: 160 - 2 - 1 rows left for the windows, 1 for the target
    assert cfg.data.input_len == 156
    result = run(cfg, RunOptions(out=tmp_path / "run", cache=False)).result
    row = next(r for r in output.rows if r.settings == spec.points[3].values and r.mode == "stateless")
    assert row.mse_median == np.median(result.models["stateless"].scores.mse)  # in the data's units, as run's
    assert row.skill_median == result.models["stateless"].skill.median
