"""The gallery's diagrams: each function draws one entry's graphviz pictures.

Every function takes ``fast`` (the diagrams are cheap, so they ignore it: a fast build
writes the same DOT as a full one) and returns a list of
:class:`~unroll.gallery.pictures.Diagram`. Sizes are small (inputs of 1 number, states of
2 to 4) so that labels stay short and the numbers in value records fit on a slide.
"""

from __future__ import annotations

import math

import graphviz
import numpy as np

from .. import presets
from ..engine import bptt
from ..graph import Graph
from ..init import init_params
from ..render import render
from ..render.style import HIGHLIGHT_COLOURS, dot_id
from ..render.unrolled import LOSS
from ..unrolled import Unrolled, unroll
from .pictures import Diagram

__all__ = [
    "BACKWARD_FLOW",
    "bidirectional_and_stacked",
    "bptt_by_hand",
    "deep_mlp",
    "deep_nets",
    "elman_network",
    "gradient_heat",
    "gru_cell",
    "jordan_network",
    "lstm_1997_and_forget_gate",
    "lstm_cell",
    "neuron",
    "sequence_modes",
    "window_and_recurrence",
    "window_graph",
    "with_backward_flow",
]

#: How the backward pass is drawn on top of a forward diagram: every edge reversed.
BACKWARD_FLOW = {
    "color": HIGHLIGHT_COLOURS["cell_state"],
    "style": "dashed",
    "constraint": "false",
    "arrowsize": "0.6",
    "penwidth": "1.2",
}

#: Ports of a backward edge across steps: it leaves a node at its lower left corner and
#: enters the earlier one at its lower right, so it runs just below the forward edge.
_ARC = {"tailport": "sw", "headport": "se"}


def _elman(hidden_size: int = 2) -> Graph:
    """The gallery's Elman net: one input number, a small state, one output number."""
    return presets.elman(input_size=1, hidden_size=hidden_size, output_size=1)


# ---- 1-2: recurrence --------------------------------------------------------------------------


def neuron(fast: bool = False) -> list[Diagram]:
    """A single neuron with a loop to itself, folded and unrolled over 4 steps."""
    g = presets.neuron()
    return [
        Diagram(
            "neuron_folded",
            render(g, title="A neuron with a connection to itself (folded)"),
            "the neuron h reading x and, through a red loop marked t-1, its own last value",
        ),
        Diagram(
            "neuron_unrolled",
            render(
                unroll(g, 4),
                title="The same neuron unrolled over 4 steps: one copy per step, one W_hh",
            ),
            "four copies of the neuron in a row, each passing h to the next through W_hh",
        ),
    ]


def window_graph(width: int = 3, hidden_size: int = 2) -> Graph:
    """A feed-forward net reading a window of the last ``width`` inputs: ``x`` feeds ``h``
    through edges of delay 0, 1, ..., ``width - 1``, each with its own weight ``W_d``.

    Examples
    --------
    >>> [e.describe() for e in window_graph().in_edges("h")]
    ['x -> h', 'x -> h @ t-1', 'x -> h @ t-2']
    >>> window_graph().state_nodes()
    []
    """
    g = Graph("window")
    g.input("x", 1)
    g.layer("h", hidden_size, "tanh", biases=["b_h"])
    for delay in range(width):
        g.edge("x", "h", delay=delay, weight=f"W_{delay}")
    g.layer("y", 1, biases=["b_y"])
    g.edge("h", "y", weight="W_hy")
    return g


def window_and_recurrence(fast: bool = False) -> list[Diagram]:
    """A window of 3 inputs next to a recurrent net, both unrolled over 5 steps."""
    steps = 5
    return [
        Diagram(
            "window_unrolled",
            render(
                unroll(window_graph(), steps),
                title="Feed-forward net on a window of 3 inputs: y at step 5 sees steps 3–5 only",
            ),
            "a feed-forward net whose h reads x now, one step back and two steps back",
        ),
        Diagram(
            "recurrent_unrolled",
            render(
                unroll(_elman(), steps),
                title="Recurrent net: y at step 5 sees every input, through the chain of h",
            ),
            "an Elman net unrolled over 5 steps, h passed from step to step",
        ),
    ]


# ---- 3: the taxonomy of sequence problems ---------------------------------------------------

#: Sequence mode -> (steps, encoder steps, title of its diagram).
SEQUENCE_MODES: dict[str, tuple[int, int | None, str]] = {
    "one-to-one": (1, None, "one-to-one: one input, one output (a feed-forward net)"),
    "one-to-many": (4, None, "one-to-many: one input, a sequence out (captioning an image)"),
    "many-to-one": (4, None, "many-to-one: a sequence in, one answer (the mood of a sentence)"),
    "many-to-many": (
        5,
        2,
        "many-to-many, encoder-decoder: read all, then write (translation)",
    ),
    "synced": (4, None, "synced many-to-many: an answer at every step (tagging each word)"),
}


def sequence_modes(fast: bool = False) -> list[Diagram]:
    """One unrolled Elman net per sequence mode of the classic taxonomy."""
    g = _elman()
    return [
        Diagram(
            f"mode_{mode.replace('-', '_')}",
            render(unroll(g, steps, mode=mode, encoder_steps=encoder), title=title),
            title,
        )
        for mode, (steps, encoder, title) in SEQUENCE_MODES.items()
    ]


# ---- 4-9: architectures -----------------------------------------------------------------------


def elman_network(fast: bool = False) -> list[Diagram]:
    """Elman's net folded and unrolled over 4 steps."""
    g = _elman()
    return [
        Diagram(
            "elman_folded",
            render(g, title="Elman network (torch.nn.RNN), folded"),
            "the Elman net: x into h, h into y, a red loop from h to itself",
        ),
        Diagram(
            "elman_unrolled",
            render(
                unroll(g, 4),
                title="Elman network unrolled over 4 steps: W_ih, W_hh, W_hy tied across steps",
            ),
            "the Elman net unrolled over 4 steps",
        ),
    ]


def jordan_network(fast: bool = False) -> list[Diagram]:
    """Jordan's net (the output fed back) folded and unrolled over 4 steps."""
    g = presets.jordan(input_size=1, hidden_size=2, output_size=1)
    return [
        Diagram(
            "jordan_folded",
            render(g, title="Jordan network, folded: the output y is fed back"),
            "the Jordan net: a red loop from y back into h",
        ),
        Diagram(
            "jordan_unrolled",
            render(unroll(g, 4), title="Jordan network unrolled over 4 steps"),
            "the Jordan net unrolled: red edges from each y into the next step's h",
        ),
    ]


def lstm_cell(fast: bool = False) -> list[Diagram]:
    """The LSTM cell gate by gate, folded, and unrolled over 3 steps, cell state marked."""
    g = presets.lstm(input_size=1, hidden_size=2)
    return [
        Diagram(
            "lstm_folded",
            render(g, title="LSTM cell (torch.nn.LSTM), gate by gate"),
            "the LSTM cell: gates i, f, g, o, the cell state c and the output h",
        ),
        Diagram(
            "lstm_unrolled",
            render(
                unroll(g, 3),
                highlight="cell_state",
                direction="TB",
                title="LSTM unrolled over 3 steps; blue: the cell-state highway c",
            ),
            "the LSTM unrolled over 3 steps with the cell-state path drawn thick and blue",
        ),
    ]


def lstm_1997_and_forget_gate(fast: bool = False) -> list[Diagram]:
    """The 1997 LSTM (no forget gate) next to the LSTM with a forget gate, highway marked."""
    return [
        Diagram(
            "lstm1997_folded",
            render(
                presets.lstm(input_size=1, hidden_size=2, forget_gate=False),
                highlight="cell_state",
                title="LSTM of 1997: c = c(t−1) + i·g",
            ),
            "the 1997 LSTM: the cell state loops onto itself through a plain addition",
        ),
        Diagram(
            "lstm_forget_folded",
            render(
                presets.lstm(input_size=1, hidden_size=2),
                highlight="cell_state",
                title="LSTM with a forget gate (2000): c = f·c(t−1) + i·g",
            ),
            "the LSTM with a forget gate: the cell state passes a multiplication by f",
        ),
    ]


def gru_cell(fast: bool = False) -> list[Diagram]:
    """The GRU cell folded, and unrolled over 2 steps with its highway marked."""
    g = presets.gru(input_size=1, hidden_size=2)
    return [
        Diagram(
            "gru_folded",
            render(g, title="GRU cell (torch.nn.GRU), gate by gate"),
            "the GRU cell: reset gate r, update gate z, candidate n and state h",
        ),
        Diagram(
            "gru_unrolled",
            render(
                unroll(g, 2),
                highlight="cell_state",
                title="GRU unrolled over 2 steps; blue: h carried on through z·h(t−1)",
            ),
            "the GRU unrolled over 2 steps with the z times h path drawn thick and blue",
        ),
    ]


def _folded_and_unrolled(
    name: str,
    g: Graph,
    title: str,
    alt: str,
    steps: int,
    unrolled_title: str,
    unrolled_alt: str,
    highlight: str = "cell_state",
) -> list[Diagram]:
    """A cell folded, and unrolled over ``steps`` with its carried state marked."""
    return [
        Diagram(f"{name}_folded", render(g, title=title), alt),
        Diagram(
            f"{name}_unrolled",
            render(unroll(g, steps), highlight=highlight, title=unrolled_title),
            unrolled_alt,
        ),
    ]


def lstm_peephole_cell(fast: bool = False) -> list[Diagram]:
    """The peephole LSTM folded, and unrolled over 2 steps."""
    return _folded_and_unrolled(
        "lstm_peephole",
        presets.lstm(input_size=1, hidden_size=2, peephole=True),
        "Peephole LSTM (Gers & Schmidhuber 2000): the gates see c",
        "the peephole LSTM: gates i, f and o read the cell state through w_ci, w_cf, w_co",
        2,
        "Peephole LSTM unrolled over 2 steps; blue: the cell-state highway",
        "the peephole LSTM unrolled over 2 steps, the cell state path drawn thick and blue",
    )


def indrnn_cell(fast: bool = False) -> list[Diagram]:
    """IndRNN folded, and unrolled over 3 steps."""
    return _folded_and_unrolled(
        "indrnn",
        presets.indrnn(input_size=1, hidden_size=2),
        "IndRNN (Li et al. 2018): one recurrent weight per unit",
        "IndRNN: h reads x through W_ih and its own previous value through the vector w_hh",
        3,
        "IndRNN unrolled over 3 steps; red: the loop, w_hh ⊙ h(t−1) at every step",
        "IndRNN unrolled over 3 steps, each step scaling the previous h by w_hh",
        highlight="recurrent",
    )


def mingru_cell(fast: bool = False) -> list[Diagram]:
    """minGRU folded, and unrolled over 2 steps."""
    return _folded_and_unrolled(
        "mingru",
        presets.mingru(input_size=1, hidden_size=2),
        "minGRU (Feng et al. 2024): gates from x alone",
        "minGRU: the update gate z and the candidate n read only x; h mixes h(t−1) and n",
        2,
        "minGRU unrolled over 2 steps; blue: h carried on through (1−z)·h(t−1)",
        "minGRU unrolled over 2 steps with the (1 minus z) times h path drawn thick and blue",
    )


def minlstm_cell(fast: bool = False) -> list[Diagram]:
    """minLSTM folded, and unrolled over 2 steps."""
    return _folded_and_unrolled(
        "minlstm",
        presets.minlstm(input_size=1, hidden_size=2),
        "minLSTM (Feng et al. 2024): normalised gates from x alone",
        "minLSTM: gates f and i read only x and are normalised, f' = f/(f+i), i' = 1 − f'",
        2,
        "minLSTM unrolled over 2 steps; blue: h carried on through f'·h(t−1)",
        "minLSTM unrolled over 2 steps with the normalised forget path drawn thick and blue",
    )


def lru_cell(fast: bool = False) -> list[Diagram]:
    """The real LRU folded, and unrolled over 3 steps."""
    return _folded_and_unrolled(
        "lru",
        presets.lru(input_size=1, hidden_size=2),
        "LRU, real (Orvieto et al. 2023): h = λ ⊙ h(t−1) + γ ⊙ W_ih x",
        "the LRU: h is the previous h times lambda plus the input times gamma, both from nu",
        3,
        "LRU unrolled over 3 steps; blue: h carried on through λ ⊙ h(t−1)",
        "the LRU unrolled over 3 steps with the lambda times h path drawn thick and blue",
    )


def bidirectional_and_stacked(fast: bool = False) -> list[Diagram]:
    """A 2-layer LSTM and a bidirectional RNN, each over 3 steps."""
    deep = presets.stacked("lstm", input_size=1, hidden_size=2, layers=2)
    both = presets.bidirectional("elman", input_size=1, hidden_size=2)
    return [
        Diagram(
            "stacked_lstm_unrolled",
            render(
                unroll(deep, 3),
                detail="cell",
                title="Stacked LSTM, 2 layers × 3 steps (one box per LSTM cell)",
            ),
            "two rows of LSTM cells, the upper reading the lower, each passing c and h on",
        ),
        Diagram(
            "bidirectional_unrolled",
            render(
                unroll(both, 3),
                title="Bidirectional RNN over 3 steps: h runs forward, h_reverse backward",
            ),
            "a forward chain h and a backward chain h_reverse, joined at every step",
        ),
    ]


# ---- 10-11: gradients -------------------------------------------------------------------------


def with_backward_flow(digraph: graphviz.Digraph, unrolled: Unrolled) -> graphviz.Digraph:
    """A copy of an unrolled diagram with the backward pass drawn: every edge of the
    unrolled graph (and every edge into the loss) reversed, dashed, in :data:`BACKWARD_FLOW`.

    Examples
    --------
    >>> u = unroll(presets.neuron(), 2)
    >>> d = with_backward_flow(render(u), u)
    >>> [line.split(" [")[0].strip() for line in d.body if "dashed" in line and "#2166ac" in line]
    ['h_0 -> x_0', 'h_0 -> h_m1', 'h_1 -> x_1', 'h_1 -> h_0', 'loss -> h_0', 'loss -> h_1']
    """
    d = digraph.copy()
    for instance in unrolled.order:
        for edge, source in unrolled.sources(instance):
            ports = _ARC if edge.delay else {}
            d.edge(dot_id(*instance), dot_id(*source), **BACKWARD_FLOW, **ports)
    for instance in unrolled.loss_instances:
        d.edge(LOSS, dot_id(*instance), **BACKWARD_FLOW)
    return d


def bptt_by_hand(fast: bool = False) -> list[Diagram]:
    """The unrolled Elman net (hidden 2, 4 steps) with values, gradients and backward flow."""
    g = _elman()
    u = unroll(g, 4)
    params = init_params(g, seed=0)
    xs = np.array([0.5, -1.0, 0.8, 0.2]).reshape(4, 1, 1)
    targets = np.array([0.2, -0.4, 0.5, 0.1]).reshape(4, 1, 1)
    result = bptt(u, params, {"x": xs}, loss="mse", targets=targets)
    forward = render(
        result,
        values=True,
        title="Backpropagation through time: values forward, gradients backward (dashed blue)",
    )
    return [
        Diagram(
            "bptt_values_and_grads",
            with_backward_flow(forward, u),
            "the unrolled Elman net; each node shows its value and its gradient",
        )
    ]


#: Models painted with their gradients: stem -> (title, graph, init options, detail).
HEAT_MODELS = {
    "gradient_heat_rnn": ("tanh RNN", lambda: _elman(3), {}, "op"),
    "gradient_heat_lstm": ("LSTM, torch's default init", lambda: presets.lstm(1, 3), {}, "cell"),
    "gradient_heat_lstm_forget3": (
        "LSTM, forget-gate bias 3",
        lambda: presets.lstm(1, 3),
        {"forget_bias": 3.0},
        "cell",
    ),
}


def _heat_result(graph: Graph, options: dict, steps: int):
    u = unroll(graph, steps, mode="many-to-one")
    xs = np.random.default_rng(1).normal(size=(steps, 1, 1))
    params = init_params(graph, seed=0, **options)
    size = graph.nodes[graph.output_nodes()[0]].size
    return bptt(u, params, {"x": xs}, loss="mse", targets=np.ones((1, 1, size)))


def _shared_range(results) -> tuple[int, int]:
    """Whole decades that hold every drawn gradient norm of every result."""
    logs = []
    for r in results:
        graph = r.unrolled.graph
        drawn = graph.state_nodes() + graph.input_nodes()
        drawn += [n for n in graph.nodes if graph.nodes[n].op.weighted]
        for name in dict.fromkeys(drawn):
            logs += [x for x in r.log10_grad_norms(name) if math.isfinite(x)]
    return math.floor(min(logs)), math.ceil(max(logs))


def gradient_heat(fast: bool = False) -> list[Diagram]:
    """An Elman net and two LSTMs over 8 steps painted by gradient norm, one shared scale."""
    steps = 8
    results = {
        stem: (title, _heat_result(make(), options, steps), detail)
        for stem, (title, make, options, detail) in HEAT_MODELS.items()
    }
    scale = _shared_range(r for _, r, _ in results.values())
    return [
        Diagram(
            stem,
            render(
                r,
                detail=detail,
                full=True,
                grad_range=scale,
                title=f"{title}: gradient of a loss at step {steps}, painted by size",
            ),
            f"{title} over {steps} steps, each node coloured by the size of its gradient",
        )
        for stem, (title, r, detail) in results.items()
    ]


# ---- 12: depth, the same problem ---------------------------------------------------------------

#: Activations of the deep feed-forward nets, in the order they are drawn.
DEEP_ACTIVATIONS = ("sigmoid", "tanh", "relu")


def deep_mlp(activation: str, depth: int = 8, width: int = 16) -> Graph:
    """A feed-forward net of ``depth`` layers of ``width`` units (``h_l0`` ... named as a
    stacked net's layers, so diagrams call them layer 1, layer 2, ...), one output.

    Examples
    --------
    >>> g = deep_mlp("relu", depth=3)
    >>> list(g.nodes), g.max_delay()
    (['x', 'h_l0', 'h_l1', 'h_l2', 'y'], 0)
    """
    g = Graph(f"mlp_{activation}")
    g.input("x", width)
    previous = "x"
    for k in range(depth):
        name = f"h_l{k}"
        g.layer(name, width, activation, biases=[f"b_{k + 1}"])
        g.edge(previous, name, weight=f"W_{k + 1}")
        previous = name
    g.layer("y", 1, biases=["b_y"])
    g.edge(previous, "y", weight="W_y")
    return g


def _deep_result(activation: str):
    graph = deep_mlp(activation)
    u = unroll(graph, 1)
    params = init_params(graph, seed=0, scheme="normal")
    xs = np.random.default_rng(0).normal(size=(1, 1, graph.nodes["x"].size))
    return bptt(u, params, {"x": xs}, loss="mse", targets=np.ones((1, 1, 1)))


def deep_nets(fast: bool = False) -> list[Diagram]:
    """Sigmoid, tanh and ReLU nets of 8 layers painted by gradient norm, one shared scale."""
    results = {act: _deep_result(act) for act in DEEP_ACTIVATIONS}
    scale = _shared_range(results.values())
    return [
        Diagram(
            f"deep_{act}",
            render(r, grad_range=scale, caption=False, title=f"{act}, 8 layers"),
            f"a feed-forward net of 8 {act} layers, each coloured by the size of its gradient",
        )
        for act, r in results.items()
    ]
