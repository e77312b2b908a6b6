"""Per-step gradient norms of one BPTT run on given sequences: the table ``unroll grads`` prints."""

from __future__ import annotations

import csv
import io
import json

import numpy as np

from ..engine import bptt
from ..unrolled import unroll
from .export import plain_list
from .probes import GivenData, probe_cotangents

__all__ = ["StepNorms", "step_grad_norms"]


class StepNorms:
    """``log10 ||dL/ds_t||`` of every state node at every step of one run.

    Attributes
    ----------
    result : BPTTResult
        The run.
    norms : dict
        ``{state node: array (T,)}``.
    loss : str
        The loss (``mse``, ``xent``) or probe (``sum``) the gradients come from.
    """

    def __init__(self, result, loss: str):
        self.result, self.loss = result, loss
        graph = result.unrolled.graph
        self.norms = {s: result.log10_grad_norms(s) for s in graph.state_nodes()}

    @property
    def steps(self) -> int:
        """The number of steps T."""
        return self.result.unrolled.steps

    def table(self) -> str:
        """A text table: one row per step, ``||dL/ds_t||`` of each state node."""
        head = ["step", "distance", *(f"‖∂L/∂{s}‖" for s in self.norms)]
        rows = [head]
        for t in range(self.steps):
            cells = [_fmt(10.0 ** self.norms[s][t]) for s in self.norms]
            rows.append([str(t), str(self.steps - 1 - t), *cells])
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        value = self.result.loss
        loss = f"{self.loss} = {float(value):.6g}" if value is not None else self.loss
        return "\n".join([*lines, "", f"loss: {loss}; norms over batch and units"])

    def to_dict(self) -> dict:
        """Plain JSON-able data: the run's settings and ``log10`` norms per state."""
        u = self.result.unrolled
        value = self.result.loss
        return {
            "model": u.graph.name,
            "steps": u.steps,
            "mode": u.mode.name,
            "loss": self.loss,
            "loss_value": None if value is None else float(value),
            "log10_grad_norms": {s: plain_list(v) for s, v in self.norms.items()},
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)

    def to_csv(self) -> str:
        """One row per step: ``step, distance, log10 norm`` of each state node."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["step", "distance", *(f"log10_grad_norm_{s}" for s in self.norms)])
        for t in range(self.steps):
            cells = [repr(float(self.norms[s][t])) for s in self.norms]
            writer.writerow([t, self.steps - 1 - t, *cells])
        return out.getvalue()


def _fmt(value: float) -> str:
    return f"{value:.4e}" if np.isfinite(value) else str(value)


def step_grad_norms(
    graph, params, data: GivenData, mode: str = "synced", encoder_steps: int | None = None
) -> StepNorms:
    """Run BPTT once on given sequences and return every state's per-step gradient norm.

    Parameters
    ----------
    graph : Graph
    params : mapping
        The weights (an imported model's ``.params``).
    data : GivenData
        From :func:`unroll.analysis.probes.given_data` or :func:`unroll.datafiles.load_data`;
        without a loss, the ``sum`` probe (dL/dy = 1 at the loss steps).
    mode : str
        Sequence mode: where the loss sits.
    encoder_steps : int, optional
        For ``many-to-many``.

    Returns
    -------
    StepNorms

    Examples
    --------
    >>> import numpy as np, unroll
    >>> from unroll.analysis.probes import GivenData
    >>> g = unroll.presets.neuron(activation="identity", bias=False)
    >>> p = {"W_ih": np.ones((1, 1)), "W_hh": np.full((1, 1), 0.5)}
    >>> n = step_grad_norms(g, p, GivenData({"x": np.zeros((3, 1, 1))}), mode="many-to-one")
    >>> print(n.table())
    step  distance     ‖∂L/∂h‖
       0         2  2.5000e-01
       1         1  5.0000e-01
       2         0  1.0000e+00
    <BLANKLINE>
    loss: sum; norms over batch and units
    """
    u = unroll(graph, data.steps, mode=mode, encoder_steps=encoder_steps)
    if data.loss is not None:
        r = bptt(u, params, data.inputs, loss=data.loss, targets=data.targets, input_grads=False)
        return StepNorms(r, data.loss)
    cots = probe_cotangents("sum", u, 0, data.batch)
    return StepNorms(bptt(u, params, data.inputs, cots, input_grads=False), "sum")
