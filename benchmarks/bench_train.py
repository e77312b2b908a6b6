"""Time one training iteration of ``unroll.train`` against the same loop in torch.

Usage: ``python benchmarks/bench_train.py [--quick] [--iterations N] [--threads N]``

Each case trains a recurrent net with a linear readout on the adding problem (Adam,
batch B, T steps, full BPTT, the loss at the last step) for ``--iterations`` iterations:
``unroll.train`` with the matching preset, then a ``torch.nn.LSTM``/``torch.nn.RNN`` +
``torch.nn.Linear`` loop in float64 and in float32, interleaved in one process. Both
sides draw their minibatches with :meth:`unroll.tasks.Task.sample` (the same numpy
generator), so data generation is part of every iteration. The wall time of each
iteration is taken between consecutive iterations (``unroll.train``'s progress callback;
its probe runs before the first and after the last iteration are excluded), after one
warm-up iteration each; the median over iterations is reported, which keeps a burst of
load from other processes out of the figure. The ratio is unroll's time over torch's.
"""

import argparse
import os
import platform
import time

import numpy as np

import unroll
from unroll.tasks import adding_problem
from unroll.training import train

# (cell, hidden H, batch B, steps T)
CASES = [
    ("lstm", 32, 32, 50),
    ("lstm", 32, 32, 100),
    ("lstm", 128, 32, 50),
    ("lstm", 128, 32, 100),
    ("elman", 32, 32, 50),
    ("elman", 32, 32, 100),
]
PRESETS = {"lstm": unroll.presets.lstm, "elman": unroll.presets.elman}


def parse_args(argv=None):
    """Command-line options; ``--quick`` runs fewer iterations for a smoke run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="6 iterations per case")
    p.add_argument("--iterations", type=int, default=None, help="timed iterations (default 30)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = p.parse_args(argv)
    if args.iterations is None:
        args.iterations = 6 if args.quick else 30
    return args


def time_unroll(cell, hidden, batch, steps, iterations):
    """Median seconds per iteration of ``unroll.train``."""
    task = adding_problem(steps, batch, seed=0)
    graph = PRESETS[cell](2, hidden)
    stamps = []
    train(graph, task, 1, lr=1e-3)  # warm-up: compile, caches
    train(
        graph,
        task,
        iterations + 1,
        lr=1e-3,
        record_every=iterations + 2,
        progress=lambda done, loss: stamps.append(time.perf_counter()),
    )
    return float(np.median(np.diff(stamps)))


def time_torch(torch, cell, hidden, batch, steps, iterations, dtype):
    """Median seconds per iteration of the same training loop in torch."""
    torch.manual_seed(0)
    kind = {"lstm": torch.nn.LSTM, "elman": torch.nn.RNN}[cell]
    net = kind(2, hidden).to(dtype)
    readout = torch.nn.Linear(hidden, 1).to(dtype)
    params = [*net.parameters(), *readout.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)
    task = adding_problem(steps, batch, seed=0)
    rng = np.random.default_rng([0, 1])

    def iteration():
        sample = task.sample(batch, rng)
        xs = torch.from_numpy(sample.inputs).to(dtype)
        target = torch.from_numpy(sample.targets[0]).to(dtype)
        out, _ = net(xs)
        loss = torch.mean((readout(out[-1]) - target) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()

    iteration()  # warm-up
    stamps = [time.perf_counter()]
    for _ in range(iterations):
        iteration()
        stamps.append(time.perf_counter())
    return float(np.median(np.diff(stamps)))


def main(argv=None):
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}"
        f" ({torch.get_num_threads()} threads), {os.cpu_count()} cpus, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; "
        f"median of {args.iterations} iterations per case, Adam, adding problem"
    )
    header = (
        f"{'case':<24}{'unroll ms/it':>14}{'torch f64':>12}{'torch f32':>12}"
        f"{'ratio f64':>11}{'ratio f32':>11}"
    )
    print(header)
    print("-" * len(header))
    for cell, hidden, batch, steps in CASES:
        ours = time_unroll(cell, hidden, batch, steps, args.iterations)
        f64 = time_torch(torch, cell, hidden, batch, steps, args.iterations, torch.float64)
        f32 = time_torch(torch, cell, hidden, batch, steps, args.iterations, torch.float32)
        name = f"{cell} H={hidden} B={batch} T={steps}"
        print(
            f"{name:<24}{ours * 1e3:>14.2f}{f64 * 1e3:>12.2f}{f32 * 1e3:>12.2f}"
            f"{ours / f64:>11.2f}{ours / f32:>11.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
