"""Where a sweep's groups train: in this process, or on a Dask distributed cluster.

Either way a worker only computes (``sweep.train_group``) and returns records; the
caller alone writes the store, as results arrive. Both executors run the same programs
on the same groups, so on the same machine their results are identical.

Dask is an optional dependency, the ``dask`` extra: without it the local executor works
and asking for Dask (``--workers``, ``--scheduler``) is a one-line ``ConfigError``.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstm_stateful.core.errors import ConfigError
from lstm_stateful.sweep.grid import Group
from lstm_stateful.sweep.store import Record

if TYPE_CHECKING:
    from distributed import Client

# How long to wait for an existing Dask scheduler before giving up.
CONNECT_TIMEOUT_S = 10

DASK_EXTRA = "training on Dask needs the dask extra: pip install 'lstm-stateful[dask]'"


def require_dask(flag: str) -> None:
    """Raise a ``ConfigError`` on ``flag`` (``workers`` or ``scheduler``) when Dask's
    ``distributed`` is not installed."""
    try:
        import distributed  # noqa: F401
    except ModuleNotFoundError:  # it, or a package it needs: the extra installs both
        raise ConfigError(flag, DASK_EXTRA) from None


def _train_group(group: Group, cache_dir: str | None = None) -> list[Record]:
    """On a worker: turn on the compilation cache at ``cache_dir`` (if given), train the group."""
    # Imported in the worker, not at module import: the CLI loads this module before JAX.
    from lstm_stateful.sweep.training import train_group

    if cache_dir is not None:
        from lstm_stateful.core import compile_cache

        compile_cache.enable(Path(cache_dir))  # a worker without a usable cache just compiles
    return train_group(group)


class LocalExecutor:
    """Groups train in this process, ``jobs`` at a time in threads (a compiled program
    releases the GIL and mostly uses one core, so two groups use two cores)."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    def map_unordered(self, groups: list[Group]) -> Iterator[tuple[Group, list[Record]]]:
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.jobs)
        try:
            futures = {pool.submit(_train_group, g): g for g in groups}
            for future in concurrent.futures.as_completed(futures):
                yield futures[future], future.result()
        finally:
            # On an interrupt, groups not started are dropped; running ones cannot be stopped.
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        pass


class DaskExecutor:
    """Groups train on Dask workers: a new ``LocalCluster`` of ``workers`` processes, or
    an existing cluster at ``scheduler`` (its workers need lstm-stateful installed).
    ``cache_dir``: the JAX compilation cache the workers use (None: none)."""

    def __init__(self, client: Client, cluster: Any = None) -> None:
        self.client = client
        self._cluster = cluster
        self.cache_dir: str | None = None

    @classmethod
    def local_cluster(cls, workers: int) -> DaskExecutor:
        require_dask("workers")
        from distributed import Client, LocalCluster

        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        )
        return cls(Client(cluster), cluster)

    @classmethod
    def connect(cls, scheduler: str) -> DaskExecutor:
        require_dask("scheduler")
        from distributed import Client

        try:
            return cls(Client(scheduler, timeout=CONNECT_TIMEOUT_S))
        except (OSError, TimeoutError, ValueError) as e:
            raise ConfigError("scheduler", f"cannot connect to Dask scheduler {scheduler!r}: {e}") from None

    def map_unordered(self, groups: list[Group]) -> Iterator[tuple[Group, list[Record]]]:
        from distributed import as_completed

        futures = {self.client.submit(_train_group, g, self.cache_dir, pure=False): g for g in groups}
        try:
            for future, records in as_completed(futures, with_results=True):
                yield futures[future], records
        finally:
            self.client.cancel(list(futures))

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()
