"""Keras-compatible recurrent cells and the Dense readout, as pure functions.

A cell is one step, ``cell(params, carry, x) -> (carry, y)``; it works on any leading
batch shape, so the same code runs one sample, a batch, or (under ``vmap``) many seeds.
Weight layouts equal Keras's, so weights copy across unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lstm_stateful.config import ModelConfig

# Windows up to this many steps are unrolled into straight-line code. Measured on a
# 2-core CPU: unrolling wins at 2 steps, and loses from 4 on (longer compiles, and under
# vmap over many cells slower steps too).
MAX_UNROLL = 2


class LSTMParams(NamedTuple):
    """Keras layout, gates in order i, f, c, o along the last axis.

    kernel: (n_features, 4 * units); recurrent_kernel: (units, 4 * units); bias: (4 * units,).
    """

    kernel: jax.Array
    recurrent_kernel: jax.Array
    bias: jax.Array


class LSTMCarry(NamedTuple):
    """Hidden and cell state, each (..., units)."""

    h: jax.Array
    c: jax.Array


class DenseParams(NamedTuple):
    """kernel: (units, 1); bias: (1,)."""

    kernel: jax.Array
    bias: jax.Array


class ModelParams(NamedTuple):
    cell: LSTMParams
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


def init_params(rng: np.random.Generator, cfg: ModelConfig) -> ModelParams:
    """Keras's initialisers: glorot-uniform kernels, orthogonal recurrent kernel, zero
    biases except the forget-gate slice = 1 (``unit_forget_bias``).

    Drawn with NumPy on the host: it costs microseconds, where compiling JAX's
    threefry and QR for a one-off initialisation costs over a second on a CPU.
    """
    u = cfg.units
    bias = np.zeros((4 * u,), np.float32)
    bias[u : 2 * u] = 1.0
    cell = LSTMParams(
        kernel=_glorot_uniform(rng, (cfg.n_features, 4 * u)),
        recurrent_kernel=_orthogonal(rng, (u, 4 * u)),
        bias=bias,
    )
    dense = DenseParams(kernel=_glorot_uniform(rng, (u, 1)), bias=np.zeros((1,), np.float32))
    return ModelParams(cell=cell, dense=dense)


def zero_carry(batch_size: int, cfg: ModelConfig) -> LSTMCarry:
    """A fresh state: zeros of shape (batch_size, units)."""
    zeros = jnp.zeros((batch_size, cfg.units), jnp.float32)
    return LSTMCarry(h=zeros, c=zeros)


def lstm_cell(params: LSTMParams, carry: LSTMCarry, x: jax.Array) -> tuple[LSTMCarry, jax.Array]:
    """One LSTM step. x: (..., n_features) -> new carry and h: (..., units).

    The sums run in Keras's order, (x K + h R) + b, so float32 rounding matches too.
    """
    z = x @ params.kernel + carry.h @ params.recurrent_kernel + params.bias
    zi, zf, zc, zo = jnp.split(z, 4, axis=-1)
    i, f, o = jax.nn.sigmoid(zi), jax.nn.sigmoid(zf), jax.nn.sigmoid(zo)
    c = f * carry.c + i * jnp.tanh(zc)
    h = o * jnp.tanh(c)
    return LSTMCarry(h=h, c=c), h


def dense(params: DenseParams, h: jax.Array) -> jax.Array:
    """(..., units) -> (..., 1)."""
    return h @ params.kernel + params.bias


def forward(params: ModelParams, carry: LSTMCarry, x: jax.Array) -> tuple[LSTMCarry, jax.Array]:
    """Run the LSTM over a window and read out the last step.

    x: (batch, lahead, n_features), timestep 0 first. Returns the carry after the last
    step and the prediction (batch, 1).
    """

    def step(c: LSTMCarry, xt: jax.Array) -> tuple[LSTMCarry, None]:
        return lstm_cell(params.cell, c, xt)[0], None

    # Unrolling short windows removes a nested loop: faster to compile and to run.
    unroll = x.shape[1] if x.shape[1] <= MAX_UNROLL else 1
    carry, _ = jax.lax.scan(step, carry, jnp.swapaxes(x, 0, 1), unroll=unroll)
    return carry, dense(params.dense, carry.h)
