"""The README's training example at its documented size: time and peak memory.

Usage: ``python benchmarks/bench_readme_training.py [--iterations N]``

``unroll.train(unroll.presets.lstm(2, 32), adding_problem(length=100, batch=256), 3000
iterations, lr 0.01)`` with the cyclic garbage collector off, as the README writes it;
prints the final loss, CPU seconds and the peak resident set before and after, so a leak
(memory growing with iterations) shows.
"""

import argparse
import gc
import os
import resource
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import unroll


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=3000)
    args = p.parse_args(argv)
    gc.disable()
    task = unroll.tasks.adding_problem(length=100, batch=256, seed=0)
    before = peak_mib()
    t0 = time.process_time()
    lstm = unroll.presets.lstm(2, 32)
    quarter = unroll.train(lstm, task, iterations=args.iterations // 4, lr=0.01)
    at_quarter = peak_mib()
    h = unroll.train(unroll.presets.lstm(2, 32), task, iterations=args.iterations, lr=0.01)
    seconds = time.process_time() - t0
    final, early = h.losses[-1], quarter.losses[-1]
    print(f"{args.iterations} iterations: final MSE {final:.5f} (a quarter: {early:.5f})")
    print(
        f"CPU {seconds:.0f} s for both runs; peak RSS {before:.0f} MiB before, "
        f"{at_quarter:.0f} after {args.iterations // 4} iterations, {peak_mib():.0f} after "
        f"{args.iterations} more (gc off)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
