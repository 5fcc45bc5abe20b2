"""Run-directory files: atomic writes, JSON without NaN."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np

from lstm_stateful.render import outputs


def test_write_atomic_replaces_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("old")
    outputs.write_atomic(path, '{"new": true}\n')
    assert json.loads(path.read_text()) == {"new": True}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary left behind
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_non_finite_numbers_become_null() -> None:
    assert outputs._floats(np.array([1.0, np.nan, np.inf])) == [1.0, None, None]


def test_versions_name_the_numeric_stack() -> None:
    v = outputs.versions()
    assert {"python", "jax", "jaxlib", "optax", "numpy"} <= set(v)
