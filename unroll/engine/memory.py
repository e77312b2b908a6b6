"""How many bytes a BPTT run holds at its peak, computed from the plan before any array."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .plan import compile_program

__all__ = ["DEFAULT_MAX_MEMORY", "estimate_memory", "minimum_bytes"]

#: :func:`~unroll.engine.bptt` refuses runs estimated above this many bytes, or above the
#: available memory if that is less, unless told otherwise (``max_memory``).
DEFAULT_MAX_MEMORY = 8 * 2**30


def estimate_memory(
    unrolled,
    batch: int = 1,
    dtype=np.float64,
    contributions: bool | Iterable[str] = False,
    models: int = 1,
) -> int:
    """Bytes a :func:`~unroll.engine.bptt` run over ``unrolled`` is estimated to hold at
    its peak.

    Read from the compiled plan: the values kept for every step, the gradients kept for
    every step (a loop's carried states, every node outside a loop, the inputs), the
    pre-activation gradients of loop layers whose values are still needed, one temporary
    the size of the largest array, three copies of the parameters, and, when recorded,
    what every step's contribution to every parameter is made of. Times ``models`` for
    an ensemble.

    Examples
    --------
    >>> import unroll
    >>> u = unroll.unroll(unroll.presets.elman(64, 256), steps=500)
    >>> round(estimate_memory(u, batch=32) / 2**20)  # measured peak, with a loss: 143 MiB
    174
    """
    p = compile_program(unrolled)
    item = np.dtype(dtype).itemsize
    g = p.graph
    per_row = {n: batch * g.nodes[n].size * item for n in g.nodes}
    values = grads = largest = 0
    for name in g.nodes:
        rows = p.rows(name)
        part = p.part_of.get(name)
        stored = p.stored[name]
        values += (rows if stored else 1) * per_row[name]
        keeps_grad = part is None or not part.loop or p.carried[name] or p.external[name]
        grads += rows * per_row[name] if keeps_grad or name in g.output_nodes() else 0
        largest = max(largest, rows * per_row[name])
    for part in p.parts:
        for unit in part.units:
            if part.loop and unit.is_layer and unit.name not in p.reuse:
                grads += sum(p.rows(m) * per_row[m] for m in unit.members)
    entries = sum(math.prod(s) for s in p.param_shapes.values()) * item
    recorded = 0
    if contributions:  # each weighted edge's dz per step, each bias's sum per step
        weighted = sum(per_row[e.target] for e in g.edges if e.weight is not None)
        biased = sum(len(n.biases) * n.size * item for n in g.nodes.values())
        recorded = unrolled.steps * (weighted + biased)
    return models * (values + grads + 2 * largest + 3 * entries + recorded)


def minimum_bytes(unrolled, batch: int = 1, dtype=np.float64) -> int:
    """The activations BPTT must store at the least, at every step: the output of every
    layer that multiplies a weight, and every state read across time (the inputs are the
    caller's; what follows elementwise from these can be recomputed).

    Examples
    --------
    >>> import unroll
    >>> u = unroll.unroll(unroll.presets.lstm(32, 32), steps=1)
    >>> minimum_bytes(u)  # i, f, g, o, c and h: 6 x 32 float64 numbers
    1536
    """
    g, item = unrolled.graph, np.dtype(dtype).itemsize
    states = set(g.state_nodes())
    weighted = {e.target for e in g.edges if e.weight is not None}
    kept = [n for n in g.nodes.values() if n.name in weighted or n.name in states]
    return unrolled.steps * batch * item * sum(n.size for n in kept)
