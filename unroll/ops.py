"""The closed set of node kinds and activations: forward and vector-Jacobian product of each.

Every kind of node a recurrent graph may hold is one row of :data:`OPS`, and every
activation a ``layer`` node may apply is one row of :data:`ACTIVATIONS`, in the manner
of HIPS autograd's ``defvjp`` table. The engine, the validator and the renderer all read
these tables; nothing else in the package switches on a node's kind: the graph validates
sizes with :attr:`Op.check_sizes` and writes :attr:`Op.equation`, the engine runs
:attr:`Op.forward` and :attr:`Op.vjp` with the row's parameters, the renderer draws
:attr:`Op.drawing`, and the rest asks a row's :attr:`Op.traits`.

How to add a node kind
----------------------
Write one :class:`Op` row and pass it to :func:`register` (or add it to :data:`OPS`
below). Give it its inputs (``min_inputs``, ``max_inputs``), its forward and its VJP; if it
has parameters, declare each as a :class:`Param` (role, default name pattern, shape,
default init from :data:`PARAM_INITS`): the forward takes them as keywords and the VJP
returns their unreduced cotangents after the inputs'. Optionally a drawing, an equation,
a size check, traits and, for ``y = factor * x`` rows, the ``diagonal`` factor. Then
``Graph.add_node(name, kind, size, params=[...])``, TOML files (``params = [...]`` on the
node), ``init_params``, ``bptt`` (with its per-step contributions, ensembles,
checkpointing and truncation), ``render`` and ``analyze`` all take it with no other
change; ``tests/test_cells.py`` registers one at run time to prove it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from unroll.graph import Edge, Node

__all__ = [
    "ACTIVATIONS",
    "OPS",
    "PARAM_INITS",
    "Activation",
    "Drawing",
    "Op",
    "Param",
    "activation",
    "op",
    "register",
]


@dataclass(frozen=True)
class Activation:
    """An elementwise nonlinearity, its derivative and the bound ``gamma = max |act'|``.

    ``derivative`` is written in terms of the activation's *output* ``y``, which the
    forward pass stores anyway; it returns ``None`` where the derivative is 1.
    """

    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray], np.ndarray | None]
    gamma: float
    formula: str
    forward_into: Callable[[np.ndarray], None] | None = None  # z <- act(z), in place
    vjp_into: Callable[[np.ndarray, np.ndarray], None] | None = None  # y <- g * act'(y)
    derivative_into: Callable[[np.ndarray, np.ndarray], None] | None = None  # out <- act'
    #: ``forward_lines(z, name, x=None)``: ``z <- act(x)`` as lines of Python, ``x`` the
    #: text of an array shaped as ``z`` (``None``: ``z`` itself, ``forward_into``), and
    #: ``name(f)`` the text naming function ``f`` there; inlined by generated steps.
    forward_lines: Callable[..., list[str]] | None = None
    #: ``vjp_lines(g, y, tmp, name)``: ``y <- g * act'(y)`` as lines (``tmp`` a scratch
    #: array of ``y``'s shape).
    vjp_lines: Callable[[str, str, str, Callable[[object], str]], list[str]] | None = None

    def derivative_to(self, y: np.ndarray, out: np.ndarray) -> None:
        """Write ``act'(x)`` (from the output ``y``) into ``out``, without temporaries
        where the row says how."""
        if self.derivative_into is not None:
            self.derivative_into(y, out)
            return
        d = self.derivative(y)
        out[...] = 1.0 if d is None else d

    def vjp(self, g: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Return ``g * act'(x)`` given the output ``y = act(x)``."""
        d = self.derivative(y)
        return g if d is None else g * d

    def apply_inplace(self, z: np.ndarray) -> None:
        """Overwrite the pre-activation ``z`` with ``act(z)``."""
        if self.forward_into is not None:
            self.forward_into(z)
        else:
            z[...] = self.forward(z)

    def vjp_inplace(self, g: np.ndarray, y: np.ndarray) -> None:
        """Overwrite the output ``y`` with ``g * act'(x)``: the pre-activation gradient."""
        if self.vjp_into is not None:
            self.vjp_into(g, y)
            return
        d = self.derivative(y)
        if d is None:
            y[...] = g
        else:
            np.multiply(g, d, out=y)


def _sigmoid(x: NDArray[np.float64]) -> np.ndarray:
    # 1 / (1 + exp(-x)) is accurate to a few ulp for every x; exp overflows to inf for
    # x < -709, which gives the correct limit 0 (the engine silences that warning).
    return 1.0 / (1.0 + np.exp(-x))


def _sigmoid_into(z: np.ndarray) -> None:
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1.0
    np.reciprocal(z, out=z)


def _tanh_derivative_into(y: np.ndarray, out: np.ndarray) -> None:
    np.multiply(y, y, out=out)
    np.subtract(1.0, out, out=out)


def _sigmoid_derivative_into(y: np.ndarray, out: np.ndarray) -> None:
    np.subtract(1.0, y, out=out)
    out *= y


def _tanh_vjp_into(g: np.ndarray, y: np.ndarray) -> None:
    np.multiply(y, y, out=y)
    np.subtract(1.0, y, out=y)
    y *= g


def _tanh_lines(z: str, name: Callable[[object], str], x: str | None = None) -> list[str]:
    return [f"{name(np.tanh)}({x or z}, out={z})"]


def _tanh_vjp_lines(g: str, y: str, tmp: str, name: Callable[[object], str]) -> list[str]:
    return [
        f"{name(np.multiply)}({y}, {y}, out={y})",
        f"{name(np.subtract)}(1.0, {y}, out={y})",
        f"{y} *= {g}",
    ]


def _sigmoid_lines(z: str, name: Callable[[object], str], x: str | None = None) -> list[str]:
    return [
        f"{name(np.negative)}({x or z}, out={z})",
        f"{name(np.exp)}({z}, out={z})",
        f"{z} += 1.0",
        f"{name(np.reciprocal)}({z}, out={z})",
    ]


def _sigmoid_vjp_lines(g: str, y: str, tmp: str, name: Callable[[object], str]) -> list[str]:
    return [
        f"{name(np.subtract)}(1.0, {y}, out={tmp})",
        f"{tmp} *= {y}",
        f"{name(np.multiply)}({g}, {tmp}, out={y})",
    ]


def _softplus(x: NDArray[np.float64]) -> np.ndarray:
    return np.logaddexp(0.0, x)


LEAKY_SLOPE = 0.01

ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in [
        Activation(
            "identity",
            lambda x: x,
            lambda y: None,
            1.0,
            "x",
            lambda z: None,
            forward_lines=lambda z, name, x=None: [] if x is None else [f"{z}[...] = {x}"],
            vjp_lines=lambda g, y, tmp, name: [f"{y}[...] = {g}"],
        ),
        Activation(
            "tanh",
            np.tanh,
            lambda y: 1.0 - y * y,
            1.0,
            "tanh(x)",
            lambda z: np.tanh(z, out=z),
            _tanh_vjp_into,
            _tanh_derivative_into,
            _tanh_lines,
            _tanh_vjp_lines,
        ),
        Activation(
            "sigmoid",
            _sigmoid,
            lambda y: y * (1.0 - y),
            0.25,
            "1 / (1 + exp(-x))",
            _sigmoid_into,
            None,
            _sigmoid_derivative_into,
            _sigmoid_lines,
            _sigmoid_vjp_lines,
        ),
        Activation(
            "relu",
            lambda x: np.maximum(x, 0.0),
            lambda y: (y > 0).astype(y.dtype),
            1.0,
            "max(x, 0)",
        ),
        Activation(
            "leaky_relu",
            lambda x: np.where(x > 0, x, LEAKY_SLOPE * x),
            lambda y: np.where(y > 0, 1.0, LEAKY_SLOPE).astype(y.dtype),
            1.0,
            f"max(x, {LEAKY_SLOPE} x)",
        ),
        Activation("softplus", _softplus, lambda y: -np.expm1(-y), 1.0, "log(1 + exp(x))"),
        Activation(
            "hard_sigmoid",  # Keras 3's (torch's hardsigmoid); Keras 2's was 0.2 x + 0.5
            lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),
            lambda y: np.where((y > 0.0) & (y < 1.0), 1.0 / 6.0, 0.0).astype(y.dtype),
            1.0 / 6.0,
            "clip(x / 6 + 1/2, 0, 1)",
        ),
        Activation(
            "softsign",
            lambda x: x / (1.0 + np.abs(x)),
            lambda y: (1.0 - np.abs(y)) ** 2,
            1.0,
            "x / (1 + |x|)",
        ),
    ]
}


@dataclass(frozen=True)
class Drawing:
    """How the renderer draws a node of one kind: graphviz shape, fill, style, border;
    ``symbol`` nodes show the op's symbol large and their name small."""

    shape: str = "circle"
    fill: str = "#ffffff"
    style: str = "filled"
    border: str = "#444444"
    symbol: bool = True


@dataclass(frozen=True)
class Param:
    """A parameter an op row declares: its ``role`` (the keyword its forward and VJP take),
    the default name ``pattern`` (``{node}`` is the node's name, ``{role}`` the role),
    its shape from the node's size and its input sizes, and its default init (a key of
    :data:`PARAM_INITS`). A parameter's shape is ``()`` or ``(size,)``: it broadcasts
    against the node's value over the trailing axes."""

    role: str
    pattern: str = "{role}_{node}"
    shape: Callable[[int, list[int]], tuple[int, ...]] = lambda size, sizes: (size,)
    init: str = "fan"
    doc: str = ""


def _uniform_fan(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    n = shape[0] if shape else 1
    return rng.uniform(-1.0 / np.sqrt(n), 1.0 / np.sqrt(n), size=shape)


#: LRU ring init (Orvieto et al. 2023): |lambda| uniform on the ring r_min <= |lambda| <= r_max.
LRU_RING = (0.9, 0.999)


def _lru_nu(
    rng: np.random.Generator, shape: tuple[int, ...], ring: tuple[float, float] = LRU_RING
) -> np.ndarray:
    """``nu`` so that ``lambda = exp(-exp(nu))`` has ``lambda**2`` uniform in
    ``[r_min**2, r_max**2]``, as Orvieto et al. draw it."""
    r_min, r_max = ring
    u = rng.uniform(size=shape)
    return np.log(-0.5 * np.log(u * (r_max**2 - r_min**2) + r_min**2))


#: An init rule for op parameters: ``rule(rng, shape) -> array``.
ParamInit = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]

#: Init rules for op parameters by name: ``rule(rng, shape) -> array``. A row names its
#: default; a node may name another (``Node.init``).
PARAM_INITS: dict[str, ParamInit] = {
    "ones": lambda rng, shape: np.ones(shape),
    "zeros": lambda rng, shape: np.zeros(shape),
    "fan": _uniform_fan,  # U(-1/sqrt(n), 1/sqrt(n)), as torch draws its biases
    "indrnn": lambda rng, shape: rng.uniform(0.0, 1.0, size=shape),  # |u| < 1: stable
    "lru": _lru_nu,
}


def _equal_sizes_check(node: Node, edges: Sequence[Edge], sizes: Sequence[int]) -> str | None:
    for e, s in zip(edges, sizes, strict=True):
        if s != node.size:
            return (
                f"edge {e.describe()}: size {s} does not match "
                f"{node.kind} node {node.name!r} of size {node.size}"
            )
    return None


def _call_equation(node: Node, reads: Sequence[str], params: Sequence[str]) -> str:
    inner = ", ".join(reads) + ("; " + ", ".join(params) if params else "")
    return f"{node.kind}({inner})"


#: ``vjp_into(g, xs, outs)``: a VJP that writes (``alone``) or adds into ``(out, alone)`` pairs.
VjpInto = Callable[[np.ndarray, Sequence[np.ndarray], Sequence[tuple[np.ndarray, bool]]], None]
#: ``forward_lines(out, xs, name)``: Python lines computing the row into the array ``out``
#: from the inputs' texts ``xs`` (``name(f)`` is the text naming function ``f`` there), or
#: ``None`` where the row has none for that many inputs.
ForwardLines = Callable[[str, Sequence[str], Callable[[object], str]], list[str] | None]
#: ``vjp_lines(g, xs, outs, name)``: lines writing (``alone``) or adding each input's
#: gradient into its ``(out, alone)`` text, as :data:`VjpInto` does, or ``None``.
VjpLines = Callable[
    [str, Sequence[str], Sequence[tuple[str, bool]], Callable[[object], str]], list[str] | None
]


@dataclass(frozen=True)
class Op:
    """One kind of node: its inputs, parameters, forward, VJP, drawing and formula.

    ``forward(*xs, **ps)`` maps the input values (in edge declaration order) and the
    parameters (by role, each broadcastable against the value) to the output;
    ``vjp(g, y, *xs, **ps)`` maps the cotangent ``g`` of the output to one cotangent per
    input, then one per parameter in :attr:`params` order, unreduced (the shape of ``g``;
    the engine sums them over the batch and the steps). A row without parameters is
    called without keywords. ``output_size(sizes)`` gives the output size the inputs
    imply, or ``None`` where the node's declared size stands. ``weighted`` says whether
    edges into the node may carry weight matrices (``layer``). ``check_sizes(node, edges,
    sizes)`` returns the message naming a size that does not fit, or ``None``.
    ``equation(node, reads, params)`` writes the node's formula from its reads' text.
    ``traits`` say what the rest of the package may rely on: ``"fed"`` (a sequence fed
    from outside: inputs), ``"absent_zero"`` (a read the sequence mode leaves absent adds
    zero), ``"sum"`` and ``"product"`` (elementwise sum and product of the inputs, which
    the gated-path theory looks for), ``"carry"`` (passes a state on elementwise: the
    cell-state highway diagrams draw is made of these). ``diagonal(**ps)``, where given,
    is the per-unit factor of a row that is ``y = factor * x`` (the theory overlays'
    exact diagonal recurrences read it). ``forward_into`` and ``vjp_into`` write into
    given arrays; ``forward_lines`` and ``vjp_lines`` say the same as lines of Python,
    which the engine's generated step programs inline (no call per step; optional, for
    speed only).
    """

    kind: str
    min_inputs: int
    max_inputs: int | None
    forward: Callable[..., np.ndarray] | None
    vjp: Callable[..., tuple[np.ndarray, ...]] | None
    output_size: Callable[[list[int]], int | None]
    weighted: bool
    symbol: str
    doc: str
    needs_inputs: bool = True  # its VJP reads the input values
    needs_output: bool = False  # its VJP reads its own output value
    forward_into: Callable[..., object] | None = None  # forward_into(out, *xs): written to out
    vjp_into: VjpInto | None = None  # vjp_into(g, xs, [(out, alone)]): write or add into outs
    forward_lines: ForwardLines | None = None  # forward_into as lines of a generated step
    vjp_lines: VjpLines | None = None  # vjp_into as lines of a generated step
    params: tuple[Param, ...] = ()
    drawing: Drawing = Drawing()
    equation: Callable[[Node, Sequence[str], Sequence[str]], str] = _call_equation
    check_sizes: Callable[[Node, Sequence[Edge], Sequence[int]], str | None] = _equal_sizes_check
    traits: frozenset[str] = frozenset()
    formula: str = ""  # the formula in words, for docs and `unroll presets`
    diagonal: Callable[..., np.ndarray] | None = (
        None  # diagonal(**ps): the per-unit factor y = factor * x
    )

    def has(self, trait: str) -> bool:
        """Whether the row declares ``trait`` (see the class docstring)."""
        return trait in self.traits

    def param_names(
        self, node: str, names: dict[str, str] | Sequence[str] | None = None
    ) -> tuple[str, ...]:
        """The names of a node's parameters: ``names`` (by role, or in order), else the
        rows' patterns."""
        if names is None:
            names = {}
        if not isinstance(names, dict):
            names = dict(zip((p.role for p in self.params), names, strict=False))
        return tuple(
            names.get(p.role, p.pattern.format(node=node, role=p.role)) for p in self.params
        )


def _mul_vjp(g: np.ndarray, y: np.ndarray | None, *xs: np.ndarray) -> tuple[np.ndarray, ...]:
    if len(xs) == 1:
        return (g,)
    if len(xs) == 2:
        return g * xs[1], g * xs[0]
    grads = []
    for i in range(len(xs)):
        others = [x for j, x in enumerate(xs) if j != i]
        grads.append(g * np.prod(np.stack(others), axis=0))
    return tuple(grads)


def _concat_vjp(g: np.ndarray, y: np.ndarray, *xs: np.ndarray) -> tuple[np.ndarray, ...]:
    ends = np.cumsum([x.shape[-1] for x in xs])
    return tuple(np.split(g, ends[:-1], axis=-1))


def _sum_into(out: np.ndarray, *xs: np.ndarray) -> None:
    if len(xs) == 2:
        np.add(xs[0], xs[1], out=out)
        return
    out[...] = xs[0]
    for x in xs[1:]:
        out += x


def _product_into(out: np.ndarray, *xs: np.ndarray) -> None:
    if len(xs) == 2:
        np.multiply(xs[0], xs[1], out=out)
        return
    out[...] = xs[0]
    for x in xs[1:]:
        out *= x


def _product_vjp_into(
    g: np.ndarray, xs: Sequence[np.ndarray], outs: Sequence[tuple[np.ndarray, bool]]
) -> None:
    """The product's VJP written into ``outs``: ``(out, alone)`` pairs, ``alone`` meaning
    nothing else writes there (assign, else add)."""
    if len(xs) != 2:
        for (out, alone), grad in zip(outs, _mul_vjp(g, None, *xs), strict=True):
            if alone:
                out[...] = grad
            else:
                out += grad
        return
    for (out, alone), other in zip(outs, (xs[1], xs[0]), strict=True):
        if alone:
            np.multiply(g, other, out=out)
        else:
            out += g * other


def _sum_vjp_into(
    g: np.ndarray, xs: Sequence[np.ndarray], outs: Sequence[tuple[np.ndarray, bool]]
) -> None:
    for out, alone in outs:
        if alone:
            out[...] = g
        else:
            out += g


def _sum_lines(out: str, xs: Sequence[str], name: Callable[[object], str]) -> list[str]:
    if len(xs) == 1:
        return [f"{out}[...] = {xs[0]}"]
    return [f"{name(np.add)}({xs[0]}, {xs[1]}, out={out})", *(f"{out} += {x}" for x in xs[2:])]


def _sum_vjp_lines(
    g: str, xs: Sequence[str], outs: Sequence[tuple[str, bool]], name: Callable[[object], str]
) -> list[str]:
    return [f"{out}[...] = {g}" if alone else f"{out} += {g}" for out, alone in outs]


def _product_lines(out: str, xs: Sequence[str], name: Callable[[object], str]) -> list[str] | None:
    return [f"{name(np.multiply)}({xs[0]}, {xs[1]}, out={out})"] if len(xs) == 2 else None


def _product_vjp_lines(
    g: str, xs: Sequence[str], outs: Sequence[tuple[str, bool]], name: Callable[[object], str]
) -> list[str] | None:
    if len(xs) != 2:
        return None
    multiply = name(np.multiply)
    return [
        f"{multiply}({g}, {other}, out={out})" if alone else f"{out} += {g} * {other}"
        for (out, alone), other in zip(outs, (xs[1], xs[0]), strict=True)
    ]


def _one_minus_vjp_into(
    g: np.ndarray, xs: Sequence[np.ndarray], outs: Sequence[tuple[np.ndarray, bool]]
) -> None:
    ((out, alone),) = outs
    if alone:
        np.negative(g, out=out)
    else:
        out -= g


def _one_minus_vjp_lines(
    g: str, xs: Sequence[str], outs: Sequence[tuple[str, bool]], name: Callable[[object], str]
) -> list[str]:
    ((out, alone),) = outs
    return [f"{name(np.negative)}({g}, out={out})" if alone else f"{out} -= {g}"]


def _equal_sizes(sizes: list[int]) -> int | None:
    return sizes[0] if len(set(sizes)) == 1 else -1


def _layer_sizes_check(node: Node, edges: Sequence[Edge], sizes: Sequence[int]) -> str | None:
    for e, s in zip(edges, sizes, strict=True):
        if e.weight is None and s != node.size:
            return (
                f"edge {e.describe()}: identity edge needs equal sizes, got "
                f"{s} -> {node.size} (give the edge a weight)"
            )
    return None


def _concat_sizes_check(node: Node, edges: Sequence[Edge], sizes: Sequence[int]) -> str | None:
    if sum(sizes) != node.size:
        return (
            f"node {node.name!r} (concat) has size {node.size} but "
            f"its inputs add up to {sum(sizes)}"
        )
    return None


def _layer_equation(node: Node, reads: Sequence[str], params: Sequence[str]) -> str:
    inner = " + ".join([*reads, *node.biases])
    return inner if node.activation in (None, "identity") else f"{node.activation}({inner})"


def _decay(nu: NDArray[np.float64]) -> np.ndarray:
    """``lambda = exp(-exp(nu))``, in (0, 1) for every real ``nu``."""
    return np.exp(-np.exp(nu))


def _decay_vjp(
    g: np.ndarray, y: np.ndarray, x: np.ndarray, nu: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    lam = _decay(nu)
    return g * lam, g * x * (-np.exp(nu) * lam)


def _gain(nu: NDArray[np.float64]) -> np.ndarray:
    """``gamma = sqrt(1 - lambda**2)``, written so it is exact as ``lambda -> 1``."""
    return np.sqrt(-np.expm1(-2.0 * np.exp(nu)))


def _gain_vjp(
    g: np.ndarray, y: np.ndarray, x: np.ndarray, nu: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    gain = _gain(nu)
    lam = _decay(nu)
    return g * gain, g * x * (np.exp(nu) * lam * lam / gain)


def _share_vjp(
    g: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    total = a + b
    g = g / (total * total)
    return g * b, -g * a


_BOX = Drawing("box", "#fdebd0", "rounded,filled", symbol=False)

#: The node kinds by name. Add a kind with :func:`register`.
OPS: dict[str, Op] = {
    o.kind: o
    for o in [
        Op(
            "input",
            0,
            0,
            None,
            None,
            lambda sizes: None,
            False,
            "x",
            "a sequence fed from outside, one vector per step",
            drawing=Drawing("box", "#dbe9f6", "rounded,filled", symbol=False),
            traits=frozenset({"fed"}),
        ),
        Op(
            "layer",
            1,
            None,
            None,
            None,
            lambda sizes: None,
            True,
            "W",
            "act(sum of W_e x_e over incoming edges + biases); identity edges carry no W",
            drawing=_BOX,
            equation=_layer_equation,
            check_sizes=_layer_sizes_check,
            traits=frozenset({"absent_zero"}),
            formula="act(Σ W_e x_e + b)",
        ),
        Op(
            "add",
            1,
            None,
            lambda *xs: sum(xs[1:], xs[0]),
            lambda g, y, *xs: (g,) * len(xs),
            _equal_sizes,
            False,
            "+",
            "elementwise sum of the inputs",
            needs_inputs=False,
            forward_into=_sum_into,
            vjp_into=_sum_vjp_into,
            forward_lines=_sum_lines,
            vjp_lines=_sum_vjp_lines,
            equation=lambda node, reads, params: " + ".join(reads),
            traits=frozenset({"absent_zero", "sum", "carry"}),
            formula="a + b + ...",
        ),
        Op(
            "mul",
            1,
            None,
            lambda *xs: (
                np.prod(np.stack(xs), axis=0)
                if len(xs) > 2
                else (xs[0] * xs[1] if len(xs) == 2 else xs[0])
            ),
            _mul_vjp,
            _equal_sizes,
            False,
            "×",
            "elementwise product of the inputs",
            forward_into=_product_into,
            vjp_into=_product_vjp_into,
            forward_lines=_product_lines,
            vjp_lines=_product_vjp_lines,
            equation=lambda node, reads, params: " × ".join(reads),
            traits=frozenset({"product", "carry"}),
            formula="a ⊙ b ⊙ ...",
        ),
        Op(
            "one_minus",
            1,
            1,
            lambda x: 1.0 - x,
            lambda g, y, x: (-g,),
            _equal_sizes,
            False,
            "1−",
            "1 - x, elementwise (the GRU's 1 - z)",
            needs_inputs=False,
            forward_into=lambda out, x: np.subtract(1.0, x, out=out),
            vjp_into=_one_minus_vjp_into,
            forward_lines=lambda out, xs, name: [f"{name(np.subtract)}(1.0, {xs[0]}, out={out})"],
            vjp_lines=_one_minus_vjp_lines,
            equation=lambda node, reads, params: f"1 − {reads[0]}" if len(reads) == 1 else "1 − ?",
            formula="1 − x",
        ),
        Op(
            "mean",
            1,
            None,
            lambda *xs: sum(xs[1:], xs[0]) / len(xs),
            lambda g, y, *xs: (g / len(xs),) * len(xs),
            _equal_sizes,
            False,
            "avg",
            "elementwise mean of the inputs (Keras Bidirectional's merge_mode='ave')",
            formula="(a + b + ...) / n",
        ),
        Op(
            "concat",
            1,
            None,
            lambda *xs: np.concatenate(xs, axis=-1),
            _concat_vjp,
            lambda sizes: sum(sizes),
            False,
            "⧺",
            "the inputs joined end to end, in edge declaration order",
            needs_inputs=False,
            forward_into=lambda out, *xs: np.concatenate(xs, axis=-1, out=out),
            drawing=Drawing("box", "#eeeeee", "rounded,filled"),
            equation=lambda node, reads, params: f"[{'; '.join(reads)}]",
            check_sizes=_concat_sizes_check,
            formula="[a; b; ...]",
        ),
        Op(
            "scale",
            1,
            1,
            lambda x, w: w * x,
            lambda g, y, x, w: (g * w, g * x),
            _equal_sizes,
            False,
            "⊙",
            "w ⊙ x: a per-unit vector parameter w times the input (IndRNN's u, a peephole)",
            params=(Param("w", "w_{node}", doc="the per-unit factor"),),
            traits=frozenset({"carry"}),
            equation=lambda node, reads, params: f"{params[0]} ⊙ {reads[0]}",
            diagonal=lambda w: w,
            formula="w ⊙ x",
        ),
        Op(
            "decay",
            1,
            1,
            lambda x, nu: _decay(nu) * x,
            _decay_vjp,
            _equal_sizes,
            False,
            "λ⊙",
            "λ ⊙ x with λ = exp(-exp(ν)) in (0, 1): the LRU's diagonal recurrence",
            params=(Param("nu", "nu_{node}", init="lru", doc="log of -log λ"),),
            equation=lambda node, reads, params: f"exp(−exp({params[0]})) ⊙ {reads[0]}",
            traits=frozenset({"carry"}),
            diagonal=_decay,
            formula="exp(−exp(ν)) ⊙ x",
        ),
        Op(
            "decay_norm",
            1,
            1,
            lambda x, nu: _gain(nu) * x,
            _gain_vjp,
            _equal_sizes,
            False,
            "γ⊙",
            "γ ⊙ x with γ = sqrt(1 - λ²), λ = exp(-exp(ν)): the LRU's input normalisation",
            params=(Param("nu", "nu_{node}", init="lru", doc="log of -log λ"),),
            equation=lambda node, reads, params: f"sqrt(1 − exp(−2 exp({params[0]}))) ⊙ {reads[0]}",
            formula="sqrt(1 − exp(−2 exp(ν))) ⊙ x",
            diagonal=_gain,
        ),
        Op(
            "share",
            2,
            2,
            lambda a, b: a / (a + b),
            _share_vjp,
            _equal_sizes,
            False,
            "÷",
            "a / (a + b), elementwise, for positive a and b (minLSTM's f / (f + i))",
            equation=lambda node, reads, params: (
                f"{reads[0]} / ({reads[0]} + {reads[1]})" if len(reads) == 2 else "a / (a + b)"
            ),
            formula="a / (a + b)",
        ),
    ]
}


def register(row: Op, *, replace: bool = False) -> Op:
    """Add a node kind to :data:`OPS` and return it.

    The row is the whole kind: graphs accept it, the engine runs its forward and VJP
    (and accumulates its parameters' gradients over steps), TOML files read and write
    it, the renderer draws it with :attr:`Op.drawing` and :attr:`Op.symbol`, and
    ``print(graph)`` writes :attr:`Op.equation`. Nothing else needs to change.

    Examples
    --------
    >>> cube = Op("cube", 1, 1, lambda x, a: a * x**3, lambda g, y, x, a: (3 * g * a * x**2,
    ...           g * x**3), lambda sizes: sizes[0], False, "³", "a ⊙ x³",
    ...           params=(Param("a", "a_{node}", init="ones"),))
    >>> register(cube).kind, op("cube").params[0].role
    ('cube', 'a')
    >>> _ = OPS.pop("cube")
    """
    if not isinstance(row, Op):
        raise TypeError(f"register takes an Op row, got {type(row).__name__}")
    if row.kind in OPS and not replace:
        raise ValueError(f"node kind {row.kind!r} is already registered")
    OPS[row.kind] = row
    return row


_Row = TypeVar("_Row")


def _lookup(table: Mapping[str, _Row], name: str, what: str) -> _Row:
    try:
        return table[name]
    except KeyError:
        known = ", ".join(sorted(table))
        raise KeyError(f"unknown {what} {name!r} (known: {known})") from None


def op(kind: str) -> Op:
    """Return the row of :data:`OPS` for ``kind``; ``KeyError`` lists the known kinds.

    Examples
    --------
    >>> op("mul").symbol
    '×'
    """
    return _lookup(OPS, kind, "node kind")


def activation(name: str) -> Activation:
    """Return the row of :data:`ACTIVATIONS` for ``name``.

    Examples
    --------
    >>> activation("sigmoid").gamma
    0.25
    """
    return _lookup(ACTIVATIONS, name, "activation")
