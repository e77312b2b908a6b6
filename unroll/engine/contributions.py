"""Each step's contribution to a tied parameter's gradient, kept as its factors."""

from __future__ import annotations

import numpy as np

from .scale import safe_norms

__all__ = ["Contribution"]


class Contribution:
    """Per-step contributions to one parameter at steps ``t0, t0 + 1, ...``, each scaled by
    ``2**e``: a bias's ``total`` ``(*lead, n, width)``, or a weight's factors ``dz``
    ``(*lead, n, B, rows)`` and ``x`` ``(*lead, n, B, columns)``: step t's is
    ``dz_t^T x_t``."""

    def __init__(self, e, total=None, dz=None, x=None):
        self.e, self.total, self.dz, self.x = e, total, dz, x

    @property
    def steps(self) -> int:
        return self.e.shape[-1]

    def values(self) -> np.ndarray:
        """The per-step contributions ``(*lead, n, *shape)``, unscaled."""
        if self.total is not None:
            return self.total
        if self.dz.shape[-2] == 1:  # an outer product per step
            return self.dz[..., 0, :, None] * self.x[..., 0, None, :]
        return np.swapaxes(self.dz, -1, -2) @ self.x

    def norms(self) -> np.ndarray:
        """Each step's Frobenius norm ``(*lead, n)``, unscaled, without forming the
        products: ``||dz^T x||^2 = sum(dz dz^T * x x^T)`` over the batch."""
        if self.total is not None:
            return safe_norms(self.total[..., None, :])
        if self.dz.shape[-2] == 1:
            with np.errstate(invalid="ignore", over="ignore"):  # NaN after an overflow
                return safe_norms(self.dz) * safe_norms(self.x)
        dz_peak = np.abs(self.dz).max(axis=(-2, -1), keepdims=True)
        x_peak = np.abs(self.x).max(axis=(-2, -1), keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            dz = np.where(dz_peak > 0, self.dz / dz_peak, 0.0)
            x = np.where(x_peak > 0, self.x / x_peak, 0.0)
        gram = (dz @ np.swapaxes(dz, -1, -2)) * (x @ np.swapaxes(x, -1, -2))
        square = np.maximum(gram.sum(axis=(-2, -1)), 0.0)
        return dz_peak[..., 0, 0] * x_peak[..., 0, 0] * np.sqrt(square)
