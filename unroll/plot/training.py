"""Figures of training runs: the loss with its baseline, and the gradient's reach over time.

Each function draws on a matplotlib ``Axes`` (or a new one) from a
:class:`~unroll.training.TrainHistory` or a ``{label: TrainHistory}`` mapping.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..training import TrainHistory, running_mean_window
from .gradients import axes_or_new

__all__ = ["plot_losses", "plot_profiles", "power_text", "training_figure"]


def _as_histories(histories) -> dict[str, TrainHistory]:
    if isinstance(histories, TrainHistory):
        return {histories.label: histories}
    return dict(histories)


def _running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean over the last ``window`` values at each point (fewer at the start)."""
    sums = np.cumsum(np.concatenate([[0.0], values]))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(0, ends - window)
    return (sums[ends] - sums[starts]) / (ends - starts)


def plot_losses(histories, ax=None, window: int | None = None):
    """Minibatch loss against iterations (faint) with its running mean, and the baseline.

    The loss axis is logarithmic when the running means span a factor of 10 or more.

    Parameters
    ----------
    histories : TrainHistory or mapping of label to TrainHistory
    ax : matplotlib Axes, optional
    window : int, optional
        Iterations in the running mean (default: 1/40 of the run, at least 1; the final
        loss in the legend is the mean of the last ``window``).

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import unroll
    >>> from unroll.tasks import adding_problem
    >>> h = unroll.train(unroll.presets.elman(2, 3), adding_problem(4, 8), iterations=5)
    >>> plot_losses(h).get_xlabel()
    'training iteration'
    """
    ax = axes_or_new(ax, figsize=(7.0, 4.5))
    histories = _as_histories(histories)
    baselines: dict[float, TrainHistory] = {}
    means = []
    for i, (label, h) in enumerate(histories.items()):
        color = f"C{i % 10}"
        n = len(h.losses)
        steps = np.arange(1, n + 1)
        width = window or running_mean_window(n)
        means.append(_running_mean(h.losses, width))
        ax.plot(steps, h.losses, color=color, lw=0.6, alpha=0.25)
        ax.plot(
            steps,
            means[-1],
            color=color,
            lw=2.2,
            label=f"{label}: {h.final_loss(width):.3g} at the end (mean of {width})",
        )
        baselines.setdefault(round(h.baseline, 12), h)
    for h in baselines.values():
        ax.axhline(
            h.baseline,
            color="0.15",
            lw=1.4,
            ls="--",
            label=f"memoryless baseline ({h.task.kind.baseline_text})",
        )
    spread = np.concatenate(means)
    spread = spread[spread > 0]
    log = spread.size > 0 and spread.max() / spread.min() >= 10.0
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("training iteration")
    loss = next(iter(histories.values())).task.loss
    scale = ", log scale" if log else ""
    ax.set_ylabel(f"training loss ({_LOSS_NAMES.get(loss, loss)}{scale})")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8.5, loc="best")
    return ax


_LOSS_NAMES = {"mse": "mean squared error", "xent": "cross-entropy"}


def _shades(index: int, alone: bool) -> Callable[[float], tuple]:
    """Colours from early (0) to late (1) in training: viridis for one model, else light
    to full shades of the model's own colour."""
    from matplotlib import colormaps
    from matplotlib.colors import to_rgb

    if alone:
        return lambda late: colormaps["viridis"](0.85 * (1.0 - late))
    base = np.array(to_rgb(f"C{index % 10}"))
    return lambda late: tuple(1.0 - (1.0 - base) * (0.45 + 0.55 * late))


def power_text(log10_value: float) -> str:
    """``10^-3.2`` in mathtext, or ``0`` for an exactly zero gradient."""
    return "0" if np.isneginf(log10_value) else f"$10^{{{log10_value:.1f}}}$"


def _profile_iterations(h: TrainHistory, count: int) -> list[int]:
    recorded = sorted(h.profiles)
    if len(recorded) <= count:
        return recorded
    picks = np.linspace(0, len(recorded) - 1, count).round().astype(int)
    return [recorded[i] for i in sorted(set(picks.tolist()))]


def plot_profiles(histories, ax=None, iterations=None, count: int = 5, relative: bool = True):
    """The gradient-norm profile ``log10 ||dL/dh_t||`` over steps at points of training.

    One colour per model; within a model, lighter and dashed is earlier, darker and
    solid is later. The steps holding what must be remembered are shaded (the adding
    problem's first half, the copy problem's ten symbols): the gradient of the recall
    loss must reach them for the net to learn.

    Parameters
    ----------
    histories : TrainHistory or mapping of label to TrainHistory
    ax : matplotlib Axes, optional
    iterations : list of int, optional
        Recorded iterations to draw (default: ``count`` of them, first to last).
    count : int
        How many recorded profiles to draw per model when ``iterations`` is not given.
    relative : bool
        Plot each profile relative to its value at the last step (a recall step), so
        that the loss shrinking does not shift the curve.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import unroll
    >>> from unroll.tasks import adding_problem
    >>> h = unroll.train(unroll.presets.elman(2, 3), adding_problem(4, 8), iterations=5)
    >>> plot_profiles(h).get_xlabel()
    'time step t (the answer is read at the last step)'
    """
    ax = axes_or_new(ax, figsize=(7.0, 4.5))
    histories = _as_histories(histories)
    first = next(iter(histories.values()))
    steps = first.task.steps
    start, end = first.task.source_span
    ax.axvspan(start - 0.5, end - 0.5, color="0.9", lw=0)
    ax.text(
        (start + end - 1) / 2,
        0.98,
        first.task.kind.source_text,
        transform=ax.get_xaxis_transform(),
        ha="center",
        va="top",
        fontsize=8.5,
        color="0.3",
        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.5},
        zorder=5,
    )
    for i, (label, h) in enumerate(histories.items()):
        chosen = iterations if iterations is not None else _profile_iterations(h, count)
        chosen = [it for it in chosen if it in h.profiles]
        shade = _shades(i, len(histories) == 1)
        for j, it in enumerate(chosen):
            late = j / max(1, len(chosen) - 1)
            color = shade(late)
            curve = h.profiles[it] - (h.profiles[it][-1] if relative else 0.0)
            ax.plot(
                np.arange(len(curve)),
                curve,
                color=color,
                lw=1.2 + 1.3 * late,
                ls="-" if j == len(chosen) - 1 else (0, (4, 2)),
                label=f"{label}, iteration {it}: {power_text(curve[start])} at t = {start}",
            )
    ax.set_xlim(-0.5, steps - 0.5)
    recall = first.task.recall_steps
    where = "the last step" if len(recall) == 1 else f"the last {len(recall)} steps"
    ax.set_xlabel(f"time step t (the answer is read at {where})")
    node, last = first.profile_node, steps - 1
    norm = rf"\|\partial L/\partial {node}_{{t}}\|"
    ax.set_ylabel(
        rf"${norm}\ /\ \|\partial L/\partial {node}_{{{last}}}\|$ (log scale)"
        if relative
        else f"${norm}$ (log scale)"
    )
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"$10^{{{round(v)}}}$"))
    ax.grid(True, alpha=0.25)
    ax.legend(fontsize=8, loc="lower right")
    return ax


def training_figure(histories, title: str | None = None, count: int = 5):
    """A two-panel figure: loss against iterations, and gradient profiles during training.

    Returns
    -------
    matplotlib.figure.Figure
        Not attached to pyplot (no backend needed); save it with ``savefig``.
    """
    from matplotlib.figure import Figure

    histories = _as_histories(histories)
    figure = Figure(figsize=(13.0, 5.2), layout="constrained")
    left, right = figure.subplots(1, 2)
    plot_losses(histories, ax=left)
    plot_profiles(histories, ax=right, count=count)
    h = next(iter(histories.values()))
    left.set_title("Loss while training (faint: each minibatch; bold: running mean)", fontsize=10)
    right.set_title(
        "How far back the gradient reaches, early (dashed) and late (solid) in training",
        fontsize=10,
    )
    task = h.task
    s = h.settings
    figure.suptitle(
        title
        or (
            f"{task.name} problem, T = {task.length}: {', '.join(histories)} "
            f"({s['optimizer']} lr {s['lr']:g}, batch {s['batch']}, "
            f"{s['iterations']} iterations)"
        ),
        fontsize=12,
    )
    return figure
