"""The frame of a diagram: which way time runs, graph attributes, title, caption, legend."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import RenderError
from .style import FONT, small, text

__all__ = ["DIRECTIONS", "Direction", "direction", "graph_attrs"]


@dataclass(frozen=True)
class Direction:
    """How a ``direction=`` option maps onto dot.

    Rows of a step (inputs first, outputs last) run along dot's rank axis, across the
    time axis; ``flip`` says that dot's in-rank order runs against time (with
    ``rankdir=LR`` dot orders a rank bottom to top, and time should run top to bottom).
    """

    name: str
    rankdir: str
    flip: bool
    labelloc: str  # where a step's label sits in its cluster (in dot's unflipped terms)
    labeljust: str
    doc: str


#: ``direction=`` option -> how dot draws it.
DIRECTIONS: dict[str, Direction] = {
    d.name: d
    for d in [
        Direction(
            "LR", "BT", False, "b", "c", "time left to right; inputs at the bottom, outputs on top"
        ),
        Direction(
            "TB",
            "LR",
            True,
            "t",
            "l",
            "time top to bottom; inputs on the left, outputs on the right",
        ),
    ]
}


def direction(name: str) -> Direction:
    """The row of :data:`DIRECTIONS` for ``name``; :class:`RenderError` names the known ones."""
    if name not in DIRECTIONS:
        raise RenderError(f"unknown direction {name!r} (known: {', '.join(DIRECTIONS)})")
    return DIRECTIONS[name]


def graph_attrs(way: Direction, title: str, caption: str, legend: str = "") -> dict[str, str]:
    """Graph attributes: layout settings and an HTML label with a title, caption lines
    (``caption`` split at newlines) and a legend (HTML table rows)."""
    rows = []
    if title:
        rows.append(f'<TR><TD><FONT POINT-SIZE="15">{text(title)}</FONT></TD></TR>')
    for line in caption.split("\n") if caption else ():
        rows.append(f"<TR><TD>{small(text(line), size=10)}</TD></TR>")
    attrs = {
        "rankdir": way.rankdir,
        "newrank": "true",
        "nodesep": "0.25",
        "ranksep": "0.35",
        "fontname": FONT,
        "bgcolor": "white",
        "pad": "0.2",
    }
    if rows or legend:
        attrs["label"] = (
            '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2">'
            + "".join(rows)
            + legend
            + "</TABLE>>"
        )
        attrs["labelloc"] = "t"
    return attrs
