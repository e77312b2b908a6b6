"""Strong hand-written numpy BPTT: the fastest plain numpy we know how to write.

Beside the naive baselines in ``handwritten.py`` (one stacked matmul per step, weight
gradients added step by step), these do what a careful engineer would: the input product
for all steps in one GEMM (bias folded in), values in preallocated ``(T, B, n)`` arrays
written in place, derivative factors computed for all steps at once before the backward
loop, and every weight gradient as one GEMM over the stacked sequence after it. The
per-step work left is the recurrent product and a few elementwise operations.

Same conventions as ``handwritten.py``: ``xs`` (T, B, I), ``dhs`` (T, B, H) holding
dL/dh_t; zero initial states; ``params`` keyed as the torch-named presets; returns
``(hs, grads)``. Never imports ``unroll``. ``ensemble_elman_bptt`` runs S models with
stacked weights ``(S, ...)`` in one pass with batched matmul.
"""

import numpy as np
from handwritten import LSTM_GATES, split_lstm


def elman_bptt(params, xs, dhs):
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh); see the module docstring."""
    steps, batch, inputs = xs.shape
    w_hh = params["W_hh"]
    hidden = w_hh.shape[0]
    w_hh_t = np.ascontiguousarray(w_hh.T)
    hs = np.empty((steps + 1, batch, hidden))  # hs[t + 1] is h_t; hs[0] = h_{-1} = 0
    hs[0] = 0.0
    z = hs[1:]
    np.dot(xs.reshape(-1, inputs), params["W_ih"].T, out=z.reshape(-1, hidden))
    z += params["b_ih"] + params["b_hh"]
    tmp = np.empty((batch, hidden))
    for t in range(steps):
        np.dot(hs[t], w_hh_t, out=tmp)
        tmp += z[t]
        np.tanh(tmp, out=z[t])
    dz = 1.0 - hs[1:] ** 2  # the derivative, all steps at once; dz[t] becomes dL/dz_t
    carry = np.zeros((batch, hidden))
    for t in range(steps - 1, -1, -1):
        carry += dhs[t]
        dz[t] *= carry
        np.dot(dz[t], w_hh, out=carry)
    flat = dz.reshape(-1, hidden)
    db = flat.sum(axis=0)
    grads = {
        "W_ih": flat.T @ xs.reshape(-1, inputs),
        "W_hh": flat.T @ hs[:-1].reshape(-1, hidden),
        "b_ih": db,
        "b_hh": db.copy(),
    }
    return hs[1:], grads


def lstm_bptt(params, xs, dhs):
    """A torch.nn.LSTM-style cell (gates i, f, g, o); see the module docstring."""
    steps, batch, inputs = xs.shape
    hidden = params["W_hi"].shape[1]
    order = ("i", "f", "o", "g")  # sigmoid gates first: one sigmoid over 3H columns
    w_x = np.concatenate([params[f"W_i{g}"] for g in order])
    w_h = np.concatenate([params[f"W_h{g}"] for g in order])
    bias = np.concatenate([params[f"b_i{g}"] + params[f"b_h{g}"] for g in order])
    w_h_t = np.ascontiguousarray(w_h.T)
    H3 = 3 * hidden
    gates = np.empty((steps, batch, 4 * hidden))
    np.dot(xs.reshape(-1, inputs), w_x.T, out=gates.reshape(-1, 4 * hidden))
    gates += bias
    cs = np.empty((steps + 1, batch, hidden))
    hs = np.empty((steps + 1, batch, hidden))
    tcs = np.empty((steps, batch, hidden))
    cs[0] = hs[0] = 0.0
    with np.errstate(over="ignore"):
        for t in range(steps):
            a = gates[t]
            a += hs[t] @ w_h_t
            s = a[:, :H3]
            np.negative(s, out=s)
            np.exp(s, out=s)
            s += 1.0
            np.reciprocal(s, out=s)
            np.tanh(a[:, H3:], out=a[:, H3:])
            c = cs[t + 1]
            np.multiply(a[:, hidden : 2 * hidden], cs[t], out=c)
            c += a[:, :hidden] * a[:, H3:]
            np.tanh(c, out=tcs[t])
            np.multiply(a[:, 2 * hidden : H3], tcs[t], out=hs[t + 1])
    i, f, o, g = (gates[..., k * hidden : (k + 1) * hidden] for k in range(4))
    d_tc = 1.0 - tcs**2  # derivative factors, all steps at once
    d_ifo = gates[..., :H3] * (1.0 - gates[..., :H3])
    d_g = 1.0 - g**2
    dz = np.empty_like(gates)
    dh = np.zeros((batch, hidden))
    dc = np.zeros((batch, hidden))
    for t in range(steps - 1, -1, -1):
        dh += dhs[t]
        z = dz[t]
        np.multiply(dh, tcs[t], out=z[:, 2 * hidden : H3])  # do
        dc += dh * o[t] * d_tc[t]
        np.multiply(dc, g[t], out=z[:, :hidden])  # di
        np.multiply(dc, cs[t], out=z[:, hidden : 2 * hidden])  # df
        np.multiply(dc, i[t], out=z[:, H3:])  # dg
        z[:, :H3] *= d_ifo[t]
        z[:, H3:] *= d_g[t]
        dc *= f[t]
        np.dot(z, w_h, out=dh)
    flat = dz.reshape(-1, 4 * hidden)
    dw_x = flat.T @ xs.reshape(-1, inputs)
    dw_h = flat.T @ hs[:-1].reshape(-1, hidden)
    db = flat.sum(axis=0)
    back = [order.index(gate) for gate in LSTM_GATES]  # to torch's i, f, g, o rows

    def torch_rows(m):
        return np.concatenate([m[k * hidden : (k + 1) * hidden] for k in back])

    dw = np.concatenate([torch_rows(dw_x), torch_rows(dw_h)], axis=1)
    return hs[1:], split_lstm(dw, torch_rows(db), inputs)


def ensemble_elman_bptt(params, xs, dhs):
    """``elman_bptt`` for S models at once: every parameter carries a leading axis S;
    ``xs`` (T, B, I) is shared, ``dhs`` (T, B, H) too. Returns (hs, grads) with the axis."""
    steps, batch, inputs = xs.shape
    w_hh = params["W_hh"]
    models, hidden = w_hh.shape[0], w_hh.shape[1]
    w_hh_t = np.ascontiguousarray(np.swapaxes(w_hh, 1, 2))
    hs = np.empty((models, steps + 1, batch, hidden))
    hs[:, 0] = 0.0
    z = hs[:, 1:]
    z[...] = (xs.reshape(-1, inputs) @ np.swapaxes(params["W_ih"], 1, 2)).reshape(
        models, steps, batch, hidden
    )
    z += (params["b_ih"] + params["b_hh"])[:, None, None, :]
    step_view = np.moveaxis(hs, 1, 0)  # (T + 1, S, B, H) views of the same memory
    tmp = np.empty((models, batch, hidden))
    for t in range(steps):
        np.matmul(step_view[t], w_hh_t, out=tmp)
        tmp += step_view[t + 1]
        np.tanh(tmp, out=step_view[t + 1])
    dz = 1.0 - hs[:, 1:] ** 2
    dz_steps = np.moveaxis(dz, 1, 0)
    carry = np.zeros((models, batch, hidden))
    for t in range(steps - 1, -1, -1):
        carry += dhs[t]
        dz_steps[t] *= carry
        np.matmul(dz_steps[t], w_hh, out=carry)
    flat = dz.reshape(models, -1, hidden)
    tall = np.swapaxes(flat, 1, 2)
    db = flat.sum(axis=1)
    grads = {
        "W_ih": tall @ xs.reshape(-1, inputs),
        "W_hh": tall @ hs[:, :-1].reshape(models, -1, hidden),
        "b_ih": db,
        "b_hh": db.copy(),
    }
    return hs[:, 1:], grads


__all__ = ["LSTM_GATES", "elman_bptt", "ensemble_elman_bptt", "lstm_bptt"]
