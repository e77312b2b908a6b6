"""Declaring graphs: builders, reading methods, and every validation error with its message."""

import re

import networkx as nx
import pytest

from unroll import Graph, GraphError, presets


def chain(*delays, size=2):
    """x -> h, plus h -> h edges with the given delays."""
    g = Graph("t")
    g.input("x", size)
    g.layer("h", size, "tanh")
    g.edge("x", "h", weight="W")
    for d in delays:
        g.edge("h", "h", delay=d, weight=f"U{d + 10}")
    return g


def error_of(g):
    with pytest.raises(GraphError) as e:
        g.validate()
    return str(e.value)


def test_neuron_reads_like_the_seed():
    g = presets.neuron()
    assert [(e.source, e.target, e.delay, e.weight) for e in g.edges] == [
        ("x", "h", 0, "W_ih"),
        ("h", "h", 1, "W_hh"),
    ]
    assert g.state_nodes() == ["h"]
    assert g.params() == {"W_hh": (1, 1), "W_ih": (1, 1), "b_hh": (1,), "b_ih": (1,)}


def test_duplicate_node():
    g = Graph()
    g.input("x", 1)
    with pytest.raises(GraphError, match=r"^duplicate node 'x'$"):
        g.layer("x", 2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda g: g.add_node("q", "conv", 2), "node 'q': unknown node kind 'conv' (known: add,"),
        (lambda g: g.layer("q", 2, "gelu"), "node 'q': unknown activation 'gelu' (known:"),
        (lambda g: g.layer("q", 0), "node 'q': size must be a positive integer, got 0"),
        (lambda g: g.layer("q", 2.5), "node 'q': size must be a positive integer, got 2.5"),
        (lambda g: g.layer("a b", 2), "node name 'a b' must be a letter or _ followed by"),
        (
            lambda g: g.mul("q", 2) and g.add_node("r", "add", 2, activation="tanh"),
            "node 'r': only layer nodes take an activation or biases",
        ),
        (lambda g: g.edge("x", "x", delay=0.5), "edge x -> x: delay must be an integer, got 0.5"),
        (lambda g: g.edge("x", "y", weight="W 1"), "weight name 'W 1' must be a letter"),
    ],
)
def test_builder_errors(call, message):
    g = Graph()
    g.input("x", 1)
    with pytest.raises(GraphError) as e:
        call(g)
    assert str(e.value).startswith(message)


def test_empty_graph():
    assert error_of(Graph("void")) == "graph 'void' has no nodes"


def test_unknown_node_in_edge():
    g = chain(1)
    g.edge("h", "q")
    assert error_of(g) == "edge h -> q: unknown node 'q'"


def test_input_with_incoming_edge():
    g = chain(1)
    g.edge("h", "x", delay=1)
    assert error_of(g) == "edge h -> x @ t-1: input node 'x' cannot have incoming edges"


def test_weight_into_elementwise_node():
    g = chain(1)
    g.mul("m", 2)
    g.edge("h", "m", weight="V")
    assert error_of(g) == (
        "edge h -> m: mul node 'm' takes unweighted edges, but the edge carries weight 'V'"
    )


def test_arity():
    g = chain(1)
    g.one_minus("m", 2)
    g.edge("h", "m")
    g.edge("x", "m")
    assert error_of(g) == "node 'm' (one_minus) takes at most 1 incoming edge, has 2"
    g = chain(1)
    g.add("s", 2)
    assert error_of(g) == "node 's' (add) needs at least 1 incoming edge, has 0"


def test_tied_weight_shape_mismatch_names_both_edges():
    g = Graph()
    g.input("x", 3)
    g.layer("h", 8, "tanh")
    g.edge("x", "h", weight="W")
    g.edge("h", "h", delay=1, weight="W")
    assert error_of(g) == "weight 'W': edge h -> h @ t-1 needs 8x8, but edge x -> h needs 8x3"


def test_identity_edge_size_mismatch():
    g = Graph()
    g.input("x", 3)
    g.layer("h", 8)
    g.edge("x", "h")
    assert error_of(g) == (
        "edge x -> h: identity edge needs equal sizes, got 3 -> 8 (give the edge a weight)"
    )


def test_elementwise_size_mismatch():
    g = chain(1, size=4)
    g.input("z", 3)
    g.mul("m", 4)
    g.edge("h", "m")
    g.edge("z", "m")
    assert error_of(g) == "edge z -> m: size 3 does not match mul node 'm' of size 4"


def test_concat_size():
    g = chain(1, size=4)
    g.concat("c", 7)
    g.edge("h", "c")
    g.edge("x", "c")
    assert error_of(g) == "node 'c' (concat) has size 7 but its inputs add up to 8"


def test_bias_errors():
    g = chain(1)
    g.layer("k", 3, biases=["W"])
    g.edge("x", "k", weight="V")
    assert error_of(g) == "parameter 'W' is used both as a weight and as a bias"
    g = Graph()
    g.input("x", 1)
    g.layer("a", 2, biases=["b"])
    g.layer("c", 3, biases=["b"])
    g.edge("x", "a", weight="U")
    g.edge("x", "c", weight="V")
    assert error_of(g) == "bias 'b' is used by node 'a' (size 2) and node 'c' (size 3)"


def test_unknown_output():
    g = chain(1)
    g.set_outputs("y")
    assert error_of(g) == "output 'y': unknown node"


def test_zero_delay_loop_is_named():
    g = Graph()
    g.input("x", 2)
    g.layer("h", 2, "tanh")
    g.layer("g", 2, "tanh")
    g.edge("x", "h", weight="W")
    g.edge("h", "g", weight="A")
    g.edge("g", "h", weight="B")
    assert error_of(g) == "algebraic loop: h -> g -> h has total delay 0"


def test_self_loop_without_delay():
    assert error_of(chain(0)) == "algebraic loop: h -> h has total delay 0"


def test_positive_and_negative_cycle_through_one_node():
    message = error_of(chain(1, -1))
    assert message == "algebraic loop: h -> h -> h has total delay 0 (edge delays +1, -1)"


def test_unequal_positive_and_negative_cycles_combine():
    message = error_of(chain(2, -3))
    assert message.startswith("algebraic loop: h -> h -> h -> h -> h -> h has total delay 0")
    delays = [int(d) for d in re.findall(r"[+-]\d", message)]
    assert sum(delays) == 0


def test_opposite_cycles_through_different_nodes():
    g = Graph()
    g.input("x", 1)
    for n in ("a", "b"):
        g.layer(n, 1)
        g.edge("x", n, weight=f"W{n}")
    g.edge("a", "a", delay=1, weight="A")
    g.edge("b", "b", delay=-1, weight="B")
    g.edge("a", "b", weight="AB")
    g.validate()  # not yet strongly connected: fine
    g.edge("b", "a", delay=5, weight="BA")
    message = error_of(g)
    assert message.startswith("algebraic loop: ")
    assert "total delay 0" in message


def test_valid_graphs_with_both_delay_signs():
    chain(1, 2).validate()
    chain(-1, -2).validate()
    presets.bidirectional("lstm", 2, 3, layers=2).validate()


def test_step_order_is_topological_on_zero_delay_edges():
    g = presets.gru(2, 3)
    order = g.step_order()
    assert sorted(order) == sorted(g.nodes)
    position = {n: i for i, n in enumerate(order)}
    for e in g.edges:
        if e.delay == 0:
            assert position[e.source] < position[e.target]


def test_reading_methods():
    g = presets.lstm(3, 4)
    assert g.input_nodes() == ["x"]
    assert g.output_nodes() == ["h"]
    assert g.state_nodes() == ["c", "h"]
    assert g.recurrent_weights() == ["W_hf", "W_hg", "W_hi", "W_ho"]
    assert g.is_causal() and g.max_delay() == 1
    assert not presets.bidirectional().is_causal()
    assert presets.jordan().output_nodes() == ["y"]


def test_to_networkx_keeps_parallel_edges():
    g = chain(1, 2)
    m = g.to_networkx()
    assert isinstance(m, nx.MultiDiGraph)
    assert sorted(d["delay"] for _, _, d in m.edges(data=True)) == [0, 1, 2]
    assert m.nodes["h"]["activation"] == "tanh"


def test_copy_and_equality():
    g = presets.gru(2, 3)
    h = g.copy()
    assert h == g and h is not g
    h.edge("x", "h", weight="extra")
    assert h != g and len(g.edges) + 1 == len(h.edges)
