"""Depth is time without tied weights: a deep MLP analysed per layer, like an RNN per step."""

import csv
import json

import numpy as np
import pytest

import unroll
from unroll.analysis.axes import axis_of, layer_distances, layer_groups
from unroll.check import check_grads
from unroll.presets import mlp, mlp_torch_names


def _loss_sum(g, params, x):
    """The loss ``sum(y)`` of one forward pass of ``g`` on ``x`` (1, B, n)."""
    r = unroll.bptt(unroll.unroll(g, 1, mode="one-to-one"), params, {"x": x}, loss="sum")
    return float(r.loss), r


def _per_layer(g, params, x):
    """analyze's per-layer log10 norms of one fixed run (loss: the sum of the outputs)."""
    rep = unroll.analyze(g, params=params, inputs=x, loss="sum", seeds=1)
    return rep[g.name].grad_norms["h"][0]


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_per_layer_norms_equal_torch_autograd(activation):
    torch = pytest.importorskip("torch")
    g = mlp(3, 6, depth=7, activation=activation)
    params = unroll.init_params(g, seed=1, scheme="he")
    x = np.random.default_rng(0).standard_normal((1, 4, 3))
    names = mlp_torch_names(7)
    layers = torch.nn.ModuleList(torch.nn.Linear(3 if k == 0 else 6, 6) for k in range(7))
    model = torch.nn.ModuleDict({"layers": layers, "head": torch.nn.Linear(6, 1)}).double()
    model.load_state_dict({names[k]: torch.tensor(v) for k, v in params.items()})
    act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[activation]
    h, kept = torch.tensor(x[0]), []
    for layer in model["layers"]:
        h = act(layer(h))
        h.retain_grad()
        kept.append(h)
    model["head"](h).sum().backward()
    with np.errstate(divide="ignore"):  # a ReLU layer may pass no gradient: -inf, exact
        expected = np.log10([float(k.grad.norm()) for k in kept])
    np.testing.assert_allclose(_per_layer(g, params, x), expected, rtol=0, atol=1e-10)


def test_per_layer_norms_agree_with_finite_differences():
    """dL/dh_l . v from moving h_l by eps v (adding eps W_(l+1) v to the next layer's bias)."""
    g = mlp(2, 5, depth=6, activation="sigmoid")
    params = unroll.init_params(g, seed=2, scheme="he")
    x = np.random.default_rng(3).standard_normal((1, 1, 2))
    _, r = _loss_sum(g, params, x)
    rng, eps = np.random.default_rng(4), 1e-3
    for k in range(5):  # h_l0 ... h_l4 (the next layer's bias carries the push)
        v = rng.standard_normal(5)
        push = params[f"W_l{k + 1}"] @ v

        def loss_at(s, k=k, push=push):
            moved = dict(params, **{f"b_l{k + 1}": params[f"b_l{k + 1}"] + s * push})
            return _loss_sum(g, moved, x)[0]

        near, far = loss_at(eps) - loss_at(-eps), loss_at(2 * eps) - loss_at(-2 * eps)
        fd = (8 * near - far) / (12 * eps)  # error O(eps**4)
        assert r.node_grads[(f"h_l{k}", 0)][0] @ v == pytest.approx(fd, rel=1e-9, abs=1e-13)
    cots = {("y", 0): np.ones((1, 1))}
    u = unroll.unroll(g, 1, mode="one-to-one")
    assert check_grads(u, params, {"x": x}, cots) < 1e-8


def test_sigmoid_vanishes_where_relu_with_he_init_keeps_the_gradient():
    # wide: at width n the median drifts down by a term of order 1/n per layer
    sigmoid, relu = mlp(4, 512, 20, "sigmoid"), mlp(4, 512, 20, "relu")
    rep = unroll.analyze(
        {"sigmoid": sigmoid, "relu, He": (relu, {"init": "he"}), "relu, torch": relu},
        steps=20,
        seeds=10,
    )
    assert rep.summary["sigmoid"]["h"].verdict == "vanishing"
    assert rep.summary["sigmoid"]["h"].factor_per_step < 0.25  # at most σ' = 1/4 per layer
    assert rep.summary["relu, He"]["h"].verdict == "stable"
    # torch's default U(±1/sqrt(n)) has a third of He's variance: sqrt(1/6) per layer
    assert rep.summary["relu, torch"]["h"].factor_per_step == pytest.approx(6**-0.5, rel=0.1)
    assert all(p.axis == "depth" and p.steps == 20 for p in rep.profiles.values())


def test_layers_are_grouped_by_their_distance_from_the_loss():
    g = mlp(2, 3, depth=3)
    assert layer_distances(g) == {"h_l0": 2, "h_l1": 1, "h_l2": 0}
    assert axis_of(g).name == "depth" and axis_of(unroll.presets.elman()).name == "time"
    branch = unroll.Graph("branches")  # two parallel layers at the same distance
    branch.input("x", 2)
    for name in ("a", "b"):
        branch.layer(name, 3, "tanh")
        branch.edge("x", name, weight=f"W_{name}")
    branch.layer("y", 1)
    branch.edge("a", "y", weight="W_ay")
    branch.edge("b", "y", weight="W_by")
    assert layer_groups(branch) == [["a", "b"]]
    params = unroll.init_params(branch, seed=0)
    x = np.ones((1, 1, 2))
    _, r = _loss_sum(branch, params, x)
    joint = np.concatenate([r.node_grads[("a", 0)].ravel(), r.node_grads[("b", 0)].ravel()])
    assert _per_layer(branch, params, x)[0] == pytest.approx(np.log10(np.linalg.norm(joint)))


def test_a_graph_with_nothing_between_input_and_output_is_refused():
    g = unroll.Graph("linear")
    g.input("x", 2)
    g.layer("y", 1)
    g.edge("x", "y", weight="W")
    with pytest.raises(unroll.analysis.AnalysisError, match="no layer between its inputs"):
        unroll.analyze(g, seeds=1)


def test_analyze_of_an_mlp_run_reads_per_layer():
    g = mlp(2, 4, depth=5, activation="tanh")
    params = unroll.init_params(g, seed=0)
    x = np.random.default_rng(0).standard_normal((1, 3, 2))
    _, r = _loss_sum(g, params, x)
    p = unroll.analyze(r)[g.name]
    assert p.axis == "depth"
    np.testing.assert_allclose(p.grad_norms["h"][0], _per_layer(g, params, x), rtol=1e-13)


def test_cli_analyzes_depth_beside_time(tmp_path):
    from click.testing import CliRunner
    from unroll.cli.main import main

    args = ["analyze", "mlp:depth=20,activation=sigmoid", "mlp:depth=20,activation=relu"]
    args += ["elman", "--steps", "20", "--seeds", "3", "--json", str(tmp_path / "r.json")]
    args += ["--csv", str(tmp_path / "r.csv"), "--plot", str(tmp_path / "r.png")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "decay/layer or step" in result.output
    assert "a feed-forward net of 20 layers: distance = layers from the loss" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert [m["axis"] for m in report["models"]] == ["depth", "depth", "time"]
    assert report["models"][0]["distance"] == list(range(19, -1, -1))
    sigmoid = report["models"][0]["summary"]["h"]
    assert sigmoid["verdict"] == "vanishing"
    rows = list(csv.reader((tmp_path / "r.csv").read_text().splitlines()))
    layer_rows = [
        r for r in rows if r[:2] == ["mlp:depth=20,activation=sigmoid", "log10_grad_norm"]
    ]
    assert len(layer_rows) == 20 and layer_rows[0][3:5] == ["0", "19"]
    assert (tmp_path / "r.png").stat().st_size > 0


def test_plot_labels_layers_for_depth():
    from unroll.plot import plot_gradient_norms

    rep = unroll.analyze(mlp(2, 8, depth=6, activation="sigmoid"), seeds=2)
    ax = plot_gradient_norms(rep)
    assert ax.get_xlabel() == "layers from the loss"
    assert ax.get_ylabel() == "‖∂L/∂h_l‖ (log scale)"
    assert ax.get_lines()[0].get_label().endswith("per layer")
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), np.arange(6))
