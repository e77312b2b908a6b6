"""Tests of unroll.plot: each figure returns its Axes with the expected lines and labels."""

import subprocess
import sys
from functools import partial

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")  # tests only: the library never picks a backend

import matplotlib.pyplot as plt

import unroll
from unroll import plot
from unroll.analysis import (
    analyze,
    clipping_trace,
    lyapunov_exponents,
    standard_model,
    sweep,
)


@pytest.fixture(scope="module")
def report():
    return analyze(
        {"RNN": unroll.presets.elman(2, 4), "LSTM": unroll.presets.lstm(2, 4)}, steps=12, seeds=3
    )


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_importing_plot_does_not_import_pyplot():
    code = "import sys, unroll.plot; print('matplotlib.pyplot' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_gradient_norms_lines_labels_and_ticks(report):
    ax = plot.plot_gradient_norms(report)
    labels = [line.get_label() for line in ax.get_lines()]
    rnn = report.summary["RNN"]["h"]
    assert labels[0] == f"RNN: {rnn.verdict}, ×{rnn.factor_per_step:.2g} per step"
    assert labels[1].startswith("_")  # the RNN's Pascanu bound: described in the proxy entry
    assert labels[2].startswith("LSTM — c: ")  # the LSTM's carrier is its cell
    assert labels[-1].startswith("dashed, same colour: theory")
    assert "Pascanu bound" in labels[-1] and "(∏f)" in labels[-1]
    assert ax.get_lines()[1].get_linestyle() == "--"
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), np.arange(12))
    np.testing.assert_array_equal(
        ax.get_lines()[0].get_ydata(), report["RNN"].by_distance("h")["median"]
    )
    assert ax.get_xlabel() == "distance from the loss (steps)"
    assert ax.get_ylabel() == "‖∂L/∂h_t‖, ‖∂L/∂c_t‖ (log scale)"
    assert len(ax.collections) == 2  # one quantile band per model
    assert ax.yaxis.get_major_formatter()(-3, 0) == "$10^{-3}$"


def test_gradient_norms_draw_each_losss_decay_beside_the_total():
    rep = analyze(unroll.presets.elman(2, 6), steps=30, seeds=3, mode="synced")
    p, s = rep["elman"], rep.summary["elman"]["h"]
    ax = plot.plot_gradient_norms(rep, theory=False)
    solid, dotted = ax.get_lines()
    assert solid.get_label() == (
        "elman: each loss alone, ‖∂ℓ_t/∂h_(t−k)‖, median over t — "
        f"{s.verdict}, ×{s.factor_per_step:.2g} per step (the verdict)"
    )
    assert dotted.get_label().startswith("elman: total ‖∂L/∂h_t‖ at k = T−1−t")
    assert solid.get_linestyle() == "-" and dotted.get_linestyle() == ":"
    np.testing.assert_array_equal(solid.get_ydata(), p.per_loss_by_distance("h")["median"])
    np.testing.assert_array_equal(dotted.get_ydata(), p.by_distance("h")["median"])
    assert "verdict from each loss's own gradient (solid)" in ax.get_title()
    assert ax.get_ylabel() == "gradient norm (log scale)"
    band = ax.collections[0].get_paths()[0].vertices[:, 1]  # the per-loss band, not the total's
    np.testing.assert_allclose(band.max(), np.nanmax(p.per_loss_by_distance("h")["q_high"]))


def test_gradient_norms_title_names_the_total_for_one_loss_step(report):
    assert "verdict from the total ‖∂L/∂s‖" in plot.plot_gradient_norms(report).get_title()


def test_gradient_norms_state_options(report):
    ax = plot.plot_gradient_norms(report, state="all", theory=False, band=False)
    labels = [line.get_label() for line in ax.get_lines()]
    assert [lab.split(":")[0] for lab in labels] == ["RNN", "LSTM — c", "LSTM — h"]
    assert not ax.collections
    ax = plot.plot_gradient_norms(report, state="c", theory=False)
    assert [line.get_label().split(":")[0] for line in ax.get_lines()] == ["LSTM — c"]


def test_gradient_norms_marks_the_float64_floor():
    g = unroll.presets.elman(2, 3)
    rep = analyze(
        g,
        steps=1200,
        seeds=1,
        init="orthogonal",
        init_options={"spectral_norm": 0.5, "bias": 0.0},
        input_scale=0.0,
    )
    ax = plot.plot_gradient_norms(rep, theory=False)
    assert ax.get_ylim()[0] < -360  # 0.5**1199 = 1e-361, drawn where it belongs
    assert any("underflows" in t.get_text() for t in ax.texts)


def test_contributions(report):
    ax = plot.plot_contributions(report)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[0].startswith("RNN — first 2 steps: ")
    assert ax.get_xlabel() == "time step t (the loss is at the last step)"
    assert "share of the gradient of the recurrent weights" in ax.get_ylabel()
    ax = plot.plot_contributions(report, weight="W_hh")
    assert [line.get_label() for line in ax.get_lines()] == ["RNN"]


def test_heatmap():
    g = unroll.presets.elman(2, 5)
    u = unroll.unroll(g, 7, mode="many-to-one")
    p = unroll.init_params(g, seed=0)
    r = unroll.bptt(u, p, {"x": np.ones((7, 2, 2))}, {("h", 6): np.ones((2, 5))})
    ax = plot.plot_heatmap(r, "h")
    image = ax.get_images()[0].get_array()
    assert image.shape == (5, 7)
    np.testing.assert_allclose(
        image[:, 3], np.log10(np.linalg.norm(r.node_grads[("h", 3)], axis=0))
    )
    assert ax.get_xlabel() == "time step t" and ax.get_ylabel() == "unit of h"


def test_phase_diagram():
    factory = partial(standard_model, "elman", hidden_size=4, init="orthogonal")
    res = sweep(
        factory, {"spectral_norm": [0.5, 1.0, 1.5], "input_scale": [0.0, 1.0]}, steps=20, seeds=2
    )
    ax = plot.plot_phase(res)
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert labels[:2] == ["measured (input scale = 0.0)", "measured (input scale = 1.0)"]
    assert "Pascanu bound log10(γ σ_max)" in labels
    assert ax.get_xlabel() == "spectral norm σ_max(W_hh)"
    assert ax.get_ylabel() == "fitted decay rate (decades per step)"
    texts = {t.get_text().strip() for t in ax.texts}
    assert {"vanishing", "exploding", "γ σ_max = 1"} <= texts
    crossing = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert crossing and crossing[0].get_xdata()[0] == pytest.approx(1.0)


def test_lyapunov_and_clipping():
    g = unroll.presets.elman(2, 3, activation="identity", bias=False)
    p = {"W_ih": np.zeros((3, 2)), "W_hh": np.diag([1.2, 0.5, -0.8])}
    exps = lyapunov_exponents(g, p, 30, input_scale=0.0)
    ax = plot.plot_lyapunov({"diag": exps})
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), np.log([1.2, 0.8, 0.5]))
    assert ax.get_ylabel() == "Lyapunov exponent λ_i (log growth per step)"
    trace = clipping_trace((g, {"init": "normal", "spectral_radius": 1.3}), [5, 10, 20], 1.0)
    ax = plot.plot_clipping(trace)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == [
        "before clipping ‖g‖",
        "after clipping: c·g/‖g‖ when ‖g‖ > c (Pascanu et al. 2013)",
        "threshold c = 1",
    ]
    assert ax.get_yscale() == "log"
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), 1.0)


def test_plots_draw_on_a_given_axes(report):
    _, axes = plt.subplots(1, 2)
    assert plot.plot_gradient_norms(report, ax=axes[0]) is axes[0]
    assert plot.plot_contributions(report, ax=axes[1]) is axes[1]
