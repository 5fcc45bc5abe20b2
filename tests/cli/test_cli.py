"""The command end to end: the example's defaults, outputs on disk, and bad input."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lstm_stateful.cli import main
from lstm_stateful.render.figure_process import FigureProcess, FigureProcessError
from tests.helpers import usage_error


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    assert main(["run", "--out", str(out)]) == 0
    return out


def test_defaults_reproduce_the_example(default_run: Path) -> None:
    results = json.loads((default_run / "results.json").read_text())
    stateful, stateless = results["models"]["stateful"], results["models"]["stateless"]
    assert stateful["median_r2"] >= 0.95
    assert stateful["verdict"] == "converged"
    assert stateless["median_test_mse"] >= 0.9 * results["floors"]["window_test"]
    assert stateless["median_test_mse"] >= 0.9 * results["floors"]["window_theory"]
    assert results["banner"] == "STATELESS LSTM WILL NOT CONVERGE" and results["banner_held"] is True
    assert len(stateful["per_seed"]) == 5 and len(stateful["per_seed"][0]["train_loss"]) == 10
    assert results["config"]["data"]["input_len"] == 1000 and results["config"]["seeds"] == 5
    assert results["versions"]["jax"] and results["timings"]["total_s"] > 0
    assert stateful["timings"]["train_s"] > 0 and stateful["timings"]["compile_s"] > 0


def test_predictions_csv_matches_results(default_run: Path) -> None:
    with (default_run / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    expected_columns = ["input", "expected", "stateful", "stateless"]
    assert list(rows[0]) == [*expected_columns, "baseline_mean", "baseline_persistence", "baseline_linear"]
    assert len(rows) == 200
    results = json.loads((default_run / "results.json").read_text())
    y = np.array([float(r["expected"]) for r in rows])
    for mode in ("stateful", "stateless"):
        pred = np.array([float(r[mode]) for r in rows])
        skip = 1 if mode == "stateful" else 0
        m = results["models"][mode]
        mse = np.mean((y[skip:] - pred[skip:]) ** 2)
        np.testing.assert_allclose(mse, m["per_seed"][m["median_seed"]]["test_mse"], rtol=1e-5)


def test_figures_are_pngs(default_run: Path) -> None:
    for name in ("input.png", "residuals.png", "losses.png"):
        assert (default_run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--input-len", "0"], "--input-len"),
        (["--tsteps", "-2"], "--tsteps"),
        (["--lahead", "2000"], "--lahead"),
        (["--tsteps", "1001"], "--tsteps"),
        (["--batch-size", "900"], "--batch-size"),
        (["--epochs", "0"], "--epochs"),
        (["--epochs", "ten"], "--epochs"),
        (["--units", "0"], "--units"),
        (["--seeds", "0"], "--seeds"),
        (["--seed", "-1"], "--seed"),
        (["--lr", "0"], "--lr"),
        (["--lr", "inf"], "--lr"),
        (["--data-seed", "-3"], "--data-seed"),
        (["--bogus"], "--bogus"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    usage_error(["run", *args], capsys, flag)


def test_unwritable_out_fails_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    usage_error(["run", "--out", str(blocker / "sub"), "--epochs", "1"], capsys, "--out")


def test_real_entry_point_exit_status(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lstm_stateful.cli", "run", "--batch-size", "0"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "lstm-stateful: error: --batch-size: 0 is not in the range x>=1."


SMALL = ["--seeds", "1", "--epochs", "2", "--input-len", "200", "--tsteps", "3", "--lahead", "3", "--batch-size", "4"]


def test_small_run_with_one_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "one"
    assert main(["run", "--out", str(out), *SMALL]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["banner"] == "STATELESS LSTM WILL ALSO CONVERGE"
    assert len(results["models"]["stateless"]["per_seed"]) == 1
    printed = capsys.readouterr().out
    assert "STATELESS LSTM WILL ALSO CONVERGE" in printed and "x_train (160, 3, 1)" in printed
    assert "stateful" in printed and "stateless" in printed and "banner" in printed


def test_figure_failure_keeps_the_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_finish = FigureProcess.finish

    def broken(self: FigureProcess) -> None:
        real_finish(self)
        raise FigureProcessError("RuntimeError: no fonts")

    monkeypatch.setattr(FigureProcess, "finish", broken)
    out = tmp_path / "fig"
    assert main(["run", "--out", str(out), "--no-cache", *SMALL]) == 1
    assert "no fonts" in capsys.readouterr().err
    assert json.loads((out / "results.json").read_text())["models"]["stateful"]["per_seed"]
    assert (out / "predictions.csv").exists()


def _poison_seed(monkeypatch: pytest.MonkeyPatch, seed_index: int) -> None:
    """Seed ``seed_index`` starts from a NaN weight: it diverges, whatever the learning rate."""
    from lstm_stateful.engine import experiment

    real = experiment.init_seeds

    def poisoned(seed: int, n_seeds: int, cfg: object, first: int = 0) -> object:
        params = real(seed, n_seeds, cfg, first)
        params.dense.kernel[seed_index, 0, 0] = np.nan
        return params

    monkeypatch.setattr(experiment, "init_seeds", poisoned)


def test_a_diverged_seed_is_counted_not_averaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean, poisoned = tmp_path / "clean", tmp_path / "poisoned"
    assert main(["run", "--out", str(clean), *SMALL, "--seeds", "3"]) == 0
    _poison_seed(monkeypatch, 1)
    assert main(["run", "--out", str(poisoned), *SMALL, "--seeds", "3"]) == 0  # exit 0: the others finished
    out = capsys.readouterr().out
    assert "warning: 1 of 3 stateful seeds diverged" in " ".join(out.split())
    ok, bad = (json.loads((d / "results.json").read_text())["models"] for d in (clean, poisoned))
    for mode in ("stateful", "stateless"):
        seeds = bad[mode]["per_seed"]
        assert [s["diverged"] for s in seeds] == [False, True, False] and bad[mode]["seeds_diverged"] == 1
        assert seeds[1]["test_mse"] is None and seeds[1]["converged"] is False
        # The other seeds are untouched lanes, and the median is theirs alone.
        assert [seeds[i]["test_mse"] for i in (0, 2)] == [ok[mode]["per_seed"][i]["test_mse"] for i in (0, 2)]
        finite = [seeds[i]["test_mse"] for i in (0, 2)]
        assert bad[mode]["median_test_mse"] == pytest.approx(float(np.median(finite)))


def test_every_seed_diverged_at_a_huge_learning_rate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--out", str(tmp_path), *SMALL, "--lr", "1e30"]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert all(results["models"][m]["verdict"] == "diverged" for m in ("stateful", "stateless"))
    assert results["models"]["stateful"]["median_r2"] is None and results["banner_held"] is None
    assert "cannot be checked" in " ".join(capsys.readouterr().out.split())


def _metrics(run_dir: Path) -> dict:
    models = json.loads((run_dir / "results.json").read_text())["models"]
    return {
        mode: [(s["test_mse"], s["r2"], s["train_loss"], s["val_loss"]) for s in m["per_seed"]]
        for mode, m in models.items()
    }


def test_same_command_twice_and_from_results_json_reproduce(tmp_path: Path) -> None:
    args = [*SMALL, "--seeds", "2", "--cell", "gru", "--layout", "contiguous"]
    first, second, rerun = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert main(["run", "--out", str(first), *args]) == 0
    assert main(["run", "--out", str(second), *args]) == 0
    assert main(["run", "--from", str(first / "results.json"), "--out", str(rerun), "--no-cache"]) == 0
    for other in (second, rerun):
        assert _metrics(other) == _metrics(first)
        assert (other / "predictions.csv").read_bytes() == (first / "predictions.csv").read_bytes()
    recorded = json.loads((rerun / "results.json").read_text())["config"]
    assert recorded == json.loads((first / "results.json").read_text())["config"]


def test_from_results_json_with_a_data_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "s.csv"
    data.write_text("x\n" + "".join(f"{v!r}\n" for v in np.sin(np.arange(300) / 5.0).tolist()))
    first = tmp_path / "a"
    assert main(["run", "--data", str(data), "--input", "x", "--epochs", "1", "--seeds", "1", "--out", str(first)]) == 0
    results = first / "results.json"
    assert main(["run", "--from", str(results), "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "predictions.csv").read_bytes() == (first / "predictions.csv").read_bytes()
    data.write_text(data.read_text() + "0.5\n")
    assert main(["run", "--from", str(results), "--out", str(tmp_path / "c")]) == 2
    assert "has changed since that run" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (None, ["--from", "absent.json"], "--from: no such file"),
        ("{not json", ["--from", "{path}"], "is not a readable results.json"),
        ('{"format": "other"}', ["--from", "{path}"], "is not an lstm-stateful results.json"),
        ('{"format": "lstm-stateful/run-results", "format_version": 9}', ["--from", "{path}"], "format version 9"),
        ('{"format": "lstm-stateful/run-results", "format_version": 1}', ["--from", "{path}"], "incomplete config"),
        ("{}", ["--from", "{path}", "--epochs", "3"], "--epochs: cannot be changed when rerunning --from"),
        ("recorded:tsteps=0", ["--from", "{path}"], "--from: {path!r} records an invalid config (tsteps: must be"),
        ("recorded:data_file={}", ["--from", "{path}"], "--from: {path!r} holds a malformed data_file record"),
        ('recorded:data_file="abc"', ["--from", "{path}"], "holds a malformed data_file record: 'abc'"),
    ],
)
def test_bad_from(
    tmp_path: Path, make: str | None, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "results.json"
    if make is not None and make.startswith("recorded:"):  # a real record, edited
        path.write_text(_edited_record(tmp_path, make.removeprefix("recorded:")))
    elif make is not None:
        path.write_text(make)
    usage_error(["run", *(a.replace("{path}", str(path)) for a in args)], capsys, message.format(path=str(path)))


def _edited_record(tmp_path: Path, edit: str) -> str:
    """A results.json of a real (tiny) run, with one field set: 'tsteps=0' or 'data_file=JSON'."""
    out = tmp_path / "first"
    assert main(["run", "--epochs", "1", "--seeds", "1", "--input-len", "60", "--out", str(out)]) == 0
    record = json.loads((out / "results.json").read_text())
    key, value = edit.split("=", 1)
    if key == "tsteps":
        record["config"]["data"]["tsteps"] = int(value)
    else:
        record[key] = json.loads(value)
    return json.dumps(record)


PNG_START, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"


def _figure_processes(out: Path) -> list[int]:
    """Pids of the live processes drawing figures into ``out`` (read from Linux's /proc)."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):  # gone meanwhile
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"lstm_stateful.render.figure_process" in argv and os.fsencode(out) in argv:
                pids.append(int(proc.name))
    return pids


@pytest.mark.skipif(not Path("/proc/self/cmdline").is_file(), reason="finds the figure process in /proc")
def test_ctrl_c_during_run_keeps_only_complete_files(tmp_path: Path) -> None:
    out, said = tmp_path / "out", tmp_path / "stdout.txt"
    # About a minute of training here (400 epochs of 16,000 rows, live progress): the
    # interrupt lands in it, and must stop it there, not when the program ends.
    args = [sys.executable, "-m", "lstm_stateful.cli", "run", "--out", str(out), "--no-cache"]
    args += ["--input-len", "20000", "--epochs", "400", "--seeds", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # stdout reaches the file as it is printed
    with said.open("w") as stdout:
        proc = subprocess.Popen(args, stdout=stdout, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        # input.png is drawn before training; "x_train" is printed once the split is made, just before.
        while not ((out / "input.png").exists() and "x_train" in said.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended or never started training"
            time.sleep(0.02)
        assert _figure_processes(out), "no figure process found"  # so that none found below means something
        time.sleep(1.5)  # past the compilation, into the compiled training
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    bars = [line for line in said.read_text().splitlines() if "x1 seeds" in line]
    assert bars and "400/400" not in bars[-1], bars  # stopped mid-training, not after it
    assert stderr.strip().splitlines()[-2:] == [
        f"Interrupted. {out} holds only complete files; run the same command again to redo the run.",
        "lstm-stateful: interrupted",
    ]
    # No results.json, no figure drawn after training, and no temporary (.input.png.*) left.
    assert sorted(p.name for p in out.iterdir()) == ["input.png"]
    png = (out / "input.png").read_bytes()
    assert png.startswith(PNG_START) and png.endswith(PNG_END)
    assert _figure_processes(out) == []  # stopped, not left drawing into out
