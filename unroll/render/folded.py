"""The folded view: the cyclic graph as declared, delayed edges drawn as labelled loops.

Units sit in the rows they take in every step of the unrolled view, so the folded and
unrolled diagrams of one graph read alike side by side. A delayed edge is a red loop
labelled with the step it reads (``t−1``); a state read by several units below it runs
to one junction point first, labelled once.
"""

from __future__ import annotations

import graphviz

from .canvas import Canvas
from .errors import RenderError
from .frame import Direction, graph_attrs
from .labels import marked_edge, marked_node, unit_look
from .structure import Link, Plan, delay_text
from .style import RECURRENT
from .words import Wording, highlight_line

__all__ = ["draw_folded"]


def draw_folded(
    plan: Plan,
    way: Direction,
    marked: set[int],
    highlight: str | None,
    wording: Wording,
    max_nodes: int,
) -> graphviz.Digraph:
    """Draw the folded graph of ``plan`` (see :func:`unroll.render.render`)."""
    n = len(plan.units) + len(plan.fans)
    if n > max_nodes:
        raise RenderError(
            f"the diagram would have {n} nodes, more than max_nodes={max_nodes}; raise max_nodes"
        )
    graph = plan.graph
    lines = [_delays_line(graph)]
    if highlight is not None:
        lines.append(highlight_line(highlight, graph, marked))
    if wording.formulas:
        lines.append("Weights are named in the formulas of the nodes they feed.")
    caption = "\n".join(lines) if wording.caption else ""
    title = graph.name + " (folded)" if wording.title is None else wording.title
    canvas = Canvas(graph.name, graph_attrs(way, title, caption))
    for unit in plan.units:
        look = unit_look(plan, unit, formulas=wording.formulas)
        attrs = marked_node(look, plan, unit, marked, highlight)
        canvas.node(unit, attrs, row=plan.row[unit])
    for link in plan.links:
        paint = marked_edge(set(link.edges), marked, highlight)
        if link.delay == 0:
            canvas.edge(link.source, link.target, "step", **paint)
        elif link.fan_key in plan.fans:
            jid = _junction(canvas, plan, link, marked, highlight)
            canvas.edge(jid, link.target, "recurrent", **paint)
        else:
            canvas.edge(
                link.source,
                link.target,
                "recurrent",
                label=_delay_label(plan, link),
                constraint="false",
                **paint,
            )
    return canvas.emit()


def _delays_line(graph) -> str:
    """What the red loops mean, naming only the reads the graph has."""
    delays = sorted({e.delay for e in graph.edges if e.delay})
    if not delays:
        return "No edge is delayed: the graph has no loop."
    reads = [f"{delay_text(d)} reads {_step_word(d)}" for d in delays]
    return "Red edges are delayed: " + ", ".join(reads) + "."


def _step_word(delay: int) -> str:
    if abs(delay) == 1:
        return "the previous step" if delay > 0 else "the next step"
    return f"{abs(delay)} steps back" if delay > 0 else f"{abs(delay)} steps ahead"


def _delay_label(plan: Plan, link: Link, fanned: bool = False) -> str:
    """``W_hh (t−1)``: the weight and the step read; from a cell the state, ``c (t−1)``;
    at a junction (several weights) the step alone."""
    if link.source in plan.cells:
        return f"{link.carried} ({delay_text(link.delay)})"
    weights = sorted({w for i in link.edges if (w := plan.graph.edges[i].weight) is not None})
    if fanned or not weights:
        return delay_text(link.delay)
    return f"{', '.join(weights)} ({delay_text(link.delay)})"


def _junction(canvas: Canvas, plan: Plan, link: Link, marked, highlight) -> str:
    """The point where a state read by several units fans out (ids hold a '.', which node
    names never do)."""
    jid = f"{link.carried}.fan{link.delay}"
    if jid not in canvas.nodes:
        fanned = {i for lk in plan.links if lk.fan_key == link.fan_key for i in lk.edges}
        paint = marked_edge(fanned, marked, highlight)
        look = {"shape": "point", "width": "0.07", "color": paint.get("color", RECURRENT)}
        canvas.node(jid, look, row=plan.fans[link.fan_key])
        label = _delay_label(plan, link, fanned=True)
        canvas.edge(jid, link.source, "stub", label=label, **paint)
    return jid
