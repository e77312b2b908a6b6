"""Losses on the output nodes at the steps a sequence mode names, as cotangents for BPTT.

Each loss maps the outputs ``ys`` (a list of ``(B, n)`` arrays, one per loss instance, in
:attr:`~unroll.unrolled.Unrolled.loss_instances` order) and their targets to the loss value
and dL/dy for every output. ``targets`` is an array stacked the same way (``(k, B, n)``,
or ``(k, B)`` integer classes for ``xent``), or a dict of such arrays by output node.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from .errors import InputError

if TYPE_CHECKING:
    from .unrolled import Instance, Unrolled

__all__ = ["LOSSES", "Loss", "Targets", "loss_cotangents"]

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
    count = sum(y.shape[0] for y in ys)
    value, grads = 0.0, []
    for y, t in zip(ys, _given(targets), strict=True):
        t = np.asarray(t)
        if t.shape != y.shape[:1] or not np.issubdtype(t.dtype, np.integer):
            raise InputError(
                f"xent targets must be integer classes of shape ({y.shape[0]},), "
                f"got {t.dtype} {t.shape}"
            )
        if np.any((t < 0) | (t >= y.shape[1])):
            raise InputError(f"xent targets must lie in 0..{y.shape[1] - 1}")
        shifted = y - y.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        rows = np.arange(y.shape[0])
        value -= float(logp[rows, t].sum())
        grad = np.exp(logp)
        grad[rows, t] -= 1.0
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
    if loss not in LOSSES:
        raise InputError(f"unknown loss {loss!r} (known: {', '.join(LOSSES)})")
    row = LOSSES[loss]
    instances = unrolled.loss_instances
    ys = [values[slot[inst]] for inst in instances]
    stacked = _stack_targets(unrolled, instances, targets) if row.needs_targets else None
    if stacked is not None:
        for inst, y, t in zip(instances, ys, stacked, strict=True):
            if loss != "xent" and np.shape(t) != y.shape:
                raise InputError(f"target for {inst!r} has shape {np.shape(t)}, expected {y.shape}")
    value, grads = row.fn(ys, stacked)
    return value, {slot[inst]: g for inst, g in zip(instances, grads, strict=True)}


def _stack_targets(
    unrolled: Unrolled, instances: Sequence[Instance], targets: Targets
) -> list[np.ndarray]:
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
    index = {t: i for i, t in enumerate(steps)}
    return [per_output[name][index[t]] for name, t in instances]
