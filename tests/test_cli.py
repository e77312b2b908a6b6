"""The command line: every command and option group, exit codes 0/1/2, one-line errors."""

import csv
import io
import json
import shutil
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner
from unroll.cli.main import main

import unroll
from unroll import presets
from unroll.analysis.probes import probe
from unroll.files import ModelFileError, load_toml, to_toml
from unroll.unrolled import unroll as unroll_graph

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
COMMANDS = ["render", "analyze", "sweep", "presets", "export", "gallery"]
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz dot not installed")

GOOD_TOML = """\
name = "good"
edges = [
    "x -> h : W_ih",
    "h -> h @ t-1 : W_hh",
]

[nodes]
x = { kind = "input", size = 3 }
h = { kind = "layer", size = 4, activation = "tanh" }
"""


def run(*args, ok=True):
    result = CliRunner().invoke(main, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


def one_line_error(result, code):
    """The run failed with ``code``, a single ``Error:`` line last on stderr, no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ")
    return last


# ---- the group -----------------------------------------------------------------------------


def test_version():
    assert run("--version").output.strip() == f"unroll, version {unroll.__version__}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command):
    out = run(command, "--help").output
    assert f"Usage: main {command}" in out or f"Usage: unroll {command}" in out
    assert "Example" in out


def test_group_help_lists_every_command():
    out = run("--help").output
    for command in COMMANDS:
        assert command in out


def test_python_dash_m_runs_the_same_group():
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "unroll", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == f"unroll, version {unroll.__version__}"


# ---- presets and export --------------------------------------------------------------------


def test_presets_lists_names_options_and_defaults():
    out = run("presets").output
    for name in presets.PRESETS:
        assert any(line.startswith(name + " ") for line in out.splitlines())
    assert "input_size=3, hidden_size=8, activation=tanh, bias=true, output_size=none" in out
    assert "hidden=hidden_size" in out


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_export_toml_round_trips_every_preset(name, tmp_path):
    path = tmp_path / f"{name}.toml"
    run("export", name, "--format", "toml", "-o", path)
    assert load_toml(path).graph == presets.PRESETS[name]()
    again = tmp_path / "again.toml"
    run("export", path, "-o", again)  # format from the suffix; a file as MODEL
    assert again.read_text() == path.read_text()


def test_export_writes_stdout_by_default():
    assert run("export", "elman:hidden=4").stdout == to_toml(presets.elman(hidden_size=4))


def test_export_json_follows_the_documented_schema():
    doc = json.loads(run("export", "gru", "--format", "json").stdout)
    assert doc["schema"] == "unroll-graph/1" and doc["view"] == "folded"
    assert [n["id"] for n in doc["nodes"]] == list(presets.gru().nodes)
    unrolled = json.loads(
        run("export", "gru", "--steps", "3", "--format", "json", "--mode", "many-to-one").stdout
    )
    assert unrolled["view"] == "unrolled" and unrolled["steps"] == 3
    assert unrolled["mode"] == "many-to-one" and unrolled["outputs"] == ["h@2"]
    ids = {n["id"] for n in unrolled["nodes"]}
    assert {"h@-1", "x@0", "h@2"} <= ids
    assert all(e["source"] in ids and e["target"] in ids for e in unrolled["edges"])


def test_export_json_is_byte_stable(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    run("export", "lstm", "--steps", "4", "-o", first)
    run("export", "lstm", "--steps", "4", "-o", second)
    assert first.read_bytes() == second.read_bytes()
    assert json.loads(first.read_text())["view"] == "unrolled"


def test_export_unrolled_toml_is_a_feed_forward_graph(tmp_path):
    path = tmp_path / "unrolled.toml"
    run("export", "neuron", "--steps", "3", "-o", path)
    graph = load_toml(path).graph
    assert graph.max_delay() == 0 and "h_t2" in graph.nodes and "h_tm1" in graph.nodes


def test_export_graphml(tmp_path):
    path = tmp_path / "lstm.graphml"
    run("export", EXAMPLES / "lstm.toml", "-o", path)
    import networkx as nx

    read = nx.read_graphml(path, force_multigraph=True)
    assert sorted(read.nodes) == sorted(presets.lstm().nodes)
    assert read.number_of_edges() == len(presets.lstm().edges)


def test_export_carries_a_models_params(tmp_path):
    graph = presets.neuron()
    params = unroll.init_params(graph, seed=2)
    source = tmp_path / "p.toml"
    source.write_text(to_toml(graph, params))
    out = run("export", source).stdout
    assert out == to_toml(graph, params)


# ---- usage errors exit 2, run-time errors exit 1 ---------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "lstn"], "unknown preset 'lstn' (did you mean 'lstm'?)"),
        (["export", "elman:hiden=3"], "unknown option 'hiden' (did you mean 'hidden'?)"),
        (["export", "elman:activation=tahn"], "unknown activation 'tahn' (did you mean 'tanh'?)"),
        (["export", "lstm", "--steps", "0"], "0 is not in the range x>=1"),
        (["export", "lstm", "--steps", "-3"], "-3 is not in the range x>=1"),
        (["render", "lstm", "--steps", "0"], "0 is not in the range x>=1"),
        (["analyze", "lstm", "--steps", "0"], "0 is not in the range x>=1"),
        (["export", "missing.toml"], "no such model file: 'missing.toml'"),
        (["export", "lstm", "--format", "xml"], "'xml' is not one of"),
        (["render", "lstm", "-o", "out.txt"], "unknown suffix '.txt'"),
        (["render", "lstm", "--folded", "--grads"], "--folded draws the cyclic graph"),
        (["analyze", "lstm", "--init-option", "spectral_radius"], "is not NAME=VALUE"),
        (["analyze", "lstm", "--plot", "norms.txt"], "unknown suffix '.txt'"),
        (["analyze"], "Missing argument 'MODEL...'"),
        (["sweep", "elman", "--vary", "hiden=2,4"], "cannot vary 'hiden' (did you mean"),
        (["sweep", "elman", "--vary", "spectral_radius=1:2"], "neither START:STOP:COUNT"),
        (["sweep", "elman", "--vary", "hidden=2,4", "--vary", "hidden=8"], "varied once"),
        (["sweep", "elman"], "Missing option '--vary'"),
    ],
)
def test_usage_errors_exit_2(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(*args, ok=False)
    assert result.exit_code == 2, result.output
    assert "Usage:" in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.output


def bad_file(tmp_path, text, name="bad.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


BAD_TOML = GOOD_TOML.replace("h -> h @", "h -> q @")


def test_the_good_file_loads(tmp_path):
    assert run("export", bad_file(tmp_path, GOOD_TOML)).stdout.startswith('name = "good"')


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("h -> h @", "h -> q @"), "line 4: edge \"h -> q @ t-1\": unknown node 'q'"),
        (("size = 4,", "size = 4"), "line 9: invalid TOML"),
        (('"layer"', '"layr"'), "line 9: node 'h': unknown node kind 'layr' (did you mean"),
        (('"tanh"', '"tahn"'), "line 9: node 'h': unknown activation 'tahn'"),
        (('"x -> h : W_ih"', '"x -> h"'), 'line 3: edge "x -> h": identity edge needs equal'),
        (("@ t-1 ", ""), "line 4: algebraic loop: h -> h has total delay 0"),
    ],
)
def test_bad_model_files_exit_2_with_file_and_line(change, message, tmp_path):
    path = bad_file(tmp_path, GOOD_TOML.replace(*change))
    line = one_line_error(run("export", path, ok=False), 2)
    assert line.startswith(f"Error: {path}, line ")
    assert message in line


def test_debug_lets_the_traceback_through(tmp_path):
    path = bad_file(tmp_path, BAD_TOML)
    result = run("--debug", "export", path, ok=False)
    assert result.exit_code == 1
    assert isinstance(result.exception, ModelFileError)
    assert "unknown node 'q'" in str(result.exception)


def test_unwritable_output_exits_1_and_names_the_file(tmp_path):
    target = tmp_path / "no" / "such" / "dir" / "out.toml"
    line = one_line_error(run("export", "lstm", "-o", target, ok=False), 1)
    assert str(target) in line and "No such file or directory" in line


def test_a_failed_export_leaves_an_earlier_file_intact(tmp_path, monkeypatch):
    target = tmp_path / "model.toml"
    target.write_text("earlier\n")

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", broken)
    line = one_line_error(run("export", "lstm", "-o", target, ok=False), 1)
    assert "No space left on device" in line
    assert target.read_text() == "earlier\n"
    assert [p.name for p in tmp_path.iterdir()] == ["model.toml"]


# ---- render ------------------------------------------------------------------------------


def test_render_writes_dot_to_stdout():
    out = run("render", "elman", "--steps", "3").stdout
    assert out.lstrip().startswith(("digraph", "strict digraph"))
    assert "W_hh" in out


@pytest.mark.parametrize("example", ["neuron", "elman", "jordan", "lstm", "gru"])
def test_examples_render_to_dot(example, tmp_path):
    folded, unrolled = tmp_path / "folded.dot", tmp_path / "unrolled.gv"
    run("render", EXAMPLES / f"{example}.toml", "--folded", "-o", folded)
    run("render", EXAMPLES / f"{example}.toml", "--steps", "3", "-o", unrolled)
    for path in (folded, unrolled):
        text = path.read_text()
        assert text.lstrip().startswith(("digraph", "strict digraph"))
    assert unrolled.read_text() != folded.read_text()


@pytest.mark.parametrize(
    "options",
    [
        ["--folded"],
        ["--steps", "5", "--detail", "cell"],
        ["--steps", "3", "--grads"],
        ["--steps", "3", "--values", "--seed", "3"],
        ["--steps", "2", "--direction", "TB", "--highlight", "cell_state", "--full"],
        ["--steps", "3", "--highlight", "recurrent", "--mode", "many-to-one", "--title", "T"],
    ],
)
def test_render_option_groups(options, tmp_path):
    path = tmp_path / "out.dot"
    run("render", "lstm:input=2,hidden=2", *options, "-o", path)
    assert path.read_text().lstrip().startswith(("digraph", "strict digraph"))


def test_render_grads_depend_on_the_seed():
    a = run("render", "elman:hidden=2", "--steps", "3", "--values", "--seed", "0").stdout
    b = run("render", "elman:hidden=2", "--steps", "3", "--values", "--seed", "1").stdout
    assert a != b
    assert a == run("render", "elman:hidden=2", "--steps", "3", "--values").stdout


def test_render_values_show_the_probe_run():
    out = run("render", "neuron", "--steps", "3", "--values", "--seed", "5").stdout
    _, result = probe("neuron", 3, seed=5)
    for t in range(3):
        assert f"{result.values[('h', t)][0, 0]:.4g}" in out
        assert f"{result.node_grads[('h', t)][0, 0]:.4g}" in out


def test_render_values_use_a_models_own_params(tmp_path):
    graph = presets.neuron(activation="identity", bias=False)
    path = tmp_path / "fixed.toml"
    path.write_text(to_toml(graph, {"W_ih": [[0.0]], "W_hh": [[0.5]]}))
    out = run("render", path, "--steps", "3", "--values").stdout
    # W_ih = 0: every value is 0; the gradient at h_t is 0.5 ** (2 - t)
    for grad in ("0.25", "0.5"):
        assert grad in out


def test_render_refuses_huge_diagrams_in_one_line():
    line = one_line_error(run("render", "lstm", "--steps", "3000", "--full", ok=False), 2)
    assert "3000" in line or "nodes" in line


def test_render_image_without_dot_exits_1_and_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    path = tmp_path / "out.png"
    line = one_line_error(run("render", "neuron", "-o", path, ok=False), 1)
    assert "dot" in line
    assert not path.exists()
    run("render", "neuron", "-o", tmp_path / "out.dot")  # DOT needs no binary


@pytest.mark.dot
@needs_dot
@pytest.mark.parametrize(
    ("suffix", "magic"), [(".svg", b"<?xml"), (".png", b"\x89PNG"), (".pdf", b"%PDF")]
)
def test_render_images(suffix, magic, tmp_path):
    path = tmp_path / f"lstm{suffix}"
    run("render", "lstm", "--steps", "2", "-o", path)
    assert path.read_bytes().startswith(magic)


# ---- analyze -----------------------------------------------------------------------------


def test_analyze_prints_one_row_per_model_and_state():
    out = run("analyze", "elman", "lstm:hidden=4", "--steps", "20", "--seeds", "2").stdout
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["model", "state"]
    rows = [line.split() for line in lines[2:] if line.strip() and not line[0].isspace()]
    labelled = {(r[0], r[1]) for r in rows if r[0] in ("elman", "lstm:hidden=4")}
    assert labelled == {("elman", "h"), ("lstm:hidden=4", "c"), ("lstm:hidden=4", "h")}
    assert any(v in out for v in ("vanishing", "exploding", "stable"))


def test_analyze_json_csv_and_plot(tmp_path):
    json_path, csv_path, png = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "n.png"
    result = run(
        "analyze",
        "gru",
        EXAMPLES / "elman.toml",
        "--steps",
        "15",
        "--seeds",
        "2",
        "--init",
        "orthogonal",
        "--init-option",
        "spectral_norm=0.9",
        "--mode",
        "many-to-one",
        "--json",
        json_path,
        "--csv",
        csv_path,
        "--plot",
        png,
    )
    report = json.loads(json_path.read_text())
    assert [m["label"] for m in report["models"]] == ["gru", str(EXAMPLES / "elman.toml")]
    assert report["settings"]["steps"] == 15
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert {r["model"] for r in rows} == {"gru", str(EXAMPLES / "elman.toml")}
    assert png.read_bytes().startswith(b"\x89PNG")
    assert "model" in result.stdout


def test_analyze_json_to_stdout_keeps_stdout_clean():
    result = run("analyze", "neuron", "--steps", "10", "--seeds", "1", "--json", "-")
    doc = json.loads(result.stdout)
    assert [m["label"] for m in doc["models"]] == ["neuron"]
    assert "model" in result.stderr  # the table went to stderr


def test_analyze_uses_a_models_own_params(tmp_path):
    graph = presets.neuron(activation="identity", bias=False)
    path = tmp_path / "fixed.toml"
    path.write_text(to_toml(graph, {"W_ih": [[1.0]], "W_hh": [[0.5]]}))
    doc = json.loads(
        run("analyze", path, "neuron", "--steps", "6", "--seeds", "2", "--json", "-").stdout
    )
    fixed, drawn = doc["models"]
    assert fixed["params"] == {"params": "given"} and drawn["params"]["init"] == "torch"
    # a linear neuron with W_hh = 0.5: the gradient halves every step, for every seed
    assert fixed["summary"]["h"]["decay_per_step"] == pytest.approx(-0.30103, abs=1e-5)


def test_analyze_same_model_twice_keeps_both():
    doc = json.loads(
        run("analyze", "neuron", "neuron", "--steps", "5", "--seeds", "1", "--json", "-").stdout
    )
    assert [m["label"] for m in doc["models"]] == ["neuron", "neuron#2"]


def test_analyze_bad_init_option_exits_2():
    result = run(
        "analyze",
        "elman",
        "--steps",
        "5",
        "--seeds",
        "1",
        "--init-option",
        "spectral_radiuss=0.9",
        ok=False,
    )
    assert "spectral_radiuss" in one_line_error(result, 2)


# ---- sweep -------------------------------------------------------------------------------


def test_sweep_over_a_range_and_a_list(tmp_path):
    json_path = tmp_path / "s.json"
    result = run(
        "sweep",
        "elman:input=2",
        "--vary",
        "spectral_radius=0.5:1.5:3",
        "--vary",
        "hidden=2,4",
        "--init",
        "orthogonal",
        "--steps",
        "15",
        "--seeds",
        "1",
        "--json",
        json_path,
    )
    doc = json.loads(json_path.read_text())
    points = [(r["spectral_radius"], r["hidden"]) for r in doc["rows"]]
    assert points == [(0.5, 2), (0.5, 4), (1.0, 2), (1.0, 4), (1.5, 2), (1.5, 4)]
    assert result.stdout.splitlines()[0].split()[:2] == ["spectral_radius", "hidden"]
    assert len(result.stdout.strip().splitlines()) == 2 + 6
    assert result.stderr == ""  # no progress bar when stderr is not a terminal


def test_sweep_plot_csv_and_quiet(tmp_path):
    png, csv_path = tmp_path / "phase.png", tmp_path / "s.csv"
    run(
        "sweep",
        "lstm:input=2,hidden=2",
        "--vary",
        "forget_bias=-1,1",
        "--steps",
        "10",
        "--seeds",
        "1",
        "--plot",
        png,
        "--csv",
        csv_path,
        "--quiet",
        "--workers",
        "1",
    )
    assert png.read_bytes().startswith(b"\x89PNG")
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert sorted({r["forget_bias"] for r in rows}) == ["-1", "1"]


@pytest.mark.parametrize(("quiet", "shown"), [([], True), (["--quiet"], False)])
def test_sweep_progress_bar_on_a_terminal_unless_quiet(monkeypatch, quiet, shown):
    import unroll.cli.sweep as sweep_module

    monkeypatch.setattr(sweep_module, "stderr_is_terminal", lambda: True)
    result = run("sweep", "neuron", "--vary", "steps=3,4", "--seeds", "1", *quiet)
    assert ("sweep" in result.stderr) is shown
    assert result.stdout.count("neuron") == 0 and len(result.stdout.splitlines()) == 4


def test_sweep_in_processes_matches_serial():
    args = [
        "sweep",
        "elman:input=2,hidden=2",
        "--vary",
        "steps=5,10",
        "--seeds",
        "1",
        "--json",
        "-",
        "--quiet",
    ]
    serial = json.loads(run(*args).stdout)
    parallel = json.loads(run(*args, "--workers", "2").stdout)
    assert serial["rows"] == parallel["rows"]


# ---- gallery -----------------------------------------------------------------------------


def test_gallery_missing_module_is_one_line(monkeypatch):
    import importlib

    real = importlib.import_module

    def without_gallery(name, *args):
        if name == "unroll.gallery":
            raise ModuleNotFoundError("No module named 'unroll.gallery'", name=name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_gallery)
    line = one_line_error(run("gallery", ok=False), 1)
    assert "unroll.gallery is missing" in line


def test_gallery_calls_build_with_the_directory(monkeypatch, tmp_path):
    calls = []
    fake = types.ModuleType("unroll.gallery")
    fake.build = lambda directory: calls.append(directory) or ["a.svg", "b.svg"]
    monkeypatch.setitem(sys.modules, "unroll.gallery", fake)
    result = run("gallery", tmp_path / "g")
    assert calls == [str(tmp_path / "g")]
    assert "wrote 2 files" in result.stderr


def test_unrolled_json_from_the_cli_matches_the_library():
    out = run("export", "jordan", "--steps", "2", "--format", "json").stdout
    from unroll.files import to_json

    assert out == to_json(unroll_graph(presets.jordan(), 2))


def test_analyze_applies_a_models_own_init_options():
    result = CliRunner().invoke(
        main,
        [
            "analyze",
            "lstm:hidden=8",
            "lstm:hidden=8,forget_bias=6",
            "--steps",
            "40",
            "--seeds",
            "2",
            "--json",
            "-",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout[result.stdout.index("{") :])
    verdicts = [m["summary"]["c"]["verdict"] for m in data["models"]]
    assert verdicts == ["vanishing", "stable"]
    assert data["models"][1]["params"]["init_options"] == {"forget_bias": 6.0}


def test_a_closed_pipe_ends_the_command_quietly():
    """`unroll presets | head -1`: once the reader leaves, no traceback and no Error line."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import click
        from unroll.cli.errors import UnrollGroup

        @click.group(cls=UnrollGroup)
        def group():
            pass

        @group.command()
        def talk():
            click.echo("first line")
            raise BrokenPipeError(32, "Broken pipe")  # what writing to a closed pipe raises

        group(["talk"])
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (0, "")


NEW_CELLS = ["indrnn", "mingru", "minlstm", "lru", "lstm:peephole=true"]


def test_analyze_takes_every_new_cell_and_matches_the_api():
    out = json.loads(run("analyze", *NEW_CELLS, "--steps", 12, "--seeds", 2, "--json", "-").stdout)
    specs = {
        "indrnn": presets.indrnn(),
        "mingru": presets.mingru(),
        "minlstm": presets.minlstm(),
        "lru": presets.lru(),
        "lstm:peephole=true": presets.lstm(peephole=True),
    }
    api = unroll.analyze(specs, steps=12, seeds=2)
    assert [m["label"] for m in out["models"]] == NEW_CELLS
    for model in out["models"]:
        want = api.summary[model["label"]]
        for state, got in model["summary"].items():
            assert got["decay_per_step"] == pytest.approx(want[state].decay_per_step, abs=1e-12)


@pytest.mark.parametrize("cell", ["indrnn", "lru"])
def test_sweep_varies_the_new_cells(cell):
    out = json.loads(
        run(
            "sweep", cell, "--vary", "hidden=4,8", "--steps", 10, "--seeds", 2, "--json", "-"
        ).stdout
    )
    assert [r["hidden"] for r in out["rows"]] == [4, 8]
    assert all(r["verdict"] in ("vanishing", "stable", "exploding") for r in out["rows"])
