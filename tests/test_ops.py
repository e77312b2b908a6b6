"""Every op and activation: its VJP against finite differences, and the activation bounds."""

import numpy as np
import pytest

from unroll.ops import ACTIVATIONS, OPS, activation, op

RNG = np.random.default_rng(0)


def _numeric_vjp(fn, xs, g, i, h=1e-4):
    """<g, d fn / d xs[i]> along every coordinate of xs[i], fourth-order stencil."""
    grad = np.zeros_like(xs[i])
    for idx in np.ndindex(xs[i].shape):

        def f(e, idx=idx):
            moved = [x.copy() for x in xs]
            moved[i][idx] += e
            return float(np.vdot(g, fn(*moved)))

        grad[idx] = (8 * (f(h) - f(-h)) - (f(2 * h) - f(-2 * h))) / (12 * h)
    return grad


ELEMENTWISE = [(kind, n) for kind in ("add", "mul", "mean", "concat") for n in (1, 2, 3)]
ELEMENTWISE += [("one_minus", 1)]


@pytest.mark.parametrize(("kind", "arity"), ELEMENTWISE)
def test_op_vjp_matches_finite_differences(kind, arity):
    row = op(kind)
    xs = [RNG.normal(size=(2, 3)) for _ in range(arity)]
    y = row.forward(*xs)
    g = RNG.normal(size=y.shape)
    grads = row.vjp(g, y, *xs)
    assert len(grads) == arity
    for i in range(arity):
        np.testing.assert_allclose(
            grads[i], _numeric_vjp(row.forward, xs, g, i), rtol=1e-9, atol=1e-11
        )


def test_op_forward_values():
    a, b = np.array([[1.0, 2.0]]), np.array([[3.0, 5.0]])
    assert OPS["add"].forward(a, b).tolist() == [[4.0, 7.0]]
    assert OPS["mul"].forward(a, b, b).tolist() == [[9.0, 50.0]]
    assert OPS["one_minus"].forward(a).tolist() == [[0.0, -1.0]]
    assert OPS["concat"].forward(a, b).tolist() == [[1.0, 2.0, 3.0, 5.0]]
    assert OPS["mean"].forward(a, b).tolist() == [[2.0, 3.5]]


def test_hard_sigmoid_is_keras_3s():
    """Keras 3 (and torch.nn.Hardsigmoid): clip(x / 6 + 1/2, 0, 1), slope 1/6 inside."""
    act = ACTIVATIONS["hard_sigmoid"]
    x = np.array([-4.0, -3.0, -1.5, 0.0, 1.5, 3.0, 4.0])
    assert act.forward(x).tolist() == [0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert act.derivative(act.forward(x)).tolist() == [0, 0, 1 / 6, 1 / 6, 1 / 6, 0, 0]


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivative_matches_finite_differences(name):
    act = ACTIVATIONS[name]
    x = RNG.normal(size=(3, 4)) * 2
    x[np.abs(x) < 1e-2] += 0.1  # stay off relu's kink
    g = RNG.normal(size=x.shape)
    analytic = act.vjp(g, act.forward(x))
    np.testing.assert_allclose(
        analytic, _numeric_vjp(act.forward, [x], g, 0), rtol=1e-8, atol=1e-10
    )


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_gamma_is_the_largest_derivative(name):
    act = ACTIVATIONS[name]
    x = np.linspace(-30, 30, 200001)
    d = act.derivative(act.forward(x))
    largest = 1.0 if d is None else float(np.max(np.abs(d)))
    assert largest == pytest.approx(act.gamma, rel=1e-6)


def test_sigmoid_is_accurate_in_both_tails():
    s = ACTIVATIONS["sigmoid"].forward
    with np.errstate(over="ignore"):
        assert s(np.array([-800.0]))[0] == 0.0
    assert s(np.array([-30.0]))[0] == pytest.approx(np.exp(-30.0) / (1 + np.exp(-30.0)), rel=1e-14)
    assert s(np.array([40.0]))[0] == 1.0


def test_lookups_name_the_known_rows():
    with pytest.raises(KeyError, match=r"unknown node kind 'conv' \(known: add, concat"):
        op("conv")
    with pytest.raises(
        KeyError, match=r"unknown activation 'gelu' \(known: hard_sigmoid, identity"
    ):
        activation("gelu")
