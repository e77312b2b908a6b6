"""What a diagram needs to know about a folded graph: its units, rows, fan-outs and paths.

A *unit* is one drawn box per step: a node (``detail="op"``) or a whole recurrent cell
(``detail="cell"``: a strongly connected part of the graph that holds a cycle, e.g. an
LSTM's nine nodes). *Links* are the folded edges between units, merged where they join
the same units with the same delay and carry the same value. Units sit in *rows*: the
longest path over in-step links, so every copy of a node lands in the same row at every
step, and two units that each feed themselves across time (``h`` and ``h_reverse``) get
rows of their own. A *fan* is a state read, one step away, by several units in lower
rows (``h`` feeding four LSTM gates); diagrams route it through one junction point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import networkx as nx

from ..graph import Graph, topological_order
from .errors import RenderError
from .style import cell_kind

__all__ = ["DETAILS", "HIGHLIGHTS", "Cell", "Link", "Plan", "delay_text", "highlighted", "plan"]


@dataclass(frozen=True)
class Cell:
    """A recurrent cell drawn as one box: ``name`` is the member whose value leaves it."""

    name: str
    members: tuple[str, ...]
    states: tuple[str, ...]
    kind: str


@dataclass(frozen=True)
class Link:
    """Folded edges between two units with one delay, carrying node ``carried``'s value."""

    source: str
    target: str
    delay: int
    carried: str
    edges: tuple[int, ...]  # indices into graph.edges

    @property
    def fan_key(self) -> tuple[str, str, int]:
        """What a fan groups by: the unit and value read, and the delay."""
        return (self.source, self.carried, self.delay)


@dataclass(frozen=True)
class Plan:
    """The units of a graph at one level of detail, their links, rows and fans."""

    graph: Graph
    units: tuple[str, ...]
    unit_of: dict[str, str]
    cells: dict[str, Cell]
    links: tuple[Link, ...]
    row: dict[str, int]
    stacked: tuple[tuple[str, str], ...] = ()  # (lower, upper): rows kept apart, no link

    def members(self, unit: str) -> tuple[str, ...]:
        """The folded nodes a unit draws."""
        return self.cells[unit].members if unit in self.cells else (unit,)

    @cached_property
    def fans(self) -> dict[tuple[str, str, int], int]:
        """Fan key -> the row of its junction point (one row below its lowest target)."""
        groups: dict[tuple[str, str, int], list[str]] = {}
        for link in self.links:
            if link.delay and self.row[link.source] > self.row[link.target]:
                groups.setdefault(link.fan_key, []).append(link.target)
        return {k: min(self.row[t] for t in ts) - 1 for k, ts in groups.items() if len(ts) > 1}

    @cached_property
    def lowest_row(self) -> int:
        """The lowest row anything occupies (a junction may sit below row 0)."""
        return min([0, *self.fans.values()])

    @cached_property
    def highest_row(self) -> int:
        """The highest row a unit occupies."""
        return max(self.row.values())


def plan(graph: Graph, detail: str = "op") -> Plan:
    """The units, links and rows of ``graph`` drawn at ``detail`` ("op" or "cell").

    Examples
    --------
    >>> from unroll import presets
    >>> p = plan(presets.lstm(3, 4), "op")
    >>> p.row["x"], p.row["f"], p.row["c"], p.row["h"]
    (0, 1, 3, 5)
    >>> p.fans
    {('h', 'h', 1): 0}
    >>> q = plan(presets.lstm(3, 4), "cell")
    >>> q.units, q.cells["h"].states
    (('x', 'h'), ('c', 'h'))
    """
    if detail not in DETAILS:
        raise RenderError(f"unknown detail {detail!r} (known: {', '.join(DETAILS)})")
    graph.validate()
    cells = DETAILS[detail](graph)
    unit_of = {n: n for n in graph.nodes}
    for cell in cells.values():
        unit_of.update(dict.fromkeys(cell.members, cell.name))
    links = _links(graph, unit_of)
    units = _unit_order(graph, unit_of, links)
    row, stacked = _rows(units, links, set(graph.input_nodes()))
    _onto_state_lines(graph, links, row)
    return Plan(graph, units, unit_of, cells, links, row, stacked)


# ---- cells ----------------------------------------------------------------------------------


def _recurrent_parts(graph: Graph) -> list[list[str]]:
    """Strongly connected parts holding a cycle, members in declaration order."""
    index = {n: i for i, n in enumerate(graph.nodes)}
    g = nx.DiGraph()
    g.add_nodes_from(graph.nodes)
    g.add_edges_from((e.source, e.target) for e in graph.edges)
    parts = []
    for part in nx.strongly_connected_components(g):
        members = sorted(part, key=index.__getitem__)
        if len(members) > 1 or g.has_edge(members[0], members[0]):
            parts.append(members)
    return sorted(parts, key=lambda m: index[m[0]])


def _cell(graph: Graph, members: list[str]) -> Cell:
    inside = set(members)
    outputs = set(graph.output_nodes())
    leaving = [
        n
        for n in members
        if n in outputs or any(e.source == n and e.target not in inside for e in graph.edges)
    ]
    states = tuple(n for n in graph.state_nodes() if n in inside)
    name = (leaving or list(states) or members)[0]
    gates = {graph.nodes[n].gate for n in members if graph.nodes[n].gate}
    return Cell(name, tuple(members), states, cell_kind(gates))


def _cells_of(graph: Graph) -> dict[str, Cell]:
    cells = [_cell(graph, members) for members in _recurrent_parts(graph)]
    return {c.name: c for c in cells}


#: ``detail=`` option -> the cells it draws as single boxes.
DETAILS: dict[str, Callable[[Graph], dict[str, Cell]]] = {
    "op": lambda graph: {},
    "cell": _cells_of,
}


# ---- links, order, rows ---------------------------------------------------------------------


def _links(graph: Graph, unit_of: dict[str, str]) -> tuple[Link, ...]:
    grouped: dict[tuple[str, str, int, str], list[int]] = {}
    for i, e in enumerate(graph.edges):
        s, t = unit_of[e.source], unit_of[e.target]
        if s == t and e.delay == 0:
            continue  # inside one cell, within one step
        grouped.setdefault((s, t, e.delay, e.source), []).append(i)
    return tuple(Link(s, t, d, c, tuple(idx)) for (s, t, d, c), idx in grouped.items())


def _unit_order(graph: Graph, unit_of: dict[str, str], links) -> tuple[str, ...]:
    """A topological order of the in-step links; ties by the graph's step order."""
    first: dict[str, int] = {}
    for i, n in enumerate(graph.step_order()):
        first.setdefault(unit_of[n], i)
    step_links = [(lk.source, lk.target) for lk in links if lk.delay == 0]
    return tuple(_topological(sorted(first, key=first.__getitem__), step_links))


def _topological(units: list[str], pairs) -> list[str]:
    return topological_order(units, set(pairs))


def _layer(units, pairs, pinned) -> dict[str, int]:
    """Longest-path rows; then units read by nothing in their step below them (a node that
    reads only delayed states, like the GRU's ``W_hn h``) are lifted next to their readers."""
    row = dict.fromkeys(units, 0)
    preds: dict[str, list[str]] = {u: [] for u in units}
    succs: dict[str, list[str]] = {u: [] for u in units}
    for s, t in pairs:
        preds[t].append(s)
        succs[s].append(t)
    for u in units:  # units are in topological order of `pairs`
        row[u] = max((row[p] + 1 for p in preds[u]), default=0)
    for u in reversed(units):
        if not preds[u] and succs[u] and u not in pinned:
            row[u] = min(row[s] for s in succs[u]) - 1
    return row


def _rows(units: tuple[str, ...], links, pinned):
    """Rows of the units, and the pairs stacked apart: units that feed themselves across
    time (``h`` and ``h_reverse``) never share a row."""
    pairs = sorted(
        {(lk.source, lk.target) for lk in links if lk.delay == 0 and lk.source != lk.target}
    )
    stacked: list[tuple[str, str]] = []
    chains = [u for u in units if any(lk.source == lk.target == u for lk in links)]
    while True:
        row = _layer(units, pairs, pinned)
        seen: dict[int, str] = {}
        clash = None
        for u in chains:
            if row[u] in seen:
                clash = (seen[row[u]], u)
                break
            seen[row[u]] = u
        if clash is None:
            return row, tuple(stacked)
        pairs.append(clash)
        stacked.append(clash)


def _onto_state_lines(graph: Graph, links, row: dict[str, int]) -> None:
    """Lift a carry node that takes a state's previous value and feeds it straight back
    (the LSTM's ``f_c = f·c(t−1)`` into ``c``, the GRU's ``z·h(t−1)`` into ``h``) into the
    state's row, so the state runs along one line through all steps, as in the LSTM chain
    figures."""
    delayed = {(lk.source, lk.target) for lk in links if lk.delay}
    for lk in links:
        a, state = lk.source, lk.target
        if (
            lk.delay == 0
            and a in graph.nodes
            and graph.nodes[a].op.has("carry")
            and (state, a) in delayed
        ):
            row[a] = row[state]


# ---- highlighted paths ----------------------------------------------------------------------


def _recurrent_path(graph: Graph) -> set[int]:
    """Edges on a cycle: both ends in one strongly connected part that holds a cycle."""
    part_of = {n: i for i, members in enumerate(_recurrent_parts(graph)) for n in members}
    return {
        i
        for i, e in enumerate(graph.edges)
        if e.source in part_of and part_of[e.source] == part_of.get(e.target)
    }


def _reach(graph: Graph, start: str, allowed, forward: bool) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        n = todo.pop()
        for e in graph.edges:
            a, b = (e.source, e.target) if forward else (e.target, e.source)
            if e.delay == 0 and a == n and b in allowed and b not in seen:
                seen.add(b)
                todo.append(b)
    return seen


def _cell_state_path(graph: Graph, use_instead: str = "highlight='recurrent'") -> set[int]:
    """A state carried to the next step through elementwise ops only: LSTM ``c``, GRU ``h``."""
    carry = {n for n, node in graph.nodes.items() if node.op.has("carry")}
    found: set[int] = set()
    for i, e in enumerate(graph.edges):
        if e.delay == 0 or e.source not in carry or e.target not in carry:
            continue
        on_path = _reach(graph, e.target, carry, True) & _reach(graph, e.source, carry, False)
        if e.source not in on_path:
            continue
        found.add(i)
        found.update(
            j
            for j, f in enumerate(graph.edges)
            if f.delay == 0 and f.source in on_path and f.target in on_path
        )
    if not found:
        raise RenderError(
            f"graph {graph.name!r} has no cell-state path to highlight (a state carried "
            "across steps through + and × only, as an LSTM's c or a GRU's h); "
            f"use {use_instead}"
        )
    return found


#: ``highlight=`` option -> the folded edges (indices) on the path it emphasises; each
#: takes the graph and how to name the ``"recurrent"`` highlight in a message.
HIGHLIGHTS: dict[str, Callable[[Graph, str], set[int]]] = {
    "recurrent": lambda graph, _: _recurrent_path(graph),
    "cell_state": _cell_state_path,
}


def highlighted(
    graph: Graph, name: str | None, use_instead: str = "highlight='recurrent'"
) -> set[int]:
    """The folded edges option ``highlight=name`` emphasises (empty for None);
    ``use_instead`` names the recurrent highlight in the interface's words."""
    if name is None:
        return set()
    if name not in HIGHLIGHTS:
        raise RenderError(f"unknown highlight {name!r} (known: {', '.join(HIGHLIGHTS)})")
    return HIGHLIGHTS[name](graph, use_instead)


def delay_text(delay: int) -> str:
    """``t−1``, ``t−2``, ``t+1``: where a delayed edge reads from.

    Examples
    --------
    >>> delay_text(1), delay_text(-1)
    ('t−1', 't+1')
    """
    return f"t{'−' if delay > 0 else '+'}{abs(delay)}"
