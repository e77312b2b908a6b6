"""Gradients kept in the log domain: arrays scaled per step by a power of two.

Node ``v``'s gradient array ``G[v]`` holds ``dL/dv * 2**-E[v]`` with one integer exponent
per step (and per model), so norms far outside float64's range stay exact. A loop's
backward scan carries its pending gradients under one running exponent (:class:`Scale`),
moved whenever the carry's norm leaves ``[2**-64, 2**64]``. A loop whose weights bound
its carry's growth per step tests that every :data:`TEST_EVERY` steps at most
(:func:`scale_tests`; the others at every step): between two tests the carry would have to
move by a factor of ``2**900`` to leave float64's normal range, and nothing is rounded
before it does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .forward import Forward, zeros

__all__ = [
    "NO_SCALE",
    "TEST_EVERY",
    "Grads",
    "Scale",
    "norm_exponents",
    "rows_last",
    "safe_norms",
    "scale_tests",
    "times_power_of_two",
]

#: The exponent of a row that holds no gradient yet (``2**NO_SCALE`` is 0 in any float).
NO_SCALE = -(2**40)
_RANGE = 64  # renormalise when the carried peak is more than 2**64 from the scale
_HIGH, _LOW = 2.0**_RANGE, 2.0**-_RANGE
_HIGH2, _LOW2 = _HIGH * _HIGH, _LOW * _LOW  # the same bounds on a squared norm
#: A backward scan tests its scale at every this many steps (and where incoming gradients
#: change much); powers of two only rescale, so where it tests changes no value.
TEST_EVERY = 8
_SLACK = 16  # untested steps take incoming gradients up to 2**16 above the last tested one


def _einsum_vecdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("...i,...i->...", a, b)


#: Dot products along the last axis (numpy 2's ufunc where there is one).
_vecdot = getattr(np, "vecdot", _einsum_vecdot)


def rows_last(e):
    """Exponents shaped to scale the last two axes (batch, units) of each row."""
    return e[..., None, None]


class Grads:
    """Scaled gradient arrays ``G[name]`` with exponents ``E[name]`` per step (row)."""

    def __init__(self, fwd: Forward, keep_from: int):
        self.fwd, self.keep_from = fwd, keep_from
        self.G: dict[str, np.ndarray] = {}
        self.E: dict[str, np.ndarray] = {}
        self.lazy: dict = {}  # name -> rows(): gradient rows rebuilt when first asked for

    def layout(self, name: str) -> tuple[tuple[int, ...], np.dtype]:
        """The shape and dtype of node ``name``'s gradient array."""
        fwd = self.fwd
        size = fwd.program.graph.nodes[name].size
        return (*fwd.lead, fwd.program.rows(name), fwd.batch, size), np.dtype(fwd.dtype)

    def get(self, name: str, written: tuple[int, int] | None = None):
        """``(G, E)`` of node ``name``, made (zero, no scale) on first use; rows
        ``written`` (``[a, b)``, if given) are left unzeroed: whoever asks writes them
        before anything reads them."""
        if name not in self.G:
            fwd = self.fwd
            shape, dtype = self.layout(name)
            if written is None:
                self.G[name] = zeros(shape, dtype)
            else:
                G = self.G[name] = np.empty(shape, dtype)
                G[..., : written[0], :, :] = 0.0
                G[..., written[1] :, :, :] = 0.0
            self.E[name] = np.full((*fwd.lead, shape[-3]), NO_SCALE, np.int64)
        return self.G[name], self.E[name]

    def add(self, name: str, lo: int, contrib: np.ndarray, scale=0) -> None:
        """Add ``contrib * 2**scale`` into steps ``lo, lo + 1, ...`` of node ``name``.

        ``scale`` is one exponent or one per step (and model). Steps before the truncation
        window are dropped (but boundary rows only when the window starts at 0).
        """
        n = contrib.shape[-3]
        start = lo if self.keep_from == 0 else max(lo, self.keep_from)
        if start >= lo + n:
            return
        scale = np.asarray(scale, np.int64)
        if start > lo:
            contrib = contrib[..., start - lo :, :, :]
            scale = scale[..., start - lo :] if scale.ndim else scale
        G, E = self.get(name)
        o = self.fwd.offset(name)
        seg, eseg = G[..., start + o : lo + n + o, :, :], E[..., start + o : lo + n + o]
        scale = np.broadcast_to(scale, eseg.shape)
        if (eseg == NO_SCALE).all():
            seg[...] = contrib
            eseg[...] = scale
        elif (eseg == scale).all():
            seg += contrib
        else:
            top = np.maximum(eseg, scale)
            seg[...] = np.ldexp(seg, rows_last(eseg - top)) + np.ldexp(
                contrib, rows_last(scale - top)
            )
            eseg[...] = top

    def normalise(self, name: str, a: int, b: int) -> None:
        """Rescale steps ``a..b-1`` whose peak left ``[2**-64, 2**64]`` to a peak near 1."""
        G, E = self.G[name], self.E[name]
        o = self.fwd.offset(name)
        seg, eseg = G[..., a + o : b + o, :, :], E[..., a + o : b + o]
        peak = np.abs(seg).max(axis=(-2, -1))
        bad = (peak > _HIGH) | ((peak < _LOW) & (peak > 0))
        if bad.any():
            e = np.where(bad, np.frexp(peak)[1], 0)
            seg[...] = np.ldexp(seg, rows_last(-e))
            eseg += e

    def exponents(self, name: str, a: int, b: int) -> np.ndarray:
        """Each step's peak exponent ``log2`` (rounded up), ``NO_SCALE`` where zero."""
        G, E = self.G[name], self.E[name]
        o = self.fwd.offset(name)
        e = E[..., a + o : b + o]
        out = np.full(e.shape, NO_SCALE, np.int64)
        held = np.flatnonzero((e != NO_SCALE).reshape(-1, e.shape[-1]).any(axis=0))
        if held.size:  # only the steps that hold a gradient (a slice when that is all)
            every = held.size == e.shape[-1]
            rows = G[..., a + o : b + o, :, :]
            rows = rows if every else rows[..., held, :, :]
            peak = _peaks(rows)
            index = slice(None) if every else held
            out[..., index] = np.where(peak > 0, np.frexp(peak)[1] + e[..., index], NO_SCALE)
        return out


def _peak(array: np.ndarray) -> float:
    """``abs(array).max()``, 0 for an empty array, without the temporary of ``abs``."""
    return max(float(array.max()), -float(array.min())) if array.size else 0.0


def _peaks(rows: np.ndarray) -> np.ndarray:
    """``abs(rows).max(axis=(-2, -1))`` without the temporary of ``abs``."""
    if rows.size == 0:
        return np.zeros(rows.shape[:-2], rows.dtype)
    return np.maximum(rows.max(axis=(-2, -1)), -rows.min(axis=(-2, -1)))


class Scale:
    """The running exponent ``L`` of one loop's carried gradients (one per model)."""

    def __init__(self, lead, ring: np.ndarray):
        self.lead, self.ring = lead, ring
        self.L = np.zeros(lead, np.int64) if lead else 0
        self.floor = 0  # the least exponent over the models
        # contiguous: one dot per check (one per model for an ensemble)
        self._flat = [slot.reshape(*lead, -1) if lead else slot.reshape(-1) for slot in ring]

    def in_range(self, k: int, incoming_peak: int) -> bool:
        """Whether every model's carried gradient in slot ``k`` has a squared norm within
        ``[2**-128, 2**128]`` and the step's incoming gradients (largest exponent over the
        models ``incoming_peak``) sit at most ``2**64`` above every model's scale: then
        :meth:`renormalise` would move no scale."""
        f = self._flat[k]
        square = _vecdot(f, f)
        return bool(
            square.min() >= _LOW2
            and square.max() <= _HIGH2
            and incoming_peak - self.floor <= _RANGE
        )

    def _renormalise_one(
        self, k: int | None, incoming: int, rows: Sequence[np.ndarray] = ()
    ) -> None:
        """Before a scan step: when the carry's norm has left ``[2**-64, 2**64]`` (or the
        step's incoming gradients, exponent ``incoming``, sit more than ``2**64`` above
        ``L``), move ``L`` to the larger of the carry's peak exponent and ``incoming``, so
        the carry's peak is near 1 again. The carry is ring slot ``k`` (``None``: the ring
        holds none, only what earlier steps left there) and the gradient ``rows`` that
        hold a carry outside the ring."""
        carries = [*rows] if k is None else [self._flat[k], *rows]
        # the carry stays near 1: its square cannot overflow
        square = sum(float(np.vdot(r, r)) for r in carries)
        L = int(self.L)
        if _LOW2 <= square <= _HIGH2 and incoming - L <= _RANGE:
            return
        if square == 0.0 and (incoming == NO_SCALE or abs(incoming - L) <= _RANGE):
            return
        peak = max(map(_peak, carries), default=0.0)
        top = max(math.frexp(peak)[1] + L if peak else NO_SCALE, incoming)
        if top != NO_SCALE and top != L:
            for array in rows if k is None else (self.ring, *rows):
                times_power_of_two(array, L - top, out=array)
            self.L = top

    def renormalise(self, k: int, incoming) -> None:
        """As :meth:`_renormalise_one`, one exponent per model: a model moves as it would
        alone."""
        ring = self.ring
        f = self._flat[k]
        square = _vecdot(f, f)
        zero = square == 0.0
        stays = ((square >= _LOW2) & (square <= _HIGH2) & (incoming - self.L <= _RANGE)) | (
            zero & ((incoming == NO_SCALE) | (np.abs(incoming - self.L) <= _RANGE))
        )
        if stays.all():
            return
        scales = np.asarray(self.L)
        out = np.flatnonzero(~stays)  # the models that left their range: only they move
        peak = np.abs(ring[k][out]).max(axis=(-2, -1))
        top = np.where(peak > 0, np.frexp(peak)[1] + scales[out], NO_SCALE)
        top = np.maximum(top, np.broadcast_to(incoming, stays.shape)[out])
        move = (top != NO_SCALE) & (top != scales[out])
        out, top = out[move], top[move]
        if out.size:
            ring[:, out] = times_power_of_two(
                ring[:, out], (scales[out] - top)[None, :, None, None]
            )
            L = scales.copy()  # a new array: the scan keeps the old one as its history
            L[out] = top
            self.L, self.floor = L, int(L.min())

    def inject(self, slot: np.ndarray, value: np.ndarray, exponent) -> None:
        """``slot += value * 2**(exponent - L)``: an incoming gradient joins the carry."""
        if not self.lead:
            e = int(exponent)
            if e == self.L:
                slot += value
            elif e != NO_SCALE:
                slot += np.ldexp(value, e - self.L)
            return
        slot += np.ldexp(value, rows_last(np.asarray(exponent) - self.L))


def scale_tests(incoming: np.ndarray, every: int = TEST_EVERY) -> np.ndarray:
    """Which scan steps test their scale, from the exponents of the gradients handed in at
    each (``incoming``, one per scan step, the scan running from the last down).

    The steps are cut into blocks of ``every``, the scan's first step first. A block's first
    step tests; so does every later step of a block from the first whose incoming exponent
    is more than ``2**16`` above the block's first, or more than ``2**64`` below it (a
    scale test there may move the scale down, so the rest of the block tests too). In an
    untested step the incoming gradient therefore sits at most ``2**(64 + 16)`` above the
    scale and the carry has moved for fewer than ``every`` steps since it was last in
    ``[2**-64, 2**64]``.

    Examples
    --------
    >>> scale_tests(np.zeros(10, np.int64), every=4).nonzero()[0].tolist()  # 9, 5, 1
    [1, 5, 9]
    >>> e = np.zeros(8, np.int64); e[2] = 40  # a much larger gradient at scan step 2
    >>> scale_tests(e, every=4).nonzero()[0].tolist()
    [0, 1, 2, 3, 7]
    """
    n = len(incoming)
    padded = np.full(-(-n // every) * every, NO_SCALE, np.int64)
    padded[:n] = incoming[::-1]  # in the scan's order
    blocks = padded.reshape(-1, every)
    first = blocks[:, :1]
    off = (blocks > first + _SLACK) | ((blocks != NO_SCALE) & (blocks < first - _RANGE))
    test = np.logical_or.accumulate(off, axis=1)
    test[:, 0] = True
    return test.reshape(-1)[:n][::-1]


def times_power_of_two(value: np.ndarray, exponent, out=None) -> np.ndarray:
    """``value * 2**exponent`` (``exponent`` broadcasting against ``value``), exactly as
    ``np.ldexp``, but as a product where every factor ``2**exponent`` is a normal float:
    several times quicker than ``ldexp`` on large arrays."""
    exponent = np.asarray(exponent)
    if exponent.size and exponent.min() >= -1022 and exponent.max() <= 1023:
        return np.multiply(value, np.ldexp(1.0, exponent), out=out)
    return np.ldexp(value, exponent, out=out)


def norm_exponents(values: list[np.ndarray], squares: np.ndarray) -> np.ndarray:
    """Per finite array, from its sum of squares, the binary exponent of its norm
    (``NO_SCALE`` where it is zero): at most ``log2(sqrt(size))`` above its peak's, an
    upper bound a backward scan's test of its scale may use in place of the peak.

    Examples
    --------
    >>> norm_exponents([np.array([[3.0, 4.0]]), np.zeros((1, 2))], np.array([25.0, 0.0]))
    array([             3, -1099511627776])
    """
    with np.errstate(over="ignore", invalid="ignore"):
        found = np.frexp(np.sqrt(squares))[1].astype(np.int64)  # int64: NO_SCALE fits
        exps = np.where(squares > 0, found, NO_SCALE)
    for i in np.flatnonzero(np.isinf(squares)):  # squares past float range: from the peak
        exps[i] = np.frexp(np.abs(values[i]).max())[1] + values[i].size.bit_length()
    return exps


def safe_norms(seg: np.ndarray) -> np.ndarray:
    """Frobenius norms over the last two axes, without the overflow or underflow of
    squaring large or tiny entries."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        norms = np.sqrt(np.einsum("...ij,...ij->...", seg, seg))
        bad = (norms == 0) | ~np.isfinite(norms)
        if bad.any():
            peak = np.abs(seg).max(axis=(-2, -1))
            fix = bad & (peak > 0) & np.isfinite(peak)
            if fix.any():
                scaled = seg[fix] / peak[fix][:, None, None]
                norms[fix] = peak[fix] * np.sqrt(np.einsum("kij,kij->k", scaled, scaled))
            norms = np.where(bad & ~fix, peak, norms)
    return norms
