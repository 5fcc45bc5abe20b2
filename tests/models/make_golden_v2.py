"""Write tests/models/golden_v2: saved models in format version 2 and their predictions.

Run once, at the last commit whose ``save_model`` wrote format version 2 (weights.npz):

    .venv/bin/python tests/models/make_golden_v2.py

It refuses to run with any other format version, so the directories always hold what
version 2's code wrote. Two models, each trained on golden.csv (160 rows, three columns) by
the CLI's ``run --save``: a 2-layer GRU on three inputs (kept: its stateful model, batch size
2, so the predictor keeps two states) and a 1-layer LSTM on one input learning differences
(kept: its stateless model). ``predictions.json`` holds the first 40 rows and what that
version's ``Predictor`` predicted for them with each model (null: the window still filling),
under the XLA flags the tests set (``compile_cache.set_xla_flags``).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from lstm_stateful.core import compile_cache

compile_cache.set_xla_flags()  # before JAX starts: the tests compile under the same flags

import numpy as np  # noqa: E402

from lstm_stateful.models import model_io, stream  # noqa: E402

GOLDEN = Path(__file__).parent / "golden_v2"
ROWS, SHOWN = 160, 40
COMMON = "--standardize --tsteps 2 --lahead 3 --units 4 --seeds 1 --epochs 2 --batch-size 2 --no-cache"
# Directory name -> (run flags, which of the run's two models to keep).
MODELS = {
    "gru_stateful": ("--input a,b,c --cell gru --layers 2", "stateful"),
    "lstm_stateless": ("--input a --cell lstm --layers 1 --transform diff", "stateless"),
}


def golden_csv(path: Path) -> np.ndarray:
    """Write the series (rows, 3 columns a, b, c; 6 decimals) and return it as written."""
    t = np.arange(ROWS)
    a = 10 + 2 * np.sin(t / 5) + 0.3 * np.cos(1.3 * t)
    b = 5 + np.cos(t / 7) + 0.2 * np.sin(2.1 * t)
    c = 1 + t / ROWS + 0.1 * np.sin(t / 3)
    table = np.round(np.stack([a, b, c], axis=1), 6)
    lines = ["t,a,b,c", *(f"{k},{x:.6f},{y:.6f},{z:.6f}" for k, (x, y, z) in enumerate(table))]
    path.write_text("\n".join(lines) + "\n")
    return table


def train(work: Path, name: str, flags: str) -> Path:
    """One ``run --save``; the directory holding its stateful and stateless models."""
    saved = work / name
    # Relative names, run from ``work``: the saved config then names golden.csv, not a temporary path.
    command = f"run --data golden.csv {flags} {COMMON} --out run-{name} --save {name}"
    subprocess.run([sys.executable, "-m", "lstm_stateful.cli", *command.split()], check=True, cwd=work)
    return saved


def nulls(predictions: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in predictions]


def main() -> None:
    if model_io.FORMAT_VERSION != 2:
        sys.exit(f"this code writes format version {model_io.FORMAT_VERSION}; golden_v2 must be written by version 2")
    GOLDEN.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        table = golden_csv(work / "golden.csv")
        shown = table[:SHOWN]
        record: dict = {"values": shown.tolist()}
        for name, (flags, mode) in MODELS.items():
            shutil.copytree(train(work, name, flags) / mode, GOLDEN / name, dirs_exist_ok=True)
            model = model_io.load_model(GOLDEN / name)
            inputs = shown[:, : model.model.n_features]  # (40, F); one input: (40,), as the predictor takes it
            record[name] = nulls(stream.Predictor(model).predict(inputs if inputs.shape[1] > 1 else inputs[:, 0]))
    (GOLDEN / "predictions.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
