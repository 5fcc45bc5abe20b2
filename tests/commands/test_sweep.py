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
from lstm_stateful.sweep.grid import Point, SweepSpec
from lstm_stateful.sweep.summary import SummaryRow

BASE = {"seeds": 2, "epochs": 2, "input_len": 200, "batch_size": 4}


class Swept(NamedTuple):
    spec: SweepSpec
    options: SweepOptions
    output: SweepOutput


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Swept:
    spec = SweepSpec((1, 3), (1, 2), base_config(BASE))
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
    point = Point(3, 2)
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


@pytest.mark.parametrize("name", ["tsteps", "lahead"])
def test_base_config_refuses_the_grid_axes(name: str) -> None:
    with pytest.raises(ConfigError) as e:
        base_config({**BASE, name: 2})
    assert e.value.param == name


@pytest.mark.parametrize(
    ("kwargs", "param"), [({"jobs": 0}, "jobs"), ({"workers": 2, "scheduler": "tcp://x:1"}, "workers")]
)
def test_bad_options_name_the_option(kwargs: dict[str, object], param: str) -> None:
    with pytest.raises(ConfigError) as e:
        SweepOptions(**kwargs)  # type: ignore[arg-type]
    assert e.value.param == param


def test_spec_of_reads_the_ranges_and_settings() -> None:
    spec = spec_of("1:3", "4,2", {"seeds": 2, "epochs": 3})
    assert (spec.tsteps, spec.lahead, spec.base.seeds, spec.base.train.epochs) == ((1, 2, 3), (2, 4), 2, 3)
    with pytest.raises(ConfigError) as e:
        spec_of("0:2", "1", {})
    assert e.value.param == "tsteps" and str(e.value).startswith("tsteps: must be positive")
