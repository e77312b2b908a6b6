"""Build the explorer: one self-contained offline HTML page of one or more BPTT runs.

The page holds each model's unrolled diagram as inline SVG (drawn by
:func:`unroll.render`, then marked up by :mod:`unroll.explore.svg`), the runs' numbers as
JSON, and the script and style from ``assets/``, all inlined: it makes no network
request and needs no server. Every step's gradient norms are kept for the plot, also
where a long sequence's diagram elides the middle steps.
"""

from __future__ import annotations

import html
import json
import math
import re
from importlib import resources
from pathlib import Path

from ..atomic import atomic_write
from .dot import draw, pipe
from .runs import VECTOR_ENTRIES, ZERO_COLOUR, ExploreError, LogScale, Run, as_runs
from .svg import annotate

__all__ = ["Explorer", "explore", "page_data", "script_safe"]

_ASSETS = resources.files(__package__) / "assets"
_SLOT = re.compile(r"\{\{(\w+)\}\}")


def script_safe(text: str) -> str:
    """``text`` (JSON or script) with ``<``, ``>`` and ``&`` escaped, so that nothing in it,
    not even a node named ``</script>``, can end the ``<script>`` element it sits in.

    Examples
    --------
    >>> script_safe('{"name": "</script><b>"}')
    '{"name": "\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e"}'
    """
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _number(x: float, nan=None):
    """A float for JSON, which has no nan or infinity: ``nan`` (default ``None``: no copy)
    for nan, the strings ``"-inf"``/``"inf"`` for infinities.

    Examples
    --------
    >>> _number(0.5), _number(float("nan")), _number(float("-inf")), _number(float("nan"), "nan")
    (0.5, None, '-inf', 'nan')
    """
    if math.isnan(x):
        return nan
    return x if math.isfinite(x) else ("-inf" if x < 0 else "inf")


def _rounded(log10: float):
    """A ``log10`` norm for the plot, to 5 decimals (a long run's page stays small; each
    drawn copy carries its own, unrounded)."""
    value = _number(log10)
    return round(value, 5) if isinstance(value, float) else value


def _vector(array) -> list:
    """The first entries of batch item 0 (an overflowed run's as ``"nan"``/``"inf"``)."""
    first = array.reshape(array.shape[0], -1)[0, :VECTOR_ENTRIES]
    return [_number(float(v), "nan") for v in first]


def _copy_data(run: Run, copy: tuple[str, int]) -> dict:
    name, t = copy
    value, grad = run.result.values[copy], run.result.node_grads[copy]
    return {
        "node": name,
        "step": t,
        "size": int(value.shape[-1]),
        "value": _vector(value),
        "grad": _vector(grad),
        "log10": _number(run.copy_log10(name, t)),
    }


def _run_data(run: Run, drawn: list[tuple[str, int]]) -> dict:
    return {
        "label": run.label,
        "steps": run.steps,
        "batch": int(next(iter(run.result.values.values())).shape[0]),
        "states": run.states,
        "norms": {name: [_rounded(v) for v in row] for name, row in run.norms.items()},
        "shown": sorted({t for _, t in drawn if 0 <= t < run.steps}),
        "copies": {f"{name}|{t}": _copy_data(run, (name, t)) for name, t in drawn},
    }


def page_data(runs: list[Run], drawn: list[list[tuple[str, int]]], scale: LogScale) -> dict:
    """The numbers a page embeds: per run its norms and drawn copies, and the colour scale.

    Each run holds ``label``, ``steps``, ``batch``, ``states``, ``norms`` (``{node:
    [log10 ||dL/d(node, t)|| per step]}``: ``null`` where the node has no copy, ``"-inf"``
    for an exact zero), ``shown`` (the steps the diagram draws) and ``copies`` (``{"name|t":
    {node, step, size, value, grad, log10}}``, the first :data:`VECTOR_ENTRIES` entries of
    batch item 0's value and gradient). The norms are rounded to 5 decimals, the copies'
    numbers are exact.
    """
    return {
        "runs": [_run_data(run, copies) for run, copies in zip(runs, drawn, strict=True)],
        "scale": {
            "low": scale.low,
            "high": scale.high,
            "stops": scale.stops(),
            "zero": ZERO_COLOUR,
        },
        "steps": max(run.steps for run in runs),
        "entries": VECTOR_ENTRIES,
    }


class Explorer:
    """An interactive page of one or more BPTT runs: ``.save(path)``, ``.html``, Jupyter.

    Made by :func:`explore`. ``runs`` are the runs shown, ``scale`` their one colour scale.
    """

    def __init__(self, runs: list[Run], *, title: str | None = None, **drawing):
        self.runs = runs
        self.scale = LogScale.of(runs)
        self.title = title if title is not None else " vs ".join(run.label for run in runs)
        self._drawing = drawing
        self._html: str | None = None

    def _diagrams(self) -> tuple[list[str], list[list[tuple[str, int]]]]:
        svgs, drawn = [], []
        for i, run in enumerate(self.runs):
            svg = pipe(draw(run, self._drawing), "svg").decode()
            svg, copies = annotate(svg, run.copies, f"m{i}-")
            svgs.append(svg)
            drawn.append(copies)
        return svgs, drawn

    @property
    def html(self) -> str:
        """The page: one HTML document, everything inlined."""
        if self._html is None:
            svgs, drawn = self._diagrams()
            data = json.dumps(
                page_data(self.runs, drawn, self.scale), separators=(",", ":"), allow_nan=False
            )
            panels = "\n".join(
                _panel(i, run, svg)
                for i, (run, svg) in enumerate(zip(self.runs, svgs, strict=True))
            )
            parts = {
                "title": html.escape(self.title),
                "style": (_ASSETS / "explorer.css").read_text("utf-8"),
                "panels": panels,
                "last": str(max(run.steps for run in self.runs) - 1),
                "data": script_safe(data),
                "script": (_ASSETS / "explorer.js").read_text("utf-8"),
            }
            template = (_ASSETS / "page.html").read_text("utf-8")
            # One pass: a "{{...}}" inside a title or a diagram is left as it is.
            self._html = _SLOT.sub(lambda slot: parts[slot[1]], template)
        return self._html

    def save(self, path) -> Path:
        """Write the page to ``path`` (atomically) and return the path."""
        path = Path(path)
        atomic_write(path, self.html)
        return path

    def _repr_html_(self) -> str:
        """Jupyter shows the page in a frame of its own (scripts allowed, nothing else), so
        its ids and styles never meet the notebook's."""
        return (
            f'<iframe srcdoc="{html.escape(self.html)}" sandbox="allow-scripts" '
            f'style="width:100%;height:900px;border:0" title="{html.escape(self.title)}"></iframe>'
        )

    def __repr__(self) -> str:
        labels = ", ".join(run.label for run in self.runs)
        scale = f"log10 scale {self.scale.low}..{self.scale.high}"
        return f"<Explorer of {labels}: {self.runs[0].steps} steps, {scale}>"


def _panel(index: int, run: Run, svg: str) -> str:
    warnings = "".join(
        f'<p class="warning" role="note">Warning: {html.escape(w)}</p>' for w in run.result.warnings
    )
    return (
        f'<section class="panel" data-run="{index}" aria-label="{html.escape(run.label)}">'
        f'<h2>{html.escape(run.label)}</h2>{warnings}<div class="diagram">{svg}</div></section>'
    )


def explore(
    model,
    *,
    steps: int = 8,
    compare=(),
    seed: int = 0,
    mode: str = "synced",
    labels=None,
    title: str | None = None,
    detail: str = "op",
    direction: str = "LR",
    steps_shown=None,
    full: bool = False,
    **limits,
) -> Explorer:
    """An interactive, offline HTML page that shows BPTT happen on one or more models.

    Hover or focus a node copy for its value, its gradient and ``log10 ||dL/dv||``; move
    the step slider (or press play) to watch the forward pass fill the copies step by
    step, then the gradient front move back in time, each copy painted on one log colour
    scale; a linked plot shows ``log10 ||dL/ds_t||`` of every state node against the step.

    Parameters
    ----------
    model : str, Graph, ModelSpec or BPTTResult, or a list of them
        A MODEL spec (``"lstm:hidden=32"``), a graph, or a run of your own (shown as it is).
    steps : int
        Time steps of each probe run (``unroll render --grads``'s run: seeded parameters
        and inputs, a cotangent of ones on the outputs at the last loss step).
    compare : list, optional
        More models, shown beneath the first on the same time axis and colour scale.
    seed, mode
        The probe runs' seed and sequence mode.
    labels : list of str, optional
        The models' names on the page (default: the specs as given).
    title : str, optional
        The page's title (default: the labels).
    detail, direction, steps_shown, full
        How the diagrams are drawn, as in :func:`unroll.render`; long sequences are elided
        unless ``full``, and every step's norms still reach the plot.
    **limits
        ``max_nodes`` and ``max_memory`` of :func:`unroll.analysis.probes.probe`.

    Returns
    -------
    Explorer
        ``.save(path)`` writes the page; Jupyter displays it.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> page = explore("elman:hidden=4", steps=5, compare=["lstm:hidden=4"])
    >>> [run.label for run in page.runs], page.runs[1].states
    (['elman:hidden=4', 'lstm:hidden=4'], ['c', 'h'])
    >>> path = page.save(pathlib.Path(tempfile.mkdtemp()) / "flow.html")
    >>> path.read_text("utf-8").startswith("<!DOCTYPE html>")
    True
    """
    models = [model] if isinstance(model, str) or not hasattr(model, "__iter__") else list(model)
    runs = as_runs([*models, *compare], steps, seed, mode, labels, **limits)
    if len({run.steps for run in runs}) > 1:
        raise ExploreError(
            "compared runs must have the same number of steps, got "
            + ", ".join(f"{run.label}: {run.steps}" for run in runs)
        )
    return Explorer(
        runs,
        title=title,
        detail=detail,
        direction=direction,
        steps_shown=steps_shown,
        full=full,
    )
