"""Parameter initialisation schemes, seeded and deterministic.

Each parameter draws from its own generator, seeded by ``(seed, crc32(name))``, so adding
a parameter to a graph does not change the values drawn for the others.
"""

from __future__ import annotations

import inspect
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .errors import InputError
from .graph import Graph
from .ops import PARAM_INITS

__all__ = [
    "INIT_OPTIONS",
    "SCHEMES",
    "Scheme",
    "StackedParams",
    "init_params",
    "init_params_many",
    "init_params_stacked",
]


@dataclass(frozen=True)
class Scheme:
    """How to draw a weight (``weight(rng, shape, recurrent)``) and a bias (``bias(rng, n)``)."""

    name: str
    weight: Callable[[np.random.Generator, tuple[int, int], bool], np.ndarray]
    bias: Callable[[np.random.Generator, int], np.ndarray]
    doc: str


def _torch_uniform(
    rng: np.random.Generator, shape: tuple[int, ...], recurrent: bool = False
) -> np.ndarray:
    bound = 1.0 / np.sqrt(shape[0])
    return rng.uniform(-bound, bound, size=shape)


def _glorot(
    rng: np.random.Generator, shape: tuple[int, int], recurrent: bool = False
) -> np.ndarray:
    bound = np.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(-bound, bound, size=shape)


def _lecun_normal(
    rng: np.random.Generator, shape: tuple[int, int], recurrent: bool = False
) -> np.ndarray:
    return rng.normal(0.0, 1.0 / np.sqrt(shape[1]), size=shape)


def _he_normal(
    rng: np.random.Generator, shape: tuple[int, int], recurrent: bool = False
) -> np.ndarray:
    return rng.normal(0.0, np.sqrt(2.0 / shape[1]), size=shape)


def _orthogonal(
    rng: np.random.Generator, shape: tuple[int, int], recurrent: bool = False
) -> np.ndarray:
    if not recurrent or shape[0] != shape[1]:
        return _glorot(rng, shape)
    q, r = np.linalg.qr(rng.normal(size=shape))
    return q * np.sign(np.diag(r))


def _identity(
    rng: np.random.Generator, shape: tuple[int, int], recurrent: bool = False
) -> np.ndarray:
    if recurrent and shape[0] == shape[1]:
        return np.eye(shape[0])
    return rng.normal(0.0, 0.001, size=shape)


def _zeros(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.zeros(n)


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in [
        Scheme(
            "torch",
            _torch_uniform,
            lambda rng, n: _torch_uniform(rng, (n,)),
            "torch.nn's default: U(-1/sqrt(n), 1/sqrt(n)), n the receiving node's size",
        ),
        Scheme("glorot", _glorot, _zeros, "Glorot/Xavier uniform weights, zero biases"),
        Scheme("normal", _lecun_normal, _zeros, "N(0, 1/fan_in) weights, zero biases"),
        Scheme(
            "he",
            _he_normal,
            _zeros,
            "He/Kaiming normal N(0, 2/fan_in) weights, zero biases (for ReLU nets)",
        ),
        Scheme(
            "orthogonal",
            _orthogonal,
            _zeros,
            "random orthogonal recurrent weights (Saxe et al.), Glorot elsewhere",
        ),
        Scheme(
            "identity",
            _identity,
            _zeros,
            "identity recurrent weights (IRNN, Le et al. 2015), N(0, 1e-3) elsewhere",
        ),
    ]
}


def init_params(
    graph: Graph,
    seed: int = 0,
    scheme: str = "torch",
    *,
    spectral_radius: float | None = None,
    spectral_norm: float | None = None,
    forget_bias: float | None = None,
    bias: float | None = None,
    dtype: DTypeLike = np.float64,
) -> dict[str, np.ndarray]:
    """Draw every parameter of ``graph``; return ``{name: array}`` sorted by name.

    An op's own parameters (a ``scale`` node's ``w``, the LRU's ``nu``) are drawn by the
    rule their row declares (:attr:`unroll.ops.Param.init`), or the node's ``init``.

    Parameters
    ----------
    graph : Graph
    seed : int
        Seed of the draw; the same seed gives the same arrays.
    scheme : str
        A key of :data:`SCHEMES`: ``torch`` (default), ``glorot``, ``normal``, ``he``,
        ``orthogonal`` or ``identity``.
    spectral_radius, spectral_norm : float, optional
        Rescale every square recurrent weight (on an edge with nonzero delay) to this
        largest absolute eigenvalue, or to this largest singular value.
    forget_bias : float, optional
        Set the bias of every forget gate so the gate's biases sum to this value
        (the first bias takes it, the others 0).
    bias : float, optional
        Set every bias to this constant.
    dtype : numpy dtype

    Returns
    -------
    dict[str, numpy.ndarray]

    Raises
    ------
    InputError
        For an unknown scheme, both spectral options at once, or a forget bias on a
        graph without a forget gate.

    Examples
    --------
    >>> from unroll import presets
    >>> p = init_params(presets.elman(3, 4), seed=0, scheme="orthogonal", spectral_norm=0.5)
    >>> round(float(np.linalg.norm(p["W_hh"], 2)), 12)
    0.5
    """
    options: dict[str, float | None] = {
        "spectral_radius": spectral_radius,
        "spectral_norm": spectral_norm,
        "forget_bias": forget_bias,
        "bias": bias,
    }
    (params,) = init_params_many(graph, [(seed, scheme, options)])
    return {k: np.asarray(v, dtype=dtype) for k, v in params.items()}


#: The keyword options of :func:`init_params` (besides ``dtype``): what a model spec, a
#: sweep axis or ``unroll train`` may set.
INIT_OPTIONS: tuple[str, ...] = tuple(
    p.name
    for p in inspect.signature(init_params).parameters.values()
    if p.kind is p.KEYWORD_ONLY and p.name != "dtype"
)


def _draw(graph: Graph, seed: int, scheme: str, bias: float | None) -> dict[str, np.ndarray]:
    """Every parameter as the scheme draws it for ``seed``, before any rescaling."""
    rule = SCHEMES[scheme]
    recurrent = set(graph.recurrent_weights())
    params: dict[str, np.ndarray] = {}
    declared = graph.op_params()
    for name, shape in graph.params().items():
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        if name in declared:  # an op's parameter: its row's rule, or its node's
            node, spec = declared[name]
            params[name] = PARAM_INITS[node.init or spec.init](rng, shape)
        elif len(shape) == 2:
            params[name] = rule.weight(rng, shape, name in recurrent)
        else:
            params[name] = rule.bias(rng, shape[0]) if bias is None else np.full(shape, bias)
    return params


def _check_arguments(graph: object, seed: object, scheme: object, *options: object) -> None:
    if not isinstance(graph, Graph):
        raise InputError(f"init_params takes an unroll.Graph, got {type(graph).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(scheme, str) or scheme not in SCHEMES:
        raise InputError(f"unknown init scheme {scheme!r} (known: {', '.join(SCHEMES)})")
    names = ("spectral_radius", "spectral_norm", "forget_bias", "bias")
    for name, value in zip(names, options, strict=True):
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float | np.number)
            or not (np.isfinite(value))
        ):
            raise InputError(f"{name} must be a finite number, got {value!r}")
        if name.startswith("spectral") and value < 0:
            raise InputError(f"{name} must not be negative, got {value!r}")


def _spectral_measure(w: np.ndarray, radius: bool) -> float:
    """The largest absolute eigenvalue of ``w`` (``radius``), else its largest singular value."""
    return float(np.max(np.abs(np.linalg.eigvals(w))) if radius else np.linalg.norm(w, 2))


#: The base draw of a seed: ``(seed, scheme, bias)``.
_BaseKey = tuple[int, str, float | None]


@dataclass(frozen=True)
class _Plan:
    """One draw: the base it starts from, the factor of each rescaled recurrent weight and
    the bias arrays a forget bias sets."""

    base: _BaseKey
    factors: dict[str, float]
    overrides: dict[str, np.ndarray]


def _plan(
    graph: Graph, draws: Sequence[tuple[int, str, Mapping[str, Any]]]
) -> tuple[dict[_BaseKey, dict[str, np.ndarray]], list[_Plan]]:
    """Check every draw; draw each base once and measure each recurrent weight once."""
    bases: dict[_BaseKey, dict[str, np.ndarray]] = {}
    measures: dict[tuple[_BaseKey, str, bool], float] = {}
    plans = []
    for seed, scheme, options in draws:
        radius, norm = options.get("spectral_radius"), options.get("spectral_norm")
        forget_bias, bias = options.get("forget_bias"), options.get("bias")
        _check_arguments(graph, seed, scheme, radius, norm, forget_bias, bias)
        if radius is not None and norm is not None:
            raise InputError("give spectral_radius or spectral_norm, not both")
        key = (seed, scheme, bias)
        if key not in bases:
            bases[key] = _draw(graph, seed, scheme, bias)
        target = radius if radius is not None else norm
        factors = {} if target is None else _factors(graph, bases, key, target, radius, measures)
        overrides = {} if forget_bias is None else _forget_biases(graph, forget_bias)
        plans.append(_Plan(key, factors, overrides))
    return bases, plans


def _factors(
    graph: Graph,
    bases: dict[_BaseKey, dict[str, np.ndarray]],
    key: _BaseKey,
    target: float,
    radius: float | None,
    measures: dict[tuple[_BaseKey, str, bool], float],
) -> dict[str, float]:
    """``{weight: factor}`` rescaling each square recurrent weight of base ``key`` to
    ``target`` (its spectral radius where ``radius`` is given, else its largest singular
    value); each weight is measured once (``measures``), one measured 0 is left alone."""
    factors: dict[str, float] = {}
    for name in graph.recurrent_weights():
        w = bases[key][name]
        if w.shape[0] == w.shape[1]:
            kind = (key, name, radius is not None)
            if kind not in measures:
                measures[kind] = _spectral_measure(w, radius is not None)
            if measures[kind] > 0:
                factors[name] = target / measures[kind]
    return factors


def init_params_many(
    graph: Graph, draws: Sequence[tuple[int, str, Mapping[str, Any]]]
) -> list[dict[str, np.ndarray]]:
    """:func:`init_params` of each ``(seed, scheme, options)`` in ``draws`` (float64).

    Equal to calling :func:`init_params` once per draw, but each seed is drawn once and each
    recurrent weight measured once: a sweep over ``spectral_radius`` x seeds draws and
    measures per seed, not per point. ``options`` holds keyword options of
    :func:`init_params` (absent ones are None).

    Examples
    --------
    >>> from unroll import presets
    >>> g = presets.elman(3, 4)
    >>> a, b = init_params_many(g, [(0, "torch", {"spectral_radius": r}) for r in (0.5, 2.0)])
    >>> bool(np.array_equal(2.0 * a["W_hh"], 0.5 * b["W_hh"]))
    True
    >>> bool(np.array_equal(b["W_hh"], init_params(g, 0, spectral_radius=2.0)["W_hh"]))
    True
    """
    bases, plans = _plan(graph, draws)
    out = []
    for plan in plans:
        base = bases[plan.base]  # rescaling makes new arrays: the draws stay as drawn
        rescaled = {name: base[name] * factor for name, factor in plan.factors.items()}
        out.append({**base, **rescaled, **plan.overrides})
    return out


@dataclass(frozen=True)
class StackedParams:
    """The parameters of several models of one graph, stacked on a leading model axis, and
    how each recurrent weight was made: model ``i``'s ``name`` is
    ``bases[name][index[i]] * factors[name][i]``, bitwise.

    A sweep over a spectral option rescales one drawn matrix per seed, so
    :meth:`spectral_norms` takes one SVD per seed, not one per model.

    Attributes
    ----------
    params : dict
        ``{name: array (S, *shape)}``: an ensemble for :func:`unroll.bptt`.
    index : numpy.ndarray
        ``(S,)`` integers: the base of each model.
    bases : dict
        ``{recurrent weight: array (U, *shape)}``: the distinct matrices drawn.
    factors : dict
        ``{recurrent weight: array (S,)}``: each model's rescale factor (1 for none).
    """

    params: dict[str, np.ndarray]
    index: np.ndarray
    bases: dict[str, np.ndarray]
    factors: dict[str, np.ndarray]

    @classmethod
    def of(cls, per_model: Sequence[Mapping[str, Any]], recurrent: Sequence[str]) -> StackedParams:
        """Stack ``{name: array}`` per model; each model is its own base (factor 1).

        Examples
        --------
        >>> s = StackedParams.of([{"W": np.eye(2)}, {"W": 3 * np.eye(2)}], ["W"])
        >>> s.params["W"].shape, s.spectral_norms("W").tolist()
        ((2, 2, 2), [1.0, 3.0])
        """
        params = {key: np.stack([p[key] for p in per_model]) for key in per_model[0]}
        names = [name for name in recurrent if name in params]
        ones = np.ones(len(per_model))
        bases = {name: params[name] for name in names}
        return cls(params, np.arange(len(per_model)), bases, dict.fromkeys(names, ones))

    def model(self, i: int) -> dict[str, np.ndarray]:
        """Model ``i``'s parameters, ``{name: array}`` (views)."""
        return {name: value[i] for name, value in self.params.items()}

    def spectral_norms(self, name: str) -> np.ndarray:
        """The largest singular value of each model's recurrent weight ``name``, ``(S,)``:
        each distinct base's, times the model's ``|factor|``."""
        sigma: np.ndarray = np.linalg.norm(self.bases[name], 2, axis=(-2, -1))
        return np.asarray(sigma[self.index] * np.abs(self.factors[name]))


def init_params_stacked(
    graph: Graph, draws: Sequence[tuple[int, str, Mapping[str, Any]]]
) -> StackedParams:
    """:func:`init_params_many` stacked into one ensemble, without a copy per draw.

    ``params[name][i]`` equals ``init_params_many(graph, draws)[i][name]`` bitwise.

    Examples
    --------
    >>> from unroll import presets
    >>> g = presets.elman(3, 4)
    >>> draws = [(s, "torch", {"spectral_norm": r}) for r in (0.5, 2.0) for s in (0, 1)]
    >>> s = init_params_stacked(g, draws)
    >>> s.params["W_hh"].shape, s.index.tolist(), s.spectral_norms("W_hh").round(12).tolist()
    ((4, 4, 4), [0, 1, 0, 1], [0.5, 0.5, 2.0, 2.0])
    """
    bases, plans = _plan(graph, draws)
    position = {key: i for i, key in enumerate(bases)}
    index = np.array([position[plan.base] for plan in plans], dtype=np.intp)
    params, distinct, factors = {}, {}, {}
    recurrent = set(graph.recurrent_weights())
    for name in next(iter(bases.values()), {}):
        drawn = np.stack([base[name] for base in bases.values()])
        stacked = drawn[index]
        if name in recurrent:
            distinct[name] = drawn
            factors[name] = np.array([plan.factors.get(name, 1.0) for plan in plans])
            stacked *= factors[name].reshape(-1, *(1,) * (stacked.ndim - 1))
        for i, plan in enumerate(plans):
            if name in plan.overrides:
                stacked[i] = plan.overrides[name]
        params[name] = stacked
    return StackedParams(params, index, distinct, factors)


def _forget_biases(graph: Graph, value: float) -> dict[str, np.ndarray]:
    """The bias arrays of every forget gate: the first bias ``value``, the others 0."""
    gates = [n for n in graph.nodes.values() if n.gate == "forget"]
    if not gates:
        raise InputError(f"forget_bias: graph {graph.name!r} has no forget gate")
    biases = {}
    for node in gates:
        if not node.biases:
            raise InputError(f"forget_bias: forget gate {node.name!r} has no bias")
        for i, b in enumerate(node.biases):
            biases[b] = np.full(node.size, value if i == 0 else 0.0)
    return biases
