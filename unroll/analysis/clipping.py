"""Gradient clipping by global norm (Pascanu et al. 2013), and a trace of it over lengths."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..engine import bptt
from ..unrolled import unroll
from .errors import AnalysisError
from .probes import as_spec, draw_inputs, probe_cotangents

__all__ = ["ClippingTrace", "clip_gradients", "clipping_trace", "global_norm"]


def global_norm(grads: Mapping[str, np.ndarray]) -> float:
    """The Euclidean norm of every array of ``grads`` joined, without overflow.

    Examples
    --------
    >>> global_norm({"a": np.array([3.0]), "b": np.array([[4e300]])})
    4e+300
    """
    arrays = [np.asarray(g, dtype=float).ravel() for g in grads.values()]
    peak = max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)
    if peak == 0.0 or not math.isfinite(peak):
        return peak if not math.isnan(peak) else math.nan
    return peak * math.sqrt(sum(float(np.sum((a / peak) ** 2)) for a in arrays))


def clip_gradients(
    grads: Mapping[str, np.ndarray], max_norm: float
) -> tuple[dict[str, np.ndarray], float]:
    """Rescale ``g <- c g / ||g||`` when the global norm ``||g||`` exceeds ``c = max_norm``.

    Parameters
    ----------
    grads : mapping
        ``{name: array}``, e.g. ``BPTTResult.param_grads``; the norm is over all of them.
    max_norm : float
        The threshold ``c > 0``.

    Returns
    -------
    (dict, float)
        The clipped gradients (new arrays, same direction) and the norm before clipping.

    Raises
    ------
    AnalysisError
        If ``max_norm`` is not positive or the norm is not finite (no direction to keep).

    Examples
    --------
    >>> clipped, before = clip_gradients({"W": np.array([3.0, 4.0])}, max_norm=1.0)
    >>> before, clipped["W"].round(12).tolist()
    (5.0, [0.6, 0.8])
    """
    if not max_norm > 0:
        raise AnalysisError(f"max_norm must be positive, got {max_norm!r}")
    norm = global_norm(grads)
    if not math.isfinite(norm):
        raise AnalysisError(f"gradient norm is {norm}: clipping needs a finite gradient")
    scale = max_norm / norm if norm > max_norm else 1.0
    return {k: np.asarray(g, dtype=float) * scale for k, g in grads.items()}, norm


@dataclass(frozen=True)
class ClippingTrace:
    """The global gradient norm of one model at several sequence lengths, before/after clipping.

    ``norm_before[i]`` and ``norm_after[i]`` are for ``lengths[i]``; ``max_norm`` is ``c``.
    """

    label: str
    lengths: np.ndarray
    norm_before: np.ndarray
    norm_after: np.ndarray
    max_norm: float


def clipping_trace(
    model,
    lengths,
    max_norm: float,
    *,
    seed: int = 0,
    init: str = "torch",
    init_options: Mapping | None = None,
    input_scale: float = 1.0,
    loss: str = "random",
    label: str | None = None,
) -> ClippingTrace:
    """Gradient norm of all parameters against the sequence length, before and after clipping.

    The parameters, the inputs and the loss probe are drawn as in :func:`analyze`
    (mode ``many-to-one``); for each length the full BPTT gradient is clipped with
    :func:`clip_gradients`.

    Examples
    --------
    >>> import unroll
    >>> g = unroll.presets.elman(2, 4, activation="identity")
    >>> tr = clipping_trace((g, {"spectral_radius": 1.5}), [5, 10, 20], max_norm=1.0)
    >>> bool(tr.norm_before[-1] > tr.norm_before[0] > 1.0), tr.norm_after.round(12).tolist()
    (True, [1.0, 1.0, 1.0])
    """
    spec = as_spec(model, init, init_options)
    params = spec.params_for(seed)
    before, after = [], []
    for T in lengths:
        u = unroll(spec.graph, int(T), mode="many-to-one")
        xs = draw_inputs(spec.graph, int(T), seed, 1, input_scale)
        r = bptt(u, params, xs, probe_cotangents(loss, u, seed, 1), input_grads=False)
        clipped, norm = clip_gradients(r.param_grads, max_norm)
        before.append(norm)
        after.append(global_norm(clipped))
    return ClippingTrace(
        label or spec.graph.name,
        np.asarray(lengths),
        np.array(before),
        np.array(after),
        float(max_norm),
    )
