"""The cotangents a run starts from: checked, with each one's squared norm.

:func:`~unroll.engine.bptt` takes them two ways, mixed freely across nodes: per instance,
``{(name, t): (B, n)}``, or per node as a whole sequence, ``{name: (T, B, n)}`` (one row
per step the node is computed: a loss at every step, as a hand-written BPTT takes it).
:class:`Cotangents` keeps both as given and reads as one mapping of instances.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from operator import attrgetter
from typing import NamedTuple

import numpy as np

from ..errors import InputError
from .checks import as_batch, check_finite, fmt, is_int, real_array

__all__ = ["Cotangents", "Sequence", "check_cotangents", "squared_norms"]


class Sequence(NamedTuple):
    """One node's cotangents at steps ``first, first + 1, ...``: ``values`` ``(*lead, n, B,
    size)`` and each step's sum of squares ``(*lead, n)``."""

    first: int
    values: np.ndarray
    squares: np.ndarray

    @classmethod
    def of(cls, first: int, values: np.ndarray) -> Sequence:
        """The sequence of ``values`` from step ``first``, its sums of squares computed."""
        flat = values.reshape(*values.shape[:-2], -1)
        with np.errstate(over="ignore", invalid="ignore"):
            return cls(first, values, np.einsum("...i,...i->...", flat, flat))

    @property
    def stop(self) -> int:
        """One past the last step."""
        return self.first + self.values.shape[-3]

    def row(self, t: int) -> np.ndarray:
        """The cotangent at step ``t``."""
        return self.values[..., t - self.first, :, :]


class Cotangents(Mapping):
    """``{(name, t): array}`` of a run: instances given one by one (``steps``, a dict in
    the order given) and nodes given as whole sequences (``sequences``)."""

    def __init__(self, steps: dict | None = None, sequences: dict[str, Sequence] | None = None):
        self.steps = {} if steps is None else steps
        self.sequences = {} if sequences is None else sequences

    def __getitem__(self, key):
        if key in self.steps:
            return self.steps[key]
        name, t = key if isinstance(key, tuple) and len(key) == 2 else (None, None)
        found = self.sequences.get(name) if isinstance(name, str) else None
        if found is None or not is_int(t):
            raise KeyError(key)
        step = int(t)  # type: ignore[arg-type]
        if not found.first <= step < found.stop:
            raise KeyError(key)
        return found.row(step)

    def __iter__(self) -> Iterator[tuple[str, int]]:
        yield from self.steps
        for name, found in self.sequences.items():
            yield from ((name, t) for t in range(found.first, found.stop))

    def __len__(self) -> int:
        return len(self.steps) + sum(s.stop - s.first for s in self.sequences.values())

    def plus(self, other: Cotangents) -> Cotangents:
        """These and ``other`` added where both hold an instance: two sequences of one
        node over the same steps as arrays, anything else a node has both ways as
        instances."""
        steps, sequences = dict(self.steps), dict(self.sequences)
        mine = {name for name, _ in self.steps} | set(self.sequences)

        def add(key, c):
            steps[key] = steps[key] + c if key in steps else c

        def as_instances(name):
            found = sequences.pop(name, None)
            if found is not None:
                steps.update(((name, t), found.row(t)) for t in range(found.first, found.stop))

        for name, theirs in other.sequences.items():
            ours = sequences.get(name)
            if name not in mine:
                sequences[name] = theirs
            elif ours is not None and (ours.first, ours.stop) == (theirs.first, theirs.stop):
                sequences[name] = Sequence.of(ours.first, ours.values + theirs.values)
            else:
                as_instances(name)
                for t in range(theirs.first, theirs.stop):
                    add((name, t), theirs.row(t))
        for key, c in other.steps.items():
            as_instances(key[0])
            add(key, c)
        return Cotangents(steps, sequences)

    def between(self, lo: int, hi: int) -> Cotangents:
        """The cotangents at steps ``lo < t <= hi``."""
        steps = {key: c for key, c in self.steps.items() if lo < key[1] <= hi}
        sequences = {}
        for name, found in self.sequences.items():
            a, b = max(lo + 1, found.first), min(hi + 1, found.stop)
            if a < b:
                i, j = a - found.first, b - found.first
                sequences[name] = Sequence(a, found.values[..., i:j, :, :], found.squares[..., i:j])
        return Cotangents(steps, sequences)


def check_cotangents(unrolled, present, cotangents, batch, lead, dtype):
    """``(Cotangents, squares)``: each cotangent checked (a computed instance or a node
    that takes cotangents, the right shape, finite), and the sum of squares of each one
    given per instance, in the order given."""
    steps = {key: v for key, v in cotangents.items() if not isinstance(key, str)}
    sequences = {
        name: _sequence(unrolled, present, name, value, batch, lead, dtype)
        for name, value in cotangents.items()
        if isinstance(name, str)
    }
    for name, _ in steps:
        if name in sequences:
            raise InputError(
                f"cotangents for {name!r} given both as a sequence and per step: give one"
            )
    out, squares = _check_steps(unrolled, present, steps, batch, lead, dtype)
    return Cotangents(out, sequences), squares


def _takes(unrolled, name: str, what: str):
    """The node ``name`` if it takes cotangents, else an InputError."""
    node = unrolled.graph.nodes.get(name)
    if node is None:
        raise InputError(f"{what}: no such node")
    if node.op.has("fed"):
        raise InputError(f"{what}: input and boundary nodes take no cotangent")
    return node


def _sequence(unrolled, present, name, value, batch, lead, dtype) -> Sequence:
    """A node's cotangents at every step it is computed, checked."""
    what = f"cotangent for {name!r}"
    node = _takes(unrolled, name, what)
    a, b = present[name]
    v = real_array(value, what).astype(dtype, copy=False)
    shapes = {(b - a, batch, node.size), (*lead, b - a, batch, node.size)}
    if v.shape not in shapes:
        raise InputError(
            f"{what} has shape {fmt(v.shape)}, expected ({b - a}, {batch}, {node.size}): "
            f"one row per step {a}..{b - 1}"
        )
    found = Sequence.of(a, v)
    if not np.isfinite(found.squares).all():  # a NaN or infinity, or squares past range
        for t in range(a, b):
            check_finite(found.row(t), f"{what} at step {t}", ("batch", "unit"))
    return found


def _check_steps(unrolled, present, cotangents, batch, lead, dtype):
    """The cotangents given per instance, checked, and their sums of squares."""
    out, steps, nodes = {}, unrolled.steps, unrolled.graph.nodes
    boundary = set(unrolled.boundary)
    takes = {  # per node that takes cotangents: its steps and the shapes that fit as they are
        name: (*present[name], {(batch, node.size), (*lead, batch, node.size)})
        for name, node in nodes.items()
        if not node.op.has("fed")
    }
    shapes = _common_shapes(cotangents, takes, dtype)
    if shapes is not None:
        out = dict(cotangents)
        return out, _finite_squares(out, len(shapes) == 1)
    for key, value in cotangents.items():
        name, t = key
        found = takes.get(name) if isinstance(name, str) else None
        if (
            found is not None
            and type(t) is int
            and found[0] <= t < found[1]
            and type(value) is np.ndarray
            and value.dtype == dtype
            and value.shape in found[2]
        ):
            out[key] = value  # the common case, as as_batch would pass it
            continue
        known = isinstance(name, str) and name in nodes and is_int(t)
        inside = known and present[name][0] <= t < present[name][1]
        if not inside and key not in boundary:
            raise InputError(f"cotangent for {key!r}: no such node instance (steps 0..{steps - 1})")
        if key in boundary or nodes[name].op.has("fed"):
            raise InputError(f"cotangent for {key!r}: input and boundary nodes take no cotangent")
        what = f"cotangent for {key!r}"
        out[(name, int(t))] = as_batch(value, batch, nodes[name].size, what, dtype, lead)
    return out, _finite_squares(out)


def _finite_squares(cotangents: dict, one_shape: bool | None = None) -> np.ndarray:
    """Each cotangent's sum of squares, in the dict's order, from one pass that also finds
    a NaN or an infinity (and then names the first cotangent holding one)."""
    if not cotangents:
        return np.zeros(0)
    squares = squared_norms(list(cotangents.values()), one_shape)
    if not np.isfinite(squares).all():  # a NaN or infinity, or squares past float range
        for key, v in cotangents.items():
            check_finite(v, f"cotangent for {key!r}", ("batch", "unit"))
    return squares


def squared_norms(values: list[np.ndarray], one_shape: bool | None = None) -> np.ndarray:
    """Each array's sum of squares, in one pass: one product of all small arrays of one
    shape joined (``one_shape``: whether they are, when known), else a dot product each
    (NaN where an entry is NaN, inf where one is infinite or the squares pass float
    range)."""
    if one_shape is None:
        one_shape = len({v.shape for v in values}) == 1
    with np.errstate(over="ignore", invalid="ignore"):
        if values[0].size < 1024 and one_shape:
            joined = np.concatenate(values).reshape(len(values), -1)
            return np.einsum("ij,ij->i", joined, joined)
        return np.array([float(v.ravel().dot(v.ravel())) for v in values])


def _common_shapes(cotangents, takes, dtype) -> set | None:
    """The shapes of the cotangents when every one is the common case, tested a pass over
    all at a time: a ``(name, int step)`` key of a node that takes cotangents, at a step it
    is computed, and an array of the run's dtype and a shape that fits as it is; else
    ``None``."""
    keys, values = list(cotangents), list(cotangents.values())  # pairs: check_arguments
    if not keys:
        return set()
    if set(map(type, values)) != {np.ndarray}:
        return None
    if set(map(attrgetter("dtype"), values)) != {np.dtype(dtype)}:  # map: one C loop each
        return None
    shapes = set(map(attrgetter("shape"), values))
    every_name, steps = zip(*keys, strict=True)
    names = set(every_name)
    looked_up = [takes.get(name) if isinstance(name, str) else None for name in names]
    found = [f for f in looked_up if f is not None]
    if len(found) < len(looked_up) or set(map(type, steps)) != {int}:
        return None
    low, high = max(f[0] for f in found), min(f[1] for f in found)
    fits = low <= min(steps) and max(steps) < high and all(shapes <= f[2] for f in found)
    return shapes if fits else None
