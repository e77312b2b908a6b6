"""Matplotlib figures: gradient norms, contributions, heatmaps, phase diagrams, Lyapunov
spectra, clipping, and training runs.

Every ``plot_*`` function takes ``ax=None`` (a new figure when omitted), draws on it and
returns the Axes; none calls ``plt.show()`` or picks a backend. The ``*_figure``
functions return a whole :class:`matplotlib.figure.Figure`, not attached to pyplot, for
``savefig``.
"""

from __future__ import annotations

from .gradients import (
    AXIS_NAMES,
    plot_clipping,
    plot_contributions,
    plot_gradient_norms,
    plot_heatmap,
    plot_lyapunov,
    plot_phase,
)
from .training import plot_losses, plot_profiles, training_figure

__all__ = [
    "AXIS_NAMES",
    "gradient_figure",
    "phase_figure",
    "plot_clipping",
    "plot_contributions",
    "plot_gradient_norms",
    "plot_heatmap",
    "plot_losses",
    "plot_lyapunov",
    "plot_phase",
    "plot_profiles",
    "training_figure",
]


def gradient_figure(report):
    """A figure of :func:`plot_gradient_norms` for a :class:`~unroll.analysis.Report`
    (what ``unroll analyze --plot`` saves).

    Examples
    --------
    >>> import unroll
    >>> rep = unroll.analyze(unroll.presets.elman(2, 4), steps=5, seeds=2)
    >>> gradient_figure(rep).axes[0].get_yscale()
    'linear'
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8.5, 5.5))
    plot_gradient_norms(report, ax=figure.subplots())
    return figure


def phase_figure(result):
    """A figure of :func:`plot_phase` for a :class:`~unroll.analysis.SweepResult` (what
    ``unroll sweep --plot`` saves)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4.5))
    plot_phase(result, ax=figure.subplots())
    return figure
