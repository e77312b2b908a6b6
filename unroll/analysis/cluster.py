"""Run sweeps on a Dask cluster: a running scheduler's address, or a local cluster.

``dask_executor("tcp://10.0.0.5:8786")`` connects to a running scheduler;
``dask_executor("local:4")`` starts a ``distributed.LocalCluster`` of 4 worker processes
on 127.0.0.1 (no dashboard) and shuts it down afterwards. Either way it yields the
client's ``concurrent.futures.Executor`` for :func:`unroll.analysis.sweep`'s
``executor=``. Tasks get :data:`RETRIES` retries; a worker that dies has its tasks run
again elsewhere (Dask's scheduler does this), so the sweep still gets every point.

Dask is optional: ``pip install 'rnn-unroll[dask]'``.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from concurrent.futures import CancelledError, Executor
from dataclasses import dataclass

from ..errors import RunFailure
from .errors import AnalysisError

__all__ = [
    "RETRIES",
    "Cluster",
    "ClusterError",
    "dask_executor",
    "local_cluster",
    "parse_address",
]

#: Times a task that raised is run again before the sweep fails.
RETRIES = 2

#: Seconds to wait for a scheduler to answer.
CONNECT_SECONDS = 10

_LOCAL = re.compile(r"local:(\d+)")
_ADDRESS = re.compile(r"(tcp|tls|inproc|ucx|ws|wss)://\S+")


class ClusterError(RunFailure):
    """The scheduler cannot be reached, or the local cluster did not start (exit 1)."""


@dataclass(frozen=True)
class Cluster:
    """Where a sweep runs: ``workers`` local worker processes, or a scheduler ``address``."""

    address: str | None = None
    workers: int | None = None

    def __str__(self) -> str:
        return f"local:{self.workers}" if self.address is None else self.address


def parse_address(text: str) -> Cluster:
    """Read ``local:N`` (N >= 1 worker processes here) or a scheduler address.

    Raises
    ------
    AnalysisError
        For text of neither form.

    Examples
    --------
    >>> parse_address("local:2"), parse_address("tcp://127.0.0.1:8786")
    (Cluster(address=None, workers=2), Cluster(address='tcp://127.0.0.1:8786', workers=None))
    >>> parse_address("127.0.0.1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    unroll.analysis.errors.AnalysisError: '127.0.0.1' is neither local:N ... tcp://127.0.0.1:8786
    """
    local = _LOCAL.fullmatch(text.strip())
    if local and int(local.group(1)) >= 1:
        return Cluster(workers=int(local.group(1)))
    if _ADDRESS.fullmatch(text.strip()):
        return Cluster(address=text.strip())
    raise AnalysisError(
        f"{text!r} is neither local:N (N worker processes here) nor a scheduler address "
        "such as tcp://127.0.0.1:8786"
    )


def _distributed():
    try:
        import distributed
    except ImportError:
        raise AnalysisError(
            "running on Dask needs the dask extra: pip install 'rnn-unroll[dask]'"
        ) from None
    return distributed


@contextlib.contextmanager
def dask_executor(where: str | Cluster, retries: int = RETRIES) -> Iterator[Executor]:
    """A Dask client's executor for ``where``; the client (and a local cluster) close after.

    Parameters
    ----------
    where : str or Cluster
        ``"local:N"`` or a scheduler address such as ``"tcp://127.0.0.1:8786"``.
    retries : int
        Times each task that raised runs again.

    Yields
    ------
    concurrent.futures.Executor
        ``client.get_executor(pure=False, retries=retries)``.

    Raises
    ------
    AnalysisError
        When Dask is not installed (naming the extra), or for a malformed ``where``.
    ClusterError
        When the scheduler does not answer, the local cluster does not start, or, while
        the sweep runs, the scheduler goes away or a task killed every worker it ran on
        more often than Dask allows (``distributed.scheduler.allowed-failures``).

    Examples
    --------
    >>> from unroll.analysis import sweep
    >>> with dask_executor("local:1") as executor:  # doctest: +SKIP
    ...     result = sweep("elman", {"hidden_size": [4, 8]}, steps=10, seeds=2,
    ...                    executor=executor)
    """
    cluster = parse_address(where) if isinstance(where, str) else where
    distributed = _distributed()
    with contextlib.ExitStack() as stack:
        try:
            address = cluster.address or stack.enter_context(local_cluster(cluster.workers or 1))
            client = stack.enter_context(
                distributed.Client(address, timeout=f"{CONNECT_SECONDS}s", set_as_default=False)
            )
        except (OSError, TimeoutError, RuntimeError) as e:  # RuntimeError: workers failed
            raise ClusterError(f"Dask scheduler at {cluster}: {_reason(e)}") from None
        try:
            yield client.get_executor(pure=False, retries=retries)
        except (distributed.KilledWorker, distributed.comm.CommClosedError, CancelledError) as e:
            raise ClusterError(f"Dask cluster {cluster}: {_reason(e)}") from None


def local_cluster(workers: int):
    """A ``distributed.LocalCluster`` of ``workers`` processes, one thread each, on
    127.0.0.1 without a dashboard.

    Raises
    ------
    AnalysisError
        When Dask is not installed.
    """
    distributed = _distributed()
    import dask

    # Dask's workers set MALLOC_TRIM_THRESHOLD_, which turns off glibc's adaptive mmap
    # threshold: every large array is then a fresh mmap, and an engine pass spends a third
    # more time in page faults. Unset, the tasks run as fast as in a process pool.
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        return distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # the scheduler's health page still listens: on a free loopback port, not 8787
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.CRITICAL,  # our one Error: line says what went wrong
        )


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return text or type(error).__name__
