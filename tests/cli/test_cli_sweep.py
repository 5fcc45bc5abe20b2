"""``lstm-stateful sweep`` end to end: outputs, resumption after SIGKILL, report, bad input."""

from __future__ import annotations

import csv
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lstm_stateful.cli import main
from lstm_stateful.sweep.store import SCHEMA_VERSION
from tests.helpers import usage_error

SMALL = ["--seeds", "2", "--epochs", "2", "--input-len", "200"]


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "out"
    assert main(["sweep", "--tsteps", "1:3", "--lahead", "1,3", "--out", str(out), *SMALL]) == 0
    return out


# What banner_held must be at each point of small_sweep (tsteps 1:3, lahead 1,3) for each
# stateless verdict. The rule says the stateless model converges where lahead >= tsteps:
# at (1, 1), (1, 3), (2, 3) and (3, 3), and not at (2, 1) or (3, 1).
CONVERGES = {"converged": "True", "not converged": "False", "at window floor": "False"}
DOES_NOT = {"converged": "False", "not converged": "True", "at window floor": "True"}
HELD_IF_STATELESS = {
    ("1", "1"): CONVERGES, ("2", "1"): DOES_NOT, ("3", "1"): DOES_NOT,
    ("1", "3"): CONVERGES, ("2", "3"): CONVERGES, ("3", "3"): CONVERGES,
}  # fmt: skip


def _summary(out: Path) -> list[dict[str, str]]:
    with (out / "summary.csv").open() as f:
        return list(csv.DictReader(f))


def test_sweep_writes_store_summary_and_figure(small_sweep: Path) -> None:
    rows = _summary(small_sweep)
    assert len(rows) == 3 * 2 * 2  # tsteps x lahead x mode
    assert {(r["tsteps"], r["lahead"], r["mode"]) for r in rows} >= {("3", "1", "stateless"), ("1", "3", "stateful")}
    assert all(r["n_seeds"] == "2" for r in rows)
    for r in rows:  # the rule's record is for the stateless model, whose convergence it predicts
        converged_or_not = HELD_IF_STATELESS[(r["tsteps"], r["lahead"])]
        expected = "" if r["mode"] == "stateful" or r["verdict"] == "diverged" else converged_or_not[r["verdict"]]
        assert r["banner_held"] == expected, r
    window = next(r for r in rows if (r["tsteps"], r["lahead"], r["mode"]) == ("3", "1", "stateless"))
    assert 0 < float(window["floor"]) == float(window["window_floor"])
    assert (small_sweep / "phase_diagram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with sqlite3.connect(small_sweep / "sweep.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 6 * 2 * 2


def test_summary_statistics_match_the_stores_seeds(small_sweep: Path) -> None:
    """Recomputed from the per-seed rows. With two seeds, a resampled mean is the lower seed's
    value a quarter of the time, so the 2.5th percentile of 10,000 of them is that value
    itself (and the 97.5th the higher one): the 95% interval is exactly [min, max]."""
    seeds: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    with sqlite3.connect(small_sweep / "sweep.sqlite") as db:
        for tsteps, lahead, mode, r2, mse in db.execute("SELECT tsteps, lahead, mode, r2, mse FROM results"):
            if r2 is not None and mse is not None and math.isfinite(r2) and math.isfinite(mse):
                seeds.setdefault((str(tsteps), str(lahead), mode), []).append((r2, mse))
    for r in _summary(small_sweep):
        finite = seeds.get((r["tsteps"], r["lahead"], r["mode"]), [])
        assert int(r["n_diverged"]) == 2 - len(finite)
        for i, name in enumerate(("r2", "mse")):
            values = sorted(v[i] for v in finite)
            low, high = (str(values[0]), str(values[-1])) if len(values) == 2 else ("", "")
            assert (r[f"{name}_ci95_low"], r[f"{name}_ci95_high"]) == (low, high), (r, values)
            if values:
                assert math.isclose(float(r[f"{name}_mean"]), sum(values) / len(values), rel_tol=1e-12)


def test_rerun_trains_nothing_and_report_redraws(small_sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    before = (small_sweep / "summary.csv").read_text()
    assert main(["sweep", "--tsteps", "1:3", "--lahead", "1,3", "--out", str(small_sweep), *SMALL]) == 0
    assert "nothing left to train" in capsys.readouterr().out
    (small_sweep / "summary.csv").unlink()
    (small_sweep / "phase_diagram.png").unlink()
    assert main(["sweep", "--report", "--out", str(small_sweep)]) == 0
    assert (small_sweep / "summary.csv").read_text() == before
    assert (small_sweep / "phase_diagram.png").exists()
    assert "held in" in capsys.readouterr().out


def _stored_groups(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store, timeout=1) as db:
            return db.execute("SELECT COUNT(DISTINCT lahead) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def test_sigkill_mid_sweep_loses_no_finished_group(tmp_path: Path) -> None:
    out, store = tmp_path / "killed", tmp_path / "killed" / "sweep.sqlite"
    args = [sys.executable, "-m", "lstm_stateful.cli", "sweep", "--tsteps", "1:2", "--lahead", "1:4", "--jobs", "1"]
    args += ["--out", str(out), "--no-cache", *SMALL]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _stored_groups(store) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = _stored_groups(store)
    assert 1 <= finished < 4, "the kill must land mid-sweep"
    with sqlite3.connect(store) as db:
        kept = db.execute("SELECT config_hash, seed_index, mode, written_at FROM results ORDER BY 1, 2, 3").fetchall()
    rerun = subprocess.run(args, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{finished * 2} of 8 points are already in the store" in rerun.stdout
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT config_hash, seed_index, mode, written_at FROM results ORDER BY 1, 2, 3").fetchall()
    assert len(rows) == 8 * 2 * 2
    assert set(kept) <= set(rows)  # the finished groups were not trained again
    assert len(_summary(out)) == 8 * 2


def test_other_schema_version_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "old.sqlite"
    with sqlite3.connect(store) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION + 7),))
    argv = ["sweep", "--out", str(tmp_path / "o"), "--store", str(store), *SMALL]
    usage_error(argv, capsys, "--store", f"schema version {SCHEMA_VERSION + 7}")


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--tsteps", "1:"], "--tsteps"),
        (["--tsteps", "x"], "--tsteps"),
        (["--lahead", "4:2"], "--lahead"),
        (["--lahead", ""], "--lahead"),
        (["--lahead", "0:3"], "--lahead"),
        (["--tsteps", "1:300"], "--tsteps"),
        (["--lahead", "1,250"], "--lahead"),
        (["--seeds", "0"], "--seeds"),
        (["--epochs", "0"], "--epochs"),
        (["--jobs", "0"], "--jobs"),
        (["--workers", "0"], "--workers"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "--workers"),
        (["--report", "--tsteps", "1:2"], "--tsteps: cannot be set when redrawing"),
        (["--report", "--epochs", "3"], ": cannot be set when redrawing"),  # --input-len, typed first
        (["--store", "/proc/no/such/dir/s.sqlite"], "--store"),
        (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler"),
    ],
)
def test_bad_sweep_input_is_one_line_exit_2(
    args: list[str], flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    usage_error(["sweep", "--out", str(tmp_path / "o"), "--input-len", "200", *args], capsys, flag)


def test_report_without_store_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "--report", "--out", str(tmp_path / "none")]) == 2
    assert "no sweep store" in capsys.readouterr().err


def test_unwritable_out_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["sweep", "--out", str(blocker / "sub"), *SMALL]) == 2
    assert "--out" in capsys.readouterr().err


def test_ctrl_c_mid_sweep_keeps_finished_groups_and_says_how_to_resume(tmp_path: Path) -> None:
    out, store = tmp_path / "interrupted", tmp_path / "interrupted" / "sweep.sqlite"
    args = [sys.executable, "-m", "lstm_stateful.cli", "sweep", "--tsteps", "1:2", "--lahead", "1:4", "--jobs", "1"]
    args += ["--out", str(out), "--no-cache", *SMALL]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while _stored_groups(store) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    said = "".join(stdout.split())  # rich wraps long lines, paths too
    expected = f"Interrupted. Finished groups are kept in {store}; run the same command again to resume."
    assert "".join(expected.split()) in said
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1] == "lstm-stateful: interrupted"
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert _stored_groups(store) >= 1


def test_two_sweeps_on_one_store_at_once(tmp_path: Path) -> None:
    store = tmp_path / "shared.sqlite"
    base = [sys.executable, "-m", "lstm_stateful.cli", "sweep", "--tsteps", "1:2", "--lahead", "1:2", "--jobs", "1"]
    base += ["--store", str(store), "--no-cache", *SMALL]
    procs = [
        subprocess.Popen([*base, "--out", str(tmp_path / name)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for name in ("a", "b")
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr.decode()
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT config_hash, seed_index, mode FROM results").fetchall()
        assert db.execute("SELECT COUNT(*) FROM sweeps").fetchone()[0] == 2
    assert len(rows) == len(set(rows)) == 4 * 2 * 2  # every cell, seed and model once
    assert _summary(tmp_path / "a") == _summary(tmp_path / "b")
