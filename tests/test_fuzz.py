"""Fuzzing: random (mostly invalid) model files, MODEL specs, --vary grids, Graph API call
sequences and command lines.

The only exceptions that may escape the library are :class:`unroll.errors.UnrollError`
subclasses with a one-line message; the command line answers every input with exit code
0, 1 or 2 and, on failure, one ``Error:`` line and no traceback. A few hundred examples
run in the normal test run (derandomized, so the run is deterministic); the tests marked
``slow`` run many more.
"""

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from unroll.cli.main import main

import unroll
from unroll.analysis import analyze
from unroll.errors import UnrollError, UnrollWarning
from unroll.files import parse_toml, to_graphml, to_json, to_toml

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.toml"))
EXAMPLE_TEXTS = [p.read_text() for p in EXAMPLES]


def fuzz_settings(examples: int):
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


FAST, SLOW = fuzz_settings, fuzz_settings


# ---- what counts as a clean answer -------------------------------------------------------------


REFUSED = None  # what expect_clean returns for a call refused with an UnrollError


def expect_clean(call, *args, **kwargs):
    """Call; return its result, or ``REFUSED`` when it raised an UnrollError of one line."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnrollWarning)
            return call(*args, **kwargs)
    except UnrollError as error:
        text = str(error)
        assert text and "\n" not in text, f"error message is not one line: {text!r}"
        event(f"{getattr(call, '__name__', call)} refused: {type(error).__name__}")
        return REFUSED


def clean_cli(args) -> int:
    """Run the CLI; it exits 0, 1 or 2, and a failure ends with one ``Error:`` line."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args,
        repr(result.exception),
    )
    assert result.exit_code in (0, 1, 2), (args, result.exit_code)
    assert "Traceback" not in result.stderr
    if result.exit_code:
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
        assert len(errors) == 1, (args, result.stderr)
        assert result.stderr.rstrip().splitlines()[-1].startswith("Error: "), result.stderr
    return result.exit_code


# ---- strategies: text-level mutations of the examples ------------------------------------------

TOKENS = [
    "[", "]", "{", "}", "=", '"', "'", ",", "->", "@", "t-1", "t+1", "t-99999999999999999999",
    ":", "\n", "kind", "size", "layer", "input", "mul", "add", "concat", "one_minus", "-1", "0",
    "1e400", "nan", "inf", "true", "[nodes]", "[[edges]]", "[params]", "delay", "weight",
    "from", "to", "biases", "gate", "activation", "tanh", "tahn", "relu", "h", "x", "y", "c",
    "3.5", "999999999999999999999", "\x00", "é", "\\", "#", "edges", "outputs", "name",
    "W_hh", "1979-05-27", "{ kind = \"layer\", size = 2 }", '"h -> h"', '"h -> h @ t-1 : W"',
]  # fmt: skip


@st.composite
def mutated_examples(draw) -> str:
    """An example model file with a few random edits: cut, insert, replace, line moves."""
    text = draw(st.sampled_from(EXAMPLE_TEXTS))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = min(len(text), i + draw(st.integers(0, 24)))
        token = draw(st.sampled_from(TOKENS))
        lines = text.splitlines()
        edit = draw(st.sampled_from(["cut", "insert", "replace", "dup_line", "drop_line"]))
        if edit == "cut":
            text = text[:i] + text[j:]
        elif edit == "insert":
            text = text[:i] + token + text[i:]
        elif edit == "replace":
            text = text[:i] + token + text[j:]
        elif lines:
            k = draw(st.integers(0, len(lines) - 1))
            if edit == "dup_line":
                lines.insert(draw(st.integers(0, len(lines))), lines[k])
            else:
                del lines[k]
            text = "\n".join(lines) + "\n"
    return text


# ---- strategies: structured random documents ----------------------------------------------------

NAMES = ["x", "h", "y", "c", "g", "W", "b", "h_reverse", "1bad", "", "a b", "nodes", "é"]
KINDS = ["input", "layer", "add", "mul", "one_minus", "concat", "lstm", "Layer", ""]
ACTIVATIONS = ["tanh", "relu", "sigmoid", "identity", "softplus", "tahn", ""]

SCALARS = [-3, 0, 1, 5, 0.5, -1.0, 1e308, math.inf, -math.inf, math.nan, True, False]
SCALARS += [10**20, -(10**20), "DATE", "x", "h", "", "1bad", "layer", "tahn"]
WEIRD_VALUES = [*SCALARS, [], [1, "h"], [[0.5]], ["h", ["x"]], {}, {"x": 1}, {"kind": []}]
#: Values of every TOML type, nested a little: what a hand-written file may hold by mistake.
values = st.sampled_from(WEIRD_VALUES)


def toml_value(v) -> str:
    """TOML text of a value: JSON strings are TOML basic strings; ``"DATE"`` is a date."""
    if v == "DATE":
        return "1979-05-27"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    items = [f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items() if x is not None]
    return "{ " + ", ".join(items) + " }"  # TOML has no null: a None field is left out


def chance(draw, p: float) -> bool:
    return draw(st.integers(0, 99)) < 100 * p


def maybe(draw, good, weird=values, p_weird=0.1):
    return draw(weird) if chance(draw, p_weird) else draw(good)


@st.composite
def valid_documents(draw) -> dict:
    """A valid model as a TOML document (a dict): an input ``x`` and a chain of layers,
    each reading the one before and itself one step back, every weight its own."""
    size = {"x": draw(st.integers(1, 2))}
    nodes = {"x": {"kind": "input", "size": size["x"]}}
    edges, previous = [], "x"
    for name in draw(st.lists(st.sampled_from(["h", "y", "c", "g"]), min_size=1, unique=True)):
        size[name] = draw(st.integers(1, 2))
        nodes[name] = {"kind": "layer", "size": size[name]}
        if draw(st.booleans()):
            nodes[name]["activation"] = draw(st.sampled_from(ACTIVATIONS[:5]))
        if draw(st.booleans()):
            nodes[name]["biases"] = [f"b_{name}"]
        edges.append({"from": previous, "to": name, "delay": 0, "weight": f"W_{name}"})
        if draw(st.booleans()):
            edges.append({"from": name, "to": name, "delay": 1, "weight": f"U_{name}"})
        previous = name
    doc = {"name": draw(st.sampled_from(["m", "é model"])), "edges": edges, "nodes": nodes}
    if draw(st.booleans()):
        doc["outputs"] = [previous]
    return doc


def _corrupt_node(draw, doc):
    if not isinstance(doc.get("nodes"), dict) or not doc["nodes"]:
        return
    name = draw(st.sampled_from(sorted(doc["nodes"])))
    key = draw(st.sampled_from(["kind", "size", "activation", "biases", "gate", "kidn"]))
    choice = {
        "kind": st.sampled_from(KINDS),
        "size": st.sampled_from([0, -1, 2.5, "3", 3, 10**20]),
        "activation": st.sampled_from(ACTIVATIONS),
    }.get(key, values)
    if draw(st.booleans()):
        doc["nodes"][name] = dict(doc["nodes"][name], **{key: draw(choice)})
    else:
        doc["nodes"][name] = {k: v for k, v in doc["nodes"][name].items() if k != key}


def _corrupt_edge(draw, doc):
    edges = doc.get("edges")
    if not isinstance(edges, list) or not edges:
        return
    i = draw(st.integers(0, len(edges) - 1))
    if not isinstance(edges[i], dict):
        return
    key = draw(st.sampled_from(["from", "to", "delay", "weight", "frm"]))
    choice = {
        "from": st.sampled_from(["x", "h", "zz", "1bad", ""]),
        "to": st.sampled_from(["x", "h", "zz"]),
        "delay": st.sampled_from([0, -1, 2, 2.0, True, "1", 10**20]),
        "weight": st.sampled_from(["W_h", "U_h", "b_h", "W", "1bad", None]),
    }.get(key, values)
    edges[i] = dict(edges[i], **{key: draw(choice)})


def _corrupt_document(draw, doc):
    key = draw(st.sampled_from(["name", "outputs", "nodes", "edges", "params", "nmae"]))
    doc[key] = draw(
        {
            "outputs": st.sampled_from([["zz"], ["x"], "h", [], [1]]),
            "params": st.sampled_from([{"W_h": [[0.5]]}, {"Q": [1.0]}, {"W_h": [["a"]]}, []]),
        }.get(key, values)
    )


CORRUPTIONS = [_corrupt_node, _corrupt_node, _corrupt_edge, _corrupt_edge, _corrupt_document]


def emit_document(doc: dict, edge_tables: bool, edge_strings: bool) -> str:
    """TOML text of a document: top-level keys, ``[nodes]``, ``[params]``, ``[[edges]]``."""
    lines = []
    tables = {k: v for k, v in doc.items() if k in ("nodes", "params") and isinstance(v, dict)}
    edges = doc.get("edges")
    as_tables = edge_tables and isinstance(edges, list) and all(isinstance(e, dict) for e in edges)
    for key, value in doc.items():
        if key not in tables and not (key == "edges" and as_tables):
            if key == "edges" and edge_strings and isinstance(value, list):
                value = [edge_string(e) for e in value]
            lines.append(f"{json.dumps(key)} = {toml_value(value)}")
    for key, table in tables.items():
        lines.append(f"[{key}]")
        lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items()]
    for item in edges if as_tables else ():
        lines.append("[[edges]]")
        lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in item.items() if v is not None]
    return "\n".join(lines) + "\n"


def edge_string(item):
    """``"SRC -> DST @ t-k : W"`` for a table with plain values; other items stay as they are."""
    if not isinstance(item, dict) or not isinstance(item.get("delay", 0), int):
        return item
    text = f"{item.get('from')} -> {item.get('to')}"
    delay = item.get("delay", 0)
    text += f" @ t{-delay:+d}" if delay else ""
    return text + (f" : {item['weight']}" if item.get("weight") is not None else "")


@st.composite
def toml_documents(draw) -> str:
    """A valid model file with zero to three corruptions (about a third stay valid)."""
    doc = draw(valid_documents())
    for _ in range(draw(st.integers(0, 3))):
        draw(st.sampled_from(CORRUPTIONS))(draw, doc)
    return emit_document(doc, draw(st.booleans()), draw(st.booleans()))


# ---- strategies: Graph API call sequences -------------------------------------------------------

WEIRD = [None, 0, -1, 1.5, "3", [], {}, (1,), True, "1bad", "", math.nan, 10**30, b"h"]


@st.composite
def valid_calls(draw) -> list[tuple[str, tuple, dict]]:
    """Builder calls of a valid graph: an input, then a chain of nodes of every kind, each
    reading the one before (a concat also the input), with self-loops of various delays."""
    size = {"x0": draw(st.integers(1, 3))}
    calls, previous = [("input", ("x0", size["x0"]), {})], "x0"
    for j in range(draw(st.integers(1, 5))):
        name = f"n{j}"
        kind = draw(st.sampled_from(["layer", "layer", "add", "mul", "one_minus", "concat"]))
        if kind == "layer":
            size[name] = draw(st.integers(1, 3))
            options = {
                "activation": draw(st.sampled_from(["tanh", "relu", "identity", "sigmoid"])),
                "biases": draw(st.sampled_from([(), (f"b{j}",)])),
            }
            calls += [("layer", (name, size[name]), options)]
            calls += [("edge", (previous, name), {"weight": f"W{j}"})]
            if draw(st.booleans()):
                delay = draw(st.sampled_from([1, 2, -1]))
                calls += [("edge", (name, name), {"delay": delay, "weight": f"U{j}"})]
        elif kind == "concat":
            size[name] = size[previous] + size["x0"]
            calls += [("concat", (name, size[name]), {})]
            calls += [("edge", (previous, name), {}), ("edge", ("x0", name), {})]
        else:
            size[name] = size[previous]
            calls += [(kind, (name, size[name]), {}), ("edge", (previous, name), {})]
            if kind in ("add", "mul"):
                calls += [("edge", (name, name), {"delay": draw(st.sampled_from([1, 2]))})]
        previous = name
    if draw(st.booleans()):
        calls.append(("set_outputs", (previous,), {}))
    return calls


BAD_CALLS = [
    ("edge", ("n0", "zz"), {}),
    ("edge", ("n0", "x0"), {}),
    ("edge", ("n0", "n0"), {"delay": 0}),
    ("edge", ("n0", "n0"), {"delay": 1, "weight": "W0"}),
    ("edge", ("x0", "n0"), {"weight": "b0"}),
    ("layer", ("n0", 2), {}),
    ("layer", ("n9", 2), {"activation": "tahn"}),
    ("add_node", ("n9", "lstm", 2), {}),
    ("set_outputs", ("x0",), {}),
    ("set_outputs", ("zz",), {}),
    ("one_minus", ("n9", 1), {}),
]


@st.composite
def graph_calls(draw) -> list[tuple[str, tuple, dict]]:
    """Valid builder calls with zero to two faults: a wrong argument or a bad extra call."""
    calls = draw(valid_calls())
    for _ in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):
            i = draw(st.integers(0, len(calls) - 1))
            method, args, kwargs = calls[i]
            k = draw(st.integers(0, len(args) + len(kwargs) - 1))
            weird = draw(st.sampled_from(WEIRD))
            if k < len(args):
                args = (*args[:k], weird, *args[k + 1 :])
            else:
                kwargs = dict(kwargs, **{list(kwargs)[k - len(args)]: weird})
            calls[i] = (method, args, kwargs)
        else:
            calls.insert(draw(st.integers(0, len(calls))), draw(st.sampled_from(BAD_CALLS)))
    return calls


def build(calls) -> unroll.Graph:
    """Apply the calls; a refused call raises a one-line UnrollError and changes nothing."""
    g = unroll.Graph("fuzz")
    for method, args, kwargs in calls:
        before = (dict(g.nodes), list(g.edges), list(g.outputs))
        try:
            getattr(g, method)(*args, **kwargs)
        except UnrollError as error:
            assert "\n" not in str(error)
            assert (g.nodes, g.edges, g.outputs) == before, f"{method}{args} changed the graph"
    return g


def exercise(graph: unroll.Graph, steps: int, mode: str, seed: int, measure=True) -> None:
    """Everything a user does with a graph; each step may only refuse with an UnrollError."""
    if expect_clean(graph.validate) is REFUSED:
        return
    assert parse_toml(to_toml(graph)).graph == graph  # a valid graph survives its file
    to_json(graph), to_graphml(graph)
    u = expect_clean(unroll.unroll, graph, steps, mode)
    if u is REFUSED:
        return
    to_json(u), to_graphml(u)
    params = unroll.init_params(graph, seed=seed)
    rng = np.random.default_rng(seed)
    xs = {n: rng.normal(size=(steps, 2, graph.nodes[n].size)) for n in graph.input_nodes()}
    r = expect_clean(unroll.bptt, u, params, xs, loss="sum", contributions=True)
    event("bptt ran" if r is not REFUSED else "bptt refused")
    if r is not REFUSED:
        assert isinstance(r.warnings, list)
        for name in graph.nodes:
            r.log10_grad_norms(name)
    report = expect_clean(analyze, graph, steps=steps, seeds=1) if measure else REFUSED
    if report is not REFUSED:
        json.loads(report.to_json())


# ---- the tests ----------------------------------------------------------------------------------


def check_text(text: str) -> None:
    model = expect_clean(parse_toml, text, "fuzz.toml")
    if model is not REFUSED:
        exercise(model.graph, 3, "synced", 0, measure=False)


@FAST(150)
@given(mutated_examples())
def test_mutated_example_files(text):
    check_text(text)


@FAST(150)
@given(toml_documents())
def test_random_model_documents(text):
    check_text(text)


@FAST(150)
@given(graph_calls(), st.integers(1, 4), st.sampled_from(["synced", "many-to-one", "seq2seq"]))
def test_graph_api_call_sequences(calls, steps, mode):
    exercise(build(calls), steps, mode, seed=steps)


COMMANDS = {
    "export": ["--steps", 2, "--format", "json"],
    "analyze": ["--steps", 3, "--seeds", 1],
    "render": ["--steps", 2, "--values", "-o", "-"],
}


@FAST(30)
@given(st.one_of(mutated_examples(), toml_documents()), st.sampled_from(sorted(COMMANDS)))
def test_cli_on_random_model_files(tmp_path_factory, text, command):
    path = tmp_path_factory.mktemp("fuzz") / "model.toml"
    path.write_text(text, encoding="utf-8")
    clean_cli([command, path, *COMMANDS[command]])


ARGUMENTS = [
    "elman", "lstm:hidden=2", "gru:hiden=2", "lstn", "neuron", "x.toml", "a.b:c", "rnn.pt",
    "--steps", "0", "-3", "5", "abc", "--seeds", "--mode", "seq2seq", "sideways", "--init",
    "orthogonal", "--init-option", "spectral_radius=0.9", "forget_bias", "--vary",
    "hidden=2,3", "steps=1:3:0", "--format", "toml", "xml", "-o", "-", "--folded",
    "--values", "--detail", "cell", "--force", "--max-nodes", "1", "--json", "--csv",
]  # fmt: skip


@FAST(40)
@given(
    st.sampled_from(["render", "analyze", "sweep", "export", "presets"]),
    st.lists(st.sampled_from(ARGUMENTS), max_size=6),
)
def test_cli_on_random_arguments(command, args):
    clean_cli([command, *args])


# ---- MODEL specs and --vary grids ----------------------------------------------------------------

SPEC_PARTS = [
    "elman", "lstm", "gru", "stacked", "bidirectional", "neuron", "jordan", "lstn", ":", ",",
    "=", "hidden", "input", "layers", "cell", "activation", "forget_bias", "init", "relu",
    "tahn", "gru", "2", "0", "-1", "3.5", "1e9", "1000000000", "true", "none", " ", "\n", "é",
    "\x00", "spectral_radius", "bias", "x.toml", "../a", "",
]  # fmt: skip
GRID_PARTS = ["0", "1", "-2", "3.5", "1e30", "1e400", "nan", "inf", ":", ",", " ", "e", "a"]


def preset_specs() -> st.SearchStrategy[str]:
    """MODEL texts a preset reads (never a module:function, which would import code)."""
    text = st.lists(st.sampled_from(SPEC_PARTS), max_size=9).map("".join)
    return text.filter(lambda s: not unroll.models._is_function(s.strip()))


def check_spec(spec: str) -> None:
    model = expect_clean(unroll.load_model, spec)
    if model is not REFUSED:
        assert len(model.graph.nodes) <= unroll.limits.MAX_GRAPH_NODES


def check_grid(text: str) -> None:
    from unroll.analysis.sweep import grid_values, points

    try:
        values = grid_values(text)
    except ValueError as error:
        assert "\n" not in str(error)
        return
    assert 0 < len(values) <= unroll.limits.MAX_GRID_POINTS or values == []
    assert all(not isinstance(v, float) or math.isfinite(v) for v in values)
    assert len(expect_clean(points, {"a": values}) or []) == len(values)


@FAST(150)
@given(preset_specs())
def test_model_specs(spec):
    check_spec(spec)


@FAST(200)
@given(st.lists(st.sampled_from(GRID_PARTS), max_size=8).map("".join))
def test_vary_grids(text):
    check_grid(text)


@FAST(15)
@given(
    st.lists(st.sampled_from(GRID_PARTS), min_size=1, max_size=6).map("".join),
    st.sampled_from(["hidden", "steps", "spectral_radius", "activation"]),
)
def test_cli_sweep_on_random_grids(text, setting):
    clean_cli(["sweep", "elman", "--vary", f"{setting}={text}", "--steps", 2, "--seeds", 1])


# ---- longer runs -------------------------------------------------------------------------------


@pytest.mark.slow
@SLOW(2000)
@given(preset_specs())
def test_model_specs_long(spec):
    check_spec(spec)


@pytest.mark.slow
@SLOW(3000)
@given(st.lists(st.sampled_from(GRID_PARTS), max_size=12).map("".join))
def test_vary_grids_long(text):
    check_grid(text)


@pytest.mark.slow
@SLOW(1500)
@given(mutated_examples())
def test_mutated_example_files_long(text):
    check_text(text)


@pytest.mark.slow
@SLOW(1500)
@given(toml_documents())
def test_random_model_documents_long(text):
    check_text(text)


@pytest.mark.slow
@SLOW(1500)
@given(graph_calls(), st.integers(1, 5), st.sampled_from(["synced", "many-to-one", "one-to-many"]))
def test_graph_api_call_sequences_long(calls, steps, mode):
    exercise(build(calls), steps, mode, seed=steps)


@pytest.mark.slow
@SLOW(200)
@given(
    st.sampled_from(["render", "analyze", "sweep", "export", "presets"]),
    st.lists(st.sampled_from(ARGUMENTS), max_size=8),
)
def test_cli_on_random_arguments_long(command, args):
    clean_cli([command, *args])
