"""Step Jacobians ds_t/ds_{t-1} computed exactly by the engine, their products and spectra.

The state ``s`` of a causal graph whose delays are at most 1 is its state nodes' values
joined in :meth:`unroll.Graph.state_nodes` order (``h``; ``[c; h]`` for an LSTM). Row
``i`` of the step Jacobian is a vector-Jacobian product: one step unrolled, a unit
cotangent on unit ``i`` of ``s_t``, and the gradient read off the initial state
``s_{t-1}``. All rows of all steps run as one batched :func:`unroll.bptt` call (batch
row = (step, unit)), so the Jacobians are exact to rounding, not finite differences.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..engine import BPTTResult, bptt
from ..graph import Graph
from ..unrolled import unroll
from .errors import AnalysisError
from .probes import draw_inputs

__all__ = [
    "JacobianProducts",
    "jacobian_products",
    "lyapunov_exponents",
    "state_layout",
    "step_jacobian",
    "step_jacobians",
    "trajectory",
]

_ROWS_PER_CALL = 1 << 15  # batch rows of one bptt call (bounds memory)


def state_layout(graph: Graph) -> list[tuple[str, int, int]]:
    """``[(state node, start, end)]``: where each state node sits in the state vector.

    Raises
    ------
    AnalysisError
        If the graph reads the future or reaches back more than one step (its state at
        t-1 alone does not determine step t).

    Examples
    --------
    >>> from unroll import presets
    >>> state_layout(presets.lstm(2, 3))
    [('c', 0, 3), ('h', 3, 6)]
    """
    graph.validate()
    if not graph.is_causal() or graph.max_delay() > 1:
        raise AnalysisError(
            f"graph {graph.name!r}: step Jacobians need a causal graph whose "
            f"delays are 0 or 1 (largest delay {graph.max_delay()})"
        )
    layout, start = [], 0
    for name in graph.state_nodes():
        size = graph.nodes[name].size
        layout.append((name, start, start + size))
        start += size
    if not layout:
        raise AnalysisError(f"graph {graph.name!r} has no state (no edge with delay 1)")
    return layout


def step_jacobians(
    graph: Graph,
    params: Mapping,
    states: np.ndarray,
    inputs: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Batched step Jacobians: ``J[k] = ds/ds_prev`` at state ``states[k]`` and input ``k``.

    Parameters
    ----------
    graph : Graph
    params : mapping
    states : array (N, D)
        Previous states ``s_{t-1}``, one per row, in :func:`state_layout` order.
    inputs : mapping, optional
        ``{input name: array (N, n)}``: the input at each row's step; zero if omitted.

    Returns
    -------
    array (N, D, D)
        ``J[k, i, j] = d s_t[i] / d s_{t-1}[j]``.

    Raises
    ------
    AnalysisError
        If the graph has no one-step state or ``states`` has the wrong width.

    Examples
    --------
    >>> import unroll
    >>> g = unroll.presets.elman(1, 2, activation="identity", bias=False)
    >>> p = {"W_ih": np.ones((2, 1)), "W_hh": np.array([[0.0, 1.0], [2.0, 0.0]])}
    >>> step_jacobians(g, p, np.zeros((3, 2))).shape
    (3, 2, 2)
    """
    layout = state_layout(graph)
    states = np.atleast_2d(np.asarray(states, dtype=float))
    n, dim = states.shape
    if dim != layout[-1][2]:
        raise AnalysisError(
            f"state has {dim} units, graph {graph.name!r} has "
            f"{layout[-1][2]} ({', '.join(f'{s}:{b - a}' for s, a, b in layout)})"
        )
    inputs = dict(inputs or {})
    one_step = unroll(graph, 1, mode="synced")
    per_call = max(1, _ROWS_PER_CALL // dim)
    out = np.empty((n, dim, dim))
    for lo in range(0, n, per_call):
        hi = min(n, lo + per_call)
        out[lo:hi] = _jacobian_chunk(
            graph,
            one_step,
            params,
            layout,
            states[lo:hi],
            {k: np.asarray(v, dtype=float)[lo:hi] for k, v in inputs.items()},
        )
    return out


def _jacobian_chunk(graph, one_step, params, layout, states, inputs):
    n, dim = states.shape
    xs = {}
    for name in graph.input_nodes():
        x = inputs.get(name)
        x = np.zeros((n, graph.nodes[name].size)) if x is None else x
        xs[name] = np.repeat(x, dim, axis=0)[None]
    eye = np.tile(np.eye(dim), (n, 1))
    initial = {(s, -1): np.repeat(states[:, a:b], dim, axis=0) for s, a, b in layout}
    cotangents = {(s, 0): eye[:, a:b] for s, a, b in layout}
    r = bptt(one_step, params, xs, cotangents, initial_states=initial, input_grads=False)
    rows = np.concatenate([r.node_grads[(s, -1)] for s, _, _ in layout], axis=1)
    return rows.reshape(n, dim, dim)


def step_jacobian(
    graph: Graph, params: Mapping, state=None, t: int = 0, *, inputs=None, sample: int = 0
) -> np.ndarray:
    """The exact step Jacobian ``ds_t/ds_{t-1}`` of the full state vector.

    Parameters
    ----------
    graph : Graph
    params : mapping
    state : BPTTResult, array (D,), dict or None
        ``s_{t-1}``: a forward run (its values at step ``t-1``, boundary at ``t = 0``, and
        its input at ``t``, batch row ``sample``), the state vector, ``{node: (n,)}``,
        or ``None`` for zeros.
    t : int
        The step (used to read a run).
    inputs : mapping, optional
        ``{input name: (n,)}``: the input at step ``t`` when ``state`` is not a run
        (zero if omitted).
    sample : int
        The batch row of a run.

    Returns
    -------
    array (D, D)

    Examples
    --------
    A tanh net at state 0 has the Jacobian ``W_hh`` itself (tanh'(0) = 1):

    >>> import unroll
    >>> g = unroll.presets.elman(2, 3, bias=False)
    >>> p = unroll.init_params(g, seed=1)
    >>> bool(np.allclose(step_jacobian(g, p), p["W_hh"], rtol=0, atol=1e-15))
    True
    """
    layout = state_layout(graph)
    if isinstance(state, BPTTResult):
        vector = np.concatenate([state.values[(s, t - 1)][sample] for s, _, _ in layout])
        inputs = {
            x: state.values[(x, t)][sample]
            for x in graph.input_nodes()
            if state.unrolled.present(x, t)
        }
    elif isinstance(state, Mapping):
        vector = np.concatenate([np.asarray(state[s], dtype=float) for s, _, _ in layout])
    elif state is None:
        vector = np.zeros(layout[-1][2])
    else:
        vector = np.asarray(state, dtype=float)
    batched = {k: np.asarray(v, dtype=float)[None] for k, v in (inputs or {}).items()}
    return step_jacobians(graph, params, vector[None], batched)[0]


def trajectory(
    graph: Graph,
    params: Mapping,
    steps: int,
    *,
    inputs=None,
    seed: int = 0,
    input_scale: float = 1.0,
    initial_state=None,
):
    """Run the graph forward; return ``(states (steps + 1, D), inputs {name: (steps, n)})``.

    ``states[0]`` is the initial state ``s_{-1}``, ``states[t + 1]`` is ``s_t``. Inputs
    default to :func:`~unroll.analysis.probes.draw_inputs` (``seed``, ``input_scale``).

    Examples
    --------
    >>> import unroll
    >>> g = unroll.presets.elman(1, 2, activation="identity", bias=False)
    >>> p = {"W_ih": np.ones((2, 1)), "W_hh": 0.5 * np.eye(2)}
    >>> states, xs = trajectory(g, p, 3, inputs={"x": np.ones((3, 1))})
    >>> states[:, 0].tolist()   # 0, 1, 1.5, 1.75
    [0.0, 1.0, 1.5, 1.75]
    """
    layout = state_layout(graph)
    if inputs is None:
        inputs = {k: v[:, 0] for k, v in draw_inputs(graph, steps, seed, 1, input_scale).items()}
    inputs = {k: np.asarray(v, dtype=float) for k, v in inputs.items()}
    initial = {}
    if initial_state is not None:
        vector = np.asarray(initial_state, dtype=float)
        initial = {s: vector[a:b][None] for s, a, b in layout}
    u = unroll(graph, steps, mode="synced")
    r = bptt(
        u,
        params,
        {k: v[:, None] for k, v in inputs.items()},
        {},
        initial_states=initial,
        input_grads=False,
    )
    states = np.stack(
        [np.concatenate([r.values[(s, t)][0] for s, _, _ in layout]) for t in range(-1, steps)]
    )
    return states, inputs


@dataclass(frozen=True)
class JacobianProducts:
    """Step Jacobians over a span and the singular values of their products from its end.

    Attributes
    ----------
    steps : array (n,)
        The steps ``first ... last`` of the span.
    jacobians : array (n, D, D)
        ``jacobians[i] = ds_t/ds_{t-1}`` at ``t = steps[i]``.
    log10_singular_values : array (n, D)
        Row ``k - 1``: log10 singular values (descending) of ``ds_last/ds_{last-k}``, the
        product of the last ``k`` step Jacobians. Exact in scale at any length; the
        smallest values lose relative accuracy once the product's condition number
        passes ~1e15 (use :func:`lyapunov_exponents` for the whole spectrum's rates).
    layout : list of (node, start, end)
    """

    steps: np.ndarray
    jacobians: np.ndarray
    log10_singular_values: np.ndarray
    layout: list

    @property
    def log10_norms(self) -> np.ndarray:
        """log10 of the spectral norm of each product (the largest singular value)."""
        return self.log10_singular_values[:, 0]


def _product_spectra(jacobians: np.ndarray) -> np.ndarray:
    dim = jacobians.shape[1]
    product, exponent = np.eye(dim), 0
    rows = []
    for J in jacobians[::-1]:
        product = product @ J
        peak = float(np.max(np.abs(product)))
        if peak == 0.0 or not math.isfinite(peak):
            rows.append(np.full(dim, -np.inf if peak == 0.0 else np.nan))
            continue
        shift = math.frexp(peak)[1]
        product = np.ldexp(product, -shift)
        exponent += shift
        with np.errstate(divide="ignore"):
            rows.append(
                np.log10(np.linalg.svd(product, compute_uv=False)) + exponent * math.log10(2.0)
            )
    return np.array(rows)


def jacobian_products(
    graph: Graph,
    params: Mapping,
    steps: int,
    *,
    span=None,
    inputs=None,
    seed: int = 0,
    input_scale: float = 1.0,
    initial_state=None,
) -> JacobianProducts:
    """Step Jacobians along a forward run and the singular values of their products.

    Parameters
    ----------
    graph, params
    steps : int
        Length of the forward run.
    span : (first, last), optional
        Steps whose Jacobians are multiplied (default the whole run).
    inputs, seed, input_scale, initial_state
        As in :func:`trajectory`.

    Returns
    -------
    JacobianProducts

    Examples
    --------
    A linear net with ``W = 0.5 I`` at zero input: products shrink by 0.5 per step.

    >>> import unroll
    >>> g = unroll.presets.elman(1, 2, activation="identity", bias=False)
    >>> p = {"W_ih": np.zeros((2, 1)), "W_hh": 0.5 * np.eye(2)}
    >>> jp = jacobian_products(g, p, 4, input_scale=0.0)
    >>> jp.log10_norms.round(6).tolist()
    [-0.30103, -0.60206, -0.90309, -1.20412]
    """
    first, last = (0, steps - 1) if span is None else span
    if not 0 <= first <= last < steps:
        raise AnalysisError(f"span {span!r} must satisfy 0 <= first <= last < steps={steps}")
    states, xs = trajectory(
        graph,
        params,
        last + 1,
        inputs=inputs,
        seed=seed,
        input_scale=input_scale,
        initial_state=initial_state,
    )
    idx = np.arange(first, last + 1)
    jac = step_jacobians(graph, params, states[idx], {k: v[idx] for k, v in xs.items()})
    return JacobianProducts(idx, jac, _product_spectra(jac), state_layout(graph))


def lyapunov_exponents(
    graph: Graph,
    params: Mapping,
    steps: int,
    *,
    transient: int = 0,
    inputs=None,
    seed: int = 0,
    input_scale: float = 1.0,
    initial_state=None,
    chunk: int = 256,
) -> np.ndarray:
    """Lyapunov exponents of the state map along a run, by the QR method.

    ``Q_0 = I``; at each step ``J_t Q_{t-1} = Q_t R_t``; exponent ``i`` is the mean of
    ``log |R_t[i, i]|`` over the steps after ``transient`` (natural log per step,
    sorted descending). For a constant Jacobian ``W`` they converge to ``log |eig(W)|``:
    after the transient the accumulated ``Q`` spans ``W``'s Schur vectors.

    Parameters
    ----------
    graph, params
    steps : int
        Steps of the run (the exponents average over ``steps - transient`` of them).
    transient : int
        Steps run before averaging starts (they align ``Q``).
    inputs, seed, input_scale, initial_state
        As in :func:`trajectory`.
    chunk : int
        Step Jacobians computed per batched call.

    Returns
    -------
    array (D,)

    Examples
    --------
    >>> import unroll
    >>> g = unroll.presets.elman(1, 2, activation="identity", bias=False)
    >>> p = {"W_ih": np.zeros((2, 1)), "W_hh": np.diag([2.0, 0.5])}
    >>> np.exp(lyapunov_exponents(g, p, 50, input_scale=0.0)).round(12).tolist()
    [2.0, 0.5]
    """
    if not 0 <= transient < steps:
        raise AnalysisError(f"transient={transient} must lie in 0..steps-1 = {steps - 1}")
    states, xs = trajectory(
        graph,
        params,
        steps,
        inputs=inputs,
        seed=seed,
        input_scale=input_scale,
        initial_state=initial_state,
    )
    dim = states.shape[1]
    q, total = np.eye(dim), np.zeros(dim)
    for lo in range(0, steps, chunk):
        idx = np.arange(lo, min(steps, lo + chunk))
        jac = step_jacobians(graph, params, states[idx], {k: v[idx] for k, v in xs.items()})
        for t, J in zip(idx, jac, strict=True):
            q, r = np.linalg.qr(J @ q)
            if t >= transient:
                with np.errstate(divide="ignore"):
                    total += np.log(np.abs(np.diag(r)))
    return np.sort(total / (steps - transient))[::-1]
