"""Long-sequence run: wall time and peak memory of one LSTM BPTT over many steps.

Usage: ``python benchmarks/bench_long.py [--steps N] [--hidden H] [--baseline numpy]``

Defaults: LSTM with hidden size 32 (input size 32), batch 1, 100000 steps, a cotangent
dL/dh at the last step only. Reports the setup time (``unroll.presets.lstm`` +
``unroll.unroll``), the forward+backward time of ``unroll.bptt`` and the peak resident
memory (``resource.getrusage(...).ru_maxrss``) before and after. ``--baseline numpy``
runs the hand-written numpy BPTT instead, for comparison. torch is never imported, so
the memory figures are not inflated by it.
"""

import argparse
import resource
import sys
import time

import numpy as np
from handwritten import lstm_bptt
from unroll_import import load_unroll


def parse_args(argv=None):
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100_000, help="sequence length T")
    p.add_argument("--hidden", type=int, default=32, help="hidden (and input) size")
    p.add_argument("--baseline", choices=["numpy"], help="run the hand-written baseline")
    return p.parse_args(argv)


def peak_rss_mib():
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


def run_unroll(unroll, xs, dh_last):
    """Build and run ``unroll.bptt``; return (grads, setup seconds, bptt seconds)."""
    steps, _, input_size = xs.shape
    t0 = time.perf_counter()
    g = unroll.presets.lstm(input_size=input_size, hidden_size=dh_last.shape[1])
    u = unroll.unroll(g, steps=steps)
    params = unroll.init_params(g, seed=0)
    t1 = time.perf_counter()
    r = unroll.bptt(u, params, {"x": xs}, {("h", steps - 1): dh_last})
    return r.param_grads, t1 - t0, time.perf_counter() - t1


def run_numpy(xs, dh_last, seed=0):
    """Run the hand-written LSTM BPTT; return (grads, setup seconds, bptt seconds)."""
    steps, batch, input_size = xs.shape
    hidden = dh_last.shape[1]
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(hidden)
    t0 = time.perf_counter()
    params = {}
    for gate in "ifgo":
        params[f"W_i{gate}"] = rng.uniform(-bound, bound, (hidden, input_size))
        params[f"W_h{gate}"] = rng.uniform(-bound, bound, (hidden, hidden))
        params[f"b_i{gate}"] = rng.uniform(-bound, bound, hidden)
        params[f"b_h{gate}"] = rng.uniform(-bound, bound, hidden)
    dhs = np.zeros((steps, batch, hidden))  # the baseline takes a dense cotangent array
    dhs[-1] = dh_last
    t1 = time.perf_counter()
    _, grads = lstm_bptt(params, xs, dhs)
    return grads, t1 - t0, time.perf_counter() - t1


def main(argv=None):
    """Run once and print the report; exit 1 if unroll is needed but unusable."""
    args = parse_args(argv)
    unroll = None if args.baseline else load_unroll()
    if unroll is None and not args.baseline:
        print("unroll is not usable yet; try --baseline numpy for the hand-written LSTM.")
        return 1
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((args.steps, 1, args.hidden))
    dh_last = rng.standard_normal((1, args.hidden))
    rss_before = peak_rss_mib()
    if unroll is None:
        grads, setup, run = run_numpy(xs, dh_last)
    else:
        grads, setup, run = run_unroll(unroll, xs, dh_last)
    rss_after = peak_rss_mib()
    finite = all(np.isfinite(np.asarray(v)).all() for v in grads.values())
    name = "hand-written numpy" if unroll is None else "unroll"
    print(f"{name} LSTM, hidden {args.hidden}, input {args.hidden}, batch 1, {args.steps} steps")
    print(f"  setup (graph + params) {setup:9.2f} s")
    print(f"  forward+backward       {run:9.2f} s  ({1e6 * run / args.steps:.1f} us/step)")
    print(f"  peak RSS before run    {rss_before:9.1f} MiB")
    print(f"  peak RSS after run     {rss_after:9.1f} MiB  (+{rss_after - rss_before:.1f} MiB)")
    print(f"  gradients: {len(grads)} arrays, all finite: {finite}")
    return 0 if finite else 2


if __name__ == "__main__":
    sys.exit(main())
