"""Peak memory of one BPTT run per step, next to the minimum BPTT must store.

Usage: ``python benchmarks/bench_memory.py [--steps T ...] [--hidden H] [--quick]``

An LSTM (hidden and input size H, default 32), batch 1, a cotangent dL/dh at the last step,
no input gradients: what ``analyze`` runs. Each configuration runs in a fresh process:
``tracemalloc``'s peak (numpy's arrays are traced) during ``unroll.bptt`` divided by T,
the minimum BPTT must store per step (``unroll.engine.minimum_bytes``: the gates, c and
h), their ratio, the peak resident set growth and the time. Full storage at T = 1e5 (with
every state gradient kept, the default, and without: ``state_grads=False``, a training
step's), and ``checkpoint="sqrt"`` at 1e5 and 1e6 steps by default.
"""

import argparse
import json
import os
import subprocess
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

CHILD = r"""
import json, resource, sys, time, tracemalloc
import numpy as np
import unroll
steps, hidden, checkpoint = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
states = sys.argv[4] == "states"
checkpoint = None if checkpoint == "none" else checkpoint
g = unroll.presets.lstm(hidden, hidden)
u = unroll.unroll(g, steps=steps, max_nodes=None)
p = unroll.init_params(g, seed=0)
rng = np.random.default_rng(1)
xs = {"x": rng.standard_normal((steps, 1, hidden))}
cot = {("h", steps - 1): rng.standard_normal((1, hidden))}
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
t0 = time.process_time()
r = unroll.bptt(
    u, p, xs, cot, input_grads=False, max_memory=None, checkpoint=checkpoint, state_grads=states
)
seconds = time.process_time() - t0
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) * 1024
print(json.dumps({"peak": peak, "rss": grown, "seconds": seconds,
                  "minimum": unroll.engine.minimum_bytes(u),
                  "finite": bool(np.isfinite(r.log10_grad_norms("h")).all()) if states
                  else all(np.isfinite(v).all() for v in r.param_grads.values())}))
"""


def run(steps: int, hidden: int, checkpoint: str, states: bool = True) -> dict:
    """One configuration in a fresh process; its measurements."""
    kept = "states" if states else "params"
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(steps), str(hidden), checkpoint, kept],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def main(argv=None):
    """Run each configuration and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--quick", action="store_true", help="1e4 steps only")
    args = p.parse_args(argv)
    configs = [
        (100_000, "none", True),
        (100_000, "none", False),
        (100_000, "sqrt", True),
        (1_000_000, "sqrt", True),
    ]
    if args.quick:
        configs = [(10_000, "none", True), (10_000, "none", False), (10_000, "sqrt", True)]
    print(f"LSTM hidden {args.hidden}, input {args.hidden}, batch 1, dL/dh at the last step")
    head = f"{'steps':>9s} {'checkpoint':>10s} {'state grads':>11s} {'peak B/step':>12s}"
    head += f" {'minimum B/step':>15s}"
    head += f" {'ratio':>6s} {'RSS MiB':>8s} {'CPU s':>7s}"
    print(head)
    for steps, checkpoint, states in configs:
        m = run(steps, args.hidden, checkpoint, states)
        per_step, minimum = m["peak"] / steps, m["minimum"] / steps
        kept = "kept" if states else "not kept"
        print(
            f"{steps:>9,d} {checkpoint:>10s} {kept:>11s} {per_step:12.0f} {minimum:15.0f} "
            f"{per_step / minimum:6.2f} {m['rss'] / 2**20:8.0f} {m['seconds']:7.1f}"
            + ("" if m["finite"] else "  (non-finite norms!)")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
