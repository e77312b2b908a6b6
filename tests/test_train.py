"""Training: optimizers by hand and against torch, clipping, readouts, the loop, the CLI."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from unroll.cli.main import main

import unroll
from unroll import presets
from unroll.analysis import global_norm
from unroll.gallery.plots import adding_problem_runs
from unroll.models import load_model_for_task
from unroll.plot import plot_losses, plot_profiles, training_figure
from unroll.tasks import adding_problem, copy_memory
from unroll.training import (
    OPTIMIZERS,
    SGD,
    Adam,
    TrainingError,
    make_optimizer,
    train,
    with_readout,
)

# ---- optimizers -----------------------------------------------------------------------------


def test_sgd_momentum_two_steps_by_hand():
    p = {"w": np.array([1.0, -2.0])}
    opt = SGD(lr=0.1, momentum=0.9)
    opt.step(p, {"w": np.array([0.5, 1.0])})
    # v1 = g1 = (0.5, 1); p1 = p0 - 0.1 v1 = (0.95, -2.1)
    np.testing.assert_allclose(p["w"], [0.95, -2.1], rtol=1e-15)
    opt.step(p, {"w": np.array([-1.0, 2.0])})
    # v2 = 0.9 v1 + g2 = (-0.55, 2.9); p2 = p1 - 0.1 v2 = (1.005, -2.39)
    np.testing.assert_allclose(p["w"], [1.005, -2.39], rtol=1e-15)


def test_adam_two_steps_by_hand():
    p = {"w": np.array([1.0])}
    opt = Adam(lr=0.1, momentum=0.9, beta2=0.999, eps=1e-8)
    opt.step(p, {"w": np.array([2.0])})
    # m1 = 0.2, v1 = 0.004; m^ = 2, v^ = 4: p1 = 1 - 0.1 * 2 / (2 + 1e-8)
    p1 = 1.0 - 0.1 * 2.0 / (2.0 + 1e-8)
    np.testing.assert_allclose(p["w"], [p1], rtol=1e-15)
    opt.step(p, {"w": np.array([-1.0])})
    m2, v2 = 0.9 * 0.2 + 0.1 * -1.0, 0.999 * 0.004 + 0.001 * 1.0  # 0.08, 0.004996
    m_hat, v_hat = m2 / (1 - 0.9**2), v2 / (1 - 0.999**2)
    np.testing.assert_allclose(p["w"], [p1 - 0.1 * m_hat / (math.sqrt(v_hat) + 1e-8)], rtol=1e-14)
    assert p["w"][0] == pytest.approx(0.873366, abs=1e-6)  # by hand: 0.9 - 0.0266340


@pytest.mark.torch
@pytest.mark.parametrize(("name", "cls"), [("sgd", "SGD"), ("adam", "Adam")])
def test_optimizers_match_torch_over_several_steps(name, cls):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    start = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) for _ in range(6)]
    ours = {"w": start.copy()}
    opt = make_optimizer(name, lr=0.05, momentum=0.8)
    theirs = torch.nn.Parameter(torch.tensor(start))
    options = {"momentum": 0.8} if name == "sgd" else {"betas": (0.8, 0.999)}
    reference = getattr(torch.optim, cls)([theirs], lr=0.05, **options)
    for g in grads:
        opt.step(ours, {"w": g})
        theirs.grad = torch.tensor(g)
        reference.step()
    np.testing.assert_allclose(ours["w"], theirs.detach().numpy(), rtol=1e-13, atol=1e-15)


def test_optimizer_registry_and_errors():
    assert sorted(OPTIMIZERS) == ["adam", "sgd"]
    assert make_optimizer("sgd").lr == 0.01 and make_optimizer("adam").lr == 1e-3
    with pytest.raises(TrainingError, match="unknown optimizer 'rmsprop'"):
        make_optimizer("rmsprop")
    with pytest.raises(TrainingError, match="lr > 0"):
        make_optimizer("sgd", lr=0.0)
    with pytest.raises(TrainingError, match="betas"):
        make_optimizer("adam", momentum=1.0)


# ---- readout and model resolution -----------------------------------------------------------


def test_with_readout_adds_a_linear_layer_from_the_top_state():
    g = presets.lstm(2, 5)
    wrapped = with_readout(g, 3)
    assert "y" not in g.nodes  # the original is untouched
    y = wrapped.nodes["y"]
    assert (y.kind, y.activation, y.biases, y.size) == ("layer", "identity", ("b_y",), 3)
    assert [(e.source, e.weight, e.delay) for e in wrapped.in_edges("y")] == [("h", "W_hy", 0)]
    assert wrapped.output_nodes() == ["y"]
    assert wrapped.params()["W_hy"] == (3, 5)


def test_with_readout_keeps_a_fitting_y_and_renames_around_a_mismatched_one():
    fits = presets.elman(2, 4, output_size=1)
    assert with_readout(fits, 1) is fits
    wrapped = with_readout(presets.elman(2, 4, output_size=3), 1)
    assert wrapped.output_nodes() == ["y2"]
    assert [(e.source, e.weight) for e in wrapped.in_edges("y2")] == [("y", "W_hy2")]
    assert wrapped.nodes["y2"].biases == ("b_y2",)
    two = presets.elman(2, 4)
    two.set_outputs("h", "x")
    with pytest.raises(TrainingError, match="2 output nodes"):
        with_readout(two, 1)


def test_load_model_for_task_sets_the_input_size_of_presets_only():
    assert load_model_for_task("lstm:hidden=4", adding_problem(5)).graph.nodes["x"].size == 2
    assert load_model_for_task("elman", copy_memory(3)).graph.nodes["x"].size == 10
    from unroll.models import ModelSpecError

    with pytest.raises(
        ModelSpecError, match="feeds one input of size 2, the model has x of size 3"
    ):
        load_model_for_task("lstm:input=3", adding_problem(5))
    with pytest.raises(ModelSpecError, match="feeds one input of size 2"):
        load_model_for_task(presets.gru(4, 2), adding_problem(5))


# ---- the training loop ----------------------------------------------------------------------


def test_one_sgd_iteration_is_a_step_against_the_bptt_gradient_of_a_fresh_batch():
    g, task = presets.elman(2, 3), adding_problem(6, 4, seed=1)
    h = train(g, task, 1, "sgd", lr=0.1, momentum=0.0, batch=5, seed=3, record_every=1)
    model = with_readout(g, 1)
    start = unroll.init_params(model, 3)
    batch = task.sample(5, np.random.default_rng([3, 1]))
    r = unroll.bptt(
        unroll.unroll(model, 6, "many-to-one"),
        start,
        {"x": batch.inputs},
        loss="mse",
        targets=batch.targets,
    )
    assert h.losses[0] == r.loss
    assert h.grad_norms[0] == pytest.approx(global_norm(r.param_grads), rel=1e-14)
    for name, value in start.items():
        np.testing.assert_allclose(h.params[name], value - 0.1 * r.param_grads[name], rtol=1e-13)


def test_clipping_caps_the_step_at_the_threshold():
    g, task = presets.elman(2, 3), adding_problem(6, 4, seed=1)
    h = train(g, task, 1, "sgd", lr=0.5, momentum=0.0, clip=1e-3, seed=0)
    start = unroll.init_params(with_readout(g, 1), 0)
    assert h.grad_norms[0] > 1e-3  # the gradient was longer than the threshold ...
    step = global_norm({k: h.params[k] - start[k] for k in start})
    assert step == pytest.approx(0.5 * 1e-3, rel=1e-12)  # ... so the step is lr * clip
    loose = train(g, task, 1, "sgd", lr=0.5, momentum=0.0, clip=1e6, seed=0)
    plain = train(g, task, 1, "sgd", lr=0.5, momentum=0.0, seed=0)
    for k in start:
        np.testing.assert_array_equal(loose.params[k], plain.params[k])


def test_a_tiny_lstm_learns_the_short_adding_problem():
    """Deterministic: fixed seeds; the loss ends far below the memoryless baseline."""
    task = adding_problem(10, 64, seed=100)
    h = train(
        presets.lstm(2, 8), task, 400, lr=0.02, seed=0, record_every=100, init={"forget_bias": 1.0}
    )
    assert h.probe_losses[0] > task.baseline / 2
    assert h.probe_losses[400] < task.baseline / 4
    assert h.final_loss(50) < task.baseline / 4


def test_runs_are_seeded_and_record_what_they_promise():
    g, task = presets.gru(2, 3), adding_problem(5, 8, seed=0)
    a = train(g, task, 7, seed=4, record_every=3)
    b = train(g, task, 7, seed=4, record_every=3)
    c = train(g, task, 7, seed=5, record_every=3)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert a.to_json() == b.to_json()
    assert not np.array_equal(a.losses, c.losses)
    assert sorted(a.profiles) == sorted(a.probe_losses) == [0, 3, 6, 7]
    assert all(p.shape == (5,) and np.isfinite(p).all() for p in a.profiles.values())
    assert a.losses.shape == a.grad_norms.shape == (7,)
    assert a.profile_node == "h" and a.settings["lr"] == 1e-3
    assert a.reach(7) == a.profiles[7][0] - a.profiles[7][4]
    assert "final/baseline" in a.summary() and f"10^{a.reach(7):.1f} at iteration 7" in a.summary()
    calls = []
    train(g, task, 3, progress=lambda done, loss: calls.append((done, loss)))
    assert [d for d, _ in calls] == [1, 2, 3] and all(math.isfinite(v) for _, v in calls)


def test_profile_is_the_bptt_gradient_on_the_probe_batch():
    g, task = presets.lstm(2, 3), adding_problem(6, 8, seed=2)
    h = train(g, task, 2, seed=0, record_every=1)
    r = unroll.bptt(
        task.unroll(h.graph), h.params, {"x": task.inputs}, loss="mse", targets=task.targets
    )
    np.testing.assert_allclose(h.profiles[2], r.log10_grad_norms("h"), rtol=1e-12)
    assert h.probe_losses[2] == pytest.approx(r.loss, rel=1e-14)


def test_copy_profile_is_the_gradient_of_the_recall_steps_alone():
    g, task = presets.elman(10, 4), copy_memory(3, 5, seed=0)
    h = train(g, task, 2, seed=0, record_every=2)
    u = task.unroll(h.graph)
    values = unroll.bptt(u, h.params, {"x": task.inputs}).values
    cotangents = {}
    for t in range(task.steps - 10, task.steps):  # softmax minus one-hot, / (B * steps)
        y = values[("y", t)]
        p = np.exp(y - y.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(5), task.targets[t]] -= 1.0
        cotangents[("y", t)] = p / (5 * task.steps)
    r = unroll.bptt(u, h.params, {"x": task.inputs}, cotangents)
    np.testing.assert_allclose(h.profiles[2], r.log10_grad_norms("h"), rtol=1e-12)
    full = unroll.bptt(u, h.params, {"x": task.inputs}, loss="xent", targets=task.targets)
    assert h.probe_losses[2] == pytest.approx(full.loss, rel=1e-14)
    assert not np.allclose(full.log10_grad_norms("h"), h.profiles[2])


def test_truncated_bptt_cuts_the_profile_off():
    g, task = presets.elman(2, 3), adding_problem(8, 4, seed=0)
    h = train(g, task, 2, truncate=(8, 3), record_every=1)
    # k2 = 3 steps back from the loss at step 7: nothing reaches steps 0..3
    assert np.isneginf(h.profiles[0][:4]).all() and np.isfinite(h.profiles[0][5:]).all()
    assert h.settings["truncate"] == [8, 3]


def test_float32_and_given_params():
    g, task = presets.elman(2, 3), adding_problem(5, 4)
    h = train(g, task, 2, dtype=np.float32)
    assert all(v.dtype == np.float32 for v in h.params.values())
    start = {"W_hh": np.zeros((3, 3))}
    h = train(g, task, 1, "sgd", lr=1e-12, params=start)
    np.testing.assert_allclose(h.params["W_hh"], 0.0, atol=1e-9)
    with pytest.raises(TrainingError, match="unknown parameter 'W_xx'"):
        train(g, task, 1, params={"W_xx": np.zeros(1)})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"iterations": 0}, "iterations must be a positive integer"),
        ({"clip": 0.0}, "clip must be a positive gradient norm"),
        ({"profile_node": "q"}, "profile_node 'q' is not a node"),
        ({"optimizer": "lbfgs"}, "unknown optimizer"),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(TrainingError, match=message):
        train(presets.elman(2, 3), adding_problem(5, 4), **kwargs)


def test_wrong_input_size_and_divergence_are_named():
    with pytest.raises(TrainingError, match="one input of size 2 for the adding task, has x:3"):
        train(presets.elman(3, 2), adding_problem(5, 4), 1)
    with pytest.raises(TrainingError, match=r"at iteration \d+: lower the learning rate"):
        train(presets.elman(2, 3, activation="relu"), adding_problem(5, 4), 50, "sgd", lr=1e30)


def test_history_json():
    h = train(presets.elman(2, 3), adding_problem(5, 4), 4, record_every=2, clip=1.0)
    data = json.loads(h.to_json())
    assert data["schema"] == "unroll.training.history/1"
    assert data["task"] == {
        "name": "adding",
        "length": 5,
        "steps": 5,
        "loss": "mse",
        "mode": "many-to-one",
        "baseline": 1 / 6,
        "probe_batch": 4,
        "probe_seed": 0,
    }
    assert data["settings"]["clip"] == 1.0 and data["settings"]["optimizer"] == "adam"
    assert data["losses"] == h.losses.tolist()
    assert sorted(data["profiles"]) == ["0", "2", "4"] and "params" not in data
    with_params = json.loads(h.to_json(include_params=True))
    assert with_params["params"]["W_hy"] == h.params["W_hy"].tolist()


# ---- figures --------------------------------------------------------------------------------


def test_figures_draw_losses_baseline_and_profiles(tmp_path):
    task = adding_problem(6, 4)
    runs = {
        "a": train(presets.elman(2, 3), task, 6, record_every=2),
        "b": train(presets.lstm(2, 3), task, 6, record_every=2),
    }
    ax = plot_losses(runs)
    assert [line.get_ydata()[0] for line in ax.get_lines()][-1] == pytest.approx(1 / 6)
    assert len(ax.get_lines()) == 2 * 2 + 1  # raw and running mean per run, the baseline
    ax = plot_profiles(runs, count=2)
    assert len(ax.get_lines()) == 2 * 2
    np.testing.assert_allclose(ax.get_lines()[-1].get_ydata()[-1], 0.0)  # relative to T-1
    figure = training_figure(runs)
    assert len(figure.axes) == 2


def test_gallery_figure_trains_both_nets_and_draws_both_panels():
    runs, figure = adding_problem_runs(length=6, hidden=3, iterations=4, batch=4, probe_batch=8)
    assert len(figure.axes) == 2 and "Adding problem, T = 6" in figure.texts[0].get_text()
    assert list(runs) == ["tanh RNN", "LSTM"]
    assert runs["LSTM"].graph.nodes["c"].size == 3 and len(runs["LSTM"].losses) == 4


# ---- the command line -----------------------------------------------------------------------


def invoke(*args):
    """``unroll train ARGS`` through the command group, which reports errors."""
    return CliRunner().invoke(main, ["train", *(str(a) for a in args)])


def test_cli_trains_and_writes_the_plot_and_the_history(tmp_path):
    plot, history = tmp_path / "train.png", tmp_path / "history.json"
    result = invoke(
        "lstm:hidden=4",
        "--task",
        "adding",
        "--length",
        6,
        "--iterations",
        5,
        "--batch",
        4,
        "--probe-batch",
        8,
        "--clip",
        1,
        "--seed",
        2,
        "--plot",
        plot,
        "--json",
        history,
    )
    assert result.exit_code == 0, result.output
    assert "lstm:hidden=4 on adding (T=6, 6 steps): 5 iterations, batch 4, adam" in result.stdout
    assert "memoryless baseline 0.1667" in result.stdout
    assert plot.read_bytes()[:4] == b"\x89PNG"
    data = json.loads(history.read_text())
    assert len(data["losses"]) == 5 and data["settings"]["seed"] == 2
    assert data["label"] == "lstm:hidden=4" and data["settings"]["clip"] == 1.0
    assert result.stderr == ""  # no progress bar when stderr is not a terminal


def test_cli_json_to_stdout_and_copy_task_options():
    result = invoke(
        "gru:hidden=3",
        "--task",
        "copy",
        "-T",
        2,
        "--iterations",
        2,
        "--optimizer",
        "sgd",
        "--lr",
        0.1,
        "--truncate",
        "5,5",
        "--init",
        "orthogonal",
        "--init-option",
        "spectral_radius=0.9",
        "--json",
        "-",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["task"]["name"] == "copy" and data["settings"]["truncate"] == [5, 5]
    assert data["settings"]["init"] == {"scheme": "orthogonal", "spectral_radius": 0.9}
    assert "gru:hidden=3 on copy" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lstn"], "unknown preset 'lstn'"),
        (["lstm:input=3"], "feeds one input of size 2"),
        (["lstm", "--task", "add"], "'add' is not one of"),
        (["lstm", "--truncate", "5"], "is not K1,K2"),
        (["lstm", "--truncate", "0,3"], "must be positive"),
        (["lstm", "--init-option", "radius=2"], "unknown init option 'radius'"),
        (["lstm", "--plot", "x.gif"], "unknown suffix"),
        (["lstm", "--iterations", "0"], "0 is not in the range"),
    ],
)
def test_cli_usage_errors_exit_2(args, message):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_cli_run_time_errors_exit_1_with_one_line(tmp_path):
    result = invoke(
        "elman:activation=relu",
        "--optimizer",
        "sgd",
        "--lr",
        "1e30",
        "--iterations",
        50,
        "--length",
        5,
        "--batch",
        4,
        "--probe-batch",
        4,
    )
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert "lower the learning rate or clip the gradient" in result.stderr
    missing = invoke(
        "elman", "--iterations", 1, "--length", 3, "--json", tmp_path / "no" / "h.json"
    )
    assert missing.exit_code == 1 and "No such file or directory" in missing.stderr


@pytest.mark.slow
def test_gallery_claim_lstm_learns_the_adding_problem_and_the_tanh_rnn_does_not(tmp_path):
    runs, _ = adding_problem_runs(length=50, iterations=1000)
    lstm, rnn = runs["LSTM"], runs["tanh RNN"]
    assert lstm.final_loss() < lstm.baseline / 10
    assert rnn.final_loss() > rnn.baseline / 2
    # after training the LSTM's gradient reaches the first half, the tanh RNN's does not
    reach = {k: h.profiles[1000][0] - h.profiles[1000][-1] for k, h in runs.items()}
    assert reach["LSTM"] > -3 and reach["tanh RNN"] < reach["LSTM"] - 5
