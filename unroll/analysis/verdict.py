"""Decay-rate fits and the documented thresholds that turn them into a verdict."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "DEFAULT_RULE",
    "VERDICTS",
    "Verdict",
    "VerdictRule",
    "distance_below",
    "fit_decay",
    "verdict",
]


@dataclass(frozen=True)
class VerdictRule:
    """The thresholds of a verdict, in decades (powers of ten) per step.

    A gradient norm fitted to fall faster than ``vanishing_below`` decades per step is
    *vanishing*, one that grows faster than ``exploding_above`` is *exploding*, anything
    between is *stable*. ``first_steps_fraction`` names the opening part of the sequence
    whose share of the recurrent weights' gradient the summary reports.
    """

    vanishing_below: float = -0.005
    exploding_above: float = 0.005
    first_steps_fraction: float = 0.1

    def describe(self) -> str:
        """The rule as one sentence, printed under every summary table."""
        return (
            f"verdict: vanishing if the fitted slope < {self.vanishing_below:+g} "
            f"decades/step (or the gradient reaches exactly 0), exploding if > "
            f"{self.exploding_above:+g}, else stable; slope = least-squares fit of the "
            "median log10 norm against the distance from the loss"
        )

    def to_dict(self) -> dict:
        """The thresholds as a plain dict (JSON)."""
        return asdict(self)


DEFAULT_RULE = VerdictRule()


@dataclass(frozen=True)
class Verdict:
    """One possible verdict: its name, the test on ``(slope, reaches_zero, rule, reached)``,
    its meaning."""

    name: str
    test: Callable[[float, bool, VerdictRule, bool], bool]
    doc: str


VERDICTS: dict[str, Verdict] = {
    v.name: v
    for v in [
        Verdict(
            "unreached",
            lambda s, zero, r, reached: not reached,
            "no gradient reaches the state: every gradient is exactly zero (no path from "
            "the state to the loss, or the loss's gradient is zero)",
        ),
        Verdict(
            "undefined",
            lambda s, zero, r, reached: bool(np.isnan(s)) and not zero,
            "no finite norm to fit: the forward pass overflowed (see first_nonfinite)",
        ),
        Verdict(
            "vanishing",
            lambda s, zero, r, reached: zero or s < r.vanishing_below,
            "the gradient shrinks by more than the threshold per step",
        ),
        Verdict(
            "exploding",
            lambda s, zero, r, reached: s > r.exploding_above,
            "the gradient grows by more than the threshold per step",
        ),
        Verdict(
            "stable",
            lambda s, zero, r, reached: True,
            "the gradient neither shrinks nor grows beyond the thresholds",
        ),
    ]
}


def fit_decay(log10_norms: np.ndarray) -> float:
    """Least-squares slope of ``log10_norms[k]`` against the distance ``k``, finite points only.

    Parameters
    ----------
    log10_norms : array (T,)
        ``log10 ||dL/ds||`` at distance ``k = 0 ... T-1`` from the loss.

    Returns
    -------
    float
        Decades per step (negative: the norm falls with distance); ``nan`` with fewer
        than two finite points.

    Examples
    --------
    >>> round(fit_decay(np.array([0.0, -0.5, -1.0, -1.5])), 12)
    -0.5
    """
    k = np.arange(len(log10_norms), dtype=float)
    ok = np.isfinite(log10_norms)
    if ok.sum() < 2:
        return float("nan")
    k, y = k[ok], log10_norms[ok]
    dk = k - k.mean()
    return float(np.dot(dk, y - y.mean()) / np.dot(dk, dk))


def distance_below(log10_norms: np.ndarray, threshold: float) -> int | None:
    """The first distance at which the norm is below ``threshold`` times its value at 0.

    Examples
    --------
    >>> distance_below(np.array([0.0, -1.0, -2.0, -3.5]), 1e-3)
    3
    >>> distance_below(np.array([0.0, -1.0]), 1e-3) is None
    True
    """
    start = log10_norms[0]
    if not np.isfinite(start):
        return None
    below = np.nonzero(log10_norms < start + np.log10(threshold))[0]
    return int(below[0]) if below.size else None


def verdict(
    slope: float,
    reaches_zero: bool = False,
    rule: VerdictRule = DEFAULT_RULE,
    *,
    reached: bool = True,
) -> str:
    """Name the behaviour of a fitted slope: the first row of :data:`VERDICTS` whose test holds.

    ``reaches_zero``: the gradient is exactly zero at some distance; ``reached=False``: it
    is exactly zero at every distance (no gradient reaches the state at all).

    Examples
    --------
    >>> verdict(-0.3), verdict(0.08), verdict(0.0), verdict(float("nan"))
    ('vanishing', 'exploding', 'stable', 'undefined')
    >>> verdict(float("nan"), reaches_zero=True, reached=False)
    'unreached'
    """
    return next(v.name for v in VERDICTS.values() if v.test(slope, reaches_zero, rule, reached))
