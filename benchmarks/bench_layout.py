"""Time the strong baseline with its recurrent weights row-major and column-major, beside unroll.

Usage: ``python benchmarks/bench_layout.py [--repeats N] [--steps T]``

``unroll`` hands BLAS a large float64 weight column-major in the product at each step (the
memory of its transpose: OpenBLAS packs it faster, with the same bits). The strong baseline
of ``bench_bptt.py`` keeps its weights row-major, as a numpy programmer writes it; this
benchmark gives it the same layout (``strong.*_bptt(..., column_major=True)``), so the
README can say how much of unroll's lead over it is that layout. Hidden 128, batch 32, the
loss at every step; one BLAS thread, interleaved rounds in a seeded random order, minimum
CPU time, as ``bench_bptt.py`` times them. The two layouts' gradients must agree bit for bit.
"""

import argparse
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy starts its BLAS
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from bench_bptt import STRONG_FNS, max_rel_err, time_interleaved, unroll_runner
from unroll_import import load_unroll

CASES = [("elman", 128, 32), ("lstm", 128, 32)]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=9, help="timed rounds (default 9)")
    p.add_argument("--steps", type=int, default=1000, help="sequence length (default 1000)")
    return p.parse_args(argv)


def run_case(unroll, kind, hidden, batch, steps, repeats):
    """Time one case; print its row. Returns the two layouts' largest gradient difference."""
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(steps, batch, hidden))
    dhs = rng.normal(size=(steps, batch, hidden))
    params, run, _, _ = unroll_runner(unroll, kind, xs, dhs, last_only=False)
    fn = STRONG_FNS[kind]
    runners = {
        "row-major": lambda: fn(params, xs, dhs)[1],
        "column-major": lambda: fn(params, xs, dhs, column_major=True)[1],
        "unroll": run,
    }
    best, results = time_interleaved(runners, repeats)
    rows, cols = results["row-major"], results["column-major"]
    differ = max(float(np.max(np.abs(rows[k] - cols[k]))) for k in rows)
    err = max_rel_err(results["unroll"], rows, "unroll")
    ms = {k: v * 1e3 for k, v in best.items()}
    ratio = {k: best[k] / best["row-major"] for k in best}
    print(
        f"{kind:5s} H={hidden} B={batch} T={steps}"
        f"  strong row-major {ms['row-major']:7.1f} ms"
        f"  column-major {ms['column-major']:7.1f} ms ({ratio['column-major']:.2f}x)"
        f"  unroll {ms['unroll']:7.1f} ms: {ratio['unroll']:.2f}x row-major,"
        f" {best['unroll'] / best['column-major']:.2f}x column-major  (err {err:.1e})"
    )
    return differ


def main(argv=None):
    args = parse_args(argv)
    unroll = load_unroll()
    if unroll is None:
        sys.exit("bench_layout needs unroll: it times unroll beside the two layouts")
    worst = max(run_case(unroll, *case, args.steps, args.repeats) for case in CASES)
    print(f"row-major vs column-major strong gradients, largest difference: {worst:.1e}")
    if worst != 0.0:
        print("NOTE: the two layouts' gradients differ: this BLAS rounds them differently")


if __name__ == "__main__":
    main()
