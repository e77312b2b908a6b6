"""Sums and quantiles of numbers held as their log10, exact where plain floats under/overflow."""

from __future__ import annotations

import numpy as np

__all__ = ["log10_norm", "log10_sum", "quantiles"]


def log10_sum(log10_values: np.ndarray, axis=None) -> np.ndarray:
    """``log10(sum(10 ** v))`` along ``axis``; ``-inf`` where every term is ``-inf``.

    Examples
    --------
    >>> round(float(log10_sum(np.array([-3000.0, -3000.0]))), 12)   # 2e-3000
    -2999.698970004336
    >>> float(log10_sum(np.array([-np.inf, -np.inf])))
    -inf
    """
    v = np.asarray(log10_values, dtype=float)
    top = np.max(v, axis=axis, keepdims=True)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.sum(10.0 ** (v - safe), axis=axis, keepdims=True)
        out = np.where(np.isfinite(top), safe + np.log10(total), top)
    return out if axis is None and out.ndim == 0 else np.squeeze(out, axis=axis)


def log10_norm(log10_abs: np.ndarray, axis=None) -> np.ndarray:
    """``log10`` of the Euclidean norm of numbers given as ``log10 |x|``.

    Examples
    --------
    >>> round(10 ** float(log10_norm(np.log10([3.0, 4.0]))), 12)
    5.0
    """
    return 0.5 * log10_sum(2.0 * np.asarray(log10_abs, dtype=float), axis=axis)


def quantiles(values: np.ndarray, qs, axis: int = 0) -> np.ndarray:
    """Linear-interpolation quantiles along ``axis`` that keep ``-inf`` (exact zeros) exact.

    ``numpy.quantile`` turns ``-inf`` into ``nan`` when it interpolates between two of
    them; here an interpolated quantile with a ``-inf`` neighbour of nonzero weight is
    ``-inf``. A ``nan`` anywhere along the axis gives ``nan``. Returns one row per ``q``.

    Examples
    --------
    >>> quantiles(np.array([[-np.inf], [-np.inf], [1.0]]), [0.5, 1.0]).tolist()
    [[-inf], [1.0]]
    """
    v = np.moveaxis(np.asarray(values, dtype=float), axis, 0)
    ordered = np.sort(v, axis=0)
    n = ordered.shape[0]
    has_nan = np.isnan(v).any(axis=0)
    rows = []
    for q in qs:
        pos = q * (n - 1)
        lo, hi = int(np.floor(pos)), int(np.ceil(pos))
        frac = pos - lo
        a, b = ordered[lo], ordered[hi]
        if frac == 0.0:
            value = a.copy()
        else:
            with np.errstate(invalid="ignore"):
                value = a + (b - a) * frac
            value[np.isneginf(a) | np.isneginf(b)] = -np.inf
        value[has_nan] = np.nan
        rows.append(value)
    return np.stack(rows)
