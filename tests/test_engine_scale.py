"""The log-domain scale of the compiled backward scans: exact far outside float64's range,
for one model and for an ensemble whose models vanish and explode at once."""

import math

import numpy as np
import pytest

from unroll import bptt, init_params, presets, unroll

SCALES = (0.5, 1.0, 1.5)


def _elman(steps, n=8):
    g = presets.elman(3, n, activation="identity", bias=False)
    models = [init_params(g, seed=0, scheme="orthogonal", spectral_norm=scale) for scale in SCALES]
    xs = {"x": np.zeros((steps, 1, 3))}
    return unroll(g, steps), models, xs


@pytest.mark.parametrize("pattern", ["last", "every"])
def test_an_ensemble_keeps_each_models_exact_log_norms(pattern):
    """0.5, 1 and 1.5 times an orthogonal matrix, 3000 steps: ||dL/dh_t|| changes by
    exactly the factor each step, down to 10**-900 and up to 10**+528, in one pass."""
    T, n = 3000, 8
    u, models, xs = _elman(T, n)
    ones = np.ones((1, n))
    steps = [T - 1] if pattern == "last" else [T - 1, T // 2]
    cots = {("h", t): ones for t in steps}
    stacked = {k: np.stack([m[k] for m in models]) for k in models[0]}
    together = bptt(u, stacked, xs, cots)
    logs = together.log10_grad_norms("h")
    for i, (scale, params) in enumerate(zip(SCALES, models, strict=True)):
        alone = bptt(u, params, xs, cots).log10_grad_norms("h")
        np.testing.assert_allclose(logs[i], alone, rtol=0, atol=1e-9)
        tail = logs[i][T // 2 + 1 :] if pattern == "every" else logs[i]
        np.testing.assert_allclose(np.diff(tail), -math.log10(scale), atol=1e-9)
    first = T - 1 if pattern == "last" else T // 2  # the nearest cotangent dominates
    assert logs[0][0] == pytest.approx(math.log10(math.sqrt(n)) + first * math.log10(0.5))
    assert logs[2][0] > 500  # float64 overflows long before


def test_a_loss_far_above_a_vanished_carry_is_exact():
    """A cotangent 2**200 times the carry joins it at the right scale in an ensemble."""
    T, n = 600, 8
    u, models, xs = _elman(T, n)
    stacked = {k: np.stack([m[k] for m in models]) for k in models[0]}
    cots = {("h", T - 1): np.ones((1, n)), ("h", 100): np.full((1, n), 1e30)}
    together = bptt(u, stacked, xs, cots).log10_grad_norms("h")
    for i, params in enumerate(models):
        alone = bptt(u, params, xs, cots).log10_grad_norms("h")
        np.testing.assert_allclose(together[i], alone, rtol=0, atol=1e-9)
    assert together[0][100] == pytest.approx(30 + math.log10(math.sqrt(n)), abs=1e-9)


def _tanh_elman(steps, output_size=None, seed=0, radius=0.9):
    g = presets.elman(3, 8, output_size=output_size)
    params = init_params(g, seed=seed, spectral_radius=radius)
    xs = {"x": np.random.default_rng(seed).normal(size=(steps, 2, 3))}
    return unroll(g, steps), params, xs


def test_cotangents_at_every_step_join_the_gradients_from_inside_the_graph():
    """A state's own cotangents (read by its scan as given) and those coming back from
    the output layer reading it add up: the VJP is linear in its seeds."""
    T = 60
    u, params, xs = _tanh_elman(T, output_size=2)
    rng = np.random.default_rng(1)
    on_h = {("h", t): rng.normal(size=(2, 8)) for t in range(T)}
    on_y = {("y", t): rng.normal(size=(2, 2)) for t in range(0, T, 3)}
    both = bptt(u, params, xs, {**on_h, **on_y})
    parts = [bptt(u, params, xs, c) for c in (on_h, on_y)]
    for name, grad in both.param_grads.items():
        total = parts[0].param_grads[name] + parts[1].param_grads[name]
        np.testing.assert_allclose(grad, total, rtol=1e-12, atol=1e-14 * np.abs(total).max())
    for t in (0, T // 2, T - 1):
        total = parts[0].node_grads[("h", t)] + parts[1].node_grads[("h", t)]
        np.testing.assert_allclose(both.node_grads[("h", t)], total, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("power", [-1000, 990])
def test_cotangents_far_outside_float_range_scale_exactly(power):
    """Cotangents at every step 2**power times as large give log norms exactly power *
    log10(2) larger: the scan takes in each step's cotangent at its own scale, and a
    power of two changes no bit of any mantissa."""
    T = 200
    u, params, xs = _tanh_elman(T)
    rng = np.random.default_rng(2)
    cots = {("h", t): rng.normal(size=(2, 8)) for t in range(T)}
    plain = bptt(u, params, xs, cots).log10_grad_norms("h")
    far = bptt(u, params, xs, {k: np.ldexp(c, power) for k, c in cots.items()})
    np.testing.assert_allclose(far.log10_grad_norms("h") - plain, power * math.log10(2), atol=1e-9)


def test_weight_gradients_over_many_scales_do_not_depend_on_how_steps_are_grouped(monkeypatch):
    """A vanishing run (loss at the last step, 1500 steps) moves its scale every few dozen
    steps; its weight gradients summed run by run, or shifted to a few common scales,
    agree to rounding."""
    from unroll.engine import backward

    T = 1500
    u, params, xs = _tanh_elman(T, radius=0.5)
    cots = {("h", T - 1): np.ones((2, 8))}
    joined = bptt(u, params, xs, cots, input_grads=False)
    monkeypatch.setattr(backward, "_SHIFT_WORTH", 0)  # never worth it: run by run
    by_run = bptt(u, params, xs, cots, input_grads=False)
    spread = np.ptp(joined.log10_grad_norms("h")) * math.log2(10)  # in binary orders
    assert spread > 2 * backward._SHIFT_SPREAD  # so several groups, each over many runs
    for name, grad in joined.param_grads.items():
        np.testing.assert_allclose(grad, by_run.param_grads[name], rtol=1e-13, atol=0)
