"""``commands.report`` from Python: the page written again from a run's files, without click."""

from __future__ import annotations

from pathlib import Path

import pytest

from lstm_stateful.commands.report import report
from lstm_stateful.commands.run import RunOptions, run
from lstm_stateful.core.config import experiment_config
from lstm_stateful.core.errors import ConfigError


def test_report_writes_the_page_the_run_wrote(tmp_path: Path) -> None:
    cfg = experiment_config({"seeds": 1, "epochs": 1, "input_len": 200, "batch_size": 4})
    out = run(cfg, RunOptions(out=tmp_path / "run", cache=False)).out_dir
    page = out / "report.html"
    first = page.read_bytes()
    page.unlink()
    assert report(out) == page
    assert page.read_bytes() == first and b"<img" in first


def test_report_on_a_missing_path_names_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        report(tmp_path / "absent")
    assert e.value.param == "path" and str(e.value).startswith("path: no such directory")
    assert not (tmp_path / "absent").exists()


def test_report_on_a_directory_without_a_run_names_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        report(tmp_path)
    assert e.value.param == "path" and "holds neither a run" in str(e.value)
    assert list(tmp_path.iterdir()) == []
