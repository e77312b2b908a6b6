"""Check the hand-written numpy BPTT baselines against torch autograd.

Run as a script: ``python benchmarks/check_handwritten.py``. Builds float64
torch.nn.RNN / torch.nn.LSTM modules (T=7, B=3), copies their weights into the named
params dicts, and asserts hidden states, every parameter gradient and the input gradient
agree to 1e-10 relative (max |a - b| / max |b| per array), with a cotangent at the last
step only and at every step, and with ``input_grads`` both on and off.
"""

import sys

import numpy as np
import torch
from handwritten import elman_bptt, lstm_bptt, params_from_torch, torch_bptt

TOL = 1e-10
STEPS, BATCH, INPUT, HIDDEN = 7, 3, 4, 5


def rel_err(a, b):
    """Max absolute difference scaled by the largest magnitude of the reference ``b``."""
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), np.finfo(float).tiny))


def cotangents(rng, every_step):
    """Random dL/dh_t at every step, or zeros except for the last step."""
    dhs = rng.standard_normal((STEPS, BATCH, HIDDEN))
    if not every_step:
        dhs[:-1] = 0.0
    return dhs


def check_case(name, module, numpy_fn, every_step, rng):
    """Compare ``numpy_fn`` with torch autograd on one module; return the max rel error."""
    params = params_from_torch(module)
    xs = rng.standard_normal((STEPS, BATCH, INPUT))
    dhs = cotangents(rng, every_step)
    hs, grads = numpy_fn(params, xs, dhs, input_grads=True)
    hs_ref, grads_ref = torch_bptt(module, xs, dhs, input_grads=True)
    errors = {"hs": rel_err(hs, hs_ref)}
    errors.update({k: rel_err(grads[k], grads_ref[k]) for k in grads_ref})
    assert grads.keys() == grads_ref.keys(), (sorted(grads), sorted(grads_ref))
    _, grads_default = numpy_fn(params, xs, dhs)  # input_grads=False takes another path
    assert "x" not in grads_default
    errors.update({f"{k} (no dx)": rel_err(v, grads_ref[k]) for k, v in grads_default.items()})
    worst = max(errors, key=errors.get)
    where = "every step" if every_step else "last step"
    print(f"{name:6s} dL/dh at {where:10s}: max rel err {errors[worst]:.3e} ({worst})")
    bad = {k: e for k, e in errors.items() if not e <= TOL}
    assert not bad, f"{name}: gradients disagree with torch: {bad}"
    return errors[worst]


def main():
    """Run every case; exit non-zero (via AssertionError) on any mismatch."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    modules = {
        "elman": (torch.nn.RNN(INPUT, HIDDEN, nonlinearity="tanh"), elman_bptt),
        "lstm": (torch.nn.LSTM(INPUT, HIDDEN), lstm_bptt),
    }
    worst = 0.0
    for name, (module, fn) in modules.items():
        module.double()
        for every_step in (False, True):
            worst = max(worst, check_case(name, module, fn, every_step, rng))
    print(f"all gradients agree with torch autograd; max relative error {worst:.3e} <= {TOL}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
