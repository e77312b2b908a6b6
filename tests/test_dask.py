"""Sweeps on executors and on a real Dask cluster (127.0.0.1, no dashboard): the same bytes
as a serial run, every point even when a worker dies, clusters shut down afterwards."""

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial

import pytest
from click.testing import CliRunner
from unroll.cli.main import main

from unroll.analysis import AnalysisError, sweep
from unroll.analysis import cluster as cluster_module
from unroll.analysis.cluster import Cluster, dask_executor, local_cluster, parse_address
from unroll.analysis.sweep import standard_model

GRID = {"hidden_size": [2, 3, 4], "spectral_radius": [0.5, 1.5], "init": ["orthogonal"]}
SETTINGS = {"steps": 12, "seeds": 2}
CLI_SWEEP = ["sweep", "elman", "--vary", "hidden=2,3,4", "--vary", "spectral_radius=0.5,1.5"]
CLI_SWEEP += ["--init", "orthogonal", "--steps", "10", "--seeds", "2", "--quiet"]
SECONDS = 60  # bound on every wait for a cluster


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _assert_gone(pids) -> None:
    """Every process in ``pids`` has exited (or is at most a zombie awaiting its parent)."""
    psutil = pytest.importorskip("psutil")
    deadline = time.monotonic() + SECONDS
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {
            p
            for p in alive
            if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        }
        time.sleep(0.05)
    assert not alive, f"worker processes still running: {sorted(alive)}"


def _listening_hosts(pids) -> set[str]:
    psutil = pytest.importorskip("psutil")
    return {
        c.laddr.ip
        for p in pids
        for c in psutil.Process(p).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }


@pytest.fixture(scope="module")
def client():
    """A two-worker LocalCluster on 127.0.0.1 for the module; its workers end with it."""
    distributed = pytest.importorskip("distributed")
    with (
        local_cluster(2) as local,
        distributed.Client(local, set_as_default=False) as c,
    ):
        c.wait_for_workers(2, timeout=SECONDS)
        pids = list(c.run(os.getpid).values())
        yield c
    _assert_gone(pids)


@pytest.fixture(scope="module")
def serial():
    return sweep("elman", GRID, **SETTINGS)


def test_a_sweep_on_a_dask_executor_gives_the_serial_bytes_in_grid_order(client, serial):
    seen = []
    result = sweep(
        "elman",
        GRID,
        **SETTINGS,
        executor=client.get_executor(pure=False),
        on_point=lambda i, settings, rows: seen.append(i),
    )
    assert result.to_json() == serial.to_json()
    assert sorted(seen) == list(range(6))
    assert [(r["hidden_size"], r["spectral_radius"]) for r in result.rows] == [
        (2, 0.5), (2, 1.5), (3, 0.5), (3, 1.5), (4, 0.5), (4, 1.5)
    ]  # fmt: skip


@pytest.mark.parametrize("pool", [ThreadPoolExecutor, ProcessPoolExecutor])
def test_a_sweep_on_a_standard_executor_gives_the_serial_bytes(pool, serial):
    with pool(max_workers=2) as executor:
        result = sweep("elman", GRID, **SETTINGS, executor=executor)
        assert result.to_json() == serial.to_json()
        assert executor.submit(sum, [1, 2]).result() == 3  # the sweep leaves it running


def test_a_sweep_splits_its_tasks_so_every_worker_gets_some(serial):
    submitted = []

    class Counting(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            submitted.append(len(args[1]))
            return super().submit(fn, *args, **kwargs)

    grid = {"hidden_size": [3], "spectral_radius": [0.5, 0.7, 0.9, 1.1, 1.3]}
    with Counting(max_workers=2) as executor:
        result = sweep("elman", grid, **SETTINGS, executor=executor)
    assert submitted == [3, 2]  # one graph, one ensemble task split for two workers
    assert result.to_json() == sweep("elman", grid, **SETTINGS).to_json()


def test_an_executor_and_workers_together_are_refused():
    with ThreadPoolExecutor(1) as executor, pytest.raises(AnalysisError, match="not both"):
        sweep("elman", GRID, **SETTINGS, workers=2, executor=executor)
    with pytest.raises(AnalysisError, match=r"concurrent\.futures\.Executor"):
        sweep("elman", GRID, **SETTINGS, executor="tcp://127.0.0.1:8786")


def test_the_cli_sweeps_on_a_local_dask_cluster_with_the_serial_bytes(tmp_path):
    """In a process of its own, as a user runs it: the bytes of a serial run, each point
    streamed to --jsonl, nothing on stderr but the table."""
    pytest.importorskip("distributed")
    one = cli(*CLI_SWEEP, "--json", "-")
    log = tmp_path / "points.jsonl"
    command = [sys.executable, "-m", "unroll.cli.main", *CLI_SWEEP, "--json", "-"]
    dask = subprocess.run(
        [*command, "--dask", "local:2", "--jsonl", str(log)],
        capture_output=True,
        timeout=SECONDS * 2,
    )
    assert one.exit_code == 0 and dask.returncode == 0, dask.stderr
    assert dask.stdout == one.stdout_bytes
    assert len(json.loads(dask.stdout)["rows"]) == 6
    assert dask.stderr.decode() == one.stderr
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(line["point"] for line in lines[1:]) == list(range(6))


def test_the_cli_sweeps_on_a_running_scheduler(client):
    address = client.scheduler.address
    assert address.startswith("tcp://127.0.0.1:")
    one, dask = cli(*CLI_SWEEP, "--json", "-"), cli(*CLI_SWEEP, "--json", "-", "--dask", address)
    assert dask.exit_code == 0, dask.stderr
    assert dask.stdout_bytes == one.stdout_bytes
    assert len(client.scheduler_info()["workers"]) == 2  # a cluster it did not start stays up


def _flaky_on_workers(flag, **settings):
    """``standard_model`` that raises once on a Dask worker (the flag file marks it)."""
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:  # in the client, where the sweep plans its tasks
        return standard_model("elman", **settings)
    if not os.path.exists(flag):
        open(flag, "w").close()
        raise RuntimeError("a transient failure")
    return standard_model("elman", **settings)


def test_a_task_that_raises_once_is_retried(tmp_path, serial):
    pytest.importorskip("distributed")
    flag = tmp_path / "failed-once"
    with dask_executor("local:1") as executor:
        result = sweep(partial(_flaky_on_workers, str(flag)), GRID, **SETTINGS, executor=executor)
    assert flag.exists()
    assert result.to_json() == serial.to_json()


def _killing_its_worker(**settings):
    """A factory that ends the worker process it runs on (but plans in the client)."""
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:
        return standard_model("elman", **settings)
    os._exit(1)


def test_a_task_that_kills_every_worker_is_a_one_line_failure():
    dask = pytest.importorskip("dask")
    pytest.importorskip("distributed")
    from unroll.analysis.cluster import ClusterError

    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        pytest.raises(ClusterError, match=r"^Dask cluster local:1: .*") as caught,
        dask_executor("local:1") as executor,
    ):
        sweep(_killing_its_worker, GRID, **SETTINGS, executor=executor)
    assert caught.value.exit_code == 1 and "\n" not in str(caught.value)


def test_a_worker_killed_mid_sweep_loses_no_point(serial):
    distributed = pytest.importorskip("distributed")
    grid = {"hidden_size": [2, 3, 4, 5, 6, 7], "spectral_radius": [0.5, 1.5]}
    settings = {"steps": 400, "seeds": 4}  # tasks long enough to kill one while it runs
    expected = sweep("elman", grid, **settings).to_json()
    with (
        local_cluster(2) as local,
        distributed.Client(local, set_as_default=False) as c,
    ):
        c.wait_for_workers(2, timeout=SECONDS)
        pids = c.run(os.getpid)
        killed = []

        def kill_a_busy_worker(index, point, rows):
            if killed:
                return
            busy = sorted(w for w, keys in c.processing().items() if keys and w in pids)
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(pids[busy[0]])

        seen = []
        result = sweep(
            "elman",
            grid,
            **settings,
            executor=c.get_executor(pure=False, retries=2),
            on_point=lambda *a: (seen.append(a[0]), kill_a_busy_worker(*a)),
        )
        c.wait_for_workers(1, timeout=SECONDS)
        survivors = set(c.run(os.getpid).values())
        everyone = set(pids.values()) | survivors
    assert killed, "no worker was busy when the first point came back"
    assert killed[0] not in survivors
    assert sorted(seen) == list(range(12))  # each point once, the killed task's too
    assert result.to_json() == expected
    _assert_gone(everyone)


def test_dask_executor_closes_its_local_cluster():
    pytest.importorskip("distributed")
    with dask_executor("local:2") as executor:
        client = executor._client
        pids = list(client.run(os.getpid).values())
        assert len(pids) == 2
        assert all(a.startswith("tcp://127.0.0.1:") for a in client.scheduler_info()["workers"])
        assert _listening_hosts([os.getpid(), *pids]) == {"127.0.0.1"}  # loopback only
    assert client.status == "closed"
    _assert_gone(pids)


def test_without_dask_the_cli_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    result = cli(*CLI_SWEEP, "--dask", "local:2")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "Error: running on Dask needs the dask extra: pip install 'rnn-unroll[dask]'"
    ]


def test_an_unreachable_scheduler_is_a_one_line_failure(monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(cluster_module, "CONNECT_SECONDS", 1)
    result = cli(*CLI_SWEEP, "--dask", "tcp://127.0.0.1:9")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: Dask scheduler at tcp://127.0.0.1:9:")


@pytest.mark.parametrize("text", ["local:0", "local:two", "127.0.0.1:8786", ""])
def test_a_malformed_address_is_a_usage_error(text):
    result = cli(*CLI_SWEEP, "--dask", text)
    assert result.exit_code == 2
    assert "--dask" in result.stderr and "neither local:N" in result.stderr


def test_dask_and_workers_together_are_a_usage_error():
    result = cli(*CLI_SWEEP, "--dask", "local:2", "--workers", "2")
    assert result.exit_code == 2 and "give --workers or --dask, not both" in result.stderr


def test_addresses_read_as_clusters():
    assert parse_address(" local:3 ") == Cluster(workers=3)
    assert str(parse_address("tls://10.0.0.5:8786")) == "tls://10.0.0.5:8786"
    assert str(Cluster(workers=2)) == "local:2"
