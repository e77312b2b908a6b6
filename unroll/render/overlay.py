"""Values and gradients drawn on an unrolled diagram: record labels, a log-scale colour map.

Small nodes (at most :data:`MAX_LISTED` numbers) show their numbers to 4 significant
digits, larger ones their norm, micrograd-style as ``name | value | grad``. Gradient norms
come from :meth:`unroll.BPTTResult.log10_grad_norms`, exact in the log domain, so a norm
of ``1e-400`` is drawn as such although float64 holds 0; the colour of a node (and of the
recurrent edges leaving it) is its position between the smallest and largest ``log10``
norm on the diagram, in a light-to-dark map, explained by a legend.
"""

from __future__ import annotations

import math

import numpy as np

from .style import MUTED, small, text

__all__ = [
    "COLOUR_MAP",
    "MAX_LISTED",
    "Overlay",
    "colour_at",
    "decade_ticks",
    "format_log10",
    "log10_norm",
]

#: Nodes of at most this many units list their numbers (for one batch item).
MAX_LISTED = 4

#: ColorBrewer YlOrRd (9 classes): pale for a vanished gradient, dark red for a large one.
COLOUR_MAP = [
    "#ffffcc",
    "#ffeda0",
    "#fed976",
    "#feb24c",
    "#fd8d3c",
    "#fc4e2a",
    "#e31a1c",
    "#bd0026",
    "#800026",
]
ZERO_COLOUR = "#e6e6e6"
_EDGE_WIDTH = (1.0, 4.0)


def colour_at(p: float) -> str:
    """The map's colour at position ``p`` in [0, 1] (linear in RGB between the stops).

    Examples
    --------
    >>> colour_at(0.0), colour_at(1.0)
    ('#ffffcc', '#800026')
    """
    p = min(max(p, 0.0), 1.0) * (len(COLOUR_MAP) - 1)
    i = min(int(p), len(COLOUR_MAP) - 2)
    a, b = _rgb(COLOUR_MAP[i]), _rgb(COLOUR_MAP[i + 1])
    mix = [round(x + (y - x) * (p - i)) for x, y in zip(a, b, strict=True)]
    return "#" + "".join(f"{c:02x}" for c in mix)


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _ink(fill: str) -> str:
    """Black or white text, whichever reads on ``fill``."""
    r, g, b = _rgb(fill)
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#ffffff"


def _caption_ink(fill: str) -> str:
    """The colour of a field's small caption: muted on a light fill, light on a dark one."""
    return MUTED if _ink(fill) == "#000000" else "#eeeeee"


#: Steps between legend ticks, in decades: the first that gives at most 9 ticks.
_TICK_STEPS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def decade_ticks(low: int, high: int) -> list[int]:
    """Round decades between ``low`` and ``high`` (both included), at most 9 of them.

    Examples
    --------
    >>> decade_ticks(-6, 0)
    [-6, -5, -4, -3, -2, -1, 0]
    >>> decade_ticks(-85, 1)
    [-80, -70, -60, -50, -40, -30, -20, -10, 0]
    >>> decade_ticks(-447, 0)
    [-400, -350, -300, -250, -200, -150, -100, -50, 0]
    """
    step = next((s for s in _TICK_STEPS if (high - low) // s <= 8), _TICK_STEPS[-1])
    first = -(-low // step) * step
    return list(range(first, high + 1, step))


def log10_norm(array: np.ndarray) -> float:
    """``log10 ||array||`` without squaring tiny entries to zero (``-inf`` for zeros).

    Examples
    --------
    >>> log10_norm(np.array([3e-200, 4e-200]))
    -199.30102999566398
    """
    top = float(np.max(np.abs(array))) if np.size(array) else 0.0
    if top == 0.0 or not math.isfinite(top):
        return -math.inf if top == 0.0 else math.inf
    return math.log10(top) + math.log10(float(np.linalg.norm(array / top)))


def _num(x: float) -> str:
    return f"{x + 0.0:.4g}"  # + 0.0: no "-0"


def format_log10(log10: float) -> str:
    """A number given by its ``log10``, to 3-4 significant digits, beyond float range too.

    Examples
    --------
    >>> format_log10(-2.0), format_log10(-400.5), format_log10(-math.inf)
    ('0.01', '3.162e-401', '0')
    """
    if log10 == -math.inf:
        return "0"
    if math.isnan(log10):
        return "–"
    if -300 < log10 < 300:
        return _num(10.0**log10)
    exponent = math.floor(log10)
    return f"{10.0 ** (log10 - exponent):.4g}e{exponent:+d}".replace("e+", "e")


class Overlay:
    """What a :class:`~unroll.BPTTResult` adds to the nodes and edges of a diagram.

    Parameters
    ----------
    result : BPTTResult
    values, grads : bool
        Show the value field, the gradient field (and the colour map).
    sample : int, optional
        Show batch item ``sample`` only; by default the whole batch.
    grad_range : (int, int), optional
        The ``log10`` limits of the colour map, so several diagrams share one scale;
        by default the drawn norms' range, rounded out to whole decades.
    """

    def __init__(
        self,
        result,
        *,
        values: bool,
        grads: bool,
        sample: int | None = None,
        grad_range: tuple[int, int] | None = None,
    ):
        self.result, self.values, self.grads, self.sample = result, values, grads, sample
        self.grad_range = grad_range
        self.loss_at: list[tuple[str, int]] | None = None  # where cotangents stand for a loss
        self._logs: dict[str, np.ndarray] = {}
        self.low, self.high = 0.0, 1.0

    # ---- numbers ----------------------------------------------------------------------------

    def log_norm(self, inst: tuple[str, int]) -> float:
        """``log10 ||dL/d inst||``, exact for computed steps; ``-inf`` for an exact zero."""
        name, t = inst
        if 0 <= t < self.result.unrolled.steps:
            if name not in self._logs:
                self._logs[name] = self.result.log10_grad_norms(name, sample=self.sample)
            return float(self._logs[name][t])
        return log10_norm(self._pick(self.result.node_grads[inst]))

    def prepare(self, instances) -> None:
        """Fix the colour scale to the gradient norms of the instances drawn (or to
        ``grad_range`` when given)."""
        if self.grad_range is not None:
            self.low, self.high = self.grad_range
            return
        logs = [x for x in (self.log_norm(i) for i in instances) if math.isfinite(x)]
        if logs:
            self.low, self.high = math.floor(min(logs)), math.ceil(max(logs))
        if self.high <= self.low:
            self.high = self.low + 1

    def _pick(self, array: np.ndarray) -> np.ndarray:
        return array if self.sample is None else array[self.sample]

    def _position(self, inst) -> float:
        return (self.log_norm(inst) - self.low) / (self.high - self.low)

    def fill(self, inst) -> str:
        """The colour of ``inst``'s gradient norm."""
        log = self.log_norm(inst)
        return ZERO_COLOUR if not math.isfinite(log) else colour_at(self._position(inst))

    # ---- drawing ----------------------------------------------------------------------------

    def fields(self, inst) -> list[tuple[str, str | None]]:
        """The value and grad fields of ``inst`` (those switched on): HTML text, and the
        colour the field is painted (the grad field carries the gradient colour map)."""
        out: list[tuple[str, str | None]] = []
        if self.values:
            out.append(
                (
                    small("value", size=7)
                    + "<BR/>"
                    + self._array_text(self._pick(self.result.values[inst])),
                    None,
                )
            )
        if self.grads:
            fill = self.fill(inst)
            caption = small("grad", colour=_caption_ink(fill), size=7)
            out.append((caption + "<BR/>" + self._grad_text(inst), fill))
        return out

    def _array_text(self, array: np.ndarray) -> str:
        """Numbers of one batch item (at most :data:`MAX_LISTED`), else the norm."""
        flat = np.asarray(array, dtype=float).ravel()
        one_item = self.sample is not None or np.ndim(array) < 2 or np.shape(array)[0] == 1
        if one_item and flat.size <= MAX_LISTED:
            return "<BR/>".join(_num(x) for x in flat)
        return "‖·‖ " + text(format_log10(log10_norm(flat)))

    def _grad_text(self, inst) -> str:
        log = self.log_norm(inst)
        grad = self._pick(self.result.node_grads[inst])
        if not math.isfinite(log) or -300 < log < 300:
            return self._array_text(grad)
        return "‖·‖ " + text(format_log10(log))

    def record(self, title: str, rows: list[tuple[str, tuple[str, int]]], fill: str) -> str:
        """An HTML table ``name | value | grad``, one row per ``(name, instance)``, under
        an optional title row; names on ``fill``, values on white, grads painted."""
        body = []
        for name, inst in rows:
            cells = [f'<TD BGCOLOR="{fill}">{name}</TD>']
            for content, paint in self.fields(inst):
                paint = paint or "#ffffff"
                cells.append(
                    f'<TD BGCOLOR="{paint}"><FONT COLOR="{_ink(paint)}">{content}</FONT></TD>'
                )
            body.append("<TR>" + "".join(cells) + "</TR>")
        if title:
            span = 1 + self.values + self.grads
            body.insert(0, f'<TR><TD COLSPAN="{span}" BGCOLOR="{fill}">{title}</TD></TR>')
        return (
            '<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3">'
            + "".join(body)
            + "</TABLE>"
        )

    def edge_paint(self, inst) -> dict[str, str]:
        """Colour and width of a recurrent edge leaving ``inst``, by its gradient norm."""
        log = self.log_norm(inst)
        if not math.isfinite(log):
            return {"color": ZERO_COLOUR}
        lo, hi = _EDGE_WIDTH
        return {
            "color": self.fill(inst),
            "penwidth": f"{lo + (hi - lo) * self._position(inst):.2f}",
        }

    def legend(self) -> str:
        """HTML table rows stating the colour scale (empty without grads)."""
        if not self.grads:
            return ""
        lo, hi = int(self.low), int(self.high)
        swatches = "".join(
            f'<TD BGCOLOR="{colour_at((x - lo) / (hi - lo))}" WIDTH="28">'
            f'<FONT POINT-SIZE="8" COLOR="{_ink(colour_at((x - lo) / (hi - lo)))}">'
            f"{x}</FONT></TD>"
            for x in decade_ticks(lo, hi)
        )
        who = "all batch items" if self.sample is None else f"batch item {self.sample}"
        caption = f"‖dL/dv‖ per node copy, log10: {lo} … {hi} ({who}); grey: exactly 0"
        return (
            f'<TR><TD><TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0"><TR>{swatches}'
            f"</TR></TABLE></TD></TR><TR><TD>{small(text(caption))}</TD></TR>"
        )
