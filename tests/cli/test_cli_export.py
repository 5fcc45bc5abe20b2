"""``lstm-stateful export`` and ``import`` on the command line: what they write, and one line
with exit status 2 for every bad input, with nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lstm_stateful.cli import main
from lstm_stateful.core import cells
from lstm_stateful.core.config import DataConfig, ExperimentConfig, ModelConfig
from lstm_stateful.core.data import Scaling
from lstm_stateful.models import model_io
from tests.helpers import usage_error


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved stateless SimpleRNN with random weights (nothing here needs training)."""
    directory = tmp_path_factory.mktemp("cli-export") / "model"
    cfg = ExperimentConfig(data=DataConfig(lahead=2), model=ModelConfig(units=4, cell="simple"))
    params = cells.init_params(np.random.default_rng(3), cfg.model)
    saved = {"mode": "stateless", "seed_index": 0, "scaling": Scaling((0.1,), (2.0,), 0.05, 0.5), "metrics": {}}
    model_io.save_model(directory, params, cfg, saved)
    return directory


def test_export_onnx_prints_what_it_wrote(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.onnx"
    assert main(["export", "--model", str(model), "--format", "onnx", "--out", str(out), "--chunk", "4"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "stateless simple model" in printed and str(out) in printed and str(tmp_path / "m.chunk4.onnx") in printed
    assert out.stat().st_size > 0


@pytest.mark.keras
def test_export_keras_and_import_it_back(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.keras"
    assert main(["export", "--model", str(model), "--format", "keras", "--out", str(out), "--batch-size", "2"]) == 0
    assert out.is_file() and (tmp_path / "m.step.keras").is_file()
    back = tmp_path / "back"
    assert main(["import", str(out), "--out", str(back), "--order", "newest-first", "--input", "level"]) == 0
    assert "Imported a stateless 1-layer simple model (4 units, 1 input(s), windows of 2)" in capsys.readouterr().out
    loaded = model_io.load_model(back)
    assert loaded.data.input_cols == ("level",) and loaded.data.order == "newest-first"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--format", "tflite", "--out", "m.onnx"], ("--format", "tflite")),
        (["--format", "onnx", "--out", "m.keras"], ("--out", "must end in .onnx")),
        (["--format", "onnx", "--out", "m.onnx", "--batch-size", "2"], ("--batch-size", "keras only")),
        (["--format", "keras", "--out", "m.keras", "--chunk", "2"], ("--chunk", "onnx only")),
        (["--format", "onnx", "--out", "m.onnx", "--chunk", "0"], ("--chunk",)),
    ],
)
def test_bad_export_flags(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragments: tuple[str, ...]
) -> None:
    args = [str(tmp_path / a) if a.startswith("m.") else a for a in args]
    usage_error(["export", "--model", str(model), *args], capsys, *fragments)
    assert list(tmp_path.iterdir()) == []


def test_export_from_a_directory_that_is_not_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    usage_error(["export", "--model", str(tmp_path), "--format", "onnx", "--out", str(tmp_path / "m.onnx")],
                capsys, "--model", "not a saved model")  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_export_into_an_unwritable_place(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    usage_error(["export", "--model", str(model), "--format", "onnx", "--out", str(tmp_path / "file" / "m.onnx")],
                capsys, "--out", "cannot write")  # fmt: skip


@pytest.mark.keras
@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04 truncated"])
def test_import_of_a_broken_keras_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes) -> None:
    path = tmp_path / "broken.keras"
    path.write_bytes(content)
    usage_error(["import", str(path), "--out", str(tmp_path / "model")], capsys, "FILE", "broken.keras")
    assert not (tmp_path / "model").exists()


def test_a_refused_export_makes_no_directory(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The model is read and checked before --out's directory is made."""
    out = tmp_path / "new" / "deeper" / "m.keras"
    usage_error(["export", "--model", str(model), "--format", "keras", "--out", str(out), "--batch-size", "2000000"],
                capsys, "--batch-size", "[1, 1000001)")  # fmt: skip
    onnx_out = str(out.with_suffix(".onnx"))
    usage_error(["export", "--model", str(tmp_path / "none"), "--format", "onnx", "--out", onnx_out], capsys, "--model")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.keras
def test_import_into_the_current_directory(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "m.keras"
    assert main(["export", "--model", str(model), "--format", "keras", "--out", str(out)]) == 0
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    assert main(["import", str(out), "--out", ".", "--order", "newest-first"]) == 0
    assert model_io.load_model(tmp_path / "here").model.cell == "simple"
