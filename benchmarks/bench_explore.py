"""The explorer's budget: a 3-model, 100-step comparison at hidden 32 in headless chromium.

Usage: ``python benchmarks/bench_explore.py [--steps N] [--hidden H] [--repeat R]``

Builds ``unroll.explore("elman:hidden=H", compare=["lstm:hidden=H", "gru:hidden=H"],
steps=N)``, saves it, and reports the build time, the file size, and, over R loads from
file:// in Debian's chromium (driven by playwright), the time from navigation start to
the page being interactive (its script has wired every node copy, the plot and the
controls: ``window.unrollExplorer.readyAt``), and how long the first hover takes to show
a tooltip. Exits 1 when the page is 2 MB or more, or takes 1 s or more to be interactive.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from unroll_import import load_unroll

SIZE_BUDGET = 2 * 1024 * 1024
READY_BUDGET_MS = 1000.0


def parse_args(argv=None):
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100, help="time steps of each run")
    p.add_argument("--hidden", type=int, default=32, help="hidden size of each model")
    p.add_argument("--repeat", type=int, default=5, help="page loads to time")
    return p.parse_args(argv)


def build(unroll, steps, hidden, folder):
    """Build and save the page; return (path, seconds)."""
    t0 = time.perf_counter()
    page = unroll.explore(
        f"elman:hidden={hidden}",
        compare=[f"lstm:hidden={hidden}", f"gru:hidden={hidden}"],
        steps=steps,
    )
    path = page.save(Path(folder) / "compare.html")
    return path, time.perf_counter() - t0


def load_times(path, repeat):
    """(ms to interactive, ms from hover to tooltip) of each of ``repeat`` fresh loads."""
    from unroll.explore.browser import open_page, running_chromium

    times = []
    with running_chromium() as browser:
        for _ in range(repeat):
            tab = open_page(browser, path)
            ready = tab.evaluate("() => window.unrollExplorer.readyAt")
            t0 = time.perf_counter()
            tab.locator('g.node[data-node="h"]').first.hover()
            tab.locator('[role="tooltip"]').wait_for(state="visible")
            times.append((ready, 1000 * (time.perf_counter() - t0)))
            tab.close()
    return times


def main(argv=None):
    """Run the benchmark and print its figures; exit 1 over budget."""
    args = parse_args(argv)
    unroll = load_unroll()
    if unroll is None:
        return 1
    with tempfile.TemporaryDirectory() as folder:
        path, seconds = build(unroll, args.steps, args.hidden, folder)
        size = path.stat().st_size
        times = load_times(path, args.repeat)
    ready = [r for r, _ in times]
    hover = [h for _, h in times]
    print(f"explorer: elman, lstm, gru at hidden {args.hidden}, {args.steps} steps")
    print(f"  build and save   {seconds:8.2f} s")
    print(f"  file size        {size / 1024:8.1f} KiB   (budget {SIZE_BUDGET // 1024} KiB)")
    print(
        f"  interactive at   {statistics.median(ready):8.0f} ms   median of {len(ready)} loads"
        f" (max {max(ready):.0f}; budget {READY_BUDGET_MS:.0f})"
    )
    print(f"  hover to tooltip {statistics.median(hover):8.0f} ms   median (playwright round trip)")
    over = size >= SIZE_BUDGET or max(ready) >= READY_BUDGET_MS
    if over:
        print("over budget", file=sys.stderr)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
