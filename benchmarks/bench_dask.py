"""A 200-point sweep through Dask against the same sweep run locally, and Dask's cost per task.

Usage: ``python benchmarks/bench_dask.py [--workers N] [--repeats N]`` (needs the dask
extra: ``pip install 'rnn-unroll[dask]'``)

The sweep: Elman cells of hidden size 16, 32, 64 and 128 x 50 spectral radii (200 points),
300 steps, 5 seeds a point. It runs serially, on a local process pool
(``workers=N``) and on a ``distributed.LocalCluster`` of N one-thread worker processes on
127.0.0.1 (``executor=``), each checked to give the serial JSON byte for byte. Times are
wall-clock, the best of interleaved rounds, one BLAS thread per process; the cluster is
started once (its start-up time is reported on its own). The overhead per task is the time to
run tasks that do nothing (``run_points`` over no points) through each executor,
divided by their number.
"""

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, wait

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

import unroll
from unroll.analysis.cluster import dask_executor
from unroll.analysis.sweep import run_points

GRID = {"hidden_size": [16, 32, 64, 128], "spectral_radius": np.linspace(0.5, 1.5, 50).tolist()}
STEPS, SEEDS = 300, 5
EMPTY_TASKS = 200


def sweep_json(**how) -> str:
    return unroll.sweep("elman", GRID, steps=STEPS, seeds=SEEDS, **how).to_json()


def timed(run):
    t0 = time.perf_counter()
    out = run()
    return time.perf_counter() - t0, out


def per_task_seconds(executor) -> float:
    """Wall time per task of tasks that analyze no points, all submitted at once."""
    wait([executor.submit(run_points, "elman", [], STEPS, [0], {}) for _ in range(8)])
    seconds, _ = timed(
        lambda: wait(
            [executor.submit(run_points, "elman", [], STEPS, [0], {}) for _ in range(EMPTY_TASKS)]
        )
    )
    return seconds / EMPTY_TASKS


def interleaved(runners, repeats):
    """The best wall time of each runner over ``repeats`` rounds (one run of each per
    round, so a busy spell on a shared machine hits them all), and its first output."""
    times = {name: float("inf") for name in runners}
    outputs = {}
    for _ in range(repeats):
        for name, run in runners.items():
            seconds, outputs[name] = timed(run)
            times[name] = min(times[name], seconds)
    return times, outputs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    points = len(GRID["hidden_size"]) * len(GRID["spectral_radius"])
    print(f"{points} points x {SEEDS} seeds, {STEPS} steps, {args.workers} workers")
    t0 = time.perf_counter()
    with dask_executor(f"local:{args.workers}") as executor:
        executor.submit(sum, [1]).result()
        start_s = time.perf_counter() - t0
        times, out = interleaved(
            {
                "serial": sweep_json,
                "local processes (workers=N)": lambda: sweep_json(workers=args.workers),
                "dask LocalCluster": lambda: sweep_json(executor=executor),
            },
            args.repeats,
        )
        dask_task = per_task_seconds(executor)
    with ProcessPoolExecutor(args.workers) as pool:
        pool_task = per_task_seconds(pool)
    for name, seconds in times.items():
        print(f"{name:28s}{seconds:7.2f} s")
    print(f"{'dask cluster start-up':28s}{start_s:7.2f} s (once, not in the above)")
    serial_s, local_s, dask_s = times.values()
    serial, local, dask = out.values()
    same = serial == local == dask
    print(f"same JSON bytes: {same}")
    print(f"dask / local processes: {dask_s / local_s:.2f}x (acceptance: at most 1.5x)")
    print(f"dask / serial:          {dask_s / serial_s:.2f}x")
    print(
        f"overhead per task: dask {dask_task * 1e3:.2f} ms, "
        f"process pool {pool_task * 1e3:.2f} ms ({EMPTY_TASKS} empty tasks)"
    )
    return 0 if same and dask_s <= 1.5 * local_s else 1


if __name__ == "__main__":
    sys.exit(main())
