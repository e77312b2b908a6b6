"""Run graphviz's ``dot`` on a diagram: SVG for the page, a JSON layout for animations."""

from __future__ import annotations

import json

import graphviz

from ..render import render
from .runs import ExploreError

__all__ = ["draw", "layout", "pipe"]


def draw(run, drawing: dict) -> graphviz.Digraph:
    """The unrolled diagram of ``run`` (a :class:`~unroll.explore.runs.Run`), unpainted and
    untitled (the explorer paints it, the page names it), drawn with ``drawing``'s options
    of :func:`unroll.render`."""
    return render(
        run.unrolled, result=run.result, grads=False, title="", loss_at=run.loss_at, **drawing
    )


def pipe(digraph: graphviz.Digraph, fmt: str) -> bytes:
    """``digraph`` laid out by ``dot`` in format ``fmt``; a missing ``dot`` is one clear error."""
    try:
        return digraph.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise ExploreError(
            "the diagrams need graphviz's 'dot' program, which is not on PATH: install "
            "graphviz (apt-get install graphviz, or brew install graphviz)"
        ) from None


def layout(digraph: graphviz.Digraph) -> dict:
    """The laid-out diagram as graphviz's JSON, xdot drawing operations included.

    Examples
    --------
    >>> import unroll
    >>> graph = layout(unroll.render(unroll.unroll(unroll.presets.neuron(), 2)))
    >>> sorted(o["name"] for o in graph["objects"] if o["name"].startswith("h_"))
    ['h_0', 'h_1', 'h_m1']
    """
    return json.loads(pipe(digraph, "json"))
