"""The Keras example ported to Keras 3 (TensorFlow backend), timed; the reference we replace.

Same protocol as DESIGN.md (data, split, stateful loop with per-epoch reset, stateless
fit, predictions), no plots and no prints of the data. Prints one JSON line:
{"wall_s", "import_s", "stateful_train_s", "stateless_train_s", "stateful_mse", "stateless_mse"}.

    KERAS_BACKEND=tensorflow python benchmarks/keras_example.py [--epochs 10] [--input-len 1000] ...
"""

from __future__ import annotations

import argparse
import json
import os
import time

START = time.perf_counter()
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

IMPORTED = time.perf_counter()


XXX
    """The example's data code, as it is (pandas rolling mean, shifted columns, split)."""
    np.random.seed(1986)
    to_drop = max(tsteps - 1, lahead - 1)
    data_input = pd.DataFrame(np.random.uniform(-0.1, 0.1, input_len + to_drop))
    expected_output = data_input.rolling(window=tsteps, center=False).mean()
    if lahead > 1:
        data_input = pd.DataFrame(np.repeat(data_input.values, repeats=lahead, axis=1))
        for i, c in enumerate(data_input.columns):
            data_input[c] = data_input[c].shift(i)
    expected_output = expected_output[to_drop:]
    data_input = data_input[to_drop:]
    to_train = int(input_len * 0.8)
    to_train -= to_train % batch_size
    x_train, y_train = data_input[:to_train], expected_output[:to_train]
    x_test, y_test = data_input[to_train:], expected_output[to_train:]
    cut = data_input.shape[0] % batch_size
    if cut > 0:
        x_test, y_test = x_test[:-cut], y_test[:-cut]
    as3 = lambda a: a.values.reshape((a.shape[0], a.shape[1], 1))  # noqa: E731
    as2 = lambda a: a.values.reshape((a.shape[0], 1))  # noqa: E731
    return as3(x_train), as2(y_train), as3(x_test), as2(y_test)


def create_model(stateful: bool, lahead: int, batch_size: int) -> keras.Model:
    model = keras.Sequential(
        [keras.Input(shape=(lahead, 1), batch_size=batch_size), keras.layers.LSTM(20, stateful=stateful),
         keras.layers.Dense(1)]
    )
    model.compile(loss="mse", optimizer="adam")
    return model


def reset_states(model: keras.Model) -> None:
    """Keras 3 dropped ``Model.reset_states``; stateful RNN layers keep ``reset_state``."""
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()


def main() -> None:
    parser = argparse.ArgumentParser()
    for name, default in (("input-len", 1000), ("tsteps", 2), ("lahead", 1), ("batch-size", 1), ("epochs", 10)):
        parser.add_argument(f"--{name}", type=int, default=default)
    a = parser.parse_args()
    x_train, y_train, x_test, y_test = example_arrays(a.input_len, a.tsteps, a.lahead, a.batch_size)
    timings = {}
    start = time.perf_counter()
    stateful = create_model(True, a.lahead, a.batch_size)
    for _ in range(a.epochs):
        stateful.fit(x_train, y_train, batch_size=a.batch_size, epochs=1, verbose=0,
                     validation_data=(x_test, y_test), shuffle=False)
        reset_states(stateful)
    timings["stateful_train_s"] = time.perf_counter() - start
    pred_stateful = stateful.predict(x_test, batch_size=a.batch_size, verbose=0)
    start = time.perf_counter()
    stateless = create_model(False, a.lahead, a.batch_size)
    stateless.fit(x_train, y_train, batch_size=a.batch_size, epochs=a.epochs, verbose=0,
                  validation_data=(x_test, y_test), shuffle=False)
    timings["stateless_train_s"] = time.perf_counter() - start
    pred_stateless = stateless.predict(x_test, batch_size=a.batch_size, verbose=0)
    skip = a.tsteps - 1
    timings["stateful_mse"] = float(np.mean((y_test - pred_stateful)[skip:] ** 2))
    timings["stateless_mse"] = float(np.mean((y_test - pred_stateless) ** 2))
    timings["import_s"] = IMPORTED - START
    timings["wall_s"] = time.perf_counter() - START
    print(json.dumps(timings))


if __name__ == "__main__":
    main()
