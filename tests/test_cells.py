"""The cells beyond LSTM and GRU: peephole LSTM, IndRNN, minGRU, minLSTM and the LRU.

Each is checked against finite differences and against torch autograd over a
re-implementation written here from the paper's equations (not from our graph), in
float64; then per-step contributions, ensembles, checkpointing, the closed-form anchors,
and a node kind registered at run time.
"""

from __future__ import annotations

import numpy as np
import pytest

import unroll
from unroll import ops, presets
from unroll.check import directional_error
from unroll.files import parse_toml, to_toml

T, B, I, H = 7, 3, 3, 4  # noqa: E741


def _sig(v):
    return 1 / (1 + (-v).exp())


def _lin(x, p, w, b=None):
    out = x @ p[w].T
    return out if b is None else out + p[b]


def _torch_peephole(p, x, h, c):
    i = _sig(_lin(x, p, "W_ii", "b_ii") + _lin(h, p, "W_hi", "b_hi") + p["w_ci"] * c)
    f = _sig(_lin(x, p, "W_if", "b_if") + _lin(h, p, "W_hf", "b_hf") + p["w_cf"] * c)
    g = (_lin(x, p, "W_ig", "b_ig") + _lin(h, p, "W_hg", "b_hg")).tanh()
    c = f * c + i * g
    o = _sig(_lin(x, p, "W_io", "b_io") + _lin(h, p, "W_ho", "b_ho") + p["w_co"] * c)
    return o * c.tanh(), c


def _torch_indrnn(p, x, h, c, act="relu"):
    z = _lin(x, p, "W_ih", "b_ih") + p["w_hh"] * h
    return (z.relu() if act == "relu" else z.tanh()), c


def _torch_mingru(p, x, h, c):
    z = _sig(_lin(x, p, "W_iz", "b_iz"))
    return (1 - z) * h + z * _lin(x, p, "W_in", "b_in"), c


def _torch_minlstm(p, x, h, c):
    f, i = _sig(_lin(x, p, "W_if", "b_if")), _sig(_lin(x, p, "W_ii", "b_ii"))
    return f / (f + i) * h + i / (f + i) * _lin(x, p, "W_in", "b_in"), c


def _torch_lru(p, x, h, c):
    lam = (-p["nu"].exp()).exp()
    return lam * h + (1 - lam**2).sqrt() * _lin(x, p, "W_ih"), c


CELLS = {
    "lstm_peephole": (lambda: presets.lstm(I, H, peephole=True), _torch_peephole),
    "indrnn": (lambda: presets.indrnn(I, H), _torch_indrnn),
    "indrnn_tanh": (
        lambda: presets.indrnn(I, H, activation="tanh"),
        lambda *a: _torch_indrnn(*a, act="tanh"),
    ),
    "mingru": (lambda: presets.mingru(I, H), _torch_mingru),
    "minlstm": (lambda: presets.minlstm(I, H), _torch_minlstm),
    "lru": (lambda: presets.lru(I, H), _torch_lru),
}


def _setup(name, seed=0):
    g = CELLS[name][0]()
    params = unroll.init_params(g, seed=seed)
    rng = np.random.default_rng(seed + 10)
    xs = rng.normal(size=(T, B, I))
    cots = {("h", t): rng.normal(size=(B, H)) for t in range(T)}
    return g, params, xs, cots


def _rel(a, b):
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_cell_agrees_with_torch_from_the_papers_equations(name):
    torch = pytest.importorskip("torch")
    g, params, xs, cots = _setup(name)
    r = unroll.bptt(unroll.unroll(g, steps=T), params, {"x": xs}, cots)
    tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    tx = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    h = c = torch.zeros(B, H, dtype=torch.float64)
    loss, hs = 0, []
    for t in range(T):
        h, c = CELLS[name][1](tp, tx[t], h, c)
        hs.append(h)
        loss = loss + (h * torch.tensor(cots[("h", t)])).sum()
    loss.backward()
    for t in range(T):
        assert _rel(r.values[("h", t)], hs[t].detach().numpy()) < 1e-12
    ours = sum(float(np.vdot(c_, r.values[k])) for k, c_ in cots.items())
    assert abs(ours - float(loss)) <= 1e-12 * abs(float(loss))
    for k, v in tp.items():
        assert _rel(r.param_grads[k], v.grad.numpy()) < 1e-10, k
    dx = np.stack([r.node_grads[("x", t)] for t in range(T)])
    assert _rel(dx, tx.grad.numpy()) < 1e-10


@pytest.mark.parametrize("name", sorted(CELLS))
def test_cell_agrees_with_finite_differences(name):
    g, params, xs, cots = _setup(name, seed=3)
    u = unroll.unroll(g, steps=T)
    for seed in range(3):
        assert directional_error(u, params, {"x": xs}, cots, seed=seed) < 1e-8


@pytest.mark.parametrize("name", sorted(CELLS))
def test_per_step_contributions_sum_to_every_parameter_gradient(name):
    g, params, xs, cots = _setup(name, seed=1)
    r = unroll.bptt(unroll.unroll(g, steps=T), params, {"x": xs}, cots, contributions=True)
    for k in params:
        parts = r.weight_contributions(k)
        assert parts.shape == (T, *params[k].shape)
        np.testing.assert_allclose(parts.sum(axis=0), r.param_grads[k], rtol=1e-12, atol=1e-15)
    # the per-unit recurrent vector changes from step to step: not one value repeated
    tied = {"indrnn": "w_hh", "lru": "nu", "lstm_peephole": "w_cf"}.get(name)
    if tied:
        parts = r.weight_contributions(tied)
        assert not np.allclose(parts[0], parts[-1])


@pytest.mark.parametrize("name", sorted(CELLS))
def test_an_ensemble_equals_its_single_runs_and_checkpointing_changes_nothing(name):
    g, _, xs, cots = _setup(name)
    u = unroll.unroll(g, steps=T)
    models = [unroll.init_params(g, seed=s) for s in range(3)]
    stacked = {k: np.stack([m[k] for m in models]) for k in models[0]}
    together = unroll.bptt(u, stacked, {"x": xs}, cots)
    for s, p in enumerate(models):
        alone = unroll.bptt(u, p, {"x": xs}, cots)
        ckpt = unroll.bptt(u, p, {"x": xs}, cots, checkpoint=2)
        for k in p:
            np.testing.assert_allclose(together.param_grads[k][s], alone.param_grads[k], 1e-12)
            np.testing.assert_allclose(ckpt.param_grads[k], alone.param_grads[k], 1e-12)


def test_truncated_bptt_of_an_op_parameter_sums_only_the_window():
    g, params, xs, cots = _setup("lru")
    u = unroll.unroll(g, steps=T)
    one = {("h", T - 1): cots[("h", T - 1)]}
    full = unroll.bptt(u, params, {"x": xs}, one, contributions=True)
    cut = unroll.bptt(u, params, {"x": xs}, one, truncate=(T, 2))
    expected = full.weight_contributions("nu")[T - 2 :].sum(axis=0)
    np.testing.assert_allclose(cut.param_grads["nu"], expected, rtol=1e-12)


def test_indrnn_identity_zero_input_follows_u_to_the_k():
    g = presets.indrnn(2, 5, activation="identity", bias=False)
    u_vec = np.array([0.5, 0.9, 0.97, 0.3, 0.8])
    params = {"W_ih": np.zeros((5, 2)), "w_hh": u_vec}
    steps = 400
    un = unroll.unroll(g, steps=steps, mode="many-to-one")
    c = np.ones((1, 5))
    r = unroll.bptt(un, params, {"x": np.zeros((steps, 1, 2))}, {("h", steps - 1): c})
    k = np.arange(steps)
    exact = np.log10(np.linalg.norm(u_vec[None, :] ** k[:, None] * c, axis=1))
    measured = r.log10_grad_norms("h")[::-1]
    np.testing.assert_allclose(measured, exact, rtol=0, atol=1e-12)
    slope = (measured[-1] - measured[-101]) / 100  # far back, max|u| alone is left
    assert abs(slope - np.log10(u_vec.max())) < 1e-12


def test_lru_gradient_is_lambda_to_the_k_whatever_the_input():
    g = presets.lru(3, 4)
    params = unroll.init_params(g, seed=2)
    lam = np.exp(-np.exp(params["nu"]))
    assert np.all((lam >= 0.9 - 1e-12) & (lam <= 0.999 + 1e-12))  # the ring init
    steps = 300
    un = unroll.unroll(g, steps=steps, mode="many-to-one")
    c = np.random.default_rng(0).normal(size=(2, 4))
    xs = np.random.default_rng(1).normal(size=(steps, 2, 3))
    r = unroll.bptt(un, params, {"x": xs}, {("h", steps - 1): c})
    for k in (0, 1, 17, 299):
        np.testing.assert_allclose(r.node_grads[("h", steps - 1 - k)], lam**k * c, rtol=1e-12)


def test_mingru_state_gradient_is_the_product_of_one_minus_z():
    g = presets.mingru(3, 4)
    params = unroll.init_params(g, seed=0)
    steps = 50
    un = unroll.unroll(g, steps=steps, mode="many-to-one")
    c = np.ones((1, 4))
    xs = np.random.default_rng(0).normal(size=(steps, 1, 3))
    r = unroll.bptt(un, params, {"x": xs}, {("h", steps - 1): c})
    carry = c.copy()
    for t in range(steps - 1, 0, -1):
        carry = carry * (1 - r.values[("z", t)])
        np.testing.assert_allclose(r.node_grads[("h", t - 1)], carry, rtol=1e-12)


def test_the_lru_ties_nu_between_its_two_uses():
    g = presets.lru(3, 4)
    assert g.nodes["lambda_h"].params == g.nodes["gamma_bx"].params == ("nu",)
    assert g.params()["nu"] == (4,)


def test_op_parameter_errors_name_the_node():
    g = unroll.Graph("bad")
    g.input("x", 2)
    with pytest.raises(unroll.GraphError, match="node 'h': add nodes take no parameters"):
        g.add_node("h", "add", 2, params=["w"])
    with pytest.raises(unroll.GraphError, match="node 's': scale has no parameter 'v'"):
        g.add_node("s", "scale", 2, params={"v": "w"})
    with pytest.raises(unroll.GraphError, match="node 's': unknown init 'huge'"):
        g.add_node("s", "scale", 2, init="huge")
    g.scale("a", 2, weight="w")
    g.scale("b", 3, weight="w")
    g.layer("y", 3)
    g.edge("x", "a")
    g.edge("x", "y", weight="W")
    g.edge("y", "b")
    with pytest.raises(unroll.GraphError, match="parameter 'w': node 'b' needs 3, but node 'a'"):
        g.validate()


# ---- a kind registered at run time ---------------------------------------------------------


def _swish_vjp(g, y, x, beta):
    s = 1 / (1 + np.exp(-beta * x))
    ds = s * (1 - s)
    return g * (s + beta * x * ds), g * x * x * ds


SWISH = ops.Op(
    "swish",
    1,
    1,
    lambda x, beta: x / (1 + np.exp(-beta * x)),
    _swish_vjp,
    lambda sizes: sizes[0],
    False,
    "swish",
    "x * sigmoid(beta x), beta per unit",
    params=(ops.Param("beta", "beta_{node}", init="ones"),),
    drawing=ops.Drawing("hexagon", "#e0f0ff", symbol=False),
)


@pytest.fixture
def swish(monkeypatch):
    monkeypatch.setitem(ops.OPS, "swish", SWISH)
    g = unroll.Graph("swishnet")
    g.input("x", 2)
    g.layer("h", 3, "tanh", biases=["b"])
    g.add_node("s", "swish", 3, params=["beta"])
    g.edge("x", "h", weight="W_ih")
    g.edge("h", "s", delay=1)
    g.edge("s", "h", weight="W_sh")
    return g


def test_a_kind_registered_at_run_time_gets_bptt_and_finite_differences(swish):
    params = unroll.init_params(swish, seed=0)
    assert set(params) == {"W_ih", "W_sh", "b", "beta"}
    np.testing.assert_array_equal(params["beta"], np.ones(3))
    params["beta"] = np.array([0.5, 1.5, -0.7])
    u = unroll.unroll(swish, steps=6)
    rng = np.random.default_rng(0)
    xs = {"x": rng.normal(size=(6, 2, 2))}
    cots = {("h", t): rng.normal(size=(2, 3)) for t in range(6)}
    for seed in range(3):
        assert directional_error(u, params, xs, cots, seed=seed) < 1e-8
    r = unroll.bptt(u, params, xs, cots, contributions=True)
    np.testing.assert_allclose(
        r.weight_contributions("beta").sum(axis=0), r.param_grads["beta"], rtol=1e-12
    )


def test_a_kind_registered_at_run_time_round_trips_renders_and_analyzes(swish):
    params = unroll.init_params(swish, seed=0)
    loaded = parse_toml(to_toml(swish, params))
    assert loaded.graph == swish
    np.testing.assert_array_equal(loaded.params["beta"], params["beta"])
    assert "s[t] = swish(h[t−1]; beta)" in str(swish).replace("  ", " ")
    dot = unroll.render(swish).source
    assert "hexagon" in dot and "#e0f0ff" in dot
    unrolled_dot = unroll.render(unroll.unroll(swish, steps=3)).source
    assert "hexagon" in unrolled_dot
    report = unroll.analyze(swish, steps=20, seeds=2)
    assert "h" in report.to_json()


# ---- theory overlays --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, rule",
    [
        (lambda: presets.indrnn(3, 4, activation="tanh"), "diagonal path"),
        (lambda: presets.lru(3, 4), "diagonal path"),
        (lambda: presets.mingru(3, 4), "gated path"),
        (lambda: presets.minlstm(3, 4), "gated path"),
    ],
)
def test_theory_overlays_of_the_new_cells_are_exact(make, rule):
    from unroll.analysis.theory import theory_bound, theory_matches

    g = make()
    (node, (found, _)), *rest = theory_matches(g).items()
    assert found.kind == rule and not rest
    params = unroll.init_params(g, seed=0)
    steps = 40
    u = unroll.unroll(g, steps=steps, mode="many-to-one")
    xs = np.random.default_rng(0).normal(size=(steps, 2, 3))
    r = unroll.bptt(u, params, {"x": xs}, {(node, steps - 1): np.ones((2, 4))})
    overlay = theory_bound(g, params, r)[node]
    np.testing.assert_allclose(overlay.log10, r.log10_grad_norms(node)[::-1], atol=1e-12)
