"""What "distance from the loss" counts: steps back in time, or layers down a deep net.

An unrolled RNN is a deep feed-forward net whose layers share their weights, so the two
questions are one: how fast does the gradient shrink with each step (or layer) it travels
back from the loss? A graph with a delayed edge is measured along **time**: ``||dL/ds_t||``
of each state node ``s`` against ``T-1-t``. A graph without one (a deep MLP) is measured
along **depth**: one step, and ``||dL/dh||`` of each layer against its distance from the
loss, the number of layers between it and an output (the layer under the output is at 0,
as the last step of an RNN is). Layers at the same distance (parallel branches) count as
one, their gradients joined in one norm.

Each axis is a row of :data:`AXES`; :func:`axis_of` picks the row for a graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..graph import Graph
from .logspace import log10_norm

__all__ = ["AXES", "LAYERS", "Axis", "axis_of", "layer_distances", "layer_groups"]

#: The name of the one series a feed-forward net is measured in: its hidden layers.
LAYERS = "h"


def layer_distances(graph: Graph) -> dict[str, int]:
    """``{node: layers between it and an output}`` for every node neither input nor output.

    The distance is the longest path (in edges) from the node to an output, minus one.

    Examples
    --------
    >>> from unroll import presets
    >>> layer_distances(presets.mlp(2, 3, depth=3))
    {'h_l0': 2, 'h_l1': 1, 'h_l2': 0}
    """
    outputs = set(graph.output_nodes())
    after: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for e in graph.edges:
        after[e.source].append(e.target)
    longest: dict[str, int] = {}
    for name in reversed(graph.step_order()):
        reach = [longest[n] + 1 for n in after[name] if n in longest]
        if name in outputs:
            longest[name] = 0
        elif reach:
            longest[name] = max(reach)
    return {
        n: longest[n] - 1
        for n, node in graph.nodes.items()
        if n in longest and n not in outputs and not node.op.has("fed")
    }


def layer_groups(graph: Graph) -> list[list[str]]:
    """The layers by distance from the loss, nearest first (``[[top], ..., [first]]``).

    Examples
    --------
    >>> from unroll import presets
    >>> layer_groups(presets.mlp(2, 3, depth=2))
    [['h_l1'], ['h_l0']]
    """
    distances = layer_distances(graph)
    groups: list[list[str]] = [[] for _ in range(max(distances.values(), default=-1) + 1)]
    for name, d in distances.items():
        groups[d].append(name)
    return groups


@dataclass(frozen=True)
class Axis:
    """One meaning of distance: its words, and how to measure along it.

    ``distance_label`` titles a plot's x axis, ``nets`` names the nets measured so,
    ``nothing`` says why a graph has nothing to measure; ``length(graph, steps)`` is the
    number of distances measured, ``unrolling(steps, mode)`` the steps and mode to unroll,
    ``series(graph)`` the names of the measured curves, and ``norms(result, graph)``
    gives ``{series: (S, length)}`` ``log10`` norms indexed like steps (index
    ``length-1-k`` at distance ``k``).
    """

    name: str
    unit: str
    units: str
    index: str
    distance_label: str
    nets: str
    nothing: str
    length: Callable[[Graph, int], int]
    unrolling: Callable[[int, str], tuple[int, str]]
    series: Callable[[Graph], list[str]]
    norms: Callable[[object, Graph], dict[str, np.ndarray]]


def _time_norms(result, graph: Graph) -> dict[str, np.ndarray]:
    return {s: result.log10_grad_norms(s) for s in graph.state_nodes()}


def _depth_norms(result, graph: Graph) -> dict[str, np.ndarray]:
    """``{"h": (S, L)}``: each distance's joint norm over its layers, the top layer last."""
    per_distance = [
        log10_norm(np.stack([result.log10_grad_norms(n)[..., 0] for n in group]), axis=0)
        for group in layer_groups(graph)
    ]
    return {LAYERS: np.stack(per_distance[::-1], axis=-1)}


AXES: dict[str, Axis] = {
    a.name: a
    for a in [
        Axis(
            "time",
            "step",
            "steps",
            "t",
            "distance from the loss (steps)",
            "recurrent nets",
            "has no state node (no node is read across time by an edge with a nonzero "
            "delay): there is no gradient through time to measure",
            lambda graph, steps: steps,
            lambda steps, mode: (steps, mode),
            Graph.state_nodes,
            _time_norms,
        ),
        Axis(
            "depth",
            "layer",
            "layers",
            "l",
            "layers from the loss",
            "feed-forward nets",
            "has no delayed edge and no layer between its inputs and its outputs: there is "
            "no gradient through time or depth to measure",
            lambda graph, steps: len(layer_groups(graph)),
            lambda steps, mode: (1, "one-to-one"),
            lambda graph: [LAYERS] if layer_groups(graph) else [],
            _depth_norms,
        ),
    ]
}


def axis_of(graph: Graph) -> Axis:
    """Time for a graph with a delayed edge, depth for a feed-forward one.

    Examples
    --------
    >>> from unroll import presets
    >>> axis_of(presets.elman()).name, axis_of(presets.mlp(depth=3)).name
    ('time', 'depth')
    """
    return AXES["time" if graph.max_delay() > 0 else "depth"]
