"""The unrolled view: one cluster per step, every node in its row at every step, elision.

Time runs along the ``direction``; each step is a cluster whose first node, its *anchor*,
is the step's label (``step 1 (t=0)``: diagrams count steps from 1, the API from 0).
Units keep their row at every step (``rank=same`` groups), initial states stand in a
cluster of their own before the first step (``h₀``), states read from beyond the last
step (a backward-in-time net) after it. A state read by several units in lower rows of
the next step (``h`` feeding four LSTM gates) runs to one junction point in that step and
fans out there. Long sequences show their first and last steps, with the middle collapsed
into one ``⋯ N steps ⋯`` node; only the steps drawn are ever looked at, so an elided
diagram of 10,000 steps costs what one of five does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import graphviz

from ..graph import Edge
from ..unrolled import Unrolled
from .canvas import Canvas
from .errors import RenderError
from .frame import Direction, graph_attrs
from .labels import (
    boundary_look,
    display_name,
    marked_edge,
    marked_node,
    unit_look,
    unit_title,
)
from .layout import ANCHOR, pin
from .overlay import Overlay
from .structure import Plan
from .style import EDGE_STYLES, KIND_STYLES, dot_id, small, split_layer, text
from .words import Wording, edges_line, highlight_line, loss_phrase, overlay_lines, step_note

__all__ = ["DEFAULT_SHOWN", "ELIDE_ABOVE", "Window", "draw_unrolled", "window"]

#: Without ``steps_shown``, sequences longer than this are elided ...
ELIDE_ABOVE = 8
#: ... to their first 3 and last 2 steps.
DEFAULT_SHOWN = (3, 2)

ELIDED = "elided"
LOSS = "loss"


@dataclass(frozen=True)
class Window:
    """The steps a diagram draws: the first ``head`` and the last ``tail`` of ``steps``."""

    steps: int
    head: int
    tail: int

    @property
    def hidden(self) -> int:
        """How many steps the elision node stands for (0: nothing elided)."""
        return self.steps - self.head - self.tail

    def shown(self) -> list[int]:
        """The steps drawn, in order."""
        return [*range(self.head), *range(self.steps - self.tail, self.steps)]

    def is_shown(self, t: int) -> bool:
        """Whether step ``t`` (in range) is drawn."""
        return t < self.head or t >= self.steps - self.tail

    def near_hidden(self, reach: int) -> list[int]:
        """Hidden steps within ``reach`` of a drawn one (their edges cross the gap)."""
        first, stop = self.head, self.steps - self.tail
        near = {*range(first, min(first + reach, stop)), *range(max(stop - reach, first), stop)}
        return sorted(near)


def window(steps: int, steps_shown=None, full: bool = False) -> Window:
    """Which steps to draw.

    Parameters
    ----------
    steps : int
    steps_shown : int or (int, int), optional
        Steps to draw at the start and at the end (an int ``k`` splits as
        ``(k - k // 2, k // 2)``). By default ``(3, 2)`` when ``steps > 8``, else all.
    full : bool
        Draw every step.

    Examples
    --------
    >>> window(50).shown()
    [0, 1, 2, 48, 49]
    >>> window(8).hidden, window(50, steps_shown=(1, 1)).hidden, window(50, full=True).hidden
    (0, 48, 0)
    """
    if full:
        return Window(steps, steps, 0)
    if steps_shown is None:
        if steps <= ELIDE_ABOVE:
            return Window(steps, steps, 0)
        head, tail = DEFAULT_SHOWN
    else:
        head, tail = _split(steps_shown)
    if head + tail >= steps:
        return Window(steps, steps, 0)
    return Window(steps, head, tail)


def _split(steps_shown) -> tuple[int, int]:
    if isinstance(steps_shown, int) and not isinstance(steps_shown, bool) and steps_shown >= 1:
        return steps_shown - steps_shown // 2, steps_shown // 2
    pair = tuple(steps_shown) if isinstance(steps_shown, tuple | list) else ()
    if (
        len(pair) == 2
        and all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in pair)
        and sum(pair) >= 1
    ):
        return pair
    raise RenderError(
        f"steps_shown must be a positive int or a pair (first, last) of counts, got {steps_shown!r}"
    )


@dataclass(frozen=True)
class _End:
    """One end of a drawn edge: a node id, its row and its place along the time axis."""

    id: str
    row: int
    pos: float
    inst: tuple[str, int] | None = None  # the folded instance whose value leaves here


@dataclass
class _Wire:
    """A drawn edge between two ends, standing for one or more edges of the unrolled DAG."""

    tail: _End
    head: _End
    carried: str
    delay: int
    source_unit: str
    edges: set[int] = field(default_factory=set)


def _count_nodes(u: Unrolled, plan: Plan, win: Window) -> int:
    """A lower bound of the nodes a diagram will hold: unit copies and boundary states."""
    units = sum(
        1
        for t in win.shown()
        for unit in plan.units
        if any(u.present(m, t) for m in plan.members(unit))
    )
    return units + len(u.boundary)


def draw_unrolled(
    u: Unrolled,
    plan: Plan,
    win: Window,
    way: Direction,
    marked: set[int],
    highlight: str | None,
    overlay: Overlay | None,
    wording: Wording,
    max_nodes: int,
    pinned: bool = True,
    loss_at=None,
) -> graphviz.Digraph:
    """Draw ``u`` (see :func:`unroll.render.render`)."""
    _refuse(_count_nodes(u, plan, win), max_nodes, win, wording)
    builder = _Builder(u, plan, win, way, marked, highlight, overlay, wording)
    builder.loss_at = None if loss_at is None else [tuple(inst) for inst in loss_at]
    canvas = builder.build()
    _refuse(len(canvas.nodes), max_nodes, win, wording)
    placement = pin(canvas, way, builder.slots) if pinned else None
    if placement is not None and placement.lines > 1:
        builder.lines = placement.lines
        canvas.graph_attrs = builder.frame()
    return canvas.emit(placement)


def _refuse(n: int, max_nodes: int, win: Window, wording: Wording) -> None:
    if n > max_nodes:
        words = wording.voice
        hint = (
            f"elide the middle steps ({words.elide}) or draw fewer steps ({words.fewer})"
            if win.hidden == 0
            else f"draw fewer steps ({words.fewer})"
        )
        raise RenderError(
            f"the diagram would have {n} nodes, more than {words.limit.format(n=max_nodes)}; "
            f"{hint}, or raise {words.max_nodes}"
        )


class _Builder:
    """Fills a :class:`Canvas` with one unrolled diagram."""

    loss_at: list | None = None

    def __init__(self, u, plan, win, way, marked, highlight, overlay, wording):
        self.u, self.plan, self.win, self.way = u, plan, win, way
        self.marked, self.highlight, self.overlay = marked, highlight, overlay
        self.wording = wording
        self.lines = 1  # lines of steps, when a wide diagram wraps
        self.graph = plan.graph
        self.anchor_row = plan.lowest_row - 1
        self.index: dict[Edge, int] = {}
        for i, e in enumerate(self.graph.edges):
            self.index.setdefault(e, i)
        self.row_of: dict[str, int] = {}
        self.canvas: Canvas  # made by build()
        self.slots: list[str] = []
        self.elided_row = max(
            [plan.row[plan.unit_of[s]] for s in self.graph.state_nodes()] or [plan.highest_row]
        )

    # ---- ends -------------------------------------------------------------------------------

    def present(self, unit: str, t: int) -> bool:
        return any(self.u.present(m, t) for m in self.plan.members(unit))

    def source_end(self, src: tuple[str, int]) -> _End:
        name, t = src
        unit = self.plan.unit_of[name]
        if not 0 <= t < self.u.steps:
            return _End(self.boundary_id(name, t), self.plan.row[unit], t, src)
        if self.win.is_shown(t):
            return _End(dot_id(unit, t), self.plan.row[unit], t, src)
        return self.elided_end()

    def boundary_id(self, name: str, t: int) -> str:
        """A boundary copy's id; a cell's boundary states share one node (``h₀, c₀``)."""
        unit = self.plan.unit_of[name]
        return dot_id(unit if unit in self.plan.cells else name, t)

    def elided_end(self) -> _End:
        return _End(ELIDED, self.elided_row, self.win.head - 0.5)

    def in_edges(self, unit: str, t: int):
        """Edges of the DAG into ``unit`` at step ``t`` from outside it: (edge, source)."""
        for m in self.plan.members(unit):
            if not self.u.present(m, t):
                continue
            for e, src in self.u.sources((m, t)):
                if not (self.plan.unit_of[e.source] == unit and e.delay == 0):
                    yield e, src

    # ---- building ---------------------------------------------------------------------------

    def build(self) -> Canvas:
        shown = self.win.shown()
        drawn = self._drawn_instances(shown)
        if self.overlay is not None:
            self.overlay.prepare(drawn)
        self.canvas = Canvas(self.graph.name, self.frame())
        self._clusters(shown)
        for t in shown:
            for unit in self.plan.units:
                if self.present(unit, t):
                    self._place(
                        dot_id(unit, t),
                        self._unit_attrs(unit, t),
                        self.plan.row[unit],
                        f"step{t}",
                        key=unit,
                    )
        wires = self._wires(shown)
        fans = self._fans(wires)
        for wire in wires:
            self._draw(wire, fans)
        for t in shown:
            for lower, upper in self.plan.stacked:
                if self.present(lower, t) and self.present(upper, t):
                    self.canvas.edge(dot_id(lower, t), dot_id(upper, t), "layout")
        self._loss()
        self._anchor_edges()
        return self.canvas

    def _drawn_instances(self, shown) -> list[tuple[str, int]]:
        drawn: list[tuple[str, int]] = []
        for t in shown:
            for unit in self.plan.units:
                if not self.present(unit, t):
                    continue
                names = self.plan.cells[unit].states if unit in self.plan.cells else (unit,)
                drawn.extend((n, t) for n in names)
        return drawn + list(self.u.boundary)

    def _place(
        self, nid: str, attrs: dict[str, str], row: int, cluster: str | None, key=None
    ) -> None:
        self.canvas.node(nid, attrs, row=row, cluster=cluster, key=key)
        self.row_of[nid] = row

    def _clusters(self, shown) -> None:
        before = [b for b in self.u.boundary if b[1] < 0]
        after = [b for b in self.u.boundary if b[1] >= self.u.steps]
        inputs_only = all(self.graph.nodes[n].op.has("fed") for n, _ in before)
        order: list[tuple[str, str | None]] = [
            ("initial", "zeros before step 1" if inputs_only else "initial state")
        ]
        order = order if before else []
        for t in shown:
            order.append((f"step{t}", None))
            if t == self.win.head - 1 and self.win.hidden:
                order.append(("hidden", ""))
        if after:
            order.append(("final", "read from beyond the last step"))
        anchors = [cid for cid, _ in order]
        self.slots = anchors
        self.canvas.time_axis = anchors[::-1] if self.way.flip else anchors
        for cid, label in order:
            self._cluster(cid, label)
        grouped: dict[str, list[tuple[str, int]]] = {}
        for name, t in before + after:
            grouped.setdefault(self.boundary_id(name, t), []).append((name, t))
        for nid, insts in grouped.items():
            t = insts[0][1]
            self._place(
                nid,
                self._boundary_attrs(insts),
                self.plan.row[self.plan.unit_of[insts[0][0]]],
                "initial" if t < 0 else "final",
            )
        if self.win.hidden:
            self._place(ELIDED, self._elided_attrs(), self.elided_row, "hidden")

    def _cluster(self, cid: str, label: str | None) -> None:
        """A cluster with its label (where the direction puts it) and its anchor: an
        invisible point in the lowest row that orders the clusters along time and holds
        their rows in place."""
        if cid.startswith("step"):
            t = int(cid[4:])
            caption = f"<B>step {t + 1}</B> {small(f'(t={t})')}"
            look = {"style": "rounded", "color": "#aaaaaa", "margin": "18"}
        else:
            caption = small(text(label)) if label else ""
            look = {"style": "rounded", "color": "transparent"}
        self.canvas.cluster(
            cid,
            label=f"<{caption}>" if caption else "",
            labelloc=self.way.labelloc,
            labeljust=self.way.labeljust,
            **look,
        )
        self._place(
            cid,
            {"shape": "point", "style": "invis", "width": "0", "height": "0"},
            self.anchor_row,
            cid,
            key=ANCHOR if cid.startswith("step") else None,
        )

    # ---- node looks -------------------------------------------------------------------------

    def _unit_attrs(self, unit: str, t: int) -> dict[str, str]:
        attrs = unit_look(self.plan, unit, t + 1, self.wording.formulas)
        if self.overlay is not None:
            if unit in self.plan.cells:
                rows = [
                    (f"<B>{display_name(s, t + 1, layer=False)}</B>", (s, t))
                    for s in self.plan.cells[unit].states
                ]
                title = unit_title(self.plan, unit)
            else:
                rows, title = [(unit_title(self.plan, unit, t + 1), (unit, t))], ""
            attrs = self._as_record(attrs, title, rows)
        return self._mark_node(attrs, unit)

    def _boundary_attrs(self, insts: list[tuple[str, int]]) -> dict[str, str]:
        attrs = boundary_look(self.graph, insts)
        if self.overlay is not None:
            rows = [(f"<B>{display_name(name, t + 1)}</B>", (name, t)) for name, t in insts]
            attrs = self._as_record(attrs, "", rows)
        return attrs

    def _as_record(self, attrs, title, rows) -> dict[str, str]:
        label = self.overlay.record(title, rows, attrs["fillcolor"])
        keep = {k: v for k, v in attrs.items() if k in ("tooltip",)}
        return {**keep, "shape": "plain", "label": f"<{label}>"}

    def _mark_node(self, attrs: dict[str, str], unit: str) -> dict[str, str]:
        if attrs.get("shape") == "plain":  # a record: its table draws its own borders
            return attrs
        return marked_node(attrs, self.plan, unit, self.marked, self.highlight)

    def _elided_attrs(self) -> dict[str, str]:
        look = KIND_STYLES["elided"]
        first, last = self.win.head, self.win.steps - self.win.tail - 1
        label = f"<B>⋯ {self.win.hidden} steps ⋯</B><BR/>" + small(
            f"steps {first + 1}–{last + 1} (t={first}…{last})"
        )
        return {
            "shape": look.shape,
            "style": look.style,
            "color": look.border,
            "label": f"<{label}>",
            "tooltip": f"{self.win.hidden} steps not drawn",
        }

    # ---- edges ------------------------------------------------------------------------------

    def _wires(self, shown) -> list[_Wire]:
        found: dict[tuple[str, str, str], _Wire] = {}

        def add(tail: _End, head: _End, e) -> None:
            key = (tail.id, head.id, e.source)
            if key not in found:
                found[key] = _Wire(tail, head, e.source, e.delay, self.plan.unit_of[e.source])
            found[key].edges.add(self.index[e])

        for t in shown:
            for unit in self.plan.units:
                if self.present(unit, t):
                    head = _End(dot_id(unit, t), self.plan.row[unit], t, (unit, t))
                    for e, src in self.in_edges(unit, t):
                        add(self.source_end(src), head, e)
        for t in self.win.near_hidden(self.graph.max_delay()):
            for unit in self.plan.units:
                if self.present(unit, t):
                    for e, src in self.in_edges(unit, t):
                        if 0 <= src[1] < self.u.steps and self.win.is_shown(src[1]):
                            add(self.source_end(src), self.elided_end(), e)
        return list(found.values())

    def _fans(self, wires) -> dict[tuple[str, str, float], list[_Wire]]:
        """Wires that go through a junction, grouped by (source end, state, target step)."""
        fans: dict[tuple[str, str, float], list[_Wire]] = {}
        for w in wires:
            if (
                w.delay
                and w.head.id != ELIDED
                and w.tail.row > w.head.row
                and (w.source_unit, w.carried, w.delay) in self.plan.fans
            ):
                fans.setdefault((w.tail.id, w.carried, w.head.pos), []).append(w)
        return {k: ws for k, ws in fans.items() if len(ws) > 1}

    def _draw(self, w: _Wire, fans) -> None:
        role = "step" if w.delay == 0 else "recurrent"
        if ELIDED in (w.tail.id, w.head.id):
            role = "elided"
        fan = fans.get((w.tail.id, w.carried, w.head.pos))
        if fan is not None:
            jid = self._junction(fan)
            self._edge(jid, w.head.id, role, w.edges, w.tail.inst)
            return
        attrs: dict[str, str] = {}
        tail, head = w.tail, w.head
        if role == "elided" or tail.row == head.row:
            attrs["constraint"] = "false"
            if self._along(tail) > self._along(head):
                tail, head, attrs["dir"] = head, tail, "back"
        elif tail.row > head.row:
            tail, head, attrs["dir"] = head, tail, "back"
        if role == "recurrent" and (label := self._label(w)):
            attrs["label"] = label
        self._edge(tail.id, head.id, role, w.edges, w.tail.inst, **attrs)

    def _label(self, w: _Wire) -> str:
        """A state edge's label: the tied weight it carries, or (from a cell) the state."""
        if w.source_unit in self.plan.cells:
            return split_layer(w.carried)[0]
        return ", ".join(sorted({self.graph.edges[i].weight for i in w.edges} - {None}))

    def _along(self, end: _End) -> float:
        """Place along dot's in-rank order (time, or time reversed when flipped)."""
        return -end.pos if self.way.flip else end.pos

    def _junction(self, fan: list[_Wire]) -> str:
        first = fan[0]
        t = int(first.head.pos)
        jid = f"{first.tail.id}.into{t}"  # a '.' never appears in names
        if first.tail.inst is None or first.tail.id != dot_id(*first.tail.inst):
            jid = f"{first.tail.id}.{first.carried}.into{t}"  # from a cell or the gap
        if jid in self.canvas.nodes:
            return jid
        row = self.plan.fans[(first.source_unit, first.carried, first.delay)]
        edges = set().union(*(w.edges for w in fan))
        stub = {**EDGE_STYLES["stub"], **self._paint("stub", edges, first.tail.inst)}
        look = {
            "shape": "point",
            "width": "0.07",
            "color": stub["color"],
            "tooltip": f"{first.carried} fans out",
        }
        key = f"fan.{first.source_unit}.{first.carried}.{first.delay}"
        self._place(jid, look, row, f"step{t}", key=key)
        extra = {"constraint": "false"} if first.tail.id == ELIDED else {}
        self._edge(jid, first.tail.id, "stub", edges, first.tail.inst, **extra)
        return jid

    def _edge(self, tail: str, head: str, role: str, edges: set[int], inst, **attrs) -> None:
        attrs = {**attrs, **self._paint(role, edges, inst)}
        self.canvas.edge(tail, head, role, **attrs)

    def _paint(self, role: str, edges: set[int], inst) -> dict[str, str]:
        paint = marked_edge(edges, self.marked, self.highlight)
        if self.overlay is not None and self.overlay.grads and role != "step" and inst:
            paint.update(self.overlay.edge_paint(inst))
        return paint

    # ---- loss, anchors ----------------------------------------------------------------------

    def _losses(self) -> list[tuple[str, int]]:
        """The output instances the loss reads: the mode's, or for a result driven by
        cotangents those its ``loss_at`` names (none when not given)."""
        if self.overlay is not None and self.overlay.result.loss is None:
            return list(self.overlay.loss_at or [])
        if self.loss_at is not None:  # a plain diagram of where cotangents stand for a loss
            return self.loss_at
        return list(self.u.loss_instances)

    def _loss(self) -> None:
        losses = self._losses()
        value = self.overlay.result.loss if self.overlay is not None else None
        if not losses:
            return
        look = KIND_STYLES["loss"]
        label = "<B>L</B>" if value is None else f"<B>L = {value:.4g}</B>"
        if self.overlay is not None and value is None:  # cotangents of ones: L = Σ outputs
            label = "<B>L = Σ " + ", ".join(display_name(n, t + 1) for n, t in losses) + "</B>"
        self._place(
            LOSS,
            {
                "shape": look.shape,
                "style": look.style,
                "fillcolor": look.fill,
                "color": look.border,
                "fontcolor": "white",
                "label": f"<{label}>",
                "tooltip": "the loss: a sum over the outputs "
                f"{', '.join(sorted({n for n, _ in losses}))} at the loss steps",
            },
            self.plan.highest_row + 1,
            None,
        )
        hidden = False
        for name, t in losses:
            if self.win.is_shown(t):
                self.canvas.edge(dot_id(self.plan.unit_of[name], t), LOSS, "loss")
            else:
                hidden = True
        if hidden:
            self.canvas.edge(ELIDED, LOSS, "loss", constraint="false")

    def _anchor_edges(self) -> None:
        """Tie each cluster's nodes that nothing else places to its anchor, row by row."""
        placed = {
            head for _, head, attrs in self.canvas.edges if attrs.get("constraint") != "false"
        }
        for cid, cluster in self.canvas.clusters.items():
            for nid in cluster.nodes:
                if nid != cid and nid not in placed:
                    self.canvas.edge(
                        cid, nid, "layout", minlen=str(self.row_of[nid] - self.anchor_row)
                    )

    # ---- text -------------------------------------------------------------------------------

    def frame(self) -> dict[str, str]:
        """The graph attributes: layout, title, caption and legend."""
        caption = "\n".join(self._caption()) if self.wording.caption else ""
        return graph_attrs(self.way, self._title(), caption, self._legend())

    def _title(self) -> str:
        if self.wording.title is not None:
            return self.wording.title
        u = self.u
        title = f"{self.graph.name} unrolled over {u.steps} step{'s' * (u.steps > 1)}"
        losses = self._losses()
        return (
            f"{title}, {loss_phrase(u.steps, sorted({t for _, t in losses}))}" if losses else title
        )

    def _caption(self) -> list[str]:
        words = self.wording.voice
        overlay = self.overlay
        lines = []
        if overlay is not None:
            lines += overlay_lines(overlay.values, overlay.grads)
        if self.highlight is not None:
            lines.append(highlight_line(self.highlight, self.graph, self.marked))
        elif overlay is None or not overlay.grads:
            lines.append(edges_line(self.graph, self.u.steps))
        if overlay is not None and overlay.values:
            lines.append(step_note(words))
        if self.win.hidden:
            lines.append(f"{self.win.hidden} middle steps are elided ({words.full} draws them).")
        if self.lines > 1:
            lines.append(f"The steps wrap onto {self.lines} lines to fit a slide.")
        return lines

    def _legend(self) -> str:
        return self.overlay.legend() if self.overlay is not None else ""
