"""Draw a graphviz layout with matplotlib, from the drawing operations ``dot -Tjson`` gives.

Graphviz lays a diagram out and lists how to draw it as *xdot* operations (``P``
polygon, ``B``/``b`` Bézier, ``E`` ellipse, ``L`` polyline, ``T`` text, with ``c``/``C`` pen and
fill colours, ``F`` font and ``S`` style). :func:`draw_layout` replays them on a matplotlib
Axes, so a diagram can be a frame of an animation; the shapes of each node are returned
by its DOT id, so a frame can repaint them. Coordinates are points, y up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from matplotlib.patches import Ellipse, PathPatch, Polygon
from matplotlib.path import Path as MplPath

__all__ = ["Drawn", "draw_layout"]

_NONE = "none"
# Fonts with Helvetica's widths, which graphviz measured the labels with; DejaVu (always
# there) is wider, so labels would overrun their boxes.
_LIKE_HELVETICA = ("Helvetica", "Arial", "Liberation Sans", "Nimbus Sans", "DejaVu Sans")
_WIDTH = re.compile(r"setlinewidth\(([\d.]+)\)")
_ALIGN = {"l": "left", "c": "center", "r": "right"}


@dataclass
class Drawn:
    """What :func:`draw_layout` drew: each node's filled shapes and texts, by DOT id."""

    fills: dict[str, list] = field(default_factory=dict)
    texts: dict[str, list] = field(default_factory=dict)


@dataclass
class _Pen:
    colour: str = "#000000"
    fill: str = "#000000"
    font: float = 14.0
    face: str = "Helvetica"
    bold: bool = False
    width: float = 1.0
    dash: str = "solid"


@lru_cache(maxsize=1)
def _sans() -> str:
    """The first font of :data:`_LIKE_HELVETICA` that matplotlib has."""
    from matplotlib import font_manager

    have = {f.name for f in font_manager.fontManager.ttflist}
    return next((f for f in _LIKE_HELVETICA if f in have), "sans-serif")


def _colour(text: str) -> str:
    """An xdot colour as matplotlib takes it (``#rrggbbaa`` stays, names pass through)."""
    return _NONE if text in ("transparent", "none") else text


def draw_layout(ax, graph: dict, zoom: float = 1.0) -> Drawn:
    """Replay the xdot operations of ``graph`` (from :func:`unroll.explore.dot.layout`) on ``ax``.

    ``zoom`` scales fonts and line widths (1: the figure is as large as the diagram in
    points). Returns the filled shapes and texts of every node, by its DOT id.

    Examples
    --------
    >>> import unroll
    >>> from matplotlib.figure import Figure
    >>> from unroll.explore.dot import layout
    >>> g = layout(unroll.render(unroll.unroll(unroll.presets.neuron(), 2)))
    >>> drawn = draw_layout(Figure().subplots(), g)
    >>> sorted(drawn.fills)[:3]
    ['h_0', 'h_1', 'h_m1']
    """
    x0, y0, x1, y1 = (float(v) for v in graph["bb"].split(","))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.axis("off")
    drawn = Drawn()
    _replay(ax, graph, zoom, None, drawn)
    for cluster in graph.get("objects", []):
        if "nodes" in cluster and "_draw_" in cluster:
            _replay(ax, cluster, zoom, None, drawn)
    for edge in graph.get("edges", []):
        _replay(ax, edge, zoom, None, drawn)
    for node in graph.get("objects", []):
        if "nodes" not in node:
            _replay(ax, node, zoom, node["name"], drawn)
    return drawn


def _replay(ax, obj: dict, zoom: float, node: str | None, drawn: Drawn) -> None:
    pen = _Pen()
    for key in ("_draw_", "_ldraw_", "_hdraw_", "_tdraw_", "_hldraw_", "_tldraw_"):
        for op in obj.get(key, []):
            artist = _OPS[op["op"]](ax, op, pen, zoom)
            if node is None or artist is None:
                continue
            kind = "texts" if op["op"] == "T" else "fills"
            if kind == "texts" or op["op"] in ("P", "B", "b", "E"):
                getattr(drawn, kind).setdefault(node, []).append(artist)


def _style(pen: _Pen, op: dict, zoom: float):
    for part in op["style"].split(","):
        part = part.strip()
        if width := _WIDTH.match(part):
            pen.width = float(width[1])
        elif part in ("dashed", "dotted", "solid"):
            pen.dash = part
        elif part == "bold":
            pen.width = 2.0


def _shape_kw(pen: _Pen, zoom: float, filled: bool) -> dict:
    return {
        "facecolor": _colour(pen.fill) if filled else _NONE,
        "edgecolor": _colour(pen.colour),
        "linewidth": pen.width * zoom,
        "linestyle": pen.dash,
    }


def _polygon(ax, op, pen, zoom, filled):
    return ax.add_patch(Polygon(op["points"], closed=True, **_shape_kw(pen, zoom, filled)))


def _bezier(ax, op, pen, zoom):
    # Graphviz versions disagree on which of B and b is the filled one; a closed curve
    # (a node's or cluster's outline) is filled, an open one (an edge) is not.
    points = op["points"]
    filled = points[0] == points[-1]
    codes = [MplPath.MOVETO] + [MplPath.CURVE4] * (len(points) - 1)
    return ax.add_patch(PathPatch(MplPath(points, codes), **_shape_kw(pen, zoom, filled)))


def _ellipse(ax, op, pen, zoom, filled):
    (cx, cy), (rx, ry) = op["rect"][:2], op["rect"][2:]
    return ax.add_patch(Ellipse((cx, cy), 2 * rx, 2 * ry, **_shape_kw(pen, zoom, filled)))


def _polyline(ax, op, pen, zoom):
    xs, ys = zip(*op["points"], strict=True)
    (line,) = ax.plot(
        xs, ys, color=_colour(pen.colour), linewidth=pen.width * zoom, linestyle=pen.dash
    )
    return line


def _text(ax, op, pen, zoom):
    x, y = op["pt"]
    return ax.text(
        x,
        y,
        op["text"],
        ha=_ALIGN[op["align"]],
        va="baseline",
        fontsize=pen.font * zoom,
        fontweight="bold" if pen.bold else "normal",
        fontfamily=[_sans(), "DejaVu Sans"],  # DejaVu for glyphs it lacks (h₀)
        color=_colour(pen.colour),
    )


def _set(attribute):
    def apply(ax, op, pen, zoom):
        setattr(pen, attribute, op["color"])

    return apply


def _font(ax, op, pen, zoom):
    pen.font, pen.face = op["size"], op["face"]


def _font_flags(ax, op, pen, zoom):
    pen.bold = bool(op["fontchar"] & 1)


#: One row per xdot operation.
_OPS = {
    "P": lambda ax, op, pen, zoom: _polygon(ax, op, pen, zoom, True),
    "p": lambda ax, op, pen, zoom: _polygon(ax, op, pen, zoom, False),
    "B": _bezier,
    "b": _bezier,
    "E": lambda ax, op, pen, zoom: _ellipse(ax, op, pen, zoom, True),
    "e": lambda ax, op, pen, zoom: _ellipse(ax, op, pen, zoom, False),
    "L": _polyline,
    "T": _text,
    "c": _set("colour"),
    "C": _set("fill"),
    "F": _font,
    "S": lambda ax, op, pen, zoom: _style(pen, op, zoom),
    "t": _font_flags,
    "I": lambda ax, op, pen, zoom: None,
}
