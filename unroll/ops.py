"""The closed set of node kinds and activations: forward and vector-Jacobian product of each.

Every kind of node a recurrent graph may hold is one row of :data:`OPS`, and every
activation a ``layer`` node may apply is one row of :data:`ACTIVATIONS`, in the manner
of HIPS autograd's ``defvjp`` table. The engine, the validator and the renderer all read
these tables; nothing else in the package switches on a node's kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["ACTIVATIONS", "OPS", "Activation", "Op", "activation", "op"]


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


def _sigmoid(x):
    # 1 / (1 + exp(-x)) is accurate to a few ulp for every x; exp overflows to inf for
    # x < -709, which gives the correct limit 0 (the engine silences that warning).
    return 1.0 / (1.0 + np.exp(-x))


def _sigmoid_into(z):
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1.0
    np.reciprocal(z, out=z)


def _tanh_derivative_into(y, out):
    np.multiply(y, y, out=out)
    np.subtract(1.0, out, out=out)


def _sigmoid_derivative_into(y, out):
    np.subtract(1.0, y, out=out)
    out *= y


def _tanh_vjp_into(g, y):
    np.multiply(y, y, out=y)
    np.subtract(1.0, y, out=y)
    y *= g


def _softplus(x):
    return np.logaddexp(0.0, x)


LEAKY_SLOPE = 0.01

ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in [
        Activation("identity", lambda x: x, lambda y: None, 1.0, "x", lambda z: None),
        Activation(
            "tanh",
            np.tanh,
            lambda y: 1.0 - y * y,
            1.0,
            "tanh(x)",
            lambda z: np.tanh(z, out=z),
            _tanh_vjp_into,
            _tanh_derivative_into,
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
class Op:
    """One kind of node: how many inputs it takes, its forward and its VJP.

    ``forward(*xs)`` maps the input values (in edge declaration order) to the output;
    ``vjp(g, y, *xs)`` maps the cotangent ``g`` of the output to one cotangent per input.
    ``output_size(sizes)`` gives the output size the inputs imply, or ``None`` where the
    node's declared size stands (``layer``, ``input``). ``weighted`` says whether edges
    into the node may carry weight matrices.
    """

    kind: str
    min_inputs: int
    max_inputs: int | None
    forward: Callable | None
    vjp: Callable | None
    output_size: Callable[[list[int]], int | None]
    weighted: bool
    symbol: str
    doc: str
    needs_inputs: bool = True  # its VJP reads the input values
    needs_output: bool = False  # its VJP reads its own output value
    forward_into: Callable | None = None  # forward_into(out, *xs): the forward, written to out
    vjp_into: Callable | None = None  # vjp_into(g, xs, [(out, alone)]): write or add into outs


def _mul_vjp(g, y, *xs):
    if len(xs) == 1:
        return (g,)
    if len(xs) == 2:
        return g * xs[1], g * xs[0]
    grads = []
    for i in range(len(xs)):
        others = [x for j, x in enumerate(xs) if j != i]
        grads.append(g * np.prod(np.stack(others), axis=0))
    return tuple(grads)


def _concat_vjp(g, y, *xs):
    ends = np.cumsum([x.shape[-1] for x in xs])
    return tuple(np.split(g, ends[:-1], axis=-1))


def _sum_into(out, *xs):
    if len(xs) == 2:
        np.add(xs[0], xs[1], out=out)
        return
    out[...] = xs[0]
    for x in xs[1:]:
        out += x


def _product_into(out, *xs):
    if len(xs) == 2:
        np.multiply(xs[0], xs[1], out=out)
        return
    out[...] = xs[0]
    for x in xs[1:]:
        out *= x


def _product_vjp_into(g, xs, outs):
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


def _sum_vjp_into(g, xs, outs):
    for out, alone in outs:
        if alone:
            out[...] = g
        else:
            out += g


def _equal_sizes(sizes):
    return sizes[0] if len(set(sizes)) == 1 else -1


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
        ),
    ]
}


def _lookup(table: dict, name: str, what: str):
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
