"""Sequence tasks that need long memory, drawn from a seed: the adding and copy problems.

A :class:`Task` is one minibatch of a problem (inputs ``(steps, B, n)`` and targets) plus
everything needed to train on it: the loss, the sequence mode that places the loss, and
the *baseline*, the loss of the best answer that ignores the inputs (what a network that
remembers nothing reaches). :meth:`Task.sample` draws a fresh minibatch of the same
problem, so a training loop can draw a new batch at every iteration.

The problems (rows of :data:`TASKS`):

- ``adding`` (Hochreiter & Schmidhuber 1997; Le et al. 2015): at each of ``T`` steps a
  value from U[0, 1] and a marker; exactly two steps are marked, one in each half of the
  sequence (``[0, T//2)`` and ``[T//2, T)``); the target, read at the last step
  (mode ``many-to-one``), is the sum of the two marked values. Always answering 1 (the
  mean) gives the MSE ``Var(u1 + u2) = 1/6``.
- ``copy`` (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016): ten symbols from 1..8,
  then ``T - 1`` blanks (0), the delimiter (9) and ten more blanks, ``T + 20`` steps
  one-hot in 10 classes; the target is blank for the first ``T + 10`` steps, then the
  ten symbols. The loss is softmax cross-entropy over 9 classes (0..8) at *every* step
  (mode ``synced``), averaged over the batch and all ``T + 20`` steps, as the engine's
  ``xent`` does. Answering blank with certainty for ``T + 10`` steps, then uniformly over
  the 8 symbols, gives ``10 ln 8 / (T + 20)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError
from .unrolled import Unrolled, unroll

__all__ = ["TASKS", "Task", "TaskKind", "adding_problem", "copy_memory", "make_task"]

_COPY_SYMBOLS, _COPY_ALPHABET = 10, 8  # ten symbols to recall, drawn from 1..8
_BLANK, _DELIMITER = 0, 9


@dataclass(frozen=True)
class TaskKind:
    """One problem: how to draw a batch, its sizes, loss, sequence mode and baseline.

    ``generate(length, batch, rng) -> (inputs, targets)``; ``steps(length)`` is the
    number of unrolled steps; ``baseline(length)`` the memoryless loss (its formula in
    ``baseline_text``); ``recall_steps(length)`` the loss steps whose answers need memory
    and ``source_span(length)`` the steps ``[start, end)`` holding what must be
    remembered (described by ``source_text``), for gradient profiles and figures.
    """

    name: str
    generate: Callable[[int, int, np.random.Generator], tuple[np.ndarray, np.ndarray]]
    steps: Callable[[int], int]
    input_size: int
    output_size: int
    loss: str
    mode: str
    baseline: Callable[[int], float]
    baseline_text: str
    recall_steps: Callable[[int], range]
    source_span: Callable[[int], tuple[int, int]]
    source_text: str
    min_length: int
    doc: str

    def __reduce__(self):
        return _task_kind, (self.name,)  # pickled by name: the rows hold lambdas


def _adding(length: int, batch: int, rng: np.random.Generator):
    half = length // 2
    values = rng.uniform(0.0, 1.0, size=(length, batch))
    first = rng.integers(0, half, size=batch)
    second = rng.integers(half, length, size=batch)
    markers = np.zeros((length, batch))
    columns = np.arange(batch)
    markers[first, columns] = 1.0
    markers[second, columns] = 1.0
    inputs = np.stack([values, markers], axis=2)
    targets = (values[first, columns] + values[second, columns])[None, :, None]
    return inputs, targets


def _copy(length: int, batch: int, rng: np.random.Generator):
    steps = length + 2 * _COPY_SYMBOLS
    symbols = rng.integers(1, _COPY_ALPHABET + 1, size=(_COPY_SYMBOLS, batch))
    sequence = np.full((steps, batch), _BLANK, dtype=np.int64)
    sequence[:_COPY_SYMBOLS] = symbols
    sequence[length + _COPY_SYMBOLS - 1] = _DELIMITER
    inputs = np.eye(_DELIMITER + 1)[sequence]
    targets = np.full((steps, batch), _BLANK, dtype=np.int64)
    targets[steps - _COPY_SYMBOLS :] = symbols
    return inputs, targets


#: The problems by name.
TASKS: dict[str, TaskKind] = {
    kind.name: kind
    for kind in [
        TaskKind(
            "adding",
            _adding,
            lambda T: T,
            input_size=2,
            output_size=1,
            loss="mse",
            mode="many-to-one",
            baseline=lambda T: 1.0 / 6.0,
            baseline_text="always answer 1: MSE 1/6",
            recall_steps=lambda T: range(T - 1, T),
            source_span=lambda T: (0, T // 2),
            source_text="the first marked value lies here",
            min_length=2,
            doc="sum the two marked values of a sequence of U[0,1] values, read at the end",
        ),
        TaskKind(
            "copy",
            _copy,
            lambda T: T + 2 * _COPY_SYMBOLS,
            input_size=_DELIMITER + 1,
            output_size=_COPY_ALPHABET + 1,
            loss="xent",
            mode="synced",
            baseline=lambda T: _COPY_SYMBOLS * math.log(_COPY_ALPHABET) / (T + 2 * _COPY_SYMBOLS),
            baseline_text="blank, then uniform guesses: 10 ln 8 / (T+20)",
            recall_steps=lambda T: range(T + _COPY_SYMBOLS, T + 2 * _COPY_SYMBOLS),
            source_span=lambda T: (0, _COPY_SYMBOLS),
            source_text="the symbols to recall",
            min_length=1,
            doc="recall ten symbols from 1..8 after T blanks, at the ten steps after a delimiter",
        ),
    ]
}


def _task_kind(name: str) -> TaskKind:
    return TASKS[name]


@dataclass(frozen=True, eq=False)
class Task:
    """A minibatch of a problem, with the loss, sequence mode and baseline to train on it.

    Attributes
    ----------
    kind : TaskKind
    length : int
        The problem's ``T`` (for ``copy``, the gap; the sequence has ``T + 20`` steps).
    inputs : numpy.ndarray
        ``(steps, B, input_size)``.
    targets : numpy.ndarray
        ``adding``: ``(1, B, 1)`` sums at the last step; ``copy``: ``(steps, B)`` classes.
    seed : int, list of int or None
        The seed the batch was drawn with (``None`` when drawn from a Generator).
    """

    kind: TaskKind
    length: int
    inputs: np.ndarray = field(repr=False)
    targets: np.ndarray = field(repr=False)
    seed: object = None

    @property
    def name(self) -> str:
        """The problem's name: ``adding`` or ``copy``."""
        return self.kind.name

    @property
    def loss(self) -> str:
        """The engine loss to train with: ``mse`` or ``xent``."""
        return self.kind.loss

    @property
    def mode(self) -> str:
        """The sequence mode that places the loss: ``many-to-one`` or ``synced``."""
        return self.kind.mode

    @property
    def steps(self) -> int:
        """Unrolled steps of one sequence."""
        return self.kind.steps(self.length)

    @property
    def batch(self) -> int:
        """Sequences in this minibatch."""
        return self.inputs.shape[1]

    @property
    def input_size(self) -> int:
        """Size of the input at each step."""
        return self.kind.input_size

    @property
    def output_size(self) -> int:
        """Size of the output a model must produce (classes for ``xent``)."""
        return self.kind.output_size

    @property
    def baseline(self) -> float:
        """The loss of the best answer that ignores the inputs (see the module docs)."""
        return self.kind.baseline(self.length)

    @property
    def recall_steps(self) -> list[int]:
        """The loss steps whose answers need memory (the adding problem's last step, the
        copy problem's last ten)."""
        return list(self.kind.recall_steps(self.length))

    @property
    def source_span(self) -> tuple[int, int]:
        """Steps ``[start, end)`` that hold what must be remembered."""
        return self.kind.source_span(self.length)

    def sample(self, batch: int | None = None, seed=None) -> Task:
        """A fresh minibatch of the same problem (``seed``: an int or a numpy Generator)."""
        return make_task(self.name, self.length, batch or self.batch, seed)

    def unroll(self, graph) -> Unrolled:
        """Unroll ``graph`` over this task's steps in its sequence mode."""
        return unroll(graph, self.steps, self.mode)

    def __repr__(self) -> str:
        return (
            f"Task({self.name!r}, length={self.length}, steps={self.steps}, batch={self.batch}, "
            f"loss={self.loss!r}, baseline={self.baseline:.4g})"
        )


def make_task(name: str, length: int, batch: int = 32, seed=0) -> Task:
    """Draw a minibatch of problem ``name`` (a key of :data:`TASKS`).

    Parameters
    ----------
    name : str
        ``adding`` or ``copy``.
    length : int
        The problem's ``T``.
    batch : int
        Sequences in the minibatch.
    seed : int, list of int, or numpy.random.Generator
        The draw: ``np.random.default_rng(seed)``; the same seed gives the same batch.

    Returns
    -------
    Task

    Raises
    ------
    InputError
        For an unknown problem, or a length or batch that is too small.

    Examples
    --------
    >>> t = make_task("copy", length=5, batch=2)
    >>> t.inputs.shape, t.targets.shape, t.loss, t.mode
    ((25, 2, 10), (25, 2), 'xent', 'synced')
    """
    if name not in TASKS:
        raise InputError(f"unknown task {name!r} (known: {', '.join(TASKS)})")
    kind = TASKS[name]
    if isinstance(length, bool) or not isinstance(length, int) or length < kind.min_length:
        raise InputError(f"task {name!r}: length must be an integer >= {kind.min_length}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InputError(f"task {name!r}: batch must be a positive integer, got {batch!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    inputs, targets = kind.generate(length, batch, rng)
    return Task(kind, length, inputs, targets, None if seed is rng else seed)


def adding_problem(length: int = 50, batch: int = 32, seed=0) -> Task:
    """The adding problem: sum the two marked values of ``length`` steps (mode many-to-one).

    Examples
    --------
    >>> t = adding_problem(length=10, batch=4, seed=1)
    >>> t.inputs.shape, t.targets.shape, round(t.baseline, 4)
    ((10, 4, 2), (1, 4, 1), 0.1667)
    >>> t.inputs[:, :, 1].sum(axis=0).tolist()  # two markers per sequence
    [2.0, 2.0, 2.0, 2.0]
    """
    return make_task("adding", length, batch, seed)


def copy_memory(length: int = 50, batch: int = 32, seed=0) -> Task:
    """The copy-memory problem: recall ten symbols after ``length`` blanks (mode synced).

    Examples
    --------
    >>> t = copy_memory(length=30, batch=3, seed=0)
    >>> t.steps, t.output_size, round(t.baseline, 4)  # 10 ln 8 / 50
    (50, 9, 0.4159)
    >>> bool((t.targets[-10:] == t.inputs[:10].argmax(axis=2)).all())
    True
    """
    return make_task("copy", length, batch, seed)
