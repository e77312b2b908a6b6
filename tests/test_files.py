"""Model files: TOML in and out, JSON and GraphML exports, the unrolled graph, atomic writes."""

import json
import os
import re
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import unroll
from unroll import presets
from unroll.files import (
    JSON_SCHEMA,
    ModelFileError,
    atomic_write,
    export,
    load_toml,
    parse_edge,
    parse_toml,
    to_graphml,
    to_json,
    to_toml,
    unrolled_as_graph,
)
from unroll.graph import Edge

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

VARIANTS = {
    **{name: factory for name, factory in presets.PRESETS.items()},
    "elman_output": lambda: presets.elman(2, 5, activation="relu", output_size=3),
    "elman_nobias": lambda: presets.elman(bias=False),
    "lstm1997": lambda: presets.lstm(forget_gate=False),
    "stacked_gru_bi": lambda: presets.stacked("gru", 2, 3, layers=3, bidirectional=True),
    "stacked_elman": lambda: presets.stacked("elman", layers=2, activation="relu"),
    "bidirectional_lstm": lambda: presets.bidirectional("lstm", layers=2),
}

ELMAN = """\
name = "tiny"
edges = [
    "x -> h : W_ih",
    "h -> h @ t-1 : W_hh",
]

[nodes]
x = { kind = "input", size = 3 }
h = { kind = "layer", size = 4, activation = "tanh", biases = ["b"] }
"""


def fail_message(text: str) -> str:
    with pytest.raises(ModelFileError) as info:
        parse_toml(text, "model.toml")
    return str(info.value)


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


# ---- the TOML format ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_toml_round_trip_gives_an_equal_graph(name):
    graph = VARIANTS[name]()
    loaded = parse_toml(to_toml(graph))
    assert loaded.graph == graph
    assert loaded.params is None
    assert list(loaded.graph.nodes) == list(graph.nodes)  # declaration order kept


@pytest.mark.parametrize(
    "name", ["neuron", "elman", "jordan", "lstm", "gru", "indrnn", "mingru", "minlstm", "lru"]
)
def test_examples_equal_their_presets(name):
    assert load_toml(EXAMPLES / f"{name}.toml").graph == presets.PRESETS[name]()


def test_the_peephole_example_equals_its_preset():
    assert load_toml(EXAMPLES / "lstm_peephole.toml").graph == presets.lstm(peephole=True)


def test_every_example_loads_and_validates():
    files = sorted(EXAMPLES.glob("*.toml"))
    assert {f.stem for f in files} >= {"neuron", "elman", "jordan", "lstm", "gru"}
    for f in files:
        assert load_toml(f).graph.validate().nodes


def test_edge_tables_and_strings_give_the_same_graph():
    tables = """\
name = "tiny"

[nodes]
x = { kind = "input", size = 3 }
h = { kind = "layer", size = 4, activation = "tanh", biases = ["b"] }

[[edges]]
from = "x"
to = "h"
weight = "W_ih"

[[edges]]
from = "h"
to = "h"
delay = 1
weight = "W_hh"
"""
    inline = ELMAN.replace(
        '"h -> h @ t-1 : W_hh"', '{ from = "h", to = "h", delay = 1, weight = "W_hh" }'
    )
    expected = parse_toml(ELMAN).graph
    assert parse_toml(tables).graph == expected
    assert parse_toml(inline).graph == expected


def test_name_defaults_to_the_file_stem(tmp_path):
    path = tmp_path / "my_net.toml"
    path.write_text(ELMAN.replace('name = "tiny"\n', ""))
    assert load_toml(path).graph.name == "my_net"


def test_outputs_are_read():
    text = ELMAN.replace('name = "tiny"', 'name = "tiny"\noutputs = ["h"]')
    assert parse_toml(text).graph.outputs == ["h"]


@pytest.mark.parametrize(
    ("text", "edge"),
    [
        ("x -> h", Edge("x", "h", 0, None)),
        ("x->h:W", Edge("x", "h", 0, "W")),
        ("h -> h @ t-1 : W_hh", Edge("h", "h", 1, "W_hh")),
        ("h -> h @ t-2", Edge("h", "h", 2, None)),
        ("h -> h @ t+1 : W", Edge("h", "h", -1, "W")),
        ("h -> h @ t : W", Edge("h", "h", 0, "W")),
    ],
)
def test_parse_edge(text, edge):
    assert parse_edge(text) == edge


@pytest.mark.parametrize("text", ["x => h", "x -> h @ t*1", "x -> h : 1W", "-> h", "x -> h @ 1"])
def test_parse_edge_rejects_malformed_text(text):
    with pytest.raises(ValueError, match="SRC -> DST"):
        parse_edge(text)


def test_edge_describe_and_parse_agree_for_every_preset():
    for factory in VARIANTS.values():
        for e in factory().edges:
            text = e.describe() + (f" : {e.weight}" if e.weight else "")
            assert parse_edge(text) == e


def test_params_round_trip_exactly():
    graph = presets.gru(2, 3)
    params = unroll.init_params(graph, seed=4)
    params["b_hn"][0] = 1 / 3
    loaded = parse_toml(to_toml(graph, params))
    assert loaded.graph == graph
    assert sorted(loaded.params) == sorted(params)
    for name, value in params.items():
        assert loaded.params[name].shape == value.shape
        assert np.array_equal(loaded.params[name], value)


# ---- errors name the file, the line and the problem ---------------------------------------


def test_toml_syntax_error_names_the_line():
    text = ELMAN.replace("size = 4, activation", "size = 4 activation")
    message = fail_message(text)
    assert message.startswith(f"model.toml, line {line_of(text, 'size = 4 activation')}: ")
    assert "invalid TOML" in message
    assert "(at line" not in message


def test_toml_error_at_end_of_document_names_the_last_line():
    text = ELMAN + "oops = "
    assert fail_message(text).startswith(f"model.toml, line {len(text.splitlines())}: ")


def test_unknown_node_kind_suggests_the_closest():
    text = ELMAN.replace('kind = "layer"', 'kind = "layr"')
    message = fail_message(text)
    assert message.startswith(f"model.toml, line {line_of(text, 'layr')}: node 'h': ")
    assert "unknown node kind 'layr' (did you mean 'layer'?)" in message


def test_unknown_activation_suggests_the_closest():
    text = ELMAN.replace('"tanh"', '"tahn"')
    message = fail_message(text)
    assert message.startswith(f"model.toml, line {line_of(text, 'tahn')}: node 'h': ")
    assert "unknown activation 'tahn' (did you mean 'tanh'?)" in message


def test_edge_to_a_missing_node_names_the_edge_line():
    text = ELMAN.replace('"h -> h @ t-1 : W_hh"', '"h -> q @ t-1 : W_hh"')
    message = fail_message(text)
    assert message == (
        f"model.toml, line {line_of(text, 'h -> q')}: edge \"h -> q @ t-1\": unknown node 'q'"
    )


def test_edge_in_table_form_to_a_missing_node_names_its_header_line():
    text = (
        ELMAN.split("edges")[0] + "\n[nodes]\nx = { kind = 'input', size = 1 }\n"
        "h = { kind = 'layer', size = 1 }\n\n[[edges]]\nfrom = 'x'\nto = 'h'\n\n"
        "[[edges]]\nfrom = 'hh'\nto = 'h'\ndelay = 1\n"
    )
    message = fail_message(text)
    headers = [i for i, line in enumerate(text.splitlines(), 1) if line == "[[edges]]"]
    assert message.startswith(f"model.toml, line {headers[1]}: ")
    assert "unknown node 'hh' (did you mean 'h'?)" in message


def test_size_mismatch_names_the_edge_line():
    text = ELMAN.replace('"x -> h : W_ih"', '"x -> h"')
    message = fail_message(text)
    assert message.startswith(f'model.toml, line {line_of(text, "x -> h")}: edge "x -> h": ')
    assert "identity edge needs equal sizes, got 3 -> 4" in message


def test_tied_weight_shape_mismatch_names_the_edge_line():
    text = ELMAN.replace('"h -> h @ t-1 : W_hh"', '"h -> h @ t-1 : W_ih"')
    message = fail_message(text)
    assert message.startswith(f"model.toml, line {line_of(text, 'h -> h @ t-1')}: ")
    assert "weight 'W_ih'" in message


def test_algebraic_loop_names_an_edge_of_the_loop():
    text = ELMAN.replace("@ t-1 ", "")
    message = fail_message(text)
    assert message.startswith(f"model.toml, line {line_of(text, 'h -> h : W_hh')}: ")
    assert "algebraic loop: h -> h has total delay 0" in message


def test_node_arity_error_names_the_node_line():
    text = ELMAN.replace("h = {", 'lonely = { kind = "add", size = 4 }\nh = {')
    message = fail_message(text)
    assert message.startswith(f"model.toml, line {line_of(text, 'lonely')}: node 'lonely'")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('activation = "tanh"', 'activaton = "tanh"'),
            "unknown field 'activaton' (did you mean 'activation'?)",
        ),
        (('kind = "layer", ', ""), "node 'h': missing 'kind'"),
        (("size = 4", "size = 0"), "size must be a positive integer, got 0"),
        (('"b"', "1"), "biases must be a list of names"),
        (('kind = "layer"', "kind = 1"), "node 'h': kind must be a string, got 1"),
        (('activation = "tanh"', 'activation = ["tanh"]'), "activation must be a string"),
        (("size = 4", "size = 4.0"), "size must be a positive integer, got 4.0"),
        (("h = {", "h-1 = {"), "node name 'h-1' must be a letter"),
        (
            ('name = "tiny"', 'name = "tiny"\nnode = 1'),
            "unknown top-level key 'node' (did you mean 'nodes'?)",
        ),
        (('"x -> h : W_ih"', '"x -> h : W_ih", 3'), "must be a string or a table"),
        (('"x -> h : W_ih"', '"x => h"'), "is not of the form"),
        (
            ('"x -> h : W_ih"', '{ from = "x", too = "h" }'),
            "unknown field 'too' (did you mean 'to'?)",
        ),
        (('name = "tiny"', 'name = "tiny"\noutputs = ["y"]'), "output 'y': unknown node"),
    ],
)
def test_bad_model_files_name_the_fault(change, expected):
    text = ELMAN.replace(*change)
    message = fail_message(text)
    assert expected in message
    assert re.match(r"model\.toml, line \d+: ", message)


def test_top_level_key_written_after_nodes_is_explained():
    text = ELMAN.replace('name = "tiny"', "") + 'outputs = ["h"]\n'
    message = fail_message(text)
    assert "'outputs' sits inside [nodes]" in message
    assert message.startswith(f"model.toml, line {len(text.splitlines())}: ")


def test_missing_nodes_table():
    assert "no nodes" in fail_message('name = "empty"\n')


def test_bad_params_name_the_fault():
    graph = presets.neuron()
    params = unroll.init_params(graph)
    text = to_toml(graph, params)
    wrong_shape = text.replace("W_hh = [\n    [", "W_hh = [\n    [0.5, ")
    assert "'W_hh' has shape 1x2, the graph needs 1x1" in fail_message(wrong_shape)
    unknown = text.replace("W_hh = ", "W_hhh = ")
    message = fail_message(unknown)
    assert "unknown parameter 'W_hhh' (did you mean 'W_hh'?)" in message
    assert message.startswith(f"model.toml, line {line_of(unknown, 'W_hhh')}: ")
    missing = "\n".join(line for line in text.splitlines() if not line.startswith("b_ih"))
    assert "params: missing b_ih" in fail_message(missing)


def test_unreadable_encoding(tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes(b"name = '\xe9'\n")
    with pytest.raises(ModelFileError, match=r"latin\.toml: not UTF-8"):
        load_toml(path)


def test_missing_file_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_toml(tmp_path / "nope.toml")


# ---- the unrolled DAG as a graph -----------------------------------------------------------


@pytest.mark.parametrize("name", ["elman_output", "lstm", "gru", "stacked_gru_bi", "jordan"])
def test_unrolled_graph_computes_what_bptt_computes(name):
    graph = VARIANTS[name]()
    steps, batch = 4, 2
    unrolled = unroll.unroll(graph, steps)
    flat = unrolled_as_graph(unrolled)
    assert all(e.delay == 0 for e in flat.edges)
    params = unroll.init_params(graph, seed=1)
    assert flat.params() == graph.params()  # same names: the weights stay tied
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(steps, batch, graph.nodes["x"].size))
    cots = {
        inst: rng.normal(size=(batch, graph.nodes[inst[0]].size))
        for inst in unrolled.loss_instances
    }
    reference = unroll.bptt(unrolled, params, {"x": xs}, cots)

    one = unroll.unroll(flat, 1)
    inputs = {f"x_t{t}": xs[t : t + 1] for t in range(steps)}
    inputs.update(
        {
            n: np.zeros((1, batch, flat.nodes[n].size))
            for n in flat.input_nodes()
            if not n.startswith("x_t")
        }
    )
    flat_cots = {(f"{n}_t{t}", 0): c for (n, t), c in cots.items()}
    result = unroll.bptt(one, params, inputs, flat_cots)
    for n, t in unrolled.order:
        np.testing.assert_allclose(
            result.values[(f"{n}_t{t}", 0)], reference.values[(n, t)], rtol=1e-12, atol=1e-14
        )
    for p, grad in reference.param_grads.items():
        np.testing.assert_allclose(result.param_grads[p], grad, rtol=1e-10, atol=1e-14)


def test_unrolled_graph_names_boundaries_and_round_trips_through_toml():
    unrolled = unroll.unroll(presets.bidirectional("elman", 2, 3), 3)
    flat = unrolled_as_graph(unrolled)
    assert {"h_tm1", "h_reverse_t3"} <= set(flat.input_nodes())
    assert parse_toml(to_toml(unrolled)).graph == flat


# ---- JSON and GraphML ---------------------------------------------------------------------


def _check_node_link(doc):
    ids = [n["id"] for n in doc["nodes"]]
    assert len(ids) == len(set(ids))
    assert all(e["source"] in ids and e["target"] in ids for e in doc["edges"])
    assert set(doc["outputs"]) <= set(ids)
    for n in doc["nodes"]:
        assert set(n) == {
            "id", "name", "step", "kind", "size", "activation", "biases", "gate", "params"
        }  # fmt: skip
    for e in doc["edges"]:
        assert set(e) == {"source", "target", "delay", "weight"}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_json_folded_document_matches_the_graph(name):
    graph = VARIANTS[name]()
    doc = json.loads(to_json(graph))
    assert doc["schema"] == JSON_SCHEMA and doc["view"] == "folded"
    assert doc["name"] == graph.name and doc["steps"] is None and doc["mode"] is None
    _check_node_link(doc)
    assert [n["id"] for n in doc["nodes"]] == list(graph.nodes)
    assert [
        Edge(e["source"], e["target"], e["delay"], e["weight"]) for e in doc["edges"]
    ] == graph.edges
    assert doc["outputs"] == graph.output_nodes()
    assert {k: tuple(v) for k, v in doc["params"].items()} == graph.params()


@pytest.mark.parametrize("mode", ["synced", "many-to-one", "one-to-many"])
def test_json_unrolled_document_matches_the_dag(mode):
    unrolled = unroll.unroll(presets.lstm(2, 3), 4, mode)
    text = to_json(unrolled)
    doc = json.loads(text)
    assert doc["view"] == "unrolled" and doc["steps"] == 4 and doc["mode"] == mode
    _check_node_link(doc)
    dag = unrolled.dag
    to_id = {f"{n}@{t}": (n, t) for n, t in dag.nodes}
    assert {to_id[n["id"]] for n in doc["nodes"]} == set(dag.nodes)
    assert {(to_id[e["source"]], to_id[e["target"]]) for e in doc["edges"]} == set(dag.edges)
    kinds = {to_id[n["id"]]: n["kind"] for n in doc["nodes"]}
    assert all(kinds[n] == data["kind"] for n, data in dag.nodes(data=True))
    assert doc["outputs"] == [f"{n}@{t}" for n, t in unrolled.loss_instances]
    assert to_json(unroll.unroll(presets.lstm(2, 3), 4, mode)) == text  # byte-stable


@pytest.mark.parametrize("view", ["folded", "unrolled"])
def test_graphml_has_string_attributes_and_the_same_structure(view, tmp_path):
    graph = presets.gru(2, 3)
    obj = graph if view == "folded" else unroll.unroll(graph, 3)
    path = tmp_path / "g.graphml"
    path.write_text(to_graphml(obj))
    assert 'attr.type="string"' in path.read_text()
    assert re.search(r'attr\.type="(?!string)', path.read_text()) is None
    read = nx.read_graphml(path, force_multigraph=True)
    doc = json.loads(to_json(obj))
    assert list(read.nodes) == [n["id"] for n in doc["nodes"]]
    assert sorted((u, v, d["delay"], d["weight"]) for u, v, d in read.edges(data=True)) == sorted(
        (e["source"], e["target"], str(e["delay"]), e["weight"] or "") for e in doc["edges"]
    )
    assert all(isinstance(v, str) for _, d in read.nodes(data=True) for v in d.values())


def test_export_dispatches_and_rejects_unknown_formats():
    graph = presets.elman()
    assert export(graph, "toml") == to_toml(graph)
    assert export(graph, "json") == to_json(graph)
    with pytest.raises(unroll.UnrollError, match="did you mean 'json'"):
        export(graph, "jsn")


# ---- atomic writes -------------------------------------------------------------------------


def test_atomic_write_writes_text_and_bytes(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write(target, "ünïcode\n")
    assert target.read_text(encoding="utf-8") == "ünïcode\n"
    atomic_write(str(target), b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert os.listdir(tmp_path) == ["out.txt"]


@pytest.mark.parametrize("fail_at", ["fsync", "replace"])
@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_atomic_write_interrupted_leaves_the_old_file_and_no_temporary(
    tmp_path, monkeypatch, fail_at, error
):
    target = tmp_path / "model.toml"
    target.write_text("old contents\n")

    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(os, fail_at, broken)
    with pytest.raises(type(error)):
        atomic_write(target, "new contents that never land\n")
    monkeypatch.undo()
    assert target.read_text() == "old contents\n"
    assert os.listdir(tmp_path) == ["model.toml"]


def test_atomic_write_interrupted_leaves_no_new_file(tmp_path, monkeypatch):
    def broken(fd):
        raise OSError("I/O error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="I/O error"):
        atomic_write(tmp_path / "new.svg", b"<svg/>")
    assert os.listdir(tmp_path) == []


def test_atomic_write_keeps_permissions_and_fails_on_a_missing_folder(tmp_path):
    target = tmp_path / "script.sh"
    target.write_text("old")
    target.chmod(0o751)
    atomic_write(target, "new")
    assert target.stat().st_mode & 0o777 == 0o751
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "missing" / "x.txt", "data")
