"""Keras-compatible recurrent cells (LSTM, GRU, SimpleRNN) and the Dense readout, as pure functions.

A cell is one step, ``cell(params, carry, x) -> (carry, y)``; it works on any leading
batch shape, so the same code runs one sample, a batch, or (under ``vmap``) many seeds.
A model stacks ``layers`` cells (each feeds its output to the next at every step, as
Keras's ``return_sequences=True`` layers do) and reads the last one out with a Dense.
Weight layouts equal Keras's, so weights copy across unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lstm_stateful.core.config import ModelConfig

# Windows up to this many steps are unrolled into straight-line code. Measured on a
# 2-core CPU: unrolling wins at 2 steps, and loses from 4 on (longer compiles, and under
# vmap over many cells slower steps too).
MAX_UNROLL = 2

# A weight array: NumPy on the host where ``init_params`` draws it or a saved model is
# loaded, a JAX array once training (or any other JAX function) has returned it.
Weights = jax.Array | np.ndarray


class LSTMParams(NamedTuple):
    """Keras layout, gates in order i, f, c, o along the last axis.

    kernel: (n_in, 4 * units), n_in = n_features for the first layer, units for later ones;
    recurrent_kernel: (units, 4 * units); bias: (4 * units,).
    """

    kernel: Weights
    recurrent_kernel: Weights
    bias: Weights


class GRUParams(NamedTuple):
    """Keras's GRU with ``reset_after=True``, gates in order z, r, h along the last axis.

    kernel: (n_in, 3 * units); recurrent_kernel: (units, 3 * units);
    bias: (2, 3 * units), row 0 added to the input part, row 1 to the recurrent part.
    """

    kernel: Weights
    recurrent_kernel: Weights
    bias: Weights


class SimpleRNNParams(NamedTuple):
    """Keras's SimpleRNN (tanh). kernel: (n_in, units); recurrent_kernel: (units, units);
    bias: (units,)."""

    kernel: Weights
    recurrent_kernel: Weights
    bias: Weights


class LSTMCarry(NamedTuple):
    """Hidden and cell state of one LSTM layer, each (..., units)."""

    h: jax.Array
    c: jax.Array


class RNNCarry(NamedTuple):
    """The state of a GRU or SimpleRNN: the hidden state alone, (..., units)."""

    h: jax.Array


CellParams = LSTMParams | GRUParams | SimpleRNNParams
# One layer's state.
LayerCarry = LSTMCarry | RNNCarry
# A model's state: one ``LayerCarry`` per stacked layer, the first layer's first.
Carry = tuple[LayerCarry, ...]


class DenseParams(NamedTuple):
    """kernel: (units, 1); bias: (1,)."""

    kernel: Weights
    bias: Weights


class ModelParams(NamedTuple):
    """cells: one per stacked layer, the first layer's first: its kernel is (n_features, G * units),
    the later layers' (units, G * units); dense: the readout of the last layer."""

    cells: tuple[CellParams, ...]
    dense: DenseParams


def _glorot_uniform(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    limit = np.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(-limit, limit, shape).astype(np.float32)


def _orthogonal(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Keras's ``Orthogonal``: QR of a Gaussian matrix, signs fixed by diag(R)."""
    rows, cols = shape
    q, r = np.linalg.qr(rng.standard_normal((max(rows, cols), min(rows, cols))))
    q *= np.sign(np.diag(r))
    return (q.T if rows < cols else q).astype(np.float32)


def _lstm_init(rng: np.random.Generator, n_in: int, u: int) -> LSTMParams:
    bias = np.zeros((4 * u,), np.float32)
    bias[u : 2 * u] = 1.0  # Keras's unit_forget_bias
    return LSTMParams(_glorot_uniform(rng, (n_in, 4 * u)), _orthogonal(rng, (u, 4 * u)), bias)


def _gru_init(rng: np.random.Generator, n_in: int, u: int) -> GRUParams:
    bias = np.zeros((2, 3 * u), np.float32)
    return GRUParams(_glorot_uniform(rng, (n_in, 3 * u)), _orthogonal(rng, (u, 3 * u)), bias)


def _simple_init(rng: np.random.Generator, n_in: int, u: int) -> SimpleRNNParams:
    return SimpleRNNParams(_glorot_uniform(rng, (n_in, u)), _orthogonal(rng, (u, u)), np.zeros((u,), np.float32))


_INITS: dict[str, Callable[[np.random.Generator, int, int], CellParams]] = {
    "lstm": _lstm_init,
    "gru": _gru_init,
    "simple": _simple_init,
}
# The parameter type of each ``--cell``.
PARAM_TYPES: dict[str, type[CellParams]] = {"lstm": LSTMParams, "gru": GRUParams, "simple": SimpleRNNParams}
# The state type of each ``--cell``: its fields name a layer's state arrays (h, and c for an LSTM).
CARRY_TYPES: dict[str, type[LayerCarry]] = {"lstm": LSTMCarry, "gru": RNNCarry, "simple": RNNCarry}


def init_params(rng: np.random.Generator, cfg: ModelConfig) -> ModelParams:
    """Keras's initialisers for ``cfg.cell``: glorot-uniform kernels, orthogonal recurrent
    kernel, zero biases (LSTM: forget-gate slice = 1, ``unit_forget_bias``).

    Drawn with NumPy on the host: it costs microseconds, where compiling JAX's
    threefry and QR for a one-off initialisation costs over a second on a CPU. The layers
    draw in order, then the Dense: one layer draws what the one-layer model always drew.
    """
    inputs = (cfg.n_features,) + (cfg.units,) * (cfg.layers - 1)
    stack = tuple(_INITS[cfg.cell](rng, n_in, cfg.units) for n_in in inputs)
    dense = DenseParams(kernel=_glorot_uniform(rng, (cfg.units, 1)), bias=np.zeros((1,), np.float32))
    return ModelParams(cells=stack, dense=dense)


def zero_carry(batch_size: int, cfg: ModelConfig) -> Carry:
    """A fresh state: per layer, zeros of shape (batch_size, units) per state array of ``cfg.cell``."""
    carry_type = CARRY_TYPES[cfg.cell]
    zeros = jnp.zeros((batch_size, cfg.units), jnp.float32)
    return (carry_type(*(zeros for _ in carry_type._fields)),) * cfg.layers


def _dot(a: jax.Array, b: Weights) -> jax.Array:
    """a @ b in full float32. GPUs would otherwise round the operands to TF32 (10-bit
    mantissa): results would then depend on the batch size and drift from Keras by 1e-4.
    The products here are small, so the full-precision path costs little; on a CPU it is
    the only path."""
    return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


def lstm_cell(params: LSTMParams, carry: LSTMCarry, x: jax.Array) -> tuple[LSTMCarry, jax.Array]:
    """One LSTM step. x: (..., n_in) -> new carry and h: (..., units).

    The sums run in Keras's order, (x K + h R) + b, so float32 rounding matches too.
    """
    z = _dot(x, params.kernel) + _dot(carry.h, params.recurrent_kernel) + params.bias
    zi, zf, zc, zo = jnp.split(z, 4, axis=-1)
    i, f, o = jax.nn.sigmoid(zi), jax.nn.sigmoid(zf), jax.nn.sigmoid(zo)
    c = f * carry.c + i * jnp.tanh(zc)
    h = o * jnp.tanh(c)
    return LSTMCarry(h=h, c=c), h


def gru_cell(params: GRUParams, carry: RNNCarry, x: jax.Array) -> tuple[RNNCarry, jax.Array]:
    """One GRU step (Keras, ``reset_after=True``). x: (..., n_in) -> carry, h: (..., units).

    The reset gate scales the recurrent part after its bias, and the new state mixes as
    z * h + (1 - z) * candidate, both as Keras computes them.
    """
    x_z, x_r, x_h = jnp.split(_dot(x, params.kernel) + params.bias[0], 3, axis=-1)
    r_z, r_r, r_h = jnp.split(_dot(carry.h, params.recurrent_kernel) + params.bias[1], 3, axis=-1)
    z = jax.nn.sigmoid(x_z + r_z)
    r = jax.nn.sigmoid(x_r + r_r)
    candidate = jnp.tanh(x_h + r * r_h)
    h = z * carry.h + (1 - z) * candidate
    return RNNCarry(h=h), h


def simple_cell(params: SimpleRNNParams, carry: RNNCarry, x: jax.Array) -> tuple[RNNCarry, jax.Array]:
    """One SimpleRNN step, Keras's order: tanh((x K + b) + h R). x: (..., n_in)."""
    h = jnp.tanh(_dot(x, params.kernel) + params.bias + _dot(carry.h, params.recurrent_kernel))
    return RNNCarry(h=h), h


def cell_step(params: CellParams, carry: LayerCarry, x: jax.Array) -> tuple[LayerCarry, jax.Array]:
    """One step of whichever cell ``params`` belongs to (chosen by its type, at trace time)."""
    if isinstance(params, LSTMParams) and isinstance(carry, LSTMCarry):
        return lstm_cell(params, carry, x)
    if isinstance(params, GRUParams) and isinstance(carry, RNNCarry):
        return gru_cell(params, carry, x)
    if isinstance(params, SimpleRNNParams) and isinstance(carry, RNNCarry):
        return simple_cell(params, carry, x)
    raise TypeError(f"no cell steps {type(params).__name__} with a {type(carry).__name__}")


def dense(params: DenseParams, h: jax.Array) -> jax.Array:
    """(..., units) -> (..., 1)."""
    return _dot(h, params.kernel) + params.bias


def stack_step(stack: tuple[CellParams, ...], carry: Carry, x: jax.Array) -> tuple[Carry, jax.Array]:
    """One time step through every layer: layer k's input is layer k-1's output at this step.

    x: (..., n_features) -> the new per-layer carries and the last layer's h: (..., units).
    """
    new = []
    for params, layer_carry in zip(stack, carry, strict=True):
        layer_carry, x = cell_step(params, layer_carry, x)
        new.append(layer_carry)
    return tuple(new), x


def forward(params: ModelParams, carry: Carry, x: jax.Array) -> tuple[Carry, jax.Array]:
    """Run the stacked cells over a window and read out the last layer's last step.

    x: (batch, lahead, n_features), timestep 0 first; carry: one per layer, each array
    (batch, units). Returns the carries after the last step and the prediction (batch, 1).
    """

    def step(c: Carry, xt: jax.Array) -> tuple[Carry, None]:
        return stack_step(params.cells, c, xt)[0], None

    # Unrolling short windows removes a nested loop: faster to compile and to run.
    unroll = x.shape[1] if x.shape[1] <= MAX_UNROLL else 1
    carry, _ = jax.lax.scan(step, carry, jnp.swapaxes(x, 0, 1), unroll=unroll)
    return carry, dense(params.dense, carry[-1].h)
