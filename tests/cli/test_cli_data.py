"""Your own series, saved models and ``predict``, end to end through the command."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import matplotlib.cbook
import numpy as np
import pytest

from lstm_stateful.cli import main
from tests.helpers import usage_error

# A real series shipped on disk by a package we depend on: monthly closes of ten US stocks
# and indices, 1990-2022 (matplotlib's sample data, from Yahoo Finance). Its blank rows
# need --drop-missing.
STOCKS = str(matplotlib.cbook.get_sample_data("Stocks.csv", asfileobj=False))


def _csv(path: Path) -> dict[str, np.ndarray]:
    table = np.genfromtxt(path, delimiter=",", names=True, missing_values="", filling_values=np.nan)
    return {name: table[name] for name in table.dtype.names}


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("saved")
    assert main(["run", "--out", str(root / "out"), "--save", str(root / "model"), "--seeds", "3"]) == 0
    return root


@pytest.mark.parametrize("mode", ["stateful", "stateless"])
def test_predict_reproduces_runs_predictions(saved_run: Path, mode: str) -> None:
    out = saved_run / f"{mode}.csv"
    args = ["--model", str(saved_run / "model" / mode), "--data", str(saved_run / "out" / "predictions.csv")]
    assert main(["predict", *args, "--input", "input", "--out", str(out)]) == 0
    run, streamed = _csv(saved_run / "out" / "predictions.csv"), _csv(out)
    np.testing.assert_array_equal(streamed["row"], np.arange(run["input"].shape[0]))
    np.testing.assert_array_equal(streamed["input"], run["input"])
    np.testing.assert_allclose(streamed["prediction"], run[mode], rtol=1e-6, atol=1e-6)
    meta = json.loads((saved_run / "model" / mode / "model.json").read_text())
    results = json.loads((saved_run / "out" / "results.json").read_text())
    assert meta["seed_index"] == results["models"][mode]["median_seed"]
    assert meta["experiment"] == results["config"]


def test_predict_in_small_chunks_equals_one_pass(saved_run: Path) -> None:
    data = str(saved_run / "out" / "predictions.csv")
    model = str(saved_run / "model" / "stateful")
    for chunk, name in (("7", "small.csv"), ("65536", "big.csv")):
        assert (
            main(
                [
                    "predict",
                    "--model",
                    model,
                    "--data",
                    data,
                    "--input",
                    "input",
                    "--chunk",
                    chunk,
                    "--out",
                    str(saved_run / name),
                ]
            )
            == 0
        )
    np.testing.assert_allclose(
        _csv(saved_run / "small.csv")["prediction"], _csv(saved_run / "big.csv")["prediction"], rtol=1e-6, atol=1e-7
    )


def test_real_series_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--data", STOCKS, "--input", "IBM", "--drop-missing"]
    args = [*common, "--task", "forecast", "--horizon", "1", "--lahead", "3", "--standardize", "--cell", "gru"]
    assert (
        main(
            [
                "run",
                *args,
                "--seeds",
                "2",
                "--epochs",
                "3",
                "--out",
                str(tmp_path / "out"),
                "--save",
                str(tmp_path / "m"),
            ]
        )
        == 0
    )
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    data = results["config"]["data"]
    assert (data["file"], data["input_cols"], data["task"], data["standardize"]) == (STOCKS, ["IBM"], "forecast", True)
    assert data["input_len"] == 391 - 2 - 1  # 391 months, 2 fill the window, 1 has no next month
    assert results["banner"] is None and results["floors"]["window_test"] is None
    assert results["data_file"]["sha256"] == hashlib.sha256(Path(STOCKS).read_bytes()).hexdigest()
    assert 50 < results["scaling"]["input_mean"][0] < 200 and results["scaling"]["input_scale"][0] > 1
    preds = _csv(tmp_path / "out" / "predictions.csv")
    assert np.all(np.isfinite(preds["stateful"])) and 50 < np.median(preds["expected"]) < 250  # in dollars again
    assert "Data: " in capsys.readouterr().out
    assert (
        main(["predict", "--model", str(tmp_path / "m" / "stateful"), *common, "--out", str(tmp_path / "p.csv")]) == 0
    )
    streamed = _csv(tmp_path / "p.csv")
    assert streamed["row"].shape == (391,) and np.isnan(streamed["prediction"][:2]).all()
    assert np.isfinite(streamed["prediction"][2:]).all() and streamed["row"][-1] > 391  # blank rows keep their numbers


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "absent.csv", "--input", "x"], "--data: no such file"),
        (["--data", STOCKS], "--input: is required with --data"),
        (["--data", STOCKS, "--input", "IBM"], "--input: column 'IBM' is empty (a missing value; --drop-missing"),
        (["--data", STOCKS, "--input", "Nope", "--drop-missing"], "--input: no column 'Nope'"),
        (["--data", STOCKS, "--input", "Date", "--drop-missing"], "--input: column 'Date' is not a number"),
        # A column listed twice is refused before the file is read (AMZN's blanks would speak first).
        (["--data", STOCKS, "--input", "AMZN,IBM,AMZN"], "--input: lists the column 'AMZN' twice"),
        (["--data", STOCKS, "--input", "IBM,", "--drop-missing"], "--input: must be column names separated by commas"),
        (["--data", STOCKS, "--input", "IBM", "--layers", "0"], "--layers: 0 is not in the range x>=1"),
        (["--data", STOCKS, "--input", "IBM", "--season", "1"], "--season: 1 is not in the range x>=2"),
        (["--data", STOCKS, "--input", "IBM", "--drop-missing", "--lahead", "391"], "--data: "),
        (
            ["--data", STOCKS, "--input", "IBM", "--drop-missing", "--input-len", "50"],
            "--input-len: sets the generated",
        ),
        (["--input", "x"], "--input: needs a --data file"),
        (["--standardize"], "--standardize: needs a --data file"),
        (["--target", "y", "--task", "forecast"], "--target: names the column to output"),
        (["--horizon", "3"], "--horizon: is the forecast distance"),
        (["--task", "classify"], "--task: 'classify' is not one of 'moving-average', 'forecast'"),
        (["--task", "forecast", "--tsteps", "3"], "--tsteps: is the moving-average window"),
        (["--cell", "transformer"], "--cell: 'transformer' is not one of 'lstm', 'gru', 'simple'"),
        (["--layout", "random"], "--layout: 'random' is not one of 'interleaved', 'contiguous'"),
        (["--order", "sideways"], "--order: 'sideways' is not one of 'newest-first', 'oldest-first'"),
    ],
)
def test_bad_data_flags_are_one_line_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    usage_error(["run", *args], capsys, message)


def test_unwritable_save_fails_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    usage_error(["run", "--save", str(blocker / "m"), "--out", str(tmp_path / "out")], capsys, "--save: cannot write")
    assert not (tmp_path / "out" / "results.json").exists()


def test_bad_predict_input(saved_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data", str(saved_run / "out" / "predictions.csv"), "--input", "input", "--out", str(tmp_path / "p.csv")]
    cases = [
        (["--model", str(saved_run / "model"), *data], "holds stateful and stateless models: give --model"),
        (["--model", str(tmp_path / "none"), *data], "--model: no model directory"),
        (
            ["--model", str(saved_run / "model" / "stateful"), *data[:2], "--input", "nope", *data[4:]],
            "no column 'nope'",
        ),
        (["--model", str(saved_run / "model" / "stateful"), *data, "--chunk", "0"], "--chunk: 0 is not in the range"),
        (["--model", str(saved_run / "model" / "stateful")], "Missing option '--data'"),
        (["--model", str(saved_run / "model" / "stateful"), *data[:4], "--out", str(tmp_path)], "is a directory"),
    ]
    for args, message in cases:
        usage_error(["predict", *args], capsys, message)
    assert not (tmp_path / "p.csv").exists()  # nothing half-written


def test_bad_value_mid_stream_leaves_no_output(
    saved_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "s.csv"
    data.write_text("x\n" + "0.01\n" * 20 + "oops\n")
    out = tmp_path / "p.csv"
    args = ["--model", str(saved_run / "model" / "stateful"), "--data", str(data), "--input", "x", "--chunk", "4"]
    usage_error(["predict", *args, "--out", str(out)], capsys, "column 'x' is not a number: 'oops' at line 22")
    assert not out.exists() and list(tmp_path.iterdir()) == [data]  # no partial or temporary file
