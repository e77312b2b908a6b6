"""Validation, unrolling and hostile-file benchmarks of issue 13 (not timed tests).

Prints seconds for validating (and unrolling 2 steps of) a 100,000-node chain and a
100,000-node ring, and the time and peak memory of refusing a 2 kB hostile ``.pt``
(run in a child process, so its peak RSS is its own).

    .venv/bin/python benchmarks/bench_validate.py [--nodes 100000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import unroll


def chain(n: int) -> unroll.Graph:
    """x -> h0 -> h1 -> ... with a delay-1 loop on every layer."""
    g = unroll.Graph("chain")
    g.input("x", 1)
    prev = "x"
    for i in range(n - 1):
        name = g.layer(f"h{i}", 1, activation="tanh")
        g.edge(prev, name, weight=f"W{i}")
        g.edge(name, name, delay=1, weight=f"U{i}")
        prev = name
    return g


def ring(n: int) -> unroll.Graph:
    """One cycle through every layer, declared in reverse, closed by one delay-1 edge."""
    g = unroll.Graph("ring")
    g.input("x", 1)
    names = [g.layer(f"h{i}", 1) for i in range(n - 1)]
    g.edge("x", names[0], weight="W_in")
    for i in range(len(names) - 1, 0, -1):
        g.edge(names[i - 1], names[i])
    g.edge(names[-1], names[0], delay=1, weight="W_back")
    return g


def timed(label: str, fn) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"{label:<42}{seconds:8.2f} s")
    return seconds


HOSTILE = """
import resource, sys, time
start = time.perf_counter()
from unroll.models import load_model
try:
    load_model(sys.argv[1])
    print("ACCEPTED")
except Exception as e:
    print(type(e).__name__, str(e)[:120])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{time.perf_counter() - start:.2f} {peak:.0f}")
"""


def hostile_pt(folder: Path) -> Path | None:
    """A state_dict of expanded tensors declaring an LSTM of hidden size 20,000."""
    try:
        import torch
    except ImportError:
        return None
    h = 20_000
    state = {
        "weight_ih_l0": torch.zeros(1).expand(4 * h, 3),
        "weight_hh_l0": torch.zeros(1).expand(4 * h, h),
        "bias_ih_l0": torch.zeros(1).expand(4 * h),
        "bias_hh_l0": torch.zeros(1).expand(4 * h),
    }
    path = folder / "hostile.pt"
    torch.save(state, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    n = parser.parse_args().nodes
    for build in (chain, ring):
        g = build(n)
        timed(f"validate {build.__name__} of {n:,} nodes", g.validate)
        timed(f"unroll {build.__name__} over 2 steps", lambda g=g: unroll.unroll(g, 2))
    with tempfile.TemporaryDirectory() as tmp:
        path = hostile_pt(Path(tmp))
        if path is None:
            print("hostile .pt: skipped (no torch)")
            return
        out = subprocess.run(
            [sys.executable, "-c", HOSTILE, str(path)], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        seconds, peak = out[-1].split()
        print(f"hostile .pt ({path.stat().st_size:,} bytes): {out[0]}")
        print(f"{'  refused in':<42}{float(seconds):8.2f} s, peak RSS {peak} MB")


if __name__ == "__main__":
    main()
