"""The backward pass: a VJP over the parts in reverse, each loop scanned back in time.

Gradients are kept in the log domain (:mod:`unroll.engine.scale`). A loop's backward scan
is compiled once into one straight-line function (:mod:`unroll.engine.codegen`). It carries
its pending gradients under one running exponent, checked at every step by a dot product
and moved whenever the carry's norm leaves ``[2**-64, 2**64]``: a state read one step
later (h, c) keeps its carry in its own row of the kept gradient, which the later step
writes straight into; one-step temporaries (gates, products) live in a small ring.
Derivatives overwrite the stored activations in place (the value is not needed once its
step is done), and every weight's gradient is one matrix product per run of steps of one
scale once the scan is over.
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

import numpy as np

from .codegen import Code, product_into, row_index, shifted
from .contributions import Contribution
from .cotangents import Cotangents, squared_norms
from .forward import Forward
from .plan import Part, Read, Unit
from .scale import (
    _HIGH2,
    _LOW2,
    _RANGE,
    NO_SCALE,
    TEST_EVERY,
    Grads,
    Scale,
    norm_exponents,
    rows_last,
    scale_tests,
    times_power_of_two,
)

__all__ = ["Backward"]

#: The most runs of one scale a layer's weight gradient is summed over, run by run.
_MAX_RUNS = 64
#: The widest spread of exponents shifted to one scale instead: ``ldexp`` by a power of two
#: is exact while the result is a normal number, and what falls below ``2**-1022`` then is
#: under ``2**-400`` of its step's peak, far beneath the rounding of the sum.
_SHIFT_SPREAD = 600
#: Entries of ``dz`` worth shifting (a product by a power of two, about a nanosecond each)
#: to save one run's products (three small calls and their rescaling, tens of microseconds).
_SHIFT_WORTH = 16384


def _scale_runs(e: np.ndarray, held: np.ndarray) -> list | None:
    """``[(first, end, exponent)]``: the steps in runs of one scale (steps that hold no
    gradient join any run), or ``None`` when there are more than :data:`_MAX_RUNS`."""
    filled = np.where(held, e, e[held][0])
    cuts = np.flatnonzero(np.diff(filled)) + 1
    if len(cuts) >= _MAX_RUNS:
        return None
    edges = [0, *cuts.tolist(), len(e)]
    return [(i0, i1, int(filled[i0])) for i0, i1 in itertools.pairwise(edges)]


def _joined_runs(dz: np.ndarray, e: np.ndarray, held: np.ndarray, runs: list, in_place: bool):
    """Join consecutive runs of one scale into groups whose exponents spread at most
    :data:`_SHIFT_SPREAD`, shifting each step's ``dz`` (in place, if ``in_place``) to its
    group's largest: ``(groups, exponents, dz)`` as ``(runs, e, dz)``."""
    groups = [list(runs[0])]
    low = runs[0][2]
    for i0, i1, x in runs[1:]:
        top = groups[-1][2]
        if max(top, x) - min(low, x) <= _SHIFT_SPREAD:
            groups[-1][1:] = [i1, max(top, x)]
            low = min(low, x)
        else:
            groups.append([i0, i1, x])
            low = x
    if len(groups) == len(runs) or dz.size > _SHIFT_WORTH * (len(runs) - len(groups)):
        return runs, e, dz  # (shifting every entry would cost more than it saves)
    reference = np.empty_like(e)
    for i0, i1, x in groups:
        reference[i0:i1] = x
    shift = np.where(held, e - reference, 0)  # at most 0: down to the group's scale
    dz = times_power_of_two(dz, rows_last(shift), out=dz if in_place else None)
    return [tuple(g) for g in groups], np.where(held, reference, e), dz


def _fill_history(out: np.ndarray, before, moves: list, lo: int) -> None:
    """Each scan step's exponent, ``out[..., s - lo]``, from the one the scan started with
    and the ``(s, L)`` moves it made on its way down from the top step."""
    lead = np.ndim(before) > 0
    out[...] = before[..., None] if lead else before
    for s, L in moves:
        out[..., : s - lo + 1] = L[..., None] if lead else L


def _by_node(cotangents, first: int, last: int) -> list:
    """``(name, steps, values)`` per node of the cotangents at steps ``first..last``."""
    every_name, every_step = zip(*cotangents, strict=True) if cotangents else ((), ())
    names = set(every_name)
    inside = bool(every_step) and first <= min(every_step) and max(every_step) <= last
    if len(names) == 1 and inside:  # the common case, without a loop in Python
        return [(names.pop(), list(every_step), list(cotangents.values()))]
    groups: dict[str, tuple[list, list]] = {}
    for (name, t), c in cotangents.items():
        if first <= t <= last:
            steps, values = groups.setdefault(name, ([], []))
            steps.append(t)
            values.append(c)
    return [(name, steps, values) for name, (steps, values) in groups.items()]


def _reads_ring(code: Code, lines: list[str], ring: np.ndarray) -> bool:
    """Whether ``lines`` name the ring or a view of it, among the names ``code`` bound."""
    names = {
        name
        for name, value in code.env.items()
        if value is ring
        or (isinstance(value, list) and value and all(_view_of(v, ring) for v in value))
    }
    words = set(re.findall(r"\w+", "\n".join(lines)))
    return bool(names & words) or "k" in words


def _view_of(value, ring: np.ndarray) -> bool:
    return isinstance(value, np.ndarray) and value.base is ring


def _consecutive(steps) -> bool:
    """Whether ``steps`` count up one at a time."""
    return list(steps) == list(range(steps[0], steps[0] + len(steps)))


def _by_step(items, first: int, n: int) -> tuple[list, list]:
    """``(values, exponents)`` by step ``first .. first + n - 1`` from ``(step, value,
    exponent)`` items (``None`` and ``NO_SCALE`` where a step has none)."""
    by_step, exps = [None] * n, [NO_SCALE] * n
    for t, value, exponent in items:
        if 0 <= t - first < n:
            by_step[t - first], exps[t - first] = value, exponent
    return by_step, exps


def _alike(values, shape) -> bool:
    """Whether every array has ``shape``."""
    return {v.shape for v in values} == {shape}


#: Binary orders of magnitude a run of steps must sit below the largest before its part
#: of a weight gradient is tested for being too small to change the sum, and the least
#: multiply-adds of that part for which the test (a pass over the run's rows) is worth it.
_NEGLIGIBLE_BELOW = 40
_NEGLIGIBLE_WORTH = 2**21


class _RunPeaks:
    """The largest magnitude in each column of ``rows`` (``(*lead, n * B, width)``) over
    the rows of a run of steps ``i0..i1-1`` (``B`` rows a step), taken once a run."""

    def __init__(self, rows: np.ndarray, batch: int):
        self.rows, self.batch = rows, batch
        self._found: dict[tuple[int, int], np.ndarray] = {}

    def __call__(self, i0: int, i1: int) -> np.ndarray:
        if (i0, i1) not in self._found:
            part = self.rows[..., i0 * self.batch : i1 * self.batch, :]
            self._found[(i0, i1)] = np.maximum(part.max(axis=-2), -part.min(axis=-2))
        return self._found[(i0, i1)]


def _sum_of_runs(runs, term, bound, unscale, work: int) -> np.ndarray:
    """``sum term(i0, i1) * 2**e`` over the runs ``(i0, i1, e)``, largest scale first,
    leaving out each run whose every entry is below half a unit in the last place of the
    sum so far, where adding it changes no bit (``bound(i0, i1)``: a bound on the entries
    of ``term``, taken four times over for the rounding of the product and the scale).
    Only runs far below the first whose term takes ``work`` multiply-adds a step, and
    :data:`_NEGLIGIBLE_WORTH` in all, are tested: with a loss at the last step, most steps
    of a vanishing gradient."""
    out, top = None, np.max(runs[0][2])
    for i0, i1, e in runs:
        far = np.max(e) < top - _NEGLIGIBLE_BELOW and (i1 - i0) * work >= _NEGLIGIBLE_WORTH
        if out is not None and far:
            with np.errstate(over="ignore", invalid="ignore"):
                small = 4.0 * unscale(np.asarray(bound(i0, i1), float), e)
                if np.all(small < np.spacing(np.abs(out)) / 2):  # (NaN: kept, never left out)
                    continue
        value = unscale(term(i0, i1), e)
        out = value if out is None else out + value
    assert out is not None, "at least one run of steps"
    return out


def _rows_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a^T b`` summed over the rows (the second-last axis), in the order BLAS runs
    fastest: the wider operand second, where its packed panels of the first serve more
    columns (``dz`` of an LSTM's four gates against its 128 inputs: 1.3x faster), and the
    small result made contiguous."""
    if a.shape[-1] > b.shape[-1]:
        return np.ascontiguousarray(np.swapaxes(np.swapaxes(b, -1, -2) @ a, -1, -2))
    return np.swapaxes(a, -1, -2) @ b


def _sole_reads(program, unit: Unit) -> dict[str, bool]:
    """For each source ``unit`` reads inside its loop: whether that read is the only one of
    the source in the loop, so the gradient slot it writes is empty until it does (kept
    on the program: it never changes)."""
    cache = program.memo.setdefault("sole reads", {})
    if unit.name not in cache:
        cache[unit.name] = _count_sole_reads(program, unit)
    return cache[unit.name]


def _count_sole_reads(program, unit: Unit) -> dict[str, bool]:
    readers: dict[str, int] = {}
    for other in program.part_of[unit.name].units:
        for r in other.reads():
            if r.lag is not None:
                readers[r.source] = readers.get(r.source, 0) + 1
    return {r.source: readers[r.source] == 1 for r in unit.reads() if r.lag is not None}


def _scan_row(part: Part, constant: int) -> str:
    """The text of the row ``constant + sign * s`` at scan step ``s`` (``sign`` the
    direction the part runs in time)."""
    return shifted("s", constant) if part.sign > 0 else f"{constant} - s"


def _one_row(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An array of ``shape`` whose every row is one fresh zero row."""
    row = np.zeros(shape[1:], dtype)
    return np.lib.stride_tricks.as_strided(row, shape=shape, strides=(0, *row.strides))


class _Rebuilt:
    """A lazy node's gradient rows, rebuilt from the scan's ``dz`` with the very operations
    the scan ran on its carry, step by step (so the same bits): the product ``dz_{s+1}
    W``, moved by the scale's change between the two steps, plus what came in at ``s``
    at the step's scale ``2**(e - L_s)``."""

    def __init__(self, layout, offset, top, bottom, history, dz, weight, incoming, exps):
        self.layout, self.offset, self.top, self.bottom = layout, offset, top, bottom
        self.history, self.dz, self.weight = history, dz, weight
        self.incoming, self.exps = incoming, exps

    def rows(self) -> np.ndarray:
        """The rows, as the scan would have written them (and as quietly: a gradient that
        overflowed there overflows here again, after the run)."""
        G = np.zeros(*self.layout)
        o, L, b = self.offset, self.history, self.bottom
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            for s in range(self.top, b - 1, -1):
                g = G[s + o]
                if s < self.top:
                    self.dz[s + 1 + o].dot(self.weight, out=g)
                    shift = int(L[s + 1 - b] - L[s - b])
                    if shift:
                        times_power_of_two(g, shift, out=g)
                if s >= 0 and self.incoming[s] is not None and self.exps[s] != NO_SCALE:
                    e, c = self.exps[s], self.incoming[s]
                    g += c if e == L[s - b] else np.ldexp(c, e - L[s - b])
        return G


class Backward:
    """One backward pass over steps ``first..last`` (all steps unless truncated)."""

    def __init__(
        self,
        fwd: Forward,
        first: int,
        last: int,
        input_grads: bool,
        record: bool | set[str] | None,
        keep_all: bool = False,
        keep_states: bool = True,
    ):
        self.fwd, self.first, self.last, self.keep_all = fwd, first, last, keep_all
        self.keep_states = keep_states or keep_all
        self.input_grads, self.record = input_grads, record
        self.grads = Grads(fwd, first)
        self.params: dict[str, np.ndarray] = {}
        self.records: dict[str, list] = {}
        self.scan_scales: dict[int, tuple[int, np.ndarray]] = {}  # part -> (bottom, L per step)
        self.dz: dict[int, np.ndarray] = {}  # loop layers that keep their values: their dz
        self._inputs = set(fwd.program.inputs)
        self._pending: list = []
        self._param_buffers: list = []
        self._handed: dict[str, tuple] = {}  # a direct node's cotangents: steps, arrays, exponents
        self._lazy: set[str] = set()  # the scan's direct nodes whose rows are rebuilt later
        self._two_rows: set[str] = set()  # the scan's direct nodes that keep two rows only

    def seed(self, cotangents: Cotangents, squares=None) -> None:
        """Put the cotangents of the window's steps in. A direct node's (see
        :meth:`_direct_nodes`) stay as they are, read by its scan at each step, and its
        scan's test of scale reads their norms from ``squares`` (the sums of squares of
        those given per instance, in their order, where known) or from their sequence."""
        direct = set().union(*(self._direct_nodes(p) for p in self.fwd.program.parts if p.loop))
        per_step = cotangents.steps
        groups = _by_node(per_step, self.first, self.last)
        whole = len(groups) == 1 and len(groups[0][1]) == len(per_step)
        for name, steps, values in groups:
            if name in direct:  # (single models only: every value is (B, n))
                known = squares if whole and squares is not None else squared_norms(values)
                self._handed[name] = (steps, values, norm_exponents(values, known))
            else:
                self._write(name, steps, values)
        for name, found in cotangents.between(self.first - 1, self.last).sequences.items():
            if name in direct:
                rows = list(found.values)  # views, one per step
                steps = list(range(found.first, found.stop))
                self._handed[name] = (steps, rows, norm_exponents(rows, found.squares))
            else:
                G, E = self.grads.get(name)
                o = self.fwd.offset(name)
                G[..., found.first + o : found.stop + o, :, :] = found.values
                E[..., found.first + o : found.stop + o] = 0

    def _write(self, name: str, steps: list, values: list) -> None:
        """Write cotangents into fresh rows of the kept gradient (one copy where it can)."""
        fwd = self.fwd
        G, E = self.grads.get(name)
        rows = np.asarray(steps) + fwd.offset(name)
        rowed = np.moveaxis(G, -3, 0)
        shape = values[0].shape
        whole = not fwd.lead and len(shape) == 2  # rowed is G: its rows are contiguous
        if whole and _consecutive(steps) and _alike(values, shape):
            block = rowed[rows[0] : rows[-1] + 1]  # one copy, straight into the rows
            np.concatenate(values, out=block.reshape(-1, *shape[1:]))
        else:
            for row, c in zip(rows.tolist(), values, strict=True):
                rowed[row] = c
        E[..., rows] = 0

    def run(self) -> None:
        """Backpropagate through every part, the last computed first."""
        for part in reversed(self.fwd.program.parts):
            if part.loop:
                self._scan_back(part)
            else:
                self._sequence_back(part.units[0])

    # ---- helpers --------------------------------------------------------------------------

    def _wanted(self, name: str) -> bool:
        return self.input_grads or name not in self._inputs

    def _add_param(self, name: str, value: np.ndarray) -> None:
        if name in self.params:
            self.params[name] = self.params[name] + value
        else:
            self.params[name] = value

    def _recorded(self, name: str) -> bool:
        return self.record is True or (isinstance(self.record, set) and name in self.record)

    def _record(self, name: str, t0: int, contribution) -> None:
        self.records.setdefault(name, []).append((t0, contribution))

    # ---- a node outside every loop --------------------------------------------------------

    def _sequence_back(self, unit: Unit) -> None:
        name = unit.name
        a, b = self.fwd.program.present[name]
        a, b = max(a, self.first), min(b, self.last + 1)
        if name not in self.grads.G or a >= b:
            return
        self.grads.normalise(name, a, b)
        G, E = self.grads.G[name], self.grads.E[name]
        o = self.fwd.offset(name)
        g, e = G[..., a + o : b + o, :, :], E[..., a + o : b + o]
        y = self.fwd.rows(name, a, b)
        if unit.is_layer:
            dz = unit.runs[0][2].vjp(g, y)
            self._layer_back(unit, np.array(dz, copy=True), e, a, b, unit.reads())
            return
        xs = [self.fwd.rows(r.source, a - r.delay, b - r.delay) for r in unit.sources]
        ps = self.fwd.op_params(unit, len(self.fwd.lead) + 3)
        vjp = unit.op.vjp
        assert vjp is not None, "every op row but input and layer has a VJP"
        grads = vjp(g, y, *xs, **ps)
        n = len(unit.sources)
        for r, grad in zip(unit.sources, grads[:n], strict=True):
            if self._wanted(r.source):
                self.grads.add(r.source, a - r.delay, grad, e)
        for (_, name), grad in zip(unit.params, grads[n:], strict=True):
            self._op_param_steps(name, self._per_step(name, grad, 1), e, a)

    def _per_step(self, name: str, grad: np.ndarray, steps: int) -> np.ndarray:
        """An op parameter's unreduced cotangent ``(*lead, [n,] B, ...)`` summed to its
        shape per step: ``(*lead, [n,] *shape)``."""
        shape = self.fwd.program.param_shapes[name]
        start = len(self.fwd.lead) + steps
        axes = tuple(range(start, grad.ndim - len(shape)))
        return grad.sum(axis=axes)

    def _op_param_steps(self, name: str, per_step: np.ndarray, e: np.ndarray, a: int) -> None:
        """Add an op parameter's per-step contributions ``(*lead, n, *shape)``, step ``a + i``
        scaled by ``2**e[..., i]``, into its gradient (and its record)."""
        held = e != NO_SCALE
        if not held.any():
            return
        e = np.where(held, e, 0)
        if self.record and self._recorded(name):
            self._record(name, a, Contribution(e, total=per_step))
        extra = (1,) * (per_step.ndim - e.ndim)
        self._add_param(
            name, np.ldexp(per_step, e.reshape(e.shape + extra)).sum(axis=len(self.fwd.lead))
        )

    def _layer_back(self, unit: Unit, dz, e, a: int, b: int, to_sources, kept=True) -> None:
        """Weight, bias and source gradients of a layer unit from its ``dz`` at steps
        ``a..b-1`` (each step scaled by ``2**e``); ``dz`` may be overwritten unless the
        contributions recorded read it (``kept``: nothing else writes there later, so
        they need no copy of their own).

        The weight and bias gradients are one product per run of steps that share a
        scale (a loop's scale changes every few dozen steps at most); an ensemble's
        steps are first brought to one scale per model instead.
        """
        fwd, n = self.fwd, b - a
        in_place = unit.name not in self._lazy  # (a lazy node's rows are rebuilt from dz)
        if self.record and any(map(self._recorded, unit.param_names())):
            self._record_contributions(unit, dz, e, a, copy=not kept)
            in_place = in_place and not kept  # (the records read dz itself)
        held = e != NO_SCALE
        if not held.any():
            return
        runs = None if fwd.lead else _scale_runs(e, held)
        if runs is not None and len(runs) > 1:  # one product per group of runs, not per run
            runs, e, dz = _joined_runs(dz, e, held, runs, in_place)
        if runs is None:  # one scale per model: shift every step to it
            ref = np.where(held, e, np.iinfo(np.int64).min).max(axis=-1)
            shift = np.where(held, e - ref[..., None], 0)
            if shift.any() or not held.all():
                dz = times_power_of_two(dz, rows_last(shift), out=dz if in_place else None)
                dz[~held] = 0.0  # steps that hold no gradient add nothing
            e = np.broadcast_to(ref[..., None], e.shape)
            runs = [(0, n, ref)]
        flat = dz.reshape(*dz.shape[:-3], n * fwd.batch, unit.width)
        B = fwd.batch

        def unscale(value, exponent):
            exponent = np.asarray(exponent)
            if not exponent.any():  # 2**0: the common case, and ldexp is slow
                return value
            return times_power_of_two(
                value, exponent.reshape(exponent.shape + (1,) * (value.ndim - exponent.ndim))
            )

        runs = sorted(runs, key=lambda run: -np.max(run[2]))  # the largest scale first
        dz_peaks = _RunPeaks(flat, B)

        def bias_term(i0, i1):
            return flat[..., i0 * B : i1 * B, :].sum(axis=-2)

        def bias_bound(i0, i1):
            return (i1 - i0) * B * dz_peaks(i0, i1)

        bias_total: Any = 0
        if any(unit.biases):
            bias_total = _sum_of_runs(runs, bias_term, bias_bound, unscale, B * unit.width)
        for names, (lo, hi) in zip(unit.biases, unit.spans, strict=True):
            for name in names:
                self._add_param(name, bias_total[..., lo:hi])
        for j, r in enumerate(unit.blocks):
            x = fwd.rows(r.source, a - r.delay, b - r.delay)
            x = x.reshape(*x.shape[:-3], n * B, x.shape[-1])
            x_peaks = _RunPeaks(x, B)

            def weight_term(i0, i1, x=x):
                return _rows_product(flat[..., i0 * B : i1 * B, :], x[..., i0 * B : i1 * B, :])

            def weight_bound(i0, i1, x_peaks=x_peaks):
                return (i1 - i0) * B * np.multiply.outer(dz_peaks(i0, i1), x_peaks(i0, i1))

            work = B * unit.width * x.shape[-1]
            dw = _sum_of_runs(runs, weight_term, weight_bound, unscale, work)
            for name, (lo, hi) in zip(unit.weights[j], unit.spans, strict=True):
                self._add_param(name, dw[..., lo:hi, :])
            if r in to_sources and r.lag is None and self._wanted(r.source):
                back = (flat @ fwd.block_weight(unit, j)).reshape(*flat.shape[:-2], n, B, -1)
                self.grads.add(r.source, a - r.delay, back, e)
        for r in unit.identity:
            if r in to_sources and r.lag is None and self._wanted(r.source):
                self.grads.add(r.source, a - r.delay, dz, e)

    def _record_contributions(self, unit: Unit, dz, e, a: int, copy: bool) -> None:
        """Keep what each step's contribution to each recorded parameter is made of: a
        bias's per-step sum, or a weight's ``dz_t`` and ``x_t`` (the product ``dz_t^T x_t``
        is formed only when asked for; its norm needs none). Unscaled: each step's scale
        is ``e``. Parameters of one span share one sum, and one copy of ``dz`` if ``copy``
        (else they read ``dz`` itself)."""
        fwd, n = self.fwd, dz.shape[-3]
        sums: dict = {}
        for names, (lo, hi) in zip(unit.biases, unit.spans, strict=True):
            for name in names:
                if self._recorded(name):
                    if (lo, hi) not in sums:
                        sums[(lo, hi)] = dz[..., lo:hi].sum(axis=-2)
                    self._record(name, a, Contribution(e, total=sums[(lo, hi)]))
        parts: dict = {}
        for j, r in enumerate(unit.blocks):
            x = None
            for name, (lo, hi) in zip(unit.weights[j], unit.spans, strict=True):
                if self._recorded(name):
                    if x is None:
                        x = fwd.rows(r.source, a - r.delay, a + n - r.delay)
                    if (lo, hi) not in parts:
                        part = dz[..., lo:hi]
                        parts[(lo, hi)] = part.copy() if copy else part
                    self._record(name, a, Contribution(e, dz=parts[(lo, hi)], x=x))

    # ---- a loop, scanned back in time -----------------------------------------------------

    def _scan_back(self, part: Part) -> None:
        fwd, T = self.fwd, self.fwd.steps
        lo, hi = part.scan_range(T)
        depth = part.depth
        top = min(hi - 1, self.last) if part.sign > 0 else hi - 1
        bottom = lo - (depth - 1) if self.first == 0 else self.first
        if top < bottom:
            return
        widths, columns = 0, {}
        for unit in part.units:
            columns[id(unit)] = widths
            widths += unit.width
        ring = np.zeros((depth, *fwd.lead, fwd.batch, widths), fwd.dtype)
        for name in sorted(part.nodes):  # also handed in from inside the graph: join them
            if name in self._handed and name in self.grads.G:
                steps, values, _ = self._handed.pop(name)
                for t, c in zip(steps, values, strict=True):
                    self.grads.add(name, t, c[None])
        incoming = self._incoming(part, bottom, top)
        handed_in = {name for name in part.nodes if name in self.grads.G}
        self._direct = self._direct_nodes(part)
        self._first = self._first_writes(part)
        self._two_rows = set() if self.keep_states else set(self._direct)
        for name in part.nodes:  # carried nodes keep their whole gradient
            kept = fwd.program.carried[name] and self.keep_states
            if (kept or self.keep_all) and name not in self._two_rows:
                self.grads.get(name, self._rows_written(part, name))
        scale = Scale(fwd.lead, ring)
        self._passed = self._passed_through(part)
        clean = self._overwrites_every_slot(part, handed_in)
        self._moved = {
            name: self._move_incoming(part, name, bottom, top)
            for name in sorted(self._direct & handed_in)
        }
        for name in sorted(self._two_rows):  # no row kept: the carry's rows, no scales
            self.grads.E.setdefault(name, np.full(fwd.program.rows(name), NO_SCALE, np.int64))
        self._lazy = self._lazy_nodes(part, bottom)
        self._two_rows -= self._lazy
        for name in sorted(self._two_rows):  # the carry in two rows, the step's and the next
            size = fwd.program.graph.nodes[name].size
            self.grads.G[name] = np.zeros((2, fwd.batch, size), fwd.dtype)
        for name in self._lazy:  # its carry alone: one row stands for every row
            self.grads.G[name] = _one_row(*self.grads.layout(name))
        history = np.zeros((*fwd.lead, top - bottom + 1), np.int64)
        peaks = incoming.max(axis=0) if fwd.lead else incoming
        tests = scale_tests(peaks, self._test_every(part)).tolist()
        if not fwd.lead:
            incoming = incoming.tolist()
        scan = self._scan_program(
            part, ring, columns, scale, handed_in, clean, (incoming, tests), bottom
        )
        replay = fwd.step_programs(part) if fwd.segmented(part) else None
        for t0, t1, hi, lo in self._segments(part, bottom, top):
            if replay is not None and t1 < fwd.steps:  # the last segment is still there
                fwd.replay_segment(part, t0, t1, replay)
            before, moves = scale.L, list[tuple]()
            scan(hi, lo, moves)
            _fill_history(history[..., lo - bottom : hi + 1 - bottom], before, moves, lo)
            self._after_segment(
                part, bottom, history, max(t0, self.first, 0), min(t1, self.last + 1)
            )
        self.scan_scales[part.index] = (bottom, history)
        for name in self._lazy:
            del self.grads.G[name]
            if self.keep_states:
                self.grads.lazy[name] = self._rebuilt(part, name, top, bottom, history)
            else:
                del self.grads.E[name]
        for name in self._two_rows:
            del self.grads.G[name], self.grads.E[name]
        self._lazy, self._two_rows = set(), set()
        for r, (array, e) in self._pending:
            rows = np.moveaxis(array, 0, -3) if fwd.lead else array
            self.grads.add(r.source, self.first - r.delay, rows, e)
        self._pending = []
        self._flush_param_buffers()

    def _lazy_nodes(self, part: Part, bottom: int) -> set[str]:
        """The direct nodes whose gradient rows are rebuilt when asked for, not written at
        every step: the state of a loop of one layer that reads only itself, one step
        back, through one weight, scanned forward in time over every step, with one
        boundary row (its initial state) that nothing from outside reached. Its scan then
        keeps one row, the carry (the next step's product overwrites it once ``dz`` has
        read it), and the rows are one product per step again from the ``dz`` the weight
        gradients read (:class:`_Rebuilt`)."""
        if len(part.units) != 1 or part.sign < 0 or self.fwd.segmented(part):
            return set()
        unit = part.units[0]
        loop_reads = [r for r in unit.reads() if r.lag is not None]
        if (
            unit.name not in self._direct
            or not unit.is_layer
            or unit.members != [unit.name]
            or len(loop_reads) != 1
            or loop_reads[0] not in unit.blocks
            or loop_reads[0].lag != 1
            or bottom != -1
        ):
            return set()
        if self.fwd.program.pad[unit.name] != (1, 0):  # a row past the end: kept as it is
            return set()
        if self.grads.E[unit.name][0] != NO_SCALE:  # given at the boundary: the scan adds it
            return set()
        return {unit.name}

    def _rebuilt(self, part: Part, name: str, top: int, bottom: int, history) -> _Rebuilt:
        unit = part.units[0]
        j = unit.blocks.index(next(r for r in unit.reads() if r.lag is not None))
        if name in self._moved:
            incoming = self._moved_by_step(self._moved[name], self.fwd.offset(name))
        elif name in self._handed:
            incoming = self._handed_by_step(name)
        else:
            incoming = ([None] * (top + 1), [NO_SCALE] * (top + 1))
        dz = self._dz_array(unit)
        weight = self.fwd.step_weight(unit, j)
        layout = self.grads.layout(name)
        return _Rebuilt(layout, self.fwd.offset(name), top, bottom, history, dz, weight, *incoming)

    def _dz_array(self, unit: Unit) -> np.ndarray:
        """A loop layer's ``dz`` over every row: its own array, or its values overwritten."""
        found = self.dz.get(id(unit))
        return self.fwd.unit_base[id(unit)] if found is None else found

    def _test_every(self, part: Part) -> int:
        """How many scan steps apart the loop tests its scale: up to :data:`TEST_EVERY`
        where one step's growth of the carry has a bound from the weights, so the carry
        cannot pass float64's range before the next test; every step elsewhere.

        The bound: a loop of one layer reading itself one step back, activations whose
        slopes are at most ``gamma``, grows its carry's largest entry by at most
        ``gamma * sum |W|`` (the largest column sum) per step, plus what comes in (at most
        ``2**80`` times the scale between tests, see :func:`~.scale.scale_tests`).
        """
        units = part.units
        if len(units) != 1 or not units[0].is_layer or part.depth != 2 or any(part.offset.values()):
            return 1
        unit = units[0]
        slope = max([1.0, *(act.gamma for *_, act in unit.runs)])
        weights = [
            float(np.abs(self.fwd.block_weight(unit, j)).sum(axis=-2).max())
            for j, r in enumerate(unit.blocks)
            if r.lag is not None
        ]
        growth = slope * (sum(weights) + sum(r.lag is not None for r in unit.identity))
        if not math.isfinite(growth):
            return 1
        # TEST_EVERY steps from 2**64 (the carry's bound at a test) stay below 2**1000
        return max(1, min(TEST_EVERY, 1 + int(900 // max(math.log2(max(growth, 1.0)), 1.0))))

    def _direct_nodes(self, part: Part) -> set[str]:
        """The loop's carried nodes whose gradient rows are their carry: what reads them
        at a later step writes (or adds) straight into their row of the kept gradient,
        which the ring would otherwise hold and copy. Single models, full BPTT, loops
        without retiming that read one step back at most, nodes alone in their unit with
        boundary rows for every scan step the backward pass reaches."""
        fwd, program = self.fwd, self.fwd.program
        if fwd.lead or self.keep_all or any(part.offset.values()) or part.depth != 2:
            return set()  # (with depth 2, a step's carry is one row per node: no partial sums)
        out = set()
        for name in part.nodes:
            before, after = program.pad[name]
            pad = before if part.sign > 0 else after
            alone = len(program.unit_of[name].members) == 1
            if program.carried[name] and alone and pad >= part.depth - 1:
                out.add(name)
        return out

    def _first_writes(self, part: Part) -> set[tuple[str, int]]:
        """The reads (``(unit name, index in unit.reads())``) that write a direct node's
        row first, so write rather than add: its rows are zero until the scan (what came
        from outside was taken out), and the scan reaches a row first at the read of the
        largest lag, the first such read a scan step makes (last unit first). Only where
        that read can write (a layer's, or an op's written straight into its targets)."""
        first: dict[str, tuple[int, str, int, bool]] = {}
        for unit in reversed(part.units):
            writes = unit.is_layer or self._writes_into(unit)
            for i, r in enumerate(unit.reads()):
                if r.lag is None or r.source not in self._direct:
                    continue
                if r.source not in first or r.lag > first[r.source][0]:
                    first[r.source] = (r.lag, unit.name, i, writes)
        return {(name, i) for _, name, i, writes in first.values() if writes}

    def _row_text(self, name: str, text: str, constant: int) -> str:
        """The text of a direct node's gradient row ``text`` (``constant`` plus or minus
        the scan step ``s``); where it keeps two rows, ``p`` or ``q`` (``s % 2``, ``1 - p``,
        set at each scan step): the one of the constant's parity."""
        if name not in self._two_rows:
            return text
        return "q" if constant % 2 else "p"

    def _rows_written(self, part: Part, name: str) -> tuple[int, int] | None:
        """The rows ``[a, b)`` of a direct node's gradient that its first writes (see
        :meth:`_first_writes`) fill, one at each step of the window, or ``None``."""
        fwd = self.fwd
        found = self._first_reads(part).get(name)
        if found is None or fwd.program.present[found[0].name] != (0, fwd.steps):
            return None
        lag = found[1].lag
        assert lag is not None  # (a first write is a read inside the loop)
        shift = fwd.offset(name) - part.sign * lag
        return self.first + shift, min(self.last, fwd.steps - 1) + shift + 1

    def _first_reads(self, part: Part) -> dict[str, tuple[Unit, Read]]:
        """Per direct node whose row a first write fills: that write's unit and read."""
        return {
            r.source: (unit, r)
            for unit in part.units
            for i, r in enumerate(unit.reads())
            if (unit.name, i) in self._first
        }

    def _passed_through(self, part: Part) -> dict[str, str]:
        """The sources of a sum that take its gradient as it is rather than from a copy in
        their ring slot: ``{source: name}``, the local name the scan step gives it. Each
        read at the sum's step of a one-node unit that nothing else in the loop reads,
        keeps no gradient rows and has no boundary rows, whose VJP only reads its
        gradient (a layer's, or an op's written straight into its targets)."""
        program = self.fwd.program
        out: dict[str, str] = {}
        for unit in part.units:
            if unit.is_layer or not unit.op.has("sum") or not self._writes_into(unit):
                continue
            sole = _sole_reads(program, unit)
            for r in unit.sources:
                source = program.unit_of[r.source]
                if (
                    r.lag == 0
                    and r.delay == 0
                    and sole[r.source]
                    and source.members == [r.source]
                    and r.source not in self._direct
                    and r.source not in self.grads.G
                    and program.pad[r.source] == (0, 0)
                    and (source.is_layer or self._writes_into(source))
                ):
                    out[r.source] = f"g{len(out)}"
        return out

    @staticmethod
    def _writes_into(unit: Unit) -> bool:
        """Whether a loop op's step VJP is written straight into its targets (no general
        VJP call): no parameters, a ``vjp_into``, every input inside the loop."""
        return (
            not unit.params
            and unit.op.vjp_into is not None
            and all(r.lag is not None for r in unit.sources)
        )

    def _assigns(self, unit: Unit) -> list[bool]:
        """Per read of ``unit`` (``unit.reads()`` order): whether it writes its gradient
        into its slot or row rather than adding it (nothing was there before)."""
        sole = _sole_reads(self.fwd.program, unit)
        return [
            r.lag is not None and (sole[r.source] or (unit.name, i) in self._first)
            for i, r in enumerate(unit.reads())
        ]

    def _move_incoming(self, part: Part, name: str, bottom: int, top: int):
        """Take a direct node's gradients handed in from outside out of its rows (the
        scan writes its carry there): ``(values, exponents, position)``, the gradient of
        row ``r`` being ``values[position[r]] * 2**exponents[position[r]]``; ``position``
        is ``None`` where it is ``r`` itself (most rows held one: the array stays as it
        is and a fresh one scans)."""
        G, E = self.grads.G[name], self.grads.E[name]
        o = self.fwd.offset(name)
        a, b = sorted((part.sign * bottom + o, part.sign * top + o))
        rows = np.flatnonzero(E[a : b + 1] != NO_SCALE) + a
        if 2 * len(rows) > len(G):
            self.grads.G[name] = np.zeros(G.shape, G.dtype)
            outside = np.ones(len(E), bool)
            outside[rows] = False
            return G, np.where(outside, NO_SCALE, E).tolist(), None
        values = G[rows]
        G[rows] = 0.0
        return values, E[rows].tolist(), {int(r): i for i, r in enumerate(rows)}

    def _overwrites_every_slot(self, part: Part, handed_in: set) -> bool:
        """Whether each step writes every ring slot it will read afresh, so no slot needs
        clearing after its step: every read inside the loop is its source's only one and
        is written, not added (weights, identity edges, sums and products) or goes into a
        direct node's fresh row, nothing is
        added into a slot from outside the loop, and no node is offset in time (so every
        writer runs at every step)."""
        if any(part.offset.values()) or self.keep_all:
            return False
        program = self.fwd.program
        for unit in part.units:
            if any(m in handed_in for m in unit.members) and len(unit.members) > 1:
                return False  # its gradient from outside is added into the slot
            if not unit.is_layer and (
                unit.op.vjp_into is None or any(r.lag is None for r in unit.sources)
            ):
                return False  # the general VJP adds into its slots
            sole = _sole_reads(program, unit)  # a direct node's rows start at zero
            if not all(only or source in self._direct for source, only in sole.items()):
                return False
        return True

    def _segments(self, part: Part, bottom: int, top: int):
        """``(t0, t1, top, bottom)``: the steps and scan steps of each segment, last first;
        one segment unless the loop is checkpointed."""
        fwd = self.fwd
        if not fwd.segmented(part):
            return [(0, fwd.steps, top, bottom)]
        starts = range(0, fwd.steps, fwd.segment)
        out = []
        for t0 in reversed(starts):
            t1 = min(fwd.steps, t0 + fwd.segment)
            out.append((t0, t1, min(t1 - 1, top), bottom if t0 == 0 else t0))
        return out

    def _incoming(self, part: Part, bottom: int, top: int) -> np.ndarray:
        """Per scan step, the largest exponent of the gradients handed in from outside."""
        fwd = self.fwd
        out = np.full((*fwd.lead, top - bottom + 1), NO_SCALE, np.int64)
        a, b = max(0, self.first), min(fwd.steps, self.last + 1)
        for name in part.nodes:
            if name not in self.grads.G or a >= b:
                continue
            exps = self.grads.exponents(name, a, b)
            idx = part.sign * np.arange(a, b) + part.offset[name] - bottom
            keep = (idx >= 0) & (idx < out.shape[-1])
            out[..., idx[keep]] = np.maximum(out[..., idx[keep]], exps[..., keep])
        for name in sorted(set(part.nodes) & set(self._handed)):
            steps, _, exps = self._handed[name]
            idx = part.sign * np.asarray(steps) + part.offset[name] - bottom
            keep = (idx >= 0) & (idx < out.shape[-1])
            out[idx[keep]] = np.maximum(out[idx[keep]], exps[keep])
        return out

    def _scan_program(self, part: Part, ring, columns, scale, handed_in, clean, incoming, bottom):
        """The loop's backward scan, compiled once: ``scan(hi, lo, moves)`` runs scan steps
        ``hi`` down to ``lo``, each renormalised first where it tests its scale (a dot
        product, unless ensembled; ``incoming``: the exponents handed in at each scan step
        and where it tests, see :func:`~.scale.scale_tests`), then every unit's VJP in
        reverse step order; it appends ``(s, L)`` to ``moves`` whenever the scale moves,
        at scan step ``s``. When every unit runs at the scan's step, the steps inside the
        window run a body without the window's test and the boundary flushes."""
        depth = part.depth
        code = Code()
        sc, ring_name = code.bind(scale, "scale"), code.bind(ring, "ring")
        code.line(f"L = {sc}.L", 0)
        start = len(code.lines)
        code.line(f"k = s % {depth}" if depth > 1 else "k = 0", 1)
        self._scale_check_code(code, part, sc, scale, incoming, bottom, "k")
        preamble = code.taken(start)
        general, inner = self._units_code(code, part, ring, columns, scale, handed_in)
        rows_clear = self._two_row_clears(code, part)
        parity = ["    p = s % 2", "    q = 1 - p"] if self._two_rows else []
        if clean:  # a boundary step may read what nothing rewrote
            code.line(f"if s < {depth}:", 1)
            code.line(f"{ring_name}[k] = 0.0", 2)
        else:
            code.line(f"{ring_name}[k] = 0.0", 1)
        clear = code.taken(start)
        general = [*parity, *preamble, *general, *clear, *rows_clear]
        if inner is None:
            loops = [("hi", "lo", general)]
        else:  # the window's scan steps: t = s, or t = -s scanning backwards in time
            a, b = (self.first, self.last) if part.sign > 0 else (-self.last, -self.first)
            if not _reads_ring(code, inner, ring):  # its carry all in gradient rows
                self._scale_check_code(code, part, sc, scale, incoming, bottom, f"s % {depth}")
                inner = [*parity, *code.taken(start), *inner, *rows_clear]  # no slot to name
            else:
                inner = [*parity, *preamble, *inner, *clear, *rows_clear]
            loops = [
                ("hi", f"max(lo, {b + 1})", general),
                (f"min(hi, {b})", f"max(lo, {a})", inner),
                (f"min(hi, {a - 1})", "lo", general),
            ]
        for top, low, body in loops:
            code.line(f"for s in range({top}, {low} - 1, -1):", 0)
            code.lines += body
        return code.function(f"scan_back_{part.index}", "hi, lo, moves")

    def _two_row_clears(self, code: Code, part: Part) -> list[str]:
        """Lines zeroing, once its step is over, the row of each node kept in two rows
        whose first write adds rather than writes (a general VJP's): its next step then
        finds it empty."""
        lines = []
        for name in sorted(self._two_rows - self._first_reads(part).keys()):
            o = self.fwd.offset(name)
            row = self._row_text(name, _scan_row(part, o), o)
            lines.append(f"    {code.bind(self.grads.G[name], 'G')}[{row}] = 0.0")
        return lines

    def _scale_check_code(
        self, code: Code, part: Part, sc: str, scale, incoming, bottom, k: str
    ) -> None:
        """Emit a scan step's test of its scale (``sc``) and the renormalisation when it
        fails (``k`` the text of the step's ring slot)."""
        fwd = self.fwd
        exponents, tests = incoming
        inc, at = code.bind(exponents, "incoming"), shifted("s", -bottom)
        code.line(f"if {code.bind(tests, 'tests')}[{at}]:", 1)
        if fwd.lead:  # the quick test for all models at once, each model's if it fails
            peaks = code.bind(np.asarray(exponents).max(axis=0).tolist(), "peaks")
            code.line(f"if not {sc}.in_range({k}, {peaks}[{at}]):", 2)
            renormalise = code.bind(scale.renormalise, "renormalise")
            code.line(f"{renormalise}({k}, {inc}[..., {at}])", 3)
            code.line(f"L = {sc}.L", 3)
            code.line("moves.append((s, L))", 3)
            return
        # the carry's squared norm in range, and no incoming gradient far above it
        flat = code.bind(scale._flat, "flat")
        low, high = code.bind(_LOW2, "low"), code.bind(_HIGH2, "high")
        code.line(f"e = {inc}[{at}]", 2)
        terms, pending = [], []
        carry_slot = "None"  # the ring holds no carry: every carry is in its rows
        if any(fwd.program.carried[n] and n not in self._direct for n in part.nodes):
            code.line(f"f = {flat}[{k}]", 2)
            terms.append("f.dot(f)")  # the array's own dot: no dispatch through np.dot
            carry_slot = k
        for i, name in enumerate(sorted(self._direct)):  # the carry in its row
            array, o = self.grads.G[name], fwd.offset(name)
            G, flat_rows = code.bind(array, "G"), code.bind(array.reshape(len(array), -1), "q")
            row = self._row_text(name, _scan_row(part, o), o)
            code.line(f"q{i} = {flat_rows}[{row}]", 2)
            terms.append(f"q{i}.dot(q{i})")
            pending.append(f"{G}[{row}]")
        square = " + ".join(terms) or "0.0"
        code.line(f"if not ({low} <= {square} <= {high} and e - L <= {_RANGE}):", 2)
        renormalise = code.bind(scale._renormalise_one, "renormalise")
        code.line(f"{renormalise}({carry_slot}, e, [{', '.join(pending)}])", 3)
        code.line(f"L = {sc}.L", 3)
        code.line("moves.append((s, L))", 3)

    def _units_code(self, code: Code, part: Part, ring, columns, scale, handed_in):
        """Emit every unit's VJP at one scan step, the last unit first: ``(general,
        inner)``, the lines with the window's test and the boundary flushes, and (when
        every unit runs at the scan's step) the same lines without them, else ``None``."""
        merged = not any(part.offset.values())  # every unit at one step: one test of t
        start = len(code.lines)
        inside = None  # where the lines inside the window's test begin
        t = "s" if part.sign > 0 else "t"
        flushes: list[tuple[str, str]] = []
        for i, unit in enumerate(reversed(part.units)):
            if not merged:
                r0 = part.offset[unit.name]
                t = "s" if (part.sign, r0) == (1, 0) else "t"
            if t == "t" and (not merged or i == 0):
                r0 = part.offset[unit.name]
                code.line(f"t = s - {r0}" if part.sign > 0 else f"t = {r0} - s", 1)
            if not merged or i == 0:
                code.line(f"if {self.first} <= {t} <= {self.last}:", 1)
                inside = len(code.lines)
            self._step_code(code, unit, part, ring, columns, scale, handed_in, t, flushes)
            if not merged:
                for test, call in flushes:
                    code.line(f"elif {test}:", 1)
                    code.line(call, 2)
                flushes = []
        assert inside is not None, "a loop holds at least one unit"
        steps = len(code.lines)
        if flushes:
            code.line("else:", 1)
            for test, call in flushes:
                code.line(f"if {test}:", 2)
                code.line(call, 3)
        general = code.taken(start)
        if not merged:
            return general, None
        head, body = general[: inside - start - 1], general[inside - start : steps - start]
        return general, [*head, *(line[4:] for line in body)]

    def _step_code(
        self, code: Code, unit: Unit, part: Part, ring, columns, scale, handed_in, t, flushes
    ):
        """Emit the unit's VJP at scan step ``s``, step ``t`` (ring slot ``k``, exponent
        ``L``), to run when ``t`` is in the window; append to ``flushes`` the test and the
        call that keep its boundary gradient at the steps outside."""
        fwd, T, program = self.fwd, self.fwd.steps, self.fwd.program
        first, last = self.first, self.last
        depth = part.depth
        o = fwd.offset(unit.name)
        c0 = columns[id(unit)]
        kept, injected = [], []
        for member, (a, b) in zip(unit.members, unit.spans, strict=True):
            views = [ring[k][..., c0 + a : c0 + b] for k in range(depth)]
            if member in self.grads.G:
                G, E = self.grads.G[member], self.grads.E[member]
                rowed = np.moveaxis(G, -3, 0) if fwd.lead else G
                kept.append((rowed, views))
                if member in handed_in:  # its G holds what came from outside: add it in
                    held = E[..., o + first : o + last + 1] != NO_SCALE
                    live = held.reshape(-1, held.shape[-1]).any(axis=0).tolist()
                    injected.append((rowed, E, views, live))
        before, after = program.pad[unit.name]
        padded = [
            (member, a, b)
            for member, (a, b) in zip(unit.members, unit.spans, strict=True)
            if program.pad[member] != (0, 0)
        ]

        def target(r):
            """``(inside, where, text, index)``: where the gradient of read ``r`` goes at
            scan step ``s``: ``where[index(s)]``, ``text`` that index as code."""
            if r.lag is None:
                return False, r, None, None
            if r.source in direct:  # straight into its row of the kept gradient
                row = part.sign * -r.lag + fwd.offset(r.source) - part.sign * r0_of(r.source)
                text = self._row_text(r.source, _scan_row(part, row), row)
                G = self.grads.G[r.source]
                wrap = len(G)  # (2 where it keeps two rows)
                return True, G, text, lambda s: (part.sign * s + row) % wrap
            unit_of = program.unit_of[r.source]
            ca = columns[id(unit_of)] + unit_of.spans[unit_of.members.index(r.source)][0]
            n = program.graph.nodes[r.source].size
            views = [ring[k][..., ca : ca + n] for k in range(depth)]
            return True, views, self._slot(r.lag, depth), lambda s: (s - r.lag) % depth

        direct, r0_of = self._direct, part.offset.__getitem__
        row = shifted(t, o)  # a gradient array holds every row: no modulo
        if unit.name in direct:  # its row holds its carry: add what came from outside
            g_ = code.bind(kept[0][0], "G")
            code.line(f"g = {g_}[{self._row_text(unit.name, row, o)}]", 2)
            if unit.name in self._moved:
                self._incoming_code(code, *self._moved_by_step(self._moved[unit.name], o), t)
            elif unit.name in self._handed:
                self._incoming_code(code, *self._handed_by_step(unit.name), t)
        elif not fwd.lead and len(kept) == 1 and len(unit.members) == 1:
            G, views = kept[0]  # one node that keeps its gradient: gather it in place
            g_, v = code.bind(G, "G"), code.bind(views, "carry")
            code.line(f"g = {g_}[{row}]", 2)
            if injected:
                live = code.bind(injected[0][3], "live")
                exps = code.bind(injected[0][1][o + first : o + last + 1].tolist(), "exps")
                ldexp = code.bind(np.ldexp, "ldexp")
                code.line(f"if {live}[{t} - {first}]:", 2)
                code.line(f"e = {exps}[{t} - {first}]", 3)
                code.line("if e != L:", 3)
                code.line(f"{ldexp}(g, e - L, out=g)", 4)
                code.line(f"g += {v}[k]", 3)
                code.line("else:", 2)
                code.line(f"g[...] = {v}[k]", 3)
            else:
                code.line(f"g[...] = {v}[k]", 2)
        elif unit.name in self._passed:  # a sum's gradient, as it is
            code.line(f"g = {self._passed[unit.name]}", 2)
        else:
            inject = code.bind(scale.inject, "inject")
            for G, E, views, live in injected:
                g_, e_, v = code.bind(G, "G"), code.bind(E, "E"), code.bind(views, "carry")
                code.line(f"if {code.bind(live, 'live')}[{t} - {first}]:", 2)
                code.line(f"{inject}({v}[k], {g_}[{row}], {e_}[..., {row}])", 3)
            for G, views in kept:
                code.line(f"{code.bind(G, 'G')}[{row}] = {code.bind(views, 'carry')}[k]", 2)
            slots = [ring[k][..., c0 : c0 + unit.width] for k in range(depth)]
            code.line(f"g = {code.bind(slots, 'slot')}[k]", 2)
        if unit.is_layer:
            self._layer_vjp_code(code, unit, target, t, o)
        else:
            self._op_vjp_code(code, unit, target, scale, t, o)
        if self.first == 0 and (before or after):

            def flush(t, k):
                L = np.expand_dims(scale.L, -1) if fwd.lead else scale.L
                for member, a, b in padded:
                    if member in self._two_rows:  # (no row kept for the boundary)
                        continue
                    if member in direct:  # its row holds the carry: give it its scale
                        self.grads.E[member][..., t + o] = L
                        found = self._moved.get(member)
                        if found is not None:
                            values, exponents, position = found
                            i = t + o if position is None else position.get(t + o)
                            if i is not None and exponents[i] != NO_SCALE:
                                self.grads.add(member, t, values[i : i + 1], exponents[i])
                        continue
                    self.grads.add(member, t, np.expand_dims(ring[k][..., c0 + a : c0 + b], -3), L)

            test = f"{-before} <= {t} < {T + after} and ({t} < 0 or {t} >= {T})"
            flushes.append((test, f"{code.bind(flush, 'flush')}({t}, k)"))

    def _moved_by_step(self, moved, o: int) -> tuple[list, list]:
        """The gradients :meth:`_move_incoming` took out, and their exponents, by step of
        the window (``NO_SCALE`` where none)."""
        values, exponents, position = moved
        first, last = self.first, self.last
        if position is None:
            return list(values[first + o : last + o + 1]), exponents[first + o : last + o + 1]
        items = ((row - o, values[i], exponents[i]) for row, i in position.items())
        return _by_step(items, first, last - first + 1)

    def _handed_by_step(self, name: str) -> tuple[list, list]:
        """A direct node's cotangents as given, and their exponents (0), by step."""
        steps, values, _ = self._handed[name]
        first, n = self.first, self.last - self.first + 1
        if steps[0] == first and len(steps) == n and _consecutive(steps):
            return values, [0] * n
        return _by_step(((t, c, 0) for t, c in zip(steps, values, strict=True)), first, n)

    def _incoming_code(self, code: Code, by_step: list, exps: list, t: str) -> None:
        """Emit ``g += c * 2**(e - L)`` for a direct node's gradient ``c`` (exponent ``e``)
        handed in at step ``t``, read from lists by step; no test where every step has one."""
        c, at = code.bind(by_step, "incoming"), shifted(t, -self.first)
        ldexp = code.bind(np.ldexp, "ldexp")
        if set(exps) == {0}:  # every step's, unscaled
            code.line("if L:", 2)
            code.line(f"g += {ldexp}({c}[{at}], -L)", 3)
            code.line("else:", 2)
            code.line(f"g += {c}[{at}]", 3)
            return
        code.line(f"e = {code.bind(exps, 'exps')}[{at}]", 2)
        indent = 2
        if NO_SCALE in exps:
            code.line(f"if e != {NO_SCALE}:", 2)
            indent = 3
        code.line("if e == L:", indent)
        code.line(f"g += {c}[{at}]", indent + 1)
        code.line("else:", indent)
        code.line(f"g += {ldexp}({c}[{at}], e - L)", indent + 1)

    @staticmethod
    def _slot(lag: int, depth: int) -> str:
        """The ring slot a read ``lag`` scan steps back lands in, from scan step ``s``."""
        return "k" if lag == 0 else f"(s - {lag}) % {depth}"

    def _layer_vjp_code(self, code: Code, unit: Unit, target, t: str, o: int) -> None:
        """Emit a loop layer's VJP at one step: ``dz = g * act'``, then ``dz W`` to its
        sources.

        A layer whose values the pass may overwrite (:meth:`.Forward.overwrites`) gets
        ``dz`` written over them; any other gets its derivative factors for all steps at
        once, or at their step, in a ``dz`` array.
        """
        fwd, program = self.fwd, self.fwd.program
        first, last = self.first, self.last
        if fwd.overwrites(unit) and not self.keep_all:
            fwd.overwritten.add(unit.name)
            values = code.bind(fwd.unit_rowed(unit), "values")
            code.line(
                f"dz = {values}[{row_index(t, o, fwd.wrap[unit.name], program.rows(unit.name))}]",
                2,
            )
            whole = len(unit.runs) == 1
            for a, b, act in unit.runs:
                g, y = ("g", "dz") if whole else ("gv", "yv")
                if not whole:
                    code.line(f"gv, yv = g[..., {a}:{b}], dz[..., {a}:{b}]", 2)
                if act.vjp_lines is not None:  # the row's own lines: no call
                    tmp = code.bind(np.empty((*fwd.lead, fwd.batch, b - a), fwd.dtype), "tmp")
                    for line in act.vjp_lines(g, y, tmp, code.named):
                        code.line(line, 2)
                elif act.vjp_into is None and act.derivative_into is not None:
                    tmp = code.bind(np.empty((*fwd.lead, fwd.batch, b - a), fwd.dtype), "tmp")
                    code.line(f"{code.bind(act.derivative_into, 'derivative')}({y}, {tmp})", 2)
                    code.line(f"{code.bind(np.multiply, 'multiply')}({g}, {tmp}, out={y})", 2)
                else:
                    code.line(
                        f"{code.bind(act.vjp_into or act.vjp_inplace, 'backprop')}({g}, {y})", 2
                    )
        else:
            dz_base = np.empty_like(fwd.unit_base[id(unit)])
            self.dz[id(unit)] = dz_base
            a0, b0 = max(first, 0), min(fwd.steps, last + 1)
            dz_base[..., : a0 + o, :, :] = 0.0  # the rows no step writes
            dz_base[..., b0 + o :, :, :] = 0.0
            dzs = np.moveaxis(dz_base, -3, 0) if fwd.lead else dz_base
            code.line(f"dz = {code.bind(dzs, 'dz')}[{shifted(t, o)}]", 2)
            if self._factors_per_step(unit):  # at its step, in cache
                values = code.bind(fwd.unit_rowed(unit), "values")
                code.line(f"y = {values}[{shifted(t, o)}]", 2)
                for a, b, act in unit.runs:
                    into = code.bind(act.derivative_into, "derivative")
                    whole = (a, b) == (0, unit.width)
                    code.line(
                        f"{into}(y, dz)" if whole else f"{into}(y[..., {a}:{b}], dz[..., {a}:{b}])",
                        2,
                    )
            else:
                values_now = fwd.unit_rows(unit, a0, b0)
                for a, b, act in unit.runs:  # the derivative factors, all steps at once
                    act.derivative_to(values_now[..., a:b], dz_base[..., a0 + o : b0 + o, :, a:b])
            code.line("dz *= g", 2)
        alone = self._assigns(unit)
        for j, r in enumerate(unit.blocks):  # dz W to each weighted source
            if r.lag is None:
                continue
            _, where, index, _ = target(r)
            weight = fwd.step_weight(unit, j)
            slot = f"{code.bind(where, 'into')}[{index}]"
            if alone[j]:  # nothing was written there: the product goes straight in
                code.line(product_into(code, "dz", weight, slot, where[0]), 2)
            elif weight.ndim == 2 and not fwd.lead:
                code.line(f"{slot} += dz.dot({code.bind(weight, 'w')})", 2)
            else:
                code.line(f"{slot} += dz @ {code.bind(weight, 'w')}", 2)
        for i, r in enumerate(unit.identity, len(unit.blocks)):  # dz to each identity source
            if r.lag is None:
                continue
            _, where, index, _ = target(r)
            slot = f"{code.bind(where, 'into')}[{index}]"
            code.line(f"{slot}[...] = dz" if alone[i] else f"{slot} += dz", 2)

    def _factors_per_step(self, unit: Unit) -> bool:
        """Whether a layer's derivative factors are computed at their step of the scan
        rather than for all steps before it: where a step's rows are large (a pass over
        every step's values then costs more memory traffic than two calls a step save),
        every activation writes its derivative in place, and the columns are all covered
        (a column without an activation has factor 1)."""
        covered = sum(b - a for a, b, _ in unit.runs) == unit.width
        return (
            self.fwd.large_step(unit)
            and covered
            and unit.name not in self.fwd.ringed
            and all(act.derivative_into is not None for *_, act in unit.runs)
        )

    def _op_vjp_code(self, code: Code, unit: Unit, target, scale, t: str, o: int) -> None:
        """Emit a loop op's VJP at one step: written straight into the ring where the row
        can (``vjp_into``, every input inside the loop), else the row's general VJP."""
        fwd, program = self.fwd, self.fwd.program
        depth = program.part_of[unit.name].depth
        if not self._writes_into(unit):
            vjp = self._op_vjp(unit, target, scale, self.first, depth, o, fwd.wrap[unit.name])
            code.line(f"{code.bind(vjp, 'vjp')}(s, g, {t})", 2)
            return
        into = unit.op.vjp_into
        alone = self._assigns(unit)  # (an op's reads are its sources)
        reads, outs = [], []
        for i, r in enumerate(unit.sources):
            passed = self._passed.get(r.source)
            if passed is not None:  # its source takes g itself
                code.line(f"{passed} = g", 2)
                continue
            _, where, index, _ = target(r)
            row = fwd.row_text(r.source, t, r.delay)
            reads.append(f"{code.bind(fwd.rowed[r.source], 'x')}[{row}]")
            outs.append((f"{code.bind(where, 'into')}[{index}]", alone[i]))
        if not outs:
            return
        lines = None
        if unit.op.vjp_lines is not None:  # the row's own lines: no call, no lists
            lines = unit.op.vjp_lines("g", reads, outs, code.named)
        if lines is not None:
            for line in lines:
                code.line(line, 2)
            return
        pairs = ", ".join(f"({out}, {alone})" for out, alone in outs)
        code.line(f"{code.bind(into, 'vjp_into')}(g, [{', '.join(reads)}], [{pairs}])", 2)

    def _op_vjp(self, unit: Unit, target, scale, first, depth, o, wrap):
        """A loop op's VJP at one step, its input gradients sent where each input lives;
        its parameters' per-step gradients wait in buffers until the scan is over."""
        fwd = self.fwd
        if unit.params:
            return self._param_op_vjp(unit, target, scale, first, depth, o, wrap)
        values = fwd.rowed[unit.name]
        sources = [
            (fwd.rowed[r.source], fwd.offset(r.source) - r.delay, fwd.wrap[r.source])
            for r in unit.sources
        ]
        targets = [target(r) for r in unit.sources]
        outbound = self._outbound(unit)  # per read (two reads of one node are two)
        op_vjp, needs_output = unit.op.vjp, unit.op.needs_output
        assert op_vjp is not None  # every kind that a loop holds has a VJP (the registry's rule)

        def vjp(s, g, t):
            xs = [x[(t + xo) % xw] for x, xo, xw in sources]
            y = values[(t + o) % wrap] if needs_output else None
            grads = op_vjp(g, y, *xs)
            for (inside, where, _, index), grad, out in zip(targets, grads, outbound, strict=True):
                if inside:
                    where[index(s)] += grad
                elif out is not None:
                    out[0][t - first] = grad
                    out[1][..., t - first] = scale.L

        return vjp

    def _param_op_vjp(self, unit: Unit, target, scale, first, depth, o, wrap):
        """The step VJP of a loop op with parameters: input gradients as any op's, and
        each step's parameter gradient (summed over the batch) kept with its scale."""
        fwd, n = self.fwd, self.last - self.first + 1
        values = fwd.rowed[unit.name]
        sources = [
            (fwd.rowed[r.source], fwd.offset(r.source) - r.delay, fwd.wrap[r.source])
            for r in unit.sources
        ]
        targets = [target(r) for r in unit.sources]
        outbound = self._outbound(unit)
        op_vjp, needs_output = unit.op.vjp, unit.op.needs_output
        assert op_vjp is not None  # every kind that a loop holds has a VJP (the registry's rule)
        ps = fwd.op_params(unit, len(fwd.lead) + 2)
        shapes = fwd.program.param_shapes
        buffers = []
        for _, name in unit.params:
            steps = np.zeros((n, *fwd.lead, *shapes[name]), fwd.dtype)
            exps = np.full((n, *fwd.lead), NO_SCALE, np.int64)
            buffers.append((name, steps, exps))
        self._param_buffers.append(buffers)
        k = len(unit.sources)

        def vjp(s, g, t):
            xs = [x[(t + xo) % xw] for x, xo, xw in sources]
            y = values[(t + o) % wrap] if needs_output else None
            grads = op_vjp(g, y, *xs, **ps)
            for (inside, where, _, index), grad, out in zip(
                targets, grads[:k], outbound, strict=True
            ):
                if inside:
                    where[index(s)] += grad
                elif out is not None:
                    out[0][t - first] = grad
                    out[1][..., t - first] = scale.L
            for (name, steps, exps), grad in zip(buffers, grads[k:], strict=True):
                steps[t - first] = self._per_step(name, grad, 0)
                exps[t - first] = scale.L

        return vjp

    def _flush_param_buffers(self) -> None:
        """Once a loop's scan is over: its ops' parameter gradients from their buffers."""
        lead = bool(self.fwd.lead)
        for buffers in self._param_buffers:
            for name, steps, exps in buffers:
                per_step = np.moveaxis(steps, 0, len(self.fwd.lead)) if lead else steps
                e = np.moveaxis(exps, 0, -1) if lead else exps
                self._op_param_steps(name, per_step, e, self.first)
        self._param_buffers = []

    def _outbound(self, unit: Unit) -> list:
        """Buffers for an op's gradients to sources outside its loop, one per read of the
        op (``None`` for a read inside the loop, or one whose gradient is not wanted)."""
        fwd, n = self.fwd, self.last - self.first + 1
        out: list = []
        for r in unit.sources:
            if r.lag is None and self._wanted(r.source):
                size = fwd.program.graph.nodes[r.source].size
                array = np.zeros((n, *fwd.lead, fwd.batch, size), fwd.dtype)
                out.append((array, np.full((*fwd.lead, n), NO_SCALE, np.int64)))
                self._pending.append((r, out[-1]))
            else:
                out.append(None)
        return out

    def _after_segment(self, part: Part, bottom: int, history, a: int, b: int) -> None:
        """Once a loop's scan is past steps ``a..b-1``: their weight gradients and the
        gradients to what feeds the loop."""
        fwd = self.fwd
        if a >= b:
            return
        steps = np.arange(a, b)
        for name in part.nodes:  # the kept gradients carry their step's scale
            if name in self.grads.G:
                o = fwd.offset(name)
                index = part.sign * steps + part.offset[name] - bottom
                self.grads.E[name][..., a + o : b + o] = history[..., index]
        for unit in part.units:
            if not unit.is_layer:
                continue
            e = history[..., part.sign * steps + part.offset[unit.name] - bottom]
            o = fwd.offset(unit.name)
            if id(unit) not in self.dz and unit.name in fwd.ringed:
                dz = fwd.unit_base[id(unit)][..., fwd.ring_index(unit, a, b), :, :]
            else:
                dz = self._dz_array(unit)[..., a + o : b + o, :, :]
            kept = not fwd.segmented(part)  # (a checkpointed loop reuses its rows)
            self._layer_back(unit, dz, e, a, b, unit.reads(), kept)
