"""What diagrams say: titles and captions true for the picture drawn, in the interface's words.

A caption line is added only when what it states is on the picture: the red edges are
named by what they carry (a state, an earlier input), a highlight by the states on its
path (an LSTM's ``c``, a GRU's ``h``), overlays by their colours, and the step-count note
only where values are shown (the one place a reader looks numbers up by step). Options a
caption or message mentions are named as the interface in use spells them: a
:class:`Voice` for Python (``full=True``) and one for the command line (``--full``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..graph import Graph
from .errors import RenderError
from .style import split_layer

__all__ = [
    "VOICES",
    "Voice",
    "Wording",
    "edges_line",
    "highlight_line",
    "loss_phrase",
    "overlay_lines",
    "step_note",
    "voice",
]


@dataclass(frozen=True)
class Voice:
    """How an interface names the options a diagram's text mentions."""

    name: str
    full: str  # draw every step
    elide: str  # elide the middle steps again
    fewer: str  # draw fewer steps
    max_nodes: str  # raise the node limit
    limit: str  # the node limit, with its value: {n}
    recurrent: str  # highlight the recurrent path instead
    index: str  # where steps are indexed from 0


#: ``voice=`` option -> its words.
VOICES: dict[str, Voice] = {
    v.name: v
    for v in [
        Voice(
            "python",
            full="full=True",
            elide="full=False",
            fewer="steps_shown=(first, last)",
            max_nodes="max_nodes",
            limit="max_nodes={n}",
            recurrent="highlight='recurrent'",
            index="step k is t = k−1 in the API, as in result.values[(name, t)]",
        ),
        Voice(
            "cli",
            full="--full",
            elide="without --full",
            fewer="--steps-shown FIRST:LAST",
            max_nodes="--max-nodes (or --force)",
            limit="--max-nodes {n}",
            recurrent="--highlight recurrent",
            index="step k is t = k−1 in unroll's Python API",
        ),
    ]
}


@dataclass(frozen=True)
class Wording:
    """The text options of a diagram: a title (None: the default one, "": none), whether
    to write the caption and the layers' formulas, and the voice of option names."""

    title: str | None = None
    caption: bool = True
    formulas: bool = True
    voice: Voice = VOICES["python"]


def voice(name: str) -> Voice:
    """The :data:`VOICES` row for ``name``; :class:`RenderError` names the known ones."""
    if name not in VOICES:
        raise RenderError(f"unknown voice {name!r} (known: {', '.join(VOICES)})")
    return VOICES[name]


def _names(names: list[str]) -> str:
    """``c and h``; a stacked net's names once, for every layer: ``c and h (each layer)``."""
    layered = any(split_layer(n)[1] for n in names)
    quoted = sorted(dict.fromkeys(split_layer(n)[0] for n in names))
    if layered and len({split_layer(n)[1] for n in names}) > 1:
        quoted[-1] += " (each layer)"
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


def edges_line(graph: Graph, steps: int = 2) -> str:
    """What the red edges of an unrolled diagram carry, and what a repeated weight means.

    Examples
    --------
    >>> from unroll import presets
    >>> edges_line(presets.lstm())
    'Red edges carry the states c and h to the next step; a weight named on every step is one tied parameter.'
    >>> edges_line(presets.bidirectional("elman")).split(";")[0]
    'Red edges carry the states h and h_reverse to the next step (h_reverse: to the step before)'
    """  # noqa: E501
    delayed = [e for e in graph.edges if e.delay]
    if not delayed:
        return "No edge crosses a step: the steps are independent copies."
    inputs = {e.source for e in delayed if graph.nodes[e.source].op.has("fed")}
    states = sorted({e.source for e in delayed} - inputs)
    backward = sorted({e.source for e in delayed if e.delay < 0} - inputs)
    parts = []
    if states:
        word = "state" if len(states) == 1 else "states"
        where = "into the step from the initial state" if steps == 1 else "to the next step"
        parts.append(f"the {word} {_names(states)} {where}")
    if inputs:
        parts.append(f"earlier inputs {_names(sorted(inputs))}")
    line = "Red edges carry " + " and ".join(parts)
    if backward:
        line += f" ({_names(backward)}: to the step before)"
    return line + "; a weight named on every step is one tied parameter."


def step_note(way: Voice) -> str:
    """The note on counting steps, for diagrams that show values."""
    return f"Steps are counted from 1: {way.index}."


def loss_phrase(steps: int, loss_steps: list[int]) -> str:
    """Where the loss sits, for a title: ``loss at every step``, ``loss at step 8``.

    Examples
    --------
    >>> loss_phrase(4, [0, 1, 2, 3]), loss_phrase(8, [7]), loss_phrase(5, [2, 3, 4])
    ('loss at every step', 'loss at step 8', 'loss at steps 3–5')
    >>> loss_phrase(5, [0, 4])
    'loss at steps 1, 5'
    """
    shown = sorted(loss_steps)
    if not shown:
        return "no loss"
    if shown == list(range(steps)) and steps > 1:
        return "loss at every step"
    if len(shown) == 1:
        return f"loss at step {shown[0] + 1}"
    if shown == list(range(shown[0], shown[-1] + 1)):
        return f"loss at steps {shown[0] + 1}–{shown[-1] + 1}"
    return "loss at steps " + ", ".join(str(t + 1) for t in shown)


def highlight_line(highlight: str, graph: Graph, marked: set[int]) -> str:
    """What a highlight draws in colour, naming the states on its path.

    Examples
    --------
    >>> from unroll import presets
    >>> from unroll.render.structure import highlighted
    >>> g = presets.gru()
    >>> highlight_line("cell_state", g, highlighted(g, "cell_state")).split(":")[1]
    ' the highway of h'
    """
    if highlight == "recurrent":
        return (
            "In colour: the recurrent paths, state to state across steps; other edges are dimmed."
        )
    touched = {graph.edges[i].source for i in marked} | {graph.edges[i].target for i in marked}
    states = [s for s in graph.state_nodes() if s in touched]
    return (
        f"In colour: the highway of {_names(states)}: from one step to the next it passes "
        "only × and +, no weight matrix; other edges are dimmed."
    )


def overlay_lines(values: bool, grads: bool) -> list[str]:
    """What the value fields and the gradient colours of an overlay mean."""
    lines = []
    if values:
        lines.append(
            "Each box lists its copy's value and grad ∂L/∂v: the numbers for up to 4 units, "
            "else the norm ‖·‖."
        )
    if grads:
        lines.append(
            "Colour: the size of each copy's gradient ‖dL/dv‖ on the log scale of the legend "
            "(darker is larger); an edge between steps takes the colour of the copy it leaves."
        )
    return lines
