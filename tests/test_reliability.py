"""Reliability: every row of docs/reliability.md, bad input to numeric faults to limits.

Each test answers one row of the catalogue: what a user feeds the tool, what they see
(one line, naming the node, edge, step, file or line) and the exit code of the command
line (0 done, 2 for anything wrong with what the user gave, 1 for a failure while running).
"""

import json
import math
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from unroll.cli.main import main

import unroll
from unroll import presets
from unroll.analysis import AnalysisError, analyze, draw_inputs
from unroll.errors import GraphError, InputError, LimitError, UnrollError, UnrollWarning
from unroll.files import ModelFileError, atomic_write
from unroll.unrolled import unroll as unroll_graph

LOG10_3 = math.log10(3.0)


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def error_line(result, code: int) -> str:
    """The run exited with ``code``; its last stderr line is the one ``Error:`` line."""
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if line.startswith("Error")] == [lines[-1]]
    return lines[-1]


def write(tmp_path, text: str, name: str = "model.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """\
name = "m"
edges = ["x -> h : W_ih", "h -> h @ t-1 : W_hh"]

[nodes]
x = { kind = "input", size = 2 }
h = { kind = "layer", size = 3, activation = "tanh" }
"""


# ---- model files ---------------------------------------------------------------------------

BAD_FILES = [
    # (edit of GOOD, words of the message, line named)
    (("[nodes]", "[nodes"), "invalid TOML", 4),
    (('name = "m"', 'nmae = "m"'), "unknown top-level key 'nmae' (did you mean 'name'?)", 1),
    (('"layer"', '"lyaer"'), "node 'h': unknown node kind 'lyaer' (did you mean 'layer'?)", 6),
    (('"tanh"', '"tahn"'), "node 'h': unknown activation 'tahn' (did you mean 'tanh'?)", 6),
    (("activation =", "activaton ="), "node 'h': unknown field 'activaton'", 6),
    (('"x -> h', '"x -> hh'), "edge \"x -> hh\": unknown node 'hh' (did you mean 'h'?)", 2),
    (('"x -> h : W_ih"', '"x => h"'), 'is not of the form "SRC -> DST [@ t-k] [: WEIGHT]"', 2),
    (("size = 3", "size = 0"), "node 'h': size must be a positive integer, got 0", 6),
    (("size = 3", "size = 3.5"), "node 'h': size must be a positive integer, got 3.5", 6),
    (("size = 3", "size = 10000000"), "node 'h': size 10,000,000 is more than the 1,000,000", 6),
    (("x -> h : W_ih", "x -> h"), 'edge "x -> h": identity edge needs equal sizes, got 2 -> 3', 2),
    (("h @ t-1", "h @ t-0"), "algebraic loop: h -> h has total delay 0", 2),
    ((': W_hh"', ': W_ih"'), "weight 'W_ih': edge h -> h @ t-1 needs 3x3, but edge x -> h", 2),
    (('name = "m"', 'name = "m"\noutputs = ["x"]'), "output 'x' is an input node", 2),
]


@pytest.mark.parametrize(("edit", "message", "line"), BAD_FILES)
def test_bad_model_files_name_the_line_and_exit_2(tmp_path, edit, message, line):
    text = GOOD.replace(*edit)
    assert text != GOOD
    path = write(tmp_path, text)
    with pytest.raises(ModelFileError) as caught:
        unroll.files.load_toml(path)
    assert message in str(caught.value) and caught.value.line == line
    shown = error_line(cli("export", path), 2)
    assert shown.startswith(f"Error: {path}") and message in shown


def test_a_file_with_no_nodes_or_only_inputs(tmp_path):
    empty = write(tmp_path, 'name = "e"\n', "empty.toml")
    assert "no nodes: declare them in a [nodes] table" in error_line(cli("export", empty), 2)
    inputs = write(tmp_path, '[nodes]\nx = { kind = "input", size = 2 }\n', "inputs.toml")
    shown = error_line(cli("analyze", inputs), 2)
    assert "graph 'inputs' has only input nodes: there is nothing to compute" in shown
    with pytest.raises(GraphError, match="graph 'e' has no nodes"):
        unroll.Graph("e").validate()


def test_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    assert "not UTF-8 text" in error_line(cli("export", path), 2)


def test_non_finite_and_malformed_params_in_a_file(tmp_path):
    nan = GOOD + "\n[params]\nW_ih = [[1.0, 2.0], [0.0, nan], [1.0, 1.0]]\n"
    shown = error_line(cli("export", write(tmp_path, nan)), 2)
    assert "line 9: params: 'W_ih' has a non-finite value at index [1, 1] (nan)" in shown
    shape = GOOD + "\n[params]\nW_ih = [[1.0]]\n"
    assert "params: 'W_ih' has shape 1x1, the graph needs 3x2" in error_line(
        cli("export", write(tmp_path, shape)), 2
    )
    text = GOOD + '\n[params]\nW_ih = [["a"]]\n'
    assert "must be a (nested) list of numbers" in error_line(
        cli("export", write(tmp_path, text)), 2
    )


def test_edge_tables_with_a_delay_that_is_not_an_integer(tmp_path):
    text = GOOD.replace('edges = ["x -> h : W_ih", "h -> h @ t-1 : W_hh"]\n', "")
    text += '\n[[edges]]\nfrom = "x"\nto = "h"\nweight = "W_ih"\n'
    text += '\n[[edges]]\nfrom = "h"\nto = "hh"\ndelay = 1.5\n'
    shown = error_line(cli("export", write(tmp_path, text)), 2)
    assert "edge h -> hh: delay must be an integer, got 1.5" in shown  # not a crash


# ---- the MODEL argument and options (usage errors: exit 2) -----------------------------------

USAGE = [
    (["analyze", "lstn"], "unknown preset 'lstn' (did you mean 'lstm'?)"),
    (["render", "elman:hiden=3"], "unknown option 'hiden' (did you mean 'hidden'?)"),
    (["render", "elman:hidden=abc"], "option hidden_size='abc': expected an integer"),
    (["render", "elman:activation=tahn"], "unknown activation 'tahn' (did you mean 'tanh'?)"),
    (["export", "missing.toml"], "no such model file: 'missing.toml'"),
    (["analyze", "missing.pt"], "no such state_dict file: 'missing.pt'"),
    (["analyze", "os:getcwd"], "returned a value of type str, not an unroll.Graph"),
    (["analyze", "elman", "--steps", "0"], "0 is not in the range x>=1"),
    (["analyze", "elman", "--steps", "-3"], "-3 is not in the range x>=1"),
    (["analyze", "elman", "--mode", "sideways"], "'sideways' is not one of"),
    (["analyze", "elman", "--bogus"], "No such option '--bogus'"),
    (["sweep", "elman", "--vary", "hiden=2,3"], "cannot vary 'hiden' (did you mean 'hidden'?)"),
    (["render", "elman", "-o", "x.xml"], "unknown suffix '.xml'"),
]


@pytest.mark.parametrize(("args", "message"), USAGE)
def test_usage_errors_exit_2_with_one_error_line(args, message):
    assert message in error_line(cli(*args), 2)


def test_unknown_or_malformed_init_options_exit_2():
    shown = error_line(cli("analyze", "elman", "--init-option", "spectral_radus=0.9"), 2)
    assert "unknown init option 'spectral_radus' (did you mean 'spectral_radius'?)" in shown
    shown = error_line(cli("analyze", "elman", "--init-option", "spectral_radius=big"), 2)
    assert "init option spectral_radius='big' must be a number" in shown


def test_zero_or_negative_steps_in_the_library():
    g = presets.elman()
    for steps in (0, -3, 2.5, True):
        with pytest.raises(InputError, match="steps must be a positive integer"):
            unroll_graph(g, steps)


# ---- arrays fed to bptt ----------------------------------------------------------------------


@pytest.fixture
def elman_case():
    g = presets.elman(2, 3)
    u = unroll_graph(g, 5)
    return u, unroll.init_params(g, seed=0), np.zeros((5, 1, 2)), {("h", 4): np.ones((1, 3))}


def test_non_finite_input_names_step_batch_and_unit(elman_case):
    u, p, xs, cots = elman_case
    xs = xs.copy()
    xs[3, 0, 1] = np.nan
    with pytest.raises(InputError) as caught:
        unroll.bptt(u, p, {"x": xs}, cots)
    assert str(caught.value) == "input 'x' has a non-finite value at step 3, batch 0, unit 1 (nan)"


def test_non_finite_input_of_a_mode_that_reads_fewer_steps_names_the_step():
    g = presets.elman(2, 3)
    u = unroll_graph(g, 4, mode="many-to-many", encoder_steps=3)
    xs = np.zeros((3, 2, 2))
    xs[2, 1, 0] = -np.inf
    with pytest.raises(InputError, match=r"at step 2, batch 1, unit 0 \(-inf\)"):
        unroll.bptt(u, unroll.init_params(g), {"x": xs})


def test_non_finite_parameter_names_the_first_bad_index(elman_case):
    u, p, xs, cots = elman_case
    bad = dict(p, W_hh=p["W_hh"].copy())
    bad["W_hh"][1, 2] = np.inf
    with pytest.raises(InputError) as caught:
        unroll.bptt(u, bad, {"x": xs}, cots)
    assert str(caught.value) == "parameter 'W_hh' has a non-finite value at index [1, 2] (inf)"


def test_non_finite_cotangent_and_initial_state(elman_case):
    u, p, xs, cots = elman_case
    with pytest.raises(InputError, match=r"cotangent for \('h', 4\) has non-finite values"):
        unroll.bptt(u, p, {"x": xs}, {("h", 4): np.array([[0.0, np.nan, 0.0]])})
    with pytest.raises(InputError, match=r"initial state 'h' has non-finite .* batch 0, unit 2"):
        unroll.bptt(u, p, {"x": xs}, cots, initial_states={"h": np.array([0.0, 0.0, np.inf])})


def test_float32_overflow_of_a_parameter_is_named(elman_case):
    u, p, xs, cots = elman_case
    big = dict(p, b_ih=np.full(3, 1e300))
    with pytest.raises(InputError, match=r"parameter 'b_ih' has a non-finite value at index \[0\]"):
        unroll.bptt(u, big, {"x": xs}, cots, dtype=np.float32)


@pytest.mark.parametrize(
    ("xs", "message"),
    [
        (np.zeros((5, 1, 3)), r"input 'x' has shape \(5, 1, 3\), expected \(5, B, 2\)"),
        (np.zeros((5, 2)), r"input 'x' has shape \(5, 2\), expected \(5, B, 2\)"),
        (np.zeros((5, 1, 2), dtype=complex), "input 'x' has dtype complex128, expected real"),
        (np.zeros((5, 1, 2), dtype=bool), "input 'x' has dtype bool, expected real numbers"),
        ([[[1.0, 2.0]], [[1.0]]], "input 'x' is not a rectangular array of numbers"),
        ("abc", "input 'x' has dtype <U3, expected real numbers"),
        (np.zeros((5, 0, 2)), "input 'x' has batch 0: give at least one sequence"),
    ],
)
def test_inputs_of_the_wrong_shape_or_dtype(elman_case, xs, message):
    u, p, _, _ = elman_case
    with pytest.raises(InputError, match=message):
        unroll.bptt(u, p, {"x": xs})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: {**p, "W_hh": np.zeros((3, 3), complex)}, "'W_hh' has dtype complex128"),
        (lambda p: {**p, "W_hh": "abc"}, "parameter 'W_hh' has dtype <U3, expected real"),
        (lambda p: {**p, "W_hh": np.zeros((2, 3))}, r"'W_hh' has shape \(2, 3\), the graph"),
        (lambda p: {k: v for k, v in p.items() if k != "W_hh"}, "missing parameter 'W_hh'"),
        (lambda p: {**p, "W_xx": np.zeros(1)}, "unknown parameter 'W_xx'"),
        (lambda p: [1, 2], "params must be a mapping"),
    ],
)
def test_parameters_of_the_wrong_shape_or_dtype(elman_case, change, message):
    u, p, xs, cots = elman_case
    with pytest.raises(InputError, match=message):
        unroll.bptt(u, change(p), {"x": xs}, cots)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"truncate": 5}, "truncate=.k1, k2. takes two positive integers, got 5"),
        ({"truncate": (0, 2)}, "takes two positive integers"),
        ({"loss": ["sum"]}, "loss must be the name of a loss"),
        ({"loss": "mse", "targets": 3.0}, "targets must be an array with one row per loss step"),
        ({"dtype": np.int64}, "dtype must be a float type"),
        ({"contributions": np.ones(2)}, "contributions must be True or False"),
        ({"max_memory": -1}, "max_memory must be a number of bytes"),
        ({"cotangents": {3: np.ones(3)}}, r"cotangent keys are node instances \(name, t\)"),
        (
            {"cotangents": {"h": np.ones(3)}},
            r"cotangent for .h. has shape \(3\), expected \(5, 1, 3\)",
        ),
    ],
)
def test_arguments_of_the_wrong_type(elman_case, options, message):
    u, p, xs, _ = elman_case
    with pytest.raises(InputError, match=message):
        unroll.bptt(u, p, {"x": xs}, **options)


def test_messages_quoting_an_array_stay_on_one_line(elman_case):
    u, p, xs, _ = elman_case
    with pytest.raises(InputError) as caught:
        unroll.bptt(u, p, {"x": xs}, max_memory=np.ones((3, 3)))
    assert "\n" not in str(caught.value)


# ---- graph structure -------------------------------------------------------------------------


def long_delay_graph() -> unroll.Graph:
    g = unroll.Graph("lag")
    g.input("x", 1)
    g.layer("h", 2, activation="tanh")
    g.edge("x", "h", weight="W")
    g.edge("h", "h", delay=5, weight="U")
    return g


def test_a_delay_longer_than_the_sequence_reads_only_initial_states():
    g = long_delay_graph()
    with pytest.warns(UnrollWarning, match=r"edge h -> h @ t-5 reaches 5 steps, more than the 3"):
        u = unroll_graph(g, 3)
    assert u.boundary == [("h", -5), ("h", -4), ("h", -3)]
    p = {"W": np.array([[0.5], [-1.0]]), "U": np.array([[0.3, 0.1], [0.2, -0.4]])}
    xs = np.array([[[1.0]], [[2.0]], [[-1.0]]])
    start = np.array([0.7, -0.2])
    r = unroll.bptt(u, p, {"x": xs}, initial_states={"h": start})
    for t in range(3):  # every step reads the initial state, never a computed step
        expected = np.tanh(p["W"] @ xs[t, 0] + p["U"] @ start)
        np.testing.assert_allclose(r.values[("h", t)][0], expected, rtol=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a delay equal to the steps is quiet
        unroll_graph(g, 5)
        unroll_graph(presets.elman(), 1, mode="one-to-one")


def test_a_delay_longer_than_the_sequence_warns_on_one_line_in_the_cli(tmp_path):
    path = write(tmp_path, unroll.files.to_toml(long_delay_graph()))
    result = cli("export", path, "--steps", 3, "--format", "json")
    assert result.exit_code == 0
    assert result.stderr.strip() == (
        "Warning: edge h -> h @ t-5 reaches 5 steps, more than the 3 unrolled: every copy "
        "reads a boundary value (an initial state), never a computed step"
    )
    assert json.loads(result.stdout)["steps"] == 3


def disconnected_graph() -> unroll.Graph:
    """The loss sits on y, which reads x; the recurrent h never reaches it."""
    g = unroll.Graph("nopath")
    g.input("x", 1)
    g.layer("h", 2, activation="tanh", biases=["b"])
    g.layer("y", 1)
    g.edge("h", "h", delay=1, weight="W")
    g.edge("x", "h", weight="V")
    g.edge("x", "y", weight="Q")
    g.set_outputs("y")
    return g


def test_no_path_from_any_state_to_the_loss():
    message = (
        "model 'nopath': no gradient reaches h from the loss on y: every gradient is exactly "
        "zero (no path from h to the outputs (y))"
    )
    with pytest.raises(AnalysisError) as caught:
        analyze(disconnected_graph(), steps=5, seeds=1)
    assert str(caught.value) == message
    r = unroll.bptt(
        unroll_graph(disconnected_graph(), 5),
        unroll.init_params(disconnected_graph()),
        {"x": np.ones((5, 1, 1))},
        loss="sum",
    )
    assert all(not r.param_grads[w].any() for w in ("W", "V", "b"))  # the claim is true


def test_no_path_to_the_loss_in_the_cli_prints_no_plot(tmp_path):
    path = write(tmp_path, unroll.files.to_toml(disconnected_graph()))
    plot = tmp_path / "norms.png"
    shown = error_line(cli("analyze", path, "--steps", 5, "--seeds", 1, "--plot", plot), 2)
    assert "no gradient reaches h from the loss on y: every gradient is exactly zero" in shown
    assert not plot.exists()


def test_a_state_no_gradient_reaches_beside_one_that_is_reached():
    g = disconnected_graph()
    g.layer("s", 1, activation="tanh")
    g.edge("x", "s", weight="P")
    g.edge("s", "s", delay=1, weight="R")
    g.edge("s", "y", weight="O")
    rep = analyze(g, steps=6, seeds=2)
    assert rep.summary["nopath"]["h"].verdict == "unreached"
    assert rep.summary["nopath"]["s"].verdict != "unreached"
    assert rep.warnings == [
        "nopath: no gradient reaches h: every gradient is exactly zero (no path from h to "
        "the outputs (y))"
    ]
    assert "warning: nopath: no gradient reaches h" in rep.summary_table()
    assert json.loads(rep.to_json())["models"][0]["warnings"] == rep["nopath"].warnings


def test_a_graph_without_state_nodes_or_layers_has_nothing_to_measure(tmp_path):
    """A feed-forward graph is measured per layer (tests/test_depth.py); one without any
    layer between its input and its output has neither time nor depth."""
    g = unroll.Graph("ff")
    g.input("x", 2)
    g.layer("y", 2)
    g.edge("x", "y", weight="W")
    with pytest.raises(AnalysisError, match=r"'ff' has no delayed edge and no layer between"):
        analyze(g, steps=5, seeds=1)
    shown = error_line(cli("analyze", write(tmp_path, unroll.files.to_toml(g)), "--steps", 5), 2)
    assert "no gradient through time or depth to measure" in shown


def test_a_mode_that_starves_a_node_is_refused_when_unrolling(tmp_path):
    """Without delays no step reads outside the sequence, and the check used to come late."""
    g = unroll.Graph("starved")
    g.input("x", 2)
    g.concat("c", 2)
    g.layer("h", 2, activation="tanh")
    g.edge("x", "c")
    g.edge("c", "h", weight="W")
    with pytest.raises(GraphError, match="leaves x absent at step 2, but concat node 'c'"):
        unroll_graph(g, 4, mode="many-to-many", encoder_steps=2)
    path = write(tmp_path, unroll.files.to_toml(g))
    shown = error_line(cli("export", path, "--steps", 4, "--mode", "many-to-many"), 2)
    assert "leaves x absent at step 2, but concat node 'c' needs it" in shown


# ---- numeric faults --------------------------------------------------------------------------


def relu3(hidden: int = 2) -> tuple[unroll.Graph, dict]:
    """A relu Elman net with W_hh = 3 I and a positive bias: every unit stays active."""
    g = presets.elman(1, hidden, activation="relu")
    p = {
        "W_ih": np.full((hidden, 1), 0.1),
        "W_hh": 3.0 * np.eye(hidden),
        "b_ih": np.full(hidden, 0.5),
        "b_hh": np.full(hidden, 0.5),
    }
    return g, p


def first_overflow(p, steps: int, seed: int) -> int:
    """The first step at which h overflows, by a plain numpy loop (independent of unroll)."""
    xs = draw_inputs(presets.elman(1, 2), steps, seed)["x"][:, 0]
    h = np.zeros(2)
    with np.errstate(over="ignore"):
        for t in range(steps):
            h = np.maximum(0.0, p["W_ih"] @ xs[t] + p["b_ih"] + p["W_hh"] @ h + p["b_hh"])
            if not np.isfinite(h).all():
                return t
    raise AssertionError("no overflow")


def test_exploding_relu_net_via_analyze_reports_the_numbers():
    g, p = relu3()
    rep = analyze(g, steps=500, seeds=2, params=p)
    s = rep.summary["elman"]["h"]
    assert s.verdict == "exploding" and rep.warnings == []
    assert s.decay_per_step == pytest.approx(LOG10_3, abs=1e-9)  # exactly x3 per step
    assert s.factor_per_step == pytest.approx(3.0, rel=1e-8)
    assert s.log10_drop_over_horizon == pytest.approx(499 * LOG10_3, abs=1e-6)
    assert rep["elman"].first_steps_share == pytest.approx(0.1, abs=0.02)  # no overflow to nan


def test_exploding_relu_net_via_the_cli(tmp_path):
    g, p = relu3()
    path = write(tmp_path, unroll.files.to_toml(g, p))
    result = cli("analyze", path, "--steps", 500, "--seeds", 2, "--json", tmp_path / "r.json")
    assert result.exit_code == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith(str(path)))
    assert "+0.4771" in row and "exploding" in row
    summary = json.loads((tmp_path / "r.json").read_text())["models"][0]["summary"]["h"]
    assert summary["decay_per_step"] == pytest.approx(LOG10_3, abs=1e-9)


def test_forward_overflow_names_the_first_node_and_step():
    g, p = relu3()
    u = unroll_graph(g, 1000)
    xs = draw_inputs(g, 1000, seed=0)
    r = unroll.bptt(u, p, xs, {("h", 999): np.ones((1, 2))})
    step = first_overflow(p, 1000, seed=0)
    assert 600 < step < 700
    assert r.first_nonfinite() == ("h", step)
    assert r.warnings[0] == f"forward pass overflowed first at h, step {step} (value inf)"


def test_forward_overflow_via_analyze_is_undefined_and_warned():
    g, p = relu3()
    rep = analyze(g, steps=1000, seeds=2, params=p)
    s = rep.summary["elman"]["h"]
    assert s.verdict == "undefined" and math.isnan(s.decay_per_step)
    assert np.isnan(rep["elman"].grad_norms["h"]).all()  # not a zero gradient, no gradient
    step = first_overflow(p, 1000, seed=0)
    assert rep.warnings == [
        f"elman: forward pass overflowed first at h, step {step} (value inf) with seed 0; "
        "2 of 2 seeds overflowed: their gradient norms are NaN (not meaningful)"
    ]


def test_forward_overflow_via_the_cli(tmp_path):
    g, p = relu3()
    path = write(tmp_path, unroll.files.to_toml(g, p))
    result = cli("analyze", path, "--steps", 1000, "--seeds", 1)
    assert result.exit_code == 0, result.stderr
    step = first_overflow(p, 1000, seed=0)
    assert f"forward pass overflowed first at h, step {step}" in result.stdout
    assert "undefined" in result.stdout


def test_a_diagram_of_an_overflowed_run_says_so(tmp_path):
    g, p = relu3()
    path = write(tmp_path, unroll.files.to_toml(g, p))
    result = cli("render", path, "--steps", 700, "--values", "-o", "-")
    assert result.exit_code == 0 and result.stdout.startswith("digraph")
    step = first_overflow(p, 700, seed=0)
    assert result.stderr.strip() == (
        f"Warning: forward pass overflowed first at h, step {step} (value inf)"
    )


def test_gradients_beyond_float64_stay_exact_in_the_log_domain():
    g = presets.elman(1, 2, activation="identity", bias=False)
    p = {"W_ih": np.ones((2, 1)), "W_hh": 3.0 * np.eye(2)}
    rep = analyze(g, steps=1000, seeds=1, params=p, input_scale=0.0)
    norms = rep["elman"].grad_norms["h"][0]
    distance = np.arange(999, -1, -1)
    np.testing.assert_allclose(norms, distance * LOG10_3, atol=1e-9)  # up to 10^476.6
    assert norms[0] > 400 and rep.summary["elman"]["h"].verdict == "exploding"
    assert rep.warnings == []


def test_a_weight_gradient_that_overflows_float64_is_warned():
    """dL/dW_ih = sum_k 0.5**k * 1e308 = 2e308: inf in float64, while every value is ~2."""
    g = presets.neuron(activation="identity", bias=False)
    u = unroll_graph(g, 50)
    p = {"W_ih": np.ones((1, 1)), "W_hh": np.full((1, 1), 0.5)}
    r = unroll.bptt(u, p, {"x": np.ones((50, 1, 1))}, {("h", 49): np.full((1, 1), 1e308)})
    assert r.first_nonfinite() is None and np.isinf(r.param_grads["W_ih"]).all()
    assert r.log10_grad_norms("h")[-1] == pytest.approx(308.0)
    assert r.warnings == [
        f"the gradient of parameter {name!r} is not finite in float64 (it overflowed); "
        "log10_grad_norms stay exact"
        for name in ("W_hh", "W_ih")
    ]


# ---- resource limits -------------------------------------------------------------------------


def test_unrolling_too_many_node_instances_is_refused_before_any_work():
    g = presets.elman()
    with pytest.raises(LimitError) as caught:
        unroll_graph(g, 100_000_000)
    assert str(caught.value) == (
        "unrolling 'elman' (2 nodes) over 100,000,000 steps makes about 200,000,001 node "
        "instances, more than the limit of 20,000,000; pass unroll(..., max_nodes=None) to "
        "lift the limit"
    )
    with pytest.raises(LimitError, match="about 201 node instances, more than the limit of 200"):
        unroll_graph(g, 100, max_nodes=200)
    assert unroll_graph(g, 100, max_nodes=None).num_nodes() == 201


def test_the_cli_names_force_and_force_lifts_the_unroll_limit(monkeypatch):
    shown = error_line(cli("render", "elman", "--steps", 100_000_000), 2)
    assert shown.endswith("more than the limit of 20,000,000; pass --force to lift the limit")
    monkeypatch.setitem(unroll_graph.__kwdefaults__, "max_nodes", 100)
    assert "more than the limit of 100" in error_line(cli("export", "elman", "--steps", 60), 2)
    assert cli("export", "elman", "--steps", 60, "--force").exit_code == 0


def test_bptt_refuses_a_run_above_the_memory_limit():
    u = unroll_graph(presets.elman(8, 64), 1000)
    need = unroll.engine.estimate_memory(u, batch=4)
    p = unroll.init_params(u.graph)
    xs = {"x": np.zeros((1000, 4, 8))}
    with pytest.raises(LimitError) as caught:
        unroll.bptt(u, p, xs, max_memory=need - 1)
    assert str(caught.value).startswith("BPTT over 'elman' (1,000 steps, batch 4, float64) needs")
    assert str(caught.value).endswith("; pass bptt(..., max_memory=None) to lift the limit")
    unroll.bptt(u, p, xs, max_memory=need)
    unroll.bptt(u, p, xs, max_memory=None)


def test_the_memory_estimate_bounds_a_measured_peak():
    import tracemalloc

    g = presets.lstm(8, 32)
    u = unroll_graph(g, 200)
    p, xs = unroll.init_params(g), {"x": np.ones((200, 4, 8))}
    tracemalloc.start()
    unroll.bptt(u, p, xs, loss="sum", contributions=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    estimate = unroll.engine.estimate_memory(u, batch=4, contributions=True)
    assert 0.3 * estimate < peak < 1.1 * estimate


def test_the_default_memory_limit_is_the_smaller_of_8_gib_and_what_is_free(monkeypatch):
    monkeypatch.setattr(unroll.engine, "available_memory", lambda: 2**40)
    u = unroll_graph(presets.elman(64, 1024), 100_000)
    with pytest.raises(LimitError, match=r"needs about [\d,.]+ GiB, more than the limit of 8.0"):
        unroll.engine.check_memory(u, batch=64)
    monkeypatch.setattr(unroll.engine, "available_memory", lambda: 2**20)
    small = unroll_graph(presets.elman(4, 8), 100)
    with pytest.raises(LimitError, match=r"limit of 1 MiB \(the memory available now\)"):
        unroll.engine.check_memory(small, batch=64)


def test_analyze_checks_memory_before_drawing_parameters(monkeypatch):
    monkeypatch.setattr(unroll.engine, "available_memory", lambda: 2**20)
    drawn = []
    for name in ("init_params_many", "init_params_stacked"):
        monkeypatch.setattr(unroll.analysis.probes, name, lambda *a, **k: drawn.append(1))
    with pytest.raises(LimitError, match="with per-step contributions"):
        analyze(presets.elman(4, 64), steps=500, seeds=1)
    assert drawn == []
    shown = error_line(cli("analyze", "elman:hidden=64", "--steps", 500, "--seeds", 1), 2)
    assert "limit of 1 MiB (the memory available now); pass --force to lift the limit" in shown


def test_force_lifts_the_memory_limit_in_the_cli(monkeypatch):
    monkeypatch.setattr(unroll.engine, "available_memory", lambda: 2**20)
    assert cli("analyze", "elman", "--steps", 5000, "--seeds", 1).exit_code == 2
    result = cli("analyze", "elman", "--steps", 5000, "--seeds", 1, "--force")
    assert result.exit_code == 0 and "elman" in result.stdout


def test_the_cli_refuses_a_diagram_with_too_many_nodes(tmp_path):
    shown = error_line(cli("render", "elman", "--steps", 1100, "--full", "-o", "-"), 2)
    assert "the diagram would have 2201 nodes, more than --max-nodes 2000" in shown
    out = tmp_path / "big.dot"
    assert (
        cli(
            "render", "elman", "--steps", 1100, "--full", "--max-nodes", 10_000, "-o", out
        ).exit_code
        == 0
    )
    assert out.read_text().count("h_1099") >= 1
    assert cli("render", "elman", "--steps", 1100, "--full", "--force", "-o", "-").exit_code == 0
    shown = error_line(cli("render", "elman", "--steps", 10, "--full", "--max-nodes", 5), 2)
    assert "more than --max-nodes 5" in shown


def test_absurd_settings_are_refused_before_any_work():
    with pytest.raises(AnalysisError, match="seeds must be a count from 1 to 100,000"):
        analyze(presets.elman(), steps=3, seeds=10**30)
    with pytest.raises(GraphError, match="size 10,000,000,000 is more than the 1,000,000"):
        presets.elman(hidden_size=10**10)


# ---- files -----------------------------------------------------------------------------------


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_an_output_in_a_missing_folder_is_one_line():
    shown = error_line(cli("export", "elman", "-o", "no/such/folder/x.json"), 1)
    assert shown == "Error: no/such/folder/x.json: No such file or directory"


@pytest.mark.parametrize("when", ["write", "fsync", "replace"])
def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, when):
    target = tmp_path / "out.json"
    target.write_text("old complete content\n")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    if when == "write":
        monkeypatch.setattr(os, "fdopen", lambda fd, mode: _Interrupting(fd))
    else:
        monkeypatch.setattr(os, when, interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, "new content\n" * 1000)
    assert target.read_text() == "old complete content\n"
    assert leftovers(tmp_path) == []


class _Interrupting:
    """A file object that writes half its data, then raises KeyboardInterrupt."""

    def __init__(self, fd):
        self.file = open(fd, "wb")  # noqa: SIM115 (closed in __exit__)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()

    def write(self, data):
        self.file.write(data[: len(data) // 2])
        raise KeyboardInterrupt


def test_an_interrupted_sweep_keeps_its_complete_outputs(tmp_path, monkeypatch):
    """Ctrl-C while the sweep writes its second file: the first stays whole, no partial file."""
    import unroll.files

    real = unroll.files.atomic_write
    written = []

    def second_interrupts(path, data):
        if written:
            monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(KeyboardInterrupt))
        written.append(Path(path).name)
        real(path, data)

    monkeypatch.setattr("unroll.cli.params.atomic_write", second_interrupts)
    json_out, csv_out, plot = tmp_path / "s.json", tmp_path / "s.csv", tmp_path / "s.png"
    args = ["sweep", "elman", "--vary", "hidden=2,3", "--steps", 8, "--seeds", 1, "--quiet"]
    result = cli(*args, "--json", json_out, "--csv", csv_out, "--plot", plot)
    assert result.exit_code == 1 and "Aborted" in result.stderr
    assert written == ["s.json", "s.csv"]
    assert len(json.loads(json_out.read_text())["rows"]) == 2  # complete
    assert not csv_out.exists() and not plot.exists() and leftovers(tmp_path) == []


def test_an_error_while_drawing_the_plot_keeps_the_json(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    def broken(self, *args, **kwargs):
        raise OSError(28, "No space left on device", "s.png")

    monkeypatch.setattr(Figure, "savefig", broken)
    json_out, plot = tmp_path / "a.json", tmp_path / "a.png"
    result = cli("analyze", "elman", "--steps", 8, "--seeds", 1, "--json", json_out, "--plot", plot)
    assert error_line(result, 1) == "Error: s.png: No space left on device"
    assert json.loads(json_out.read_text())["schema"] == "unroll.analysis.report/1"
    assert not plot.exists() and leftovers(tmp_path) == []


def test_a_weight_file_with_an_arbitrary_object_is_refused_unexecuted(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "EXECUTED"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    zipped, plain = tmp_path / "evil.pt", tmp_path / "evil_plain.pt"
    torch.save({"weight_ih_l0": Payload()}, zipped)
    with open(plain, "wb") as f:
        pickle.dump({"weight_ih_l0": Payload()}, f)
    for path in (zipped, plain):
        shown = error_line(cli("analyze", path), 2)
        assert shown.startswith(f"Error: {path}: refused: ")  # the zip and the plain pickle
        assert "objects other than tensors (read with weights_only=True)" in shown
        with pytest.raises(UnrollError, match="refused"):
            unroll.load_state_dict(path)
    assert not marker.exists()


# ---- determinism -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["export", "lstm", "--steps", 5, "--format", "json"],
        ["export", "gru", "--steps", 4, "--format", "dot"],
        ["render", "lstm", "--steps", 3, "--grads", "--values", "--seed", 3, "-o", "-"],
        ["analyze", "elman", "gru", "--steps", 12, "--seeds", 3, "--json", "-"],
    ],
)
def test_the_same_command_gives_the_same_bytes(args):
    first, second = cli(*args), cli(*args)
    assert first.exit_code == 0 and second.exit_code == 0
    assert first.stdout_bytes == second.stdout_bytes and len(first.stdout_bytes) > 100


def test_a_sweep_gives_the_same_bytes_on_one_or_several_workers():
    args = ["sweep", "elman", "--vary", "hidden=2,3,4", "--vary", "spectral_radius=0.5,1.5"]
    args += ["--init", "orthogonal", "--steps", 10, "--seeds", 2, "--quiet", "--json", "-"]
    one, three = cli(*args, "--workers", 1), cli(*args, "--workers", 3)
    assert one.exit_code == 0 and three.exit_code == 0, three.stderr
    assert one.stdout_bytes == three.stdout_bytes
    assert len(json.loads(one.stdout)["rows"]) == 6


def test_the_catalogue_lists_every_documented_message():
    """docs/reliability.md quotes messages; each quoted fragment comes from the code."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "reliability.md").read_text()
    for fragment in [
        "input 'x' has a non-finite value at step 3, batch 0, unit 1 (nan)",
        "forward pass overflowed first at h, step",
        "no gradient reaches h from the loss on y: every gradient is exactly zero",
        "pass --force to lift the limit",
        "reaches 5 steps, more than the 3 unrolled",
    ]:
        assert fragment in doc
