"""Decay per loss: ``||dℓ_t/ds_k||`` against ``t - k`` where losses sit at many steps.

The total ``dL/ds_k`` sums every later loss, so a state near the end of a synced run
looks as reachable as one near its start and a vanishing net reads "stable". Each loss
``ℓ_t`` alone shows the decay: one ensemble pass runs ``S`` copies of the same weights,
copy ``i`` carrying only the cotangent of loss step ``t_i``, and ``log10_grad_norms``
returns ``(S, T)`` at once.
"""

from __future__ import annotations

import numpy as np

from ..engine import bptt
from ..losses import loss_cotangents

__all__ = ["by_distance_rows", "loss_step_cotangents", "per_loss_norms"]


def loss_step_cotangents(unrolled, full: dict, loss_steps: list[int]) -> dict:
    """``{(output, t): (S, B, n)}``: copy ``i`` keeps the cotangents of ``loss_steps[i]`` only."""
    S = len(loss_steps)
    out = {}
    for (name, t), value in full.items():
        stacked = np.zeros((S, *np.shape(value)))
        stacked[loss_steps.index(t)] = value
        out[(name, t)] = stacked
    return out


def real_loss_cotangents(unrolled, params, inputs, loss: str, targets) -> dict:
    """dL/dy of a real loss at each loss instance, from one forward pass."""
    r = bptt(unrolled, params, inputs, input_grads=False)
    instances = {inst: inst for inst in unrolled.loss_instances}
    return loss_cotangents(unrolled, r.values, instances, loss, targets)[1]


def by_distance_rows(norms: np.ndarray, loss_steps: list[int]) -> np.ndarray:
    """``(S, T)`` norms over steps ``k`` -> over distance ``t_i - k`` (NaN beyond ``t_i``)."""
    rows = np.full(norms.shape, np.nan)
    for i, t in enumerate(loss_steps):
        rows[i, : t + 1] = norms[i, : t + 1][::-1]
    return rows


def per_loss_norms(
    unrolled,
    params,
    inputs,
    cotangents: dict,
    states,
    max_memory,
    per_pass: int | None = None,
    loss_steps=None,
    initial_states=None,
) -> dict:
    """``{state: (S, T)}``: ``log10 ||dℓ_t/ds||`` over distance, one row per loss step.

    ``per_pass`` loss steps run as one ensemble (default: all of them); ``loss_steps``
    default to the sequence mode's.
    """
    loss_steps = list(unrolled.loss_steps if loss_steps is None else loss_steps)
    per_pass = per_pass or len(loss_steps)
    parts = []
    for start in range(0, len(loss_steps), per_pass):
        chunk = loss_steps[start : start + per_pass]
        S = len(chunk)
        stacked = {k: np.broadcast_to(v, (S, *np.shape(v))).copy() for k, v in params.items()}
        xs = {k: np.broadcast_to(v, (S, *np.shape(v))).copy() for k, v in inputs.items()}
        mine = {k: v for k, v in cotangents.items() if k[1] in chunk}
        cots = loss_step_cotangents(unrolled, mine, chunk)
        r = bptt(
            unrolled,
            stacked,
            xs,
            cots,
            initial_states=initial_states,
            input_grads=False,
            max_memory=max_memory,
        )
        parts.append({s: by_distance_rows(r.log10_grad_norms(s), chunk) for s in states})
    return {s: np.concatenate([p[s] for p in parts]) for s in states}
