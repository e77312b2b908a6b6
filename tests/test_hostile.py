"""Hostile and careless input, round two (issue 13): each reproducer of the issue is a test.

Every refusal is one ``Error:`` line, no traceback, no file left behind; the exit code is
2 for anything wrong with what the user gave and 1 for a failure while running.
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_reliability import cli, error_line
from unroll.cli.errors import warnings_as_lines

import unroll
from unroll import presets
from unroll.analysis import sweep
from unroll.analysis.sweeplog import SweepLog, SweepLogError, read_log
from unroll.atomic import atomic_write
from unroll.errors import GraphError, LimitError
from unroll.files import ModelFileError, load_toml, parse_toml
from unroll.graph import find_algebraic_loop
from unroll.models import ModelSpecError, load_model
from unroll.quoting import dot_id, html_text, is_name, toml_string

HAS_DOT = shutil.which("dot") is not None


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


LOOP = """\
edges = ["x -> h : W_ih", "h -> h @ t-1 : W_hh"]

[nodes]
x = { kind = "input", size = 1 }
h = { kind = "layer", size = 2, activation = "tanh" }
"""


def model_file(tmp_path, text: str, name: str = "m.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---- strings reaching DOT, SVG, HTML, TOML -------------------------------------------------

EVIL = '<x> { evil [URL="javascript:alert(1)" label="CLICK"] // <y>'


def test_a_graph_name_cannot_inject_dot():
    g = presets.neuron()
    g.name = EVIL
    first, *rest = unroll.render(g).source.splitlines()
    assert first == f"digraph {dot_id(EVIL)} {{" and '"' not in first and "[" not in first
    assert "&lt;x&gt; { evil" in rest[0]  # the title: text of an HTML label, escaped


@pytest.mark.skipif(not HAS_DOT, reason="needs graphviz's dot")
def test_an_evil_name_gives_an_svg_without_links(tmp_path):
    path = model_file(tmp_path, f"name = {toml_string(EVIL)}\n" + LOOP)
    svg = tmp_path / "evil.svg"
    assert cli("render", path, "-o", svg).exit_code == 0
    text = svg.read_text()
    assert "xlink:href" not in text and "<svg" in text


@pytest.mark.skipif(not HAS_DOT, reason="needs graphviz's dot")
def test_control_characters_and_backslashes_write_valid_dot(tmp_path):
    name = "a\\b\x01c\x7f\nd"
    path = model_file(tmp_path, f"name = {toml_string(name)}\n" + LOOP)
    dot = tmp_path / "m.dot"
    assert cli("render", path, "--folded", "--title", "t\x02\\", "-o", dot).exit_code == 0
    checked = subprocess.run(["dot", "-Tsvg", dot], capture_output=True)
    assert checked.returncode == 0, checked.stderr
    assert parse_toml(unroll.files.to_toml(load_toml(path).graph)).graph.name == name  # round trip


def test_quoting_helpers():
    assert dot_id("") == "graph" and dot_id("9") == "_9"
    assert html_text("<\x00>") == "&lt;\ufffd&gt;"
    assert json.loads(toml_string("\x7f\n\\")) == "\x7f\n\\"


@pytest.mark.parametrize("name", ["h\n", "h\r", " h", "h ", "1h", "h-1", "", "h\x00"])
def test_names_match_the_pattern_as_a_whole(name):
    assert not is_name(name)
    with pytest.raises(GraphError, match="must be a letter or _"):
        unroll.Graph("g").layer(name, 1)


def test_a_node_named_with_a_newline_is_refused_in_a_file(tmp_path):
    path = model_file(tmp_path, LOOP.replace("h = {", '"h\\n" = {'))
    assert "node name 'h\\n' must be a letter" in error_line(cli("export", path), 2)


# ---- tracebacks that were ----------------------------------------------------------------------


def test_toml_nested_1000_deep(tmp_path):
    path = model_file(tmp_path, "a = " + "[" * 1000 + "]" * 1000 + "\n")
    assert error_line(cli("export", path), 2).endswith("invalid TOML: nested too deeply")


def test_a_400_digit_integer_parameter(tmp_path):
    text = LOOP + "\n[params]\nW_ih = [[1], [2]]\nW_hh = [[1, 0], [0, " + "9" * 400 + "]]\n"
    path = model_file(tmp_path, text)
    assert "params: 'W_hh' holds an integer too large for a float64" in error_line(
        cli("export", path), 2
    )


@pytest.fixture
def module_folder(tmp_path, monkeypatch):
    (tmp_path / "hostile_models.py").write_text(
        "import sys\nimport unroll\n"
        "def raises():\n    raise RuntimeError('boom')\n"
        "def exits():\n    sys.exit(3)\n"
        "def elman():\n    return unroll.presets.elman(2, 3)\n"
    )
    (tmp_path / "broken_on_import.py").write_text("raise SystemExit('no')\n")
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in ("hostile_models", "broken_on_import"):
        sys.modules.pop(name, None)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("hostile_models:raises", "hostile_models:raises: the function raised RuntimeError: boom"),
        ("hostile_models:exits", "hostile_models:exits: the function called sys.exit(3)"),
        ("broken_on_import:f", "importing 'broken_on_import' called sys.exit('no')"),
    ],
)
def test_a_model_function_that_raises_or_exits(module_folder, spec, message):
    assert message in error_line(cli("analyze", spec, "--steps", 3), 2)


def test_sweep_over_a_model_function(module_folder):
    args = ["--vary", "spectral_radius=0.5,1.5", "--init", "orthogonal", "--steps", 5]
    result = cli("sweep", "hostile_models:elman", *args, "--seeds", 1, "--quiet", "--json", "-")
    assert result.exit_code == 0, result.stderr
    assert [r["spectral_radius"] for r in json.loads(result.stdout)["rows"]] == [0.5, 1.5]


def test_a_sweep_whose_decay_is_undefined_prints_its_table():
    result = cli("sweep", "elman", "--vary", "hidden=4", "--steps", 1, "--seeds", 1, "--quiet")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["4", "h", "-", "never", "undefined"]


@pytest.mark.parametrize(
    ("vary", "message"),
    [
        ("hidden=3:1e30:10", "option hidden_size='3.0': expected an integer"),
        ("hidden=3:1000000000000000000000000000000:10", "expected an integer"),
        ("steps=2.5", "steps takes positive integers, got 2.5"),
        ("hidden=1:2:1000000000", "COUNT must be an integer from 1 to 100,000"),
        ("spectral_radius=1:1e400:3", "START and STOP must be finite numbers"),
    ],
)
def test_bad_vary_values_are_usage_errors(vary, message):
    assert message in error_line(cli("sweep", "elman", "--vary", vary), 2)


def test_a_grid_of_a_billion_points_is_refused_before_any_runs():
    args = ["--vary", "hidden=1:1000:1000", "--vary", "spectral_radius=0:1:1000"]
    args += ["--vary", "forget_bias=0:1:1000"]
    start = time.perf_counter()
    shown = error_line(cli("sweep", "lstm", *args), 2)
    assert "the grid has 1,000,000,000 points (1000 x 1000 x 1000)" in shown
    assert "pass --force to lift the limit" in shown and time.perf_counter() - start < 5


def test_a_sweep_estimated_above_ten_minutes_is_refused_before_any_point():
    args = ["--vary", "hidden=8:512:64", "--vary", "forget_bias=0:3:50", "--seeds", 5]
    start = time.perf_counter()
    shown = error_line(cli("sweep", "lstm", *args), 2)
    assert "a sweep of 3,200 points x 5 seeds would take about" in shown and "--force" in shown
    assert time.perf_counter() - start < 10
    with pytest.raises(LimitError, match="a sweep of 2 points x 1 seeds would take about"):
        sweep("elman", {"hidden_size": [4, 8]}, steps=100, seeds=1, max_seconds=1e-6)


def test_varying_how_parameters_are_drawn_on_a_model_with_its_own_is_refused(tmp_path):
    text = LOOP + "\n[params]\nW_ih = [[1.0], [0.5]]\nW_hh = [[0.5, 0], [0, 0.5]]\n"
    shown = error_line(cli("sweep", model_file(tmp_path, text), "--vary", "spectral_radius=1,2"), 2)
    assert "carries its own parameters, so varying 'spectral_radius'" in shown


def test_training_a_huge_model_is_refused_before_allocating():
    shown = error_line(cli("train", "lstm:hidden=20000", "--iterations", 1), 2)
    assert "lstm declares 1,600,320,000 parameters" in shown and "--force" in shown


# ---- weight files (torch) -------------------------------------------------------------------


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def lstm_state(torch, hidden: int, make):
    return {
        "weight_ih_l0": make((4 * hidden, 3)),
        "weight_hh_l0": make((4 * hidden, hidden)),
        "bias_ih_l0": make((4 * hidden,)),
        "bias_hh_l0": make((4 * hidden,)),
    }


def test_an_expanded_tensor_declaring_hidden_20000_is_refused_cheaply(torch, tmp_path):
    path = tmp_path / "hostile.pt"
    torch.save(lstm_state(torch, 20_000, lambda s: torch.zeros(1).expand(*s)), path)
    assert path.stat().st_size < 4000
    shown = error_line(cli("analyze", path), 2)
    assert "declares shape (80000, 3) (240,000 numbers) but stores 1" in shown


def test_a_sparse_tensor_is_refused(torch, tmp_path):
    path = tmp_path / "sparse.pt"
    state = lstm_state(torch, 2, torch.zeros)
    state["weight_hh_l0"] = torch.zeros(8, 2).to_sparse()
    torch.save(state, path)
    assert "entry 'weight_hh_l0' is a torch.sparse_coo tensor" in error_line(
        cli("analyze", path), 2
    )


def test_a_large_honest_file_is_refused_from_its_shapes(torch, tmp_path):
    path = tmp_path / "big.pt"
    torch.save(lstm_state(torch, 40, torch.zeros), path)
    with pytest.raises(LimitError, match="declares 7,200 parameters"):
        load_model(str(path), max_memory=1000)
    assert load_model(str(path)).graph.nodes["h"].size == 40


@pytest.mark.parametrize(("text", "expected"), [("false", False), ("true", True), ("0", False)])
def test_batch_first_reads_booleans(torch, tmp_path, text, expected):
    path = tmp_path / "rnn.pt"
    torch.save(torch.nn.RNN(3, 4).state_dict(), path)
    imp = unroll.interop.load_state_dict(path)
    assert imp.module.batch_first is False
    model = load_model(f"{path}:batch_first={text}")
    assert model.graph.nodes["h"].size == 4
    with pytest.raises(ModelSpecError, match="batch_first='maybe': expected true or false"):
        load_model(f"{path}:batch_first=maybe")
    loaded = unroll.interop.load_state_dict(path, batch_first=expected)
    assert loaded.module.batch_first is expected


# ---- limits before allocation -----------------------------------------------------------------


def chain_text(n: int) -> str:
    nodes = ['x = { kind = "input", size = 1 }'] + [
        f'h{i} = {{ kind = "layer", size = 1 }}' for i in range(n)
    ]
    edges = ['"x -> h0"'] + [f'"h{i} -> h{i + 1}"' for i in range(n - 1)]
    return f"edges = [{', '.join(edges)}]\n[nodes]\n" + "\n".join(nodes) + "\n"


def test_a_model_file_above_the_node_limit_is_refused_before_building(tmp_path):
    path = model_file(tmp_path, chain_text(20))
    with pytest.raises(LimitError, match="declares 21 nodes, more than the limit of 10"):
        load_toml(path, max_nodes=10)
    assert len(load_toml(path).graph.nodes) == 21


def test_huge_presets_exports_and_seed_counts_are_refused_up_front():
    start = time.perf_counter()
    shown = error_line(cli("render", "stacked:layers=1000000000", "--folded"), 2)
    assert "with 1,000,000,000 layers declares 9,000,000,001 nodes" in shown
    shown = error_line(cli("export", "elman", "--steps", 1_000_000, "--format", "json"), 2)
    assert "exporting elman over 1,000,000 steps as json writes about" in shown
    shown = error_line(cli("analyze", "elman", "--seeds", 100_000), 2)
    assert "analyze of elman (100,000 runs of 100 steps) would take about" in shown
    assert time.perf_counter() - start < 10


def test_a_diagram_of_a_huge_graph_is_refused_before_layout(tmp_path):
    path = model_file(tmp_path, chain_text(2500))
    start = time.perf_counter()
    shown = error_line(cli("render", path, "--folded", "-o", tmp_path / "c.dot"), 2)
    assert "has 2,501 nodes, more than the 2,000 a diagram may have (--max-nodes)" in shown
    assert time.perf_counter() - start < 10 and files_in(tmp_path) == ["m.toml"]


def test_force_lifts_the_export_estimate(tmp_path):
    out = tmp_path / "e.json"
    assert cli("export", "neuron", "--steps", 50, "-o", out).exit_code == 0
    assert json.loads(out.read_text())["steps"] == 50


def ring(n: int, closing_delay: int = 1) -> unroll.Graph:
    g = unroll.Graph("ring")
    g.input("x", 1)
    names = [g.layer(f"h{i}", 1) for i in range(n)]
    g.edge("x", names[0], weight="W")
    for i in range(n - 1, 0, -1):
        g.edge(names[i - 1], names[i])
    g.edge(names[-1], names[0], delay=closing_delay)
    return g


def test_a_long_ring_validates_and_its_zero_delay_version_is_named():
    assert ring(20_000).validate() is not None
    with pytest.raises(GraphError) as caught:
        ring(500, closing_delay=0).validate()
    assert str(caught.value) == (
        "algebraic loop: h0 -> h1 -> h2 -> h3 -> ... -> h498 -> h499 -> h0 (500 edges) "
        "has total delay 0"
    )


def test_a_mixed_sign_part_beyond_the_budget_is_a_limit():
    g = ring(300)
    g.edges[g.edges.index(unroll.graph.Edge("h2", "h3"))] = unroll.graph.Edge("h2", "h3", 2)
    g.edge("h5", "h2", delay=-1)  # every cycle still has a positive total delay
    assert find_algebraic_loop(g) is None
    g.edge("h4", "h3", delay=-1)  # h3 -> h4 -> h3 has total delay -1: a loop
    assert find_algebraic_loop(g) is not None
    with pytest.raises(LimitError, match="delays mix signs"):
        find_algebraic_loop(g, budget=1000)
    assert ring(300).validate()  # a single-sign part costs no Bellman-Ford at all


def simple_cycles_oracle(g: unroll.Graph) -> bool:
    """A closed walk of total delay 0 exists: some strongly connected part holds a simple
    cycle of delay <= 0 and one of delay >= 0 (found by listing every simple cycle)."""
    multi = nx.MultiDiGraph()
    multi.add_nodes_from(g.nodes)
    for e in g.edges:
        multi.add_edge(e.source, e.target, delay=e.delay)
    part = {n: k for k, c in enumerate(nx.strongly_connected_components(multi)) for n in c}
    signs: dict[int, set] = {}
    for cycle in nx.simple_cycles(nx.DiGraph(multi)):
        # every choice of parallel edge along the cycle
        totals = [0]
        for a, b in zip(cycle, cycle[1:] + cycle[:1], strict=True):
            delays = [d["delay"] for d in multi.get_edge_data(a, b).values()]
            totals = [t + d for t in totals for d in delays]
        for t in totals:
            signs.setdefault(part[cycle[0]], set()).add((t <= 0, t >= 0))
    return any(any(le for le, _ in s) and any(ge for _, ge in s) for s in signs.values())


small_graphs = st.integers(2, 6).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.integers(-2, 2)),
            max_size=10,
        ),
    )
)


def check_loop_search(case) -> None:
    n, edges = case
    g = unroll.Graph("g")
    for i in range(n):
        g.add(f"n{i}", 1)
    for a, b, d in edges:
        g.edge(f"n{a}", f"n{b}", delay=d)
    assert (find_algebraic_loop(g) is not None) == simple_cycles_oracle(g)


@settings(max_examples=300, deadline=None)
@given(small_graphs)
@example((2, [(0, 1, 0), (1, 1, 0), (1, 0, 0)]))  # a self-loop met deep in the search
def test_the_loop_search_agrees_with_listing_every_cycle(case):
    check_loop_search(case)


@pytest.mark.slow
@settings(max_examples=5000, deadline=None)
@given(small_graphs)
def test_the_loop_search_agrees_with_listing_every_cycle_long(case):
    check_loop_search(case)


def test_in_edges_follows_every_change_of_the_edge_list():
    g = presets.elman(2, 3)
    assert [e.source for e in g.in_edges("h")] == ["x", "h"]
    g.edges.pop()
    assert [e.source for e in g.in_edges("h")] == ["x"]
    g.edges = [*g.edges, unroll.graph.Edge("h", "h", 1, "W_hh")]
    assert [e.source for e in g.in_edges("h")] == ["x", "h"]
    assert g.copy() == g and g.copy().in_edges("h") == g.in_edges("h")


# ---- output files -------------------------------------------------------------------------


def test_a_fifo_is_written_through_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    atomic_write(fifo, "through the pipe\n")
    reader.join(5)
    assert got == [b"through the pipe\n"] and fifo.is_fifo()
    assert files_in(tmp_path) == ["pipe"]


def test_a_link_to_a_fifo_is_written_through_and_stays_a_link(tmp_path):
    fifo, link = tmp_path / "pipe", tmp_path / "link"
    os.mkfifo(fifo)
    link.symlink_to(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    result = cli("export", "neuron", "--format", "json", "-o", link)
    reader.join(5)
    assert result.exit_code == 0 and json.loads(got[0])["name"] == "neuron"
    assert link.is_symlink() and fifo.is_fifo()


def test_a_link_to_a_regular_file_keeps_the_link(tmp_path):
    target, link = tmp_path / "real.json", tmp_path / "link.json"
    target.write_text("old")
    link.symlink_to(target)
    atomic_write(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    assert files_in(tmp_path) == ["link.json", "real.json"]


def test_a_full_device_is_one_line_naming_the_target(tmp_path, monkeypatch):
    fifo = tmp_path / "full"
    os.mkfifo(fifo)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("unroll.atomic._write_through", full)
    assert error_line(cli("export", "neuron", "-o", fifo), 1) == (
        f"Error: {fifo}: No space left on device"
    )


def test_a_disk_full_while_writing_names_the_target_not_the_temporary(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    target.write_text("earlier")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("os.fsync", full)
    assert error_line(cli("export", "neuron", "-o", target), 1) == (
        f"Error: {target}: No space left on device"
    )
    assert target.read_text() == "earlier" and files_in(tmp_path) == ["out.json"]


def test_sigterm_while_writing_leaves_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    target.write_text("earlier")
    real_fsync = os.fsync

    def terminated(fd):
        real_fsync(fd)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler runs here

    monkeypatch.setattr("os.fsync", terminated)
    with pytest.raises(SystemExit) as stopped:
        atomic_write(target, "new")
    assert stopped.value.code == 128 + signal.SIGTERM
    assert target.read_text() == "earlier" and files_in(tmp_path) == ["out.txt"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    result = cli("export", "neuron", "-o", target)  # the command line: Aborted!, exit 1
    assert result.exit_code == 1 and "Aborted" in result.stderr
    assert target.read_text() == "earlier" and files_in(tmp_path) == ["out.txt"]


def test_sigterm_kills_a_real_process_cleanly(tmp_path):
    target = tmp_path / "big.json"
    code = (
        "import os, signal, sys\n"
        "import unroll.atomic as a\n"
        "real = os.fsync\n"
        "def slow(fd):\n"
        "    real(fd); os.kill(os.getpid(), signal.SIGTERM); signal.pause()\n"
        "os.fsync = slow\n"
        "from unroll.cli.main import main\n"
        f"main(['export', 'neuron', '-o', {str(target)!r}])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Aborted" in done.stderr, done.stderr
    assert files_in(tmp_path) == []


def test_json_and_csv_cannot_both_go_to_stdout():
    for command in (["analyze", "elman"], ["sweep", "elman", "--vary", "hidden=2,3"]):
        shown = error_line(cli(*command, "--json", "-", "--csv", "-"), 2)
        assert "--json and --csv cannot both write to stdout" in shown


# ---- exit codes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["render", "elman", "--mode", "one-to-one", "--steps", 4],
        ["sweep", "elman", "--vary", "hidden"],
        ["analyze", "lstn"],
    ],
)
def test_what_the_user_gave_exits_2(args):
    error_line(cli(*args), 2)


def test_a_malformed_model_file_exits_2_like_an_unknown_preset(tmp_path):
    path = model_file(tmp_path, LOOP.replace("[nodes]", "[nodes"))
    assert error_line(cli("export", path), 2).startswith(f"Error: {path}, line 3: invalid TOML")


def test_any_warning_is_one_line_once(capsys):
    with warnings_as_lines():
        for _ in range(3):
            np.float64(1e308) * np.float64(10)
        warnings.warn("a\nb", UserWarning, stacklevel=1)
    assert capsys.readouterr().err == (
        "Warning: overflow encountered in scalar multiply\nWarning: a\n"
    )


def test_numpy_warnings_reach_stderr_as_one_line(tmp_path):
    g = presets.elman(1, 2, activation="relu")
    params = {"W_ih": [[0.1], [0.1]], "W_hh": [[3.0, 0], [0, 3.0]], "b_ih": [0.5, 0.5],
              "b_hh": [0.5, 0.5]}  # fmt: skip
    path = model_file(tmp_path, unroll.files.to_toml(g, params))
    result = cli("analyze", path, "--steps", 1000, "--seeds", 1)
    assert result.exit_code == 0
    assert "RuntimeWarning" not in result.stderr and "warnings.warn" not in result.stderr
    assert all(not line.startswith(" ") for line in result.stderr.splitlines())


# ---- sweeps never lose results ------------------------------------------------------------

SWEEP = ["sweep", "elman", "--vary", "hidden=2,3,4", "--steps", 5, "--seeds", 1, "--quiet"]


def test_a_failing_point_is_recorded_and_the_sweep_goes_on():
    def factory(hidden_size):
        if hidden_size == 3:
            raise unroll.errors.InputError("three is not allowed")
        return presets.elman(2, hidden_size)

    result = sweep(factory, {"hidden_size": [2, 3, 4]}, steps=5, seeds=1)
    verdicts = [(r["hidden_size"], r["verdict"], r["error"]) for r in result.rows]
    assert verdicts[1] == (3, "error", "grid point {'hidden_size': 3}: three is not allowed") or (
        verdicts[1][:2] == (3, "error") and "three is not allowed" in verdicts[1][2]
    )
    assert [v[1] for v in verdicts] == ["vanishing", "error", "vanishing"]
    assert result.failed == [result.rows[1]]
    assert "error" in json.loads(result.to_json())["columns"]


def test_points_stream_to_json_lines_and_a_resumed_sweep_gives_the_same_bytes(tmp_path):
    log, whole = tmp_path / "p.jsonl", tmp_path / "whole.json"
    assert cli(*SWEEP, "--jsonl", log, "--json", whole).exit_code == 0
    lines = log.read_text().splitlines()
    assert len(lines) == 4 and [json.loads(x)["point"] for x in lines[1:]] == [0, 1, 2]
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[:2]) + "\n" + lines[2][:40])  # killed mid-line
    resumed = tmp_path / "resumed.json"
    result = cli(*SWEEP, "--resume", cut, "--json", resumed)
    assert result.exit_code == 0, result.stderr
    assert resumed.read_bytes() == whole.read_bytes()
    assert cut.read_text().splitlines()[1:] == lines[1:]


def test_an_interrupted_sweep_keeps_its_finished_points(tmp_path, monkeypatch):
    sweep_module = sys.modules["unroll.analysis.sweep"]
    log = tmp_path / "p.jsonl"
    real = sweep_module._run_prepared  # one task of a serial sweep
    calls = []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(sweep_module, "_run_prepared", interrupted)
    result = cli(*SWEEP, "--jsonl", log)
    assert result.exit_code == 1 and f"continue with --resume {log}" in result.stderr
    assert [json.loads(x).get("point") for x in log.read_text().splitlines()] == [None, 0]
    monkeypatch.setattr(sweep_module, "_run_prepared", real)
    assert cli(*SWEEP, "--resume", log).exit_code == 0
    assert len(log.read_text().splitlines()) == 4


def test_resuming_from_another_sweeps_file_is_refused(tmp_path):
    log = tmp_path / "p.jsonl"
    assert cli(*SWEEP, "--jsonl", log).exit_code == 0
    other = [a if a != "hidden=2,3,4" else "hidden=2,3" for a in SWEEP]
    assert "written by a different sweep: its grid is" in error_line(
        cli(*other, "--resume", log), 2
    )
    junk = model_file(tmp_path, "not json\n", "junk.jsonl")
    with pytest.raises(SweepLogError, match=r"junk\.jsonl, line 1: not a JSON object"):
        read_log(junk, {})


def test_a_sweep_log_round_trips(tmp_path):
    path = tmp_path / "s.jsonl"
    with SweepLog(path, {"grid": {"a": [1]}}) as log:
        log.write(0, {"a": 1}, [{"verdict": "stable", "decay_per_step": np.float64(0.5)}])
    assert read_log(path, {"grid": {"a": [1]}}) == {
        0: [{"verdict": "stable", "decay_per_step": 0.5}]
    }
    with pytest.raises(SweepLogError, match="its grid is"):
        read_log(path, {"grid": {"a": [2]}})


def test_model_files_that_name_nothing_still_say_so():
    with pytest.raises(ModelSpecError, match="no such model file"):
        load_model("missing.toml")
    with pytest.raises(ModelFileError, match="invalid TOML"):
        parse_toml("[nodes")


@pytest.mark.parametrize("doc", ["README.md", "docs/reliability.md"])
def test_the_catalogue_quotes_the_messages_of_issue_13(doc):
    text = (Path(__file__).resolve().parent.parent / doc).read_text()
    for fragment in [
        "invalid TOML: nested too deeply",
        "holds an integer too large for a float64",
        "declares shape (80000, 3) (240,000 numbers) but stores 1",
        "is a torch.sparse_coo tensor",
        "the function called sys.exit(3)",
        "steps takes positive integers, got 2.5",
        "carries its own parameters, so varying 'spectral_radius'",
        "the grid has 1,000,000,000 points (1000 x 1000 x 1000)",
        "cannot both write to stdout",
        "written by a different sweep: its grid is",
        "continue with --resume p.jsonl",
        "with 1,000,000,000 layers declares 9,000,000,001 nodes",
        "would take about 13 minutes, more than the limit of 10 minutes",
    ]:
        assert fragment in text, fragment
