"""Losses on the output nodes at the steps a sequence mode names, as cotangents for BPTT.

Each loss maps the outputs ``ys`` (a list of arrays whose last axis is the output's units:
one ``(B, n)`` per loss instance, or one ``(k, B, n)`` per output node over its ``k`` loss
steps) and their targets, shaped alike, to the loss value and dL/dy for every output. The
caller's ``targets`` are an array stacked by loss step (``(k, B, n)``, or ``(k, B)``
integer classes for ``xent``), or a dict of such arrays by output node.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from .errors import InputError

if TYPE_CHECKING:
    from .unrolled import Instance, Unrolled

__all__ = ["LOSSES", "Loss", "Targets", "loss_cotangents", "loss_sequences"]

#: Targets as :func:`loss_cotangents` takes them: one array for the one output node, a dict
#: of arrays by output node, or ``None`` for a loss that reads none.
Targets = ArrayLike | dict[str, ArrayLike] | None

#: ``fn(ys, targets) -> (value, [dL/dy, ...])``, targets stacked per loss instance.
LossFunction = Callable[[list[np.ndarray], list[np.ndarray] | None], tuple[float, list[np.ndarray]]]

_Key = TypeVar("_Key", bound=Hashable)


@dataclass(frozen=True)
class Loss:
    """A loss: ``fn(ys, targets) -> (value, [dL/dy, ...])``; it may read targets."""

    name: str
    fn: LossFunction
    needs_targets: bool
    doc: str


def _sum(ys: list[np.ndarray], targets: object) -> tuple[float, list[np.ndarray]]:
    return float(sum(y.sum() for y in ys)), [np.ones_like(y) for y in ys]


def _mse(ys: list[np.ndarray], targets: list[np.ndarray] | None) -> tuple[float, list[np.ndarray]]:
    count = sum(y.size for y in ys)
    diffs = [y - t for y, t in zip(ys, _given(targets), strict=True)]
    value = float(sum((d * d).sum() for d in diffs)) / count
    return value, [2.0 * d / count for d in diffs]


def _xent(ys: list[np.ndarray], targets: list[np.ndarray] | None) -> tuple[float, list[np.ndarray]]:
    count = sum(math.prod(y.shape[:-1]) for y in ys)
    value, grads = 0.0, []
    for y, t in zip(ys, _given(targets), strict=True):
        t = np.asarray(t)
        if t.shape != y.shape[:-1] or not np.issubdtype(t.dtype, np.integer):
            raise InputError(
                f"xent targets must be integer classes of shape {y.shape[:-1]}, "
                f"got {t.dtype} {t.shape}"
            )
        if np.any((t < 0) | (t >= y.shape[-1])):
            raise InputError(f"xent targets must lie in 0..{y.shape[-1] - 1}")
        shifted = y - y.max(axis=-1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        picked = t[..., None]
        value -= float(np.take_along_axis(logp, picked, axis=-1).sum())
        grad = np.exp(logp)
        np.put_along_axis(grad, picked, np.take_along_axis(grad, picked, axis=-1) - 1.0, axis=-1)
        grads.append(grad / count)
    return value / count, grads


LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in [
        Loss("sum", _sum, False, "the sum of every output entry (dL/dy = 1): a pure VJP probe"),
        Loss("mse", _mse, True, "mean squared error over every output entry and loss step"),
        Loss(
            "xent",
            _xent,
            True,
            "softmax cross-entropy with integer class targets, mean over batch and steps",
        ),
    ]
}


def _given(targets: list[np.ndarray] | None) -> list[np.ndarray]:
    if targets is None:  # a row that needs targets is always given them
        raise InputError("this loss needs targets")
    return targets


def loss_cotangents(
    unrolled: Unrolled,
    values: Mapping[_Key, np.ndarray],
    slot: Mapping[Instance, _Key],
    loss: str,
    targets: Targets,
) -> tuple[float, dict[_Key, np.ndarray]]:
    """Evaluate ``loss`` on the loss instances; return ``(value, {slot: dL/dy})``."""
    row = _row(loss)
    instances = unrolled.loss_instances
    ys = [values[slot[inst]] for inst in instances]
    stacked = _stack_targets(unrolled, instances, targets) if row.needs_targets else None
    if stacked is not None:
        for inst, y, t in zip(instances, ys, stacked, strict=True):
            if loss != "xent" and np.shape(t) != y.shape:
                raise InputError(f"target for {inst!r} has shape {np.shape(t)}, expected {y.shape}")
    value, grads = row.fn(ys, stacked)
    return value, {slot[inst]: g for inst, g in zip(instances, grads, strict=True)}


def loss_sequences(
    unrolled: Unrolled, ys: Mapping[str, np.ndarray], loss: str, targets: Targets
) -> tuple[float, dict[str, np.ndarray]]:
    """:func:`loss_cotangents` over every loss step at once: ``ys[name]`` is output
    ``name``'s values at :attr:`~unroll.unrolled.Unrolled.loss_steps` ``(k, B, n)``; returns
    ``(value, {name: dL/dy (k, B, n)})``.

    Examples
    --------
    >>> import numpy as np, unroll
    >>> u = unroll.unroll(unroll.presets.elman(1, 2, output_size=1), steps=3)
    >>> value, grads = loss_sequences(u, {"y": np.ones((3, 1, 1))}, "mse", np.zeros((3, 1, 1)))
    >>> value, grads["y"].ravel().tolist()  # 2 (y - t) / 3
    (1.0, [0.6666666666666666, 0.6666666666666666, 0.6666666666666666])
    """
    row = _row(loss)
    names = unrolled.graph.output_nodes()
    stacked = None
    if row.needs_targets:
        by_output = _targets_by_output(unrolled, targets)
        stacked = [by_output[name] for name in names]
        for name, t in zip(names, stacked, strict=True):
            y = ys[name]
            if loss != "xent" and t.shape != y.shape:
                first = (name, unrolled.loss_steps[0])
                raise InputError(
                    f"target for {first!r} has shape {t.shape[1:]}, expected {y.shape[1:]}"
                )
    value, grads = row.fn([ys[name] for name in names], stacked)
    return value, dict(zip(names, grads, strict=True))


def _row(loss: str) -> Loss:
    if loss not in LOSSES:
        raise InputError(f"unknown loss {loss!r} (known: {', '.join(LOSSES)})")
    return LOSSES[loss]


def _stack_targets(
    unrolled: Unrolled, instances: Sequence[Instance], targets: Targets
) -> list[np.ndarray]:
    per_output = _targets_by_output(unrolled, targets)
    index = {t: i for i, t in enumerate(unrolled.loss_steps)}
    return [per_output[name][index[t]] for name, t in instances]


def _targets_by_output(unrolled: Unrolled, targets: Targets) -> dict[str, np.ndarray]:
    """Each output's targets at the loss steps, stacked ``(k, ...)``."""
    if targets is None:
        raise InputError("this loss needs targets")
    outputs = unrolled.graph.output_nodes()
    if not isinstance(targets, dict):
        if len(outputs) != 1:
            raise InputError(f"give targets as a dict by output node ({', '.join(outputs)})")
        targets = {outputs[0]: targets}
    steps = unrolled.loss_steps
    per_output: dict[str, np.ndarray] = {}
    for name in outputs:
        if name not in targets:
            raise InputError(f"missing targets for output {name!r}")
        t = np.asarray(targets[name])  # not a scalar: bptt's argument check made sure
        if len(t) not in (len(steps), unrolled.steps):
            raise InputError(
                f"targets for {name!r} have {len(t)} steps, expected "
                f"{len(steps)} (the loss steps) or {unrolled.steps}"
            )
        per_output[name] = t if len(t) == len(steps) else t[steps]
    return per_output
