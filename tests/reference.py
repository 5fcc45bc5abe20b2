"""The references we did not write: the example's own data code (pandas) and Keras 3
with the TensorFlow backend (the backend where stateful layers work).

Importing this module selects Keras's TensorFlow backend; keras is imported lazily so
that tests that need only pandas do not pay for TensorFlow.
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd

from lstm_stateful.core.cells import PARAM_TYPES, DenseParams, ModelParams

# Our --cell names -> Keras's layers; the weight layouts are equal.
KERAS_LAYERS = {"lstm": "LSTM", "gru": "GRU", "simple": "SimpleRNN"}


def example_frames(input_len: int, tsteps: int, lahead: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The example's generation, rolling mean, shifted columns and drop, as it wrote them."""
    np.random.seed(1986)
    to_drop = max(tsteps - 1, lahead - 1)
    data_input = pd.DataFrame(np.random.uniform(-1 * 0.1, +1 * 0.1, input_len + to_drop))
    expected_output = data_input.rolling(window=tsteps, center=False).mean()
    if lahead > 1:
        data_input = pd.DataFrame(np.repeat(data_input.values, repeats=lahead, axis=1))
        for i, c in enumerate(data_input.columns):
            data_input[c] = data_input[c].shift(i)
    return data_input[to_drop:], expected_output[to_drop:]


def example_split(x: pd.DataFrame, y: pd.DataFrame, input_len: int, batch_size: int) -> tuple[np.ndarray, ...]:
    """The example's ``split_data``: float64 (x_train, y_train, x_test, y_test)."""
    to_train = int(input_len * 0.8)
    to_train -= to_train % batch_size
    x_train, y_train, x_test, y_test = x[:to_train], y[:to_train], x[to_train:], y[to_train:]
    to_drop = x.shape[0] % batch_size
    if to_drop > 0:
        x_test, y_test = x_test[: -1 * to_drop], y_test[: -1 * to_drop]

    def reshape_3(a: pd.DataFrame) -> np.ndarray:
        return a.values.reshape((a.shape[0], a.shape[1], 1))

    def reshape_2(a: pd.DataFrame) -> np.ndarray:
        return a.values.reshape((a.shape[0], 1))

    return reshape_3(x_train), reshape_2(y_train), reshape_3(x_test), reshape_2(y_test)


def example_arrays(input_len: int, tsteps: int, lahead: int, batch_size: int) -> tuple[np.ndarray, ...]:
    x, y = example_frames(input_len, tsteps, lahead)
    return example_split(x, y, input_len, batch_size)


def keras_model(
    stateful: bool,
    lahead: int,
    batch_size: int,
    units: int = 20,
    seed: int = 0,
    cell: str = "lstm",
    layers: int = 1,
    n_features: int = 1,
):
    """The example's ``create_model``: ``LSTM(units)`` (or GRU with reset_after, or SimpleRNN)
    + ``Dense(1)``, mse, Adam defaults. ``layers`` > 1 stacks that many, each but the last
    with ``return_sequences=True`` (every one stateful when ``stateful``); inputs
    (batch, lahead, n_features)."""
    import keras

    keras.utils.set_random_seed(seed)
    layer = getattr(keras.layers, KERAS_LAYERS[cell])
    stack = [layer(units, stateful=stateful, return_sequences=k < layers - 1) for k in range(layers)]
    model = keras.Sequential(
        [keras.Input(shape=(lahead, n_features), batch_size=batch_size), *stack, keras.layers.Dense(1)]
    )
    model.compile(loss="mse", optimizer="adam")
    return model


def reset_states(model) -> None:
    """Keras 3 has no ``Model.reset_states``; stateful RNN layers keep ``reset_state``."""
    for layer in model.layers:
        if getattr(layer, "stateful", False):
            layer.reset_state()


def params_from_keras(model, cell: str = "lstm") -> ModelParams:
    """Our parameter pytree holding a Keras model's weights (same layouts, no transpose):
    (kernel, recurrent kernel, bias) per recurrent layer, in order, then the Dense's two."""
    weights = [np.asarray(w) for w in model.get_weights()]
    *recurrent, dense_kernel, dense_bias = weights
    params_type = PARAM_TYPES[cell]
    stack = tuple(params_type(*recurrent[i : i + 3]) for i in range(0, len(recurrent), 3))
    return ModelParams(stack, DenseParams(dense_kernel, dense_bias))


def keras_fit(model, stateful: bool, epochs: int, batch_size: int, data: tuple[np.ndarray, ...]) -> tuple:
    """The example's training: stateful as ``epochs`` one-epoch fits with a reset after
    each, stateless as one fit. Returns (train losses, val losses) per epoch."""
    x_train, y_train, x_test, y_test = data
    kwargs = dict(batch_size=batch_size, verbose=0, validation_data=(x_test, y_test), shuffle=False)
    if not stateful:
        history = model.fit(x_train, y_train, epochs=epochs, **kwargs).history
        return np.array(history["loss"]), np.array(history["val_loss"])
    losses, val_losses = [], []
    for _ in range(epochs):
        history = model.fit(x_train, y_train, epochs=1, **kwargs).history
        reset_states(model)
        losses += history["loss"]
        val_losses += history["val_loss"]
    return np.array(losses), np.array(val_losses)
