"""A drawing before it becomes DOT: nodes in rows and clusters, edges, a time axis.

Both views fill a :class:`Canvas`; :meth:`Canvas.emit` writes it as a ``graphviz.Digraph``
in a fixed order (clusters, free nodes, rows, row orders, edges), so the same drawing
gives the same DOT text byte for byte. Rows become ``rank=same`` groups (with ``newrank``
they hold across clusters). The clusters are put in time order the one way dot honours
across clusters: an invisible node below the row of step anchors whose out-edges, in
order (``ordering=out``), reach the anchors. (Within a cluster dot 2.43 keeps neither
``ordering`` nor flat edges; the order there is dot's, steadied by where the views put
junction points.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import graphviz

from ..quoting import dot_id
from .style import EDGE_STYLES, FONT

__all__ = ["TIME_AXIS", "Canvas", "Cluster"]

#: Id of the invisible node that orders the step clusters along the time axis.
TIME_AXIS = "time_axis"


@dataclass
class Cluster:
    """A box of nodes (one time step, or the initial states)."""

    id: str
    attrs: dict[str, str]
    nodes: list[str] = field(default_factory=list)


@dataclass
class Canvas:
    """Nodes, edges, clusters and rows of one diagram, in the order they were added."""

    name: str
    graph_attrs: dict[str, str]
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    clusters: dict[str, Cluster] = field(default_factory=dict)
    rows: dict[int, list[str]] = field(default_factory=dict)
    edges: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    time_axis: list[str] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)
    node_attrs: dict[str, str] = field(default_factory=lambda: dict(NODE_ATTRS))

    def cluster(self, cid: str, **attrs: str) -> Cluster:
        """Add (or get) cluster ``cid``; its DOT name is ``cluster_<cid>``."""
        return self.clusters.setdefault(cid, Cluster(cid, attrs))

    def node(
        self,
        nid: str,
        attrs: dict[str, str],
        *,
        row: int | None = None,
        cluster: str | None = None,
        key: str | None = None,
    ) -> None:
        """Add node ``nid``, in a row (same rank across the diagram) and a cluster;
        ``key`` names its place in a step's template (the same in every step)."""
        self.nodes[nid] = attrs
        if key is not None:
            self.keys[nid] = key
        if row is not None:
            self.rows.setdefault(row, []).append(nid)
        if cluster is not None:
            self.clusters[cluster].nodes.append(nid)

    def edge(self, tail: str, head: str, role: str, **attrs: str) -> None:
        """Add an edge in one of the :data:`~unroll.render.style.EDGE_STYLES` roles."""
        self.edges.append((tail, head, {**EDGE_STYLES[role], **attrs}))

    def row_of(self, nid: str) -> int | None:
        """The row node ``nid`` sits in (None for none)."""
        for row, nids in self.rows.items():
            if nid in nids:
                return row
        return None

    def emit(self, placement=None) -> graphviz.Digraph:
        """The drawing as a ``graphviz.Digraph``, deterministic; with a
        :class:`~unroll.render.layout.Placement`, every node pinned where it says."""
        if placement is not None:
            return self._emit_pinned(placement)
        dot = self._digraph(self.graph_attrs)
        placed = set()
        for c in self.clusters.values():
            with dot.subgraph(name=f"cluster_{c.id}") as sub:
                sub.attr(**{"label": "", **c.attrs})  # never the inherited title
                for nid in c.nodes:
                    sub.node(nid, **self.nodes[nid])
                    placed.add(nid)
        for nid, attrs in self.nodes.items():
            if nid not in placed:
                dot.node(nid, **attrs)
        for row in sorted(r for r, nids in self.rows.items() if len(nids) > 1):
            with dot.subgraph() as same:
                same.attr(rank="same")
                for nid in self.rows[row]:
                    same.node(nid)
        if self.time_axis:
            dot.node(TIME_AXIS, shape="point", style="invis", width="0", height="0", ordering="out")
            for anchor in self.time_axis:
                dot.edge(TIME_AXIS, anchor, **EDGE_STYLES["layout"])
        for tail, head, attrs in self.edges:
            dot.edge(tail, head, **attrs)
        return dot

    def _digraph(self, graph_attrs: dict[str, str]) -> graphviz.Digraph:
        return graphviz.Digraph(
            dot_id(self.name),
            graph_attr=graph_attrs,
            node_attr=self.node_attrs,
            edge_attr=EDGE_ATTRS,
        )

    def _emit_pinned(self, placement) -> graphviz.Digraph:
        """Every node at ``pos="x,y!"``; each cluster kept open by two invisible corner
        points (``<cluster>.corner0/1``); no rows or layout edges (positions say it all)."""
        attrs = {k: v for k, v in self.graph_attrs.items() if k not in _RANK_ONLY}
        dot = self._digraph({**attrs, **PINNED})
        placed = set()
        for c in self.clusters.values():
            with dot.subgraph(name=f"cluster_{c.id}") as sub:
                sub.attr(**{"label": "", **c.attrs})
                x0, y0, x1, y1 = placement.boxes[c.id]
                for i, (x, y) in enumerate([(x0, y0), (x1, y1)]):
                    sub.node(f"{c.id}.corner{i}", **_CORNER, pos=_pos(x, y))
                for nid in c.nodes:
                    placed.add(nid)
                    if nid in placement.pos and _visible(self.nodes[nid]):
                        sub.node(nid, **self.nodes[nid], pos=_pos(*placement.pos[nid]))
        for nid, node in self.nodes.items():
            if nid not in placed and nid in placement.pos and _visible(node):
                dot.node(nid, **node, pos=_pos(*placement.pos[nid]))
        for tail, head, edge in self.edges:
            if edge.get("style") != "invis" and tail in placement.pos and head in placement.pos:
                dot.edge(tail, head, **{k: v for k, v in edge.items() if k not in _RANK_ONLY})
        return dot


def _visible(attrs: dict[str, str]) -> bool:
    return attrs.get("style") != "invis"


def _pos(x: float, y: float) -> str:
    return f"{x:.1f},{y:.1f}!"


NODE_ATTRS: dict[str, str] = {"fontname": FONT, "fontsize": "12", "margin": "0.08,0.04"}
EDGE_ATTRS = {"fontname": FONT, "fontsize": "9", "arrowsize": "0.7"}
#: Graph attributes of a pinned diagram: neato draws the given positions (points) as they
#: are and routes the edges around the nodes.
PINNED = {"layout": "neato", "inputscale": "72", "notranslate": "true", "splines": "true"}
_RANK_ONLY = {"rankdir", "newrank", "nodesep", "ranksep", "constraint", "minlen"}
_CORNER = {"shape": "point", "style": "invis", "width": "0", "height": "0", "label": ""}
