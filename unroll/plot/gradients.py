"""Matplotlib figures of the analysis: gradient norms, contributions, heatmaps, phase diagrams.

Every function takes ``ax=None`` (a new figure when omitted), draws on it and returns
the Axes; none calls ``plt.show()`` or picks a backend. Norms are plotted as their
log10 (ticks read ``10^k``), so values far below float64's range (``10^-3000``) still
appear where they belong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ..analysis.axes import AXES

__all__ = [
    "AXIS_NAMES",
    "plot_clipping",
    "plot_contributions",
    "plot_gradient_norms",
    "plot_heatmap",
    "plot_lyapunov",
    "plot_phase",
]

#: Axis titles for sweep settings and measured columns.
AXIS_NAMES: dict[str, str] = {
    "spectral_norm": "spectral norm σ_max(W_hh)",
    "spectral_radius": "spectral radius ρ(W_hh)",
    "forget_bias": "forget-gate bias",
    "hidden_size": "hidden size",
    "steps": "sequence length T (steps)",
    "activation": "activation",
    "input_scale": "input scale",
    "state": "state",
    "decay_per_step": "fitted decay rate (decades per step)",
    "first_steps_share": "share of the first steps in the gradient",
    "log10_drop_over_horizon": "log10 of the norm's change over the horizon",
}

_FLOAT64_FLOOR = math.log10(np.finfo(float).tiny)  # about -307.65
_VANISH, _EXPLODE, _STABLE = "#d8e6f3", "#f6dcdc", "#e8f2e3"


def axes_or_new(ax, figsize=(8.0, 5.6)):
    """``ax``, or the Axes of a new figure (pyplot imported only then)."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _power_of_ten_ticks(axis) -> None:
    """Label an axis that holds log10 values with ``10^k``."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"$10^{{{round(v)}}}$"))


def _carrier(profile, theories) -> str:
    """The state a model carries its memory in: the one its theory overlay describes."""
    return next(iter(theories), profile.state_nodes[0])


def _states_to_draw(profile, theories, state) -> list[str]:
    if state is None:
        return [_carrier(profile, theories)]
    if state == "all":
        return profile.state_nodes
    return [state] if state in profile.state_nodes else []


def _theory_label(profile, state: str, theory: dict) -> str:
    if theory["kind"] == "pascanu bound":
        factor = 10.0 ** float(np.median(profile.theory_factors[state]))
        verdict = "< 1, must vanish" if factor < 1 else "≥ 1, no guarantee"
        return f"Pascanu bound (γσ_max)^k, γσ_max = {factor:.2f} {verdict}"
    gate = theory["formula"].split("∏ ")[1].split(")")[0] if "∏ " in theory["formula"] else ""
    if gate:
        return f"the {state}-path through gate {gate} alone (∏{gate})"
    return f"ungated {state}-path, factor 1"


def _norm_label(states, per_loss: bool = False) -> str:
    """``states``: ``(state, index)`` pairs drawn (``("h", "t")``; ``("h", "l")`` per layer)."""
    if per_loss:
        return "gradient norm (log scale)"
    names = ", ".join(f"‖∂L/∂{s}_{i}‖" for s, i in states)
    return f"{names} (log scale)"


def plot_gradient_norms(report, ax=None, state=None, theory: bool = True, band: bool = True):
    """Gradient norm against the distance from the loss: one line per model, its seed band.

    Parameters
    ----------
    report : Report
        From :func:`unroll.analysis.analyze`.
    ax : matplotlib Axes, optional
    state : str, optional
        A state node to draw (``"h"``, ``"c"``), ``"all"``, or ``None``: each model's
        carrier (the LSTM's cell ``c``; ``h`` otherwise).
    theory : bool
        Draw the theory overlay (Pascanu bound, gate-path product) dashed.
    band : bool
        Shade the quantile band over seeds.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import unroll
    >>> from unroll.analysis import analyze
    >>> rep = analyze(unroll.presets.elman(2, 4), steps=10, seeds=2)
    >>> ax = plot_gradient_norms(rep)
    >>> ax.get_xlabel()
    'distance from the loss (steps)'
    """
    ax = axes_or_new(ax)
    theories = report.theory
    drawn, theory_notes, values = [], [], [np.zeros(1)]
    for i, (label, profile) in enumerate(report.profiles.items()):
        color = f"C{i % 10}"
        distance = np.arange(profile.steps)
        model_theory = theories.get(label, {})
        for j, s in enumerate(_states_to_draw(profile, model_theory, state)):
            name = label if len(profile.state_nodes) == 1 else f"{label} — {s}"
            style = "-" if j == 0 else (0, (5, 1, 1, 1))
            values += _draw_decay(ax, distance, profile, s, name, color, style, band)
            drawn.append((s, AXES[profile.axis].index))
            if theory and s in model_theory:
                th = model_theory[s]
                ax.plot(distance, th["median"], color=color, lw=1.2, ls="--")
                values.append(th["median"])
                theory_notes.append(f"{name}: {_theory_label(profile, s, th)}")
    if theory_notes:
        ax.plot(
            [],
            [],
            color="0.3",
            lw=1.2,
            ls="--",
            label="dashed, same colour: theory\n  " + "\n  ".join(theory_notes),
        )
    finite = np.concatenate([v[np.isfinite(v)] for v in values])
    ax.set_ylim(finite.min() - 1.0, finite.max() + 1.0)
    longest = max(p.steps for p in report.profiles.values())
    ax.set_xlim(0, max(longest - 1, 1))
    ax.set_xlabel(_distance_label(report))
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    per_loss = any(p.per_loss for p in report.profiles.values())
    ax.set_ylabel(_norm_label(dict.fromkeys(drawn), per_loss))
    _power_of_ten_ticks(ax.yaxis)
    if finite.min() < _FLOAT64_FLOOR:
        ax.axhline(_FLOAT64_FLOOR, color="0.5", lw=0.8, ls=":")
        ax.text(
            longest - 1,
            _FLOAT64_FLOOR,
            "float64 underflows below (values exact)",
            ha="right",
            va="bottom",
            fontsize=8,
            color="0.35",
        )
    seeds = len(report.settings["seeds"])
    lo, hi = report.settings["quantiles"]
    ax.set_title(
        f"Gradient norm vs distance from the loss ({_extent(report)}; median of "
        f"{seeds} seeds, band {lo:.0%}–{hi:.0%})\n{_verdict_caption(report)}",
        fontsize=10,
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return ax


def _axes_of(report) -> dict:
    """``{axis: longest profile}`` of the report's models, in order of appearance."""
    out: dict = {}
    for p in report.profiles.values():
        out[AXES[p.axis]] = max(out.get(AXES[p.axis], 0), p.steps)
    return out


def _distance_label(report) -> str:
    """``distance from the loss (steps)``, ``layers from the loss``, or both in one."""
    axes = list(_axes_of(report))
    if len(axes) == 1:
        return axes[0].distance_label
    return "distance from the loss: " + ", ".join(f"{a.units} ({a.nets})" for a in axes)


def _extent(report) -> str:
    return ", ".join(f"{n} {a.units}" for a, n in _axes_of(report).items())


def _draw_decay(ax, distance, profile, s, name, color, style, band) -> list[np.ndarray]:
    """The curve the verdict reads (solid, with its band) and, where losses sit at many
    steps, the total dL/ds beside it (thin, dotted); returns the values drawn."""
    summary = profile.summary[s]
    verdict = f"{summary.verdict}, ×{summary.factor_per_step:.2g} per {AXES[profile.axis].unit}"
    total = profile.by_distance(s)
    per_loss = s in profile.per_loss
    curve = profile.per_loss_by_distance(s) if per_loss else total
    label = (
        f"{name}: each loss alone, ‖∂ℓ_t/∂{s}_(t−k)‖, median over t — {verdict} (the verdict)"
        if per_loss
        else f"{name}: {verdict}"
    )
    ax.plot(distance, curve["median"], color=color, lw=2.4, ls=style, label=label)
    if band:
        ax.fill_between(distance, curve["q_low"], curve["q_high"], color=color, alpha=0.18, lw=0)
    if per_loss:
        ax.plot(
            distance,
            total["median"],
            color=color,
            lw=1.3,
            ls=":",
            label=f"{name}: total ‖∂L/∂{s}_t‖ at k = T−1−t: sums every later loss, so it "
            "stays high",
        )
    return [curve["q_low"], curve["q_high"], total["median"]]


def _verdict_caption(report) -> str:
    """Which curve the verdicts read: each loss's own gradient, or the total."""
    sources = {p.verdict_from for p in report.profiles.values()}
    if sources == {"total"}:
        return "verdict from the total ‖∂L/∂s‖ (one loss step)"
    per_loss = "verdict from each loss's own gradient (solid), not the total (dotted)"
    return per_loss if sources == {"per-loss"} else per_loss + " where losses sit at many steps"


def _legend_below(ax) -> None:
    """A two-column legend under the axes, so that it never hides a curve."""
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(
        handles,
        labels,
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.13),
        ncol=2 if len(labels) > 3 else 1,
        frameon=False,
    )


def plot_contributions(report, ax=None, weight: str = "recurrent", band: bool = True):
    """Each step's share of a tied weight's gradient, over the sequence (log scale).

    Parameters
    ----------
    report : Report
    ax : matplotlib Axes, optional
    weight : str
        A recurrent weight (``"W_hh"``) or ``"recurrent"``: all recurrent weights of
        each model as one vector.
    band : bool

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import unroll
    >>> from unroll.analysis import analyze
    >>> ax = plot_contributions(analyze(unroll.presets.elman(2, 4), steps=10, seeds=2))
    >>> ax.get_xlabel()
    'time step t (the loss is at the last step)'
    """
    ax = axes_or_new(ax)
    steps = np.arange(report.steps)
    first = max(1, math.ceil(report.rule.first_steps_fraction * report.steps))
    ax.axvspan(-0.5, first - 0.5, color="0.92", lw=0)
    for i, (label, profile) in enumerate(report.profiles.items()):
        if weight not in profile.shares:
            continue
        color = f"C{i % 10}"
        with np.errstate(divide="ignore"):
            b = {k: np.log10(v) for k, v in profile.band(profile.shares[weight]).items()}
        share = profile.first_steps_share if weight == "recurrent" else None
        text = label if share is None else f"{label} — first {first} steps: {share:.2g}"
        ax.plot(steps, b["median"], color=color, lw=2, label=text)
        if band:
            ax.fill_between(steps, b["q_low"], b["q_high"], color=color, alpha=0.18, lw=0)
    what = "the recurrent weights" if weight == "recurrent" else weight
    ax.set_xlabel("time step t (the loss is at the last step)")
    ax.set_ylabel(f"share of the gradient of {what} (log scale)")
    _power_of_ten_ticks(ax.yaxis)
    ax.set_xlim(-0.5, report.steps - 0.5)
    ax.set_title(f"Which steps {what} learn from (grey: the first {first} steps)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return ax


def plot_heatmap(result, node: str = "h", ax=None, sample: int | None = None):
    """``|∂L/∂node_t|`` per unit over time as a log-colour image.

    Parameters
    ----------
    result : BPTTResult
    node : str
    ax : matplotlib Axes, optional
    sample : int, optional
        A batch row; by default the norm over the batch per unit.

    Returns
    -------
    matplotlib Axes
        Units whose gradient is exactly 0 or underflows float64 are grey.

    Examples
    --------
    >>> import unroll
    >>> g = unroll.presets.elman(2, 3)
    >>> u = unroll.unroll(g, 5, mode="many-to-one")
    >>> r = unroll.bptt(u, unroll.init_params(g), {"x": np.ones((5, 1, 2))},
    ...                 {("h", 4): np.ones((1, 3))})
    >>> plot_heatmap(r, "h").get_images()[0].get_array().shape
    (3, 5)
    """
    ax = axes_or_new(ax)
    T = result.unrolled.steps
    size = result.unrolled.graph.nodes[node].size
    grid = np.full((size, T), np.nan)
    for t in range(T):
        if result.unrolled.present(node, t):
            g = np.asarray(result.node_grads[(node, t)], dtype=float)
            g = np.abs(g[sample]) if sample is not None else np.linalg.norm(g, axis=0)
            with np.errstate(divide="ignore"):
                grid[:, t] = np.log10(g)
    masked = np.ma.masked_invalid(grid)
    import matplotlib as mpl

    cmap = mpl.colormaps["viridis"].with_extremes(bad="0.8")
    image = ax.imshow(
        masked,
        aspect="auto",
        origin="lower",
        cmap=cmap,
        interpolation="nearest",
        extent=(-0.5, T - 0.5, -0.5, size - 0.5),
    )
    bar = ax.figure.colorbar(image, ax=ax)
    bar.set_label(f"|∂L/∂{node}_t| per unit (log10)")
    ax.set_xlabel("time step t")
    ax.set_ylabel(f"unit of {node}")
    ax.set_title(f"Where the gradient reaches: |∂L/∂{node}_t| per unit", fontsize=10)
    return ax


def _group_key(row, x, grid_keys):
    return (*((k, row[k]) for k in grid_keys if k != x), ("state", row["state"]))


def _crossing(xs, ys) -> float | None:
    """Linear interpolation of the x where ``ys`` crosses 0 (first sign change)."""
    for i in range(len(xs) - 1):
        (x0, y0), (x1, y1) = (xs[i], ys[i]), (xs[i + 1], ys[i + 1])
        if y0 == 0:
            return x0
        if y0 * y1 < 0:
            return x0 + (x1 - x0) * (-y0) / (y1 - y0)
    return None


def plot_phase(
    sweep_result,
    x: str | None = None,
    ax=None,
    y: str = "decay_per_step",
    state: str | None = None,
    theory: bool = True,
):
    """The decay rate against a swept setting, with the vanishing and exploding regions.

    Parameters
    ----------
    sweep_result : SweepResult
    x : str, optional
        The setting on the x axis (default: the grid's first key).
    ax : matplotlib Axes, optional
    y : str
        A measured column (default ``decay_per_step``).
    state : str, optional
        Only rows of this state node (default: all; one line per state node).
    theory : bool
        Where Pascanu's bound applies, draw ``log10(gamma sigma_max)`` dashed and mark
        where ``gamma sigma_max = 1``.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> from unroll.analysis import sweep
    >>> res = sweep("elman", {"spectral_norm": [0.5, 1.5], "hidden_size": [3]}, steps=10,
    ...             seeds=2)
    >>> plot_phase(res).get_xlabel()
    'spectral norm σ_max(W_hh)'
    """
    ax = axes_or_new(ax)
    grid_keys = list(sweep_result.grid)
    x = x or grid_keys[0]
    rows = [r for r in sweep_result.rows if state is None or r["state"] == state]
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault(_group_key(r, x, grid_keys), []).append(r)
    rule = sweep_result.rule
    ax.axhspan(rule["exploding_above"], 1e9, color=_EXPLODE, lw=0, zorder=0)
    ax.axhspan(-1e9, rule["vanishing_below"], color=_VANISH, lw=0, zorder=0)
    ax.axhspan(rule["vanishing_below"], rule["exploding_above"], color=_STABLE, lw=0, zorder=0)
    ax.axhline(0.0, color="0.3", lw=0.8)
    ys_all: list[float] = []
    bounds: dict[tuple[tuple[float, ...], tuple[float, ...]], None] = {}  # in order, once each
    several_states = len({r["state"] for r in rows}) > 1
    for i, (key, members) in enumerate(groups.items()):
        members = sorted(members, key=lambda r: r[x])
        xs = [r[x] for r in members]
        ys = [np.nan if r[y] is None else r[y] for r in members]
        ys_all += ys
        extra = ", ".join(
            f"{AXIS_NAMES.get(k, k)} = {v}" for k, v in key if k != "state" or several_states
        )
        ax.plot(
            xs,
            ys,
            "o-",
            color=f"C{i % 10}",
            lw=2,
            ms=4,
            label="measured" + (f" ({extra})" if extra else ""),
        )
        gamma_sigma = [r.get("gamma_sigma_max") for r in members]
        if theory and y == "decay_per_step" and all(g is not None and g > 0 for g in gamma_sigma):
            bounds[tuple(xs), tuple(math.log10(g) for g in gamma_sigma)] = None
    for bound_xs, logs in bounds:
        ys_all += list(logs)
        ax.plot(
            bound_xs,
            logs,
            color="black",
            lw=1.8,
            ls=(0, (4, 3)),
            zorder=5,
            label="Pascanu bound log10(γ σ_max)" if len(bounds) == 1 else None,
        )
        cross = _crossing(bound_xs, logs)
        if cross is not None:
            ax.axvline(cross, color="0.3", lw=1, ls=":")
            ax.text(
                cross,
                0.99,
                " γ σ_max = 1",
                transform=ax.get_xaxis_transform(),
                ha="left",
                va="top",
                fontsize=8,
                color="0.25",
            )
    finite = [v for v in ys_all if np.isfinite(v)]
    low, high = min(finite, default=-0.1), max(finite, default=0.1)
    pad = 0.08 * max(high - low, 0.02)
    ax.set_ylim(
        min(low, -2 * abs(rule["vanishing_below"])) - pad,
        max(high, 2 * abs(rule["exploding_above"])) + pad,
    )
    ax.text(
        0.01,
        0.03,
        "vanishing",
        transform=ax.transAxes,
        fontsize=11,
        color="#2b5d8a",
        weight="bold",
        va="bottom",
    )
    ax.text(
        0.01,
        0.97,
        "exploding",
        transform=ax.transAxes,
        fontsize=11,
        color="#9b2d2d",
        weight="bold",
        va="top",
    )
    ax.set_xlabel(AXIS_NAMES.get(x, x))
    ax.set_ylabel(AXIS_NAMES.get(y, y))
    steps = sweep_result.settings["steps"]
    ax.set_title(
        f"Phase diagram: {AXIS_NAMES.get(y, y)} vs {AXIS_NAMES.get(x, x)} ({steps} steps)",
        fontsize=10,
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_lyapunov(exponents, ax=None):
    """Lyapunov exponents, largest first: above 0 directions grow, below 0 they shrink.

    Parameters
    ----------
    exponents : array or dict
        From :func:`unroll.analysis.lyapunov_exponents`, or ``{label: array}``.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> ax = plot_lyapunov({"diagonal W": np.log([1.2, 0.5])})
    >>> ax.get_lines()[0].get_ydata().round(3).tolist()
    [0.182, -0.693]
    """
    ax = axes_or_new(ax)
    series = exponents if isinstance(exponents, Mapping) else {"": exponents}
    values = []
    for i, (label, lam) in enumerate(series.items()):
        lam = np.sort(np.asarray(lam, dtype=float))[::-1]
        values += list(lam[np.isfinite(lam)])
        ax.plot(
            np.arange(1, len(lam) + 1),
            lam,
            "o-",
            color=f"C{i % 10}",
            ms=4,
            lw=1.5,
            label=label or None,
        )
    low, high = min(values, default=-1.0), max(values, default=1.0)
    pad = 0.12 * max(high - low, 0.1)
    low, high = min(low, 0.0) - pad, max(high, 0.0) + pad
    ax.axhspan(0, high, color=_EXPLODE, lw=0, zorder=0)
    ax.axhspan(low, 0, color=_VANISH, lw=0, zorder=0)
    ax.axhline(0.0, color="0.3", lw=0.8)
    ax.set_ylim(low, high)
    ax.text(
        0.99,
        0.97,
        "growing directions (exploding)",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=9,
        color="#9b2d2d",
    )
    ax.text(
        0.99,
        0.03,
        "shrinking directions (vanishing)",
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize=9,
        color="#2b5d8a",
    )
    ax.set_xlabel("direction i (sorted, largest first)")
    ax.set_ylabel("Lyapunov exponent λ_i (log growth per step)")
    ax.set_title(
        "Lyapunov spectrum of the state map (QR method): a direction grows by e^λ per step",
        fontsize=10,
    )
    ax.grid(True, alpha=0.3)
    if any(series):
        ax.legend(fontsize=8)
    return ax


def plot_clipping(trace, ax=None):
    """Gradient norm against sequence length before and after clipping at ``c``.

    Parameters
    ----------
    trace : ClippingTrace
        From :func:`unroll.analysis.clipping_trace` (an exploding model shows the point).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import unroll
    >>> from unroll.analysis import clipping_trace
    >>> g = unroll.presets.elman(2, 3, activation="identity")
    >>> trace = clipping_trace((g, {"spectral_radius": 1.5}), [5, 10], max_norm=1.0)
    >>> plot_clipping(trace).get_yscale()
    'log'
    """
    ax = axes_or_new(ax)
    ax.plot(
        trace.lengths,
        trace.norm_before,
        "o-",
        color="#c0392b",
        lw=2,
        ms=4,
        label="before clipping ‖g‖",
    )
    ax.plot(
        trace.lengths,
        trace.norm_after,
        "s-",
        color="#2471a3",
        lw=2,
        ms=4,
        label="after clipping: c·g/‖g‖ when ‖g‖ > c (Pascanu et al. 2013)",
    )
    ax.axhline(
        trace.max_norm, color="0.3", lw=1, ls="--", label=f"threshold c = {trace.max_norm:g}"
    )
    ax.set_yscale("log")
    ax.set_xlabel(AXIS_NAMES["steps"])
    ax.set_ylabel("gradient norm ‖∂L/∂θ‖ over all parameters (log scale)")
    ax.set_title(
        f"Gradient clipping on {trace.label}: direction kept, length capped at c", fontsize=10
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return ax
