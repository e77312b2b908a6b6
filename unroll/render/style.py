"""How diagrams look: registries of node and edge styles, cell names and HTML label pieces.

Every visual decision sits in a table here: :data:`KIND_STYLES` (node kind -> shape and
colours), :data:`GATE_FILLS` (gate role -> fill), :data:`ACTIVATION_SYMBOLS`,
:data:`EDGE_STYLES` (edge role -> attributes), :data:`HIGHLIGHT_COLOURS` and
:data:`CELL_KINDS`. Labels are graphviz HTML-like labels, built by the small functions
below, so every piece of text is escaped in one place.
"""

from __future__ import annotations

import re

from ..ops import OPS, Drawing
from ..quoting import html_text

__all__ = [
    "ACTIVATION_SYMBOLS",
    "CELL_KINDS",
    "EDGE_STYLES",
    "FONT",
    "GATE_FILLS",
    "HIGHLIGHT_COLOURS",
    "KIND_STYLES",
    "NodeStyle",
    "cell_kind",
    "dot_id",
    "html_label",
    "kind_style",
    "small",
    "split_layer",
    "subscript",
    "text",
]

#: Font list: browsers read it as a CSS font stack (SVG), pango as a family list (PNG/PDF).
FONT = "Helvetica,Arial,sans-serif"
MUTED = "#555555"


#: The look of one kind of node (:class:`unroll.ops.Drawing`); ``symbol`` nodes show the
#: op symbol large, name small.
NodeStyle = Drawing

#: Diagram-only kinds -> their look; node kinds are drawn as their row of
#: :data:`unroll.ops.OPS` says (:attr:`unroll.ops.Op.drawing`), see :func:`kind_style`.
KIND_STYLES: dict[str, NodeStyle] = {
    "cell": NodeStyle("box", "#fdebd0", "rounded,filled", border="#8a5a00", symbol=False),
    "boundary": NodeStyle("box", "#f7f7f7", "rounded,dashed,filled", "#777777", symbol=False),
    "loss": NodeStyle("box", "#444444", "rounded,filled", "#222222", symbol=False),
    "elided": NodeStyle("box", "#ffffff", "rounded,dashed", "#999999", symbol=False),
}


def kind_style(kind: str) -> NodeStyle:
    """The look of a node kind (its op row's drawing) or of a diagram-only kind.

    Examples
    --------
    >>> kind_style("mul").shape, kind_style("loss").fill
    ('circle', '#444444')
    """
    if kind in OPS:
        return OPS[kind].drawing
    return KIND_STYLES[kind]


#: Gate role (:attr:`unroll.graph.Node.gate`) -> fill, so the four LSTM gates read apart.
GATE_FILLS: dict[str, str] = {
    "input": "#d9f0d3",
    "forget": "#f9d5d3",
    "cell": "#fdebd0",
    "output": "#e3d7f0",
    "reset": "#f9d5d3",
    "update": "#d9f0d3",
    "new": "#fdebd0",
}

#: Activation name -> the symbol drawn in formulas; names missing here are drawn as is.
ACTIVATION_SYMBOLS: dict[str, str] = {
    "identity": "",
    "sigmoid": "σ",
    "tanh": "tanh",
    "relu": "ReLU",
    "leaky_relu": "leakyReLU",
    "softplus": "softplus",
    "softsign": "softsign",
}

RECURRENT = "#c0392b"

#: Edge role -> DOT attributes. ``step``: inside one step; ``recurrent``: across steps
#: (a delay); ``stub``: from a state to the junction point where it fans out; ``loss``:
#: an output into the loss node; ``elided``: to or from the hidden steps; ``layout``:
#: invisible, only for placing things.
EDGE_STYLES: dict[str, dict[str, str]] = {
    "step": {"color": "#444444"},
    "recurrent": {"color": RECURRENT, "penwidth": "1.3"},
    "stub": {"color": RECURRENT, "penwidth": "1.3", "dir": "none"},
    "loss": {"color": "#888888", "style": "dashed"},
    "elided": {"color": RECURRENT, "style": "dashed"},
    "layout": {"style": "invis"},
}

#: ``highlight=`` option -> the colour its path is drawn in.
HIGHLIGHT_COLOURS: dict[str, str] = {"recurrent": "#d7191c", "cell_state": "#2166ac"}
HIGHLIGHT_WIDTH = "3"
DIMMED = "#bbbbbb"

#: The gate roles a cell holds -> what the cell is called in cell-level diagrams.
CELL_KINDS: dict[frozenset[str], str] = {
    frozenset({"input", "forget", "cell", "output"}): "LSTM cell",
    frozenset({"input", "cell", "output"}): "LSTM cell (no forget gate)",
    frozenset({"reset", "update", "new"}): "GRU cell",
    frozenset({"update", "new"}): "minGRU cell",
    frozenset({"forget", "input", "cell"}): "minLSTM cell",
    frozenset(): "RNN cell",
}


def cell_kind(gates) -> str:
    """The name of a cell holding nodes with these gate roles.

    Examples
    --------
    >>> cell_kind({"reset", "update", "new"})
    'GRU cell'
    >>> cell_kind({"input", "output"})
    'recurrent cell'
    """
    return CELL_KINDS.get(frozenset(gates), "recurrent cell")


_LAYER = re.compile(r"^(?P<base>.+?)_l(?P<layer>\d+)(?P<rest>(?:_reverse)?)$")


def split_layer(name: str) -> tuple[str, int | None]:
    """A stacked net's node name as (name in its layer, layer counted from 1).

    Examples
    --------
    >>> split_layer("c_l1"), split_layer("h_l0_reverse"), split_layer("h")
    (('c', 2), ('h_reverse', 1), ('h', None))
    """
    m = _LAYER.match(name)
    return (m["base"] + m["rest"], int(m["layer"]) + 1) if m else (name, None)


_SUBSCRIPTS = str.maketrans("0123456789-", "₀₁₂₃₄₅₆₇₈₉₋")


def subscript(n: int) -> str:
    """``n`` in Unicode subscript digits.

    Examples
    --------
    >>> "h" + subscript(0)
    'h₀'
    """
    return str(n).translate(_SUBSCRIPTS)


def dot_id(name: str, t: int) -> str:
    """The stable DOT id of node instance ``(name, t)``: ``h_3``, and ``h_m1`` for t = -1.

    Ids of instances always end in ``_<digits>`` or ``_m<digits>``; every helper node of
    a diagram has an id that does not, so no two ever collide.

    Examples
    --------
    >>> dot_id("h", 3), dot_id("h_l0", -1)
    ('h_3', 'h_l0_m1')
    """
    return f"{name}_{t}" if t >= 0 else f"{name}_m{-t}"


def text(s: str) -> str:
    """``s`` escaped for an HTML-like label (:func:`unroll.quoting.html_text`)."""
    return html_text(s)


def small(s: str, colour: str = MUTED, size: int = 9) -> str:
    """``s`` (already escaped) in a smaller, muted font."""
    return f'<FONT POINT-SIZE="{size}" COLOR="{colour}">{s}</FONT>'


def html_label(body: str) -> str:
    """Wrap HTML-like ``body`` so graphviz passes it through as a label."""
    return f"<{body}>"
