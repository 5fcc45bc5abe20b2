"""The Dask executor gives exactly the local executor's results; without Dask installed,
asking for it is a one-line error naming the extra."""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
import pytest

from lstm_stateful.core.config import DataConfig, ExperimentConfig, TrainConfig
from lstm_stateful.core.errors import ConfigError
from lstm_stateful.sweep.executors import DaskExecutor, LocalExecutor
from lstm_stateful.sweep.grid import SweepSpec, groups
from lstm_stateful.sweep.store import Record


def _results(executor: LocalExecutor | DaskExecutor, spec: SweepSpec) -> dict[tuple, Record]:
    try:
        found = executor.map_unordered(groups(spec, dict.fromkeys(spec.points, 0)))
        return {(r.tsteps, r.lahead, r.mode, r.seed_index): r for _, records in found for r in records}
    finally:
        executor.close()


def test_dask_local_cluster_equals_local_executor() -> None:
    base = ExperimentConfig(data=DataConfig(input_len=200), train=TrainConfig(epochs=2), seeds=2)
    spec = SweepSpec.ranges((1, 2), (1, 2), base)
    local = _results(LocalExecutor(2), spec)
    dask = _results(DaskExecutor.local_cluster(2), spec)
    assert len(local) == 4 * 2 * 2
    assert local.keys() == dask.keys()
    for key, record in local.items():  # bit for bit, apart from the wall time
        other = dask[key]
        ours = [record.mse, record.r2, *record.train_loss, *record.val_loss]
        np.testing.assert_array_equal(ours, [other.mse, other.r2, *other.train_loss, *other.val_loss])


@pytest.mark.parametrize(
    ("start", "flag"),
    [
        (lambda: DaskExecutor.local_cluster(2), "workers"),
        (lambda: DaskExecutor.connect("tcp://127.0.0.1:1"), "scheduler"),
    ],
)
def test_without_dask_the_flag_names_the_extra(
    start: Callable[[], DaskExecutor], flag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` now fails
    with pytest.raises(ConfigError) as raised:
        start()
    message = str(raised.value)
    assert raised.value.param == flag
    assert "\n" not in message and "pip install 'lstm-stateful[dask]'" in message
