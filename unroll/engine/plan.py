"""Compile a folded graph once: its loops (strongly connected parts), retimed and fused.

The plan never grows with the number of steps. Each strongly connected part of the folded
graph that holds an edge is a *loop*: it is scanned over time, one step program applied
per step, in the direction its delays point (a loop whose delays mix signs is retimed,
Leiserson-Saxe style, so that every edge inside it reads a step already computed). Every
other node is a *sequence* part, computed for all steps at once. Layer nodes of a loop that
read the same sources at the same delays (an LSTM's four gates) are fused into one
:class:`Unit` whose weights are stacked, so each source is one matrix product per step.
Edges into a loop from outside it become whole-sequence products before the scan.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from functools import cached_property

import networkx as nx

from ..errors import GraphError
from ..graph import topological_order
from ..ops import ACTIVATIONS, Activation, Op
from ..unrolled import Unrolled

__all__ = ["Part", "Program", "Read", "Unit", "compile_program"]


@dataclass(frozen=True)
class Read:
    """One edge as a unit reads it: ``source`` at ``t - delay``; ``lag`` in scan steps
    for a source inside the same loop (``None`` for a source outside it)."""

    source: str
    delay: int
    lag: int | None


@dataclass
class Unit:
    """One node, or layer nodes fused side by side (columns ``spans`` of one array)."""

    members: list[str]
    spans: list[tuple[int, int]]
    width: int
    op: Op
    runs: list[tuple[int, int, Activation]] = field(default_factory=list)
    blocks: list[Read] = field(default_factory=list)  # weighted reads, shared by members
    weights: list[list[str]] = field(default_factory=list)  # weights[j][k]: member k, block j
    identity: list[Read] = field(default_factory=list)  # unweighted reads into a layer
    sources: list[Read] = field(default_factory=list)  # an op's inputs, in declaration order
    biases: list[tuple[str, ...]] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)  # an op's (role, name)

    @property
    def name(self) -> str:
        return self.members[0]

    @property
    def is_layer(self) -> bool:
        return self.op.weighted

    def reads(self) -> list[Read]:
        """Every read of the unit: weighted blocks, identity edges, op inputs."""
        return self.blocks + self.identity + self.sources

    def param_names(self) -> list[str]:
        """Every parameter of the unit: weights, biases, an op's parameters."""
        names = [name for block in self.weights for name in block]
        return (
            names
            + [name for group in self.biases for name in group]
            + [name for _, name in self.params]
        )


@dataclass
class Part:
    """A loop (scanned step by step) or a single node computed over all steps at once.

    ``sign`` is the scan direction (+1 forward in time, -1 backward); node ``v`` at step
    ``t`` is computed at scan step ``sign * t + offset[v]``; ``units`` are in the order
    one scan step computes them.
    """

    index: int
    nodes: list[str]
    loop: bool
    sign: int
    offset: dict[str, int]
    units: list[Unit]

    def scan_range(self, steps: int) -> tuple[int, int]:
        """The scan steps ``[lo, hi)`` that hold a computed step of some node."""
        lo = min(
            self._scan(0, v) if self.sign > 0 else self._scan(steps - 1, v) for v in self.nodes
        )
        hi = max(
            self._scan(steps - 1, v) if self.sign > 0 else self._scan(0, v) for v in self.nodes
        )
        return lo, hi + 1

    def _scan(self, t: int, v: str) -> int:
        return self.sign * t + self.offset[v]

    @cached_property
    def depth(self) -> int:
        """Scan steps a gradient may wait for, plus one: the ring buffer's length."""
        lags = [r.lag for u in self.units for r in u.reads() if r.lag is not None]
        return 1 + max(lags, default=0)


class Program:
    """The compiled plan of an unrolled graph: parts in dependency order, node layouts.

    Attributes
    ----------
    parts : list of Part
        Loops and single nodes, each after every part it reads.
    pad : dict
        ``pad[v] = (before, after)``: boundary rows stored around node ``v``'s steps
        (initial states read before step 0, or past the last step).
    present : dict
        ``present[v] = (a, b)``: the steps ``a <= t < b`` at which ``v`` has a copy.
    stored : dict
        Whether each node's values are kept for every step (else recomputed on request).
    """

    def __init__(self, unrolled: Unrolled):
        u = unrolled
        self._unrolled = weakref.ref(u)  # the unrolled graph caches this program
        g = u.graph
        self.graph, self.steps = g, u.steps
        self.order = {n: i for i, n in enumerate(g.nodes)}
        self.inputs = g.input_nodes()
        self.pad = _pads(g)
        self.present = {n: _present_range(u, n) for n in g.nodes}
        self.param_shapes = u.param_shapes
        self.parts = _parts(g, self.order)
        for part in self.parts:  # a fused unit's members share one array: the widest pads
            for unit in part.units:
                pads = [self.pad[m] for m in unit.members]
                shared = (max(a for a, _ in pads), max(b for _, b in pads))
                self.pad.update(dict.fromkeys(unit.members, shared))
        self.part_of = {n: p for p in self.parts for n in p.nodes}
        self.unit_of = {m: unit for p in self.parts for unit in p.units for m in unit.members}
        self.consumers = _consumers(g)
        self.reuse = {
            unit.name for part in self.parts for unit in part.units if self._reusable(unit, part)
        }
        self.stored = {n: not self._transient(n) for n in g.nodes}
        self.carried = {n: self._carried(n) for n in g.nodes}
        self.external = {n: self._read_outside(n) for n in g.nodes}
        self.memo: dict[str, dict] = {}  # facts the passes derive from the plan, once

    def _reusable(self, unit: Unit, part: Part) -> bool:
        """A loop layer whose values no weight gradient reads: its backward writes the
        pre-activation gradients over them (recomputed if asked for afterwards)."""
        if not (part.loop and unit.is_layer):
            return False
        members = set(unit.members)
        return not any(
            r.source in members for p in self.parts for other in p.units for r in other.blocks
        )

    @property
    def unrolled(self) -> Unrolled:
        """The unrolled graph this program was compiled for."""
        unrolled = self._unrolled()
        assert unrolled is not None, "the unrolled graph of a live program is alive"
        return unrolled

    def rows(self, name: str) -> int:
        """Rows of node ``name``'s arrays: its steps and its boundary rows."""
        before, after = self.pad[name]
        return before + self.steps + after

    def _carried(self, name: str) -> bool:
        """Read inside its loop at a later scan step: its gradient waits in the ring."""
        part = self.part_of.get(name)
        if part is None or not part.loop:
            return False
        return any(
            r.source == name and r.lag
            for unit in part.units
            for r in unit.reads()
            if r.lag is not None
        )

    def _read_outside(self, name: str) -> bool:
        """Read by a node of another part (whose backward hands a gradient in)."""
        part = self.part_of.get(name)
        return any(self.part_of.get(c) is not part for c, _ in self.consumers[name])

    def _transient(self, name: str) -> bool:
        """A loop's op node whose value no gradient needs: kept for one step only.

        Its own backward must not read its output (true of every op row but layers),
        every reader reads it at the same scan step, no reader's backward reads it
        (sums, ``1 - x``, concatenations, and layers through identity edges), and it
        reads no layer of its loop whose values backward overwrites from another step
        (recomputing it later would need itself: IndRNN's ``w_hh * h[t-1]``).
        """
        part = self.part_of.get(name)
        row = self.graph.nodes[name].op
        if part is None or not part.loop or row.weighted or row.needs_output:
            return False
        if name in self.graph.output_nodes():
            return False
        for edge in self.graph.in_edges(name):  # recomputing it must not need itself again
            if edge.source not in part.offset:
                continue
            lag = part.sign * edge.delay + part.offset[name] - part.offset[edge.source]
            if lag and self.unit_of[edge.source].name in self.reuse:
                return False
        for consumer, edge in self.consumers[name]:
            if self.part_of.get(consumer) is not part:
                return False
            lag = part.sign * edge.delay + part.offset[consumer] - part.offset[name]
            if lag:
                return False
            reader = self.graph.nodes[consumer].op
            if edge.weight is not None or (not reader.weighted and reader.needs_inputs):
                return False
        return True

    @cached_property
    def instances(self) -> list:
        """Boundary instances, then computed instances in a topological order (a view)."""
        return list(self.unrolled.boundary) + list(self.unrolled.order)


def compile_program(unrolled: Unrolled) -> Program:
    """Compile ``unrolled`` once; the program is cached on the unrolled object.

    Examples
    --------
    >>> import unroll
    >>> u = unroll.unroll(unroll.presets.lstm(2, 3), steps=1000)
    >>> program = compile_program(u)
    >>> [(p.loop, [unit.members for unit in p.units][:1]) for p in program.parts]
    [(True, [['i', 'f', 'o', 'g']])]
    """
    if "program" not in unrolled._programs:
        unrolled._programs["program"] = Program(unrolled)
    return unrolled._programs["program"]


# ---- layout ---------------------------------------------------------------------------------


def _pads(graph) -> dict[str, tuple[int, int]]:
    pads = {n: [0, 0] for n in graph.nodes}
    for e in graph.edges:
        if e.delay > 0:
            pads[e.source][0] = max(pads[e.source][0], e.delay)
        elif e.delay < 0:
            pads[e.source][1] = max(pads[e.source][1], -e.delay)
    return {n: (a, b) for n, (a, b) in pads.items()}


def _present_range(u: Unrolled, name: str) -> tuple[int, int]:
    if name in u._input_steps:
        steps = u._input_steps[name]
    elif name in u._pruned:
        steps = u._loss_steps
    else:
        return 0, u.steps
    return (steps[0], steps[-1] + 1) if steps else (0, 0)


def _consumers(graph) -> dict[str, list]:
    out: dict[str, list] = {n: [] for n in graph.nodes}
    for e in graph.edges:
        out[e.source].append((e.target, e))
    return out


# ---- parts, retiming, fusion ------------------------------------------------------------------


def _parts(graph, order) -> list[Part]:
    simple = nx.DiGraph()
    fed = {n for n, node in graph.nodes.items() if node.op.has("fed")}
    simple.add_nodes_from(n for n in graph.nodes if n not in fed)
    simple.add_edges_from((e.source, e.target) for e in graph.edges if e.source not in fed)
    components = [sorted(c, key=order.get) for c in nx.strongly_connected_components(simple)]
    components.sort(key=lambda c: order[c[0]])
    where = {n: i for i, c in enumerate(components) for n in c}
    links = {(where[a], where[b]) for a, b in simple.edges if where[a] != where[b]}
    ranked = topological_order(list(range(len(components))), links)
    in_edges = {n: graph.in_edges(n) for n in graph.nodes}
    return [
        _make_part(graph, index, components[c], in_edges, order) for index, c in enumerate(ranked)
    ]


def _make_part(graph, index, nodes, in_edges, order) -> Part:
    members = set(nodes)
    inside = [e for n in nodes for e in in_edges[n] if e.source in members]
    if not inside:
        offset, sign = {nodes[0]: 0}, 1
    else:
        sign, offset = _retime(nodes, inside)

    def read(e) -> Read:
        if e.source not in members:
            return Read(e.source, e.delay, None)
        return Read(e.source, e.delay, sign * e.delay + offset[e.target] - offset[e.source])

    same_step = [(e.source, e.target) for e in inside if read(e).lag == 0]
    step_order = topological_order(sorted(nodes, key=order.get), same_step)
    units = _units(graph, step_order, in_edges, read, offset, bool(inside))
    return Part(index, nodes, bool(inside), sign, offset, units)


def _retime(nodes, edges) -> tuple[int, dict[str, int]]:
    """Offsets ``r`` with ``sign * delay + r[target] - r[source] >= 0`` on every edge.

    Difference constraints solved by Bellman-Ford; a valid graph's loop has cycles of
    one sign only, so one direction always works.
    """
    for sign in (1, -1):
        r = dict.fromkeys(nodes, 0)
        for _ in range(len(nodes) + 1):
            changed = False
            for e in edges:  # r[source] <= r[target] + sign * delay
                bound = r[e.target] + sign * e.delay
                if r[e.source] > bound:
                    r[e.source], changed = bound, True
            if not changed:
                return sign, r
    walk = " -> ".join([edges[0].source, edges[0].target])
    raise GraphError(f"the loop through {walk} cannot be scanned in either direction of time")


def _units(graph, step_order, in_edges, read, offset, loop) -> list[Unit]:
    """One unit per node, except a loop's layers with equal weighted reads, fused."""
    buckets: dict[tuple, list[str]] = {}
    for name in step_order:
        node, edges = graph.nodes[name], in_edges[name]
        fusable = loop and node.op.weighted and edges and all(e.weight for e in edges)
        key = (
            (offset[name], *sorted((e.source, e.delay) for e in edges))
            if fusable
            else ("single", name)
        )
        buckets.setdefault(key, []).append(name)
    units, done = [], set()
    for name in step_order:
        if name in done:
            continue
        key = next(k for k, names in buckets.items() if name in names)
        group = buckets[key]
        done.update(group)
        units.append(_make_unit(graph, group, in_edges, read))
    return units


def _make_unit(graph, names, in_edges, read) -> Unit:
    nodes = [graph.nodes[n] for n in names]
    op = nodes[0].op
    if not op.weighted:
        node = nodes[0]
        return Unit(
            [node.name],
            [(0, node.size)],
            node.size,
            op,
            sources=[read(e) for e in in_edges[node.name]],
            params=[(p.role, name) for p, name in zip(op.params, node.params, strict=True)],
        )
    nodes.sort(key=lambda n: n.activation)  # runs of one activation are contiguous
    spans: list[tuple[int, int]] = []
    runs: list[tuple[int, int, Activation]] = []
    col = 0
    for node in nodes:
        spans.append((col, col + node.size))
        act = ACTIVATIONS[node.activation]
        if runs and runs[-1][2] is act:
            runs[-1] = (runs[-1][0], col + node.size, act)
        else:
            runs.append((col, col + node.size, act))
        col += node.size
    per_member = [
        sorted(((e.source, e.delay), e.weight) for e in in_edges[n.name] if e.weight) for n in nodes
    ]
    first = in_edges[nodes[0].name]
    by_key = {(e.source, e.delay): e for e in first}
    blocks = [read(by_key[key]) for key, _ in per_member[0]]
    weights = [[member[j][1] for member in per_member] for j in range(len(blocks))]
    identity = [read(e) for e in first if e.weight is None]
    return Unit(
        [n.name for n in nodes],
        spans,
        col,
        op,
        runs,
        blocks,
        weights,
        identity,
        biases=[n.biases for n in nodes],
    )
