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


@pytest.mark.parametrize("power", [20, 200])
def test_a_carry_growing_fast_is_tested_often_enough_to_stay_exact(power):
    """A neuron whose gradient grows 2**power per step, 40 steps: every step's log norm
    is exact. At 2**200 a step, eight steps between tests of the scale would pass
    float64's range: the loop's bound on its growth makes it test every few steps."""
    g = presets.neuron(activation="identity", bias=False)
    T = 40
    params = {"W_ih": np.ones((1, 1)), "W_hh": np.full((1, 1), 2.0**power)}
    r = bptt(unroll(g, T), params, {"x": np.zeros((T, 1, 1))}, {("h", T - 1): np.ones((1, 1))})
    expected = (T - 1 - np.arange(T)) * power * math.log10(2)
    np.testing.assert_allclose(r.log10_grad_norms("h"), expected, rtol=0, atol=1e-9)


def test_where_the_scale_is_tested_changes_no_value(monkeypatch):
    """Testing the scale at every step, or every eighth, gives the same gradients to the
    bit: between tests only powers of two move, and none is rounded."""
    from unroll.engine import backward

    T = 300
    u, params, xs = _tanh_elman(T, radius=1.5)
    rng = np.random.default_rng(3)
    cots = {"h": np.ldexp(rng.normal(size=(T, 2, 8)), rng.integers(-300, 300, (T, 1, 1)))}
    sparse = bptt(u, params, xs, cots)
    monkeypatch.setattr(backward, "TEST_EVERY", 1)
    every = bptt(u, params, xs, cots)
    for name, grad in sparse.param_grads.items():
        np.testing.assert_array_equal(grad, every.param_grads[name])
    np.testing.assert_array_equal(sparse.log10_grad_norms("h"), every.log10_grad_norms("h"))


def test_scale_tests_start_each_block_and_follow_a_jump_in_what_comes_in():
    """Blocks of eight scan steps from the last; a much larger or much smaller incoming
    gradient tests its step and the rest of its block."""
    from unroll.engine.scale import NO_SCALE, scale_tests

    e = np.full(20, NO_SCALE, np.int64)
    assert scale_tests(e).nonzero()[0].tolist() == [3, 11, 19]
    e[:] = 5
    e[14] = 30  # more than 2**16 above its block's first (19): 14 and the block's rest
    e[6] = -70  # more than 2**64 below its block's first (11): the same
    assert scale_tests(e).nonzero()[0].tolist() == [3, 4, 5, 6, 11, 12, 13, 14, 19]
