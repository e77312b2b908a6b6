"""Your model, your data: trained torch models with heads, analysed on given sequences."""

import json
import re

import numpy as np
import pytest

import unroll

torch = pytest.importorskip("torch")
nn = torch.nn

from unroll.interop import from_torch, load_state_dict  # noqa: E402
from unroll.interop.torch_modules import TorchInteropError  # noqa: E402


class LSTMRegressor(nn.Module):
    """A 2-layer batch-first LSTM with a Linear head on every step's output."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 5, num_layers=2, batch_first=True)
        self.fc = nn.Linear(5, 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out), out


def _trained(seed=0, steps=30):
    """An LSTMRegressor after a few Adam steps on a toy task (float64)."""
    torch.manual_seed(seed)
    model = LSTMRegressor().double()
    x = torch.randn(4, 7, 3, dtype=torch.float64)
    y = torch.cumsum(x[..., :2], dim=1) * 0.3
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.mse_loss(model(x)[0], y).backward()
        opt.step()
    return model, x, y


def _torch_step_grads(model, x, y, last_only=False):
    """Total dL/dh_t of the top layer at every step, from torch autograd.

    The LSTM runs one step per call so each step's h is a tensor of its own: dL/dh_t is
    the gradient reaching the step's output (through the head) plus the one reaching its
    returned state h_n (through the later steps), both kept with retain_grad.
    """
    model.zero_grad()
    state, outs, finals = None, [], []
    for t in range(x.shape[1]):
        out, state = model.lstm(x[:, t : t + 1], state)
        out.retain_grad()
        state[0].retain_grad()
        outs.append(out)
        finals.append(state[0])
    out = torch.cat(outs, dim=1)
    pred = model.fc(out[:, -1:] if last_only else out)
    nn.functional.mse_loss(pred, y[:, -1:] if last_only else y).backward()
    grads = []
    for o, h in zip(outs, finals, strict=True):
        total = o.grad[:, 0] if o.grad is not None else torch.zeros_like(o[:, 0])
        grads.append(total + (h.grad[-1] if h.grad is not None else 0.0))
    dh = torch.stack(grads, dim=1).detach().numpy()
    return dh, {n: p.grad.numpy() for n, p in model.named_parameters()}


def _relative(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("mode", ["synced", "many-to-one"])
def test_lstm_with_head_matches_torch_autograd(tmp_path, mode):
    model, x, y = _trained()
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    imp = load_state_dict(path, batch_first=True)
    assert imp.graph.output_nodes() == ["head"]
    last_only = mode == "many-to-one"
    dout, grads = _torch_step_grads(model, x, y, last_only)
    u = unroll.unroll(imp.graph, steps=7, mode=mode)
    targets = y.numpy().transpose(1, 0, 2)[-1:] if last_only else y.numpy().transpose(1, 0, 2)
    r = unroll.bptt(u, imp.params, imp.inputs(x), loss="mse", targets=targets)
    ours = np.stack([r.node_grads[("h_l1", t)] for t in range(7)], axis=1)
    assert _relative(ours, dout) < 1e-10
    torch_norms = np.log10(np.linalg.norm(dout, axis=(0, 2)))
    np.testing.assert_allclose(r.log10_grad_norms("h_l1"), torch_norms, rtol=0, atol=1e-10)
    mine = imp.torch_grads(r)
    for name, grad in grads.items():
        ours_name = name.replace("lstm.", "").replace("fc.", "head.")
        assert _relative(mine[ours_name], grad) < 1e-10, name
    prediction = model(x)[0].detach().numpy()
    expected = prediction[:, -1:] if last_only else prediction
    np.testing.assert_allclose(imp.head_outputs(r), expected, rtol=0, atol=1e-12)


def test_from_torch_takes_a_head_module():
    model, _, _ = _trained(steps=0)
    imp = from_torch(model.lstm, head=model.fc)
    assert imp.params["W_head"].shape == (2, 5) and imp.params["b_head"].shape == (2,)
    fits = r"in_features=4\) does not fit the LSTM output of width 5"
    with pytest.raises(TorchInteropError, match=fits):
        from_torch(model.lstm, head=nn.Linear(4, 2))
    with pytest.raises(TorchInteropError, match=r"head must be a torch\.nn\.Linear, got ReLU"):
        from_torch(model.lstm, head=nn.ReLU())


@pytest.mark.parametrize("prefix,head", [("lstm", "fc"), ("lstm.", "fc."), (None, None)])
def test_prefix_and_head_with_or_without_the_dot(tmp_path, prefix, head):
    model, _, _ = _trained(steps=0)
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    imp = load_state_dict(path, prefix=prefix, head=head, batch_first=True)
    np.testing.assert_array_equal(imp.params["W_head"], model.fc.weight.detach().numpy())
    np.testing.assert_array_equal(imp.params["b_head"], model.fc.bias.detach().numpy())


def test_an_ambiguous_or_broken_head_is_refused(tmp_path):
    model, _, _ = _trained(steps=0)
    state = model.state_dict()
    two = tmp_path / "two.pt"
    torch.save({**state, "fc2.weight": torch.zeros(2, 5, dtype=torch.float64)}, two)
    with pytest.raises(TorchInteropError, match=r"two.pt: several submodules could be the head"):
        load_state_dict(two)
    wrong = tmp_path / "wrong.pt"
    torch.save({**state, "fc.weight": torch.zeros(2, 4, dtype=torch.float64)}, wrong)
    with pytest.raises(TorchInteropError, match=r"in_features=4\) does not fit"):
        load_state_dict(wrong)


def test_analyze_uses_the_given_sequences_through_the_head():
    model, x, y = _trained()
    imp = from_torch(model.lstm, head=model.fc)
    dh, _ = _torch_step_grads(model, x, y)
    rep = unroll.analyze(imp, inputs=x, targets=y, loss="mse", mode="synced")
    profile = rep[imp.graph.name]
    assert profile.seeds == [0] and rep.settings["inputs"] == "given"
    expected = np.log10(np.linalg.norm(dh, axis=(0, 2)))
    np.testing.assert_allclose(profile.grad_norms["h_l1"][0], expected, rtol=0, atol=1e-10)


def test_analyze_of_one_run_summarises_it():
    g = unroll.presets.elman(2, 4, bias=False)
    params = unroll.init_params(g, seed=0, scheme="orthogonal", spectral_norm=0.5)
    u = unroll.unroll(g, steps=20, mode="many-to-one")
    xs = {"x": np.zeros((20, 1, 2))}
    r = unroll.bptt(u, params, xs, {("h", 19): np.ones((1, 4))})
    rep = unroll.analyze(r)
    s = rep.summary["elman"]["h"]
    assert s.verdict == "vanishing"
    assert s.factor_per_step == pytest.approx(0.5, rel=1e-9)  # zero input: h stays 0, tanh' = 1
    np.testing.assert_array_equal(rep["elman"].grad_norms["h"][0], r.log10_grad_norms("h"))


def test_imported_weights_refuse_init_options():
    model, _, _ = _trained(steps=0)
    imp = from_torch(model.lstm, head=model.fc)
    with pytest.raises(unroll.analysis.AnalysisError, match=r"forget_bias=1\.0 does not apply"):
        unroll.analyze(imp, init_options={"forget_bias": 1.0})


def test_given_inputs_of_the_wrong_shape_name_the_node_and_the_shape():
    g = unroll.presets.elman(3, 4)
    with pytest.raises(unroll.analysis.AnalysisError, match=r"'x' have shape \(5, 2\), expected"):
        unroll.analyze(g, inputs=np.zeros((5, 2)))
    with pytest.raises(unroll.analysis.AnalysisError, match=r"expected \(B, T, 3\)"):
        unroll.analyze(g, inputs=np.zeros((5, 2, 2)), batch_first=True)


# ---- the command line ------------------------------------------------------------------------


def _cli(*args):
    from click.testing import CliRunner
    from unroll.cli.main import main

    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def saved(tmp_path):
    """A trained LSTM + Linear saved as a state_dict, its inputs and targets as .npy."""
    model, x, y = _trained()
    torch.save(model.state_dict(), tmp_path / "model.pt")
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "y.npy", y.numpy())
    dh, _ = _torch_step_grads(model, x, y)
    return tmp_path, np.log10(np.linalg.norm(dh, axis=(0, 2)))


def test_cli_grads_match_torch_autograd(saved):
    folder, expected = saved
    out = folder / "norms.json"
    result = _cli(
        "grads", folder / "model.pt", "--inputs", folder / "x.npy", "--targets",
        folder / "y.npy", "--batch-first", "--json", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "loss: mse = " in result.output and "‖∂L/∂h_l1‖" in result.output
    report = json.loads(out.read_text())
    assert report["mode"] == "synced" and report["loss"] == "mse"
    np.testing.assert_allclose(report["log10_grad_norms"]["h_l1"], expected, rtol=0, atol=1e-10)


def test_cli_analyze_uses_the_files(saved):
    folder, expected = saved
    out = folder / "report.json"
    result = _cli(
        "analyze", folder / "model.pt", "--inputs", folder / "x.npy", "--targets",
        folder / "y.npy", "--batch-first", "--mode", "synced", "--json", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    per_seed = report["models"][0]["grad_norms"]["h_l1"]["per_seed"]
    np.testing.assert_allclose(per_seed[0], expected, rtol=0, atol=1e-10)


def _drawn_norms(dot: str, node: str) -> dict[int, float]:
    """``{t: ||dL/d node_t||}`` as the grad field of each drawn copy of ``node`` reads."""
    found = re.findall(rf"^\s*{node}_(\d+) \[label=<.*?‖·‖ ([0-9.e+-]+)<", dot, re.M)
    return {int(t): float(v) for t, v in found}


@pytest.mark.parametrize("loss", [["--targets", "y.npy"], ["--loss", "sum"]])
def test_cli_render_draws_the_norms_grads_reports(saved, loss):
    folder, _ = saved
    files = [folder / "model.pt", "--inputs", folder / "x.npy", "--batch-first"]
    files += [folder / a if a.endswith(".npy") else a for a in loss]
    report = folder / "norms.json"
    assert _cli("grads", *files, "--json", report).exit_code == 0
    expected = json.loads(report.read_text())["log10_grad_norms"]["h_l1"]
    out = folder / "grads.dot"
    result = _cli("render", *files, "--grads", "-o", out)
    assert result.exit_code == 0, result.output
    drawn = _drawn_norms(out.read_text(), "h_l1")
    assert sorted(drawn) == list(range(7))  # every step drawn, steps taken from the file
    for t, value in drawn.items():  # the label prints 4 significant digits
        assert value == pytest.approx(10.0 ** expected[t], rel=5e-4), t


def test_probe_on_given_data_is_the_grads_run(saved):
    from unroll.analysis.probes import probe
    from unroll.analysis.stepnorms import step_grad_norms
    from unroll.datafiles import load_data
    from unroll.models import load_model

    folder, expected = saved
    model = load_model(str(folder / "model.pt"))
    data = load_data(model.graph, model.graph, folder / "x.npy", folder / "y.npy", "mse", True)
    _, r = probe(model, steps=3, loss="mse", data=data)
    assert r.unrolled.steps == 7 and r.loss == pytest.approx(step_grad_norms(
        model.graph, model.params, data).result.loss, rel=1e-14)  # fmt: skip
    np.testing.assert_allclose(r.log10_grad_norms("h_l1"), expected, rtol=0, atol=1e-10)


def test_cli_render_checks_the_files_as_grads_does(saved):
    folder, _ = saved
    base = ["render", folder / "model.pt", "--grads", "--batch-first", "-o", folder / "g.dot"]
    np.save(folder / "bad.npy", np.zeros((4, 7, 5)))
    for extra, message in [
        (["--inputs", folder / "bad.npy"], "bad.npy: inputs for 'x' have shape (4, 7, 5)"),
        (["--inputs", folder / "missing.npy"], "missing.npy: no such file"),
        (["--inputs", folder / "x.npy", "--targets", folder / "bad.npy"],
         "bad.npy: targets for 'head' have shape (7, 4, 5) (time first), expected (T, 4, 2)"),
        (["--inputs", folder / "x.npy", "--steps", "3"], "--steps 3: the sequences of --inputs"),
        (["--targets", folder / "y.npy"], "--targets needs --inputs"),
    ]:  # fmt: skip
        result = _cli(*base, *extra)
        assert result.exit_code == 2 and message in result.output, (extra, result.output)
        assert "Traceback" not in result.output
    assert not (folder / "g.dot").exists()
    result = _cli("render", folder / "model.pt", "--inputs", folder / "x.npy")
    assert result.exit_code == 2 and "--inputs: only with --grads or --values" in result.output


def test_cli_reads_csv_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3))
    np.savetxt(tmp_path / "x.csv", x, delimiter=",", header="a,b,c", comments="")
    np.savez(tmp_path / "x.npz", x=x[:, None, :])
    runs = [_cli("grads", "elman:input=3", "--inputs", tmp_path / f, "--csv", "-") for f in
            ("x.csv", "x.npz")]  # fmt: skip
    assert [r.exit_code for r in runs] == [0, 0], runs[0].output
    assert runs[0].stdout == runs[1].stdout
    assert runs[0].stdout.splitlines()[0] == "step,distance,log10_grad_norm_h"
    assert len(runs[0].stdout.splitlines()) == 7


@pytest.mark.parametrize(
    "content,message",
    [
        (np.zeros((7, 2)), r"x.npy: inputs for 'x' have shape \(7, 2\), expected \(B, T, 3\)"),
        (np.zeros((4, 7, 5)), r"x.npy: inputs for 'x' have shape \(4, 7, 5\), expected"),
    ],
)
def test_cli_bad_shapes_are_usage_errors(saved, content, message):
    folder, _ = saved
    np.save(folder / "x.npy", content)
    result = _cli("grads", folder / "model.pt", "--inputs", folder / "x.npy", "--batch-first")
    assert result.exit_code == 2

    assert re.search(message, result.output), result.output
    assert "Traceback" not in result.output


def test_cli_bad_targets_and_files_name_the_file(saved):
    folder, _ = saved
    np.save(folder / "t.npy", np.zeros((4, 7, 3)))
    args = ["grads", folder / "model.pt", "--inputs", folder / "x.npy", "--batch-first"]
    result = _cli(*args, "--targets", folder / "t.npy")
    assert result.exit_code == 2
    assert "t.npy: targets for 'head' have shape (7, 4, 3) (time first), expected (T, 4, 2)" in (
        result.output
    )
    (folder / "junk.npy").write_text("not numpy")
    result = _cli("grads", folder / "model.pt", "--inputs", folder / "junk.npy")
    assert result.exit_code == 2 and "junk.npy: cannot read it as .npy" in result.output
    result = _cli("grads", folder / "model.pt", "--inputs", folder / "missing.npy")
    assert result.exit_code == 2 and "missing.npy: no such file" in result.output


def test_cli_refuses_init_for_a_model_with_weights(saved):
    folder, _ = saved
    result = _cli("analyze", folder / "model.pt", "--init", "orthogonal")
    assert result.exit_code == 2
    assert "--init does not apply to" in result.output and "its own weights" in result.output
    result = _cli("analyze", folder / "model.pt", "--init-option", "forget_bias=1")
    assert result.exit_code == 2 and "--init-option does not apply" in result.output


# ---- decay per loss --------------------------------------------------------------------------


def test_synced_tanh_rnn_is_vanishing_at_the_many_to_one_factor():
    g = unroll.presets.elman(4, 16)
    one = unroll.analyze(g, steps=60, seeds=5, mode="many-to-one")["elman"]
    synced = unroll.analyze(g, steps=60, seeds=5, mode="synced")["elman"]
    assert synced.verdict_from == "per-loss" and one.verdict_from == "total"
    assert synced.summary["h"].verdict == "vanishing"
    # the factor lies within the band of the many-to-one run's per-seed factors
    per_seed = [unroll.analysis.fit_decay(row[::-1]) for row in one.grad_norms["h"]]
    low, high = 10 ** min(per_seed), 10 ** max(per_seed)
    assert low <= synced.summary["h"].factor_per_step <= high
    assert synced.summary["h"].factor_per_step == pytest.approx(
        one.summary["h"].factor_per_step, rel=0.05
    )
    # the total sums every later loss: far flatter than each loss's own decay
    total_slope = unroll.analysis.fit_decay(synced.by_distance("h")["median"])
    assert total_slope > 0.5 * synced.summary["h"].decay_per_step


def test_analyze_of_a_synced_run_reads_each_losss_decay():
    from unroll.analysis import draw_inputs, fit_decay

    g = unroll.presets.elman(4, 16)
    params, xs = unroll.init_params(g, seed=0), draw_inputs(g, 60, seed=0)
    r = unroll.bptt(unroll.unroll(g, 60, mode="synced"), params, xs, loss="sum")
    p = unroll.analyze(r)["elman"]
    assert p.verdict_from == "per-loss" and p.summary["h"].verdict == "vanishing"
    same = unroll.analyze(g, params=params, inputs=xs["x"], loss="sum", mode="synced", seeds=1)
    np.testing.assert_allclose(p.per_loss["h"], same["elman"].per_loss["h"], rtol=1e-12)
    assert p.summary["h"] == same["elman"].summary["h"]
    # the total sums every later loss: it reads far flatter than the verdict's curve
    assert fit_decay(p.by_distance("h")["median"]) > 0.5 * p.summary["h"].decay_per_step
    one = unroll.bptt(unroll.unroll(g, 60, mode="many-to-one"), params, xs, loss="sum")
    assert unroll.analyze(one)["elman"].verdict_from == "total"


def test_analyze_of_a_run_splits_its_cotangents_by_step():
    g = unroll.presets.elman(2, 3)
    u = unroll.unroll(g, steps=5, mode="synced")
    params = unroll.init_params(g, seed=3)
    xs = {"x": np.random.default_rng(2).standard_normal((5, 2, 2))}
    start = {"h": np.full((2, 3), 0.7)}
    cots = {("h", t): np.full((2, 3), 1.0 + t) for t in (1, 3, 4)}
    rows = unroll.analyze(unroll.bptt(u, params, xs, cots, initial_states=start))
    rows = rows["elman"].per_loss["h"]
    assert rows.shape == (3, 5)
    for i, t in enumerate((1, 3, 4)):
        alone = unroll.bptt(u, params, xs, {("h", t): cots[("h", t)]}, initial_states=start)
        np.testing.assert_allclose(rows[i, : t + 1], alone.log10_grad_norms("h")[t::-1], rtol=1e-12)


def test_per_loss_rows_equal_separate_runs():
    g = unroll.presets.elman(2, 3)
    u = unroll.unroll(g, steps=5, mode="synced")
    params = unroll.init_params(g, seed=1)
    xs = {"x": np.random.default_rng(0).standard_normal((5, 2, 2))}
    from unroll.analysis.perloss import per_loss_norms

    cots = {("h", t): np.full((2, 3), t + 1.0) for t in range(5)}
    rows = per_loss_norms(u, params, xs, cots, ["h"], None)["h"]
    for i, t in enumerate(range(5)):
        alone = unroll.bptt(u, params, xs, {("h", t): cots[("h", t)]}).log10_grad_norms("h")
        np.testing.assert_allclose(rows[i, : t + 1], alone[: t + 1][::-1], rtol=1e-12)
        assert np.isnan(rows[i, t + 1 :]).all()


# ---- display ---------------------------------------------------------------------------------


def test_report_shows_as_an_html_table():
    rep = unroll.analyze(unroll.presets.elman(2, 4), steps=20, seeds=2, mode="synced")
    page = rep._repr_html_()
    assert page.startswith("<table><thead><tr><th>model</th><th>state</th>")
    verdict = rep.summary["elman"]["h"].verdict
    assert "<td>elman</td><td>h</td>" in page and f"<td>{verdict}</td><td>per-loss</td>" in page
    assert page.count("<tr>") == 2  # the header and one state


def test_print_graph_shows_one_equation_per_line():
    text = str(unroll.presets.lstm(3, 4))
    lines = text.splitlines()
    assert lines[0] == "lstm: input x (3); output h"
    assert "f[t]" in text and "= sigmoid(W_if x[t] + W_hf h[t−1] + b_if + b_hf)" in text
    assert len(lines) == 1 + len(unroll.presets.lstm(3, 4).nodes)
    assert "Graph(" not in text


def test_per_loss_rows_in_chunks_equal_one_pass():
    g = unroll.presets.elman(2, 3)
    u = unroll.unroll(g, steps=7, mode="synced")
    params = unroll.init_params(g, seed=2)
    xs = {"x": np.random.default_rng(1).standard_normal((7, 1, 2))}
    from unroll.analysis.perloss import per_loss_norms

    cots = {("h", t): np.ones((1, 3)) for t in range(7)}
    whole = per_loss_norms(u, params, xs, cots, ["h"], None)["h"]
    chunked = per_loss_norms(u, params, xs, cots, ["h"], None, per_pass=3)["h"]
    np.testing.assert_allclose(chunked, whole, rtol=1e-13)


def test_keras_models_read_batch_first_sequences():
    pytest.importorskip("keras")
    from unroll.interop import from_keras

    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((None, 3)), keras.layers.GRU(4, return_sequences=True)])
    imp = from_keras(model)
    x = np.random.default_rng(0).standard_normal((2, 6, 3))  # Keras: (B, T, n)
    rep = unroll.analyze(imp, inputs=x, mode="synced", loss="sum")
    assert (rep.steps, rep.settings["batch"]) == (6, 2)
    u = unroll.unroll(imp.graph, steps=6, mode="synced")
    cots = {inst: np.ones((2, 4)) for inst in u.loss_instances}
    run = unroll.bptt(u, imp.params, imp.inputs(x), cots)
    np.testing.assert_array_equal(rep[imp.graph.name].grad_norms["h"][0], run.log10_grad_norms("h"))


def test_a_model_spec_reads_batch_first_and_the_head_as_text(tmp_path):
    from unroll.models import load_model

    model, _, _ = _trained(steps=0)
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    for text, expected in (("true", True), ("false", False)):
        loaded = load_state_dict(path, batch_first=text)
        assert loaded.batch_first is expected
    with pytest.raises(TorchInteropError, match=r"batch_first='maybe' is not true or false"):
        load_state_dict(path, batch_first="maybe")
    assert load_model(f"{path}:head=").graph.output_nodes() == ["h_l1"]
    assert load_model(f"{path}:prefix=lstm,head=fc").graph.output_nodes() == ["head"]
