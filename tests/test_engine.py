"""Numeric BPTT: finite differences, closed forms, tied weights, truncation, log-domain norms."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from unroll import Graph, GraphError, InputError, bptt, init_params, presets, unroll
from unroll.check import check_grads
from unroll.engine import compile_program
from unroll.errors import UnrollWarning
from unroll.ops import ACTIVATIONS

TOL = 1e-9  # relative; the fourth-order stencil itself is good to ~1e-12


def random_case(graph, steps, batch=2, seed=0, mode="synced", cot_steps=None):
    u = unroll(graph, steps, mode=mode)
    rng = np.random.default_rng(seed)
    params = init_params(graph, seed=seed)
    inputs = {
        x: rng.normal(size=(len(u.input_steps(x)), batch, graph.nodes[x].size))
        for x in graph.input_nodes()
    }
    steps_with_cot = u.loss_steps if cot_steps is None else cot_steps
    cots = {
        (o, t): rng.normal(size=(batch, graph.nodes[o].size))
        for o in graph.output_nodes()
        for t in steps_with_cot
        if u.present(o, t)
    }
    return u, params, inputs, cots


PRESET_CASES = [
    ("neuron", {}),
    ("elman", {}),
    ("elman", {"activation": "relu"}),
    ("elman", {"output_size": 2}),
    ("jordan", {}),
    ("lstm", {}),
    ("lstm", {"forget_gate": False}),
    ("lstm", {"bias": False}),
    ("gru", {}),
    ("gru", {"reset_after": False}),
    ("stacked", {"cell": "gru", "reset_after": False, "recurrent_bias": False}),
    ("stacked", {"cell": "lstm", "recurrent_activation": "softsign", "recurrent_bias": False}),
    ("stacked", {"cell": "elman", "recurrent_bias": False, "layers": 1}),
    ("bidirectional", {"cell": "gru", "reset_after": False}),
    ("stacked", {"cell": "lstm"}),
    ("stacked", {"cell": "gru", "layers": 3}),
    ("stacked", {"cell": "elman", "bidirectional": True}),
    ("bidirectional", {"cell": "lstm"}),
    ("bidirectional", {"cell": "gru", "layers": 2}),
]


@pytest.mark.parametrize(("name", "options"), PRESET_CASES)
def test_every_preset_matches_finite_differences(name, options):
    g = presets.PRESETS[name](**options)
    u, p, xs, cots = random_case(g, steps=4)
    rng = np.random.default_rng(9)
    states = {b: rng.normal(size=(2, g.nodes[b[0]].size)) for b in u.boundary}
    assert check_grads(u, p, xs, cots, states, directions=2) < TOL


@pytest.mark.parametrize("mode", ["one-to-many", "many-to-one", "many-to-many", "synced"])
def test_sequence_modes_match_finite_differences(mode):
    g = presets.elman(3, 4, output_size=2)
    u, p, xs, cots = random_case(g, steps=5, mode=mode)
    assert check_grads(u, p, xs, cots, directions=2) < TOL


def test_weight_tied_within_and_across_steps():
    """One matrix on two edges, used at every step: its gradient is the sum of all copies."""
    g = Graph("tied")
    g.input("x", 3)
    g.layer("a", 3, "tanh", biases=["b"])
    g.layer("h", 3, "sigmoid")
    g.edge("x", "a", weight="W")
    g.edge("a", "h", weight="W")
    g.edge("h", "a", delay=1, weight="W")
    g.edge("h", "h", delay=2)
    u, p, xs, cots = random_case(g, steps=6)
    assert check_grads(u, p, xs, cots, directions=3) < TOL


def test_gradient_of_a_tied_weight_is_the_sum_of_its_copies():
    g = presets.elman(2, 3)
    u, p, xs, cots = random_case(g, steps=5)
    r = bptt(u, p, xs, cots, contributions=True)
    per_step = r.weight_contributions("W_hh")
    assert per_step.shape == (5, 3, 3)
    np.testing.assert_allclose(per_step.sum(axis=0), r.param_grads["W_hh"], rtol=1e-13)
    for t in range(5):  # each copy: dz_t^T h_{t-1}, from the node gradients
        h, h_prev = r.values[("h", t)], r.values[("h", t - 1)]
        dz = r.node_grads[("h", t)] * (1 - h * h)
        np.testing.assert_allclose(per_step[t], dz.T @ h_prev, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(r.weight_contributions("b_hh").sum(axis=0), r.param_grads["b_hh"])
    logs = r.contribution_log10_norms("W_hh")
    np.testing.assert_allclose(10**logs, np.linalg.norm(per_step, axis=(1, 2)), rtol=1e-12)


NODE_KINDS = st.sampled_from(["layer", "layer", "add", "mul", "one_minus", "concat"])


@st.composite
def random_graphs(draw):
    """Random graphs of every node kind with delays of both signs (often invalid: assumed)."""
    g = Graph("random")
    for i in range(draw(st.integers(1, 2))):
        g.input(f"x{i}", draw(st.integers(1, 3)))
    for i in range(draw(st.integers(1, 5))):
        name, kind = f"n{i}", draw(NODE_KINDS)
        reads = st.tuples(st.sampled_from([*g.nodes, name]), st.integers(-2, 2))
        picks = draw(st.lists(reads, min_size=1, max_size=3))
        own = draw(st.integers(1, 3))
        if kind == "layer":
            act = draw(st.sampled_from(["tanh", "sigmoid", "identity", "softplus"]))
            g.layer(name, own, act, biases=[f"b{i}"] if draw(st.booleans()) else [])
            first = picks[0][0]
            for j, (src, delay) in enumerate(picks):
                same_shape = (own if src == name else g.nodes[src].size) == (
                    own if first == name else g.nodes[first].size
                )
                tied = j > 0 and same_shape and draw(st.booleans())
                g.edge(src, name, delay=delay, weight=f"W{i}_{0 if tied else j}")
            continue
        others = [(src, d) for src, d in picks if src != name]
        if kind == "concat":
            picks = others or [("x0", 0)]
            size = sum(g.nodes[src].size for src, _ in picks)
        else:
            size = g.nodes[others[0][0]].size if others else own
            picks = [(src, d) for src, d in picks if src == name or g.nodes[src].size == size]
            picks = picks[:1] if kind == "one_minus" else picks
        g.add_node(name, kind, size)
        for src, delay in picks:
            g.edge(src, name, delay=delay)
    try:
        g.validate()
    except GraphError:
        assume(False)
    return g


def instance_values(u, params, xs, states):
    """Every computed instance's value from the graph's own definitions, one instance at
    a time in the unrolled order (``Unrolled.sources``, the node rows' ``forward``): an
    evaluation that shares no code with the engine's scans."""
    g, values = u.graph, dict(states)
    for name, t in u.order:
        node = g.nodes[name]
        if node.kind == "input":
            values[(name, t)] = xs[name][list(u.input_steps(name)).index(t)]
            continue
        reads = [(e, values.get(inst)) for e, inst in u.sources((name, t))]
        batch = next(iter(xs.values())).shape[1]
        reads = [
            (e, np.zeros((batch, g.nodes[e.source].size)) if v is None else v) for e, v in reads
        ]
        if node.kind == "layer":
            z = sum(v if e.weight is None else v @ params[e.weight].T for e, v in reads)
            z = z + sum(params[b] for b in node.biases)
            values[(name, t)] = ACTIVATIONS[node.activation].forward(z)
        else:
            roles = {p.role: params[n] for p, n in zip(node.op.params, node.params, strict=True)}
            values[(name, t)] = node.op.forward(*(v for _, v in reads), **roles)
    return values


def retimed_graph(bias=False):
    """Two layers whose delays mix signs (``b`` reads ``a`` one step ahead): retimed."""
    g = Graph("retimed")
    g.input("x", 3)
    g.layer("a", 4, "tanh", biases=["b_a"] if bias else [])
    g.layer("b", 4, "tanh", biases=["b_b"] if bias else [])
    g.edge("x", "a", weight="W_xa")
    g.edge("b", "a", weight="W_ba", delay=2)
    g.edge("a", "b", weight="W_ab", delay=-1)
    return g


def chain_retimed_graph():
    """Three nodes of a loop, two of them reading the step ahead, one an op: each offset
    differently in the scan."""
    g = Graph("chain")
    g.input("x", 2)
    g.layer("a", 3, "tanh", biases=["b_a"])
    g.layer("b", 3, "sigmoid")
    g.add_node("c", "mul", 3)
    g.edge("x", "a", weight="W_xa")
    g.edge("c", "a", weight="W_ca", delay=3)
    g.edge("a", "b", weight="W_ab", delay=-1)
    g.edge("b", "c", delay=-1)
    g.edge("a", "c")
    return g


@pytest.mark.parametrize(
    "graph",
    [retimed_graph(), retimed_graph(bias=True), chain_retimed_graph()],
    ids=["retimed", "retimed with biases", "chain"],
)
@pytest.mark.parametrize("steps", [4, 9])
def test_retimed_loops_compute_every_instance_by_its_definition(graph, steps):
    """A retimed unit computes its own steps and no others: its boundary rows keep the
    initial states (a unit once took another unit's step count for its own and wrote its
    value at step -1 over its initial state)."""
    u = unroll(graph, steps)
    rng = np.random.default_rng(steps)
    p = init_params(graph, seed=steps)
    xs = {"x": rng.normal(size=(steps, 2, graph.nodes["x"].size))}
    states = {b: rng.normal(size=(2, graph.nodes[b[0]].size)) for b in u.boundary}
    r = bptt(u, p, xs, {}, initial_states=states, input_grads=False)
    expected = instance_values(u, p, xs, states)
    for inst in u.order:
        np.testing.assert_allclose(r.values[inst], expected[inst], rtol=1e-12, atol=1e-14)
    computed = [inst for inst in u.order if inst[0] != "x"]
    cots = {inst: rng.normal(size=(2, graph.nodes[inst[0]].size)) for inst in computed[-3:]}
    assert check_grads(u, p, xs, cots, states, directions=2, seed=steps) < TOL


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(random_graphs(), st.integers(1, 4), st.integers(0, 10**6))
def test_random_graphs_match_finite_differences(g, steps, seed):
    with warnings.catch_warnings():  # delays longer than the sequence are fine here
        warnings.simplefilter("ignore", UnrollWarning)
        u = unroll(g, steps)
    rng = np.random.default_rng(seed)
    p = {k: 0.5 * v for k, v in init_params(g, seed=seed).items()}
    xs = {x: rng.normal(size=(steps, 2, g.nodes[x].size)) for x in g.input_nodes()}
    computed = [inst for inst in u.order if g.nodes[inst[0]].kind != "input"]
    picks = rng.choice(len(computed), size=min(3, len(computed)), replace=False)
    cots = {computed[i]: rng.normal(size=(2, g.nodes[computed[i][0]].size)) for i in picks}
    states = {b: rng.normal(size=(2, g.nodes[b[0]].size)) for b in u.boundary}
    assert check_grads(u, p, xs, cots, states, directions=1, seed=seed) < 1e-8
    # the values themselves (finite differences of the engine's own forward pass would
    # not see one that is wrong in a way the backward pass shares)
    r = bptt(u, p, xs, {}, initial_states=states, input_grads=False)
    expected = instance_values(u, p, xs, states)
    for inst in u.order:
        np.testing.assert_allclose(r.values[inst], expected[inst], rtol=1e-12, atol=1e-13)


def test_linear_rnn_closed_form():
    """h_t = W h_{t-1} + U x_t: dL/dh_t = sum_{i >= t} (W^T)^(i - t) c_i."""
    T, n = 7, 4
    g = presets.elman(3, n, activation="identity", bias=False)
    u, p, xs, cots = random_case(g, steps=T)
    r = bptt(u, p, xs, cots)
    W = p["W_hh"]
    for t in range(T):
        expected = sum(cots[("h", i)] @ np.linalg.matrix_power(W, i - t) for i in range(t, T))
        np.testing.assert_allclose(r.node_grads[("h", t)], expected, rtol=1e-12, atol=1e-14)
    expected_h0 = cots[("h", 0)] @ W
    for i in range(1, T):
        expected_h0 = expected_h0 + cots[("h", i)] @ np.linalg.matrix_power(W, i + 1)
    np.testing.assert_allclose(r.node_grads[("h", -1)], expected_h0, rtol=1e-12)


def orthogonal_elman(scale, steps, n=16, activation="tanh"):
    g = presets.elman(3, n, activation=activation, bias=False)
    p = init_params(g, seed=0, scheme="orthogonal", spectral_norm=scale)
    u = unroll(g, steps)
    return u, p, {"x": np.zeros((steps, 1, 3))}, {("h", steps - 1): np.ones((1, n))}


def test_log_domain_norms_stay_exact_where_float64_underflows():
    """The issue's example: 0.5 * orthogonal, 5000 steps: exactly 5000 log10(0.5) ~ -1505."""
    T = 5000
    u, p, xs, cots = orthogonal_elman(0.5, T)
    r = bptt(u, p, xs, cots)
    logs = r.log10_grad_norms("h")
    assert logs[-1] == pytest.approx(math.log10(4.0), abs=1e-12)  # ||ones(16)|| = 4
    np.testing.assert_allclose(np.diff(logs), -math.log10(0.5), atol=1e-10)
    assert logs[0] == pytest.approx(math.log10(4.0) + (T - 1) * math.log10(0.5), abs=1e-8)
    assert not np.any(r.node_grads[("h", 0)])  # the plain float64 value is 0


def test_log_domain_norms_stay_exact_where_float64_overflows():
    T = 3000
    u, p, xs, cots = orthogonal_elman(1.5, T, activation="identity")
    r = bptt(u, p, xs, cots)
    logs = r.log10_grad_norms("h")
    assert logs[0] - logs[-1] == pytest.approx((T - 1) * math.log10(1.5), abs=1e-8)
    assert np.all(np.isinf(r.node_grads[("h", 0)]))


def test_later_cotangents_arrive_at_the_right_scale():
    """After the gradient of a far loss has decayed by 10^-300, a near loss still counts."""
    T = 1200
    u, p, xs, cots = orthogonal_elman(0.5, T)
    cots[("h", 200)] = np.full((1, 16), 1e-3)
    logs = bptt(u, p, xs, cots).log10_grad_norms("h")
    assert logs[200] == pytest.approx(math.log10(4e-3), abs=1e-9)
    assert logs[0] == pytest.approx(math.log10(4e-3) + 200 * math.log10(0.5), abs=1e-9)
    assert logs[1000] == pytest.approx(math.log10(4.0) + 199 * math.log10(0.5), abs=1e-9)


def test_truncation_with_a_window_as_long_as_the_sequence_is_full_bptt():
    g = presets.lstm(2, 3)
    u, p, xs, cots = random_case(g, steps=7)
    full = bptt(u, p, xs, cots)
    for k1 in (1, 3, 7):
        trunc = bptt(u, p, xs, cots, truncate=(k1, 7))
        for name in full.param_grads:
            np.testing.assert_allclose(
                trunc.param_grads[name], full.param_grads[name], rtol=1e-12, atol=1e-15
            )
        np.testing.assert_allclose(
            trunc.node_grads[("h", -1)], full.node_grads[("h", -1)], rtol=1e-12, atol=1e-15
        )


@pytest.mark.parametrize(("k1", "k2"), [(1, 1), (2, 3), (3, 2), (4, 4)])
def test_truncation_equals_full_bptt_on_each_window(k1, k2):
    """Reference: each chunk's losses, run through a fresh unroll of its k2-step window."""
    T = 9
    g = presets.gru(2, 3)
    u, p, xs, cots = random_case(g, steps=T)
    r = bptt(u, p, xs, cots, truncate=(k1, k2))
    expected = {k: np.zeros_like(v) for k, v in p.items()}
    previous = -1
    for end in [*range(k1 - 1, T - 1, k1), T - 1]:
        start = max(0, end - k2 + 1)
        w = unroll(g, end - start + 1)
        window_cots = {
            ("h", t - start): c for (n, t), c in cots.items() if max(previous, start - 1) < t <= end
        }  # k2 < k1 drops early losses
        state = {"h": bptt(u, p, xs, {}).values[("h", start - 1)]}
        part = bptt(w, p, {"x": xs["x"][start : end + 1]}, window_cots, initial_states=state)
        for k in expected:
            expected[k] += part.param_grads[k]
        previous = end
    for k in expected:
        np.testing.assert_allclose(r.param_grads[k], expected[k], rtol=1e-12, atol=1e-15)


def test_truncation_needs_a_causal_graph():
    u, p, xs, cots = random_case(presets.bidirectional(), steps=3)
    with pytest.raises(InputError, match=r"edge h_reverse -> h_reverse @ t\+1 reads the future"):
        bptt(u, p, xs, cots, truncate=(1, 2))


def test_batch_items_are_independent():
    g = presets.lstm(2, 3)
    u, p, xs, cots = random_case(g, steps=4, batch=3)
    r = bptt(u, p, xs, cots)
    total = {k: 0 for k in p}
    for b in range(3):
        rb = bptt(u, p, {"x": xs["x"][:, b : b + 1]}, {k: c[b : b + 1] for k, c in cots.items()})
        np.testing.assert_allclose(rb.values[("h", 3)], r.values[("h", 3)][b : b + 1], rtol=1e-14)
        for k in p:
            total[k] = total[k] + rb.param_grads[k]
    for k in p:
        np.testing.assert_allclose(total[k], r.param_grads[k], rtol=1e-12)
    per_item = r.log10_grad_norms("h", sample=1)
    assert per_item[2] == pytest.approx(np.log10(np.linalg.norm(r.node_grads[("h", 2)][1])))


def test_float32_on_request():
    g = presets.gru(2, 3)
    u, p, xs, cots = random_case(g, steps=4)
    r64 = bptt(u, p, xs, cots)
    r32 = bptt(u, p, xs, cots, dtype=np.float32)
    assert r32.values[("h", 3)].dtype == np.float32
    assert r32.param_grads["W_hn"].dtype == np.float32
    np.testing.assert_allclose(
        r32.param_grads["W_hn"], r64.param_grads["W_hn"], rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize("loss", ["sum", "mse", "xent"])
def test_losses_match_finite_differences_of_their_value(loss):
    g = presets.elman(3, 4, output_size=3)
    u = unroll(g, 4, mode="many-to-many", encoder_steps=2)
    p = init_params(g, seed=1)
    rng = np.random.default_rng(2)
    xs = {"x": rng.normal(size=(2, 2, 3))}
    targets = rng.integers(0, 3, size=(2, 2)) if loss == "xent" else rng.normal(size=(2, 2, 3))
    r = bptt(u, p, xs, loss=loss, targets=targets)
    d = rng.normal(size=p["W_hy"].shape)

    def value(e):
        moved = dict(p, W_hy=p["W_hy"] + e * d)
        return bptt(u, moved, xs, loss=loss, targets=targets).loss

    h = 1e-4
    numeric = (8 * (value(h) - value(-h)) - (value(2 * h) - value(-2 * h))) / (12 * h)
    assert float(np.vdot(r.param_grads["W_hy"], d)) == pytest.approx(numeric, rel=1e-9)
    if loss == "mse":
        ys = np.stack([r.values[("y", t)] for t in (2, 3)])
        assert r.loss == pytest.approx(np.mean((ys - targets) ** 2), rel=1e-14)


def test_gradient_that_reaches_nothing_is_zero_not_missing():
    g = presets.elman(2, 3)
    u, p, xs, _ = random_case(g, steps=3)
    r = bptt(u, p, xs, {("h", 0): np.ones((2, 3))})
    assert not np.any(r.node_grads[("h", 2)])
    assert r.log10_grad_norms("h")[2] == -np.inf
    assert set(r.param_grads) == set(p)


def test_program_is_compiled_once_and_in_topological_order():
    u = unroll(presets.lstm(2, 3), steps=4)
    program = compile_program(u)
    assert compile_program(u) is program
    position = {inst: i for i, inst in enumerate(program.instances)}
    for a, b in u.dag.edges:
        assert position[a] < position[b]


def test_first_nonfinite_names_the_node_and_step():
    g = presets.elman(1, 1, activation="relu", bias=False)
    u = unroll(g, 400)
    p = {"W_ih": np.ones((1, 1)), "W_hh": np.full((1, 1), 10.0)}
    r = bptt(u, p, {"x": np.ones((400, 1, 1))}, {("h", 399): np.ones((1, 1))})
    # h_t = (10^(t+1) - 1) / 9: h_308 = 1.1e308 still fits in float64, h_309 does not
    assert r.first_nonfinite() == ("h", 309)
    ok = bptt(u, {**p, "W_hh": np.ones((1, 1))}, {"x": np.ones((400, 1, 1))}, {})
    assert ok.first_nonfinite() is None


def gated_graph() -> Graph:
    """A gate ``a`` read only by a product ``h = a * a``: the backward pass may overwrite
    its values with its gradient."""
    g = Graph("gated")
    g.input("x", 1)
    g.layer("a", 1, "relu")
    g.mul("h", 1)
    g.edge("x", "a", weight="W_xa")
    g.edge("h", "a", weight="W_ha", delay=1)
    g.edge("a", "h")
    g.edge("a", "h")
    return g


def test_first_nonfinite_names_a_gate_whose_values_the_backward_pass_overwrites():
    """A gate read only by a product has its values overwritten by its gradient in the
    backward pass: it is tested before, the state after, and the earliest is named."""
    g = gated_graph()
    assert "a" in compile_program(unroll(g, 3)).reuse
    p = {"W_xa": np.full((1, 1), 1e300), "W_ha": np.zeros((1, 1))}
    xs = np.array([0.0, 0.0, 1e10, 0.0, 0.0]).reshape(5, 1, 1)  # a = inf at step 2
    r = bptt(unroll(g, 5), p, {"x": xs}, {("h", 4): np.ones((1, 1))})
    assert r.first_nonfinite() == ("a", 2)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p, x, c: p.pop("W_hh"), "missing parameter 'W_hh' of shape (4, 4)"),
        (
            lambda p, x, c: p.update(W_hh=np.ones((4, 3))),
            "parameter 'W_hh' has shape (4, 3), the graph needs (4, 4)",
        ),
        (lambda p, x, c: p.update(V=np.ones(2)), "unknown parameter 'V' (the graph has: W_hh,"),
        (lambda p, x, c: x.update(x=np.ones((5, 2, 2))), "input 'x' has shape (5, 2, 2), expected"),
        (lambda p, x, c: x.update(z=np.ones((5, 2, 3))), "unknown input 'z' (inputs: x)"),
        (lambda p, x, c: x.pop("x"), "missing input 'x': give an array (T, B, 3)"),
        (lambda p, x, c: x.update(x=np.full((5, 2, 3), "a")), "input 'x' has dtype <U1"),
        (
            lambda p, x, c: c.update({("h", 9): np.ones((2, 4))}),
            "cotangent for ('h', 9): no such node instance (steps 0..4)",
        ),
        (
            lambda p, x, c: c.update({("x", 1): np.ones((2, 3))}),
            "cotangent for ('x', 1): input and boundary nodes take no cotangent",
        ),
        (
            lambda p, x, c: c.update({("h", 1): np.ones((3, 4))}),
            "cotangent for ('h', 1) has shape (3, 4), expected (2, 4)",
        ),
        (
            lambda p, x, c: c.update({("h", 1): np.full((2, 4), np.nan)}),
            "cotangent for ('h', 1) has non-finite values",
        ),
    ],
)
def test_bad_calls_get_one_line_errors(change, message):
    g = presets.elman(3, 4)
    u, p, xs, cots = random_case(g, steps=5)
    change(p, xs, cots)
    with pytest.raises(InputError) as e:
        bptt(u, p, xs, cots)
    assert str(e.value).startswith(message)
    assert "\n" not in str(e.value)


def test_initial_states_by_node_or_by_instance():
    g = presets.elman(2, 3)
    u, p, xs, cots = random_case(g, steps=3)
    h0 = np.full((2, 3), 0.3)
    a = bptt(u, p, xs, cots, initial_states={"h": h0})
    b = bptt(u, p, xs, cots, initial_states={("h", -1): h0})
    np.testing.assert_array_equal(a.values[("h", 2)], b.values[("h", 2)])
    assert not np.allclose(a.values[("h", 0)], bptt(u, p, xs, cots).values[("h", 0)])
    with pytest.raises(InputError, match="initial state 'c': no such boundary node"):
        bptt(u, p, xs, cots, initial_states={"c": h0})


def test_truncation_window_edge_gets_no_partial_gradient():
    """Outside the window nothing is backpropagated, with one chunk as with several."""
    T = 6
    u, p, xs, cots = random_case(presets.elman(2, 3), steps=T)
    one_chunk = bptt(u, p, xs, cots, truncate=(T, 2))
    for t in range(T - 2):
        assert not np.any(one_chunk.node_grads[("h", t)]), t
    assert np.any(one_chunk.node_grads[("h", T - 2)])


@pytest.mark.parametrize(
    ("graph", "state", "inner", "weight", "bias"),
    [
        (presets.lstm(3, 8), "c", "f", "W_hf", "b_if"),
        (presets.elman(3, 8), "h", "h", "W_hh", "b_ih"),  # its gradient rows rebuilt on request
    ],
)
def test_results_hold_no_reference_cycles_and_memory_returns_when_dropped(
    graph, state, inner, weight, bias
):
    import gc
    import tracemalloc

    u, p, xs, cots = random_case(graph, steps=50, batch=3)

    def run_and_read():
        r = bptt(u, p, xs, cots, contributions=True)
        r.log10_grad_norms(state), r.values[(inner, 3)], r.node_grads[(inner, 3)], r.warnings
        r.contribution_log10_norms(weight), r.weight_contributions(bias)
        return r

    run_and_read()  # the first run caches the compiled program
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        tracemalloc.start()
        run_and_read()  # what the run caches for later runs is allocated once, here
        before = tracemalloc.get_traced_memory()[0]
        held = run_and_read()
        assert tracemalloc.get_traced_memory()[0] - before > 50 * 3 * 8 * 8  # it holds arrays
        del held
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert after - before < 4096  # freed by reference counting alone
        gc.collect()
        assert gc.garbage == []  # nothing was left for the cyclic collector
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()


@pytest.mark.parametrize(
    ("name", "options", "segment"),
    [("lstm", {}, "sqrt"), ("gru", {}, 3), ("stacked", {"cell": "lstm"}, 4), ("elman", {}, 2)],
)
def test_checkpointing_changes_nothing_but_rounding(name, options, segment):
    g = presets.PRESETS[name](**options)
    u, p, xs, cots = random_case(g, steps=11, batch=2, cot_steps=[3, 10])

    def close(a, b):  # segment-wise products sum in another order: the last bits differ
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-17)

    full = bptt(u, p, xs, cots, contributions=True)
    part = bptt(u, p, xs, cots, contributions=True, checkpoint=segment)
    for key in p:
        close(part.param_grads[key], full.param_grads[key])
    for inst in [*u.boundary, *u.order]:
        close(part.node_grads[inst], full.node_grads[inst])
        close(part.values[inst], full.values[inst])
    for s in g.state_nodes():
        close(part.log10_grad_norms(s), full.log10_grad_norms(s))
    w = g.recurrent_weights()[0]
    close(part.contribution_log10_norms(w), full.contribution_log10_norms(w))


def test_checkpointing_keeps_one_segment_of_gates():
    g = presets.lstm(2, 4)
    u = unroll(g, steps=100)
    p = init_params(g, seed=0)
    xs = {"x": np.ones((100, 1, 2))}
    r = bptt(u, p, xs, {("h", 99): np.ones((1, 4))}, checkpoint="sqrt")
    gates = r._store.fwd.unit_base[id(r._store.program.unit_of["i"])]
    assert gates.shape[-3] < 15  # 10 steps and the loop's depth, not 100
    with pytest.raises(InputError, match="checkpoint must be 'sqrt'"):
        bptt(u, p, xs, {}, checkpoint=0)
    with pytest.raises(InputError, match="checkpoint and truncate do not go together"):
        bptt(u, p, xs, {}, checkpoint="sqrt", truncate=(5, 5))


def test_an_ensemble_is_drawn_one_model_at_a_time():
    from unroll.render import render
    from unroll.render.errors import RenderError

    g = presets.elman(2, 3)
    u, p, xs, cots = random_case(g, steps=3)
    stacked = {k: np.stack([v, 2 * v]) for k, v in p.items()}
    r = bptt(u, stacked, xs, cots)
    with pytest.raises(RenderError, match=r"ensemble of 2 models; draw one of them"):
        render(r)
    assert (
        render(r.model(1), grads=True).source
        == render(bptt(u, {k: 2 * v for k, v in p.items()}, xs, cots), grads=True).source
    )


@pytest.mark.parametrize(("name", "options"), PRESET_CASES)
def test_an_ensemble_gives_each_model_what_it_gets_alone(name, options):
    g = presets.PRESETS[name](**options)
    u, _, xs, cots = random_case(g, steps=4)
    models = [init_params(g, seed=s) for s in range(3)]
    stacked = {k: np.stack([m[k] for m in models]) for k in models[0]}
    per_model_x = {k: np.stack([v, 2 * v, -v]) for k, v in xs.items()}
    together = bptt(u, stacked, per_model_x, cots, loss="sum", contributions=True)
    assert together.models == 3
    for i, params in enumerate(models):
        alone = bptt(
            u,
            params,
            {k: v[i] for k, v in per_model_x.items()},
            cots,
            loss="sum",
            contributions=True,
        )
        one = together.model(i)
        assert one.loss == pytest.approx(alone.loss, rel=1e-13)
        for k in params:
            np.testing.assert_allclose(one.param_grads[k], alone.param_grads[k], rtol=1e-12)
        for inst in [*u.boundary, *u.order]:
            np.testing.assert_allclose(one.node_grads[inst], alone.node_grads[inst], rtol=1e-12)
            np.testing.assert_allclose(one.values[inst], alone.values[inst], rtol=1e-12)
        for s in g.state_nodes():
            np.testing.assert_allclose(one.log10_grad_norms(s), alone.log10_grad_norms(s))
        w = g.recurrent_weights()[0]
        np.testing.assert_allclose(
            one.weight_contributions(w), alone.weight_contributions(w), rtol=1e-12, atol=1e-300
        )


def test_an_ensemble_names_its_faults_per_model():
    g = presets.neuron(activation="relu", bias=False)
    u = unroll(g, 400)
    p = {"W_ih": np.ones((1, 1)), "W_hh": np.array([[[1.0]], [[10.0]]])}
    r = bptt(u, p, {"x": np.ones((400, 1, 1))}, {("h", 399): np.ones((1, 1))})
    assert r.model(0).first_nonfinite() is None and r.model(0).warnings == []
    assert r.model(1).first_nonfinite() == ("h", 309)
    assert r.first_nonfinite() == ("h", 309)
    with pytest.raises(
        InputError, match="parameter 'W_ih' holds 2 models, parameter 'W_hh' holds 3"
    ):
        bptt(
            u, {"W_ih": np.ones((2, 1, 1)), "W_hh": np.ones((3, 1, 1))}, {"x": np.ones((400, 1, 1))}
        )
    with pytest.raises(InputError, match="model 5 is not in this ensemble of 2"):
        r.model(5)


@pytest.mark.parametrize(
    "options", [{"truncate": (4, 6)}, {"checkpoint": 4}, {"dtype": np.float32}]
)
def test_an_ensemble_keeps_truncation_checkpoints_and_float32(options):
    g = presets.lstm(2, 3)
    u = unroll(g, steps=12)
    models = [init_params(g, seed=s) for s in range(3)]
    stacked = {k: np.stack([m[k] for m in models]) for k in models[0]}
    xs = {"x": np.random.default_rng(0).normal(size=(12, 2, 2))}
    cots = {("h", t): np.ones((2, 3)) for t in range(12)}
    together = bptt(u, stacked, xs, cots, **options)
    for i, params in enumerate(models):
        alone = bptt(u, params, xs, cots, **options)
        for k in params:
            np.testing.assert_allclose(
                together.model(i).param_grads[k], alone.param_grads[k], rtol=1e-6
            )
        np.testing.assert_allclose(
            together.model(i).log10_grad_norms("c"), alone.log10_grad_norms("c"), rtol=1e-6
        )


def _graph_of(edges, kinds):
    g = Graph("found")
    g.input("x0", 1)
    for name, kind in kinds:
        if kind == "layer":
            g.layer(name, 1, "tanh")
        else:
            g.add_node(name, kind, 1)
    for source, target, delay, weight in edges:
        g.edge(source, target, delay=delay, weight=weight)
    return g


@pytest.mark.parametrize(
    ("kinds", "edges"),
    [  # found by a long run of the random-graph check (hypothesis, 2400 graphs)
        (  # an input read twice by a sum in a loop: two gradients, not one
            [("n0", "add"), ("n1", "layer")],
            [
                ("x0", "n0", 0, None),
                ("x0", "n0", 0, None),
                ("n0", "n0", 1, None),
                ("x0", "n1", 0, "W"),
            ],
        ),
        ([("n4", "mul"), ("n1", "add")], [("n4", "n4", 1, None), ("x0", "n1", 0, None)]),
    ],
)
def test_graphs_the_long_random_check_found(kinds, edges):
    g = _graph_of(edges, kinds)
    for steps in (1, 2, 4):
        u = unroll(g, steps)
        rng = np.random.default_rng(0)
        p = {k: 0.5 * v for k, v in init_params(g, seed=0).items()}
        xs = {"x0": rng.normal(size=(steps, 2, 1))}
        computed = [i for i in u.order if g.nodes[i[0]].kind != "input"]
        cots = {c: rng.normal(size=(2, 1)) for c in computed}
        states = {b: rng.normal(size=(2, 1)) for b in u.boundary}
        assert check_grads(u, p, xs, cots, states, directions=2) < TOL
