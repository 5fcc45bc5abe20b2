"""Strict numerics for every test: no silent dtype promotion; warnings are errors (pyproject)."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator

# The parity reference is Keras on TensorFlow; fix the backend before anything imports keras.
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from lstm_stateful.core import compile_cache

# The CLI sets this before JAX starts; so do the tests, so that in-process runs, subprocess
# runs and Dask workers all compile with the same flags.
compile_cache.set_xla_flags()

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")


def pytest_configure(config: object) -> None:
    # Runs through the CLI turn on JAX's persistent compilation cache: keep it out of ~/.cache.
    import tempfile

    os.environ["LSTM_STATEFUL_CACHE_DIR"] = tempfile.mkdtemp(prefix="lstm-stateful-test-cache-")


@pytest.fixture(autouse=True, scope="module")
def _free_compiled_programs() -> Iterator[None]:
    """Each compiled XLA program holds memory maps of its own, and a process may hold at most
    vm.max_map_count (65,530) of them: the whole suite in one process compiles more programs
    than that allows, and XLA then crashes mid-compile. Dropping every compiled program after
    each test module keeps the count to what one module needs (a retrace check lives within
    a test, so none depends on another module's programs)."""
    yield
    jax.clear_caches()
    gc.collect()
