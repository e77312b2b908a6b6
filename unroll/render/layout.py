"""A pinned layout for unrolled diagrams: one step laid out once, its placement repeated.

dot orders the nodes of every step cluster anew, so an LSTM's gates came out ``o f i g``
in one step and ``f i g o`` in the next. Here dot lays out one *template* step (the union
of the units any drawn step holds, each as large as its largest copy), and every step is
that template moved along the time axis; initial states, the elided gap and final states
get columns of their own, the loss node sits beyond the outputs over the steps it reads.
Every node is written with ``pos="x,y!"`` and the graph with ``layout=neato``, so any
graphviz program (``dot -Tsvg file.dot`` too) draws exactly these positions and routes
the edges between them. Two runs of ``dot`` find the node sizes and the template; where
``dot`` is missing, :func:`pin` returns None and the diagram leaves the layout to dot.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field

from .canvas import Canvas
from .frame import Direction

__all__ = ["Placement", "pin"]

POINTS = 72.0  # graphviz's points per inch
MARGIN = 14.0  # inside a step's box, around its nodes
GAP = 22.0  # between two columns along the time axis
LABEL = 22.0  # the strip a step's label takes
LOSS_GAP = 28.0  # between the outputs and the loss node
WRAP_GAP = 36.0  # between two lines of wrapped steps
#: Diagrams with time left to right wrap their steps onto several lines beyond this
#: width (points; about a 16:9 slide's width at the size its text still reads).
SLIDE_WIDTH = 2000.0
ANCHOR = "anchor"  # the template key of a step's anchor (invisible, rows only)


@dataclass
class Placement:
    """Where every node of a canvas goes, and the box of every cluster (points)."""

    pos: dict[str, tuple[float, float]] = field(default_factory=dict)
    boxes: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)
    labels: dict[str, tuple[float, float]] = field(default_factory=dict)
    lines: int = 1
    line_of: dict[str, int] = field(default_factory=dict)
    line_height: float = 0.0
    end: float = 0.0  # where the last column ends along time


def pin(canvas: Canvas, way: Direction, slots: list[str], per_line: int | None = None):
    """The pinned placement of an unrolled ``canvas`` (None without ``dot``).

    Parameters
    ----------
    canvas : Canvas
        Its step clusters' nodes carry template keys (:attr:`Canvas.keys`).
    way : Direction
    slots : list of str
        The clusters in time order: ``initial``, ``step0``, ..., ``hidden``, ``final``.
    per_line : int, optional
        Wrap the steps onto lines of this many (time left to right only).
    """
    if shutil.which("dot") is None:
        return None
    sizes = _sizes(canvas)
    if sizes is None:
        return None
    template = _template(canvas, way, sizes)
    if template is None:
        return None
    return _compose(canvas, way, slots, sizes, template, per_line)


# ---- running dot ------------------------------------------------------------------------------


def _run_dot(source: str) -> dict | None:
    try:
        done = subprocess.run(
            ["dot", "-Tjson0"], input=source, capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return json.loads(done.stdout)


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _attr_text(attrs: dict[str, str]) -> str:
    parts = []
    for k, v in attrs.items():
        value = v if v.startswith("<") and v.endswith(">") else _quote(v)
        parts.append(f"{k}={value}")
    return "[" + " ".join(parts) + "]"


def _sizes(canvas: Canvas) -> dict[str, tuple[float, float]] | None:
    """Width and height (points) of every visible node, as dot measures their labels."""
    lines = [
        "digraph sizes {",
        f"node {_attr_text(canvas.node_attrs)}",
        *(f"{_quote(n)} {_attr_text(a)}" for n, a in canvas.nodes.items() if _visible(a)),
        "}",
    ]
    out = _run_dot("\n".join(lines))
    if out is None:
        return None
    return {
        o["name"]: (float(o["width"]) * POINTS, float(o["height"]) * POINTS)
        for o in out.get("objects", [])
        if "width" in o
    }


def _visible(attrs: dict[str, str]) -> bool:
    return attrs.get("style") != "invis"


# ---- the template -----------------------------------------------------------------------------


def _step_clusters(canvas: Canvas):
    return [c for cid, c in canvas.clusters.items() if cid.startswith("step")]


def _template(canvas: Canvas, way: Direction, sizes):
    """Lay out the union of the steps once: key -> (x, y), and the template's box."""
    cluster_of = {n: c.id for c in _step_clusters(canvas) for n in c.nodes}
    size: dict[str, tuple[float, float]] = {}
    for nid in cluster_of:
        key = canvas.keys.get(nid)
        if key is None:
            return None
        w, h = sizes.get(nid, (0.0, 0.0))
        old = size.get(key, (0.0, 0.0))
        size[key] = (max(w, old[0]), max(h, old[1]))
    edges: dict[tuple[str, str], dict[str, str]] = {}
    for tail, head, attrs in canvas.edges:
        if cluster_of.get(tail) is None or cluster_of.get(tail) != cluster_of.get(head):
            continue
        a, b = canvas.keys[tail], canvas.keys[head]
        keep = {k: attrs[k] for k in ("minlen",) if k in attrs}
        if attrs.get("constraint") == "false" and canvas.row_of(tail) != canvas.row_of(head):
            keep["constraint"] = "false"
        edges.setdefault((a, b), keep)
    lines = [
        "digraph template {",
        f"graph [rankdir={way.rankdir} newrank=true nodesep=0.3 ranksep=0.35]",
        'node [fixedsize=true label=""]',
    ]
    for key in sorted(size, key=_key_order(canvas)):
        w, h = size[key]
        look = {"shape": "box", "width": f"{w / POINTS:.4f}", "height": f"{h / POINTS:.4f}"}
        lines.append(f"{_quote(key)} {_attr_text(look)}")
    for row in sorted(canvas.rows):
        keys = sorted({canvas.keys[n] for n in canvas.rows[row] if n in cluster_of})
        if len(keys) > 1:
            lines.append("{rank=same; " + " ".join(_quote(k) for k in keys) + "}")
    for row in sorted(canvas.rows):  # a fan's junction leads its row: the state comes in there
        keys = sorted({canvas.keys[n] for n in canvas.rows[row] if n in cluster_of})
        for fan in filter(_fan, keys):
            for other in keys:
                if other != fan:
                    edges.setdefault((fan, other), {"style": "invis"})
    for (a, b), attrs in edges.items():
        lines.append(f"{_quote(a)} -> {_quote(b)} {_attr_text(attrs)}")
    lines.append("}")
    out = _run_dot("\n".join(lines))
    if out is None:
        return None
    pos = {}
    for o in out.get("objects", []):
        if "pos" in o:
            x, y = (float(v) for v in o["pos"].split(","))
            pos[o["name"]] = (x, y)
    if set(pos) != set(size):
        return None
    return pos, size


def _key_order(canvas: Canvas):
    first: dict[str, int] = {}
    for i, nid in enumerate(canvas.nodes):
        key = canvas.keys.get(nid)
        if key is not None:
            first.setdefault(key, i)
    return lambda key: first.get(key, len(first))


# ---- composing the steps ----------------------------------------------------------------------


@dataclass
class _Axes:
    """Template coordinates turned into (along time, across time) and back into (x, y)."""

    way: Direction

    def split(self, x: float, y: float) -> tuple[float, float]:
        return (x, y) if self.way.name == "LR" else (-y, x)

    def join(self, along: float, across: float) -> tuple[float, float]:
        return (along, across) if self.way.name == "LR" else (across, -along)

    def extent(self, w: float, h: float) -> tuple[float, float]:
        """A node's size (along, across)."""
        return (w, h) if self.way.name == "LR" else (h, w)


def _compose(canvas, way, slots, sizes, template, per_line):
    pos, size = template
    axes = _Axes(way)
    keyed = {k: axes.split(*p) for k, p in pos.items()}
    half = {k: axes.extent(*s) for k, s in size.items()}
    lo_along = min(a - half[k][0] / 2 for k, (a, _) in keyed.items() if not _fan(k))
    hi_along = max(a + half[k][0] / 2 for k, (a, _) in keyed.items())
    for k in filter(_fan, keyed):  # where the state comes in: the step's first side
        side = lo_along - MARGIN / 2 if int(k.rsplit(".", 1)[1]) > 0 else hi_along + MARGIN / 2
        keyed[k] = (side, keyed[k][1])  # (its last for a state from the step after)
    row_across = {}
    for row, nids in canvas.rows.items():
        for nid in nids:
            key = canvas.keys.get(nid)
            if key in keyed:
                row_across[row] = keyed[key][1]
    visible = [k for k in keyed if k != ANCHOR and size[k][0] > 0]
    lo_across = min(keyed[k][1] - half[k][1] / 2 for k in visible)
    hi_across = max(keyed[k][1] + half[k][1] / 2 for k in visible)
    placement = Placement()
    label_along = LABEL if way.name == "TB" else 0.0  # TB: the label heads its box
    label_across = LABEL if way.name == "LR" else 0.0  # LR: it sits under its box
    step_length = hi_along - lo_along + 2 * MARGIN + label_along
    box_across = (lo_across - MARGIN - label_across, hi_across + MARGIN)
    line_height = box_across[1] - box_across[0] + WRAP_GAP
    if per_line is None and way.name == "LR":
        per_line = _per_line(canvas, slots, step_length, sizes)
    if per_line is not None:
        line_height += _loss_height(canvas, sizes, axes)
    placement.line_height = line_height
    cursor, line, placed_steps, line_start = 0.0, 0, 0, None
    for cid in slots:
        cluster = canvas.clusters[cid]
        is_step = cid.startswith("step")
        if is_step and line_start is None:
            line_start = cursor
        if is_step and per_line and placed_steps and placed_steps % per_line == 0:
            assert line_start is not None  # set at the first step
            line, cursor = line + 1, line_start
        shift = -line * line_height
        if is_step:
            placed_steps += 1
            start = cursor + MARGIN + label_along - lo_along
            for nid in cluster.nodes:
                along, across = keyed[canvas.keys[nid]]
                placement.pos[nid] = axes.join(start + along, across + shift)
                placement.line_of[nid] = line
            length = step_length
        else:
            length = _column(canvas, cluster, sizes, axes, row_across, cursor, shift, placement)
            placement.line_of.update(dict.fromkeys(cluster.nodes, line))
        placement.boxes[cid] = _box(axes, cursor, cursor + length, box_across, shift)
        placement.labels[cid] = _label_at(axes, way, cursor, length, box_across, shift)
        cursor += length + GAP
    placement.lines = line + 1
    placement.end = cursor - GAP
    _place_free(canvas, sizes, axes, placement, box_across)
    return placement


def _per_line(canvas, slots, step_length, sizes) -> int | None:
    """Steps per line when a diagram would be wider than :data:`SLIDE_WIDTH` (else None)."""
    steps = sum(1 for cid in slots if cid.startswith("step"))
    others = [cid for cid in slots if not cid.startswith("step")]
    rest = sum(
        max((sizes.get(n, (0.0, 0.0))[0] for n in canvas.clusters[cid].nodes), default=0.0)
        + 2 * MARGIN
        + GAP
        for cid in others
    )
    if steps < 2 or rest + steps * (step_length + GAP) <= SLIDE_WIDTH:
        return None
    fit = int((SLIDE_WIDTH - rest) // (step_length + GAP))
    return max(1, min(fit, steps - 1))


def _fan(key: str) -> bool:
    return key.startswith("fan.")


def _column(canvas, cluster, sizes, axes, row_across, cursor, shift, placement) -> float:
    """Place a column's nodes (initial states, the gap, final states) in their rows,
    several in one row one after another; return its length along time."""
    by_row: dict[float, list[str]] = {}
    for nid in cluster.nodes:
        if nid == cluster.id:
            continue  # the anchor: rows only
        across = row_across.get(canvas.row_of(nid), 0.0)
        by_row.setdefault(across, []).append(nid)
    longest = 0.0
    for across, nids in by_row.items():
        at = cursor + MARGIN
        for nid in nids:
            along = axes.extent(*sizes.get(nid, (0.0, 0.0)))[0]
            placement.pos[nid] = axes.join(at + along / 2, across + shift)
            at += along + GAP / 2
        longest = max(longest, at - GAP / 2 - cursor - MARGIN)
    if cluster.id in placement.pos:
        placement.pos.pop(cluster.id)
    return longest + 2 * MARGIN


def _box(axes, start, stop, across, shift):
    x0, y0 = axes.join(start, across[0] + shift)
    x1, y1 = axes.join(stop, across[1] + shift)
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _label_at(axes, way, start, length, across, shift):
    if way.name == "LR":
        return axes.join(start + length / 2, across[0] + shift + LABEL / 2)
    return axes.join(start + LABEL / 2, across[0] + shift)


def _loss_height(canvas, sizes, axes) -> float:
    inside = _clustered(canvas)
    free = [axes.extent(*sizes[n])[1] for n in canvas.nodes if n not in inside and n in sizes]
    return max(free, default=0.0) + LOSS_GAP


def _clustered(canvas) -> set[str]:
    return {n for c in canvas.clusters.values() for n in c.nodes}


def _place_free(canvas, sizes, axes, placement, box_across) -> None:
    """Nodes outside every cluster (the loss): beyond the highest row of the line of steps
    that holds the last node feeding them, over the middle of its feeders there."""
    inside = _clustered(canvas)
    for nid, attrs in canvas.nodes.items():
        if nid in inside or not _visible(attrs):
            continue
        feeders = [t for t, h, _ in canvas.edges if h == nid and t in placement.pos]
        if not feeders:
            continue
        line = max(placement.line_of.get(t, 0) for t in feeders)
        along = [
            axes.split(*placement.pos[t])[0] for t in feeders if placement.line_of.get(t, 0) == line
        ]
        top = box_across[1] - line * placement.line_height
        width, size = axes.extent(*sizes.get(nid, (0.0, 0.0)))
        if placement.lines > 1:  # wrapped: after the last step, level with its top row
            at = (placement.end + LOSS_GAP + width / 2, top - size / 2 - MARGIN)
        else:
            at = ((min(along) + max(along)) / 2, top + LOSS_GAP + size / 2)
        placement.pos[nid] = axes.join(*at)
