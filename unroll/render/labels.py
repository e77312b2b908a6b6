"""Looks of nodes and edges: labels with names, op symbols, sizes, formulas; highlighting.

A layer's label carries its formula as torch documents it, ``σ(W_if x + W_hf h + b)``,
so every copy of a node in an unrolled diagram names the same weights: the weights are
tied, and the diagram says so on every step without crowding the edges with labels.
"""

from __future__ import annotations

from ..graph import Graph
from .structure import Cell, Plan, delay_text
from .style import (
    ACTIVATION_SYMBOLS,
    DIMMED,
    GATE_FILLS,
    HIGHLIGHT_COLOURS,
    HIGHLIGHT_WIDTH,
    KIND_STYLES,
    html_label,
    kind_style,
    small,
    split_layer,
    text,
)

__all__ = [
    "boundary_look",
    "display_name",
    "formula",
    "formula_lines",
    "marked_edge",
    "marked_node",
    "unit_look",
    "unit_title",
]


def formula(graph: Graph, name: str) -> str:
    """The plain-text formula of a layer node, weights named: ``σ(W_ii x + W_hi h + b)``.

    Examples
    --------
    >>> from unroll import presets
    >>> formula(presets.lstm(3, 8), "f")
    'σ(W_if x + W_hf h(t−1) + b)'
    >>> formula(presets.lstm(3, 8), "tanh_c")
    'tanh(c)'

    A delayed read names the step it reads, ``h(t−1)``; a window reads several:

    >>> from unroll import Graph
    >>> g = Graph("window")
    >>> g.input("x", 1)
    'x'
    >>> g.layer("h", 2, "tanh")
    'h'
    >>> for d in range(3):
    ...     g.edge("x", "h", delay=d, weight=f"W_{d}")
    >>> formula(g, "h")
    'tanh(W_0 x + W_1 x(t−1) + W_2 x(t−2))'
    """
    node = graph.nodes[name]
    terms = []
    for e in graph.in_edges(name):
        read = e.source + (f"({delay_text(e.delay)})" if e.delay else "")
        terms.append(f"{e.weight} {read}" if e.weight else read)
    if node.biases:
        terms.append("b")
    inner = " + ".join(terms)
    act = _activation_symbol(node.activation)
    return f"{act}({inner})" if act else inner


def _activation_symbol(name: str | None) -> str | None:
    return None if name is None else ACTIVATION_SYMBOLS.get(name, name)


def formula_lines(graph: Graph, name: str, width: int = 26) -> list[str]:
    """:func:`formula` broken after a ``+`` into lines of about ``width`` characters.

    Examples
    --------
    >>> from unroll import presets
    >>> formula_lines(presets.bidirectional("elman", 3, 4), "h_reverse")
    ['tanh(W_ih_reverse x +', 'W_hh_reverse h_reverse(t+1) + b)']
    """
    pieces = formula(graph, name).split(" + ")
    lines = [pieces[0]]
    for piece in pieces[1:]:
        short_tail = piece == pieces[-1] and len(piece) <= 3  # keep "b)" on the line before
        if len(lines[-1]) + 3 + len(piece) > width and not short_tail:
            lines[-1] += " +"
            lines.append(piece)
        else:
            lines[-1] += " + " + piece
    return lines


def display_name(name: str, step: int | None = None, layer: bool = True) -> str:
    """A node's name as HTML for a diagram: the step as a subscript (diagrams count from
    1, so API step ``t`` is ``t + 1``; the initial state is step 0), and a stacked layer
    ``_l0`` as "layer 1" after it (unless ``layer`` is false: inside a cell that says it).

    Examples
    --------
    >>> display_name("h", 3)
    'h<SUB>3</SUB>'
    >>> display_name("c_l1", 0)
    'c<SUB>0</SUB> <FONT POINT-SIZE="9" COLOR="#555555">layer 2</FONT>'
    >>> display_name("h_l0_reverse", -1)
    'h_reverse<SUB>−1</SUB> <FONT POINT-SIZE="9" COLOR="#555555">layer 1</FONT>'
    """
    base, number = split_layer(name)
    out = text(base)
    if step is not None:
        out += f"<SUB>{str(step).replace('-', '−')}</SUB>"
    return out + (f" {small(f'layer {number}')}" if layer and number is not None else "")


def unit_title(plan: Plan, unit: str, step: int | None = None) -> str:
    """Short HTML text naming a unit: its name and op symbol or activation (for records)."""
    if unit in plan.cells:
        return f"<B>{text(plan.cells[unit].kind)}</B>" + _cell_layer(unit)
    node = plan.graph.nodes[unit]
    mark: str | None = node.op.symbol if kind_style(node.kind).symbol else ""
    if node.op.weighted:
        mark = _activation_symbol(node.activation)
    return f"<B>{display_name(unit, step)}</B>" + (" " + small(text(mark)) if mark else "")


def _cell_layer(unit: str) -> str:
    """ " layer 2" for a cell of a stacked net's second layer, else nothing."""
    number = split_layer(unit)[1]
    return "" if number is None else " " + small(f"layer {number}")


def unit_look(
    plan: Plan, unit: str, step: int | None = None, formulas: bool = True
) -> dict[str, str]:
    """DOT attributes of a unit's box: shape, colours, label, tooltip; ``step`` (counted
    from 1) indexes its name, ``formulas`` adds a layer's formula."""
    if unit in plan.cells:
        return _cell_look(plan.graph, plan.cells[unit], step, formulas)
    graph = plan.graph
    node = graph.nodes[unit]
    look = kind_style(node.kind)
    label = _symbol_label(node, step) if look.symbol else _named_label(graph, unit, step, formulas)
    attrs = {
        "shape": look.shape,
        "style": look.style,
        "fillcolor": GATE_FILLS.get(node.gate, look.fill) if node.gate else look.fill,
        "color": look.border,
        "label": html_label(label),
        "tooltip": f"{unit} [{node.size}]: {node.op.doc}",
    }
    if unit in graph.output_nodes():
        attrs["penwidth"] = "2"
    return attrs


def boundary_look(graph: Graph, insts: list[tuple[str, int]]) -> dict[str, str]:
    """DOT attributes of boundary copies drawn as one node: ``h₀`` before the first step,
    ``h_reverse₅`` after the last of 4 (diagrams count steps from 1, so API step ``t`` is
    drawn as ``t + 1``); a cell's states together, ``c₀, h₀``."""
    look = KIND_STYLES["boundary"]
    names = ", ".join(display_name(n, t + 1, layer=False) for n, t in insts)
    layers = {split_layer(n)[1] for n, _ in insts} - {None}
    if len(layers) == 1:
        names += " " + small(f"layer {layers.pop()}")
    sizes = ", ".join(str(graph.nodes[n].size) for n, _ in insts)
    where = "initial state" if insts[0][1] < 0 else "state read from beyond the last step"
    return {
        "shape": look.shape,
        "style": look.style,
        "fillcolor": look.fill,
        "color": look.border,
        "label": html_label(f"<B>{names}</B> {small(f'[{sizes}]')}"),
        "tooltip": f"{', '.join(map(str, insts))}: {where}, zero unless given",
    }


def _symbol_label(node, step: int | None) -> str:
    symbol = text(node.op.symbol)
    name = display_name(node.name, step)
    label = f'<FONT POINT-SIZE="15">{symbol}</FONT><BR/>{small(name, size=7)}'
    if node.params:  # the op's own parameters, named under it (tied ones alike)
        label += f"<BR/>{small(text(', '.join(node.params)), size=7)}"
    return label


def _named_label(graph: Graph, name: str, step: int | None, formulas: bool) -> str:
    node = graph.nodes[name]
    head = f"<B>{display_name(name, step)}</B> {small(f'[{node.size}]')}"
    if node.params:
        head += f"<BR/>{small(text(node.op.symbol + ' ' + ', '.join(node.params)))}"
    if not (formulas and node.op.weighted):
        return head
    return head + "".join(f"<BR/>{small(text(line))}" for line in formula_lines(graph, name))


def _cell_look(graph: Graph, cell: Cell, step: int | None, formulas: bool) -> dict[str, str]:
    look = KIND_STYLES["cell"]
    states = ", ".join(
        f"{display_name(s, step, layer=False)} {small(f'[{graph.nodes[s].size}]')}"
        for s in cell.states
    )
    weights = sorted({e.weight for e in graph.edges if e.weight and e.target in cell.members})
    if not formulas:
        weights = []
    return {
        "shape": look.shape,
        "style": look.style,
        "fillcolor": look.fill,
        "color": look.border,
        "penwidth": "1.5",
        "label": html_label(
            f"<B>{text(cell.kind)}</B>{_cell_layer(cell.name)}<BR/>{states}"
            + "".join(f"<BR/>{small(text(line), size=8)}" for line in _weight_lines(weights))
        ),
        "tooltip": f"{cell.kind}: {', '.join(cell.members)}",
    }


def _weight_lines(weights: list[str]) -> list[str]:
    """Weight names in lines of four, so a cell box stays narrow."""
    return [", ".join(weights[i : i + 4]) for i in range(0, len(weights), 4)]


def marked_node(
    attrs: dict[str, str], plan: Plan, unit: str, marked: set[int], highlight: str | None
) -> dict[str, str]:
    """``attrs`` with a coloured border when the unit lies on the highlighted path."""
    members = set(plan.members(unit))
    edges = plan.graph.edges
    if any(edges[i].source in members or edges[i].target in members for i in marked):
        assert highlight is not None  # edges are marked for a highlight
        return {**attrs, "color": HIGHLIGHT_COLOURS[highlight], "penwidth": "2.5"}
    return attrs


def marked_edge(edges: set[int], marked: set[int], highlight: str | None) -> dict[str, str]:
    """Colour and width of an edge standing for folded ``edges``: on the path, or dimmed."""
    if not marked:
        return {}
    if edges & marked:
        assert highlight is not None  # edges are marked for a highlight
        return {"color": HIGHLIGHT_COLOURS[highlight], "penwidth": HIGHLIGHT_WIDTH}
    return {"color": DIMMED}
