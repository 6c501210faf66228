"""Where a power analysis runs: this process, local worker processes, or a Dask cluster.

Every executor has the same two-method surface: it is a context manager, and
``map_unordered(fn, shared, items)`` yields ``fn(shared, item)`` for every item as the calls
finish (in any order). ``shared`` is the simulation design, sent once per worker where the
executor can (Dask scatters it) and with every call otherwise. Results do not depend on the
executor: every block of trials is seeded by its own cell (see :mod:`alliance.simulate.power`),
and the caller sorts what comes back.

Dask is optional: ``pip install "dask[distributed]"``. ``DaskExecutor(scheduler="tcp://host:8786")``
connects to a running cluster (its workers need ``alliance`` installed, same version);
``DaskExecutor(workers=N)`` starts a ``LocalCluster`` of N single-threaded worker processes on
the loopback interface and shuts it down afterwards.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

__all__ = ["DaskExecutor", "ExecutorError", "ProcessExecutor", "SerialExecutor", "make_executor"]


class ExecutorError(RuntimeError):
    """An executor cannot be started: a missing optional dependency, conflicting options."""


class SerialExecutor:
    """Run every call in this process, one after the other."""

    workers = 1
    description = "serial (this process)"

    def __enter__(self) -> SerialExecutor:
        return self

    def __exit__(self, *exc_info) -> None:
        return None

    def map_unordered(self, fn: Callable[[Any, Any], Any], shared: Any, items: Iterable[Any]) -> Iterator[Any]:
        for item in items:
            yield fn(shared, item)


class ProcessExecutor:
    """Run calls in local worker processes (``concurrent.futures.ProcessPoolExecutor``).

    Parameters
    ----------
    processes : int, optional
        Worker processes; the number of CPUs when omitted. Workers are started with the
        ``spawn`` method (the same on every platform, and safe with threads in the parent).
    """

    def __init__(self, processes: int | None = None):
        if processes is not None and processes < 1:
            raise ExecutorError(f"--processes must be at least 1; got {processes}")
        self.workers = int(processes or os.cpu_count() or 1)
        self.description = f"{self.workers} local process(es)"
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> ProcessExecutor:
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self

    def __exit__(self, *exc_info) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def map_unordered(self, fn: Callable[[Any, Any], Any], shared: Any, items: Iterable[Any]) -> Iterator[Any]:
        if self._pool is None:
            raise ExecutorError("use ProcessExecutor as a context manager: `with ProcessExecutor(n) as executor:`")
        futures = [self._pool.submit(fn, shared, item) for item in items]
        for future in as_completed(futures):
            yield future.result()


class DaskExecutor:
    """Run calls on a Dask cluster: an existing one, or a ``LocalCluster`` started here.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
    workers : int, optional
        Without ``scheduler``: start a ``LocalCluster(n_workers=workers, threads_per_worker=1,
        processes=True)`` on 127.0.0.1 (no dashboard).
    """

    def __init__(self, scheduler: str | None = None, workers: int | None = None):
        if (scheduler is None) == (workers is None):
            raise ExecutorError("DaskExecutor needs either a scheduler address or a number of local workers")
        if workers is not None and workers < 1:
            raise ExecutorError(f"--workers must be at least 1; got {workers}")
        try:
            import distributed  # noqa: F401
        except ImportError as error:
            raise ExecutorError('Dask is not installed: pip install "dask[distributed]" to use --scheduler or '
                                "--workers (or use --processes N for local processes)") from error
        self.scheduler = scheduler
        self.requested_workers = workers
        self.client = None
        self.cluster = None
        self.workers = workers or 0
        self.description = (f"Dask cluster at {scheduler}" if scheduler
                            else f"Dask LocalCluster with {workers} worker process(es)")

    def __enter__(self) -> DaskExecutor:
        from distributed import Client, LocalCluster

        if self.scheduler is not None:
            self.client = Client(self.scheduler)
        else:
            self.cluster = LocalCluster(n_workers=self.requested_workers, threads_per_worker=1, processes=True,
                                        host="127.0.0.1", dashboard_address=None)
            self.client = Client(self.cluster)
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        return self

    def __exit__(self, *exc_info) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    def map_unordered(self, fn: Callable[[Any, Any], Any], shared: Any, items: Iterable[Any]) -> Iterator[Any]:
        from distributed import as_completed as dask_completed

        if self.client is None:
            raise ExecutorError("use DaskExecutor as a context manager: `with DaskExecutor(...) as executor:`")
        shared_future = self.client.scatter(shared, broadcast=True)
        futures = [self.client.submit(fn, shared_future, item, pure=False) for item in items]
        for future in dask_completed(futures):
            yield future.result()
            future.release()


def make_executor(scheduler: str | None = None, workers: int | None = None, processes: int | None = None):
    """The executor for the command-line options ``--scheduler``, ``--workers``, ``--processes``.

    Parameters
    ----------
    scheduler : str, optional
        Dask scheduler address.
    workers : int, optional
        Local Dask workers.
    processes : int, optional
        Local worker processes without Dask.

    Returns
    -------
    SerialExecutor, ProcessExecutor or DaskExecutor
        Serial when no option is given. Use it as a context manager.
    """
    given = [name for name, value in (("--scheduler", scheduler), ("--workers", workers), ("--processes", processes))
             if value is not None]
    if len(given) > 1:
        raise ExecutorError(f"choose one of --scheduler, --workers, --processes; got {' and '.join(given)}")
    if scheduler is not None or workers is not None:
        return DaskExecutor(scheduler=scheduler, workers=workers)
    if processes is not None:
        return ProcessExecutor(processes)
    return SerialExecutor()
