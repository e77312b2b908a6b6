"""Gradient checks shipped with the code: BPTT against finite differences along random directions.

In the manner of HIPS autograd's ``check_grads``: the loss ``L = sum <c, y>`` over the
given cotangents is differentiated numerically along random directions in parameter,
input and initial-state space, with a fourth-order central stencil, and compared with the
directional derivative the engine's gradients give.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .engine import BPTTResult, bptt
from .unrolled import Instance, Unrolled

#: Initial states as :func:`unroll.bptt` takes them: by boundary instance or by node name.
States = Mapping[str | Instance, np.ndarray]

__all__ = ["check_grads", "directional_error"]


def _loss(
    unrolled: Unrolled,
    params: Mapping[str, np.ndarray],
    inputs: Mapping[str, np.ndarray],
    cotangents: Mapping[Instance, np.ndarray],
    initial_states: States | None,
) -> float:
    r = bptt(unrolled, params, inputs, {}, initial_states=initial_states, input_grads=False)
    return float(sum(np.vdot(c, r.values[k]) for k, c in cotangents.items()))


def _stencil(f: Callable[[float], float], h: float) -> float:
    """d/de f(e) at 0, error O(h**4)."""
    return (8.0 * (f(h) - f(-h)) - (f(2 * h) - f(-2 * h))) / (12.0 * h)


def directional_error(
    unrolled: Unrolled,
    params: Mapping[str, np.ndarray],
    inputs: Mapping[str, np.ndarray],
    cotangents: Mapping[str | Instance, np.ndarray],
    initial_states: States | None = None,
    *,
    seed: int = 0,
    step: float = 1e-3,
) -> float:
    """Relative error of BPTT's directional derivative along one random direction.

    The direction perturbs every parameter, every input and every given initial state.
    Returns ``|numeric - analytic| / max(|numeric|, |analytic|, tiny)``.
    """
    rng = np.random.default_rng(seed)
    states = dict(initial_states or {})
    d_params = {k: rng.normal(size=np.shape(v)) for k, v in params.items()}
    d_inputs = {k: rng.normal(size=np.shape(v)) for k, v in inputs.items()}
    d_states = {k: rng.normal(size=np.shape(v)) for k, v in states.items()}
    parts: tuple[dict[Any, np.ndarray], ...] = (d_params, d_inputs, d_states)
    norm = np.sqrt(sum(float(np.vdot(d, d)) for part in parts for d in part.values()))
    for part in parts:  # a unit direction keeps the stencil exact
        for k in part:
            part[k] /= norm
    r = bptt(unrolled, params, inputs, cotangents, initial_states=states or None)
    seeded = r.run.cotangents  # by instance, also where a node's came as one sequence
    analytic = sum(float(np.vdot(r.param_grads[k], d)) for k, d in d_params.items())
    for name, d in d_inputs.items():
        rows = unrolled.input_steps(name)
        d = d if len(d) == len(rows) else d[rows]
        analytic += sum(float(np.vdot(r.node_grads[(name, t)], d[i])) for i, t in enumerate(rows))
    for key, d in d_states.items():
        analytic += _state_grad_dot(unrolled, r, key, d)

    def moved(e: float) -> float:
        return _loss(
            unrolled,
            {k: v + e * d_params[k] for k, v in params.items()},
            {k: v + e * d_inputs[k] for k, v in inputs.items()},
            seeded,
            {k: v + e * d_states[k] for k, v in states.items()} or None,
        )

    numeric = _stencil(moved, step)
    return abs(numeric - analytic) / max(abs(numeric), abs(analytic), 1e-300)


def _state_grad_dot(unrolled: Unrolled, r: BPTTResult, key: str | Instance, d: np.ndarray) -> float:
    keys = [key] if isinstance(key, tuple) else [b for b in unrolled.boundary if b[0] == key]
    return sum(
        float(np.vdot(r.node_grads[k], np.broadcast_to(d, r.node_grads[k].shape))) for k in keys
    )


def check_grads(
    unrolled: Unrolled,
    params: Mapping[str, np.ndarray],
    inputs: Mapping[str, np.ndarray],
    cotangents: Mapping[str | Instance, np.ndarray],
    initial_states: States | None = None,
    *,
    directions: int = 3,
    seed: int = 0,
    step: float = 1e-3,
) -> float:
    """Check BPTT against finite differences along ``directions`` random directions.

    Parameters
    ----------
    unrolled : Unrolled
    params, inputs, cotangents, initial_states
        As for :func:`unroll.bptt`.
    directions : int
        How many random directions to try.
    seed : int
        Seed of the directions.
    step : float
        Finite-difference step (the stencil's error is O(step**4)).

    Returns
    -------
    float
        The largest relative error seen; about 1e-10 or less for a correct gradient
        of a smooth graph in float64.

    Examples
    --------
    >>> import numpy as np, unroll
    >>> g = unroll.presets.gru(2, 3)
    >>> u = unroll.unroll(g, steps=4)
    >>> p = unroll.init_params(g, seed=0)
    >>> xs = np.random.default_rng(1).normal(size=(4, 2, 2))
    >>> cot = {("h", t): np.ones((2, 3)) for t in range(4)}
    >>> check_grads(u, p, {"x": xs}, cot) < 1e-9
    True
    """
    return max(
        directional_error(
            unrolled, params, inputs, cotangents, initial_states, seed=seed + i, step=step
        )
        for i in range(directions)
    )
