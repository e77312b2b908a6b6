"""Theory overlays from the parameters and forward values: Pascanu's bound, gated-path products.

* Elman (one state ``h = act(W h[t-1] + inputs)``): Pascanu, Mikolov & Bengio (2013),
  ``||dh_t/dh_k|| <= (gamma * sigma_max(W))^(t-k)``, so with the loss at the last step
  ``||dL/dh_{T-1-k}|| <= (gamma sigma_max)^k ||dL/dh_{T-1}||``. ``gamma`` is the
  activation's bound ``max |act'|`` (1 for tanh, 1/4 for sigmoid); the largest singular
  value is used, not the spectral radius (the radius gives no bound).
* Gated carry (``s = gate * s[t-1] + ...``: the LSTM cell ``c = f * c[t-1] + i * g``, the
  GRU ``h = (1 - z) * n + z * h[t-1]``): the gradient carried by that path alone,
  ``||(prod f) * dL/ds_{T-1}||``, from the forward values of the gate. It is exact when
  the other paths carry nothing (zero recurrent weights) and the "constant error carousel"
  when there is no gate (the 1997 LSTM, factor 1). The gate may be any node: minGRU's
  ``1 - z`` gives ``prod(1 - z)``, minLSTM's ``f / (f + i)`` its normalised forget gate.
* Diagonal recurrence (``s = factor * s[t-1]`` per unit, through an op row with a
  ``diagonal``): the LRU's ``lambda^k`` and IndRNN's ``prod |u * act'|``, exact for the
  only path across time.

Each overlay is indexed by the distance ``k = 0 ... T-1`` from the last step and anchored
at the measured norm there; it assumes the only cotangent sits at the last step
(``many-to-one``). It applies when exactly one state node of the graph matches a rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ..engine import BPTTResult
from ..graph import Graph
from ..ops import ACTIVATIONS
from .logspace import log10_norm

__all__ = ["THEORIES", "Theory", "TheoryRule", "pascanu_factor", "theory_bound", "theory_matches"]


@dataclass(frozen=True)
class Theory:
    """An overlay for one state node: ``log10[k]`` at distance ``k`` from the last step.

    ``log10_factor`` is the bound's per-step factor ``log10(gamma sigma_max)`` (Pascanu)
    or ``None`` (a path product, whose factor changes from step to step). For an ensemble
    result, ``log10`` is ``(S, T)`` and the factor one per model.
    """

    node: str
    kind: str
    formula: str
    log10: np.ndarray
    log10_factor: float | np.ndarray | None = None


#: ``spectral_norms(weight)``: the largest singular value of ``params[weight]``, one per model.
SpectralNorms = Callable[[str], np.ndarray]


@dataclass(frozen=True)
class TheoryRule:
    """``match(graph, node) -> dict | None`` finds the structure; ``compute(graph, params,
    result, node, match, spectral_norms)`` draws the curve."""

    kind: str
    match: Callable[[Graph, str], dict | None]
    compute: Callable[[Graph, Mapping, BPTTResult, str, dict, SpectralNorms], Theory]
    doc: str


# ---- Pascanu et al. 2013 -------------------------------------------------------------------


def _match_elman(graph: Graph, node: str) -> dict | None:
    n = graph.nodes[node]
    if not n.op.weighted or graph.state_nodes() != [node]:
        return None
    edges = graph.in_edges(node)
    loops = [e for e in edges if e.delay != 0]
    others = [e for e in edges if e.delay == 0]
    if len(loops) != 1 or loops[0].source != node or loops[0].delay != 1 or not loops[0].weight:
        return None
    if any(not graph.nodes[e.source].op.has("fed") for e in others):
        return None
    return {"weight": loops[0].weight, "activation": n.activation}


def pascanu_factor(params: Mapping, weight: str, activation: str):
    """``log10(gamma * sigma_max(W))``: the per-step factor of Pascanu's bound.

    A float, or one per model where ``W`` carries a leading ensemble axis.

    Examples
    --------
    >>> W = np.diag([0.5, 2.0])
    >>> float(pascanu_factor({"W_hh": W}, "W_hh", "sigmoid"))  # log10(2 / 4)
    -0.3010299956639812
    >>> pascanu_factor({"W_hh": np.stack([W, 2 * W])}, "W_hh", "tanh").round(6).tolist()
    [0.30103, 0.60206]
    """
    return _log10_factor(ACTIVATIONS[activation].gamma, _svd_norms(params)(weight))


def _svd_norms(params: Mapping) -> SpectralNorms:
    """The largest singular value of ``params[weight]`` (one per model): an SVD of each."""
    return lambda weight: np.linalg.norm(np.asarray(params[weight], dtype=float), 2, axis=(-2, -1))


def _log10_factor(gamma: float, sigma: np.ndarray):
    """``log10(gamma * sigma)``, ``-inf`` where it is 0; a float for one model."""
    value = gamma * np.asarray(sigma)
    with np.errstate(divide="ignore"):
        factor = np.where(value > 0, np.log10(np.where(value > 0, value, 1.0)), -np.inf)
    return float(factor) if factor.ndim == 0 else factor


def _pascanu(graph, params, result, node, match, spectral_norms) -> Theory:
    T = result.unrolled.steps
    gamma = ACTIVATIONS[match["activation"]].gamma
    factor = _log10_factor(gamma, spectral_norms(match["weight"]))
    anchor = result.log10_grad_norms(node)[..., T - 1, None]
    k = np.arange(T, dtype=float)
    with np.errstate(invalid="ignore"):
        curve = np.where(k == 0, anchor, anchor + k * np.asarray(factor)[..., None])
    formula = (
        f"‖∂L/∂{node}_T‖·(γ σ_max({match['weight']}))^k, γ = {gamma:g} ({match['activation']})"
    )
    return Theory(node, "pascanu bound", formula, curve, factor)


# ---- gated carry (LSTM cell, GRU update) ---------------------------------------------------


def _match_gated(graph: Graph, node: str) -> dict | None:
    if not graph.nodes[node].op.has("sum"):
        return None
    for e in graph.in_edges(node):
        if e.source == node and e.delay == 1:
            return {"gate": None}
        if e.delay != 0 or not graph.nodes[e.source].op.has("product"):
            continue
        ins = graph.in_edges(e.source)
        carried = [i for i in ins if i.source == node and i.delay == 1]
        gates = [i for i in ins if i.delay == 0 and i.source != node]  # f, z, 1 - z, f'...
        if len(ins) == 2 and len(carried) == 1 and len(gates) == 1:
            return {"gate": gates[0].source}
    return None


def _gated(graph, params, result, node, match, spectral_norms) -> Theory:
    T, gate = result.unrolled.steps, match["gate"]
    cot = np.asarray(result.node_grads[(node, T - 1)], dtype=float)
    with np.errstate(divide="ignore"):
        start = np.log10(np.abs(cot))
        if gate is None:
            logs = np.zeros((T, *cot.shape))
        else:
            logs = np.log10(np.stack([result.values[(gate, t)] for t in range(T)]))
    curve = _path_norms(start, logs)
    if gate is None:
        return Theory(
            node,
            "carousel",
            f"‖∂L/∂{node}_T‖ (ungated path {node}[t-1] -> {node}: factor 1)",
            curve,
        )
    return Theory(
        node,
        "gated path",
        f"‖(∏ {gate}) ⊙ ∂L/∂{node}_T‖ (the {node} -> {node} path through gate {gate} alone)",
        curve,
    )


# ---- diagonal recurrences (IndRNN, the LRU) -----------------------------------------------


def _match_diagonal(graph: Graph, node: str) -> dict | None:
    """``s = node[t-1] * factor`` (a row with a :attr:`~unroll.ops.Op.diagonal`) feeding
    ``node`` straight back: a sum (the LRU) or a layer's identity edge (IndRNN)."""
    n = graph.nodes[node]
    if graph.state_nodes() != [node] or not (n.op.has("sum") or n.op.weighted):
        return None
    for e in graph.in_edges(node):
        source = graph.nodes[e.source]
        if e.delay != 0 or e.weight or source.op.diagonal is None:
            continue
        ins = graph.in_edges(e.source)
        if len(ins) == 1 and ins[0].source == node and ins[0].delay == 1:
            return {"factor": e.source}
    return None


def _path_norms(start: np.ndarray, logs: np.ndarray) -> np.ndarray:
    """``log10 ||(prod of the factors from the last step back to k) * dL/ds_T||`` for each
    distance ``k``: ``start`` is ``log10 |dL/ds_T|`` ``(*lead, B, n)``, ``logs[t]`` the
    log10 factor at step ``t``; the result is ``(*lead, T)`` (``lead``: an ensemble's models)."""
    T = logs.shape[0]
    carried = np.concatenate([np.zeros((1, *start.shape)), np.cumsum(logs[::-1], axis=0)[:-1]])
    paths = (start[None] + carried).reshape(T, *start.shape[:-2], -1)
    return np.moveaxis(log10_norm(paths, axis=-1), 0, -1)


def _diagonal(graph, params, result, node, match, spectral_norms) -> Theory:
    T, s = result.unrolled.steps, graph.nodes[match["factor"]]
    roles = {p.role: params[name] for p, name in zip(s.op.params, s.params, strict=True)}
    factor = np.abs(np.asarray(s.op.diagonal(**roles), dtype=float))
    cot = np.asarray(result.node_grads[(node, T - 1)], dtype=float)
    n = graph.nodes[node]
    with np.errstate(divide="ignore"):
        logs = np.broadcast_to(np.log10(factor)[..., None, :], (T, *cot.shape)).copy()
        if n.op.weighted:  # the activation's slope at each step joins the factor
            act = ACTIVATIONS[n.activation]
            for t in range(T):
                d = act.derivative(np.asarray(result.values[(node, t)], dtype=float))
                if d is not None:
                    logs[t] += np.log10(np.abs(d))
        start = np.log10(np.abs(cot))
    curve = _path_norms(start, logs)
    slope = "" if not n.op.weighted else f" ⊙ {n.activation}'"
    label, names = s.op.symbol.rstrip("⊙"), ", ".join(s.params)
    factor_text = f"{label}({names})" if label else names
    return Theory(
        node,
        "diagonal path",
        f"‖(∏ |{factor_text}{slope}|) ⊙ ∂L/∂{node}_T‖ (the per-unit recurrence through "
        f"{match['factor']}, exact)",
        curve,
    )


THEORIES: dict[str, TheoryRule] = {
    r.kind: r
    for r in [
        TheoryRule(
            "pascanu bound",
            _match_elman,
            _pascanu,
            "Elman: ||dh_t/dh_k|| <= (gamma sigma_max(W_hh))^(t-k), Pascanu et al. 2013",
        ),
        TheoryRule(
            "gated path",
            _match_gated,
            _gated,
            "LSTM cell / GRU / minGRU / minLSTM state: the product of the gate along the "
            "carried path (minGRU: prod(1 - z))",
        ),
        TheoryRule(
            "diagonal path",
            _match_diagonal,
            _diagonal,
            "IndRNN / LRU: the per-unit factor |u_j act'| or lambda_j, to the k (exact)",
        ),
    ]
}


def theory_matches(graph: Graph) -> dict[str, tuple[TheoryRule, dict]]:
    """``{state node: (rule, match)}``; empty unless exactly one state node matches a rule.

    Examples
    --------
    >>> from unroll import presets
    >>> {n: r.kind for n, (r, _) in theory_matches(presets.lstm(2, 3)).items()}
    {'c': 'gated path'}
    >>> theory_matches(presets.stacked("lstm", 2, 3, layers=2))
    {}
    """
    if not graph.is_causal() or graph.max_delay() != 1:
        return {}
    found = {}
    for node in graph.state_nodes():
        for rule in THEORIES.values():
            match = rule.match(graph, node)
            if match is not None:
                found[node] = (rule, match)
                break
    return found if len(found) == 1 else {}


def theory_bound(
    graph: Graph,
    params: Mapping,
    result: BPTTResult,
    *,
    spectral_norms: SpectralNorms | None = None,
) -> dict[str, Theory]:
    """The theory overlay of each state node it applies to, from the last step's gradient.

    Parameters
    ----------
    graph : Graph
    params : mapping
        The parameters the result was computed with.
    result : BPTTResult
        A run whose only cotangent sits at the last step.
    spectral_norms : callable, optional
        ``spectral_norms(weight)``: the largest singular value of ``params[weight]`` (one
        per model), where the caller knows a cheaper way to it than an SVD per model (an
        ensemble rescaled from a few drawn matrices:
        :meth:`unroll.init.StackedParams.spectral_norms`). Default: an SVD of each.

    Returns
    -------
    dict[str, Theory]
        ``{state node: Theory}`` with ``Theory.log10[k]`` the log10 bound (Elman) or path
        term (LSTM, GRU) at distance ``k``; empty when no rule applies.

    Examples
    --------
    >>> import unroll
    >>> g = unroll.presets.elman(2, 4, bias=False)
    >>> p = unroll.init_params(g, seed=0, scheme="orthogonal", spectral_norm=0.5)
    >>> u = unroll.unroll(g, steps=3, mode="many-to-one")
    >>> r = unroll.bptt(u, p, {"x": np.zeros((3, 1, 2))}, {("h", 2): np.ones((1, 4)) / 2})
    >>> theory_bound(g, p, r)["h"].log10.round(6).tolist()   # 0.5**k
    [0.0, -0.30103, -0.60206]
    """
    norms = spectral_norms or _svd_norms(params)
    return {
        node: rule.compute(graph, params, result, node, match, norms)
        for node, (rule, match) in theory_matches(graph).items()
    }
