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
