"""Time ``unroll.bptt`` against hand-written numpy BPTT (naive and strong) and torch.nn.

Usage: ``python benchmarks/bench_bptt.py [--quick] [--repeats N] [--steps T]``

For each case (Elman / LSTM at three sizes) and each cotangent pattern (dL/dh at the
last step only, or at every step) unroll (twice: the parameter gradients alone, as the
baselines give them, and keeping every step's state gradient too), the strong and naive
hand-written numpy and torch run on the same weights and inputs, interleaved in one
process: one warm-up call each, then ``--repeats`` rounds of one call each, keeping the
minimum CPU time (``time.process_time``). numpy's BLAS and
torch run on one thread, so the ratios do not depend on what else the machine runs.
Only the forward+backward call is timed; building the unrolled graph is setup, reported
separately. Every gradient is checked against the strong hand-written one. Then the first
call (unroll + compile + run) against a warm run at T = 5e4.

Every call into the ``unroll`` API is in :func:`unroll_runner` (the import is in
``unroll_import.py``). If ``unroll`` cannot be imported or lacks that API, numpy and torch
are still timed; if it fails on one case, that case's unroll columns show '-'.
"""

import argparse
import math
import os
import random
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy starts its BLAS
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import strong
import torch
from handwritten import (
    ELMAN_KEYS,
    LSTM_KEYS,
    elman_bptt,
    lstm_bptt,
    params_to_torch,
    torch_bptt,
)
from unroll_import import UNROLL_ERRORS, load_unroll

torch.set_num_threads(1)

# (kind, hidden H, batch B, steps T); the input size I is H.
CASES = [
    ("elman", 128, 32, 1000),
    ("lstm", 128, 32, 1000),
    ("elman", 32, 16, 1000),
    ("lstm", 32, 16, 1000),
    ("elman", 8, 1, 1000),
    ("lstm", 8, 1, 1000),
]
NUMPY_FNS = {"elman": elman_bptt, "lstm": lstm_bptt}
STRONG_FNS = {"elman": strong.elman_bptt, "lstm": strong.lstm_bptt}
PARAM_KEYS = {"elman": ELMAN_KEYS, "lstm": LSTM_KEYS}


def parse_args(argv=None):
    """Command-line options; ``--quick`` shortens sequences and repeats for a smoke run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="T=100 and 2 repeats")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5)")
    p.add_argument("--steps", type=int, default=None, help="override T for every case")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    if args.steps is None and args.quick:
        args.steps = 100
    return args


def unroll_runner(unroll, kind, xs, dhs, last_only):
    """Set up ``unroll.bptt`` for one case: return (params, run, states, build_seconds).

    ``run()`` does one forward+backward and returns the parameter gradients, as the
    baselines do (``state_grads=False``); ``states()`` the same keeping every step's
    state gradient too (the default, what analysis reads). ``params`` come from
    ``unroll.init_params`` and are reused for numpy and torch.
    """
    steps, _, input_size = xs.shape
    hidden = dhs.shape[2]
    preset = {"elman": unroll.presets.elman, "lstm": unroll.presets.lstm}[kind]
    t0 = time.perf_counter()
    g = preset(input_size=input_size, hidden_size=hidden)
    u = unroll.unroll(g, steps=steps)
    build_seconds = time.perf_counter() - t0
    params = unroll.init_params(g, seed=0)
    # dL/dh at the last step is one instance; at every step, the whole (T, B, H) sequence
    cotangents = {("h", steps - 1): dhs[-1]} if last_only else {"h": dhs}

    def run(state_grads=False):
        return unroll.bptt(
            u, params, {"x": xs}, cotangents, input_grads=False, state_grads=state_grads
        ).param_grads

    return params, run, lambda: run(state_grads=True), build_seconds


def default_params(kind, input_size, hidden, seed=0):
    """torch-style U(-1/sqrt(H), 1/sqrt(H)) weights, used when ``unroll`` is unavailable."""
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(hidden)
    shapes = {
        "W_i": (hidden, input_size),
        "W_h": (hidden, hidden),
        "b_i": (hidden,),
        "b_h": (hidden,),
    }
    return {k: rng.uniform(-bound, bound, shapes[k[:3]]) for k in PARAM_KEYS[kind]}


def torch_module(kind, input_size, hidden, params):
    """A float64 torch.nn.RNN (tanh) or torch.nn.LSTM holding ``params``."""
    cls = {"elman": torch.nn.RNN, "lstm": torch.nn.LSTM}[kind]
    module = cls(input_size, hidden).double()
    params_to_torch(module, params)
    return module


def time_interleaved(runners, repeats):
    """Warm up each runner once, then time ``repeats`` interleaved rounds.

    Each round runs them in a fresh (seeded) random order, so no runner always follows
    the same one (a rotation keeps each after the same neighbour: unroll, always after
    torch.nn, took 1.2x the time of the same call after another at hidden 8). Returns
    ({name: min seconds}, {name: warm-up result}); a runner that raises during warm-up
    is reported and dropped.
    """
    results, best = {}, {}
    for name, run in list(runners.items()):
        try:
            results[name] = run()
        except UNROLL_ERRORS as exc:
            print(f"NOTE: {name} failed during warm-up: {type(exc).__name__}: {exc}")
            del runners[name]
        best[name] = float("inf") if name in runners else float("nan")
    order = list(runners.items())
    shuffle = random.Random(0).shuffle  # seeded: the same orders every run
    for _ in range(repeats):
        shuffle(order)
        for name, run in order:
            t0 = time.process_time()
            run()
            best[name] = min(best[name], time.process_time() - t0)
    return best, results


def max_rel_err(grads, ref, label):
    """Largest over keys of max|a - b| / max|b|; inf (with a note) on missing keys/shapes."""
    missing = sorted(set(ref) - set(grads))
    bad_shapes = [k for k in ref if k in grads and np.shape(grads[k]) != ref[k].shape]
    if missing or bad_shapes:
        print(f"NOTE: {label} gradients: missing {missing}, wrong shape {bad_shapes}")
        return float("inf")
    worst = 0.0
    for k, b in ref.items():
        a = np.asarray(grads[k], dtype=np.float64)
        worst = max(worst, float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)))
    return worst


def run_case(unroll, kind, hidden, batch, steps, last_only, repeats):
    """Benchmark one (case, cotangent pattern); return a dict describing the row."""
    rng = np.random.default_rng(1)
    input_size = hidden
    xs = rng.standard_normal((steps, batch, input_size))
    dhs = rng.standard_normal((steps, batch, hidden))
    if last_only:
        dhs[:-1] = 0.0
    runners, build = {}, float("nan")
    params = None
    if unroll is not None:
        try:
            params, runners["unroll"], runners["states"], build = unroll_runner(
                unroll, kind, xs, dhs, last_only
            )
        except UNROLL_ERRORS as exc:
            print(f"NOTE: unroll setup failed for {kind}: {type(exc).__name__}: {exc}")
    if params is None:
        params = default_params(kind, input_size, hidden)
    module = torch_module(kind, input_size, hidden, params)
    runners["numpy"] = lambda: NUMPY_FNS[kind](params, xs, dhs)[1]
    runners["strong"] = lambda: STRONG_FNS[kind](params, xs, dhs)[1]
    runners["torch"] = lambda: torch_bptt(module, xs, dhs)[1]
    best, grads = time_interleaved(runners, repeats)
    err = {
        name: max_rel_err(grads[name], grads["strong"], f"{name} {kind}")
        for name in ("unroll", "states", "torch", "numpy")
        if name in grads
    }
    return {
        "case": f"{kind} H={hidden} B={batch} T={steps}",
        "dh": "last" if last_only else "all",
        "ms": {k: 1e3 * v for k, v in best.items()},
        "err_unroll": max((err[k] for k in ("unroll", "states") if k in err), default=None),
        "err_torch": err.get("torch"),
        "err_numpy": err.get("numpy"),
        "build_ms": 1e3 * build,
    }


def fmt(x, spec):
    """Format a number, or a right-aligned '-' when it is missing / not a number."""
    if x is None or math.isnan(x):
        return format("-", ">" + spec.split(".")[0])
    return format(x, spec)


def print_table(rows):
    """Print the timing table and the gradient-agreement columns."""
    head = (
        f"{'case':26s} {'dL/dh':5s} {'unroll ms':>10s} {'strong ms':>10s} {'naive ms':>9s} "
        f"{'torch ms':>9s} {'u/strong':>8s} {'u/naive':>8s} {'u/torch':>8s} "
        f"{'+states':>8s} {'err unroll':>10s} {'err torch':>10s}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        ms = r["ms"]
        u, s, n, t = ms.get("unroll"), ms.get("strong"), ms.get("numpy"), ms.get("torch")
        kept = ms.get("states")
        print(
            f"{r['case']:26s} {r['dh']:5s} {fmt(u, '10.1f')} {fmt(s, '10.1f')} {fmt(n, '9.1f')} "
            f"{fmt(t, '9.1f')} {fmt(u and u / s, '8.2f')} {fmt(u and u / n, '8.2f')} "
            f"{fmt(u and u / t, '8.2f')} {fmt(kept and kept / s, '8.2f')} "
            f"{fmt(r['err_unroll'], '10.1e')} {fmt(r['err_torch'], '10.1e')}"
        )
    print("\nunroll: bptt(..., state_grads=False), the parameter gradients as the baselines")
    print("give them; +states: the default, every step's state gradient kept too (its time")
    print("over the strong baseline's).")
    print("err = max over parameters of max|g - g_strong| / max|g_strong| (the strong")
    print("hand-written numpy is the reference). Times: minimum CPU time over the rounds.")
    if not all(math.isnan(r["build_ms"]) for r in rows):
        print("unroll.presets + unroll.unroll setup time (not included above):")
        for r in rows:
            print(f"  {r['case']:26s} dL/dh {r['dh']:4s} {fmt(r['build_ms'], '8.1f')} ms")


def first_call(unroll, steps=50_000, hidden=32):
    """CPU seconds of a first call (unroll + compile + run) and of the best warm run."""
    g = unroll.presets.lstm(hidden, hidden)
    params = unroll.init_params(g, seed=0)
    xs = {"x": np.random.default_rng(1).standard_normal((steps, 1, hidden))}
    cot = {("h", steps - 1): np.ones((1, hidden))}
    t0 = time.process_time()
    u = unroll.unroll(g, steps=steps)
    unroll.bptt(u, params, xs, cot)
    first = time.process_time() - t0
    warm = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        unroll.bptt(u, params, xs, cot)
        warm = min(warm, time.process_time() - t0)
    return first, warm


def print_environment():
    """Versions and thread counts, so timings can be compared across machines."""
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"].get("name", "?")
    env = {k: os.environ.get(k, "unset") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    python = sys.version.split()[0]
    print(f"python {python}, numpy {np.__version__} ({blas}), torch {torch.__version__}")
    print(
        f"cpus {os.cpu_count()}, torch threads {torch.get_num_threads()}, numpy BLAS threads "
        f"default (= cpus unless set) {env}\n"
    )


def main(argv=None):
    """Run every case with both cotangent patterns and print the table."""
    args = parse_args(argv)
    print_environment()
    unroll = load_unroll()
    if unroll is None:
        print("      Timing only hand-written numpy vs torch autograd.\n")
    rows = []
    for kind, hidden, batch, steps in CASES:
        for last_only in (True, False):
            steps = args.steps or steps
            rows.append(run_case(unroll, kind, hidden, batch, steps, last_only, args.repeats))
    print_table(rows)
    if unroll is not None:
        first, warm = first_call(unroll, steps=5_000 if args.quick else 50_000)
        print(f"\nLSTM H=32 B=1: first call {first:.2f} s, warm {warm:.2f} s ({first / warm:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
