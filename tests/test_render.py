"""Rendering: DOT snapshots, structure of folded and unrolled diagrams, overlays, files."""

from __future__ import annotations

import itertools
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import graphviz
import numpy as np
import pytest

import unroll
from unroll import presets
from unroll.errors import UnrollError
from unroll.render import RenderError, render, save
from unroll.render import output as output_module
from unroll.render.overlay import COLOUR_MAP, colour_at, format_log10
from unroll.render.structure import plan
from unroll.render.unrolled import window

SNAPSHOTS = Path(__file__).parent / "snapshots" / "render"
UPDATE = os.environ.get("UNROLL_UPDATE_SNAPSHOTS") == "1"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is missing")


# ---- a small reader of the DOT text graphviz writes ------------------------------------------

_ID = r'"(?:[^"\\]|\\.)*"|[\w.]+'
_LINE = re.compile(rf"^\s*(?P<a>{_ID})(?:\s*->\s*(?P<b>{_ID}))?\s*\[(?P<attrs>.*)\]\s*$")


def _unquote(s: str) -> str:
    return s[1:-1].replace('\\"', '"') if s.startswith('"') else s


def _attrs(text: str) -> dict[str, str]:
    """Parse ``k=v k="v" k=<html>`` as graphviz writes them."""
    out, i = {}, 0
    while i < len(text):
        m = re.compile(r"\s*([\w]+)=").match(text, i)
        if not m:
            break
        key, i = m.group(1), m.end()
        if text[i] == "<":
            depth, j = 0, i
            while True:
                depth += {"<": 1, ">": -1}.get(text[j], 0)
                j += 1
                if depth == 0:
                    break
            out[key], i = text[i + 1 : j - 1], j
        elif text[i] == '"':
            j = i + 1
            while text[j] != '"' or text[j - 1] == "\\":
                j += 1
            out[key], i = _unquote(text[i : j + 1]), j + 1
        else:
            m = re.compile(r"[^\s]+").match(text, i)
            out[key], i = m.group(0), m.end()
    return out


class Dot:
    """Nodes (with their cluster), edges and clusters of a rendered diagram."""

    def __init__(self, source: str):
        self.nodes: dict[str, dict[str, str]] = {}
        self.cluster_of: dict[str, str] = {}
        self.edges: list[tuple[str, str, dict[str, str]]] = []
        self.clusters: list[str] = []
        stack: list[str | None] = []
        for line in source.splitlines():
            if m := re.match(r"^\s*subgraph (cluster_\w+) \{", line):
                stack.append(m.group(1))
                self.clusters.append(m.group(1))
            elif re.match(r"^\s*\{\s*$", line):
                stack.append(None)
            elif re.match(r"^\s*\}\s*$", line) and stack:
                stack.pop()
            elif (m := _LINE.match(line)) and not line.strip().startswith(
                ("graph ", "node ", "edge ")
            ):
                a, attrs = _unquote(m.group("a")), _attrs(m.group("attrs"))
                if m.group("b"):
                    self.edges.append((a, _unquote(m.group("b")), attrs))
                else:
                    self.nodes[a] = attrs
                    cluster = next((c for c in reversed(stack) if c), None)
                    if cluster:
                        self.cluster_of[a] = cluster

    def visible_edges(self):
        return [(a, b, at) for a, b, at in self.edges if at.get("style") != "invis"]

    def dag_edges(self) -> set[tuple[str, str]]:
        """The edges drawn between node copies, read in data direction, junctions resolved."""
        stub_source = {}
        drawn = []
        for a, b, at in self.visible_edges():
            if at.get("dir") == "none":  # junction -> the state it fans out
                stub_source[a] = b
            else:
                drawn.append((b, a) if at.get("dir") == "back" else (a, b))
        return {(stub_source.get(a, a), b) for a, b in drawn if "loss" not in (a, b)}


def dag_ids(u) -> set[tuple[str, str]]:
    from unroll.render.style import dot_id

    return {(dot_id(*a), dot_id(*b)) for a, b in u.dag.edges}


def grads_of(graph, steps, seed=0, batch=1, **kw):
    u = unroll.unroll(graph, steps)
    params = unroll.init_params(graph, seed=seed)
    rng = np.random.default_rng(seed)
    xs = {n: rng.normal(size=(steps, batch, graph.nodes[n].size)) for n in graph.input_nodes()}
    out = graph.output_nodes()[0]
    cot = {(out, steps - 1): np.ones((batch, graph.nodes[out].size))}
    return unroll.bptt(u, params, xs, cot, **kw)


# ---- snapshots ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("neuron_folded", lambda: render(presets.neuron())),
        ("neuron_unrolled3", lambda: render(unroll.unroll(presets.neuron(), 3), layout="dot")),
    ],
)
def test_dot_source_matches_its_snapshot(name, make):
    """Regenerate deliberately: UNROLL_UPDATE_SNAPSHOTS=1 pytest tests/test_render.py."""
    path = SNAPSHOTS / f"{name}.dot"
    source = make().source
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    assert path.exists(), f"missing snapshot {path}; create it with UNROLL_UPDATE_SNAPSHOTS=1"
    assert source == path.read_text(encoding="utf-8")


def test_the_same_input_gives_the_same_bytes_in_another_process():
    code = (
        "import unroll; from unroll.render import render; "
        "print(render(unroll.unroll(unroll.presets.stacked('gru', layers=2, "
        "bidirectional=True), 3), highlight='recurrent').source)"
    )
    env = {**os.environ, "PYTHONHASHSEED": str(hash("seed") % 1000 + 1)}  # not this process's
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout
    graph = presets.stacked("gru", layers=2, bidirectional=True)
    here = render(unroll.unroll(graph, 3), highlight="recurrent").source
    assert there == here + "\n"
    assert render(unroll.unroll(graph, 3), highlight="recurrent").source == here


# ---- folded view ----------------------------------------------------------------------------


def test_folded_lstm_draws_kinds_gates_symbols_and_delay_loops():
    g = presets.lstm(3, 8)
    d = Dot(render(g).source)
    assert set(g.nodes) <= set(d.nodes)
    fills = {n: d.nodes[n]["fillcolor"] for n in ("i", "f", "g", "o")}
    assert len(set(fills.values())) == 4  # the four gates read apart
    assert "σ(W_if x + W_hf h(t−1) + b)" in d.nodes["f"]["label"]
    assert "[8]" in d.nodes["f"]["label"] and "[3]" in d.nodes["x"]["label"]
    assert d.nodes["f_c"]["shape"] == "circle" and "×" in d.nodes["f_c"]["label"]
    assert d.nodes["c"]["shape"] == "circle" and "+" in d.nodes["c"]["label"]
    delayed = [(a, b, at) for a, b, at in d.edges if at.get("label") == "t−1"]
    # c -> f_c is a loop labelled t−1; h fans out to the four gates through one junction
    assert ("c", "f_c") in {(a, b) for a, b, _ in delayed}
    junction = [a for a, b, at in delayed if at.get("dir") == "none" and b == "h"]
    assert len(junction) == 1
    assert {b for a, b, _ in d.edges if a == junction[0]} == {"h", "i", "f", "g", "o"}


def test_folded_gru_shows_one_minus_and_reverse_delays_read_the_future():
    d = Dot(render(presets.gru()).source)
    assert "1−" in d.nodes["one_minus_z"]["label"]
    b = Dot(render(presets.bidirectional("elman", 2, 3)).source)
    labels = {(a, c): at.get("label") for a, c, at in b.edges}
    assert labels[("h", "h")] == "W_hh (t−1)"
    assert labels[("h_reverse", "h_reverse")] == "W_hh_reverse (t+1)"
    assert "⧺" in b.nodes["y"]["label"]


def test_folded_cell_detail_draws_one_box_per_cell_with_its_state_loops():
    d = Dot(render(presets.lstm(), detail="cell").source)
    assert set(d.nodes) == {"x", "h"}
    assert "LSTM cell" in d.nodes["h"]["label"]
    loops = sorted(at["label"] for a, b, at in d.edges if a == b == "h")
    assert loops == ["c (t−1)", "h (t−1)"]


# ---- unrolled view --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "graph",
    [
        presets.neuron(),
        presets.elman(3, 4, output_size=2),
        presets.lstm(3, 4),
        presets.gru(3, 4),
        presets.jordan(),
        presets.bidirectional("lstm", 2, 3),
        presets.stacked("gru", 2, 3, 2),
    ],
    ids=lambda g: g.name,
)
def test_unrolled_op_diagram_draws_exactly_the_dag(graph):
    T = 4
    u = unroll.unroll(graph, T)
    d = Dot(render(u).source)
    assert d.dag_edges() == dag_ids(u)
    clusters = [c for c in d.clusters if c.startswith("cluster_step")]
    assert clusters == [f"cluster_step{t}" for t in range(T)]
    for name, t in u.order:
        assert d.cluster_of[f"{name}_{t}"] == f"cluster_step{t}"
    for name, t in u.boundary:
        nid = f"{name}_m{-t}" if t < 0 else f"{name}_{t}"
        assert d.cluster_of[nid] == ("cluster_initial" if t < 0 else "cluster_final")


def test_steps_are_labelled_from_one_and_say_their_api_index():
    source = render(unroll.unroll(presets.elman(), 3)).source
    for t in range(3):
        block = source.split(f"subgraph cluster_step{t} {{")[1].split("\n\t}")[0]
        assert f"<B>step {t + 1}</B>" in block and f"(t={t})" in block


def test_every_copy_of_a_node_names_the_same_tied_weights():
    T = 3
    g = presets.lstm(3, 4)
    d = Dot(render(unroll.unroll(g, T)).source)
    for name in g.nodes:
        labels = {d.nodes[f"{name}_{t}"]["label"] for t in range(T)}
        assert len(labels) == T  # each copy indexed by its step ...
        labels = {re.sub(r"<SUB>\d+</SUB>", "", label) for label in labels}
        assert len(labels) == 1  # ... and otherwise the same
        label = labels.pop()
        assert all(e.weight in label for e in g.in_edges(name) if e.weight)
    e = Dot(render(unroll.unroll(presets.elman(), 4)).source)
    recurrent = [
        at.get("label") for a, b, at in e.edges if b.startswith("h_") and a.startswith("h_")
    ]
    assert recurrent == ["W_hh"] * 4  # h0 -> h1 and the three between steps


def test_rows_are_shared_across_steps():
    T = 3
    u = unroll.unroll(presets.lstm(), T)
    source = render(u, layout="dot").source
    groups = re.findall(r"\{\n\t\trank=same\n((?:\t\t\S+\n)+)\t\}", source)
    rows = [set(g.split()) for g in groups]
    p = plan(u.graph)
    for name in u.graph.nodes:
        row = next(r for r in rows if f"{name}_0" in r)
        assert {f"{name}_{t}" for t in range(T)} <= row
        assert all(f"{m}_0" in row for m in u.graph.nodes if p.row[m] == p.row[name])
    assert next(r for r in rows if "h_0" in r) >= {"h_m1"}


def test_initial_states_stand_before_the_first_step_and_final_ones_after_the_last():
    T = 4
    d = Dot(render(unroll.unroll(presets.bidirectional("elman", 2, 3), T), layout="dot").source)
    assert d.cluster_of["h_m1"] == "cluster_initial"
    assert d.cluster_of[f"h_reverse_{T}"] == "cluster_final"
    assert "h<SUB>0</SUB>" in d.nodes["h_m1"]["label"]
    assert "h_reverse<SUB>5</SUB>" in d.nodes["h_reverse_4"]["label"]
    axis = [b for a, b, _ in d.edges if a == "time_axis"]
    assert axis == ["initial", *[f"step{t}" for t in range(T)], "final"]
    flipped = Dot(render(unroll.unroll(presets.elman(), T), direction="TB", layout="dot").source)
    assert [b for a, b, _ in flipped.edges if a == "time_axis"] == [
        *[f"step{t}" for t in reversed(range(T))],
        "initial",
    ]


def test_cell_detail_draws_one_box_per_step_and_the_states_between():
    T = 3
    d = Dot(render(unroll.unroll(presets.lstm(3, 4), T), detail="cell").source)
    cells = [n for n in d.nodes if re.fullmatch(r"h_\d", n)]
    assert cells == [f"h_{t}" for t in range(T)]
    assert all("LSTM cell" in d.nodes[c]["label"] for c in cells)
    between = sorted(at["label"] for a, b, at in d.edges if (a, b) == ("h_0", "h_1"))
    assert between == ["c", "h"]
    assert "c<SUB>0</SUB>, h<SUB>0</SUB>" in d.nodes["h_m1"]["label"]
    assert sorted(at["label"] for a, b, at in d.edges if (a, b) == ("h_m1", "h_0")) == ["c", "h"]


def test_loss_node_is_attached_where_the_sequence_mode_puts_losses():
    g = presets.elman(2, 3, output_size=2)
    for mode, steps in [("synced", [0, 1, 2, 3]), ("many-to-one", [3]), ("many-to-many", [2, 3])]:
        d = Dot(render(unroll.unroll(g, 4, mode=mode)).source)
        assert sorted(a for a, b, _ in d.edges if b == "loss") == [f"y_{t}" for t in steps]
    one_to_many = Dot(render(unroll.unroll(g, 4, mode="one-to-many")).source)
    assert [n for n in one_to_many.nodes if n.startswith("x_")] == ["x_0"]


# ---- elision and limits ---------------------------------------------------------------------


def test_long_sequences_are_elided_to_first_and_last_steps():
    u = unroll.unroll(presets.elman(), 50)
    d = Dot(render(u).source)
    steps = [c for c in d.clusters if c.startswith("cluster_step")]
    assert steps == [
        "cluster_step0",
        "cluster_step1",
        "cluster_step2",
        "cluster_step48",
        "cluster_step49",
    ]
    assert "⋯ 45 steps ⋯" in d.nodes["elided"]["label"]
    assert d.cluster_of["elided"] == "cluster_hidden"
    into = {a for a, b, _ in d.visible_edges() if b == "elided"}
    out = {b for a, b, _ in d.visible_edges() if a == "elided"}
    assert into == {"h_2"} and out == {"h_48", "loss"}
    assert len(Dot(render(u, full=True).source).clusters) == 51  # 50 steps + initial
    assert [
        c
        for c in Dot(render(u, steps_shown=(1, 1)).source).clusters
        if c.startswith("cluster_step")
    ] == ["cluster_step0", "cluster_step49"]
    assert "elided" not in Dot(render(unroll.unroll(presets.elman(), 8)).source).nodes


def test_window_splits_and_checks_steps_shown():
    assert window(9).shown() == [0, 1, 2, 7, 8]
    assert window(100, steps_shown=4).shown() == [0, 1, 98, 99]
    assert window(5, steps_shown=(3, 2)).hidden == 0
    for bad in (0, (1,), (-1, 2), "3", True):
        with pytest.raises(RenderError, match="steps_shown"):
            window(50, steps_shown=bad)


def test_elided_bidirectional_lstm_routes_both_directions_through_the_gap():
    u = unroll.unroll(presets.bidirectional("lstm", 2, 3), 30)
    d = Dot(render(u).source)
    drawn = d.dag_edges()
    forward = {("h_2", "elided"), ("c_2", "elided"), ("elided", "i_28"), ("elided", "f_c_28")}
    backward = {
        ("elided", "i_reverse_2"),
        ("elided", "f_c_reverse_2"),
        ("h_reverse_28", "elided"),
        ("c_reverse_28", "elided"),
    }
    assert forward | backward <= drawn
    shown = {0, 1, 2, 28, 29}
    for a, b in dag_ids(u):
        ta, tb = (int(x.rsplit("_", 1)[1].replace("m", "-")) for x in (a, b))
        if ta in shown | {-1, 30} and tb in shown:
            assert (a, b) in drawn
    # a junction fans out one state only: h_reverse's, not c_reverse's
    junctions = {a for a, b, at in d.visible_edges() if b == "elided" and at.get("dir") == "none"}
    fanned = sorted(sorted(b for a, b, _ in d.visible_edges() if a == j) for j in junctions)
    assert fanned == [
        ["elided", "f_28", "g_28", "i_28", "o_28"],
        ["elided", "f_reverse_2", "g_reverse_2", "i_reverse_2", "o_reverse_2"],
    ]


def test_an_elided_view_looks_only_at_the_steps_it_draws(monkeypatch):
    calls = []
    original = unroll.Unrolled.sources

    def counting(self, inst):
        calls.append(inst[1])
        return original(self, inst)

    monkeypatch.setattr(unroll.Unrolled, "sources", counting)
    monkeypatch.setattr(unroll.Unrolled, "dag", property(lambda self: pytest.fail("dag built")))
    for steps in (20, 5000):
        calls.clear()
        u = unroll.unroll(presets.lstm(3, 4), steps)
        calls.clear()
        nodes = Dot(render(u).source).nodes
        assert {t for t in calls} <= {0, 1, 2, 3, steps - 3, steps - 2, steps - 1}
        assert len(nodes) == len(Dot(render(unroll.unroll(presets.lstm(3, 4), 20)).source).nodes)


def test_too_many_nodes_is_refused_with_a_one_line_message():
    u = unroll.unroll(presets.lstm(), 1000)
    with pytest.raises(RenderError) as err:
        render(u, full=True)
    message = str(err.value)
    assert "\n" not in message and "max_nodes=2000" in message and "full=False" in message
    assert isinstance(err.value, UnrollError)
    render(u)  # elided: fine
    with pytest.raises(RenderError, match="max_nodes=5"):  # the folded view
        render(presets.lstm(), max_nodes=5)


# ---- highlights -----------------------------------------------------------------------------


def test_cell_state_highlight_marks_the_highway_and_dims_the_rest():
    T = 3
    d = Dot(render(unroll.unroll(presets.lstm(), T), highlight="cell_state").source)
    thick = {(a, b) for a, b, at in d.visible_edges() if at.get("penwidth") == "3"}
    expected = {
        ("f_c_0", "c_0"),
        ("f_c_1", "c_1"),
        ("f_c_2", "c_2"),
        ("c_m1", "f_c_0"),
        ("c_0", "f_c_1"),
        ("c_1", "f_c_2"),
    }
    normalised = {(b, a) if (b, a) in expected else (a, b) for a, b in thick}
    assert normalised == expected
    others = [
        at
        for a, b, at in d.visible_edges()
        if (a, b) not in thick and b != "loss" and (b, a) not in thick
    ]
    assert others and all(at["color"] == "#bbbbbb" for at in others)
    with pytest.raises(RenderError, match="cell-state path"):
        render(presets.elman(), highlight="cell_state")


def test_recurrent_highlight_marks_the_cycle_and_not_the_inputs():
    d = Dot(render(presets.gru(), highlight="recurrent").source)
    colour = {(a, b): at.get("color") for a, b, at in d.edges}
    assert colour[("old_part", "h")] == colour[("z", "old_part")] != colour[("x", "z")]


# ---- overlays -------------------------------------------------------------------------------


def test_grad_colours_grow_darker_with_the_gradient_norm():
    T = 8
    r = grads_of(presets.elman(3, 4), T)
    d = Dot(render(r).source)
    logs = r.log10_grad_norms("h")
    fills = [
        re.findall(r'BGCOLOR="(#[0-9a-f]{6})"', d.nodes[f"h_{t}"]["label"])[-1] for t in range(T)
    ]

    def luminance(c):
        return 0.299 * int(c[1:3], 16) + 0.587 * int(c[3:5], 16) + 0.114 * int(c[5:7], 16)

    order = np.argsort(logs)
    lums = [luminance(fills[i]) for i in order]
    assert all(a >= b for a, b in itertools.pairwise(lums))
    assert lums[0] > lums[-1]
    drawn = [
        *r.log10_grad_norms("h"),
        *r.log10_grad_norms("x"),
        math.log10(np.linalg.norm(r.node_grads[("h", -1)])),
    ]
    lo, hi = math.floor(min(drawn)), math.ceil(max(drawn))
    assert f"‖dL/dv‖ per node copy, log10: {lo} … {hi}" in render(r).source


def test_the_colour_map_is_monotone_from_pale_to_dark():
    def luminance(c):
        return 0.299 * int(c[1:3], 16) + 0.587 * int(c[3:5], 16) + 0.114 * int(c[5:7], 16)

    lums = [luminance(colour_at(p)) for p in np.linspace(0, 1, 101)]
    assert all(a > b for a, b in itertools.pairwise(lums))
    assert colour_at(0) == COLOUR_MAP[0] and colour_at(1) == COLOUR_MAP[-1]


def test_value_records_list_small_nodes_and_give_norms_of_large_ones():
    r = grads_of(presets.neuron(), 3)
    d = Dot(render(r, values=True).source)
    label = d.nodes["h_1"]["label"]
    assert f"{float(r.values[('h', 1)][0, 0]):.4g}" in label
    assert f"{float(r.node_grads[('h', 1)][0, 0]):.4g}" in label
    big = grads_of(presets.elman(3, 8), 3)
    label = Dot(render(big, values=True).source).nodes["h_1"]["label"]
    assert f"‖·‖ {np.linalg.norm(big.values[('h', 1)]):.4g}" in label


def test_gradients_below_float_range_are_written_from_the_exact_log():
    g = presets.neuron(activation="identity", bias=False)
    T = 150
    u = unroll.unroll(g, T)
    params = {"W_ih": np.ones((1, 1)), "W_hh": np.full((1, 1), 1e-3)}
    r = unroll.bptt(u, params, {"x": np.ones((T, 1, 1))}, {("h", T - 1): np.ones((1, 1))})
    assert r.node_grads[("h", 0)][0, 0] == 0.0  # 1e-447 underflows in float64 ...
    label = Dot(render(r, values=True).source).nodes["h_0"]["label"]
    assert "‖·‖ 1e-447" in label  # ... but the exact log knows it
    assert format_log10(-447.0) == "1e-447" and format_log10(math.log10(0.25)) == "0.25"
    assert format_log10(-400.5) == "3.162e-401"


def test_overlays_need_a_matching_result():
    u = unroll.unroll(presets.neuron(), 3)
    with pytest.raises(RenderError, match="result"):
        render(u, values=True)
    with pytest.raises(RenderError, match="unrolled view"):
        render(presets.neuron(), grads=True)
    other = grads_of(presets.neuron(), 3)
    with pytest.raises(RenderError, match="another unrolled graph"):
        render(u, result=other)


def test_loss_node_shows_the_loss_value_and_is_left_out_for_cotangents():
    g = presets.elman(2, 3, output_size=2)
    u = unroll.unroll(g, 3)
    xs = np.random.default_rng(0).normal(size=(3, 1, 2))
    r = unroll.bptt(u, unroll.init_params(g), {"x": xs}, loss="sum")
    assert f"L = {r.loss:.4g}" in Dot(render(r).source).nodes["loss"]["label"]
    assert "loss" not in Dot(render(grads_of(g, 3)).source).nodes


@pytest.mark.parametrize(
    "option", [{"detail": "gate"}, {"direction": "RL"}, {"highlight": "everything"}]
)
def test_unknown_options_name_the_known_ones(option):
    with pytest.raises(RenderError, match="known"):
        render(unroll.unroll(presets.neuron(), 2), **option)
    with pytest.raises(RenderError, match="Graph, an Unrolled"):
        render("lstm")


# ---- files ----------------------------------------------------------------------------------


def test_save_writes_dot_by_suffix_without_the_dot_program(tmp_path, monkeypatch):
    monkeypatch.setattr(output_module.shutil, "which", lambda name: None)
    d = render(presets.neuron())
    for suffix in (".dot", ".gv"):
        assert save(d, tmp_path / f"n{suffix}").read_text(encoding="utf-8") == d.source
    with pytest.raises(RenderError) as err:
        save(d, tmp_path / "n.png")
    assert "apt-get install graphviz" in str(err.value) and "brew install graphviz" in str(
        err.value
    )
    assert "\n" not in str(err.value)
    assert not (tmp_path / "n.png").exists()
    with pytest.raises(RenderError, match="unknown suffix"):
        save(d, tmp_path / "n.txt")


def test_a_failing_render_leaves_no_file_behind(tmp_path, monkeypatch):
    def broken(self, *args, **kwargs):
        raise graphviz.CalledProcessError(1, ["dot"], stderr=b"Error: syntax error in line 1")

    monkeypatch.setattr(output_module.shutil, "which", lambda name: "/usr/bin/dot")
    monkeypatch.setattr(graphviz.Digraph, "pipe", broken)
    target = tmp_path / "n.svg"
    with pytest.raises(RenderError, match="syntax error"):
        save(render(presets.neuron()), target)
    assert list(tmp_path.iterdir()) == []
    target.write_text("old")
    with pytest.raises(RenderError):
        save(render(presets.neuron()), target)
    assert target.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


@pytest.mark.dot
@needs_dot
@pytest.mark.parametrize("suffix", [".svg", ".png", ".pdf"])
def test_images_render_through_dot(tmp_path, suffix):
    path = save(
        render(unroll.unroll(presets.lstm(3, 4), 3), highlight="cell_state"),
        tmp_path / f"lstm{suffix}",
    )
    head = path.read_bytes()[:8]
    assert {".svg": b"<?xml", ".png": b"\x89PNG", ".pdf": b"%PDF"}[suffix] in head


@pytest.mark.dot
@needs_dot
def test_every_kind_of_diagram_goes_through_dot_cleanly():
    r = grads_of(presets.lstm(2, 3), 4)
    diagrams = [render(r, values=True), render(r, detail="cell", values=True)]
    for make in presets.PRESETS.values():
        g = make()
        diagrams += [render(g), render(g, detail="cell")]
        for detail in ("op", "cell"):
            for direction in ("LR", "TB"):
                diagrams.append(render(unroll.unroll(g, 10), detail=detail, direction=direction))
    for i, d in enumerate(diagrams):
        routed = i % 7 == 0  # edge routing is the slow part: route every 7th in full
        flags = [] if routed else ["-Gsplines=false"]
        done = subprocess.run(
            ["dot", "-Tsvg", "-o", os.devnull, *flags],
            input=d.source,
            text=True,
            capture_output=True,
        )
        assert done.returncode == 0 and not done.stderr, (d.name, done.stderr)


@pytest.mark.dot
@needs_dot
def test_core_objects_display_in_jupyter():
    g = presets.elman()
    u = unroll.unroll(g, 3)
    for obj in (g, u, grads_of(g, 3)):
        bundle = obj._repr_mimebundle_()
        assert bundle["image/svg+xml"].lstrip().startswith("<?xml")


# ---- the pinned layout: every step drawn alike ------------------------------------------------


def _positions(digraph) -> dict[str, tuple[float, float]]:
    """Node centres (points) as graphviz lays the diagram out (``dot -Tjson0``)."""
    import json

    done = subprocess.run(
        ["dot", "-Tjson0", "-Gsplines=false"],  # positions only: no edge routing
        input=digraph.source,
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        o["name"]: tuple(float(v) for v in o["pos"].split(","))
        for o in json.loads(done.stdout)["objects"]
        if "pos" in o
    }


LAYOUT_GRAPHS = {
    "lstm": lambda: presets.lstm(3, 4),
    "gru": lambda: presets.gru(3, 4),
    "stacked": lambda: presets.stacked("lstm", 1, 2, 2),
    "bidirectional": lambda: presets.bidirectional("lstm", 1, 2),
}


@pytest.mark.dot
@needs_dot
@pytest.mark.parametrize("direction", ["LR", "TB"])
@pytest.mark.parametrize("steps", [3, 8])
@pytest.mark.parametrize("name", sorted(LAYOUT_GRAPHS))
def test_every_step_is_the_first_moved_along_time(name, steps, direction):
    g = LAYOUT_GRAPHS[name]()
    pos = _positions(render(unroll.unroll(g, steps), direction=direction))
    across = 0 if direction == "LR" else 1  # the coordinate along a row of one step
    gates = [n for n in g.nodes if g.nodes[n].gate]
    assert gates
    first = sorted(gates, key=lambda n: (pos[f"{n}_0"][1 - across], pos[f"{n}_0"][across]))
    for t in range(steps):
        order = sorted(
            gates, key=lambda n: (pos[f"{n}_t"[:-1] + str(t)][1 - across], pos[f"{n}_{t}"][across])
        )
        assert order == first, (t, order)
        shifts = {
            (
                round(pos[f"{n}_{t}"][0] - pos[f"{n}_0"][0], 1),
                round(pos[f"{n}_{t}"][1] - pos[f"{n}_0"][1], 1),
            )
            for n in g.nodes
            if f"{n}_{t}" in pos and f"{n}_0" in pos
        }
        assert len(shifts) == 1, (t, shifts)  # the whole step moved as one
    for c in (n for n in g.nodes if g.nodes[n].kind == "add" and n.startswith("c")):
        carry = "f_" + c  # f·c(t−1), named f_c, f_c_l0, f_c_reverse
        for t in range(steps):
            assert pos[f"{carry}_{t}"][1 - across] == pos[f"{c}_{t}"][1 - across]
        lines = {pos[f"{c}_{t}"][1 - across] for t in range(steps)}
        wrapped = {pos[f"x_{t}"][1 - across] for t in range(steps)}
        assert len(lines) == len(wrapped)  # one straight line through each line of steps


# ---- captions: true for the picture drawn -------------------------------------------------------


def _caption(digraph) -> str:
    """The title and caption lines of a diagram (its graph label), as plain text."""
    label = re.search(r"label=<(<TABLE.*?</TABLE>)>", digraph.source, flags=re.S)
    return re.sub(r"<[^>]+>", " ", label.group(1)) if label else ""


def test_a_gru_caption_never_mentions_a_cell_state_c():
    g = presets.gru(2, 3)
    u = unroll.unroll(g, 3)
    for d in (
        render(u, highlight="cell_state"),
        render(u, highlight="recurrent"),
        render(u),
        render(g, highlight="cell_state"),
        render(grads_of(g, 3), highlight="cell_state"),
    ):
        words = set(re.findall(r"[\w−]+", _caption(d)))
        assert "c" not in words and "cell-state" not in _caption(d), _caption(d)
    assert "highway of h" in _caption(render(u, highlight="cell_state"))
    assert "highway of c" in _caption(
        render(unroll.unroll(presets.lstm(), 3), highlight="cell_state")
    )


def test_red_edges_are_named_by_what_they_carry():
    assert "carry the states c and h" in _caption(render(unroll.unroll(presets.lstm(), 3)))
    assert "carry the state h to the next step" in _caption(
        render(unroll.unroll(presets.elman(), 3))
    )
    window = unroll.Graph("window")
    window.input("x", 1)
    window.layer("h", 2)
    window.edge("x", "h", weight="W_0")
    window.edge("x", "h", delay=2, weight="W_2")
    caption = _caption(render(unroll.unroll(window, 3)))
    assert "earlier inputs x" in caption and "state" not in caption
    assert "W_2 x(t−2)" in render(window).source  # a delay-2 read says so


def test_overlay_captions_describe_their_colours_not_the_red_edges():
    r = grads_of(presets.elman(2, 3), 4)
    grads = _caption(render(r))
    assert "size of each copy's gradient" in grads and "legend" in grads
    assert "Red edges" not in grads
    values = _caption(render(r, values=True))
    assert "value and grad" in values and "Steps are counted from 1" in values
    plain = _caption(render(r.unrolled))
    assert "Red edges" in plain and "Steps are counted from 1" not in plain  # no values shown


def test_no_caption_leaves_only_the_title_and_the_legend():
    r = grads_of(presets.lstm(2, 3), 12)
    d = render(r, caption=False, title="T")
    assert _caption(d).split()[:1] == ["T"]
    assert not re.search(r"Steps are|Red edges|Colour|elided|In colour", _caption(d))
    assert "log10" in _caption(d)  # the legend is not a caption
    assert _caption(render(r.unrolled, caption=False, title="")) == ""
    assert _caption(render(presets.lstm(), caption=False, title="")) == ""


def test_no_formulas_leaves_names_and_sizes_only():
    d = Dot(render(unroll.unroll(presets.lstm(3, 4), 2), formulas=False).source)
    assert "σ(" not in d.nodes["f_0"]["label"] and "[4]" in d.nodes["f_0"]["label"]
    assert "σ(" in Dot(render(unroll.unroll(presets.lstm(3, 4), 2)).source).nodes["f_0"]["label"]


def test_titles_say_where_the_loss_sits():
    g = presets.elman(2, 3, output_size=2)
    assert "loss at every step" in _caption(render(unroll.unroll(g, 4)))
    assert "loss at step 4" in _caption(render(unroll.unroll(g, 4, mode="many-to-one")))
    enc = unroll.unroll(g, 5, mode="many-to-many", encoder_steps=3)
    assert "loss at steps 4–5" in _caption(render(enc))


def test_labels_are_indexed_by_step_and_name_stacked_layers():
    d = Dot(render(unroll.unroll(presets.stacked("elman", 1, 2, 2), 3)).source)
    assert d.nodes["h_l1_2"]["label"].startswith("<B>h<SUB>3</SUB> ")
    assert "layer 2" in d.nodes["h_l1_2"]["label"] and "layer 1" in d.nodes["h_l0_0"]["label"]
    assert "x<SUB>1</SUB>" in d.nodes["x_0"]["label"]
    assert (
        "h<SUB>0</SUB>" in d.nodes["h_l0_m1"]["label"] and "_l0" not in d.nodes["h_l0_m1"]["label"]
    )
    initial = next(
        c
        for c in re.findall(
            r"subgraph cluster_initial \{.*?\n\t\}",
            render(unroll.unroll(presets.elman(), 2)).source,
            flags=re.S,
        )
    )
    assert "initial state" in initial


@pytest.mark.dot
@needs_dot
def test_wide_diagrams_wrap_onto_lines_and_say_so():
    r = grads_of(presets.lstm(1, 3), 8)
    d = render(r, full=True)
    assert "wrap onto" in _caption(d)
    pos = _positions(d)
    rows = {pos[f"x_{t}"][1] for t in range(8)}
    assert len(rows) > 1  # more than one line of steps
    width = max(x for x, _ in pos.values()) - min(x for x, _ in pos.values())
    assert width < 2000
    assert "wrap onto" not in _caption(render(r, detail="cell", full=True))


# ---- the command line speaks in flags ---------------------------------------------------------

_PYTHON_KEYWORDS = re.compile(r"\b(full|steps_shown|highlight|max_nodes|grad_range)=")


def _cli(*args):
    from click.testing import CliRunner
    from unroll.cli.main import main

    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize(
    "args",
    [
        ["lstm", "--steps", "40"],
        ["lstm", "--steps", "12", "--grads"],
        ["elman:hidden=2", "--steps", "3", "--values"],
        ["lstm", "--steps", "300", "--full", "--max-nodes", "100"],
        ["elman", "--highlight", "cell_state"],
        ["lstm", "--folded", "--grads"],
        ["lstm", "--loss", "mse"],
    ],
)
def test_cli_output_names_flags_never_python_keywords(args):
    done = _cli("render", *args)
    text = done.output + (done.stderr if done.stderr_bytes else "")
    assert not _PYTHON_KEYWORDS.search(text), text
    assert "=True" not in text and "=False" not in text


def test_cli_draws_the_loss_where_it_sits_and_shares_a_colour_scale():
    out = _cli(
        "render", "elman:hidden=2", "--steps", "4", "--grads", "--mode", "many-to-one"
    ).output
    d = Dot(out)
    assert [a for a, b, _ in d.edges if b == "loss"] == ["h_3"]  # the sum of h₄: L = Σ h₄
    assert "L = Σ h<SUB>4</SUB>" in d.nodes["loss"]["label"]
    assert "loss at step 4" in out
    mse = Dot(_cli("render", "elman:hidden=2", "--steps", "4", "--grads", "--loss", "mse").output)
    assert sorted(a for a, b, _ in mse.edges if b == "loss") == [f"h_{t}" for t in range(4)]
    assert "L = " in mse.nodes["loss"]["label"] and "Σ" not in mse.nodes["loss"]["label"]
    for model in ("elman:hidden=2", "lstm:hidden=2"):
        shared = _cli("render", model, "--steps", "4", "--grads", "--grad-range", "-9:1").output
        assert "log10: -9 … 1" in shared
    bad = _cli("render", "elman", "--grads", "--grad-range", "1:x")
    assert bad.exit_code == 2 and "LO:HI" in bad.output
    assert _cli("render", "elman", "--grad-range", "-1:0").exit_code == 2  # needs --grads


def test_cli_steps_shown_and_encoder_steps_reach_the_diagram():
    d = Dot(_cli("render", "elman", "--steps", "30", "--steps-shown", "1:2").output)
    steps = [c for c in d.clusters if c.startswith("cluster_step")]
    assert steps == ["cluster_step0", "cluster_step28", "cluster_step29"]
    enc = Dot(
        _cli(
            "render",
            "elman:output=2",
            "--steps",
            "5",
            "--mode",
            "many-to-many",
            "--encoder-steps",
            "4",
        ).output
    )
    assert [a for a, b, _ in enc.edges if b == "loss"] == ["y_4"]


def test_elision_is_explained_in_the_words_of_each_interface():
    u = unroll.unroll(presets.elman(), 40)
    assert "35 middle steps are elided (full=True draws them)" in _caption(render(u))
    out = _cli("render", "elman", "--steps", "40").output
    assert "35 middle steps are elided (--full draws them)" in out
    assert "Steps are counted from 1" not in out  # no values drawn
    values = _cli("render", "elman:hidden=2", "--steps", "3", "--values").output
    assert "Steps are counted from 1: step k is t = k−1 in unroll's Python API" in values


def test_without_the_dot_program_the_layout_is_left_to_dot(monkeypatch):
    from unroll.render import layout

    u = unroll.unroll(presets.lstm(3, 4), 3)
    pinned, has_dot = render(u).source, shutil.which("dot") is not None
    monkeypatch.setattr(layout.shutil, "which", lambda name: None)
    plain = render(u).source
    assert "layout=neato" not in plain and "pos=" not in plain and "rank=same" in plain
    assert plain == render(u, layout="dot").source
    if has_dot:
        assert "layout=neato" in pinned and 'pos="' in pinned
    with pytest.raises(RenderError, match="unknown layout"):
        render(u, layout="fdp")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps-shown", "0:0"], "draw at least one step"),
        (["--steps-shown", "two"], "FIRST:LAST in whole numbers"),
        (["--grads", "--grad-range", "2:1"], "LO must be below HI"),
        (["--mode", "many-to-many", "--encoder-steps", "7"], "below --steps (5)"),
        (["--encoder-steps", "2"], "only with --mode many-to-many"),
        (["--loss", "mse"], "only with --grads or --values"),
        (["--folded", "--steps-shown", "2"], "--steps-shown: for the unrolled one only"),
    ],
)
def test_cli_render_options_are_checked_as_usage_errors(args, message):
    done = _cli("render", "elman", "--steps", "5", *args)
    assert done.exit_code == 2 and message in done.output, done.output
    assert not _PYTHON_KEYWORDS.search(done.output)
