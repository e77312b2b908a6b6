"""Numeric backpropagation through time: compile one step per loop, scan it over time.

:func:`compile_program` condenses the folded graph into its loops once (the plan never
grows with the number of steps); :func:`bptt` runs the forward pass into preallocated
``(rows, B, n)`` arrays, then the backward pass as a vector-Jacobian product, loop by loop
in reverse, *adding* into every node's and every tied weight's gradient. Gradients are
carried with a power-of-two scale per step, so norms of ``10**-3000`` are reported exactly
where float64 would give 0. Parameters with a leading axis of ``S`` models run an ensemble
in one pass.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping

import numpy as np

from ..errors import InputError, LimitError
from ..losses import loss_sequences
from ..unrolled import Unrolled
from .backward import Backward
from .checks import (
    batch_from,
    check_arguments,
    check_flags,
    check_initial_states,
    check_inputs,
    check_params,
    float_dtype,
    initial_value,
    peek_batch,
)
from .cotangents import Cotangents, Sequence, check_cotangents
from .forward import Forward
from .memory import DEFAULT_MAX_MEMORY, estimate_memory, minimum_bytes
from .plan import Program, compile_program
from .result import BPTTResult, BPTTRun, _Store
from .scale import Grads

__all__ = [
    "DEFAULT_MAX_MEMORY",
    "BPTTResult",
    "Program",
    "available_memory",
    "bptt",
    "check_memory",
    "compile_program",
    "estimate_memory",
    "minimum_bytes",
]


def bptt(
    unrolled: Unrolled,
    params: Mapping[str, np.ndarray],
    inputs: Mapping[str, np.ndarray] | None = None,
    cotangents: Mapping | None = None,
    *,
    loss: str | None = None,
    targets=None,
    initial_states=None,
    truncate: tuple[int, int] | None = None,
    dtype=np.float64,
    input_grads: bool = True,
    state_grads: bool = True,
    contributions: bool | Iterable[str] = False,
    max_memory: int | str | None = "auto",
    checkpoint: int | str | None = None,
) -> BPTTResult:
    """Run the unrolled graph forward, then backpropagate through time.

    Parameters
    ----------
    unrolled : Unrolled
        From :func:`unroll.unroll`.
    params : mapping
        ``{name: array}`` for every parameter in ``unrolled.graph.params()``. An array
        with one more leading axis, ``(S, *shape)``, makes an *ensemble* of ``S`` models
        run in one pass (parameters without it are shared by all); every array of the
        result then carries that leading axis.
    inputs : mapping
        ``{input_name: array (T, B, n)}`` (or ``(S, T, B, n)``, one per model); ``T`` is
        the number of steps, or the number of steps at which the sequence mode feeds
        that input.
    cotangents : mapping, optional
        ``{(node, t): array (B, n)}``: dL/dy for any node instances (the VJP's vector);
        or ``{node: array (T, B, n)}``: a node's at every step it is computed, one row
        per step (a loss at every step, without a dict entry per step). Nodes may be
        given either way, each one way.
    loss : {"sum", "mse", "xent"}, optional
        Instead of (or besides) cotangents, a loss on the output nodes at the steps the
        sequence mode names; ``targets`` gives its targets (see :mod:`unroll.losses`).
    initial_states : mapping, optional
        Boundary values: ``{"h": array (B, n)}`` for every boundary copy of ``h``, or
        ``{("h", -1): array}`` for one. Zero by default.
    truncate : (k1, k2), optional
        Truncated BPTT: every ``k1`` steps, backpropagate the losses of those steps
        through the last ``k2`` steps (losses older than the window, possible when
        ``k2 < k1``, are dropped). ``None`` is full BPTT. Needs a causal graph.
    dtype : numpy dtype
        ``float64`` (default) or ``float32``.
    input_grads : bool
        Also compute dL/dx for the input sequences (default True).
    state_grads : bool
        Keep the gradient of every node of a loop at every step (default True): what
        ``node_grads`` and ``log10_grad_norms`` read there. ``False`` keeps only what a
        scan carries from one step to the next (two rows a state, not one a step): the
        parameter gradients (and ``input_grads``) for less memory and time, as a
        training step needs; the result then refuses a loop node's gradient by name.
    contributions : bool or list of str
        Record each step's contribution to every tied weight's gradient (or to the named
        parameters only).
    max_memory : int, "auto" or None
        Refuse a run whose :func:`estimate_memory` exceeds this many bytes. ``"auto"``
        (default): :data:`DEFAULT_MAX_MEMORY` (8 GiB) or the available memory if that
        is less; ``None`` lifts the limit. Checked once per run shape.
    checkpoint : "sqrt", int or None
        For very long sequences: scan each loop in segments of ``sqrt(T)`` steps (or the
        number given), keeping only the states a segment starts from, and recompute a
        segment's gates and other values when the backward pass reaches it. Values and
        gradients do not change; the memory of everything a loop computes but does not
        carry across steps drops from ``T`` steps to one segment, for about one more
        forward pass of time. Outputs, states read outside the loop and every gradient
        are still kept for every step. Not with ``truncate``.

    Returns
    -------
    BPTTResult
        Its :attr:`~BPTTResult.warnings` name the first node and step where the forward
        pass overflowed, if it did.

    Raises
    ------
    InputError
        Naming the parameter, input, cotangent or setting that does not fit, or the
        first non-finite (NaN or infinite) entry of an input or a parameter.
    LimitError
        When the memory estimate exceeds ``max_memory``.

    Examples
    --------
    One weight tied across three steps gets the sum of its copies' gradients:

    >>> import numpy as np, unroll
    >>> g = unroll.presets.neuron(activation="identity", bias=False)
    >>> u = unroll.unroll(g, steps=3)
    >>> p = {"W_ih": np.ones((1, 1)), "W_hh": np.full((1, 1), 0.5)}
    >>> xs = np.ones((3, 1, 1))
    >>> r = unroll.bptt(u, p, {"x": xs}, {("h", 2): np.ones((1, 1))})
    >>> float(r.values[("h", 2)][0, 0])   # 1 + 0.5 + 0.25
    1.75
    >>> float(r.param_grads["W_hh"][0, 0])  # h1 + 0.5 * h0 = 1.5 + 0.5
    2.0

    Three models in one pass, one recurrent weight each:

    >>> p = {"W_ih": np.ones((1, 1)), "W_hh": np.array([[[0.5]], [[1.0]], [[2.0]]])}
    >>> r = unroll.bptt(u, p, {"x": xs}, {("h", 2): np.ones((1, 1))})
    >>> r.models, r.values[("h", 2)].ravel().tolist()
    (3, [1.75, 3.0, 7.0])
    """
    dtype = float_dtype(dtype)
    check_arguments(params, inputs, cotangents, initial_states, loss, targets, truncate)
    check_flags(input_grads=input_grads, state_grads=state_grads)
    if not isinstance(unrolled, Unrolled):
        raise InputError(
            f"bptt takes an unrolled graph (unroll.unroll), got {type(unrolled).__name__}"
        )
    program = compile_program(unrolled)
    segment = _segment(checkpoint, unrolled.steps, truncate)
    recorded = _recorded(contributions, program.param_shapes)
    contributions = bool(recorded)
    params, lead = check_params(program.param_shapes, params, dtype)
    batch = peek_batch(inputs, cotangents, initial_states)
    check_memory(unrolled, batch, dtype, contributions, max_memory, models=lead[0] if lead else 1)
    xs, found = check_inputs(unrolled, inputs or {}, lead, dtype)
    batch = found if found is not None else batch_from(cotangents, initial_states)
    initial_states = initial_states or {}
    check_initial_states(unrolled, initial_states)
    initial = {}
    for name, t in unrolled.boundary:
        size = unrolled.graph.nodes[name].size
        value = initial_value(initial_states, name, t, batch, size, lead, dtype)
        if value is not None:
            initial[(name, t)] = value
    cots, squares = check_cotangents(
        unrolled, program.present, cotangents or {}, batch, lead, dtype
    )
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        fwd = Forward(program, params, xs, initial, batch, lead, dtype, segment)
        fwd.run()
        # values the backward pass overwrites are tested now, the others when asked for
        first_bad = _FirstNonfinite(
            fwd, fwd.first_nonfinite(fwd.overwrites), lambda unit: not fwd.overwrites(unit)
        )
        loss_value = None
        if loss is not None:
            loss_value, extra = _loss(fwd, unrolled, loss, targets)
            if extra:
                cots, squares = cots.plus(extra), None  # (squares: of those given, in order)
        store, grads_of_params, records = _backward(
            fwd, cots, squares, truncate, input_grads, recorded, state_grads
        )
    run = BPTTRun(params, xs, initial, cots, truncate)
    return BPTTResult(
        unrolled, store, grads_of_params, records, recorded, loss_value, first_bad, dtype, run
    )


class _FirstNonfinite:
    """Per model, the first non-finite value: ``found`` of the values tested already, and
    of the units ``rest`` selects when first read (their values outlive the run)."""

    def __init__(self, fwd: Forward, found: list, rest):
        self._fwd, self._found, self._rest = fwd, found, rest
        self._all: list | None = None

    def __getitem__(self, index: int):
        if self._all is None:
            later = self._fwd.first_nonfinite(self._rest)
            self._all = [
                self._fwd._earliest([b for b in pair if b is not None])
                for pair in zip(self._found, later, strict=True)
            ]
            self._fwd = self._rest = None  # type: ignore[assignment]
        return self._all[index]

    def __iter__(self):
        return (self[i] for i in range(len(self._found)))


def _segment(checkpoint, steps: int, truncate) -> int | None:
    """The segment length of a checkpointed run, or ``None``."""
    if checkpoint is None:
        return None
    if truncate is not None:
        raise InputError("checkpoint and truncate do not go together: choose one")
    if isinstance(checkpoint, str) and checkpoint == "sqrt":
        return max(1, math.isqrt(steps - 1) + 1)
    if (
        isinstance(checkpoint, bool)
        or not isinstance(checkpoint, int | np.integer)
        or checkpoint < 1
    ):
        raise InputError(
            f"checkpoint must be 'sqrt', a positive number of steps or None, got {checkpoint!r}"
        )
    return int(checkpoint)


def _recorded(contributions, shapes):
    """``True`` (every parameter), a set of parameter names, or ``None``."""
    if isinstance(contributions, bool | np.bool_):
        return True if contributions else None
    names = (
        None
        if isinstance(contributions, str) or not isinstance(contributions, Iterable)
        else list(contributions)
    )
    if names is None or not all(isinstance(n, str) for n in names):
        raise InputError(
            "contributions must be True or False, or a list of parameter names, got "
            f"{type(contributions).__name__}"
        )
    chosen = set(names)
    for name in sorted(chosen, key=str):
        if name not in shapes:
            raise InputError(f"contributions: unknown parameter {name!r}")
    return chosen or None


def _loss(fwd: Forward, unrolled: Unrolled, loss: str, targets) -> tuple:
    """The loss on the loss instances (one value per model for an ensemble) and its
    cotangents, each output's over every loss step at once (a mode's loss steps are
    consecutive)."""
    steps = unrolled.loss_steps
    first, stop = steps[0], steps[-1] + 1
    assert steps == list(range(first, stop)), "a sequence mode places its losses in a range"
    ys = {name: fwd.rows(name, first, stop) for name in unrolled.graph.output_nodes()}
    value: float | np.ndarray
    if not fwd.lead:
        value, grads = loss_sequences(unrolled, ys, loss, targets)
    else:
        per_model = [
            loss_sequences(unrolled, {n: y[m] for n, y in ys.items()}, loss, targets)
            for m in range(fwd.lead[0])
        ]
        value = np.array([v for v, _ in per_model])
        grads = {name: np.stack([g[name] for _, g in per_model]) for name in ys}
    return value, Cotangents(sequences={n: Sequence.of(first, g) for n, g in grads.items()})


def _backward(fwd: Forward, cots, squares, truncate, input_grads, contributions, states=True):
    T = fwd.steps
    if truncate is None:
        run = Backward(fwd, 0, T - 1, input_grads, contributions, keep_states=states)
        run.seed(cots, squares)
        run.run()
        store = _Store(fwd, run.grads, run.scan_scales, exact=False, states=states)
        return store, run.params, run.records if contributions else None
    total = Grads(fwd, 0)
    params: dict[str, np.ndarray] = {}
    records: dict[str, list] = {}
    for first, last, chunk in _truncated_chunks(fwd.program, cots, truncate):
        run = Backward(fwd, first, last, input_grads, contributions, keep_all=True)
        run.seed(chunk)
        run.run()
        for name, G in run.grads.G.items():
            total.add(name, -fwd.program.pad[name][0], G, run.grads.E[name])
        for name, value in run.params.items():
            params[name] = params[name] + value if name in params else value
        for name, items in run.records.items():
            records.setdefault(name, []).extend(items)
    store = _Store(fwd, total, {}, exact=True, states=states)
    return store, params, records if contributions else None


def _truncated_chunks(program: Program, cots: Cotangents, truncate):
    g = program.graph
    k1, k2 = truncate  # a pair of positive integers: check_arguments made sure
    if not g.is_causal():
        bad = next(e for e in g.edges if e.delay < 0)
        raise InputError(
            f"truncated BPTT needs a causal graph, but edge {bad.describe()} reads the future"
        )
    T = program.steps
    ends = list(range(k1 - 1, T, k1))
    if not ends or ends[-1] != T - 1:
        ends.append(T - 1)
    chunks, previous = [], -1
    for end in ends:
        first = max(0, end - k2 + 1)
        chunks.append((first, end, cots.between(previous, end)))
        previous = end
    return chunks


# ---- memory -----------------------------------------------------------------------------------


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (``MemAvailable``), or ``None``."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _memory_limit(max_memory) -> tuple[int | None, str]:
    """The limit in bytes (``None``: none) and how it was chosen, for the message."""
    if max_memory is None:
        return None, ""
    if isinstance(max_memory, str) and max_memory == "auto":
        free = available_memory()
        if free is not None and free < DEFAULT_MAX_MEMORY:
            return free, " (the memory available now)"
        return DEFAULT_MAX_MEMORY, ""
    if (
        isinstance(max_memory, bool)
        or not isinstance(max_memory, int | float)
        or not max_memory > 0
    ):
        raise InputError(
            f"max_memory must be a number of bytes, 'auto' or None, got {max_memory!r}"
        )
    return (None, "") if math.isinf(max_memory) else (int(max_memory), "")


def _bytes(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def check_memory(
    unrolled: Unrolled,
    batch: int = 1,
    dtype=np.float64,
    contributions: bool | Iterable[str] = False,
    max_memory: int | str | None = "auto",
    *,
    models: int = 1,
) -> None:
    """Raise :class:`~unroll.errors.LimitError` when a run's :func:`estimate_memory` exceeds
    ``max_memory`` (as in :func:`bptt`: bytes, ``"auto"`` or ``None`` for no limit).

    A shape that passed once with ``"auto"`` passes again without a new look at the free
    memory, so repeated runs (training) are not stopped part-way by another process.
    Callers that allocate before :func:`bptt` (parameters, inputs) check first.

    Examples
    --------
    >>> import unroll
    >>> u = unroll.unroll(unroll.presets.elman(64, 1024), steps=100_000)
    >>> check_memory(u, batch=64)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    unroll.errors.LimitError: BPTT over 'elman' (100,000 steps, batch 64, float64) needs about ...
    >>> check_memory(u, batch=64, max_memory=None)
    """
    key = ("memory-ok", batch, np.dtype(dtype).str, contributions, models)
    auto = isinstance(max_memory, str) and max_memory == "auto"
    if auto and key in unrolled._programs:
        return
    limit, why = _memory_limit(max_memory)
    if limit is None:
        return
    dtype = np.dtype(dtype)
    need = estimate_memory(unrolled, batch, dtype, contributions, models)
    if need > limit:
        ensemble = f", {models} models" if models > 1 else ""
        raise LimitError(
            f"BPTT over {unrolled.graph.name!r} ({unrolled.steps:,} steps, batch {batch}"
            f"{ensemble}, {dtype}{', with per-step contributions' if contributions else ''}) "
            f"needs about {_bytes(need)}, more than the limit of {_bytes(limit)}{why}",
            "bptt(..., max_memory=None)",
        )
    if auto:
        unrolled._programs[key] = True
