"""``lstm-stateful tune`` from the command line: a small real study, its files, a rerun
that resumes instead of retraining, and bad spaces refused in one line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lstm_stateful.cli import main
from tests.helpers import usage_error

SMALL = ["--seeds", "2", "--epochs", "2", "--input-len", "300", "--trials", "3", "--batch", "3"]
SPACE = ["--space", "lr=1e-3:1e-2:log", "--space", "cell=lstm,gru"]


@pytest.fixture(scope="module")
def small_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tune") / "out"
    assert main(["tune", *SPACE, *SMALL, "--out", str(out)]) == 0
    return out


def _trials(out: Path) -> list[dict[str, str]]:
    with (out / "trials.csv").open() as f:
        return list(csv.DictReader(f))


def test_tune_writes_the_study_its_trials_and_the_best(small_study: Path) -> None:
    trials = [t for t in _trials(small_study) if t["state"] == "complete"]
    assert len(trials) == 3
    best = json.loads((small_study / "best.json").read_text())
    values = [float(t["value"]) for t in trials]
    # The best trial is the one with the least validation MSE, and its settings are the run's.
    assert min(values) == pytest.approx(best["validation_mse"], rel=1e-12)
    assert (small_study / "tune.sqlite").stat().st_size > 0
    params = best["params"]
    assert set(params) == {"lr", "cell"} and 1e-3 <= params["lr"] <= 1e-2 and params["cell"] in ("lstm", "gru")


def test_tune_rerun_resumes_without_training_again(small_study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _trials(small_study)
    assert main(["tune", *SPACE, *SMALL, "--out", str(small_study)]) == 0
    assert _trials(small_study) == before  # the study already holds 3 finished trials


@pytest.mark.parametrize(
    ("space", "fragment"),
    [
        ("lr=1e-2:1e-4:log", "--space"),  # a reversed range
        ("lr=0:1e-2:log", "--space"),  # log of a non-positive bound
        ("bogus=1:2", "--space"),  # an unknown key
        ("units=8:x", "--space"),  # not a number
        ("cell=lstm,cnn", "--space"),  # not a cell
    ],
)
def test_bad_spaces_are_one_line_exit_2(
    space: str, fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    usage_error(["tune", "--space", space, "--out", str(tmp_path / "t"), *SMALL], capsys, fragment)
    assert not (tmp_path / "t" / "tune.sqlite").exists()  # refused before anything was written


def test_a_key_given_twice_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["tune", "--space", "lr=1e-3:1e-2", "--space", "lr=1e-4:1e-3", "--out", str(tmp_path / "t"), *SMALL]
    usage_error(argv, capsys, "--space", "lr")
