"""Strong hand-written numpy BPTT: the fastest plain numpy we know how to write.

Beside the naive baselines in ``handwritten.py`` (one stacked matmul per step, weight
gradients added step by step), these do what a careful engineer would: the input product
for all steps in one GEMM, values in preallocated ``(T, B, n)`` arrays written in place,
and every weight gradient as one GEMM over the stacked sequence after the backward loop
(with the wider operand second, as BLAS runs fastest). The bias and the derivative factors
are added and computed in one pass over all steps where a step is small, and at their
step, in cache, where it is large (``ELMAN_IN_CACHE``, ``LSTM_IN_CACHE``: whichever ran
faster here). The per-step work left is the recurrent product and a few elementwise
operations. ``column_major=True`` hands BLAS the recurrent weights column-major (the
memory of their transposes), as ``unroll`` does for large weights: OpenBLAS runs a small
batch's product by a large weight faster so, with the same bits (``bench_layout.py``).

Same conventions as ``handwritten.py``: ``xs`` (T, B, I), ``dhs`` (T, B, H) holding
dL/dh_t; zero initial states; ``params`` keyed as the torch-named presets; returns
``(hs, grads)``. Never imports ``unroll``. ``ensemble_elman_bptt`` runs S models with
stacked weights ``(S, ...)`` in one pass with batched matmul.
"""

import numpy as np
from handwritten import LSTM_GATES, split_lstm

#: Entries of one step's pre-activations from which the derivative factors (and the
#: bias) are taken at their step, in cache, rather than in passes over every step in
#: memory: measured on the development machine (an Elman step gains at 32 x 128 entries,
#: not at 16 x 32; an LSTM step, whose factors take three passes, at 16 x 4 * 32 gate
#: entries, not at 1 x 4 * 8: the bound lies between).
ELMAN_IN_CACHE = 4096
LSTM_IN_CACHE = 512


def _recurrent(w, column_major):
    """The weights of a step's forward product (``w^T``) and backward one (``w``)."""
    if column_major:
        return w.T, np.asfortranarray(w)
    return np.ascontiguousarray(w.T), w


def elman_bptt(params, xs, dhs, column_major=False):
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh); see the module docstring."""
    steps, batch, inputs = xs.shape
    hidden = params["W_hh"].shape[0]
    w_hh_t, w_hh = _recurrent(params["W_hh"], column_major)
    hs = np.empty((steps + 1, batch, hidden))  # hs[t + 1] is h_t; hs[0] = h_{-1} = 0
    hs[0] = 0.0
    z = hs[1:]
    in_cache = batch * hidden >= ELMAN_IN_CACHE
    bias = params["b_ih"] + params["b_hh"]
    np.dot(xs.reshape(-1, inputs), params["W_ih"].T, out=z.reshape(-1, hidden))
    if not in_cache:
        z += bias
    tmp = np.empty((batch, hidden))
    for t in range(steps):
        np.dot(hs[t], w_hh_t, out=tmp)
        if in_cache:
            tmp += bias
        tmp += z[t]
        np.tanh(tmp, out=z[t])
    # dz[t] becomes dL/dz_t; its factor 1 - h_t^2 at step t, or for all steps at once
    dz = np.empty_like(z) if in_cache else 1.0 - z**2
    carry = np.zeros((batch, hidden))
    for t in range(steps - 1, -1, -1):
        carry += dhs[t]
        d = dz[t]
        if in_cache:
            np.multiply(z[t], z[t], out=d)
            np.subtract(1.0, d, out=d)
        d *= carry
        np.dot(d, w_hh, out=carry)
    flat = dz.reshape(-1, hidden)
    db = flat.sum(axis=0)
    grads = {
        "W_ih": flat.T @ xs.reshape(-1, inputs),
        "W_hh": flat.T @ hs[:-1].reshape(-1, hidden),
        "b_ih": db,
        "b_hh": db.copy(),
    }
    return hs[1:], grads


def lstm_bptt(params, xs, dhs, column_major=False):
    """A torch.nn.LSTM-style cell (gates i, f, g, o); see the module docstring."""
    steps, batch, inputs = xs.shape
    hidden = params["W_hi"].shape[1]
    H, H2, H3 = hidden, 2 * hidden, 3 * hidden
    order = ("i", "f", "o", "g")  # sigmoid gates first: one sigmoid over 3H columns
    w_x = np.concatenate([params[f"W_i{g}"] for g in order])
    w_h = np.concatenate([params[f"W_h{g}"] for g in order])
    bias = np.concatenate([params[f"b_i{g}"] + params[f"b_h{g}"] for g in order])
    w_h_t, w_h = _recurrent(w_h, column_major)
    in_cache = batch * 4 * hidden >= LSTM_IN_CACHE
    gates = np.empty((steps, batch, 4 * hidden))
    np.dot(xs.reshape(-1, inputs), w_x.T, out=gates.reshape(-1, 4 * hidden))
    if not in_cache:
        gates += bias
    cs = np.empty((steps + 1, batch, hidden))
    hs = np.empty((steps + 1, batch, hidden))
    tcs = np.empty((steps, batch, hidden))
    cs[0] = hs[0] = 0.0
    tmp = np.empty((batch, 4 * hidden))
    ig = np.empty((batch, hidden))
    with np.errstate(over="ignore"):
        for t in range(steps):
            a = gates[t]
            if in_cache:
                a += bias
            np.dot(hs[t], w_h_t, out=tmp)
            a += tmp
            s = a[:, :H3]
            np.negative(s, out=s)
            np.exp(s, out=s)
            s += 1.0
            np.reciprocal(s, out=s)
            np.tanh(a[:, H3:], out=a[:, H3:])
            c = cs[t + 1]
            np.multiply(a[:, H:H2], cs[t], out=c)
            np.multiply(a[:, :H], a[:, H3:], out=ig)
            c += ig
            np.tanh(c, out=tcs[t])
            np.multiply(a[:, H2:H3], tcs[t], out=hs[t + 1])
    i, f, o, g = (gates[..., k * hidden : (k + 1) * hidden] for k in range(4))
    if in_cache:  # the factors at their step; dz[t] is written over the gates of step t
        dz, factors, d_tc = gates, np.empty((batch, 4 * hidden)), np.empty((batch, hidden))
    else:  # the factors of all steps at once
        dz, factors = np.empty_like(gates), np.empty_like(gates)
        np.subtract(1.0, gates[..., :H3], out=factors[..., :H3])
        factors[..., :H3] *= gates[..., :H3]
        np.multiply(g, g, out=factors[..., H3:])
        np.subtract(1.0, factors[..., H3:], out=factors[..., H3:])
        d_tc = 1.0 - tcs**2
    dh = np.zeros((batch, hidden))
    dc = np.zeros((batch, hidden))
    for t in range(steps - 1, -1, -1):
        dh += dhs[t]
        if in_cache:
            d, dt = factors, d_tc
            np.subtract(1.0, gates[t, :, :H3], out=d[:, :H3])
            d[:, :H3] *= gates[t, :, :H3]
            np.multiply(g[t], g[t], out=d[:, H3:])
            np.subtract(1.0, d[:, H3:], out=d[:, H3:])
            np.multiply(tcs[t], tcs[t], out=dt)
            np.subtract(1.0, dt, out=dt)
        else:
            d, dt = factors[t], d_tc[t]
        dt *= o[t]  # dc += dh * o * (1 - tanh(c)^2)
        dt *= dh
        dc += dt
        z = dz[t]  # the forget gate's and the cell's reads first, before z overwrites them
        np.multiply(dc, cs[t], out=ig)
        np.multiply(dh, tcs[t], out=z[:, H2:H3])  # do
        np.multiply(dc, i[t], out=dt)  # dg (i[t] still the gate: z is written below)
        np.multiply(dc, g[t], out=z[:, :H])  # di
        dc *= f[t]
        z[:, H:H2] = ig  # df
        z[:, H3:] = dt
        z *= d
        np.dot(z, w_h, out=dh)
    flat = dz.reshape(-1, 4 * hidden)
    # (x^T dz)^T, not dz^T x: BLAS runs faster with the wider operand (4H gates) second
    dw_x = (xs.reshape(-1, inputs).T @ flat).T
    dw_h = (hs[:-1].reshape(-1, hidden).T @ flat).T
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
