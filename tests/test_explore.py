"""The explorer: the page's data and markup, the CLI, and end-to-end tests in chromium."""

from __future__ import annotations

import json
import re
import shutil
import time

import numpy as np
import pytest
from click.testing import CliRunner
from unroll.cli.main import main

import unroll
from unroll.explore import ExploreError, LogScale, explore
from unroll.explore.browser import chromium_path, open_page, running_chromium
from unroll.explore.runs import ZERO_COLOUR
from unroll.explore.svg import annotate

pytestmark = pytest.mark.dot
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz dot not installed")
CHROMIUM = chromium_path()


def embedded(page_html: str) -> dict:
    """The JSON a page embeds."""
    text = re.search(
        r'<script type="application/json" id="unroll-data">(.*?)</script>', page_html, re.S
    )
    return json.loads(text[1])


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """An Elman net and an LSTM over 6 steps, the page saved to a file."""
    page = explore("elman:input=2,hidden=3", steps=6, compare=["lstm:input=2,hidden=3"])
    path = page.save(tmp_path_factory.mktemp("explore") / "pair.html")
    return page, path


# ---- the page, without a browser ----------------------------------------------------------


@needs_dot
def test_every_drawn_copy_is_marked_up_and_ids_are_prefixed():
    u = unroll.unroll(unroll.presets.lstm(2, 3), 12)
    svg, drawn = annotate(unroll.render(u).pipe(format="svg").decode(), set(u.dag), "m3-")
    groups = re.findall(r'<g [^>]*data-node="([^"]+)" data-step="(-?\d+)"[^>]*>', svg)
    assert sorted((n, int(t)) for n, t in groups) == sorted(drawn)
    assert {t for _, t in drawn} == {-1, 0, 1, 2, 10, 11}  # elided: 3 first and 2 last steps
    assert "<title>" not in svg and "xlink:title" not in svg  # no native browser tooltips
    assert all(i.startswith("m3-") for i in re.findall(r' id="([^"]+)"', svg))
    assert svg.count('tabindex="0"') == len(drawn)


@needs_dot
def test_embedded_numbers_are_the_runs(pair):
    page, path = pair
    data = embedded(path.read_text("utf-8"))
    for run, shown in zip(page.runs, data["runs"], strict=True):
        for key, copy in shown["copies"].items():
            name, t = key.split("|")
            value = run.result.values[(name, int(t))][0]
            grad = run.result.node_grads[(name, int(t))][0]
            assert copy["value"] == value[:6].tolist() and copy["grad"] == grad[:6].tolist()
            assert copy["size"] == value.size
        for state in run.states:
            exact = run.result.log10_grad_norms(state)
            np.testing.assert_allclose(shown["norms"][state], exact, rtol=0, atol=5e-6)
    assert data["runs"][1]["states"] == ["c", "h"]


@needs_dot
def test_one_colour_scale_holds_every_model(pair):
    page, _ = pair
    finite = [
        v
        for run in page.runs
        for name in run.unrolled.graph.nodes
        for v in run.result.log10_grad_norms(name)
        if np.isfinite(v)
    ]
    assert page.scale.low == np.floor(min(finite)) and page.scale.high == np.ceil(max(finite))


def test_log_scale_colours_ends_and_zero():
    scale = LogScale(-6, 0)
    assert scale.colour(-6) == scale.stops()[0] == "#ffffcc"
    assert scale.colour(0) == scale.stops()[-1] == "#800026"
    assert scale.colour(-50) == "#ffffcc" and scale.colour(float("-inf")) == ZERO_COLOUR
    assert LogScale.spanning([-2.0, -2.0]) == LogScale(-2, -1)


@needs_dot
def test_page_is_self_contained_and_a_label_cannot_close_the_script(tmp_path):
    evil = "</script><script>alert(1)</script>{{data}}"
    page = explore("neuron", steps=3, labels=[evil])
    text = page.save(tmp_path / "p.html").read_text("utf-8")
    assert text.count("</script>") == 2  # the data's and the code's, nothing else
    assert embedded(text)["runs"][0]["label"] == evil
    urls = re.findall(r"https?://[^\s\"'<>)]+", text)
    assert set(urls) <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=", text)  # no resource to fetch


@needs_dot
def test_long_sequences_elide_the_diagram_but_keep_every_steps_norms():
    page = explore("elman:hidden=4", steps=100)
    data = embedded(page.html)["runs"][0]
    assert data["shown"] == [0, 1, 2, 98, 99]
    assert len(data["norms"]["h"]) == 100 and all(isinstance(v, float) for v in data["norms"]["h"])


@needs_dot
def test_a_run_of_your_own_is_shown_as_it_is():
    u = unroll.unroll(unroll.presets.neuron(), 4)
    params = unroll.init_params(u.graph, seed=3)
    xs = np.linspace(-1, 1, 8).reshape(4, 2, 1)
    r = unroll.bptt(u, params, {"x": xs}, {("h", 3): np.ones((2, 1))})
    page = explore(r, labels=["mine"])
    data = embedded(page.html)["runs"][0]
    assert data["label"] == "mine" and data["batch"] == 2
    assert data["copies"]["h|2"]["value"] == r.values[("h", 2)][0].tolist()
    assert "<iframe srcdoc=" in page._repr_html_()


def test_compared_runs_must_share_their_steps():
    u3, u4 = (unroll.unroll(unroll.presets.neuron(), t) for t in (3, 4))
    params = unroll.init_params(u3.graph, seed=0)
    runs = [
        unroll.bptt(
            u, params, {"x": np.ones((u.steps, 1, 1))}, {("h", u.steps - 1): np.ones((1, 1))}
        )
        for u in (u3, u4)
    ]
    with pytest.raises(ExploreError, match="same number of steps"):
        explore(runs)
    with pytest.raises(ExploreError, match="at least one MODEL"):
        explore([])


# ---- the command line -----------------------------------------------------------------------


@needs_dot
def test_cli_writes_the_page(tmp_path):
    out = tmp_path / "flow.html"
    result = CliRunner().invoke(
        main,
        ["explore", "elman:hidden=3", "--compare", "gru:hidden=3", "--steps", "4", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert [r["label"] for r in embedded(out.read_text("utf-8"))["runs"]] == [
        "elman:hidden=3",
        "gru:hidden=3",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["elmn", "-o", "x.html"], "did you mean 'elman'"),
        (["elman", "--compare", "grux", "-o", "x.html"], "unknown preset 'grux'"),
        (["elman", "-o", "x.svg"], "unknown suffix '.svg'"),
        (["elman", "--steps", "0", "-o", "x.html"], "--steps"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    result = CliRunner().invoke(main, ["explore", *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x.html").exists()


# ---- in a real browser --------------------------------------------------------------------

browser = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


@pytest.fixture(scope="module")
def chromium():
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    with running_chromium() as b:
        yield b


@pytest.fixture
def opened(chromium, pair):
    """The pair's page loaded from file://, with every request it makes recorded."""
    page, path = pair
    requests, errors = [], []

    def listen(tab):
        tab.on("request", lambda r: requests.append(r.url))
        tab.on("pageerror", lambda e: errors.append(str(e)))

    tab = open_page(chromium, path, before=listen)
    yield page, tab
    assert errors == []
    assert requests == [path.as_uri()]  # the page itself, and nothing from any network
    tab.close()


def numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+\.?\d*(?:e[-+]?\d+)?", text)]


def tooltip_line(tab, cls: str) -> str:
    return tab.locator(f'[role="tooltip"] .{cls}').inner_text()


@browser
def test_hovering_a_copy_shows_its_numbers_and_marks_its_other_copies(opened):
    page, tab = opened
    result = page.runs[0].result
    tab.locator('.panel[data-run="0"] g.node[data-node="h"][data-step="2"]').hover()
    assert tab.locator('[role="tooltip"]').is_visible()
    value = numbers(tooltip_line(tab, "value").removeprefix("value"))
    grad = numbers(tooltip_line(tab, "grad").removeprefix("dL/dv"))
    np.testing.assert_allclose(value, result.values[("h", 2)][0], rtol=1e-5)
    np.testing.assert_allclose(grad, result.node_grads[("h", 2)][0], rtol=1e-5)
    log10 = numbers(tooltip_line(tab, "log10").split("=")[1])[0]
    assert log10 == pytest.approx(result.log10_grad_norms("h")[2], abs=1e-4)
    same = tab.locator('.panel[data-run="0"] g.node.same')
    assert sorted(int(s) for s in same.evaluate_all("gs => gs.map(g => g.dataset.step)")) == [
        -1,
        0,
        1,
        3,
        4,
        5,
    ]
    assert tab.locator("#plot-svg .band.linked").get_attribute("data-step") == "2"  # linked plot


def painted(tab, run: int) -> dict[int, set[str]]:
    """``{step: fills}`` of the run's drawn copies ('' for an unpainted one)."""
    pairs = tab.locator(f'.panel[data-run="{run}"] g.node[data-node]').evaluate_all(
        "gs => gs.map(g => [Number(g.dataset.step), g.dataset.painted])"
    )
    out: dict[int, set[str]] = {}
    for step, fill in pairs:
        out.setdefault(step, set()).add(fill)
    return out


def close(a: str, b: str) -> bool:
    return all(abs(int(a[i : i + 2], 16) - int(b[i : i + 2], 16)) <= 2 for i in (1, 3, 5))


@browser
def test_moving_the_slider_paints_the_copies_the_gradient_front_has_reached(opened):
    page, tab = opened
    slider = tab.locator('input[type="range"]')
    slider.focus()
    tab.keyboard.press("End")
    for _ in range(3):
        tab.keyboard.press("ArrowLeft")
    assert tab.evaluate("document.body.dataset.step") == "2"
    fills = painted(tab, 1)
    assert fills[0] == fills[1] == fills[-1] == {""}  # not reached yet
    run = page.runs[1]
    norms = run.norms
    for step in (2, 3, 4, 5):
        assert "" not in fills[step]
    c3 = tab.locator('.panel[data-run="1"] g.node[data-node="c"][data-step="3"]').get_attribute(
        "data-painted"
    )
    assert close(c3, page.scale.colour(norms["c"][3]))
    assert "front" in tab.locator(
        '.panel[data-run="1"] g.node[data-node="c"][data-step="2"]'
    ).get_attribute("class")


@browser
def test_play_moves_the_front_back_in_time_and_space_pauses(opened):
    _, tab = opened
    tab.locator("#play").click()  # at step 1 (t = 0) the backward pass starts over at the end
    seen = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        seen.append(int(tab.evaluate("document.body.dataset.step")))
        if seen[-1] == 0 and len(set(seen)) > 2:
            break
        tab.wait_for_timeout(40)
    steps = [s for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]]
    assert steps[0] == 5 and steps[-1] == 0 and steps == sorted(steps, reverse=True)
    tab.locator("#play").evaluate("b => b.blur()")
    tab.locator('input[value="forward"]').check()
    tab.locator("body").press(" ")  # space plays the forward pass
    tab.wait_for_function("() => Number(document.body.dataset.step) >= 2")
    tab.keyboard.press(" ")  # ... and pauses it
    stopped = tab.evaluate("document.body.dataset.step")
    tab.wait_for_timeout(500)
    assert tab.evaluate("document.body.dataset.step") == stopped
    assert tab.locator("#play").get_attribute("aria-pressed") == "false"


@browser
def test_forward_pass_fills_values_step_by_step(opened):
    _, tab = opened
    tab.locator('input[value="forward"]').check()
    tab.locator('input[type="range"]').fill("3")
    pending = tab.locator('.panel[data-run="0"] g.node.pending').evaluate_all(
        "gs => gs.map(g => Number(g.dataset.step))"
    )
    assert sorted(set(pending)) == [4, 5]
    assert set().union(*painted(tab, 0).values()) == {""}  # the forward pass paints no gradient


@browser
def test_keyboard_reaches_copies_and_walks_along_time(opened):
    _, tab = opened
    first = tab.locator('.panel[data-run="0"] g.node[data-node="h"][data-step="0"]')
    first.focus()
    assert tab.locator('[role="tooltip"]').is_visible()
    tab.keyboard.press("ArrowRight")
    focused = tab.evaluate(
        "[document.activeElement.dataset.node, document.activeElement.dataset.step]"
    )
    assert focused == ["h", "1"]
    assert "t = 1" in tooltip_line(tab, "name")
    tab.keyboard.press("Escape")
    assert not tab.locator('[role="tooltip"]').is_visible()


def plot_point(tab, t: int) -> tuple[float, float]:
    """Where step ``t`` sits on the plot, in the viewport (scrolled into view)."""
    tab.locator("#plot-svg").scroll_into_view_if_needed()
    return tuple(tab.evaluate(f"() => window.unrollExplorer.plotPoint({t})"))


@browser
def test_hovering_a_step_in_the_plot_marks_it_in_the_diagrams(opened):
    _, tab = opened
    tab.mouse.move(*plot_point(tab, 4))
    linked = tab.locator("g.node.linked").evaluate_all("gs => gs.map(g => Number(g.dataset.step))")
    assert linked and set(linked) == {4}
    assert tab.locator('g.cluster.linked[data-step="4"]').count() == 2  # both models' step 5


@browser
def test_actual_size_draws_wide_diagrams_at_graphvizs_size_to_scroll(opened):
    _, tab = opened
    tab.locator("#actual-size").check()
    lstm = tab.locator('.panel[data-run="1"] .diagram')
    svg = lstm.locator("svg")
    assert svg.get_attribute("width") == svg.get_attribute("data-width")
    assert lstm.evaluate("d => d.scrollWidth > d.clientWidth")
    tab.locator("#actual-size").uncheck()
    assert svg.get_attribute("width") == "100%"


@needs_dot
def test_the_three_model_hundred_step_page_fits_its_budget():
    page = explore("elman:hidden=32", compare=["lstm:hidden=32", "gru:hidden=32"], steps=100)
    assert len(page.html.encode("utf-8")) < 2 * 1024 * 1024
    data = embedded(page.html)
    assert [len(run["norms"]["h"]) for run in data["runs"]] == [100, 100, 100]


@needs_dot
def test_an_overflowed_run_is_shown_with_its_warning_and_valid_json():
    g = unroll.presets.neuron(activation="identity")
    u = unroll.unroll(g, 6)
    params = {k: np.full_like(v, 1e200) for k, v in unroll.init_params(g, seed=0).items()}
    with np.errstate(all="ignore"):
        r = unroll.bptt(u, params, {"x": np.ones((6, 1, 1))}, {("h", 5): np.ones((1, 1))})
    assert r.warnings
    page = explore(r)
    copies = embedded(page.html)["runs"][0]["copies"]  # json.loads: no bare NaN or Infinity
    assert copies["h|2"]["value"] == ["inf"]
    assert copies["h|2"]["log10"] == "inf" or copies["h|2"]["log10"] > 300  # huge, or past it
    assert f"Warning: {r.warnings[0]}" in page.html


@browser
def test_clicking_the_plot_moves_the_slider_there(opened):
    _, tab = opened
    tab.mouse.click(*plot_point(tab, 3))
    assert tab.locator('input[type="range"]').input_value() == "3"
    assert tab.evaluate("document.body.dataset.step") == "3"


@browser
def test_a_step_the_diagram_elides_marks_the_elision(chromium, tmp_path):
    path = explore("elman:hidden=2", steps=20).save(tmp_path / "long.html")
    tab = open_page(chromium, path)
    tab.locator('input[type="range"]').fill("10")
    assert tab.locator("g.cluster.current").evaluate_all(
        "gs => gs.map(g => 'elided' in g.dataset)"
    ) == [True]
    assert "elided in the diagram" in tab.locator("#step-label").inner_text()
    tab.locator('input[type="range"]').fill("19")
    assert tab.locator("g.cluster.current").get_attribute("data-step") == "19"


@browser
def test_the_jupyter_view_runs_the_page_inside_its_frame(chromium, pair, tmp_path):
    page, _ = pair
    host = tmp_path / "notebook.html"
    host.write_text(f"<!DOCTYPE html><html><body>{page._repr_html_()}</body></html>", "utf-8")
    tab = chromium.new_page()
    tab.goto(host.as_uri())
    frame = tab.frame_locator("iframe")
    frame.locator('g.node[data-node="h"][data-step="1"]').first.hover()
    assert "t = 1" in frame.locator('[role="tooltip"]').inner_text()


def test_the_page_draws_the_loss_where_the_probe_put_it():
    from unroll.explore.dot import draw
    from unroll.explore.runs import probe_runs

    (run,) = probe_runs(["elman:hidden=2"], 4, seed=0, mode="synced")
    assert run.loss_at == [("h", 3)]
    edges = [line for line in draw(run, {}).source.splitlines() if "-> loss" in line]
    assert [e.split()[0] for e in edges] == ["h_3"]  # not every step's h: the cotangent's
