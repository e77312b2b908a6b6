"""Unroll a recurrent graph into the acyclic graph of a number of time steps, weights tied.

``unroll(graph, steps)`` makes one copy ``(name, t)`` of every node for t = 0 ... steps-1
(diagrams label steps from 1; the API counts from 0). An edge with delay ``d`` into
``(v, t)`` comes from ``(u, t - d)``; where ``t - d`` falls outside the sequence it comes
from a *boundary* node ``(u, t - d)`` instead: ``("h", -1)`` is the initial state, and a
backward-in-time state reads ``("h_reverse", steps)``. Boundary values are zero unless
given. Every copy of an edge keeps the folded edge's weight name: the weights are tied.

A *sequence mode* from the classic taxonomy decides at which steps inputs arrive and at
which steps outputs are read by a loss.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import networkx as nx

from .errors import GraphError, InputError, LimitError, UnrollWarning
from .graph import Edge, Graph, topological_order

__all__ = ["DEFAULT_MAX_NODES", "MODES", "SequenceMode", "Unrolled", "unroll"]

Instance = tuple[str, int]

#: :func:`unroll` refuses to make more node instances (steps x nodes) than this by default:
#: each costs about 2.5 kB once compiled for :func:`unroll.bptt`.
DEFAULT_MAX_NODES = 20_000_000


@dataclass(frozen=True)
class SequenceMode:
    """Where inputs arrive and where losses sit, as functions of (steps, encoder steps)."""

    name: str
    input_steps: Callable[[int, int], range]
    loss_steps: Callable[[int, int], range]
    doc: str


MODES: dict[str, SequenceMode] = {
    m.name: m
    for m in [
        SequenceMode(
            "one-to-one",
            lambda T, s: range(1),
            lambda T, s: range(1),
            "one input, one output, one step: a feed-forward net",
        ),
        SequenceMode(
            "one-to-many",
            lambda T, s: range(1),
            lambda T, s: range(T),
            "one input at the first step, an output at every step (captioning)",
        ),
        SequenceMode(
            "many-to-one",
            lambda T, s: range(T),
            lambda T, s: range(T - 1, T),
            "an input at every step, one output at the last (classification)",
        ),
        SequenceMode(
            "many-to-many",
            lambda T, s: range(s),
            lambda T, s: range(s, T),
            "encoder-decoder: inputs for the first steps, outputs after them",
        ),
        SequenceMode(
            "synced",
            lambda T, s: range(T),
            lambda T, s: range(T),
            "synced many-to-many: an input and an output at every step",
        ),
    ]
}

_ALIASES = {
    "synced-many-to-many": "synced",
    "many-to-many-synced": "synced",
    "encoder-decoder": "many-to-many",
    "seq2seq": "many-to-many",
}


def sequence_mode(name: str) -> SequenceMode:
    """Look a mode up by name (underscores or dashes; aliases such as ``seq2seq``)."""
    key = _ALIASES.get(name.replace("_", "-"), name.replace("_", "-"))
    if key not in MODES:
        raise InputError(f"unknown sequence mode {name!r} (known: {', '.join(MODES)})")
    return MODES[key]


class Unrolled:
    """A graph unrolled over ``steps`` time steps; build it with :func:`unroll`.

    Attributes
    ----------
    graph : Graph
        A frozen copy of the folded graph (:meth:`Graph.freeze`): edits to the graph the
        user unrolled do not reach it, and it refuses edits of its own.
    steps : int
    mode : SequenceMode
    encoder_steps : int
        For the ``many-to-many`` mode, how many steps read inputs before outputs start.
    order : list of (name, t)
        Every computed node instance in a topological order (step by step for a
        causal graph), deterministic.
    boundary : list of (name, t)
        The boundary instances (initial states), sorted.
    loss_instances : list of (name, t)
        The output instances a loss reads, step by step.
    """

    def __init__(self, graph: Graph, steps: int, mode: SequenceMode, encoder_steps: int):
        self.graph, self.steps, self.mode, self.encoder_steps = graph, steps, mode, encoder_steps
        self._in_edges = {n: graph.in_edges(n) for n in graph.nodes}
        self._input_steps = {n: mode.input_steps(steps, encoder_steps) for n in graph.input_nodes()}
        self._loss_steps = mode.loss_steps(steps, encoder_steps)
        consumed = {e.source for e in graph.edges}
        self._pruned = {n for n in graph.output_nodes() if n not in consumed}
        self.boundary = self._boundary_instances()
        self._check_inputs_present()
        self._programs: dict[Any, Any] = {}  # the engine caches what it compiled here

    # ---- structure ----------------------------------------------------------------------

    def present(self, name: str, t: int) -> bool:
        """Whether node ``name`` has a computed copy at step ``t``."""
        if not 0 <= t < self.steps:
            return False
        if name in self._input_steps:
            return t in self._input_steps[name]
        return name not in self._pruned or t in self._loss_steps

    def sources(self, instance: Instance) -> list[tuple[Edge, Instance]]:
        """The edges into ``instance`` with the instance each reads, in declaration order.

        Reads outside the sequence come from boundary instances (inputs' are zero); reads
        of an input at a step where the sequence mode feeds none are left out (they add
        zero to a layer or a sum; any other node needs them, and the mode is refused).
        """
        name, t = instance
        found = []
        for e in self._in_edges[name]:
            s = t - e.delay
            if self.present(e.source, s) or not 0 <= s < self.steps:
                found.append((e, (e.source, s)))
            elif not self.graph.nodes[name].op.has("absent_zero"):
                raise GraphError(
                    f"sequence mode {self.mode.name!r} leaves {e.source} absent at step {s}, "
                    f"but {self.graph.nodes[name].kind} node {name!r} needs it"
                )
        return found

    def _present_steps(self, name: str) -> range:
        if name in self._input_steps:
            return self._input_steps[name]
        if name in self._pruned:
            return self._loss_steps
        return range(self.steps)

    def _check_inputs_present(self) -> None:
        """Refuse a mode that leaves an input absent where a node other than a sum needs it."""
        nodes = self.graph.nodes
        for e in self.graph.edges:
            if not nodes[e.source].op.has("fed") or nodes[e.target].op.has("absent_zero"):
                continue
            fed, reads = self._input_steps[e.source], self._present_steps(e.target)
            gaps = [(0, fed.start), (fed.stop, self.steps)]  # steps inside with no input
            starts = [
                max(reads.start, lo + e.delay)
                for lo, hi in gaps
                if max(reads.start, lo + e.delay) < min(reads.stop, hi + e.delay)
            ]
            if starts:
                self.sources((e.target, min(starts)))  # raises, naming the step

    def _boundary_instances(self) -> list[Instance]:
        """Reads before step 0 or past the last step, from the delays: O(edges)."""
        found: set[Instance] = set()
        for e in self.graph.edges:
            reads = self._present_steps(e.target)
            if not reads or e.delay == 0:
                continue
            lo, hi = reads.start - e.delay, reads.stop - e.delay  # steps read: lo .. hi-1
            outside = range(lo, min(hi, 0)) if e.delay > 0 else range(max(lo, self.steps), hi)
            found.update((e.source, t) for t in outside)
        return sorted(found)

    @cached_property
    def order(self) -> list[Instance]:
        """Every computed node instance in a topological order (step by step for a causal
        graph), deterministic; made on first use (the engine never needs it)."""
        return self._topological_order()

    @cached_property
    def loss_instances(self) -> list[Instance]:
        """The output instances a loss reads, step by step."""
        return [(n, t) for t in self._loss_steps for n in self.graph.output_nodes()]

    def _topological_order(self) -> list[Instance]:
        template = self.graph.step_order()
        if self.graph.is_causal():
            return [(n, t) for t in range(self.steps) for n in template if self.present(n, t)]
        return self._kahn_order(template)

    def _kahn_order(self, template: list[str]) -> list[Instance]:
        instances = [(n, t) for t in range(self.steps) for n in template if self.present(n, t)]
        pairs = [
            (src, inst)
            for inst in instances
            for _, src in self.sources(inst)
            if 0 <= src[1] < self.steps
        ]
        return topological_order(instances, set(pairs))

    @cached_property
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """``graph.params()``, read once: the graph was validated when it was unrolled."""
        return self.graph.params()

    @property
    def loss_steps(self) -> list[int]:
        """The steps at which the mode places a loss."""
        return list(self._loss_steps)

    def input_steps(self, name: str) -> list[int]:
        """The steps at which input ``name`` arrives."""
        return list(self._input_steps[name])

    def num_nodes(self) -> int:
        """Node count of the unrolled DAG, computed without building it."""
        computed = sum(len(self._present_steps(n)) for n in self.graph.nodes)
        return computed + len(self.boundary)

    @cached_property
    def dag(self) -> nx.DiGraph:
        """The unrolled acyclic graph; nodes ``(name, t)``, attributes on nodes and edges.

        Node attributes: ``kind`` (the folded node's kind, or ``"boundary"``), ``node``
        (the folded node's name), ``step``, ``size``, ``activation``, ``gate``,
        ``loss`` (an output read by the loss). Edge attributes: ``weight`` (the tied
        weight's name, ``""`` for an identity edge), ``delay``. Built on first access and
        checked acyclic.
        """
        dag = nx.DiGraph(name=self.graph.name, steps=self.steps, mode=self.mode.name)
        losses = set(self.loss_instances)
        for name, t in self.boundary:
            node = self.graph.nodes[name]
            dag.add_node(
                (name, t),
                kind="boundary",
                node=name,
                step=t,
                size=node.size,
                activation="",
                gate="",
                loss=False,
            )
        for name, t in self.order:
            node = self.graph.nodes[name]
            dag.add_node(
                (name, t),
                kind=node.kind,
                node=name,
                step=t,
                size=node.size,
                activation=node.activation or "",
                gate=node.gate or "",
                loss=(name, t) in losses,
            )
        for inst in self.order:
            for e, src in self.sources(inst):
                if dag.has_edge(src, inst):  # a parallel folded edge: keep both weights
                    data = dag.edges[src, inst]
                    data["weight"] = ",".join(filter(None, [data["weight"], e.weight or ""]))
                    data["multiplicity"] += 1
                else:
                    dag.add_edge(src, inst, weight=e.weight or "", delay=e.delay, multiplicity=1)
        if not nx.is_directed_acyclic_graph(dag):  # validation makes this unreachable
            raise GraphError(f"unrolled graph of {self.graph.name!r} has a cycle")
        return dag

    def __repr__(self) -> str:
        return (
            f"Unrolled({self.graph.name!r}, steps={self.steps}, mode={self.mode.name!r}, "
            f"nodes={self.num_nodes()})"
        )

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, Any]:
        from .render import render

        bundle: dict[str, Any] = render(self)._repr_mimebundle_(include=include, exclude=exclude)
        return bundle


def unroll(
    graph: Graph,
    steps: int,
    mode: str = "synced",
    encoder_steps: int | None = None,
    *,
    max_nodes: int | None = DEFAULT_MAX_NODES,
) -> Unrolled:
    """Unroll ``graph`` over ``steps`` time steps.

    Parameters
    ----------
    graph : Graph
        A valid recurrent graph (validated here).
    steps : int
        Number of time steps, at least 1.
    mode : str
        Sequence mode: ``synced`` (default; input and output at every step),
        ``many-to-one``, ``one-to-many``, ``many-to-many`` (encoder-decoder) or
        ``one-to-one``.
    encoder_steps : int, optional
        For ``many-to-many``: steps that read input before outputs start
        (default ``steps // 2``).
    max_nodes : int or None
        Refuse to unroll into more than this many node instances (``steps`` times the
        number of nodes; default :data:`DEFAULT_MAX_NODES`, 20 million); ``None`` lifts
        the limit.

    Returns
    -------
    Unrolled

    Raises
    ------
    GraphError
        If the graph is invalid.
    InputError
        For a bad step count or mode.
    LimitError
        When the unrolled graph would exceed ``max_nodes``.

    Warns
    -----
    UnrollWarning
        When an edge's delay exceeds ``steps``: every copy of that edge reads a boundary
        value (an initial state, zero unless given), never a computed step. The unrolling
        is still made; a delay equal to ``steps`` (a recurrent net over one step) is quiet.

    Examples
    --------
    >>> from unroll import presets
    >>> u = unroll(presets.neuron(), steps=3)
    >>> u.order
    [('x', 0), ('h', 0), ('x', 1), ('h', 1), ('x', 2), ('h', 2)]
    >>> u.boundary
    [('h', -1)]
    >>> sorted(u.dag.edges(data="weight"))[:2]
    [(('h', -1), ('h', 0), 'W_hh'), (('h', 0), ('h', 1), 'W_hh')]
    """
    if not isinstance(graph, Graph):
        raise InputError(f"unroll takes a Graph, got {type(graph).__name__}")
    graph.validate()
    if not _is_int(steps) or steps < 1:
        raise InputError(f"steps must be a positive integer, got {steps!r}")
    if not isinstance(mode, str):
        raise InputError(f"mode must be the name of a sequence mode, got {mode!r}")
    seq = sequence_mode(mode)
    if seq.name == "one-to-one" and steps != 1:
        raise InputError(f"sequence mode one-to-one has exactly 1 step, got steps={steps}")
    if encoder_steps is None:
        encoder_steps = max(1, steps // 2)
    if not _is_int(encoder_steps) or (seq.name == "many-to-many" and not 0 < encoder_steps < steps):
        raise InputError(
            f"encoder_steps must lie between 1 and steps-1 = {steps - 1}, got {encoder_steps!r}"
        )
    _check_size(graph, steps, max_nodes)
    _warn_long_delays(graph, steps)
    return Unrolled(graph.freeze(), steps, seq, encoder_steps)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_size(graph: Graph, steps: int, max_nodes: int | None) -> None:
    """Refuse an unrolling of more than ``max_nodes`` instances, before making any."""
    if max_nodes is None:
        return
    if not _is_int(max_nodes) or max_nodes < 1:
        raise InputError(f"max_nodes must be a positive integer or None, got {max_nodes!r}")
    boundary = sum(min(abs(e.delay), steps) for e in graph.edges)  # reads outside the steps
    estimate = steps * len(graph.nodes) + boundary
    if estimate > max_nodes:
        raise LimitError(
            f"unrolling {graph.name!r} ({len(graph.nodes)} nodes) over {steps:,} steps "
            f"makes about {estimate:,} node instances, more than the limit of {max_nodes:,}",
            "unroll(..., max_nodes=None)",
        )


def _warn_long_delays(graph: Graph, steps: int) -> None:
    for e in graph.edges:
        if abs(e.delay) > steps:
            warnings.warn(
                f"edge {e.describe()} reaches {abs(e.delay)} steps, more than the {steps} "
                "unrolled: every copy reads a boundary value (an initial state), never a "
                "computed step",
                UnrollWarning,
                stacklevel=3,
            )
