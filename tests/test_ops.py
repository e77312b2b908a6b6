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


def _has_lines(row, arity):
    """Whether the row gives lines for this many inputs (it may decline, e.g. a product
    of three, which then runs its function)."""
    names = [f"x{i}" for i in range(arity)]
    return (
        row.forward_lines is not None
        and row.forward_lines("out", names, str) is not None
        and row.vjp_lines is not None
        and row.vjp_lines("g", names, [(f"o{i}", True) for i in range(arity)], str) is not None
    )


LINED = [
    (row.kind, n)
    for row in OPS.values()
    for n in range(1, min(row.max_inputs or 3, 3) + 1)
    if n >= row.min_inputs and _has_lines(row, n)
]


def _run_lines(lines, arrays):
    """Execute generated lines with ``arrays`` and the functions they name bound."""
    names: dict[str, object] = {}

    def name(f):
        names[f"f{len(names)}"] = f
        return f"f{len(names) - 1}"

    exec("\n".join(lines(name)), {**names, **arrays})


@pytest.mark.parametrize(("kind", "arity"), LINED)
def test_forward_lines_compute_the_rows_forward(kind, arity):
    """The lines the engine inlines give the row's forward exactly (or decline)."""
    row = op(kind)
    xs = {f"x{i}": RNG.normal(size=(2, 3)) for i in range(arity)}
    out = np.full((2, 3), np.nan)
    _run_lines(lambda name: row.forward_lines("out", list(xs), name), {"out": out, **xs})
    np.testing.assert_array_equal(out, row.forward(*xs.values()))


@pytest.mark.parametrize(("kind", "arity"), LINED)
@pytest.mark.parametrize("alone", [True, False])
def test_vjp_lines_write_or_add_the_rows_vjp(kind, arity, alone):
    """Each input's gradient is written (``alone``) or added onto what its slot held."""
    row = op(kind)
    xs = {f"x{i}": RNG.normal(size=(2, 3)) for i in range(arity)}
    g = RNG.normal(size=(2, 3))
    held = [RNG.normal(size=(2, 3)) for _ in range(arity)]
    outs = {f"o{i}": held[i].copy() for i in range(arity)}
    pairs = [(f"o{i}", alone) for i in range(arity)]
    _run_lines(lambda name: row.vjp_lines("g", list(xs), pairs, name), {"g": g, **outs, **xs})
    y = row.forward(*xs.values())
    for i, want in enumerate(row.vjp(g, y, *xs.values())):
        np.testing.assert_allclose(outs[f"o{i}"], want if alone else held[i] + want, rtol=1e-15)


@pytest.mark.parametrize("name", [a.name for a in ACTIVATIONS.values() if a.forward_lines])
def test_activation_lines_compute_the_rows_forward_and_vjp(name):
    """An activation's inlined lines give its forward in place, and ``g * act'`` in place
    of its output, exactly as its functions do."""
    act = activation(name)
    x, g = RNG.normal(size=(2, 5)), RNG.normal(size=(2, 5))
    z = x.copy()
    _run_lines(lambda f: act.forward_lines("z", f), {"z": z})
    np.testing.assert_array_equal(z, act.forward(x))
    y = act.forward(x)
    _run_lines(
        lambda f: act.vjp_lines("g", "y", "tmp", f), {"g": g, "y": y, "tmp": np.empty_like(y)}
    )
    np.testing.assert_allclose(y, act.vjp(g, act.forward(x)), rtol=1e-15, atol=1e-300)
