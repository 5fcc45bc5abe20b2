"""The Keras example on Keras 3 + TensorFlow, timed: the reference we replace.

The example's protocol as it wrote it (its pandas data code, a stateful loop of one-epoch
fits with a reset after each, a stateless fit, predictions), without plots or data prints.
Prints one JSON line: import_s, stateful_train_s, stateless_train_s, stateful_mse,
stateless_mse, wall_s (from interpreter start to the end of predictions).

    python benchmarks/keras_example.py [--input-len 1000] [--tsteps 2] [--lahead 1] [--batch-size 1] [--epochs 10]
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402, F401  (timed: the import is part of the script's cost)
import numpy as np  # noqa: E402
from tests.reference import example_arrays, keras_fit, keras_model  # noqa: E402

IMPORTED = time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in (("input-len", 1000), ("tsteps", 2), ("lahead", 1), ("batch-size", 1), ("epochs", 10)):
        parser.add_argument(f"--{name}", type=int, default=default)
    a = parser.parse_args()
    data = example_arrays(a.input_len, a.tsteps, a.lahead, a.batch_size)
    out = {"import_s": IMPORTED - START}
    predictions = {}
    for mode in ("stateful", "stateless"):
        start = time.perf_counter()
        model = keras_model(mode == "stateful", a.lahead, a.batch_size)
        keras_fit(model, mode == "stateful", a.epochs, a.batch_size, data)
        out[f"{mode}_train_s"] = time.perf_counter() - start
        predictions[mode] = model.predict(data[2], batch_size=a.batch_size, verbose=0)
    y_test = data[3]
    skip = a.tsteps - 1
    out["stateful_mse"] = float(np.mean((y_test - predictions["stateful"])[skip:] ** 2))
    out["stateless_mse"] = float(np.mean((y_test - predictions["stateless"]) ** 2))
    out["wall_s"] = time.perf_counter() - START
    print(json.dumps(out))


if __name__ == "__main__":
    main()
