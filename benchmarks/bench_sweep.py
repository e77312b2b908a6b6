"""A sweep of 20 spectral radii x 10 seeds against one hand-written batched numpy pass.

Usage: ``python benchmarks/bench_sweep.py [--repeats N]``

``unroll.sweep("elman", {"spectral_radius": 20 values}, steps=100, seeds=10)`` (hidden 32,
batch 1, the sweep's defaults) against ``strong.ensemble_elman_bptt`` over the same 200
models stacked into one ensemble: forward, backward and weight gradients of all models in
one pass with batched matmul, which is the least any sweep must compute. The sweep also
measures (per-step norms, contributions, theory, verdicts), so the ratio is an upper bound
on its overhead. Interleaved, minimum CPU time of the rounds, one BLAS thread. Then the
same models run one at a time through ``unroll.bptt`` and as one ensemble, checked equal,
and ``unroll.analyze`` of elman, lstm and gru at hidden 32, 100 steps, 10 seeds (420 ms
before issue 12's ensembles, on the development machine).
"""

import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import strong

import unroll

RADII = np.linspace(0.5, 1.5, 20).round(4).tolist()
SEEDS, STEPS, HIDDEN = 10, 100, 32


def batched_numpy_pass():
    """All 200 (radius, seed) models through the hand-written batched BPTT, once."""
    g = unroll.presets.elman(HIDDEN, HIDDEN)
    params = [unroll.init_params(g, seed=s, spectral_radius=r) for r in RADII for s in range(SEEDS)]
    stacked = {k: np.stack([p[k] for p in params]) for k in params[0]}
    xs = np.random.default_rng(0).standard_normal((STEPS, 1, HIDDEN))
    dhs = np.zeros((STEPS, 1, HIDDEN))
    dhs[-1] = 1.0
    return lambda: strong.ensemble_elman_bptt(stacked, xs, dhs)


def sweep_once():
    return unroll.sweep("elman", {"spectral_radius": RADII}, steps=STEPS, seeds=SEEDS)


def analyze_three():
    """``analyze`` of the three classic cells, 10 seeds each (one ensemble pass per cell)."""
    for model in ("elman:hidden=32", "lstm:hidden=32", "gru:hidden=32"):
        unroll.analyze(unroll.load_model(model), steps=STEPS, seeds=SEEDS)


def best_of(runners, repeats):
    best = dict.fromkeys(runners, float("inf"))
    for _ in range(repeats):
        for name, run in runners.items():
            t0 = time.process_time()
            run()
            best[name] = min(best[name], time.process_time() - t0)
    return best


def ensemble_equals_alone():
    """Largest relative difference between the ensemble's gradients and each model's alone."""
    g = unroll.presets.elman(HIDDEN, HIDDEN)
    u = unroll.unroll(g, steps=STEPS)
    params = [unroll.init_params(g, seed=s, spectral_radius=1.2) for s in range(SEEDS)]
    stacked = {k: np.stack([p[k] for p in params]) for k in params[0]}
    xs = {"x": np.random.default_rng(0).standard_normal((STEPS, 1, HIDDEN))}
    cot = {("h", STEPS - 1): np.ones((1, HIDDEN))}
    together = unroll.bptt(u, stacked, xs, cot)
    worst = 0.0
    for i, p in enumerate(params):
        alone = unroll.bptt(u, p, xs, cot)
        for k, v in alone.param_grads.items():
            diff = np.abs(together.param_grads[k][i] - v).max() / np.abs(v).max()
            worst = max(worst, float(diff))
        logs = together.log10_grad_norms("h")[i] - alone.log10_grad_norms("h")
        worst = max(worst, float(np.abs(logs).max()))
    return worst


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    runners = {"sweep": sweep_once, "numpy": batched_numpy_pass(), "analyze": analyze_three}
    for run in runners.values():  # warm up
        run()
    best = best_of(runners, args.repeats)
    print(f"{len(RADII)} radii x {SEEDS} seeds, elman hidden {HIDDEN}, {STEPS} steps, batch 1")
    print(f"  unroll.sweep                 {best['sweep'] * 1e3:8.1f} ms")
    print(f"  batched numpy, 200 models    {best['numpy'] * 1e3:8.1f} ms")
    print(f"  ratio                        {best['sweep'] / best['numpy']:8.2f}")
    print(f"  ensemble vs alone, worst relative difference: {ensemble_equals_alone():.1e}")
    print(f"analyze elman, lstm, gru, hidden {HIDDEN}, {STEPS} steps, {SEEDS} seeds")
    print(f"  unroll.analyze x 3               {best['analyze'] * 1e3:8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
