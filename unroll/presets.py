"""Classic recurrent architectures as graphs, written exactly as torch.nn defines them.

Every preset names its input ``x``, hidden state ``h``, LSTM cell state ``c`` and output
``y`` (where it has one). Weights and biases take the names of torch.nn's documentation
(``W_ih``/``W_hh`` for the plain loop, ``W_ii``, ``W_hf``, ``b_hn``, ... for the gates),
so the graph can be read beside the torch equations. Layers of a stacked net carry the
suffix ``_l0``, ``_l1``, ...; the backward direction of a bidirectional net carries
``_reverse``, as in torch's parameter names.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .errors import InputError
from .graph import Graph

__all__ = [
    "CELLS",
    "PRESETS",
    "bidirectional",
    "elman",
    "gru",
    "indrnn",
    "jordan",
    "lru",
    "lstm",
    "mingru",
    "minlstm",
    "mlp",
    "mlp_torch_names",
    "neuron",
    "stacked",
]


def _biases(bias: bool, *names: str) -> tuple[str, ...]:
    return names if bias else ()


def _recurrent(recurrent_bias: bool, *names: str) -> tuple[str, ...]:
    """The recurrent-side biases ``b_h*``, or none when a cell has one bias per gate."""
    return names if recurrent_bias else ()


def elman_cell(
    g: Graph,
    x: str,
    hidden_size: int,
    *,
    suffix: str = "",
    reverse: bool = False,
    bias: bool = True,
    activation: str = "tanh",
    recurrent_bias: bool = True,
) -> str:
    """Add ``h = act(W_ih x + b_ih + W_hh h[t-1] + b_hh)``; return the state node's name.

    ``recurrent_bias=False`` drops ``b_hh``: one bias per unit, as Keras's SimpleRNN has.
    """
    h = g.layer(
        f"h{suffix}",
        hidden_size,
        activation,
        biases=_biases(bias, f"b_ih{suffix}", *_recurrent(recurrent_bias, f"b_hh{suffix}")),
    )
    g.edge(x, h, weight=f"W_ih{suffix}")
    g.edge(h, h, delay=-1 if reverse else 1, weight=f"W_hh{suffix}")
    return h


# (gate, True for the recurrent activation / False for the cell activation, role)
_LSTM_GATES = [
    ("i", True, "input"),
    ("f", True, "forget"),
    ("g", False, "cell"),
    ("o", True, "output"),
]


def lstm_cell(
    g: Graph,
    x: str,
    hidden_size: int,
    *,
    suffix: str = "",
    reverse: bool = False,
    bias: bool = True,
    forget_gate: bool = True,
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
    recurrent_bias: bool = True,
    peephole: bool = False,
) -> str:
    """Add torch.nn.LSTM's cell, gate by gate; return the hidden state's name.

    ``i, f, o = sigmoid(W_i* x + b_i* + W_h* h[t-1] + b_h*)``, ``g`` likewise with tanh,
    ``c = f * c[t-1] + i * g``, ``h = o * tanh(c)``. Without the forget gate (the 1997
    cell) ``c = c[t-1] + i * g``. ``activation`` replaces tanh and
    ``recurrent_activation`` sigmoid (Keras's names); ``recurrent_bias=False`` keeps one
    bias per gate, ``b_i*``, as Keras's LSTM has. ``peephole=True`` lets the gates see
    the cell state (Gers & Schmidhuber 2000): ``w_ci * c[t-1]`` and ``w_cf * c[t-1]`` join
    the input and forget gates, ``w_co * c`` (this step's) the output gate.
    """
    s, d, H = suffix, -1 if reverse else 1, hidden_size
    h, c = f"h{s}", f"c{s}"
    for gate, recurrent, role in _LSTM_GATES:
        if gate == "f" and not forget_gate:
            continue
        biases = _biases(bias, f"b_i{gate}{s}", *_recurrent(recurrent_bias, f"b_h{gate}{s}"))
        act = recurrent_activation if recurrent else activation
        node = g.layer(f"{gate}{s}", H, act, biases=biases, gate=role)
        g.edge(x, node, weight=f"W_i{gate}{s}")
        g.edge(h, node, delay=d, weight=f"W_h{gate}{s}")
        if peephole and gate != "g":
            peep = g.scale(f"peep_{gate}{s}", H, weight=f"w_c{gate}{s}")
            g.edge(c, peep, delay=0 if gate == "o" else d)
            g.edge(peep, node)
    kept = c
    if forget_gate:
        kept = g.mul(f"f_c{s}", H)
        g.edge(f"f{s}", kept)
        g.edge(c, kept, delay=d)
    g.mul(f"i_g{s}", H)
    g.edge(f"i{s}", f"i_g{s}")
    g.edge(f"g{s}", f"i_g{s}")
    g.add(c, H)
    g.edge(kept, c, delay=0 if forget_gate else d)
    g.edge(f"i_g{s}", c)
    act_c = g.layer(f"{activation}_c{s}", H, activation)
    g.edge(c, act_c)
    g.mul(h, H)
    g.edge(f"o{s}", h)
    g.edge(act_c, h)
    return h


def gru_cell(
    g: Graph,
    x: str,
    hidden_size: int,
    *,
    suffix: str = "",
    reverse: bool = False,
    bias: bool = True,
    reset_after: bool = True,
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
    recurrent_bias: bool = True,
) -> str:
    """Add torch.nn.GRU's cell; return the hidden state's name.

    ``r, z = sigmoid(W_i* x + b_i* + W_h* h[t-1] + b_h*)``,
    ``n = tanh(W_in x + b_in + r * (W_hn h[t-1] + b_hn))``, ``h = (1 - z) * n + z * h[t-1]``.
    ``reset_after=False`` resets the state *before* the recurrent product (Cho et al.
    2014, Keras's ``reset_after=False``, ONNX's ``linear_before_reset=0``):
    ``n = tanh(W_in x + b_in + W_hn (r * h[t-1]) + b_hn)``. ``activation`` replaces tanh and
    ``recurrent_activation`` sigmoid; ``recurrent_bias=False`` keeps one bias per gate,
    ``b_i*``, as Keras's GRU with ``reset_after=False`` has.
    """
    s, d, H = suffix, -1 if reverse else 1, hidden_size
    h = f"h{s}"
    for gate, role in (("r", "reset"), ("z", "update")):
        g.layer(
            f"{gate}{s}",
            H,
            recurrent_activation,
            biases=_biases(bias, f"b_i{gate}{s}", *_recurrent(recurrent_bias, f"b_h{gate}{s}")),
            gate=role,
        )
        g.edge(x, f"{gate}{s}", weight=f"W_i{gate}{s}")
        g.edge(h, f"{gate}{s}", delay=d, weight=f"W_h{gate}{s}")
    b_hn = _biases(bias, *_recurrent(recurrent_bias, f"b_hn{s}"))
    if reset_after:
        g.layer(f"hn{s}", H, "identity", biases=b_hn)
        g.edge(h, f"hn{s}", delay=d, weight=f"W_hn{s}")
        g.mul(f"r_hn{s}", H)
        g.edge(f"r{s}", f"r_hn{s}")
        g.edge(f"hn{s}", f"r_hn{s}")
        g.layer(f"n{s}", H, activation, biases=_biases(bias, f"b_in{s}"), gate="new")
        g.edge(x, f"n{s}", weight=f"W_in{s}")
        g.edge(f"r_hn{s}", f"n{s}")
    else:
        g.mul(f"r_h{s}", H)
        g.edge(f"r{s}", f"r_h{s}")
        g.edge(h, f"r_h{s}", delay=d)
        g.layer(f"n{s}", H, activation, biases=_biases(bias, f"b_in{s}", *b_hn), gate="new")
        g.edge(x, f"n{s}", weight=f"W_in{s}")
        g.edge(f"r_h{s}", f"n{s}", weight=f"W_hn{s}")
    g.one_minus(f"one_minus_z{s}", H)
    g.edge(f"z{s}", f"one_minus_z{s}")
    g.mul(f"new_part{s}", H)
    g.edge(f"one_minus_z{s}", f"new_part{s}")
    g.edge(f"n{s}", f"new_part{s}")
    g.mul(f"old_part{s}", H)
    g.edge(f"z{s}", f"old_part{s}")
    g.edge(h, f"old_part{s}", delay=d)
    g.add(h, H)
    g.edge(f"new_part{s}", h)
    g.edge(f"old_part{s}", h)
    return h


def indrnn_cell(
    g: Graph,
    x: str,
    hidden_size: int,
    *,
    suffix: str = "",
    reverse: bool = False,
    bias: bool = True,
    activation: str = "relu",
) -> str:
    """Add IndRNN's cell (Li et al. 2018): ``h = act(W_ih x + w_hh * h[t-1] + b_ih)``.

    ``w_hh`` is the paper's ``u``: one recurrent weight per unit (a ``scale`` node), so
    each unit is its own loop.
    """
    s, d, H = suffix, -1 if reverse else 1, hidden_size
    h = f"h{s}"
    g.layer(h, H, activation, biases=_biases(bias, f"b_ih{s}"))
    g.scale(f"u_h{s}", H, weight=f"w_hh{s}", init="indrnn")
    g.edge(x, h, weight=f"W_ih{s}")
    g.edge(h, f"u_h{s}", delay=d)
    g.edge(f"u_h{s}", h)
    return h


def _blend(g: Graph, h: str, keep: str, new: str, candidate: str, d: int, s: str) -> str:
    """``h = keep * h[t-1] + new * candidate``: the minimal cells' state update."""
    g.mul(f"old_part{s}", g.nodes[keep].size)
    g.edge(keep, f"old_part{s}")
    g.edge(h, f"old_part{s}", delay=d)
    g.mul(f"new_part{s}", g.nodes[keep].size)
    g.edge(new, f"new_part{s}")
    g.edge(candidate, f"new_part{s}")
    g.add(h, g.nodes[keep].size)
    g.edge(f"old_part{s}", h)
    g.edge(f"new_part{s}", h)
    return h


def mingru_cell(
    g: Graph,
    x: str,
    hidden_size: int,
    *,
    suffix: str = "",
    reverse: bool = False,
    bias: bool = True,
) -> str:
    """Add minGRU (Feng et al. 2024): ``z = sigmoid(W_iz x + b_iz)``,
    ``n = W_in x + b_in``, ``h = (1 - z) * h[t-1] + z * n``; no gate reads ``h``."""
    s, d, H = suffix, -1 if reverse else 1, hidden_size
    g.layer(f"z{s}", H, "sigmoid", biases=_biases(bias, f"b_iz{s}"), gate="update")
    g.edge(x, f"z{s}", weight=f"W_iz{s}")
    g.layer(f"n{s}", H, "identity", biases=_biases(bias, f"b_in{s}"), gate="new")
    g.edge(x, f"n{s}", weight=f"W_in{s}")
    g.one_minus(f"one_minus_z{s}", H)
    g.edge(f"z{s}", f"one_minus_z{s}")
    return _blend(g, f"h{s}", f"one_minus_z{s}", f"z{s}", f"n{s}", d, s)


def minlstm_cell(
    g: Graph,
    x: str,
    hidden_size: int,
    *,
    suffix: str = "",
    reverse: bool = False,
    bias: bool = True,
) -> str:
    """Add minLSTM (Feng et al. 2024): ``f, i = sigmoid(W_i* x + b_i*)``,
    ``n = W_in x + b_in``, ``f' = f / (f + i)``, ``i' = 1 - f'`` (``= i / (f + i)``),
    ``h = f' * h[t-1] + i' * n``."""
    s, d, H = suffix, -1 if reverse else 1, hidden_size
    for gate, role in (("f", "forget"), ("i", "input")):
        g.layer(f"{gate}{s}", H, "sigmoid", biases=_biases(bias, f"b_i{gate}{s}"), gate=role)
        g.edge(x, f"{gate}{s}", weight=f"W_i{gate}{s}")
    g.layer(f"n{s}", H, "identity", biases=_biases(bias, f"b_in{s}"), gate="cell")
    g.edge(x, f"n{s}", weight=f"W_in{s}")
    g.add_node(f"f_norm{s}", "share", H)
    g.edge(f"f{s}", f"f_norm{s}")
    g.edge(f"i{s}", f"f_norm{s}")
    g.one_minus(f"i_norm{s}", H)
    g.edge(f"f_norm{s}", f"i_norm{s}")
    return _blend(g, f"h{s}", f"f_norm{s}", f"i_norm{s}", f"n{s}", d, s)


def lru_cell(
    g: Graph,
    x: str,
    hidden_size: int,
    *,
    suffix: str = "",
    reverse: bool = False,
    bias: bool = False,
) -> str:
    """Add a real-valued diagonal linear recurrence (the LRU of Orvieto et al. 2023 with
    real eigenvalues): ``h = lambda * h[t-1] + gamma * (W_ih x)`` with
    ``lambda = exp(-exp(nu))`` per unit and the input normalisation
    ``gamma = sqrt(1 - lambda**2)``; ``nu`` is one parameter tied between the two."""
    s, d, H = suffix, -1 if reverse else 1, hidden_size
    g.layer(f"bx{s}", H, "identity", biases=_biases(bias, f"b_ih{s}"))
    g.edge(x, f"bx{s}", weight=f"W_ih{s}")
    g.add_node(f"gamma_bx{s}", "decay_norm", H, params=[f"nu{s}"])
    g.edge(f"bx{s}", f"gamma_bx{s}")
    g.add_node(f"lambda_h{s}", "decay", H, params=[f"nu{s}"])
    g.edge(f"h{s}", f"lambda_h{s}", delay=d)
    g.add(f"h{s}", H)
    g.edge(f"lambda_h{s}", f"h{s}")
    g.edge(f"gamma_bx{s}", f"h{s}")
    return f"h{s}"


#: Recurrent cells by name: each adds one cell reading node ``x`` and returns its state.
CELLS: dict[str, Callable[..., str]] = {
    "elman": elman_cell,
    "lstm": lstm_cell,
    "gru": gru_cell,
    "indrnn": indrnn_cell,
    "mingru": mingru_cell,
    "minlstm": minlstm_cell,
    "lru": lru_cell,
}


def _cell(name: str) -> Callable[..., str]:
    try:
        return CELLS[name]
    except KeyError:
        raise InputError(f"unknown cell {name!r} (known: {', '.join(sorted(CELLS))})") from None


def neuron(activation: str = "tanh", bias: bool = True) -> Graph:
    """A single neuron with a connection to itself (the seed's ``A -> A``), all sizes 1.

    Examples
    --------
    >>> g = neuron()
    >>> [(e.source, e.target, e.delay) for e in g.edges]
    [('x', 'h', 0), ('h', 'h', 1)]
    """
    g = Graph("neuron")
    g.input("x", 1)
    elman_cell(g, "x", 1, bias=bias, activation=activation)
    return g


def elman(
    input_size: int = 3,
    hidden_size: int = 8,
    activation: str = "tanh",
    bias: bool = True,
    output_size: int | None = None,
) -> Graph:
    """Elman's simple recurrent net (torch.nn.RNN), with an optional output layer ``y``.

    Examples
    --------
    >>> sorted(elman(3, 8).params())
    ['W_hh', 'W_ih', 'b_hh', 'b_ih']
    """
    g = Graph("elman")
    g.input("x", input_size)
    h = elman_cell(g, "x", hidden_size, bias=bias, activation=activation)
    if output_size is not None:
        g.layer("y", output_size, "identity", biases=_biases(bias, "b_y"))
        g.edge(h, "y", weight="W_hy")
    return g


def jordan(
    input_size: int = 3,
    hidden_size: int = 8,
    output_size: int = 2,
    activation: str = "tanh",
    output_activation: str = "identity",
    bias: bool = True,
) -> Graph:
    """Jordan's net: the output ``y``, not the hidden state, is fed back at the next step.

    ``h = act(W_ih x + W_yh y[t-1] + b_h)``, ``y = out_act(W_hy h + b_y)``.

    Examples
    --------
    >>> [e.describe() for e in jordan().edges if e.delay]
    ['y -> h @ t-1']
    """
    g = Graph("jordan")
    g.input("x", input_size)
    g.layer("h", hidden_size, activation, biases=_biases(bias, "b_h"))
    g.layer("y", output_size, output_activation, biases=_biases(bias, "b_y"))
    g.edge("x", "h", weight="W_ih")
    g.edge("y", "h", delay=1, weight="W_yh")
    g.edge("h", "y", weight="W_hy")
    return g


def lstm(
    input_size: int = 3,
    hidden_size: int = 8,
    bias: bool = True,
    forget_gate: bool = True,
    peephole: bool = False,
) -> Graph:
    """torch.nn.LSTM's cell at gate level; ``forget_gate=False`` gives the 1997 cell,
    ``peephole=True`` the gates that see the cell state (Gers & Schmidhuber 2000).

    Examples
    --------
    >>> g = lstm(3, 8)
    >>> g.state_nodes()
    ['c', 'h']
    >>> g.nodes["f"].gate
    'forget'
    """
    name = ("lstm" if forget_gate else "lstm1997") + ("_peephole" if peephole else "")
    g = Graph(name)
    g.input("x", input_size)
    lstm_cell(g, "x", hidden_size, bias=bias, forget_gate=forget_gate, peephole=peephole)
    return g


def indrnn(
    input_size: int = 3, hidden_size: int = 8, activation: str = "relu", bias: bool = True
) -> Graph:
    """IndRNN (Li et al. 2018): ``h = act(W_ih x + w_hh * h[t-1] + b_ih)``, ``w_hh`` per unit.

    One recurrent weight per unit (``w_hh``, the paper's ``u``), drawn in ``[0, 1)``.

    Examples
    --------
    >>> indrnn(3, 4).params()["w_hh"]
    (4,)
    """
    g = Graph("indrnn")
    g.input("x", input_size)
    indrnn_cell(g, "x", hidden_size, bias=bias, activation=activation)
    return g


def mingru(input_size: int = 3, hidden_size: int = 8, bias: bool = True) -> Graph:
    """minGRU (Feng et al. 2024): ``h = (1 - z) * h[t-1] + z * n``, z and n from x alone.

    ``z = sigmoid(W_iz x + b_iz)``, ``n = W_in x + b_in``.

    Examples
    --------
    >>> sorted(mingru(3, 4).params())
    ['W_in', 'W_iz', 'b_in', 'b_iz']
    """
    g = Graph("mingru")
    g.input("x", input_size)
    mingru_cell(g, "x", hidden_size, bias=bias)
    return g


def minlstm(input_size: int = 3, hidden_size: int = 8, bias: bool = True) -> Graph:
    """minLSTM (Feng et al. 2024): ``h = f' * h[t-1] + i' * n``, ``f' = f / (f + i)``.

    The gates ``f, i = sigmoid(W_i* x + b_i*)`` are normalised, ``i' = i / (f + i)``, and
    ``n = W_in x + b_in``.

    Examples
    --------
    >>> minlstm(3, 4).nodes["f_norm"].kind
    'share'
    """
    g = Graph("minlstm")
    g.input("x", input_size)
    minlstm_cell(g, "x", hidden_size, bias=bias)
    return g


def lru(
    input_size: int = 3, hidden_size: int = 8, bias: bool = False, output_size: int | None = None
) -> Graph:
    """LRU, real (Orvieto et al. 2023): ``h = lambda * h[t-1] + gamma * (W_ih x)`` per unit.

    ``lambda = exp(-exp(nu))``,
    ``gamma = sqrt(1 - lambda**2)``; ``|lambda|`` drawn on the ring [0.9, 0.999]. With
    ``output_size``, a readout ``y = W_hy h + b_y``.

    Examples
    --------
    >>> lru(3, 4).params()["nu"]
    (4,)
    """
    g = Graph("lru")
    g.input("x", input_size)
    h = lru_cell(g, "x", hidden_size, bias=bias)
    if output_size is not None:
        g.layer("y", output_size, "identity", biases=_biases(bias, "b_y"))
        g.edge(h, "y", weight="W_hy")
    return g


def gru(
    input_size: int = 3, hidden_size: int = 8, bias: bool = True, reset_after: bool = True
) -> Graph:
    """torch.nn.GRU's cell at gate level (``r`` applied to ``W_hn h + b_hn``).

    ``reset_after=False`` applies ``r`` to ``h[t-1]`` before ``W_hn`` instead (Cho et al.
    2014; Keras's ``reset_after=False``, ONNX's ``linear_before_reset=0``).

    Examples
    --------
    >>> gru(3, 8).params()["W_hn"]
    (8, 8)
    >>> [e.describe() for e in gru(3, 8, reset_after=False).in_edges("n")]
    ['x -> n', 'r_h -> n']
    """
    g = Graph("gru" if reset_after else "gru_reset_before")
    g.input("x", input_size)
    gru_cell(g, "x", hidden_size, bias=bias, reset_after=reset_after)
    return g


def stacked(
    cell: str = "lstm",
    input_size: int = 3,
    hidden_size: int = 8,
    layers: int = 2,
    bidirectional: bool = False,
    bias: bool = True,
    **cell_options: Any,
) -> Graph:
    """A deep net: ``layers`` cells, each reading the one below (torch's ``num_layers``).

    Layer ``k``'s nodes and parameters carry the suffix ``_lk``; with
    ``bidirectional=True`` each layer also runs backward in time (suffix ``_lk_reverse``)
    and the next layer reads both directions joined (node ``y_lk``; the top one is ``y``).

    Examples
    --------
    >>> g = stacked("gru", 3, 8, layers=2)
    >>> g.output_nodes()
    ['h_l1']
    """
    if layers < 1:
        raise InputError(f"layers must be at least 1, got {layers}")
    add_cell = _cell(cell)
    g = Graph(f"stacked_{cell}" + ("_bidirectional" if bidirectional else ""))
    below = g.input("x", input_size)
    for k in range(layers):
        suffix = f"_l{k}" if layers > 1 else ""
        below = _add_layer(
            g,
            add_cell,
            below,
            hidden_size,
            suffix,
            bidirectional,
            top=k == layers - 1,
            bias=bias,
            **cell_options,
        )
    g.set_outputs(below)
    return g


def _add_layer(
    g: Graph,
    add_cell: Callable[..., str],
    below: str,
    hidden_size: int,
    suffix: str,
    bidirectional: bool,
    top: bool,
    **options: Any,
) -> str:
    forward = add_cell(g, below, hidden_size, suffix=suffix, **options)
    if not bidirectional:
        return forward
    backward = add_cell(g, below, hidden_size, suffix=f"{suffix}_reverse", reverse=True, **options)
    joined = g.concat("y" if top else f"y{suffix}", 2 * hidden_size)
    g.edge(forward, joined)
    g.edge(backward, joined)
    return joined


def bidirectional(
    cell: str = "elman",
    input_size: int = 3,
    hidden_size: int = 8,
    layers: int = 1,
    bias: bool = True,
    **cell_options: Any,
) -> Graph:
    """A bidirectional net: one cell runs forward in time, one backward (negative delays).

    The output ``y`` joins both directions at each step, as torch does.

    Examples
    --------
    >>> g = bidirectional("elman", 3, 4)
    >>> [e.describe() for e in g.edges if e.delay]
    ['h -> h @ t-1', 'h_reverse -> h_reverse @ t+1']
    """
    g = stacked(
        cell, input_size, hidden_size, layers, bidirectional=True, bias=bias, **cell_options
    )
    g.name = f"bidirectional_{cell}"
    return g


def mlp(
    input_size: int = 3,
    hidden_size: int = 32,
    depth: int = 20,
    activation: str = "relu",
    bias: bool = True,
    output_size: int = 1,
) -> Graph:
    """A deep feed-forward net: ``depth`` layers ``h_l = act(W_l h_(l-1) + b_l)``, no delays.

    The layers are ``h_l0`` (reading ``x``) ... ``h_l{depth-1}``, then a linear output
    ``y = W_head h + b_head``. Unrolled over time it is one step: its depth plays the part
    of an RNN's time, and :func:`unroll.analyze` measures its gradient per layer. The
    weights ``W_l0, b_l0, ..., W_head, b_head`` are torch's ``layers.0.weight,
    layers.0.bias, ..., head.weight, head.bias`` (:func:`mlp_torch_names`).

    Examples
    --------
    >>> g = mlp(2, 4, depth=3)
    >>> list(g.nodes), g.max_delay()
    (['x', 'h_l0', 'h_l1', 'h_l2', 'y'], 0)
    >>> sorted(g.params())[:3]
    ['W_head', 'W_l0', 'W_l1']
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise InputError(f"depth must be a positive number of layers, got {depth!r}")
    g = Graph("mlp")
    below = g.input("x", input_size)
    for k in range(depth):
        h = g.layer(f"h_l{k}", hidden_size, activation, biases=_biases(bias, f"b_l{k}"))
        g.edge(below, h, weight=f"W_l{k}")
        below = h
    g.layer("y", output_size, "identity", biases=_biases(bias, "b_head"))
    g.edge(below, "y", weight="W_head")
    return g


def mlp_torch_names(depth: int, bias: bool = True) -> dict[str, str]:
    """``{parameter of mlp(depth=...): its name in a torch module}``: ``layers`` an
    ``nn.ModuleList`` of ``nn.Linear``, ``head`` an ``nn.Linear`` (``weight`` is ``W``).

    Examples
    --------
    >>> mlp_torch_names(1)
    {'W_l0': 'layers.0.weight', 'b_l0': 'layers.0.bias', 'W_head': 'head.weight', \
'b_head': 'head.bias'}
    """
    modules = [*((f"l{k}", f"layers.{k}") for k in range(depth)), ("head", "head")]
    out = {}
    for ours, theirs in modules:
        out[f"W_{ours}"] = f"{theirs}.weight"
        if bias:
            out[f"b_{ours}"] = f"{theirs}.bias"
    return out


#: Every preset by name; ``unroll presets`` lists them with their options.
PRESETS: dict[str, Callable[..., Graph]] = {
    "neuron": neuron,
    "elman": elman,
    "jordan": jordan,
    "lstm": lstm,
    "gru": gru,
    "indrnn": indrnn,
    "mingru": mingru,
    "minlstm": minlstm,
    "lru": lru,
    "stacked": stacked,
    "bidirectional": bidirectional,
    "mlp": mlp,
}


def preset_options(name: str) -> dict[str, object]:
    """The options a preset takes, with their defaults.

    Examples
    --------
    >>> preset_options("elman")["activation"]
    'tanh'
    """
    params = inspect.signature(PRESETS[name]).parameters.values()
    return {p.name: p.default for p in params if p.kind is p.POSITIONAL_OR_KEYWORD}
