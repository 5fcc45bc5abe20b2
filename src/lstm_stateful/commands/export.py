"""``export`` and ``import``: a saved model out to ONNX or Keras 3 files, and a Keras file in.

Each format's packages are an extra (``onnx``, ``keras``): missing, the command says which
in one line before it reads or writes anything. Every file is written atomically, so a
failure part way leaves the old file or none, never half of one.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lstm_stateful.core.config import LAYOUTS, ORDERS, require_choice, require_columns, require_int
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.io import dirs

if TYPE_CHECKING:
    from lstm_stateful.models.fleet_model import FleetModel
    from lstm_stateful.models.model_io import SavedModel

# Each export format and the suffix its file must have (Keras refuses to save any other).
FORMATS = {"onnx": ".onnx", "keras": ".keras"}


def _check_out(out: Path, suffix: str, what: str) -> None:
    """``out`` names a file (not a directory) with ``suffix``."""
    if Path(out).is_dir():
        raise ConfigError("out", f"{str(out)!r} is a directory; give the path of the {what} file to write")
    if Path(out).suffix != suffix:
        raise ConfigError("out", f"{str(out)!r} must end in {suffix} (the {what} file to write)")


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """model: a saved model directory; format: ``onnx`` or ``keras``; out: the file to write
    (``.onnx`` or ``.keras``). chunk (onnx only): also write a graph taking T steps per call,
    beside ``out``. batch_size (keras only): the stateful Keras model's fixed batch size, its
    number of streams (the ONNX graph's batch axis is dynamic)."""

    model: Path
    format: str
    out: Path
    chunk: int | None = None
    batch_size: int | None = None

    def __post_init__(self) -> None:
        require_choice("format", self.format, tuple(FORMATS))
        if self.chunk is not None:
            require_int("chunk", self.chunk)
            if self.format != "onnx":
                raise ConfigError("chunk", f"applies to --format onnx only (the T-step graph), not {self.format}")
        if self.batch_size is not None:
            require_int("batch_size", self.batch_size)
            if self.format != "keras":
                raise ConfigError("batch_size", "applies to --format keras only: the ONNX graph takes any batch size")
        _check_out(self.out, FORMATS[self.format], self.format.upper() if self.format == "onnx" else "Keras")


@dataclasses.dataclass(frozen=True)
class ExportOutput:
    """What ``export`` wrote: the files (the main one first), from which model (``what``
    says it in words), in how long."""

    files: tuple[Path, ...]
    model: SavedModel | FleetModel
    seconds: float
    what: str


def _export_fleet(cfg: ExportConfig, start: float) -> ExportOutput:
    """A fleet model: its one-step ONNX graph (``export.fleet_onnx``); no other format."""
    from lstm_stateful.export import fleet_onnx, onnx_graph
    from lstm_stateful.models.fleet_model import load_fleet_model, n_seeds

    if cfg.format != "onnx":
        raise ConfigError("format", f"a fleet model exports to onnx only, not {cfg.format}")
    if cfg.chunk is not None:
        raise ConfigError("chunk", "a fleet model's graph takes one step (a forecast rolls it on); leave out --chunk")
    onnx_graph.import_onnx()
    model = load_fleet_model(cfg.model)
    dirs.writable(Path(cfg.out).parent, "out")
    files = fleet_onnx.write_fleet_onnx(model, Path(cfg.out))
    what = f"the {model.mode} {model.config.model.cell} fleet model ({n_seeds(model)} seeds, {len(model.ids)} series)"
    return ExportOutput(files, model, time.perf_counter() - start, what)


def export(cfg: ExportConfig) -> ExportOutput:
    """Write ``cfg.model`` in ``cfg.format`` (see ``lstm_stateful.export``). The model is read
    and checked before ``out``'s directory is made: a refusal leaves nothing behind."""
    from lstm_stateful.models.fleet_model import is_fleet_model
    from lstm_stateful.models.model_io import load_model

    start = time.perf_counter()
    if is_fleet_model(cfg.model):
        return _export_fleet(cfg, start)
    if cfg.format == "onnx":
        from lstm_stateful.export import onnx_graph

        onnx_graph.import_onnx()  # a missing extra is said before anything is read
        model = load_model(cfg.model)
        dirs.writable(Path(cfg.out).parent, "out")
        files = onnx_graph.write_onnx(model, Path(cfg.out), cfg.chunk)
    else:
        from lstm_stateful.export import keras_export

        keras_export.keras_module()
        model = load_model(cfg.model)
        batch_size = 1 if cfg.batch_size is None else cfg.batch_size
        keras_export.check_exportable(model, batch_size)
        dirs.writable(Path(cfg.out).parent, "out")
        files = keras_export.write_keras(model, Path(cfg.out), batch_size)
    what = f"the {model.mode} {model.model.cell} model (seed {model.seed_index})"
    return ExportOutput(tuple(files), model, time.perf_counter() - start, what)


@dataclasses.dataclass(frozen=True)
class ImportConfig:
    """keras_file: a Keras 3 ``.keras`` file of recurrent layers of one type and a final
    Dense(1); out: the model directory to create (absent or empty: checked when it is made); order: the order in
    which that model was fed each window (``oldest-first``, time order, as most Keras code
    does); inputs: names for its input columns (as ``predict --input`` will give them);
    layout: what the rows of a stateful model's fixed batch of B > 1 were: ``interleaved``,
    consecutive windows of one stream (B states per stream, as the example trains), or
    ``contiguous``, independent streams (one state each)."""

    keras_file: Path
    out: Path
    order: str = "oldest-first"
    inputs: tuple[str, ...] | None = None
    layout: str = "interleaved"

    def __post_init__(self) -> None:
        require_choice("order", self.order, ORDERS)
        require_choice("layout", self.layout, LAYOUTS)
        if self.inputs is not None:
            require_columns("input", self.inputs)


@dataclasses.dataclass(frozen=True)
class ImportOutput:
    """What ``import_keras`` made: the model, where, in how long."""

    model: SavedModel
    out: Path
    seconds: float


def import_keras(cfg: ImportConfig) -> ImportOutput:
    """Read ``cfg.keras_file`` and write it as a model directory ``cfg.out`` (see
    ``lstm_stateful.export.keras_import``)."""
    from lstm_stateful.export import keras_export, keras_import

    keras_export.keras_module("keras_file")
    start = time.perf_counter()
    model = keras_import.import_keras_file(Path(cfg.keras_file), Path(cfg.out), cfg.order, cfg.inputs, cfg.layout)
    return ImportOutput(model, Path(cfg.out), time.perf_counter() - start)
