"""Up-front estimates of what a command will cost, refused above documented limits.

Every estimate comes from declared sizes (node sizes, steps, seeds, grid points, the
shapes a weight file declares) before anything is allocated. Each limit has a default
here; the library lifts it with ``None``, the command line with ``--force``.

=====================  ==========================================================  ========
limit                  what is counted                                             default
=====================  ==========================================================  ========
``MAX_GRAPH_NODES``    nodes of a folded graph (model file, preset, function)     100,000
``MAX_GRAPH_EDGES``    edges of a folded graph                                    1,000,000
``MAX_PARAM_BYTES``    parameters a model declares (a weight file, a preset),     2 GiB
                       float64, with their gradients and optimizer state
``MAX_GRID_POINTS``    points of a sweep grid (the product of the value counts)   100,000
``MAX_SECONDS``        estimated run time of ``analyze``, ``sweep``, ``train``    10 minutes
``MAX_OUTPUT_BYTES``   text ``export`` writes                                     256 MiB
=====================  ==========================================================  ========
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .errors import LimitError

__all__ = [
    "MAX_GRAPH_EDGES",
    "MAX_GRAPH_NODES",
    "MAX_GRID_POINTS",
    "MAX_OUTPUT_BYTES",
    "MAX_PARAM_BYTES",
    "MAX_SECONDS",
    "check",
    "check_export",
    "check_graph_size",
    "check_parameters",
    "check_run",
    "check_seconds",
    "estimate_seconds",
    "extrapolate",
    "format_bytes",
]

MAX_GRAPH_NODES = 100_000
MAX_GRAPH_EDGES = 1_000_000
MAX_PARAM_BYTES = 2 * 2**30
MAX_GRID_POINTS = 100_000
MAX_SECONDS = 600.0
MAX_OUTPUT_BYTES = 256 * 2**20

# Measured on a 2-core machine: the engine's cost per node instance and step, its cost
# per run (compiling, drawing parameters and inputs), and dense float64 arithmetic.
_SECONDS_PER_NODE_STEP = 30e-6
_SECONDS_PER_RUN = 2e-3
_FLOPS_PER_SECOND = 2e9


def format_bytes(n: float) -> str:
    """``n`` bytes as ``"1.5 GiB"`` or ``"12 MiB"``.

    Examples
    --------
    >>> format_bytes(3 * 2**30), format_bytes(5 * 2**20), format_bytes(3000)
    ('3.0 GiB', '5 MiB', '3 KiB')
    """
    if n < 2**20:
        return f"{n / 2**10:,.0f} KiB"
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"


def _duration(seconds: float) -> str:
    if seconds >= 7200:
        return f"{seconds / 3600:,.0f} hours"
    return f"{seconds / 60:,.0f} minutes" if seconds >= 120 else f"{seconds:,.0f} s"


def check(need: float, limit: float | None, problem: Callable[[], str], option: str) -> None:
    """Raise :class:`LimitError` (``problem()`` and ``option``) when ``need > limit``.

    Examples
    --------
    >>> check(3, 5, lambda: "never", "x=None")
    >>> check(7, 5, lambda: "7 apples, more than the limit of 5", "apples=None")
    Traceback (most recent call last):
    ...
    unroll.errors.LimitError: 7 apples, more than the limit of 5; pass apples=None to lift the limit
    """
    if limit is not None and need > limit:
        raise LimitError(problem(), option)


def check_graph_size(
    what: str, nodes: int, edges: int, max_nodes: int | None = MAX_GRAPH_NODES
) -> None:
    """Refuse a graph of more than ``max_nodes`` nodes (or 10 edges per allowed node).

    Examples
    --------
    >>> check_graph_size("m.toml", 1_000_001, 0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    unroll.errors.LimitError: m.toml declares 1,000,001 nodes, more than the limit of 100,000; ...
    """
    option = "max_nodes=None"
    check(
        nodes,
        max_nodes,
        lambda: f"{what} declares {nodes:,} nodes, more than the limit of {max_nodes:,}",
        option,
    )
    max_edges = None if max_nodes is None else max(MAX_GRAPH_EDGES, 10 * max_nodes)
    check(
        edges,
        max_edges,
        lambda: f"{what} declares {edges:,} edges, more than the limit of {max_edges:,}",
        option,
    )


def check_parameters(
    what: str, numbers: int, copies: int = 3, max_bytes: int | None = MAX_PARAM_BYTES
) -> None:
    """Refuse ``numbers`` parameters whose float64 ``copies`` (values, gradients, optimizer
    state) would take more than ``max_bytes``.

    Examples
    --------
    >>> check_parameters("lstm", 4 * 20_000 * 20_003)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    unroll.errors.LimitError: lstm declares 1,600,240,000 parameters: about 35.8 GiB ...
    """
    if max_bytes is None:  # no limit
        return
    need = numbers * 8 * copies
    check(
        need,
        max_bytes,
        lambda: (
            f"{what} declares {numbers:,} parameters: about {format_bytes(need)} as "
            f"float64 with {copies - 1} more copies (gradients, state), more than the limit of "
            f"{format_bytes(max_bytes)}"
        ),
        "max_memory=None",
    )


def estimate_seconds(nodes: int, steps: int, runs: int, params: int = 0, batch: int = 1) -> float:
    """Seconds ``runs`` forward-and-backward passes of ``steps`` steps take, roughly.

    ``nodes`` node instances per step, ``params`` parameters (a product per step, three
    ways: forward, backward, weight gradient) and ``batch`` sequences per run.

    Examples
    --------
    >>> round(estimate_seconds(nodes=2, steps=100, runs=100_000))
    800
    """
    per_step = nodes * _SECONDS_PER_NODE_STEP + 6 * params * batch / _FLOPS_PER_SECOND
    return runs * (_SECONDS_PER_RUN + steps * per_step)


def check_seconds(what: str, seconds: float, max_seconds: float | None = MAX_SECONDS) -> None:
    """Refuse a run estimated above ``max_seconds``.

    Examples
    --------
    >>> check_seconds("analyze", 7200.0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    unroll.errors.LimitError: analyze would take about 2 hours, more than the limit of ...
    """
    if max_seconds is None:  # no limit
        return
    check(
        seconds,
        max_seconds,
        lambda: (
            f"{what} would take about {_duration(seconds)}, more than the limit of "
            f"{_duration(max_seconds)}"
        ),
        "max_seconds=None",
    )


def extrapolate(measure: Callable[[int], float], n: int, small: tuple[int, int] = (1, 2)) -> float:
    """``measure(n)`` estimated from two small cases, assuming it grows linearly in ``n``.

    Examples
    --------
    >>> extrapolate(lambda k: 3 * k + 2, 10**9)
    3000000002.0
    """
    a, b = small
    if n <= b:
        return float(measure(n))
    ma, mb = measure(a), measure(b)
    return float(mb + (mb - ma) / (b - a) * (n - b))


def check_run(
    what: str,
    graph,
    steps: int,
    runs: int,
    batch: int = 1,
    *,
    copies: int = 3,
    max_memory: int | None = MAX_PARAM_BYTES,
    max_seconds: float | None = MAX_SECONDS,
) -> float:
    """Refuse ``runs`` BPTT passes over ``graph`` whose parameters (``copies`` of them)
    or estimated time exceed the limits, before any parameter is drawn; return the
    estimated seconds.

    Examples
    --------
    >>> from unroll import presets
    >>> check_run("analyze", presets.elman(), steps=100, runs=10) < 1
    True
    >>> check_run("train", presets.lstm(2, 20_000), 50, 1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    unroll.errors.LimitError: train: lstm declares 1,600,320,000 parameters: about 35.8 GiB ...
    """
    shapes = graph.params()
    numbers = sum(math.prod(shape) for shape in shapes.values())
    check_parameters(f"{what}: {graph.name}", numbers, copies, max_memory)
    seconds = estimate_seconds(len(graph.nodes), steps, runs, numbers, batch)
    check_seconds(
        f"{what} of {graph.name} ({runs:,} runs of {steps:,} steps)", seconds, max_seconds
    )
    return seconds


def check_export(
    graph,
    fmt: str,
    steps: int | None,
    mode: str = "synced",
    params=None,
    max_bytes: int | None = MAX_OUTPUT_BYTES,
) -> None:
    """Refuse an export whose text would exceed ``max_bytes``, estimated from exports of
    two and three steps (the text grows linearly in the steps) before unrolling.

    Examples
    --------
    >>> from unroll import presets
    >>> check_export(presets.elman(), "json", 1_000_000)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    unroll.errors.LimitError: exporting elman over 1,000,000 steps as json writes about ...
    """
    from .files import export
    from .unrolled import unroll

    if steps is None or steps <= 3 or max_bytes is None:
        return
    try:
        need = extrapolate(
            lambda k: len(export(unroll(graph, k, mode), fmt, params).encode("utf-8")),
            steps,
            small=(2, 3),
        )
    except ValueError:  # a mode that needs more steps: the real export says why
        return
    check(
        need,
        max_bytes,
        lambda: (
            f"exporting {graph.name} over {steps:,} steps as {fmt} writes about "
            f"{format_bytes(need)}, more than the limit of {format_bytes(max_bytes)}"
        ),
        "max_bytes=None",
    )
