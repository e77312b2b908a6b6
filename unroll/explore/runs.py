"""The runs an explorer shows: one BPTT run per model, its numbers ready for a page.

A :class:`Run` is a model's label, its unrolled graph and one :class:`~unroll.BPTTResult`.
:func:`probe_runs` makes them the way ``unroll render --grads`` does (seeded parameters
and inputs, a cotangent of ones on the outputs at the last loss step). :class:`LogScale`
is the one colour scale of ``log10 ||dL/dv||`` that every model of a page (and every
frame of an animation) is painted on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..analysis.probes import probe, probe_loss_instances
from ..engine import BPTTResult
from ..errors import UnrollError
from ..models import load_model

__all__ = [
    "COLOUR_MAP",
    "VECTOR_ENTRIES",
    "ZERO_COLOUR",
    "ExploreError",
    "LogScale",
    "Run",
    "as_runs",
    "ink",
    "probe_runs",
]

#: The matplotlib colour map of gradient norms (ColorBrewer YlOrRd, as the diagrams use).
COLOUR_MAP = "YlOrRd"
#: The colour of a copy whose gradient is exactly zero.
ZERO_COLOUR = "#e6e6e6"
#: How many leading entries of a value or gradient vector a tooltip lists.
VECTOR_ENTRIES = 6


class ExploreError(UnrollError):
    """An explorer or animation asked for something it cannot show."""


@dataclass(frozen=True)
class Run:
    """One model's BPTT run, as an explorer shows it."""

    label: str
    result: BPTTResult
    loss_at: list | None = None  # where a probe's cotangent sits, drawn as the loss L

    @property
    def unrolled(self):
        """The unrolled graph the run ran on."""
        return self.result.unrolled

    @property
    def steps(self) -> int:
        """The number of time steps."""
        return self.unrolled.steps

    @property
    def states(self) -> list[str]:
        """The state nodes (read across time), whose gradient norms the plot shows."""
        return self.unrolled.graph.state_nodes()

    @cached_property
    def norms(self) -> dict[str, list[float]]:
        """``{node: [log10 ||dL/d(node, t)|| for t in 0..steps-1]}`` (exact; nan: no copy)."""
        graph = self.unrolled.graph
        return {name: self.result.log10_grad_norms(name).tolist() for name in sorted(graph.nodes)}

    @property
    def copies(self):
        """The node copies ``(name, t)`` of the run (a mapping to their values; ``in`` works
        without building the unrolled DAG)."""
        return self.result.values

    def copy_log10(self, name: str, t: int) -> float:
        """``log10 ||dL/d(name, t)||``: exact inside the sequence, from the float gradient of
        a boundary copy (an initial state) outside it."""
        if 0 <= t < self.steps:
            return self.norms[name][t]
        grad = np.abs(np.asarray(self.result.node_grads[(name, t)], dtype=float))
        top = float(grad.max()) if grad.size else 0.0
        if not math.isfinite(top) or top == 0.0:  # an overflowed run's inf or nan, or zero
            return top if top != 0.0 else -math.inf
        return math.log10(top * float(np.linalg.norm(grad / top)))


def probe_runs(models, steps: int, *, seed: int = 0, mode: str = "synced", **limits) -> list[Run]:
    """One probe run (as ``unroll render --grads`` makes) per model, labelled as given.

    Examples
    --------
    >>> [(run.label, run.steps, run.states) for run in probe_runs(["neuron", "lstm"], 3)]
    [('neuron', 3, ['h']), ('lstm', 3, ['c', 'h'])]
    """
    runs = []
    for spec in models:
        model = load_model(spec)
        _, result = probe(model, steps, seed=seed, mode=mode, **limits)
        runs.append(Run(model.label, result, probe_loss_instances(result.unrolled)))
    return runs


def as_runs(models, steps: int, seed: int, mode: str, labels=None, **limits) -> list[Run]:
    """Runs from MODEL specs, graphs, :class:`~unroll.models.ModelSpec` objects or ready
    :class:`~unroll.BPTTResult` objects (shown as they are), one list or a single one."""
    if isinstance(models, str | BPTTResult) or not hasattr(models, "__iter__"):
        models = [models]
    models = list(models)
    if not models:
        raise ExploreError("nothing to explore: give at least one MODEL")
    labels = list(labels) if labels is not None else [None] * len(models)
    if len(labels) != len(models):
        raise ExploreError(f"{len(labels)} labels for {len(models)} models")
    runs = []
    for model, label in zip(models, labels, strict=True):
        if isinstance(model, BPTTResult):
            run = Run(model.unrolled.graph.name, model)
        else:
            (run,) = probe_runs([model], steps, seed=seed, mode=mode, **limits)
        runs.append(Run(label or run.label, run.result, run.loss_at))
    return runs


@dataclass(frozen=True)
class LogScale:
    """The colour scale of ``log10 ||dL/dv||``: whole decades ``low`` .. ``high``.

    Examples
    --------
    >>> scale = LogScale.spanning([-3.2, -0.4, float("nan"), float("-inf")])
    >>> scale, scale.position(-2.0), scale.colour(-4.0), scale.colour(float("-inf"))
    (LogScale(low=-4, high=0), 0.5, '#ffffcc', '#e6e6e6')
    >>> LogScale(-4, 0).decades()
    [-4, -3, -2, -1, 0]
    """

    low: int
    high: int

    @classmethod
    def spanning(cls, log10s) -> LogScale:
        """The scale that holds every finite value of ``log10s``, rounded out to decades."""
        finite = [v for v in log10s if math.isfinite(v)]
        if not finite:
            return cls(-1, 0)
        low, high = math.floor(min(finite)), math.ceil(max(finite))
        return cls(low, high if high > low else low + 1)

    @classmethod
    def of(cls, runs) -> LogScale:
        """The one scale that holds every node copy's norm in all of ``runs``."""
        return cls.spanning(v for run in runs for row in run.norms.values() for v in row)

    def position(self, log10: float) -> float:
        """Where ``log10`` sits on the scale, clipped to [0, 1]."""
        return min(max((log10 - self.low) / (self.high - self.low), 0.0), 1.0)

    def colour(self, log10: float) -> str:
        """The fill of a copy with gradient norm ``10**log10`` (grey for an exact 0)."""
        if not math.isfinite(log10) and log10 < 0:
            return ZERO_COLOUR
        return _hex(colour_map()(self.position(log10)))

    def stops(self, count: int = 9) -> list[str]:
        """``count`` evenly spaced colours of the map, low to high (for CSS and legends)."""
        return [_hex(colour_map()(i / (count - 1))) for i in range(count)]

    def decades(self) -> list[int]:
        """The whole decades of the scale, for its ticks."""
        step = max(1, math.ceil((self.high - self.low) / 8))
        return list(range(self.low, self.high + 1, step))


def ink(fill: str) -> str:
    """Black or white, whichever reads on ``fill`` (a ``#rrggbb`` colour).

    Examples
    --------
    >>> ink("#ffffcc"), ink("#800026")
    ('#000000', '#ffffff')
    """
    r, g, b = (int(fill[i : i + 2], 16) for i in (1, 3, 5))
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#ffffff"


def colour_map():
    """The matplotlib colour map of :data:`COLOUR_MAP`."""
    from matplotlib import colormaps

    return colormaps[COLOUR_MAP]


def _hex(rgba) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgba[:3])
