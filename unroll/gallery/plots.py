"""The gallery's plots: each function measures something and draws one entry's figure.

Every function takes ``fast``: a fast build measures fewer seeds and trains for a few
iterations only, so a test can regenerate the gallery in seconds; a full build uses the
settings below. The measurements are seeded, so a build draws the same figures each time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache, partial

from .. import presets
from ..analysis import analyze, clipping_trace, standard_model, sweep
from ..graph import Graph
from ..plot import (
    plot_clipping,
    plot_contributions,
    plot_gradient_norms,
    plot_phase,
)
from ..plot.training import power_text, training_figure
from ..tasks import adding_problem
from ..training import train
from .pictures import Plot, new_figure, png_bytes

__all__ = [
    "ALL_CELLS",
    "FAST",
    "FULL",
    "all_cells",
    "clipping",
    "depth_and_time",
    "forget_bias",
    "gradient_norms",
    "phase_diagram",
    "step_contributions",
    "training",
]

#: The settings of a full build: seeds and steps per measurement, the training run's size.
FULL = {
    "seeds": 10,
    "steps": 100,
    "long_steps": 200,
    "train": {"length": 50, "hidden": 32, "iterations": 1500},
}
#: ... and of a fast one (the figures keep their layout; their numbers are rough).
FAST = {
    "seeds": 2,
    "steps": 30,
    "long_steps": 40,
    "train": {"length": 6, "hidden": 3, "iterations": 4, "batch": 4, "probe_batch": 8},
}

HIDDEN = 32
INPUT = 4


def _settings(fast: bool) -> dict:
    return FAST if fast else FULL


@lru_cache(maxsize=2)
def _cells_report(fast: bool):
    """RNN, LSTM (twice) and GRU on the same probes (hidden 32)."""
    lstm = presets.lstm(INPUT, HIDDEN)
    return analyze(
        {
            "tanh RNN": presets.elman(INPUT, HIDDEN),
            "LSTM, torch init": lstm,
            "LSTM, forget bias 3": (lstm, {"forget_bias": 3.0}),
            "GRU": presets.gru(INPUT, HIDDEN),
        },
        steps=_settings(fast)["steps"],
        seeds=_settings(fast)["seeds"],
    )


def gradient_norms(fast: bool = False) -> list[Plot]:
    """Gradient norm against the distance from the loss: RNN, LSTM, GRU, with theory."""
    figure, ax = new_figure(9.0, 6.0)
    plot_gradient_norms(_cells_report(fast), ax=ax)
    return [
        Plot(
            "gradient_norm_vs_distance",
            png_bytes(figure),
            "gradient norm against distance for a tanh RNN, two LSTMs and a GRU",
        )
    ]


def step_contributions(fast: bool = False) -> list[Plot]:
    """Each step's share of the recurrent weights' gradient (loss at the last step)."""
    figure, ax = new_figure(9.0, 5.6)
    plot_contributions(_cells_report(fast), ax=ax)
    return [
        Plot(
            "contributions_per_step",
            png_bytes(figure),
            "each step's share of the gradient of the recurrent weights",
        )
    ]


def phase_diagram(fast: bool = False) -> list[Plot]:
    """The decay rate per step against sigma_max(W_hh), without and with input."""
    factory = partial(standard_model, "elman", hidden_size=HIDDEN, init="orthogonal", bias=0.0)
    scales = [0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 2.5, 3.0]
    result = sweep(
        factory,
        {"spectral_norm": scales, "input_scale": [0.0, 1.0]},
        steps=_settings(fast)["steps"],
        seeds=_settings(fast)["seeds"],
    )
    figure, ax = new_figure(9.0, 5.6)
    plot_phase(result, ax=ax)
    _relabel(
        ax,
        {
            "measured (input scale = 0.0)": "measured, zero input: the tanh stays linear (γ = 1)",
            "measured (input scale = 1.0)": "measured, standard normal input: the tanh saturates",
        },
    )
    return [
        Plot(
            "phase_diagram",
            png_bytes(figure),
            "decay rate per step against the recurrent weight's largest singular value",
        )
    ]


#: The deep nets beside the RNN: width, depth (= the RNN's steps), and each one's own init.
MLP_WIDTH, DEPTH = 256, 20
MLP_INITS = {"sigmoid": "glorot", "tanh": "glorot", "relu": "he"}


def depth_and_time(fast: bool = False) -> list[Plot]:
    """Sigmoid, tanh and ReLU MLPs of 20 layers per layer, beside a tanh RNN per step."""
    models: dict[str, Graph | tuple[Graph, dict[str, str]]] = {
        f"{act} MLP, {init} init": (presets.mlp(INPUT, MLP_WIDTH, DEPTH, act), {"init": init})
        for act, init in MLP_INITS.items()
    }
    models["tanh RNN, hidden 32, torch init"] = presets.elman(INPUT, HIDDEN)
    report = analyze(models, steps=DEPTH, seeds=_settings(fast)["seeds"])
    figure, ax = new_figure(9.0, 6.0)
    plot_gradient_norms(report, ax=ax)
    return [
        Plot(
            "depth_and_time",
            png_bytes(figure),
            "gradient norm per layer of three deep MLPs beside a tanh RNN per step",
        )
    ]


FORGET_BIASES = (0, 1, 2, 3)


#: The cells of the all-cells comparison: label, and the preset call at (input, hidden).
ALL_CELLS: dict[str, Callable[[int, int], Graph]] = {
    "tanh RNN": presets.elman,
    "LSTM": presets.lstm,
    "LSTM, peepholes": partial(presets.lstm, peephole=True),
    "GRU": presets.gru,
    "IndRNN": presets.indrnn,
    "minGRU": presets.mingru,
    "minLSTM": presets.minlstm,
    "LRU": presets.lru,
}


def all_cells(fast: bool = False) -> list[Plot]:
    """Every cell at hidden 32 over a long sequence: the gradient against the distance,
    and how far back it reaches."""
    report = analyze(
        {label: make(INPUT, HIDDEN) for label, make in ALL_CELLS.items()},
        steps=_settings(fast)["long_steps"],
        seeds=_settings(fast)["seeds"],
    )
    figure, (left, right) = new_figure(15.0, 6.0, columns=2)
    plot_gradient_norms(report, ax=left, theory=False)
    left.set_ylim(bottom=max(left.get_ylim()[0], -60))  # IndRNN's cut paths fall far lower
    _reach_bars(report, right, [label.replace(", ", ",\n") for label in ALL_CELLS], "s")
    return [
        Plot(
            "all_cells",
            png_bytes(figure),
            "gradient norm against distance for eight cells, and how far back each reaches",
        )
    ]


def forget_bias(fast: bool = False) -> list[Plot]:
    """LSTMs with forget-gate bias 0..3: the gradient on c, and how far back it reaches."""
    lstm = presets.lstm(INPUT, HIDDEN)
    report = analyze(
        {f"forget bias {b}": (lstm, {"forget_bias": float(b)}) for b in FORGET_BIASES},
        steps=_settings(fast)["steps"],
        seeds=_settings(fast)["seeds"],
    )
    figure, (left, right) = new_figure(14.0, 5.6, columns=2)
    plot_gradient_norms(report, ax=left, state="c")
    _reach_bars(
        report,
        right,
        [f"forget bias {b}\nf ≈ σ({b}) = {1 / (1 + math.exp(-b)):.2f}" for b in FORGET_BIASES],
    )
    return [
        Plot(
            "forget_gate_bias",
            png_bytes(figure),
            "gradient on the LSTM cell state for forget-gate biases 0 to 3",
        )
    ]


def _relabel(ax, names: dict[str, str], loc: str = "lower right") -> None:
    """Rename lines of ``ax`` (by their labels) and redraw its legend at ``loc``."""
    for line in ax.get_lines():
        line.set_label(names.get(line.get_label(), line.get_label()))
    ax.legend(fontsize=8, loc=loc)


def _reach_bars(report, ax, labels: list[str], symbol: str = "c") -> None:
    """Bars, one per model (``labels`` under them): the distance at which the gradient on
    its carrier state (``c`` where the model has one, else ``h``) falls below the report's
    threshold, hatched when it never does within the sequence."""
    for i, summary in enumerate(report.summary.values()):
        distance = summary["c" if "c" in summary else "h"].distance_to_threshold
        height = report.steps if distance is None else distance
        bar = ax.bar(i, height, color=f"C{i}", alpha=0.85, hatch="//" if distance is None else "")
        text = f"> {report.steps}" if distance is None else f"{distance}"
        ax.bar_label(bar, labels=[text], padding=3, fontsize=10)
    ax.set_xticks(range(len(labels)), labels, fontsize=9)
    ax.set_ylim(0, report.steps * 1.12)
    ax.set_ylabel(f"steps back before ‖∂L/∂{symbol}_t‖ < 1/1000 of its value at the loss")
    ax.set_title(
        f"How far back the gradient reaches (median of {len(report.settings['seeds'])} seeds)",
        fontsize=10,
    )
    ax.grid(True, axis="y", alpha=0.3)


def clipping(fast: bool = False) -> list[Plot]:
    """An exploding tanh RNN: its gradient against distance, and norm clipping."""
    model = (presets.elman(INPUT, HIDDEN), {"init": "orthogonal", "spectral_norm": 3.0})
    report = analyze(
        {"tanh RNN, σ_max(W_hh) = 3": model},
        steps=_settings(fast)["steps"],
        seeds=_settings(fast)["seeds"],
    )
    lengths = range(10, _settings(fast)["steps"] + 1, 10)
    trace = clipping_trace(model, lengths, max_norm=1.0, label="tanh RNN, σ_max(W_hh) = 3")
    figure, (left, right) = new_figure(14.0, 5.6, columns=2)
    plot_gradient_norms(report, ax=left, theory=False)
    plot_clipping(trace, ax=right)
    return [
        Plot(
            "exploding_and_clipping",
            png_bytes(figure),
            "an exploding gradient, and its norm before and after clipping",
        )
    ]


def training(fast: bool = False) -> list[Plot]:
    """Train a tanh RNN and an LSTM on the adding problem (see ``unroll.train``)."""
    _, figure = adding_problem_runs(**_settings(fast)["train"])
    return [
        Plot("training_adding_problem", png_bytes(figure), "loss and gradient reach while training")
    ]


def adding_problem_runs(
    length: int = 100,
    hidden: int = 32,
    iterations: int = 3000,
    batch: int = 32,
    lr: float = 0.01,
    seed: int = 0,
    probe_batch: int = 256,
):
    """Train a tanh RNN and an LSTM on the adding problem; return the runs and their figure.

    The LSTM's loss falls far below the memoryless baseline (MSE 1/6) while the plain
    tanh loop's stays near it; the right panel shows why: its gradient does not reach
    back to the first half of the sequence.

    Parameters
    ----------
    length, hidden, iterations, batch, lr, seed : optional
        The problem's ``T``, both nets' hidden size, and the training settings (Adam).
    probe_batch : int
        Sequences in the fixed batch the gradient profiles are measured on.

    Returns
    -------
    tuple
        ``({"tanh RNN": TrainHistory, "LSTM": TrainHistory}, matplotlib Figure)``.
    """
    task = adding_problem(length, probe_batch, seed=[seed, 2])
    models = {"tanh RNN": presets.elman(2, hidden, "tanh"), "LSTM": presets.lstm(2, hidden)}
    histories = {}
    for label, graph in models.items():
        every = max(1, iterations // 20)
        histories[label] = train(
            graph, task, iterations, "adam", lr, batch=batch, seed=seed, record_every=every
        )
        histories[label].label = label
    finals = ", ".join(f"{label} {h.final_loss():.3g}" for label, h in histories.items())
    figure = training_figure(
        histories,
        title=(
            f"Adding problem, T = {length} (hidden {hidden}, Adam lr {lr:g}, batch {batch}): "
            f"final loss {finals}; memoryless baseline 1/6 = 0.167"
        ),
        count=2,
    )
    figure.supxlabel(_training_caption(histories, task), fontsize=9.5, color="0.2")
    return histories, figure


def _training_caption(histories: dict, task) -> str:
    last, (start, end) = task.steps - 1, task.source_span
    reach = ", ".join(
        f"the {label}'s {power_text(h.reach(max(h.profiles)))}" for label, h in histories.items()
    )
    return (
        f"The answer is read at the last step (t = {last}); the first marked value lies in "
        f"steps {start}–{end - 1}. A net can learn to use it only if the gradient ∂L/∂h_t "
        f"still reaches those steps.\nAfter training, the gradient at t = {start}, relative "
        f"to its value at the loss, is {reach}."
    )
