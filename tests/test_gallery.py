"""The gallery: regenerated into a temporary folder, it matches the committed gallery/."""

import importlib.util
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import unroll
from unroll import presets
from unroll.gallery import ENTRIES, HERO, build, listed_files
from unroll.gallery.diagrams import window_graph, with_backward_flow
from unroll.render import RenderError, render

GALLERY = Path(__file__).resolve().parents[1] / "gallery"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A fast build into a new folder: (folder, files written, progress calls)."""
    if shutil.which("dot") is None:
        pytest.skip("needs graphviz's dot program")
    folder = tmp_path_factory.mktemp("gallery")
    calls = []
    written = build(folder, fast=True, progress=lambda *args: calls.append(args))
    return folder, written, calls


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ---- a fresh build ----------------------------------------------------------------------------


@pytest.mark.dot
def test_every_file_the_readme_names_exists_and_nothing_else(fresh):
    folder, written, _ = fresh
    names = listed_files((folder / "README.md").read_text("utf-8"))
    assert len(names) > 2 * len(ENTRIES)
    for name in names:
        assert (folder / name).is_file(), name
        assert (folder / name).stat().st_size > 0, name
    assert sorted([*names, "README.md"]) == sorted(p.name for p in folder.iterdir())
    assert sorted(p.name for p in written) == sorted([*names, "README.md"])


@pytest.mark.dot
def test_every_diagram_has_its_dot_source_and_every_image_is_what_its_suffix_says(fresh):
    folder, _, _ = fresh
    svgs = sorted(p.stem for p in folder.glob("*.svg"))
    assert svgs == sorted(p.stem for p in folder.glob("*.dot"))
    assert HERO in svgs
    for svg in folder.glob("*.svg"):
        assert b"<svg" in svg.read_bytes()[:2000], svg.name
    for png in folder.glob("*.png"):
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", png.name
        assert b"Software" not in data and b"Matplotlib" not in data, png.name


@pytest.mark.dot
def test_the_readme_shows_every_entry_with_its_title_and_caption(fresh):
    folder, _, calls = fresh
    readme = (folder / "README.md").read_text("utf-8")
    headings = re.findall(r"^## (\d+)\. (.+)$", readme, flags=re.M)
    assert [title for _, title in headings] == [e.title for e in ENTRIES.values()]
    assert [int(n) for n, _ in headings] == list(range(1, len(ENTRIES) + 1))
    for entry in ENTRIES.values():
        assert entry.caption in readme
    for anchor in re.findall(r"\]\(#([^)]+)\)", readme):
        assert anchor in {
            re.sub(r"[^\w\- ]", "", f"{n}. {t}".lower()).replace(" ", "-") for n, t in headings
        }
    assert calls == [(i, len(ENTRIES), name) for i, name in enumerate(ENTRIES, start=1)]


@pytest.mark.dot
def test_every_dot_file_equals_the_committed_one(fresh):
    folder, _, _ = fresh
    built = sorted(p.name for p in folder.glob("*.dot"))
    committed = sorted(p.name for p in GALLERY.glob("*.dot"))
    if importlib.util.find_spec("keras") is None:  # the Keras entry is drawn only with Keras
        committed = [name for name in committed if not name.startswith("keras_")]
    assert built == committed, "run `make gallery`"
    for name in built:
        assert (folder / name).read_bytes() == (GALLERY / name).read_bytes(), (
            f"gallery/{name} is not what the code draws: run `make gallery`"
        )


@pytest.mark.dot
def test_a_second_build_gives_the_same_bytes_and_removes_only_stale_files(fresh, tmp_path):
    folder, _, _ = fresh
    (tmp_path / "README.md").write_text("![old](renamed_picture.svg) [x](keep/me.txt)\n")
    (tmp_path / "renamed_picture.svg").write_text("<svg/>")
    (tmp_path / "notes.txt").write_text("mine")
    build(tmp_path, fast=True)
    assert not (tmp_path / "renamed_picture.svg").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"
    (tmp_path / "notes.txt").unlink()
    assert _files(tmp_path) == _files(folder)


# ---- the committed gallery --------------------------------------------------------------------


def test_the_committed_readme_names_exactly_the_committed_files():
    names = listed_files((GALLERY / "README.md").read_text("utf-8"))
    assert len(names) == len(set(names))
    on_disk = sorted(p.name for p in GALLERY.iterdir() if p.name != "README.md")
    assert sorted(names) == on_disk, "stale or missing files in gallery/: run `make gallery`"


# ---- what the pictures rely on ----------------------------------------------------------------


def test_a_window_is_three_delayed_edges_and_its_formula_names_the_steps():
    g = window_graph()
    assert [(e.delay, e.weight) for e in g.in_edges("h")] == [(0, "W_0"), (1, "W_1"), (2, "W_2")]
    u = unroll.unroll(g, 5)
    assert [src for _, src in u.sources(("h", 4))] == [("x", 4), ("x", 3), ("x", 2)]
    assert "W_1 x(t−1) +" in render(g).source
    assert "W_hh h(t−1) + b" in render(presets.elman(1, 2)).source  # a delayed read says so


def test_backward_flow_reverses_every_edge_of_the_unrolled_graph():
    g = presets.elman(1, 2, output_size=1)
    u = unroll.unroll(g, 3)
    forward = render(u)
    drawn = with_backward_flow(forward, u)
    assert drawn.source.startswith(forward.source.rstrip("}\n"))  # the forward picture, kept
    backward = set(re.findall(r"^\t(\S+) -> (\S+) \[.*#2166ac", drawn.source, flags=re.M))
    expected = {("loss", f"y_{t}") for t in range(3)}
    for t in range(3):
        expected |= {(f"h_{t}", f"x_{t}"), (f"y_{t}", f"h_{t}")}
        expected.add((f"h_{t}", f"h_{t - 1}" if t else "h_m1"))
    assert backward == expected


def test_a_shared_grad_range_gives_every_diagram_the_same_colour_scale():
    g = presets.elman(1, 2, output_size=1)
    u = unroll.unroll(g, 4, mode="many-to-one")
    xs = np.ones((4, 1, 1))
    small = unroll.bptt(u, unroll.init_params(g, seed=0), {"x": xs}, loss="sum")
    scaled = {k: 10 * v for k, v in unroll.init_params(g, seed=0).items()}
    large = unroll.bptt(u, scaled, {"x": xs}, loss="sum")
    legend = "log10: -8 … 2"
    assert legend not in render(small).source
    assert legend in render(small, grad_range=(-8, 2)).source
    assert legend in render(large, grad_range=(-8, 2)).source
    for bad in [(0, 0), (1, -1), (0.5, 2), "low", (1, 2, 3)]:
        with pytest.raises(RenderError, match="grad_range"):
            render(small, grad_range=bad)


# ---- the command ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("terminal", "args", "shown"),
    [(True, [], True), (True, ["--quiet"], False), (False, [], False)],
)
def test_gallery_progress_goes_to_a_terminal_only(monkeypatch, tmp_path, terminal, args, shown):
    from click.testing import CliRunner
    from unroll.cli import gallery as command
    from unroll.cli.main import main

    import unroll.gallery

    def fake_build(directory, progress=None):
        for i, name in enumerate(["neuron", "lstm"], start=1):
            if progress is not None:
                progress(i, 2, name)
        return [tmp_path / "a.svg"]

    monkeypatch.setattr(unroll.gallery, "build", fake_build)
    monkeypatch.setattr(command, "_is_terminal", lambda: terminal)
    done = CliRunner().invoke(main, ["gallery", str(tmp_path), *args])
    assert done.exit_code == 0, done.output
    assert ("[1/2] neuron" in done.output and "[2/2] lstm" in done.output) == shown
    assert "wrote 1 files" in done.output


def test_the_deep_nets_show_the_sigmoid_losing_the_gradient_and_relu_keeping_it():
    from unroll.gallery.diagrams import DEEP_ACTIVATIONS, _deep_result

    lost = {}
    for act in DEEP_ACTIVATIONS:
        logs = [float(_deep_result(act).log10_grad_norms(f"h_l{k}")[0]) for k in range(8)]
        lost[act] = logs[-1] - logs[0]  # decades lost from layer 8 down to layer 1
    assert 3.5 < lost["sigmoid"] < 4.5  # "about four decades"
    assert 0.5 < lost["relu"] < 1.5  # "about one decade"
    assert abs(lost["tanh"]) < 0.5  # "almost none"


def test_every_link_from_the_readme_into_the_gallery_names_a_heading_there():
    from unroll.gallery.writer import _anchor

    readme = (GALLERY.parent / "README.md").read_text()
    headings = re.findall(r"^## (.+)$", (GALLERY / "README.md").read_text(), flags=re.M)
    anchors = {_anchor(h) for h in headings}
    links = re.findall(r"gallery/README\.md#([\w-]+)", readme)
    assert links and [a for a in links if a not in anchors] == []
