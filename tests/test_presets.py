"""Presets are written as torch.nn defines them: names, gates, equations (checked by value)."""

import numpy as np
import pytest

from unroll import Graph, bptt, init_params, presets, unroll
from unroll.ops import ACTIVATIONS
from unroll.presets import PRESETS, preset_options


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def run(graph, steps=3, batch=2, seed=0):
    u = unroll(graph, steps)
    p = init_params(graph, seed=seed)
    xs = np.random.default_rng(seed).normal(size=(steps, batch, graph.nodes["x"].size))
    return p, xs, bptt(u, p, {"x": xs}, {})


def test_lstm_follows_the_torch_equations():
    p, xs, r = run(presets.lstm(3, 4))
    h, c = np.zeros((2, 4)), np.zeros((2, 4))
    for t in range(3):

        def pre(gate, x=xs[t], h=h):
            return x @ p[f"W_i{gate}"].T + p[f"b_i{gate}"] + h @ p[f"W_h{gate}"].T + p[f"b_h{gate}"]

        i, f, g, o = sigmoid(pre("i")), sigmoid(pre("f")), np.tanh(pre("g")), sigmoid(pre("o"))
        c = f * c + i * g
        h = o * np.tanh(c)
        np.testing.assert_allclose(r.values[("c", t)], c, rtol=1e-14)
        np.testing.assert_allclose(r.values[("h", t)], h, rtol=1e-14)


def test_lstm_1997_has_no_forget_gate():
    p, xs, r = run(presets.lstm(3, 4, forget_gate=False))
    assert "W_if" not in p
    h, c = np.zeros((2, 4)), np.zeros((2, 4))
    for t in range(3):

        def pre(gate, x=xs[t], h=h):
            return x @ p[f"W_i{gate}"].T + p[f"b_i{gate}"] + h @ p[f"W_h{gate}"].T + p[f"b_h{gate}"]

        c = c + sigmoid(pre("i")) * np.tanh(pre("g"))
        h = sigmoid(pre("o")) * np.tanh(c)
    np.testing.assert_allclose(r.values[("h", 2)], h, rtol=1e-14)


def test_gru_follows_the_torch_equations():
    p, xs, r = run(presets.gru(3, 4))
    h = np.zeros((2, 4))
    for t in range(3):
        x = xs[t]
        rr = sigmoid(x @ p["W_ir"].T + p["b_ir"] + h @ p["W_hr"].T + p["b_hr"])
        z = sigmoid(x @ p["W_iz"].T + p["b_iz"] + h @ p["W_hz"].T + p["b_hz"])
        n = np.tanh(x @ p["W_in"].T + p["b_in"] + rr * (h @ p["W_hn"].T + p["b_hn"]))
        h = (1 - z) * n + z * h
        np.testing.assert_allclose(r.values[("h", t)], h, rtol=1e-14)


def test_gru_reset_before_follows_cho_and_keras():
    """reset_after=False: r * h[t-1] before W_hn (Keras reset_after=False, ONNX lbr=0)."""
    p, xs, r = run(presets.gru(3, 4, reset_after=False))
    assert "W_hn" in p and "b_hn" in p and presets.gru(reset_after=False).name == "gru_reset_before"
    h = np.zeros((2, 4))
    for t in range(3):
        x = xs[t]
        rr = sigmoid(x @ p["W_ir"].T + p["b_ir"] + h @ p["W_hr"].T + p["b_hr"])
        z = sigmoid(x @ p["W_iz"].T + p["b_iz"] + h @ p["W_hz"].T + p["b_hz"])
        n = np.tanh(x @ p["W_in"].T + p["b_in"] + (rr * h) @ p["W_hn"].T + p["b_hn"])
        h = (1 - z) * n + z * h
        np.testing.assert_allclose(r.values[("h", t)], h, rtol=1e-14)


def test_keras_cell_options_one_bias_and_other_activations():
    g = Graph("keras_like")
    g.input("x", 3)
    presets.lstm_cell(
        g, "x", 4, activation="softsign", recurrent_activation="hard_sigmoid", recurrent_bias=False
    )
    p, xs, r = run(g)
    assert sorted(k for k in p if k.startswith("b_")) == ["b_if", "b_ig", "b_ii", "b_io"]
    hs = ACTIVATIONS["hard_sigmoid"].forward
    soft = ACTIVATIONS["softsign"].forward
    h, c = np.zeros((2, 4)), np.zeros((2, 4))
    for t in range(3):

        def pre(gate, x=xs[t], h=h):
            return x @ p[f"W_i{gate}"].T + p[f"b_i{gate}"] + h @ p[f"W_h{gate}"].T

        c = hs(pre("f")) * c + hs(pre("i")) * soft(pre("g"))
        h = hs(pre("o")) * soft(c)
        np.testing.assert_allclose(r.values[("h", t)], h, rtol=1e-14)


def test_elman_and_jordan_equations():
    p, xs, r = run(presets.elman(3, 4, activation="relu", output_size=2))
    h = np.zeros((2, 4))
    for t in range(3):
        h = np.maximum(xs[t] @ p["W_ih"].T + p["b_ih"] + h @ p["W_hh"].T + p["b_hh"], 0)
    np.testing.assert_allclose(r.values[("y", 2)], h @ p["W_hy"].T + p["b_y"], rtol=1e-14)
    p, xs, r = run(presets.jordan(3, 4, 2))
    y = np.zeros((2, 2))
    for t in range(3):
        h = np.tanh(xs[t] @ p["W_ih"].T + y @ p["W_yh"].T + p["b_h"])
        y = h @ p["W_hy"].T + p["b_y"]
    np.testing.assert_allclose(r.values[("y", 2)], y, rtol=1e-14)


def test_stacked_layers_read_the_layer_below():
    g = presets.stacked("gru", 3, 4, layers=3)
    assert g.output_nodes() == ["h_l2"]
    weighted = {(e.source, e.target) for e in g.edges if e.weight == "W_ir_l1"}
    assert weighted == {("h_l0", "r_l1")}
    assert "W_hn_l2" in g.params()


def test_bidirectional_joins_both_directions_like_torch():
    g = presets.bidirectional("lstm", 3, 4, layers=2)
    assert g.output_nodes() == ["y"]
    assert g.nodes["y"].kind == "concat" and g.nodes["y"].size == 8
    assert [e.source for e in g.in_edges("y")] == ["h_l1", "h_l1_reverse"]
    assert g.params()["W_ii_l1"] == (4, 8)  # reads y_l0 = [h_l0, h_l0_reverse]
    assert {e.delay for e in g.edges if e.source == "h_l0_reverse"} == {0, -1}


def test_every_preset_builds_a_valid_graph_with_torch_names():
    for name, make in PRESETS.items():
        g = make().validate()
        assert "x" in g.nodes, name
        # matrices W_*, biases b_*, per-unit vectors w_* (IndRNN, peepholes), the LRU's nu
        assert all(n.startswith(("W_", "b_", "w_")) or n == "nu" for n in g.params()), name


def test_preset_options_come_from_the_signatures():
    assert preset_options("lstm") == {
        "input_size": 3,
        "hidden_size": 8,
        "bias": True,
        "forget_gate": True,
        "peephole": False,
    }
    assert preset_options("stacked")["cell"] == "lstm"


def test_unknown_cell():
    with pytest.raises(
        ValueError,
        match=r"unknown cell 'rnn' \(known: elman, gru, indrnn, lru, lstm, mingru, minlstm\)",
    ):
        presets.stacked("rnn")
