"""The forward pass: preallocated ``(rows, B, n)`` arrays per node, loops scanned step by step.

Every node's values live in one array over its steps and boundary rows (``(S, rows, B, n)``
for an ensemble of ``S`` models). A loop first receives, for all steps at once, the products
of the edges that enter it from outside (one matrix product over ``T * B`` rows per edge),
then its step program, compiled once into one straight-line function of numpy calls with
every array bound as a local (no closures, no modulo outside rings), scans the steps. A
node outside every loop is computed for all steps at once.
"""

from __future__ import annotations

import math

import numpy as np

from . import codegen
from .checks import all_finite
from .codegen import Code, product_into, row_index
from .plan import Part, Program, Unit

__all__ = ["Forward", "zeros"]


def zeros(shape: tuple, dtype) -> np.ndarray:
    """A zeroed array, zeroed here rather than by the kernel: ``np.zeros`` of a large
    array maps fresh pages, and each costs a page fault and the kernel's zeroing when first
    written (measured on transparent huge pages: up to a sixth of an LSTM run at hidden
    128, batch 32), where ``np.empty`` reuses the memory a previous run gave back."""
    array = np.empty(shape, dtype)
    array.fill(0.0)
    return array


class Forward:
    """Arrays and weights of one run, and the forward pass over them.

    ``base[name]`` is node ``name``'s array ``(*lead, rows, B, n)``; ``rowed[name]`` the
    same array with the step axis first (what a scan indexes); a fused unit's members
    are column views of the unit's array. ``wrap[name]`` is the row count a step index
    is taken modulo: the full count, or 1 for a node kept for one step only.
    """

    def __init__(self, program: Program, params, xs, initial, batch, lead, dtype, segment=None):
        self.program, self.params, self.batch, self.lead, self.dtype = (
            program,
            params,
            batch,
            lead,
            dtype,
        )
        self.xs, self.segment = xs, segment
        self.ringed: set[str] = set()  # units kept for one segment (checkpointing)
        self.checkpoints: dict = {}  # (unit, t0) -> its rows just before step t0
        self.steps = program.steps
        self.base: dict[str, np.ndarray] = {}
        self.rowed: dict[str, np.ndarray] = {}
        self.wrap: dict[str, int] = {}
        self.unit_base: dict[int, np.ndarray] = {}
        self.initial = initial  # {(name, t): array} given boundary values
        self.overwritten: set[str] = set()  # loop layers whose values hold gradients now
        self.probes: dict[str, np.ndarray] = {}  # unit -> each step's sum of its values
        self._weights: dict = {}
        self._place_inputs(xs)
        for part in program.parts:
            for unit in part.units:
                self._allocate(unit, part)

    # ---- storage --------------------------------------------------------------------------

    def offset(self, name: str) -> int:
        """The row of step 0 in node ``name``'s array."""
        return self.program.pad[name][0]

    def _place_inputs(self, xs) -> None:
        p = self.program
        for name in p.inputs:
            x = xs[name]
            a, b = p.present[name]
            before, after = p.pad[name]
            if (a, b) == (0, self.steps) and before == after == 0:
                array = x
            else:
                given = [self.initial[k] for k in self.initial if k[0] == name]
                lead = self.lead if any(np.ndim(v) == 3 for v in given) else x.shape[:-3]
                shape = (*lead, p.rows(name), *x.shape[-2:])
                array = self._blank(shape, before + a, before + b)
                array[..., before + a : before + b, :, :] = x
            self._set(name, array, p.rows(name))
            self._fill_boundary_of(name)

    def _allocate(self, unit: Unit, part: Part) -> None:
        p = self.program
        name = unit.name
        stored = all(p.stored[m] for m in unit.members)
        rows = p.rows(name) if stored else 1
        if stored and self._ringable(unit, part):
            rows = self.segment + part.depth
            self.ringed.add(name)
        shape = (*self.lead, rows, self.batch, unit.width)
        if rows == p.rows(name):  # all rows: each step's row is written before it is read
            o = self.offset(name)
            spans = [p.present[m] for m in unit.members]
            array = self._blank(shape, o + max(a for a, _ in spans), o + min(b for _, b in spans))
        else:
            array = zeros(shape, self.dtype)
        self.unit_base[id(unit)] = array
        for member, (a, b) in zip(unit.members, unit.spans, strict=True):
            self._set(member, array[..., a:b], rows)
        if stored:
            self._fill_boundary(unit)

    def _blank(self, shape: tuple, lo: int, hi: int) -> np.ndarray:
        """An array of ``shape`` whose rows ``lo..hi-1`` (axis -3) the pass writes before
        any read: only the others are zeroed (see :func:`zeros`)."""
        array = np.empty(shape, self.dtype)
        lo = max(lo, 0)
        hi = max(lo, min(hi, shape[-3]))
        array[..., :lo, :, :] = 0.0
        array[..., hi:, :, :] = 0.0
        return array

    def segmented(self, part: Part) -> bool:
        """Whether the loop is scanned segment by segment (checkpointing)."""
        return bool(self.segment) and any(u.name in self.ringed for u in part.units)

    def _ringable(self, unit: Unit, part: Part) -> bool:
        """Checkpointing keeps a unit for one segment only when nothing outside its loop
        reads it, it is no output, its layer values may be overwritten, and its loop
        runs forward unretimed."""
        p = self.program
        if not self.segment or part.sign < 0 or any(part.offset.values()):
            return False
        if unit.is_layer and unit.name not in p.reuse:
            return False
        outputs = set(p.graph.output_nodes())
        weighted = {r.source for q in p.parts for u in q.units for r in u.blocks}
        return not any(
            p.external[m] or m in outputs or p.pad[m][1] or m in weighted for m in unit.members
        )

    def _set(self, name: str, array: np.ndarray, rows: int) -> None:
        self.base[name] = array
        self.rowed[name] = np.moveaxis(array, -3, 0) if array.ndim == 4 else array
        self.wrap[name] = rows

    def _fill_boundary(self, unit: Unit) -> None:
        for member in unit.members:
            self._fill_boundary_of(member)

    def _fill_boundary_of(self, name: str) -> None:
        before, after = self.program.pad[name]
        for t in [*range(-before, 0), *range(self.steps, self.steps + after)]:
            value = self.initial.get((name, t))
            if value is not None:
                self.rowed[name][(t + before) % self.wrap[name]] = value

    def unit_rows(self, unit: Unit, lo: int, hi: int) -> np.ndarray:
        """A unit's whole array (every member's columns) at steps ``lo <= t < hi``."""
        o = self.offset(unit.name)
        return self.unit_base[id(unit)][..., lo + o : hi + o, :, :]

    def unit_rowed(self, unit: Unit) -> np.ndarray:
        """A unit's whole array with the step axis first."""
        array = self.unit_base[id(unit)]
        return np.moveaxis(array, -3, 0) if array.ndim == 4 else array

    def rows(self, name: str, lo: int, hi: int) -> np.ndarray:
        """Node ``name``'s values at steps ``lo <= t < hi`` (boundary rows where outside)."""
        o = self.offset(name)
        return self.base[name][..., lo + o : hi + o, :, :]

    # ---- weights --------------------------------------------------------------------------

    def block_weight(self, unit: Unit, j: int, transposed: bool = False) -> np.ndarray:
        """Block ``j``'s weights of every member stacked: ``(*lead, width, n_source)``."""
        key = (id(unit), j, transposed)
        if key not in self._weights:
            w = np.concatenate([self.params[n] for n in unit.weights[j]], axis=-2)
            self._weights[key] = np.ascontiguousarray(np.swapaxes(w, -1, -2)) if transposed else w
        return self._weights[key]

    def step_weight(self, unit: Unit, j: int, transposed: bool = False) -> np.ndarray:
        """:meth:`block_weight` for a product at each step, in the memory order BLAS runs
        it fastest (a view of the other layout, see :func:`~.codegen.column_major`)."""
        weight = self.block_weight(unit, j, transposed)
        if not codegen.column_major(weight.shape, self.dtype, self.batch):
            return weight
        return np.swapaxes(self.block_weight(unit, j, not transposed), -1, -2)

    def bias(self, unit: Unit) -> np.ndarray | None:
        """The members' biases side by side, ``(*lead, width)``, or ``None``."""
        if not any(unit.biases):
            return None
        key = (id(unit), "bias")
        if key not in self._weights:
            parts = []
            for names, (a, b) in zip(unit.biases, unit.spans, strict=True):
                total = np.zeros((*self.lead, b - a), self.dtype)
                for name in names:
                    total = total + self.params[name]
                parts.append(total)
            self._weights[key] = np.concatenate(parts, axis=-1)
        return self._weights[key]

    def op_params(self, unit: Unit, ndim: int) -> dict[str, np.ndarray]:
        """An op's parameters by role, each shaped to broadcast against a value of
        ``ndim`` axes (``(*lead, B, n)`` at one step, ``(*lead, T, B, n)`` for a sequence)."""
        if not unit.params:
            return {}
        key = (id(unit), "params", ndim)
        if key not in self._weights:
            lead = len(self.lead)
            spread = {}
            for role, name in unit.params:
                p = self.params[name]
                ones = (1,) * (ndim - p.ndim)
                spread[role] = p.reshape(p.shape[:lead] + ones + p.shape[lead:]) if lead else p
            self._weights[key] = spread
        return self._weights[key]

    # ---- the pass -------------------------------------------------------------------------

    def run(self) -> None:
        """Compute every node at every step."""
        for part in self.program.parts:
            if part.loop:
                self._scan(part)
            else:
                unit = part.units[0]
                a, b = self.program.present[unit.name]
                if a < b:
                    out = self.rows(unit.name, a, b)
                    out[...] = self.sequence_value(unit, a, b)

    def sequence_value(self, unit: Unit, a: int, b: int, source=None) -> np.ndarray:
        """The unit's value at steps ``a <= t < b`` from its sources, all steps at once
        (``source(name, lo, hi)`` reads a source's rows; default: this run's arrays)."""
        source = source or self.rows
        if not unit.is_layer:
            xs = [source(r.source, a - r.delay, b - r.delay) for r in unit.sources]
            forward = unit.op.forward
            assert forward is not None, "every op row but input and layer has a forward"
            return np.asarray(forward(*xs, **self.op_params(unit, len(self.lead) + 3)))
        z = self.layer_sum(unit, a, b, source=source)
        for lo, hi, act in unit.runs:
            act.apply_inplace(z[..., lo:hi])
        return z

    def layer_sum(
        self, unit: Unit, a: int, b: int, reads=None, source=None, out=None, bias=True
    ) -> np.ndarray:
        """``sum W x + identity reads + bias`` over steps ``a..b-1`` (``reads``: which;
        ``bias``: whether to add it), into ``out`` if given."""
        source = source or self.rows
        n = b - a
        if out is None:
            out = np.empty((*self.lead, n, self.batch, unit.width), self.dtype)
        flat = out.reshape(*out.shape[:-3], n * self.batch, unit.width)
        if not np.may_share_memory(flat, out):  # a copy: work on a fresh array instead
            return self._copied_into(out, self.layer_sum(unit, a, b, reads, source, bias=bias))
        started = False
        for j, r in enumerate(unit.blocks):
            if reads is None or r in reads:
                x = source(r.source, a - r.delay, b - r.delay)
                x = x.reshape(*x.shape[:-3], n * self.batch, x.shape[-1])
                weight = self.block_weight(unit, j, transposed=True)
                if started:
                    flat += x @ weight
                else:
                    np.matmul(x, weight, out=flat)
                started = True
        if not started:
            out[...] = 0.0
        for r in unit.identity:
            if reads is None or r in reads:
                out += source(r.source, a - r.delay, b - r.delay)
        added = self.bias(unit) if bias else None
        if added is not None:
            out += added[..., None, None, :]
        return out

    def large_step(self, unit: Unit) -> bool:
        """Whether one step of ``unit`` holds :data:`~.codegen.LARGE_STEP` entries or more:
        then its elementwise work costs less at its step, in cache, than in one pass over
        every step in memory."""
        return self.batch * unit.width * math.prod(self.lead) >= codegen.LARGE_STEP

    def bias_per_step(self, unit: Unit) -> bool:
        """Whether a loop layer's scan adds its bias at each step, first (the same sum in
        the same order): a large step's."""
        return self.bias(unit) is not None and self.large_step(unit)

    @staticmethod
    def _copied_into(out: np.ndarray, value: np.ndarray) -> np.ndarray:
        out[...] = value
        return out

    def _scan(self, part: Part) -> None:
        steps = self.step_programs(part)
        if self.segmented(part):
            for t0 in range(0, self.steps, self.segment):
                t1 = min(self.steps, t0 + self.segment)
                self._save_checkpoint(part, t0)
                self.replay_segment(part, t0, t1, steps)
            return
        self.prefill(part, 0, self.steps)
        steps(*part.scan_range(self.program.steps))

    def fills_afresh(self, unit: Unit) -> bool:
        """Whether a loop layer's step writes its sum afresh: nothing enters it from
        outside the loop (every read is inside, its bias, if any, added at its step), so
        :meth:`prefill` leaves its rows alone."""
        return all(r.lag is not None for r in unit.reads()) and (
            self.bias(unit) is None or self.bias_per_step(unit)
        )

    def prefill(self, part: Part, a: int, b: int) -> None:
        """What enters the loop from outside, at steps ``a..b-1`` at once."""
        outside = {r for unit in part.units for r in unit.reads() if r.lag is None}
        for unit in part.units:
            if not unit.is_layer or self.fills_afresh(unit):
                continue
            bias = not self.bias_per_step(unit)
            if unit.name in self.ringed:
                index = (np.arange(a, b) + self.offset(unit.name)) % self.wrap[unit.name]
                self.unit_base[id(unit)][..., index, :, :] = self.layer_sum(
                    unit, a, b, reads=outside, bias=bias
                )
            else:
                out = self.unit_rows(unit, a, b)
                self.layer_sum(unit, a, b, reads=outside, out=out, bias=bias)

    def replay_segment(self, part: Part, t0: int, t1: int, steps) -> None:
        """Compute steps ``t0..t1-1`` of a loop scanned in segments (again, when its
        backward pass reaches them: from the checkpoint kept before ``t0``)."""
        for unit in part.units:
            saved = self.checkpoints.get((id(unit), t0))
            if saved is not None:
                self.unit_base[id(unit)][..., self._ring_rows(unit, part, t0), :, :] = saved
        self.prefill(part, t0, t1)
        steps(t0, t1)

    def ring_index(self, unit: Unit, a: int, b: int) -> np.ndarray:
        """Rows of steps ``a..b-1`` in a unit's array (wrapped for a segment's ring)."""
        return (np.arange(a, b) + self.offset(unit.name)) % self.wrap[unit.name]

    def _ring_rows(self, unit: Unit, part: Part, t0: int) -> np.ndarray:
        return self.ring_index(unit, t0 - part.depth + 1, t0)

    def _save_checkpoint(self, part: Part, t0: int) -> None:
        """Keep the rows a segment starting at ``t0`` reads from before it (its states)."""
        if part.depth == 1:
            return
        for unit in part.units:
            if unit.name in self.ringed and any(self.program.carried[m] for m in unit.members):
                rows = self._ring_rows(unit, part, t0)
                array = self.unit_base[id(unit)]
                self.checkpoints[(id(unit), t0)] = array[..., rows, :, :].copy()

    def row_text(self, name: str, t: str, delay: int = 0) -> str:
        """The text of the row of ``name`` read at step ``t - delay``."""
        return row_index(t, self.offset(name) - delay, self.wrap[name], self.program.rows(name))

    def step_programs(self, part: Part):
        """The loop's step program, compiled once: ``scan(lo, hi)`` computes scan steps
        ``lo..hi-1``, every unit in step order, as straight-line numpy calls."""
        code = Code()
        code.line("for s in range(lo, hi):", 0)
        guard = any(part.offset.values())  # a retimed unit skips the scan steps it lacks
        for unit in part.units:
            r0 = part.offset[unit.name]
            t = "s" if (part.sign, r0) == (1, 0) else "t"
            if t == "t":
                code.line(f"t = s - {r0}" if part.sign > 0 else f"t = {r0} - s", 1)
            indent = 1
            if guard:
                code.line(f"if 0 <= {t} < {self.steps}:", 1)
                indent = 2
            if unit.is_layer:
                self._layer_code(code, unit, t, indent)
            else:
                self._op_code(code, unit, t, indent)
        return code.function(f"scan_part_{part.index}", "lo, hi")

    def _layer_code(self, code: Code, unit: Unit, t: str, indent: int) -> None:
        """Emit a loop layer's step: the sum of what it reads inside the loop (added to
        what :meth:`prefill` left, or written afresh where it left nothing), then its
        activations in place; a sum of one read goes straight into the activation."""
        rowed = self.unit_rowed(unit)
        code.line(f"z = {code.bind(rowed, 'out')}[{self.row_text(unit.name, t)}]", indent)
        written = not self.fills_afresh(unit)  # z holds what prefill wrote there
        bias = self.bias(unit)
        if bias is not None and self.bias_per_step(unit):  # as prefill left it out
            added = code.bind(bias[..., None, :], "bias")  # (*lead, 1, n)
            code.line(f"z += {added}" if written else f"z[...] = {added}", indent)
            written = True
        tmp = None
        for j, r in enumerate(unit.blocks):
            if r.lag is None:
                continue
            x = code.bind(self.rowed[r.source], "x")
            weight = self.step_weight(unit, j, transposed=True)
            row = f"{x}[{self.row_text(r.source, t, r.delay)}]"
            if not written:
                code.line(product_into(code, row, weight, "z", rowed[0]), indent)
                written = True
                continue
            if tmp is None:
                scratch = np.empty((*self.lead, self.batch, unit.width), self.dtype)
                tmp = code.bind(scratch, "tmp")
            code.line(product_into(code, row, weight, tmp, scratch), indent)
            code.line(f"z += {tmp}", indent)
        reads = [
            f"{code.bind(self.rowed[r.source], 'x')}[{self.row_text(r.source, t, r.delay)}]"
            for r in unit.identity
            if r.lag is not None
        ]
        whole = len(unit.runs) == 1
        source = None  # the one read the activation takes as its input
        if not written and len(reads) == 1 and whole and unit.runs[0][2].forward_lines:
            source = reads.pop()
        for x in reads:
            code.line(f"z += {x}" if written else f"z[...] = {x}", indent)
            written = True
        for a, b, act in unit.runs:
            z = "z" if whole else "v"
            if not whole:
                code.line(f"v = z[..., {a}:{b}]", indent)
            if act.forward_lines is not None:  # the row's own lines: no call
                for line in act.forward_lines(z, code.named, source):
                    code.line(line, indent)
            else:
                code.line(f"{code.bind(act.forward_into or act.apply_inplace, 'act')}({z})", indent)
        if self._probed(unit):
            probe = self.probes[unit.name] = np.zeros(self.steps, self.dtype)
            code.line(f"{code.bind(probe, 'probe')}[{t}] = {self._step_sum(code, unit, t)}", indent)

    def _step_sum(self, code: Code, unit: Unit, t: str) -> str:
        """The text of the sum of a loop layer's values ``z`` at step ``t``: one BLAS dot
        with ones where the step's values are contiguous (half the time of ``add.reduce``
        at an LSTM's gates of hidden 128, batch 32), ``add.reduce`` elsewhere."""
        rowed = self.unit_rowed(unit)
        if self.lead or not rowed.flags.c_contiguous:
            return f"{code.named(np.add.reduce)}(z, None)"
        flat = code.bind(rowed.reshape(rowed.shape[0], -1), "flat")
        ones = code.bind(np.ones(rowed[0].size, self.dtype), "ones")
        return f"{flat}[{self.row_text(unit.name, t)}].dot({ones})"

    def overwrites(self, unit: Unit) -> bool:
        """Whether the backward pass writes a loop layer's gradient over its values: one
        whose values no weight gradient reads (the plan's ``reuse``), unless its steps are
        small and its values take at most :data:`~.codegen.KEPT_VALUES` bytes (then its
        factors for all steps at once cost less than computing each at its step)."""
        if unit.name not in self.program.reuse:
            return False
        small = not self.large_step(unit) and unit.name not in self.ringed
        return not (small and self.unit_base[id(unit)].nbytes <= codegen.KEPT_VALUES)

    def _probed(self, unit: Unit) -> bool:
        """Whether a loop layer's values are summed at each step, in cache, as a test for
        NaN and infinities: those the backward pass overwrites, where a step is large
        (elsewhere one pass over every step afterwards costs less)."""
        p = self.program
        return (
            self.overwrites(unit)
            and self.large_step(unit)
            and unit.name not in self.ringed
            and all(p.present[m] == (0, self.steps) for m in unit.members)
        )

    def _op_code(self, code: Code, unit: Unit, t: str, indent: int) -> None:
        reads = [
            f"{code.bind(self.rowed[r.source], 'x')}[{self.row_text(r.source, t, r.delay)}]"
            for r in unit.sources
        ]
        xs = ", ".join(reads)
        ps = self.op_params(unit, len(self.lead) + 2)
        keywords = f", **{code.bind(ps, 'ps')}" if ps else ""
        out = f"{code.bind(self.rowed[unit.name], 'out')}[{self.row_text(unit.name, t)}]"
        lines = None
        if unit.op.forward_lines is not None and not ps:  # the row's own lines: no call
            lines = unit.op.forward_lines(out, reads, code.named)
        if lines is not None:
            for line in lines:
                code.line(line, indent)
        elif unit.op.forward_into is not None:
            into = code.bind(unit.op.forward_into, "into")
            code.line(f"{into}({out}, {xs}{keywords})", indent)
        else:
            forward = code.bind(unit.op.forward, "forward")
            code.line(f"{out} = {forward}({xs}{keywords})", indent)

    # ---- after the pass -------------------------------------------------------------------

    def first_nonfinite(self, units=None) -> list:
        """Per model (one entry without an ensemble), ``(name, t)`` of the first stored
        value in the unrolled order that is not finite, or ``None``; of the members of
        ``units`` (a test of a unit) only, if given."""
        p = self.program
        models = self.lead[0] if self.lead else 1
        found: list[list] = [[] for _ in range(models)]
        for part in p.parts:
            for unit in part.units:
                if units is not None and not units(unit):
                    continue
                for member in unit.members:
                    a, b = p.present[member]
                    if self.wrap[member] != p.rows(member) or a >= b:
                        continue
                    probe = self.probes.get(unit.name)
                    if probe is not None and np.isfinite(probe).all():
                        continue  # (a sum of finite values may overflow: then look at each)
                    values = self.rows(member, a, b)
                    if all_finite(values):
                        continue
                    bad = ~np.isfinite(values)
                    per_step = bad.reshape(*bad.shape[:-2], -1).any(axis=-1)
                    per_step = np.broadcast_to(per_step, (*self.lead, b - a)).reshape(models, -1)
                    for m in np.flatnonzero(per_step.any(axis=1)):
                        found[m].append((member, a + int(np.argmax(per_step[m]))))
        return [self._earliest(instances) for instances in found]

    def _earliest(self, instances):
        if not instances:
            return None
        p = self.program
        if p.graph.is_causal():
            rank = {n: i for i, n in enumerate(p.graph.step_order())}
            return min(instances, key=lambda inst: (inst[1], rank[inst[0]]))
        position = {inst: i for i, inst in enumerate(p.unrolled.order)}
        return min(instances, key=position.__getitem__)
