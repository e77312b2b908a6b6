"""Hand-written numpy BPTT baselines (min-char-rnn style), plus a torch autograd helper.

These are the reference points ``unroll.bptt`` is benchmarked and checked against. They
never import ``unroll``.

Conventions (the torch.nn equations, float64, batch-major per step):

* ``xs`` has shape (T, B, I); the initial hidden (and cell) state is zero.
* ``dhs`` has shape (T, B, H) and holds dL/dh_t for every step t (often zero except at
  the last step). It is the cotangent of the *output* at step t only; the gradient that
  flows back from step t+1 is added by the backward loop.
* ``params`` maps names to arrays; ``grads`` comes back with the same keys and shapes.
  With ``input_grads=True`` it also holds ``"x"``: dL/dxs, shape (T, B, I).

Each step does one matmul forward and one or two in the backward pass: the gate weights
are stacked into a single (G*H, I+H) matrix that multiplies the concatenation
[x_t, h_{t-1}], which is stored per step for the ``dW += dz^T [x_t, h_{t-1}]`` update.
"""

import numpy as np

ELMAN_KEYS = ("W_ih", "W_hh", "b_ih", "b_hh")
LSTM_GATES = ("i", "f", "g", "o")  # torch.nn.LSTM row order of weight_ih_l0 / weight_hh_l0
LSTM_KEYS = (
    *(f"W_i{g}" for g in LSTM_GATES),
    *(f"W_h{g}" for g in LSTM_GATES),
    *(f"b_i{g}" for g in LSTM_GATES),
    *(f"b_h{g}" for g in LSTM_GATES),
)


def sigmoid(z):
    """Logistic function 1 / (1 + exp(-z)), as torch computes it.

    For z < -709, exp(-z) overflows to inf and the result is the correct limit 0; callers
    silence that warning once around their loop (a per-call ``np.errstate`` costs ~1.5 us).
    np.exp is used rather than the identity 0.5 (1 + tanh(z / 2)) because numpy's float64
    tanh measured ~2.7x slower than its exp on the (AVX2) benchmark machine.
    """
    return 1.0 / (1.0 + np.exp(-z))


def _stacked_inputs(xs, hidden_size):
    """Allocate the (T, B, I+H) buffer of per-step [x_t, h_{t-1}] rows, x part filled."""
    steps, batch, input_size = xs.shape
    xh = np.zeros((steps, batch, input_size + hidden_size))
    xh[:, :, :input_size] = xs
    return xh


def elman_bptt(params, xs, dhs, input_grads=False):
    """BPTT for h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh).

    Returns (hs, grads): hs of shape (T, B, H) and grads keyed like ``params``
    (plus ``"x"`` when ``input_grads``).
    """
    w = np.concatenate([params["W_ih"], params["W_hh"]], axis=1)  # (H, I+H)
    b = params["b_ih"] + params["b_hh"]
    steps, batch, input_size = xs.shape
    hidden = w.shape[0]
    xh = _stacked_inputs(xs, hidden)
    hs = np.zeros((steps, batch, hidden))
    h = np.zeros((batch, hidden))
    for t in range(steps):  # forward
        xh[t, :, input_size:] = h
        h = np.tanh(xh[t] @ w.T + b)
        hs[t] = h

    w_h = np.ascontiguousarray(w[:, input_size:])  # dL/dh_{t-1} = dz @ w_h
    dw, db = np.zeros_like(w), np.zeros_like(b)
    dxs = np.zeros_like(xs) if input_grads else None
    dh_next = np.zeros((batch, hidden))
    for t in reversed(range(steps)):  # backward
        dz = (dhs[t] + dh_next) * (1.0 - hs[t] * hs[t])
        dw += dz.T @ xh[t]
        db += dz.sum(axis=0)
        if input_grads:
            dxh = dz @ w  # (B, I+H)
            dxs[t], dh_next = dxh[:, :input_size], dxh[:, input_size:]
        else:
            dh_next = dz @ w_h

    grads = {"W_ih": dw[:, :input_size], "W_hh": dw[:, input_size:], "b_ih": db, "b_hh": db.copy()}
    if input_grads:
        grads["x"] = dxs
    return hs, grads


def stack_lstm(params):
    """Stack the named LSTM weights into W (4H, I+H) and b (4H,), gate rows [i|f|g|o]."""
    w_x = np.concatenate([params[f"W_i{g}"] for g in LSTM_GATES], axis=0)
    w_h = np.concatenate([params[f"W_h{g}"] for g in LSTM_GATES], axis=0)
    b = np.concatenate([params[f"b_i{g}"] + params[f"b_h{g}"] for g in LSTM_GATES])
    return np.concatenate([w_x, w_h], axis=1), b


def split_lstm(dw, db, input_size):
    """Split stacked LSTM gradients back into the named keys of ``LSTM_KEYS``."""
    hidden = dw.shape[0] // 4
    grads = {}
    for k, g in enumerate(LSTM_GATES):
        rows = slice(k * hidden, (k + 1) * hidden)
        grads[f"W_i{g}"] = dw[rows, :input_size]
        grads[f"W_h{g}"] = dw[rows, input_size:]
        grads[f"b_i{g}"] = db[rows]
        grads[f"b_h{g}"] = db[rows].copy()
    return grads


def _lstm_forward(w, b, xs):
    """Run the LSTM forward; return hs, the [x, h_prev] rows, activated gates and cells."""
    steps, batch, input_size = xs.shape
    hidden = w.shape[0] // 4
    xh = _stacked_inputs(xs, hidden)
    gates = np.empty((steps, batch, 4 * hidden))  # activated [i|f|g|o]
    cs = np.zeros((steps + 1, batch, hidden))  # cs[t + 1] is c_t; cs[0] is c_{-1} = 0
    tcs = np.empty((steps, batch, hidden))  # tanh(c_t)
    hs = np.empty((steps, batch, hidden))
    h = np.zeros((batch, hidden))
    with np.errstate(over="ignore"):  # see sigmoid()
        for t in range(steps):
            xh[t, :, input_size:] = h
            z = xh[t] @ w.T + b
            a = gates[t]
            a[:, : 2 * hidden] = sigmoid(z[:, : 2 * hidden])
            a[:, 2 * hidden : 3 * hidden] = np.tanh(z[:, 2 * hidden : 3 * hidden])
            a[:, 3 * hidden :] = sigmoid(z[:, 3 * hidden :])
            i, f, g, o = np.split(a, 4, axis=1)
            cs[t + 1] = f * cs[t] + i * g
            tcs[t] = np.tanh(cs[t + 1])
            h = hs[t] = o * tcs[t]
    return hs, xh, gates, cs, tcs


def lstm_bptt(params, xs, dhs, input_grads=False):
    """BPTT through a torch.nn.LSTM-style cell (one layer, zero initial h and c).

    Returns (hs, grads): hs of shape (T, B, H) and grads keyed like ``params``
    (plus ``"x"`` when ``input_grads``).
    """
    w, b = stack_lstm(params)
    input_size = xs.shape[2]
    hs, xh, gates, cs, tcs = _lstm_forward(w, b, xs)

    steps, batch, hidden = hs.shape
    w_h = np.ascontiguousarray(w[:, input_size:])  # dL/dh_{t-1} = dz @ w_h
    dw, db = np.zeros_like(w), np.zeros_like(b)
    dxs = np.zeros_like(xs) if input_grads else None
    dz = np.empty((batch, 4 * hidden))
    dh_next = np.zeros((batch, hidden))
    dc_next = np.zeros((batch, hidden))
    for t in reversed(range(steps)):
        i, f, g, o = np.split(gates[t], 4, axis=1)
        dh = dhs[t] + dh_next
        dc = dc_next + dh * o * (1.0 - tcs[t] * tcs[t])
        dz[:, :hidden] = dc * g * i * (1.0 - i)
        dz[:, hidden : 2 * hidden] = dc * cs[t] * f * (1.0 - f)
        dz[:, 2 * hidden : 3 * hidden] = dc * i * (1.0 - g * g)
        dz[:, 3 * hidden :] = dh * tcs[t] * o * (1.0 - o)
        dc_next = dc * f
        dw += dz.T @ xh[t]
        db += dz.sum(axis=0)
        if input_grads:
            dxh = dz @ w  # (B, I+H)
            dxs[t], dh_next = dxh[:, :input_size], dxh[:, input_size:]
        else:
            dh_next = dz @ w_h

    grads = split_lstm(dw, db, input_size)
    if input_grads:
        grads["x"] = dxs
    return hs, grads


# --------------------------------------------------------------------------- torch side


def params_to_torch(module, params):
    """Copy a named params dict into a torch.nn.RNN (tanh) or torch.nn.LSTM, in place."""
    import torch

    if isinstance(module, torch.nn.LSTM):
        w_ih = np.concatenate([params[f"W_i{g}"] for g in LSTM_GATES])
        w_hh = np.concatenate([params[f"W_h{g}"] for g in LSTM_GATES])
        b_ih = np.concatenate([params[f"b_i{g}"] for g in LSTM_GATES])
        b_hh = np.concatenate([params[f"b_h{g}"] for g in LSTM_GATES])
    else:
        w_ih, w_hh, b_ih, b_hh = (params[k] for k in ELMAN_KEYS)
    with torch.no_grad():
        for name, value in zip(
            ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"),
            (w_ih, w_hh, b_ih, b_hh),
            strict=True,
        ):
            getattr(module, name).copy_(torch.from_numpy(np.ascontiguousarray(value)))


def params_from_torch(module, attr=None):
    """Read a torch RNN/LSTM's weights (or, with ``attr="grad"``, their grads) as a dict."""
    import torch

    def get(name):
        p = getattr(module, name)
        t = p if attr is None else getattr(p, attr)
        return t.detach().numpy().copy()

    w_ih, w_hh = get("weight_ih_l0"), get("weight_hh_l0")
    b_ih, b_hh = get("bias_ih_l0"), get("bias_hh_l0")
    if not isinstance(module, torch.nn.LSTM):
        return dict(zip(ELMAN_KEYS, (w_ih, w_hh, b_ih, b_hh), strict=True))
    hidden = w_hh.shape[1]
    out = {}
    for k, g in enumerate(LSTM_GATES):
        rows = slice(k * hidden, (k + 1) * hidden)
        out[f"W_i{g}"], out[f"W_h{g}"] = w_ih[rows], w_hh[rows]
        out[f"b_i{g}"], out[f"b_h{g}"] = b_ih[rows], b_hh[rows]
    return out


def torch_bptt(module, xs, dhs, input_grads=False):
    """Forward a torch.nn.RNN/LSTM (float64, batch_first=False) and backprop ``dhs``.

    Returns (hs, grads) in the same naming as the numpy functions (``"x"`` included
    when ``input_grads``).
    """
    import torch

    module.zero_grad(set_to_none=True)
    x = torch.from_numpy(xs)
    if input_grads:
        x.requires_grad_(True)
    out, _ = module(x)
    torch.autograd.backward(out, torch.from_numpy(dhs))
    grads = params_from_torch(module, attr="grad")
    if input_grads:
        grads["x"] = x.grad.numpy()
    return out.detach().numpy(), grads
