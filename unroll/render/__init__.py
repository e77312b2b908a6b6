"""Graphviz diagrams of folded and unrolled graphs, with value and gradient overlays.

:func:`render` draws an :class:`unroll.Graph` folded (its cycle, delayed edges as loops),
an :class:`unroll.Unrolled` graph as one cluster per time step, or a
:class:`unroll.BPTTResult` as its unrolled graph painted with gradient norms; it returns a
``graphviz.Digraph`` (``.source`` is the DOT text, Jupyter displays it). :func:`save`
writes it, the format taken from the file's suffix. Diagrams count steps from 1, the API
from 0: the cluster of API step ``t`` is labelled ``step t+1 (t=t)``, and the initial
state ``("h", -1)`` is drawn as ``h₀``.
"""

from __future__ import annotations

import graphviz

from ..engine import BPTTResult
from ..engine.result import ModelView
from ..graph import Graph
from ..unrolled import Unrolled
from .errors import RenderError
from .folded import draw_folded
from .frame import direction as _direction
from .output import save
from .overlay import Overlay
from .structure import highlighted, plan
from .unrolled import draw_unrolled, window
from .words import Wording
from .words import voice as _voice

#: ``layout=`` options (see :func:`render`).
LAYOUTS = ("pinned", "dot")

__all__ = ["RenderError", "render", "save"]


def render(
    obj,
    *,
    result: BPTTResult | None = None,
    detail: str = "op",
    direction: str = "LR",
    steps_shown=None,
    full: bool = False,
    highlight: str | None = None,
    values: bool = False,
    grads: bool | None = None,
    title: str | None = None,
    max_nodes: int = 2000,
    sample: int | None = None,
    grad_range=None,
    caption: bool = True,
    formulas: bool = True,
    voice: str = "python",
    layout: str = "pinned",
    loss_at=None,
) -> graphviz.Digraph:
    """Draw a recurrent graph folded, unrolled in time, or painted with its gradients.

    Parameters
    ----------
    obj : Graph, Unrolled or BPTTResult
        A ``Graph`` is drawn folded; an ``Unrolled`` one cluster per step; a
        ``BPTTResult`` as its unrolled graph with the gradient overlay.
    result : BPTTResult, optional
        Overlays for an ``Unrolled`` ``obj`` (it must be ``result.unrolled``).
    detail : {"op", "cell"}
        Every node, or one box per recurrent cell per step (a strongly connected part of
        the graph, e.g. an LSTM's gates, products and states) with its state edges.
    direction : {"LR", "TB"}
        Time left to right (inputs at the bottom), or top to bottom (inputs on the left).
    steps_shown : int or (int, int), optional
        Steps drawn at the start and the end of a long sequence; the middle becomes one
        ``⋯ N steps ⋯`` node. Default: the first 3 and last 2 when there are more than 8.
    full : bool
        Draw every step.
    highlight : {"recurrent", "cell_state"}, optional
        Draw thick and coloured the recurrent path (the delayed edges and the edges on
        their cycles), or the cell-state highway (an LSTM's ``c -> f_c -> c``, a GRU's
        ``h -> old_part -> h``); other edges are dimmed.
    values : bool
        Record labels ``name | value`` (numbers for nodes of at most 4 numbers, norms
        for larger ones); needs a result.
    grads : bool, optional
        A ``grad`` field and a log-scale colour map of ``||dL/dv||`` on nodes and
        recurrent edges, with a legend; default on when there is a result.
    title : str, optional
        Title above the diagram; ``""`` for none. By default the graph's name, the steps
        and where the loss sits.
    max_nodes : int
        Refuse (:class:`RenderError`) diagrams with more nodes than this.
    sample : int, optional
        Overlay batch item ``sample`` only; default: numbers when the batch holds one
        item, norms over the whole batch otherwise.
    grad_range : (int, int), optional
        ``log10`` limits of the gradient colour map, e.g. ``(-6, 0)``, so that several
        diagrams share one scale (norms outside are drawn in the end colours); default:
        the drawn nodes' range, rounded out to whole decades.
    caption : bool
        Write the lines under the title that say what the colours, edges and elisions
        mean (each only where the picture has them).
    formulas : bool
        Write each layer's formula (``σ(W_if x + W_hf h(t−1) + b)``) in its box.
    voice : {"python", "cli"}
        Name the options that captions and messages mention as Python keywords
        (``full=True``) or as command-line flags (``--full``).
    layout : {"pinned", "dot"}
        ``"pinned"``: lay out one step with dot and repeat it for every step, so each
        step looks alike (the DOT then carries every position and ``layout=neato``;
        needs graphviz's ``dot``, and falls back to ``"dot"`` without it); ``"dot"``:
        leave the whole layout to dot.

    loss_at : list of (name, int), optional
        For a result driven by cotangents rather than a loss: the output instances the
        cotangents sit on, drawn as the loss node ``L`` they stand for (``L = Σ y₄`` for
        ones on ``("y", 3)``). A result with a loss draws its loss steps without this;
        a diagram without overlays draws its ``L`` reading these instead of the mode's.

    Returns
    -------
    graphviz.Digraph

    Raises
    ------
    RenderError
        For an unknown option, overlays without a result, a ``grad_range`` that is not
        two integers ``low < high``, or more than ``max_nodes``.

    Examples
    --------
    >>> import unroll
    >>> g = unroll.presets.neuron()
    >>> print(render(g).source.splitlines()[0])
    digraph neuron {
    >>> src = render(unroll.unroll(g, 3)).source
    >>> [s for s in ("subgraph cluster_step0", "h_m1", "h_2") if s in src]
    ['subgraph cluster_step0', 'h_m1', 'h_2']
    >>> render(unroll.unroll(g, 1000)).source.count("subgraph cluster_step")
    5
    """
    if isinstance(obj, BPTTResult | ModelView):
        obj, result = obj.unrolled, obj if result is None else result
    models = getattr(result, "models", None)
    if models is not None:
        raise RenderError(
            f"this result holds an ensemble of {models} models; draw one of them: "
            "render(result.model(i))"
        )
    way = _direction(direction)
    if layout not in LAYOUTS:
        raise RenderError(f"unknown layout {layout!r} (known: {', '.join(LAYOUTS)})")
    wording = Wording(title, caption, formulas, _voice(voice))
    if isinstance(obj, Graph):
        if result is not None or values or grads:
            raise RenderError(
                "overlays need the unrolled view: render(result), or "
                "render(unrolled, result=result)"
            )
        return draw_folded(
            plan(obj, detail),
            way,
            highlighted(obj, highlight, wording.voice.recurrent),
            highlight,
            wording,
            max_nodes,
        )
    if not isinstance(obj, Unrolled):
        raise RenderError(
            f"render draws a Graph, an Unrolled graph or a BPTTResult, not {type(obj).__name__}"
        )
    overlay = _overlay(obj, result, values, grads, sample, _grad_range(grad_range))
    if overlay is not None and loss_at is not None:
        overlay.loss_at = [tuple(inst) for inst in loss_at]
    return draw_unrolled(
        obj,
        plan(obj.graph, detail),
        window(obj.steps, steps_shown, full),
        way,
        highlighted(obj.graph, highlight, wording.voice.recurrent),
        highlight,
        overlay,
        wording,
        max_nodes,
        pinned=layout == "pinned",
        loss_at=loss_at,
    )


def _grad_range(grad_range) -> tuple[int, int] | None:
    if grad_range is None:
        return None
    pair = tuple(grad_range) if isinstance(grad_range, tuple | list) else ()
    if (
        len(pair) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
        or pair[0] >= pair[1]
    ):
        raise RenderError(
            f"grad_range must be two integers (low, high) with low < high, got {grad_range!r}"
        )
    return pair


def _overlay(
    u: Unrolled, result, values: bool, grads: bool | None, sample, grad_range=None
) -> Overlay | None:
    if result is None:
        if values or grads:
            raise RenderError(
                "values=True and grads=True need result=bptt(...) (or render the BPTTResult itself)"
            )
        return None
    if result.unrolled is not u:
        raise RenderError(
            "result belongs to another unrolled graph: pass result.unrolled "
            "(or the result itself) as the object to draw"
        )
    grads = True if grads is None else grads
    if not (values or grads):
        return None
    return Overlay(result, values=values, grads=grads, sample=sample, grad_range=grad_range)
