"""Unrolling: node and edge counts, boundary nodes, tied weights, sequence modes, ordering."""

import networkx as nx
import numpy as np
import pytest

from unroll import Graph, GraphError, InputError, bptt, init_params, presets, unroll
from unroll.errors import UnrollWarning
from unroll.unrolled import MODES


def test_neuron_unrolls_into_copies_with_the_same_weight():
    u = unroll(presets.neuron(), steps=4)
    assert u.boundary == [("h", -1)]
    recurrent = [(a, b) for a, b, w in u.dag.edges(data="weight") if w == "W_hh"]
    assert recurrent == [(("h", t - 1), ("h", t)) for t in range(4)]
    assert u.dag.nodes[("h", -1)]["kind"] == "boundary"
    assert u.dag.nodes[("h", 2)]["step"] == 2


@pytest.mark.parametrize(
    ("preset", "per_step_nodes", "per_step_edges", "boundary"),
    [
        (presets.elman, 2, 2, [("h", -1)]),
        # x, i, f, g, o, f_c, i_g, c, tanh_c, h; 4 gates x 2 weighted inputs + 9 cell edges
        (presets.lstm, 10, 17, [("c", -1), ("h", -1)]),
        # x, r, z, hn, r_hn, n, one_minus_z, new_part, old_part, h; r, z: 2 weighted inputs each,
        # hn 1, r_hn 2, n 2, one_minus_z 1, new_part 2, old_part 2, h 2
        (presets.gru, 10, 16, [("h", -1)]),
    ],
)
def test_node_and_edge_counts(preset, per_step_nodes, per_step_edges, boundary):
    T = 5
    u = unroll(preset(3, 4), steps=T)
    assert u.boundary == boundary
    assert u.dag.number_of_nodes() == per_step_nodes * T + len(boundary) == u.num_nodes()
    assert u.dag.number_of_edges() == per_step_edges * T
    assert nx.is_directed_acyclic_graph(u.dag)


def test_lstm_without_forget_gate_keeps_the_cell_by_identity():
    u = unroll(presets.lstm(2, 3, forget_gate=False), steps=3)
    assert (("c", 1), ("c", 2)) in u.dag.edges
    assert u.dag.edges[("c", 1), ("c", 2)]["weight"] == ""
    assert not any(n == "f" for n, _ in u.dag.nodes)


def test_bidirectional_reads_the_future_from_a_boundary_past_the_end():
    T = 4
    u = unroll(presets.bidirectional("elman", 2, 3), steps=T)
    assert u.boundary == [("h", -1), ("h_reverse", T)]
    assert (("h_reverse", 2), ("h_reverse", 1)) in u.dag.edges
    position = {inst: i for i, inst in enumerate(u.order)}
    for a, b in u.dag.edges:
        if a in position:
            assert position[a] < position[b]


def test_order_is_topological_for_every_preset():
    for name, make in presets.PRESETS.items():
        u = unroll(make(), steps=4)
        position = {inst: i for i, inst in enumerate(u.order)}
        assert sorted(position) == sorted(n for n in u.dag if n not in u.boundary), name
        for a, b in u.dag.edges:
            if a in position:
                assert position[a] < position[b], (name, a, b)


def test_delay_two_gives_two_boundary_copies():
    g = Graph()
    g.input("x", 1)
    g.layer("h", 1)
    g.edge("x", "h", weight="W")
    g.edge("h", "h", delay=2, weight="U")
    u = unroll(g, steps=3)
    assert u.boundary == [("h", -2), ("h", -1)]
    assert (("h", -1), ("h", 1)) in u.dag.edges and (("h", 0), ("h", 2)) in u.dag.edges


def test_a_delay_longer_than_the_sequence_reads_only_boundaries():
    g = Graph()
    g.input("x", 1)
    g.layer("h", 1)
    g.edge("x", "h", weight="W")
    g.edge("h", "h", delay=5, weight="U")
    with pytest.warns(UnrollWarning, match="edge h -> h @ t-5 reaches 5 steps, more than the 2"):
        u = unroll(g, steps=2)
    assert u.boundary == [("h", -5), ("h", -4)]


def test_synced_mode_has_inputs_and_losses_everywhere():
    u = unroll(presets.elman(), steps=3)
    assert u.mode.name == "synced"
    assert u.input_steps("x") == [0, 1, 2]
    assert u.loss_instances == [("h", 0), ("h", 1), ("h", 2)]


def test_many_to_one_drops_unread_outputs_before_the_end():
    u = unroll(presets.elman(3, 4, output_size=2), steps=4, mode="many-to-one")
    assert [n for n in u.order if n[0] == "y"] == [("y", 3)]
    assert u.loss_instances == [("y", 3)]
    assert u.dag.nodes[("y", 3)]["loss"]


def test_one_to_many_feeds_the_input_once():
    u = unroll(presets.elman(3, 4, output_size=2), steps=3, mode="one-to-many")
    assert [n for n in u.order if n[0] == "x"] == [("x", 0)]
    assert u.loss_steps == [0, 1, 2]
    assert u.dag.in_degree(("h", 1)) == 1  # only the recurrent edge


def test_encoder_decoder():
    u = unroll(presets.elman(3, 4, output_size=2), steps=6, mode="many-to-many", encoder_steps=4)
    assert u.input_steps("x") == [0, 1, 2, 3]
    assert u.loss_instances == [("y", 4), ("y", 5)]
    assert unroll(presets.elman(), steps=6, mode="seq2seq").encoder_steps == 3


def test_one_to_one():
    u = unroll(presets.elman(), steps=1, mode="one_to_one")
    assert u.order == [("x", 0), ("h", 0)]
    with pytest.raises(InputError, match="one-to-one has exactly 1 step, got steps=3"):
        unroll(presets.elman(), steps=3, mode="one-to-one")


def test_mode_that_starves_a_mul_is_refused():
    g = Graph()
    g.input("x", 2)
    g.layer("h", 2, "tanh")
    g.mul("m", 2)
    g.edge("x", "m")
    g.edge("h", "m", delay=1)
    g.edge("m", "h", weight="W")
    with pytest.raises(Exception, match="leaves x absent at step 1, but mul node 'm' needs it"):
        unroll(g, steps=3, mode="one-to-many")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 0}, "steps must be a positive integer, got 0"),
        ({"steps": -3}, "steps must be a positive integer, got -3"),
        ({"steps": 2.0}, "steps must be a positive integer, got 2.0"),
        ({"steps": 3, "mode": "sideways"}, "unknown sequence mode 'sideways' (known: one-to-one,"),
        (
            {"steps": 4, "mode": "many-to-many", "encoder_steps": 4},
            "encoder_steps must lie between 1 and steps-1 = 3, got 4",
        ),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(InputError) as e:
        unroll(presets.elman(), **kwargs)
    assert str(e.value).startswith(message)


def test_every_mode_is_documented():
    assert set(MODES) == {"one-to-one", "one-to-many", "many-to-one", "many-to-many", "synced"}
    assert all(m.doc for m in MODES.values())


def test_dag_is_deterministic():
    a = unroll(presets.gru(2, 3), steps=3).dag
    b = unroll(presets.gru(2, 3), steps=3).dag
    assert list(a.nodes(data=True)) == list(b.nodes(data=True))
    assert list(a.edges(data=True)) == list(b.edges(data=True))


def test_editing_the_graph_after_unrolling_leaves_the_unrolled_graph_as_it_was():
    g = presets.elman(2, 3)
    u = unroll(g, steps=4)
    p = init_params(g, seed=0)
    g.layer("extra", 3)  # the user's graph changes after unrolling ...
    g.edge("h", "extra", weight="W_extra")
    assert "W_extra" in g.params()
    xs = {"x": np.ones((4, 1, 2))}
    r = bptt(u, p, xs, {("h", 3): np.ones((1, 3))})
    assert sorted(r.param_grads) == sorted(p)  # ... the unrolled one does not
    assert "extra" not in u.graph.nodes and u.graph.frozen and not g.frozen
    for edit in (
        lambda: u.graph.layer("more", 3),
        lambda: u.graph.edge("h", "h", delay=2),
        lambda: u.graph.edges.append(u.graph.edges[0]),
        lambda: u.graph.nodes.pop("h"),
        lambda: u.graph.set_outputs("x"),
        lambda: setattr(u.graph, "name", "other"),
    ):
        with pytest.raises(GraphError, match="'elman' is frozen"):
            edit()
    assert u.graph == presets.elman(2, 3) and u.graph.copy().layer("more", 3) == "more"
