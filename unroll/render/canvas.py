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

    def cluster(self, cid: str, **attrs: str) -> Cluster:
        """Add (or get) cluster ``cid``; its DOT name is ``cluster_<cid>``."""
        return self.clusters.setdefault(cid, Cluster(cid, attrs))

    def node(
        self, nid: str, attrs: dict[str, str], *, row: int | None = None, cluster: str | None = None
    ) -> None:
        """Add node ``nid``, in a row (same rank across the diagram) and a cluster."""
        self.nodes[nid] = attrs
        if row is not None:
            self.rows.setdefault(row, []).append(nid)
        if cluster is not None:
            self.clusters[cluster].nodes.append(nid)

    def edge(self, tail: str, head: str, role: str, **attrs: str) -> None:
        """Add an edge in one of the :data:`~unroll.render.style.EDGE_STYLES` roles."""
        self.edges.append((tail, head, {**EDGE_STYLES[role], **attrs}))

    def emit(self) -> graphviz.Digraph:
        """The drawing as a ``graphviz.Digraph``, deterministic."""
        dot = graphviz.Digraph(
            dot_id(self.name),
            graph_attr=self.graph_attrs,
            node_attr={"fontname": FONT, "fontsize": "12", "margin": "0.08,0.04"},
            edge_attr={"fontname": FONT, "fontsize": "9", "arrowsize": "0.7"},
        )
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
