"""Numeric backpropagation through time: compile the unrolled graph, run forward, run backward.

:class:`Program` turns an :class:`~unroll.unrolled.Unrolled` graph into a flat list of
instructions over integer slots, once (it is cached on the unrolled object). Layers that
read the same sources at the same step (an LSTM's four gates) are fused into one matrix
product per source; products with input sequences are hoisted out of the time loop.

:func:`bptt` runs the program forward, storing every value, then walks it in reverse as
a vector-Jacobian product, *adding* into the gradient of every node instance and of every
tied weight. The backward vector is carried with a common power-of-two scale ``2**L``,
renormalised at step boundaries, so gradient norms of ``10**-3000`` are reported exactly
where plain float64 would give 0 (and ``10**3000`` where it would overflow).
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .errors import InputError, LimitError
from .losses import loss_cotangents
from .ops import ACTIVATIONS, OPS, Activation
from .unrolled import Instance, Unrolled

__all__ = [
    "DEFAULT_MAX_MEMORY",
    "INSTANCE_BYTES",
    "MEMORY_OVERHEAD",
    "BPTTResult",
    "Program",
    "available_memory",
    "bptt",
    "check_memory",
    "compile_program",
    "estimate_memory",
]

#: :func:`bptt` refuses runs estimated (:func:`estimate_memory`) above this many bytes, or
#: above the available memory if that is less, unless told otherwise (``max_memory``).
DEFAULT_MAX_MEMORY = 8 * 2**30
#: Copies of every node value a run holds at its peak: the value, its gradient, the
#: pre-activation, hoisted input products and temporaries (measured: 3 to 5).
MEMORY_OVERHEAD = 5
#: Bytes of bookkeeping per node instance: the compiled program's slots and instructions
#: and the stored arrays' headers (measured: 1.6 to 2.5 kB).
INSTANCE_BYTES = 2560

_HIGH, _LOW = 2.0**64, 2.0**-64
_LOG10_2 = math.log10(2.0)
_MM, _HOIST, _ID = 0, 1, 2  # kinds of term in a fused layer's sum
_FLUSH_EVERY = 256  # checkpoints between batched weight-gradient flushes (bounds memory)
_PEAK_EVERY = 4  # checkpoints between checks of the live gradients' peak


# ---- compile --------------------------------------------------------------------------------


@dataclass
class _Group:
    """Layer nodes fused into one instruction: same weighted sources, columns side by side."""

    index: int
    members: list[str]
    spans: list[tuple[int, int]]
    runs: list[tuple[int, int, Activation]]
    blocks: list[tuple[str, int]]
    weights: list[list[str]]  # weights[j][k]: member k's weight on block j
    identity: list[tuple[str, int]]
    biases: list[tuple[str, ...]]
    width: int


def _layer_groups(graph, pruned) -> list[_Group]:
    """Group layer nodes by the multiset of (source, delay) of their weighted edges."""
    order = {n: i for i, n in enumerate(graph.nodes)}
    buckets: dict[tuple, list[str]] = {}
    for node in graph.nodes.values():
        if node.kind != "layer":
            continue
        edges = graph.in_edges(node.name)
        signature = tuple(sorted((e.source, e.delay) for e in edges if e.weight is not None))
        fusable = signature and all(e.weight for e in edges) and node.name not in pruned
        buckets.setdefault(signature if fusable else ("single", node.name), []).append(node.name)
    groups = []
    for names in sorted(buckets.values(), key=lambda ns: order[ns[0]]):
        nodes = sorted((graph.nodes[n] for n in names), key=lambda n: (n.activation, order[n.name]))
        groups.append(_make_group(graph, len(groups), nodes))
    return groups


def _make_group(graph, index, nodes) -> _Group:
    spans, runs, col = [], [], 0
    for node in nodes:
        spans.append((col, col + node.size))
        if runs and runs[-1][2].name == node.activation:
            runs[-1] = (runs[-1][0], col + node.size, runs[-1][2])
        else:
            runs.append((col, col + node.size, ACTIVATIONS[node.activation]))
        col += node.size
    per_member = [
        sorted(
            ((e.source, e.delay), e.weight) for e in graph.in_edges(n.name) if e.weight is not None
        )
        for n in nodes
    ]
    blocks = [src for src, _ in per_member[0]]
    weights = [[member[j][1] for member in per_member] for j in range(len(blocks))]
    first = nodes[0].name
    identity = [(e.source, e.delay) for e in graph.in_edges(first) if e.weight is None]
    return _Group(
        index,
        [n.name for n in nodes],
        spans,
        runs,
        blocks,
        weights,
        identity,
        [n.biases for n in nodes],
        col,
    )


class Program:
    """The unrolled graph as a flat list of forward instructions and their reverse.

    Attributes
    ----------
    instances : list of (name, t)
        Boundary instances, then computed instances in topological order; the index of an
        instance is its slot.
    slot : dict
        ``(name, t) -> slot``.
    forward : list
        One instruction per fused layer group instance or elementwise op instance.
    backward : list
        The forward instructions reversed, with renormalisation checkpoints at step
        boundaries.
    """

    def __init__(self, unrolled: Unrolled):
        u, g = unrolled, unrolled.graph
        self.unrolled = u
        self.instances = list(u.boundary) + list(u.order)
        self.slot = {inst: i for i, inst in enumerate(self.instances)}
        self.param_shapes = u.param_shapes
        self.groups = _layer_groups(g, u._pruned)
        self.group_of = {m: grp for grp in self.groups for m in grp.members}
        self.n_slots = len(self.instances)
        self.weight_table: list[tuple[int, int]] = []  # (group, block) per weight index
        self._weight_index: dict[tuple[int, int], int] = {}
        self.hoisted: list[tuple[str, int]] = []  # (input name, weight index)
        self._hoist_index: dict[int, int] = {}
        self.bias_carrier: dict[int, int] = {}  # group -> hoisted product that adds its bias
        self.input_slots = {
            n: [self.slot[(n, t)] for t in u.input_steps(n)] for n in g.input_nodes()
        }
        self._rows = {n: {t: i for i, t in enumerate(u.input_steps(n))} for n in g.input_nodes()}
        self.forward, self._meta = [], []
        self._compile()
        self._schedule_backward()

    # -- forward instructions --

    def _compile(self) -> None:
        g, done = self.unrolled.graph, set()
        for name, t in self.unrolled.order:
            kind = g.nodes[name].kind
            if kind == "input":
                continue
            if kind == "layer":
                grp = self.group_of[name]
                if (grp.index, t) not in done:
                    done.add((grp.index, t))
                    self._compile_group(grp, t)
            else:
                self._compile_op(name, t)

    def _weight(self, grp: _Group, j: int) -> int:
        key = (grp.index, j)
        if key not in self._weight_index:
            self._weight_index[key] = len(self.weight_table)
            self.weight_table.append(key)
        return self._weight_index[key]

    def _compile_group(self, grp: _Group, t: int) -> None:
        g, terms = self.unrolled.graph, []
        for j, (src, delay) in enumerate(grp.blocks):
            inst = (src, t - delay)
            if inst not in self.slot:
                continue
            k = self._weight(grp, j)
            if g.nodes[src].kind == "input" and 0 <= inst[1] < self.unrolled.steps:
                if k not in self._hoist_index:
                    self._hoist_index[k] = len(self.hoisted)
                    self.hoisted.append((src, k))
                    if any(grp.biases):
                        self.bias_carrier.setdefault(grp.index, self._hoist_index[k])
                terms.append(
                    (_HOIST, self.slot[inst], k, self._hoist_index[k], self._rows[src][inst[1]])
                )
            else:
                terms.append((_MM, self.slot[inst], k, 0, 0))
        for src, delay in grp.identity:
            if (src, t - delay) in self.slot:
                terms.append((_ID, self.slot[(src, t - delay)], 0, 0, 0))
        carrier = self.bias_carrier.get(grp.index)
        add_bias = any(grp.biases) and not any(
            kind == _HOIST and h == carrier for kind, _, _, h, _ in terms
        )
        members = [self.slot[(m, t)] for m in grp.members]
        out = self.n_slots
        self.n_slots += 1
        self.forward.append(_group_forward(grp, terms, members, out, add_bias))
        self._meta.append(
            (
                t,
                members,
                [s for _, s, *_ in terms],
                out,
                _group_backward(grp, terms, members, out, t),
            )
        )

    def _compile_op(self, name: str, t: int) -> None:
        u = self.unrolled
        row = OPS[u.graph.nodes[name].kind]
        ins = [self.slot[src] for _, src in u.sources((name, t))]
        out = self.slot[(name, t)]
        size = u.graph.nodes[name].size
        self.forward.append(_op_forward(row, ins, out, size))
        self._meta.append((t, [out], ins, None, _op_backward(row, ins, out)))

    # -- backward schedule and liveness of the scaled gradients --

    def _schedule_backward(self) -> None:
        """Reverse the program, add checkpoints at step changes, find what is live at each.

        A slot's scaled gradient is *live* at a checkpoint between its first write (by a
        reader, going backward) and its finish (its own instruction, or its last write
        for a leaf); live gradients are rescaled together there. ``finish`` (``-1``: never
        written) and ``segment_array`` (the checkpoint whose scale a finished gradient
        carries) are arrays over slots.
        """
        n = self.n_slots
        backward, steps, checkpoints = [], [], []
        first_write, last_write, own = [-1] * n, [-1] * n, [-1] * n
        previous = None
        for t, outs, ins, _, instruction in reversed(self._meta):
            if t != previous:
                checkpoints.append(len(backward))
                backward.append(None)
                steps.append(t)
                previous = t
            pos = len(backward)
            backward.append(instruction)
            steps.append(t)
            for s in outs:
                own[s] = pos
            for s in ins:
                if first_write[s] < 0:
                    first_write[s] = pos
                last_write[s] = pos
        if not checkpoints:
            checkpoints.append(0)
            backward.append(None)
            steps.append(0)
        positions = np.array(checkpoints)
        own_at, first_at = np.array(own), np.array(first_write)
        self.finish = np.where(own_at >= 0, own_at, np.array(last_write))
        self.segment_array = np.maximum(
            np.searchsorted(positions, self.finish, side="right") - 1, 0
        )
        lo = np.searchsorted(positions, first_at, side="right")
        hi = np.searchsorted(positions, self.finish, side="left")
        live: list[list[int]] = [[] for _ in checkpoints]
        for s in np.flatnonzero((first_at >= 0) & (hi > lo)).tolist():
            for c in range(int(lo[s]), int(hi[s])):
                live[c].append(s)
        for c, pos in enumerate(checkpoints):
            backward[pos] = _checkpoint(c, live[c])
        self.backward = backward
        self.backward_steps = steps
        self.checkpoints = checkpoints
        del self._meta  # the per-instruction slot lists were needed for the schedule only

    def step_range(self, first: int, last: int) -> tuple[int, int]:
        """Backward positions covering steps ``first..last`` (a causal program only)."""
        if not hasattr(self, "_step_spans"):
            spans: dict[int, list[int]] = {}
            for pos, t in enumerate(self.backward_steps):
                spans.setdefault(t, [pos, pos])[1] = pos
            self._step_spans = spans
        return self._step_spans[last][0], self._step_spans[first][1] + 1


def compile_program(unrolled: Unrolled) -> Program:
    """Compile ``unrolled`` once; the program is cached on the unrolled object."""
    if "program" not in unrolled._programs:
        with _gc_paused():  # compiling makes many small containers and no cycles
            unrolled._programs["program"] = Program(unrolled)
    return unrolled._programs["program"]


@contextlib.contextmanager
def _gc_paused():
    """Pause the cyclic garbage collector, whose full passes grow with every live object."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


# ---- instructions ---------------------------------------------------------------------------


def _group_forward(grp: _Group, terms, members, out, add_bias):
    """The fused layers' forward: one product per source, then each run's activation."""
    spans, runs, gi, width = grp.spans, grp.runs, grp.index, grp.width
    products = [(s, k) for kind, s, k, _, _ in terms if kind == _MM]
    views = [(kind == _HOIST, s, h, row) for kind, s, _, h, row in terms if kind != _MM]
    single_run, act = len(runs) == 1, runs[0][2].forward
    spread = len(members) > 1

    def forward(V, R):
        if products:  # a fresh array to add the rest into
            s, k = products[0]
            z = V[s] @ R.WT[k]
            for s, k in products[1:]:
                z += V[s] @ R.WT[k]
            rest = views
        elif views:
            hoisted, s, h, row = views[0]
            z = (R.P[h][row] if hoisted else V[s]).copy()
            rest = views[1:]
        else:
            z, rest = np.zeros((R.batch, width), R.dtype), ()
        for hoisted, s, h, row in rest:
            z += R.P[h][row] if hoisted else V[s]
        if add_bias:
            z += R.Bc[gi]
        if single_run:
            y = act(z)
        else:
            y = np.empty_like(z)
            for a, b, activation in runs:
                y[:, a:b] = activation.forward(z[:, a:b])
        V[out] = y
        if spread:
            for s, (a, b) in zip(members, spans, strict=True):
                V[s] = y[:, a:b]
        else:
            V[members[0]] = y

    return forward


def _group_backward(grp: _Group, terms, members, out, step):
    spans, runs, gi = grp.spans, grp.runs, grp.index
    single = len(members) == 1
    derivative = runs[0][2].derivative
    has_bias = any(grp.biases)

    def backward(V, G, R):
        y = V[out]
        if single:
            g = G[members[0]]
            if g is None:
                return
            d = derivative(y)
            dz = g if d is None else g * d
        else:
            grads = [G[s] for s in members]
            if any(g is None for g in grads):
                if all(g is None for g in grads):
                    return
                grads = [
                    np.zeros_like(y[:, a:b]) if g is None else g
                    for g, (a, b) in zip(grads, spans, strict=True)
                ]
            g = np.concatenate(grads, axis=1)
            if len(runs) == 1:
                dz = runs[0][2].vjp(g, y)
            else:
                dz = np.empty_like(y)
                for a, b, activation in runs:
                    dz[:, a:b] = activation.vjp(g[:, a:b], y[:, a:b])
        for kind, s, k, _, _ in terms:
            if kind == _ID:
                G[s] = dz if G[s] is None else G[s] + dz
                continue
            R.pending[k].append((step, dz, s, kind))  # weight gradient: batched in R.flush()
            if kind == _MM:
                gs = dz @ R.Wc[k]
                G[s] = gs if G[s] is None else G[s] + gs
        if has_bias:
            R.pending_bias[gi].append((step, dz))

    return backward


def _op_forward(row, ins, out, size):
    if not ins:  # an add whose inputs are all absent at this step

        def forward(V, R):
            V[out] = np.zeros((R.batch, size), R.dtype)
    elif row.kind == "add" and len(ins) == 2:
        a, b = ins

        def forward(V, R):
            V[out] = V[a] + V[b]
    elif row.kind == "mul" and len(ins) == 2:
        a, b = ins

        def forward(V, R):
            V[out] = V[a] * V[b]
    else:
        fn = row.forward

        def forward(V, R):
            V[out] = fn(*[V[s] for s in ins])

    return forward


def _op_backward(row, ins, out):
    if row.kind == "mul" and len(ins) == 2:
        a, b = ins

        def backward(V, G, R):
            g = G[out]
            if g is None:
                return
            ga, gb = g * V[b], g * V[a]
            G[a] = ga if G[a] is None else G[a] + ga
            G[b] = gb if G[b] is None else G[b] + gb
    elif row.kind == "add":

        def backward(V, G, R):
            g = G[out]
            if g is None:
                return
            for s in ins:
                G[s] = g if G[s] is None else G[s] + g
    else:
        vjp = row.vjp

        def backward(V, G, R):
            g = G[out]
            if g is None:
                return
            for s, gs in zip(ins, vjp(g, V[out], *[V[s] for s in ins]), strict=True):
                G[s] = gs if G[s] is None else G[s] + gs

    return backward


def _checkpoint(index: int, live: list[int]):
    check_peak = index % _PEAK_EVERY == 0

    def checkpoint(V, G, R):
        cots = R.cot_at.get(index)
        if check_peak or R.L:
            R.checkpoint(index, live, G, cots or (), check_peak)
        elif cots is not None:  # scale 1 (L_hist already 0): cotangents go in as they are
            for s, c in cots:
                g = G[s]
                G[s] = c if g is None else g + c

    return checkpoint


# ---- running --------------------------------------------------------------------------------


class _Run:
    """The state of one bptt call: values, scaled gradients, fused weights, accumulators."""

    def __init__(self, program: Program, params, batch, dtype, input_grads, record):
        self.program, self.batch, self.dtype = program, batch, dtype
        self.input_grads, self.record = input_grads, record
        self.records: list = []
        groups = program.groups
        self.Wc = [
            np.concatenate([params[w] for w in groups[gi].weights[j]], axis=0)
            for gi, j in program.weight_table
        ]
        self.WT = [np.ascontiguousarray(w.T) for w in self.Wc]
        self.Bc = [_bias_of(grp, params) for grp in groups]
        self.A_true = [np.zeros_like(w) for w in self.Wc]
        self.Ab_true = [None if b is None else np.zeros_like(b) for b in self.Bc]
        self.pending: list[list] = [[] for _ in self.Wc]
        self.pending_bias: list[list] = [[] for _ in self.Bc]
        self.hoisted_weights = {k for _, k in program.hoisted}
        self.G: list = []
        self.L = 0
        self.L_hist = np.zeros(len(program.checkpoints), dtype=np.int64)
        self.cot_at: dict[int, list] = {}

    def checkpoint(self, index, live, G, cots, check_peak):
        """Renormalise the live gradients if they left [2**-64, 2**64]; inject cotangents.

        The peak of the live gradients is checked every few steps (growth within a few
        steps cannot cross the 2**959 margin up to float64's limit); cotangents are
        checked when they arrive, unless the scale is still 1.
        """
        peak = 0.0
        if check_peak:
            for s in live:
                g = G[s]
                if g is not None:
                    peak = max(peak, float(np.max(np.abs(g))))
        cot_peak = 0.0
        if cots and (self.L or peak == 0.0):
            cot_peak = max(float(np.max(np.abs(c))) for _, c in cots)
        scaled_cot = math.ldexp(cot_peak, -self.L) if cot_peak else 0.0
        if (
            peak > _HIGH
            or 0.0 < peak < _LOW
            or scaled_cot > _HIGH
            or (peak == 0.0 and self.L and 0.0 < scaled_cot < _LOW)
        ):
            exponents = [math.frexp(peak)[1] + self.L] if peak else []
            exponents += [math.frexp(cot_peak)[1]] if cot_peak else []
            self._rescale(max(exponents), live, G)
        for s, c in cots:
            c = np.ldexp(c, -self.L) if self.L else c
            G[s] = c if G[s] is None else G[s] + c
        self.L_hist[index] = self.L
        if index % _FLUSH_EVERY == 0:
            self.flush()

    def _rescale(self, new_L, live, G):
        self.flush()
        shift = self.L - new_L
        for s in live:
            if G[s] is not None:
                G[s] = np.ldexp(G[s], shift)
        self.L = new_L

    def flush(self):
        """Add the pending per-step weight gradients, scaled by ``2**L``, into the totals.

        Each step's ``dz`` was set aside by the fused layer's backward; here they are
        stacked and multiplied by the stacked sources in one product per weight, which is
        what makes small nets fast. Inputs' gradients through hoisted products land here.
        """
        for k, entries in enumerate(self.pending):
            if entries:
                self._flush_weight(k, entries)
                entries.clear()
        for gi, entries in enumerate(self.pending_bias):
            if entries:
                dz = np.stack([d for _, d in entries])
                self.Ab_true[gi] += self._unscale(dz.sum(axis=(0, 1)))
                if self.record:
                    for (t, _), db in zip(entries, dz.sum(axis=1), strict=True):
                        self.records.append((t, -1 - gi, db, self.L))
                entries.clear()

    def _flush_weight(self, k, entries):
        dz = np.stack([d for _, d, _, _ in entries])
        src = np.stack([self.V[s] for _, _, s, _ in entries])
        self.A_true[k] += self._unscale(np.tensordot(dz, src, axes=([0, 1], [0, 1])))
        if self.record:
            per_step = np.einsum("nbk,nbi->nki", dz, src)
            self.records.extend(
                (t, k, c, self.L) for (t, _, _, _), c in zip(entries, per_step, strict=True)
            )
        if self.input_grads and k in self.hoisted_weights:
            G = self.G
            for (_, _, s, kind), gs in zip(entries, dz @ self.Wc[k], strict=True):
                if kind == _HOIST:  # products with a boundary were handled in the step
                    G[s] = gs if G[s] is None else G[s] + gs

    def _unscale(self, value):
        return np.ldexp(value, self.L) if self.L else value


def _bias_of(grp: _Group, params):
    if not any(grp.biases):
        return None
    parts = []
    for names, (a, b) in zip(grp.biases, grp.spans, strict=True):
        total = np.zeros(b - a, dtype=next(iter(params.values())).dtype)
        for name in names:
            total = total + params[name]
        parts.append(total)
    return np.concatenate(parts)


# ---- result ---------------------------------------------------------------------------------


class _InstanceMap(Mapping):
    """A read-only mapping ``(name, t) -> array`` over the program's slots."""

    def __init__(self, program, get):
        self._program, self._get = program, get

    def __getitem__(self, key):
        try:
            slot = self._program.slot[key]
        except (KeyError, TypeError):
            raise KeyError(f"no node instance {key!r} in the unrolled graph") from None
        return self._get(slot)

    def __iter__(self):
        return iter(self._program.instances)

    def __len__(self):
        return len(self._program.instances)


class BPTTResult:
    """What :func:`bptt` computed.

    Attributes
    ----------
    values : Mapping
        ``values[(name, t)]`` -> array ``(B, size)``: every node instance's value,
        boundary instances (initial states) included.
    node_grads : Mapping
        ``node_grads[(name, t)]`` -> array ``(B, size)``: dL/d(name, t), in float
        (``0`` where it underflows; :meth:`log10_grad_norms` stays exact).
    param_grads : dict
        ``param_grads[name]`` -> array of the parameter's shape: the sum over every copy.
    loss : float or None
        The loss value, when a ``loss`` was given.
    unrolled : Unrolled
    """

    def __init__(self, program: Program, run: _Run, grads, scales, loss, dtype):
        self.unrolled, self._program, self._run = program.unrolled, program, run
        self._grads, self._scales, self.loss, self.dtype = grads, scales, loss, dtype
        self.values = _InstanceMap(program, run.V.__getitem__)
        self.node_grads = _InstanceMap(program, self._node_grad)
        self.param_grads = _param_grads(program, run)

    def _node_grad(self, slot):
        g = self._grads[slot]
        if g is None:
            value = self._run.V[slot]
            return np.zeros_like(value)
        if not self._scales[slot]:
            return g
        with np.errstate(over="ignore"):  # the float64 truth may be inf; the log stays exact
            return np.ldexp(g, int(self._scales[slot]))

    def log10_grad_norms(self, name: str, sample: int | None = None) -> np.ndarray:
        """``log10 ||dL/d(name, t)||`` for t = 0 ... steps-1, exact in the log domain.

        The norm is the Frobenius norm over batch and units (or over units only for batch
        item ``sample``); ``-inf`` where the gradient is exactly zero, ``nan`` at steps
        where the node has no copy.

        Examples
        --------
        >>> import numpy as np, unroll
        >>> g = unroll.presets.neuron(activation="identity", bias=False)
        >>> u = unroll.unroll(g, steps=4)
        >>> p = {"W_ih": np.ones((1, 1)), "W_hh": np.full((1, 1), 0.5)}
        >>> r = unroll.bptt(u, p, {"x": np.zeros((4, 1, 1))}, {("h", 3): np.ones((1, 1))})
        >>> r.log10_grad_norms("h").round(3).tolist()
        [-0.903, -0.602, -0.301, 0.0]
        """
        if name not in self.unrolled.graph.nodes:
            raise KeyError(f"unknown node {name!r}")
        out = np.full(self.unrolled.steps, np.nan)
        for t in range(self.unrolled.steps):
            slot = self._program.slot.get((name, t))
            if slot is None:
                continue
            g = self._grads[slot]
            if g is not None and sample is not None:
                g = g[sample]
            norm = 0.0 if g is None else _norm(g)
            out[t] = (math.log10(norm) + self._scales[slot] * _LOG10_2) if norm else -np.inf
        return out

    def weight_contributions(self, name: str) -> np.ndarray:
        """Each step's copy of weight or bias ``name``: array ``(steps, *shape)``, summing to
        ``param_grads[name]``. Needs ``bptt(..., contributions=True)``."""
        parts, scales = self._contributions(name)
        return np.stack([np.ldexp(p, int(s)) for p, s in zip(parts, scales, strict=True)])

    def contribution_log10_norms(self, name: str) -> np.ndarray:
        """``log10`` of the norm of each step's contribution to ``name``, exact."""
        parts, scales = self._contributions(name)
        out = np.full(len(parts), -np.inf)
        for t, (p, s) in enumerate(zip(parts, scales, strict=True)):
            norm = _norm(p)
            if norm:
                out[t] = math.log10(norm) + s * _LOG10_2
        return out

    def _contributions(self, name):
        if not self._run.record:
            raise InputError("per-step contributions need bptt(..., contributions=True)")
        if name not in self.param_grads:
            raise KeyError(f"unknown parameter {name!r}")
        return _collect_contributions(self._program, self._run, name, self.param_grads[name])

    def first_nonfinite(self) -> Instance | None:
        """The first node instance (in program order) whose value is NaN or infinite."""
        V, n = self._run.V, len(self._program.instances)
        for start in range(0, n, _SCAN_CHUNK):
            chunk = V[start : min(n, start + _SCAN_CHUNK)]
            if np.isfinite(np.concatenate([v.ravel() for v in chunk])).all():
                continue
            for k, v in enumerate(chunk):
                if not np.isfinite(v).all():
                    return self._program.instances[start + k]
        return None

    @cached_property
    def warnings(self) -> list[str]:
        """One line per numeric fault of the run; empty when every number is finite.

        The forward pass: the first node instance whose value overflowed to infinity or
        became NaN (``"forward pass overflowed first at h, step 646"``); every gradient
        that flows through it is then meaningless, so this line comes alone. Otherwise,
        parameter gradients whose float64 value overflowed (their per-step log-domain
        norms stay exact). Computed on first access (one scan of the stored values).

        Examples
        --------
        >>> import numpy as np, unroll
        >>> g = unroll.presets.neuron(activation="relu", bias=False)
        >>> u = unroll.unroll(g, steps=400)
        >>> p = {"W_ih": np.ones((1, 1)), "W_hh": np.full((1, 1), 10.0)}
        >>> r = unroll.bptt(u, p, {"x": np.ones((400, 1, 1))}, {("h", 399): np.ones((1, 1))})
        >>> r.warnings[0]
        'forward pass overflowed first at h, step 309 (value inf)'
        """
        first = self.first_nonfinite()
        if first is not None:  # the root cause: every gradient through it is meaningless
            value = self.values[first]
            bad = value[~np.isfinite(value)].ravel()[0]
            what = "became NaN" if np.isnan(bad) else "overflowed"
            return [f"forward pass {what} first at {first[0]}, step {first[1]} (value {bad})"]
        out = []
        for name, grad in self.param_grads.items():
            if not np.isfinite(grad).all():
                out.append(
                    f"the gradient of parameter {name!r} is not finite in float64 (it "
                    "overflowed); log10_grad_norms stay exact"
                )
        return out

    def __repr__(self) -> str:
        loss = "" if self.loss is None else f", loss={self.loss:.6g}"
        return f"BPTTResult({self.unrolled!r}{loss})"

    def _repr_mimebundle_(self, include=None, exclude=None):
        from .render import render

        return render(self.unrolled, result=self)._repr_mimebundle_(
            include=include, exclude=exclude
        )


_SCAN_CHUNK = 4096  # node values joined per isfinite check in first_nonfinite


def _norm(array: np.ndarray) -> float:
    """The Frobenius norm, without the overflow or underflow of squaring large or tiny
    entries (plain ``np.linalg.norm`` gives inf above about 1e154, 0 below 1e-162)."""
    with np.errstate(over="ignore", under="ignore"):
        norm = float(np.linalg.norm(array))
    if norm == 0.0 or not math.isfinite(norm):
        peak = float(np.max(np.abs(array), initial=0.0))
        if peak == 0.0 or not math.isfinite(peak):
            return peak
        norm = peak * float(np.linalg.norm(array / peak))
    return norm


def _param_grads(program: Program, run: _Run) -> dict[str, np.ndarray]:
    grads: dict[str, np.ndarray] = {}

    def add(name, value):
        grads[name] = value.copy() if name not in grads else grads[name] + value

    for k, (gi, j) in enumerate(program.weight_table):
        grp = program.groups[gi]
        for name, (a, b) in zip(grp.weights[j], grp.spans, strict=True):
            add(name, run.A_true[k][a:b])
    for grp, acc in zip(program.groups, run.Ab_true, strict=True):
        if acc is None:
            continue
        for names, (a, b) in zip(grp.biases, grp.spans, strict=True):
            for name in names:
                add(name, acc[a:b])
    for name, shape in program.param_shapes.items():
        if name not in grads:  # a parameter no copy of which is ever reached
            grads[name] = np.zeros(shape, dtype=run.dtype)
    return dict(sorted(grads.items()))


def _collect_contributions(program, run, name, like):
    steps = program.unrolled.steps
    parts = [np.zeros_like(like) for _ in range(steps)]
    scales = np.zeros(steps, dtype=np.int64)
    for t, k, value, L in run.records:
        for a, b in _spans_of(program, k, name):
            _add_scaled(parts, scales, t, value[a:b], L)
    return parts, scales


def _spans_of(program, k, name):
    """The row spans of record ``k`` (a weight index, or ``-1 - group`` for biases)."""
    if k >= 0:
        gi, j = program.weight_table[k]
        grp = program.groups[gi]
        return [span for w, span in zip(grp.weights[j], grp.spans, strict=True) if w == name]
    grp = program.groups[-1 - k]
    return [
        span for names, span in zip(grp.biases, grp.spans, strict=True) for b in names if b == name
    ]


def _add_scaled(parts, scales, i, value, L):
    """``parts[i] * 2**scales[i] += value * 2**L`` without leaving float range."""
    if not np.any(parts[i]):
        parts[i], scales[i] = value.copy(), L
        return
    top = max(scales[i], L)
    parts[i] = np.ldexp(parts[i], int(scales[i] - top)) + np.ldexp(value, int(L - top))
    scales[i] = top


# ---- the entry point ------------------------------------------------------------------------


def bptt(
    unrolled: Unrolled,
    params: Mapping[str, np.ndarray],
    inputs: Mapping[str, np.ndarray] | None = None,
    cotangents: Mapping[Instance, np.ndarray] | None = None,
    *,
    loss: str | None = None,
    targets=None,
    initial_states=None,
    truncate: tuple[int, int] | None = None,
    dtype=np.float64,
    input_grads: bool = True,
    contributions: bool = False,
    max_memory: int | str | None = "auto",
) -> BPTTResult:
    """Run the unrolled graph forward, then backpropagate through time.

    Parameters
    ----------
    unrolled : Unrolled
        From :func:`unroll.unroll`.
    params : mapping
        ``{name: array}`` for every parameter in ``unrolled.graph.params()``.
    inputs : mapping
        ``{input_name: array (T, B, n)}``; ``T`` is the number of steps, or the number
        of steps at which the sequence mode feeds that input.
    cotangents : mapping, optional
        ``{(node, t): array (B, n)}``: dL/dy for any node instances (the VJP's vector).
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
    contributions : bool
        Record each step's contribution to every tied weight's gradient.
    max_memory : int, "auto" or None
        Refuse a run whose :func:`estimate_memory` exceeds this many bytes. ``"auto"``
        (default): :data:`DEFAULT_MAX_MEMORY` (8 GiB) or the available memory if that
        is less; ``None`` lifts the limit.

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
    """
    dtype = _float_dtype(dtype)
    _check_arguments(params, inputs, cotangents, initial_states, loss, targets, truncate)
    _check_flags(input_grads=input_grads, contributions=contributions)
    batch = _peek_batch(inputs, cotangents, initial_states)
    check_memory(unrolled, batch, dtype, contributions, max_memory)
    program = compile_program(unrolled)
    with _gc_paused():  # the run allocates many small containers and no cycles
        return _bptt(
            program,
            params,
            inputs,
            cotangents,
            loss,
            targets,
            initial_states,
            truncate,
            dtype,
            input_grads,
            contributions,
        )


def _bptt(
    program,
    params,
    inputs,
    cotangents,
    loss,
    targets,
    initial_states,
    truncate,
    dtype,
    input_grads,
    contributions,
):
    unrolled = program.unrolled
    params = _check_params(program, params, dtype)
    xs, batch = _check_inputs(unrolled, inputs or {}, cotangents, initial_states, dtype)
    run = _Run(program, params, batch, dtype, input_grads, contributions)
    V = run.V = [None] * program.n_slots
    _set_boundary(program, V, initial_states or {}, batch, dtype)
    for name, slots in program.input_slots.items():
        for row, s in enumerate(slots):
            V[s] = xs[name][row]
    run.P = [xs[name] @ run.WT[k] for name, k in program.hoisted]
    for gi, h in program.bias_carrier.items():
        run.P[h] += run.Bc[gi]
    cots = _check_cotangents(program, cotangents or {}, batch, dtype)  # before any work
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        for instruction in program.forward:
            instruction(V, run)
        loss_value = None
        if loss is not None:
            loss_value, extra = loss_cotangents(unrolled, run.V, program.slot, loss, targets)
            for s, c in extra.items():
                cots[s] = cots[s] + c if s in cots else c
        grads, scales = _backward(program, run, cots, truncate)
    return BPTTResult(program, run, grads, scales, loss_value, dtype)


def _backward(program: Program, run: _Run, cots: dict[int, np.ndarray], truncate):
    if truncate is None:
        chunks = [((0, len(program.backward)), cots)]
    else:
        chunks = _truncated_chunks(program, cots, truncate)
    grads: list = [None] * program.n_slots
    scales = np.zeros(program.n_slots, dtype=np.int64)
    for (start, end), chunk_cots in chunks:
        G = run.G = [None] * program.n_slots
        run.L, run.cot_at = 0, {}
        for s, c in chunk_cots.items():
            run.cot_at.setdefault(int(program.segment_array[s]), []).append((s, c))
        V = run.V
        for instruction in program.backward[start:end]:
            instruction(V, G, run)
        run.flush()
        _merge_chunk(program, run, G, grads, scales, start, end, truncate is None)
    return grads, scales


def _merge_chunk(program, run, G, grads, scales, start, end, full):
    """Keep the chunk's gradients of the slots whose backward finished inside the chunk."""
    if full:  # one chunk over the whole program: every gradient is complete
        grads[:] = G
        scales[:] = run.L_hist[program.segment_array]
        return
    for s, g in enumerate(G):
        pos = int(program.finish[s])
        if g is None or pos < 0 or not start <= pos < end:
            continue  # no gradient, or one truncated at the window's edge
        L = int(run.L_hist[program.segment_array[s]])
        if grads[s] is None:
            grads[s], scales[s] = g, L
        else:
            _add_scaled(grads, scales, s, g, L)


def _truncated_chunks(program: Program, cots, truncate):
    u = program.unrolled
    k1, k2 = truncate  # a pair of positive integers: _check_arguments made sure
    if not u.graph.is_causal():
        bad = next(e for e in u.graph.edges if e.delay < 0)
        raise InputError(
            f"truncated BPTT needs a causal graph, but edge {bad.describe()} reads the future"
        )
    T = u.steps
    ends = list(range(k1 - 1, T, k1))
    if not ends or ends[-1] != T - 1:
        ends.append(T - 1)
    chunks, previous = [], -1
    for end in ends:
        first = max(0, end - k2 + 1)
        window = program.step_range(first, end)
        chunk = {s: c for s, c in cots.items() if previous < program.instances[s][1] <= end}
        chunks.append((window, chunk))
        previous = end
    return chunks


# ---- checking what the caller passed --------------------------------------------------------


def _real_array(value, what: str) -> np.ndarray:
    """``value`` as an array of real numbers (integers or floats), else an InputError."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):  # ragged nested lists, objects numpy refuses
        raise InputError(f"{what} is not a rectangular array of numbers") from None
    if array.dtype.kind not in "iuf":  # not bool, complex, strings or objects
        raise InputError(f"{what} has dtype {array.dtype}, expected real numbers")
    return array


def _check_finite(array: np.ndarray, what: str, axes=None) -> None:
    """Raise an InputError naming the first NaN or infinite entry of ``array``, if any."""
    if np.isfinite(array).all():
        return
    index = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
    if axes:
        where = ", ".join(f"{axis} {i}" for axis, i in zip(axes, index, strict=True))
        raise InputError(f"{what} has non-finite values, the first at {where} ({array[index]})")
    raise InputError(f"{what} has a non-finite value at index {list(index)} ({array[index]})")


def _check_params(program, params, dtype):
    need = program.param_shapes  # a mapping: _check_arguments made sure
    for name in params:
        if name not in need:
            raise InputError(f"unknown parameter {name!r} (the graph has: {', '.join(need)})")
    out = {}
    for name, shape in need.items():
        if name not in params:
            raise InputError(f"missing parameter {name!r} of shape {_fmt(shape)}")
        with np.errstate(over="ignore"):  # a float32 overflow is named just below
            value = _real_array(params[name], f"parameter {name!r}").astype(dtype, copy=False)
        if value.shape != shape:
            raise InputError(
                f"parameter {name!r} has shape {_fmt(value.shape)}, the graph needs {_fmt(shape)}"
            )
        _check_finite(value, f"parameter {name!r}")
        out[name] = value
    return out


def _check_inputs(unrolled, inputs, cotangents, initial_states, dtype):
    g = unrolled.graph
    for name in inputs:
        if name not in g.nodes or g.nodes[name].kind != "input":
            raise InputError(f"unknown input {name!r} (inputs: {', '.join(g.input_nodes())})")
    xs, batch = {}, None
    for name in g.input_nodes():
        if name not in inputs:
            raise InputError(f"missing input {name!r}: give an array (T, B, {g.nodes[name].size})")
        x = _real_array(inputs[name], f"input {name!r}")
        steps = unrolled.input_steps(name)
        if (
            x.ndim != 3
            or x.shape[2] != g.nodes[name].size
            or x.shape[0] not in (len(steps), unrolled.steps)
        ):
            raise InputError(
                f"input {name!r} has shape {_fmt(x.shape)}, expected "
                f"({unrolled.steps}, B, {g.nodes[name].size})"
            )
        if x.shape[0] != len(steps):
            x = x[steps]
        if batch is not None and x.shape[1] != batch:
            raise InputError(f"input {name!r} has batch {x.shape[1]}, other inputs {batch}")
        batch = x.shape[1]
        if batch == 0:
            raise InputError(f"input {name!r} has batch 0: give at least one sequence")
        xs[name] = np.ascontiguousarray(x, dtype=dtype)
        _check_input_finite(xs[name], name, steps)
    if batch is None:
        batch = _batch_from(cotangents, initial_states)
    return xs, batch


def _check_input_finite(x: np.ndarray, name: str, steps: list[int]) -> None:
    """Name the first NaN or infinite entry by the step its row feeds, batch and unit."""
    if np.isfinite(x).all():
        return
    row, b, k = (int(i) for i in np.argwhere(~np.isfinite(x))[0])
    raise InputError(
        f"input {name!r} has a non-finite value at step {steps[row]}, batch {b}, unit {k} "
        f"({x[row, b, k]})"
    )


def _batch_from(*mappings) -> int:
    for m in mappings:
        for v in (m or {}).values() if isinstance(m, Mapping) else ():
            try:
                shape = np.shape(v)
            except ValueError:  # ragged: the shape checks name it later
                continue
            if len(shape) == 2:
                return shape[0]
    return 1


def _set_boundary(program, V, initial_states, batch, dtype):
    g = program.unrolled.graph
    known = {name for name, _ in program.unrolled.boundary}
    for key in initial_states:
        name = key[0] if isinstance(key, tuple) else key
        if name not in known or (isinstance(key, tuple) and key not in program.slot):
            raise InputError(
                f"initial state {key!r}: no such boundary node (boundary: "
                f"{', '.join(map(str, program.unrolled.boundary))})"
            )
    for name, t in program.unrolled.boundary:
        value = initial_states.get((name, t), initial_states.get(name))
        size = g.nodes[name].size
        V[program.slot[(name, t)]] = (
            np.zeros((batch, size), dtype)
            if value is None
            else _as_batch(value, batch, size, f"initial state {name!r}", dtype, check_finite=True)
        )


def _check_cotangents(program, cotangents, batch, dtype):
    out, what = {}, {}
    steps, nodes = program.unrolled.steps, program.unrolled.graph.nodes
    for key, value in cotangents.items():
        slot = program.slot.get(key)
        if slot is None:
            raise InputError(f"cotangent for {key!r}: no such node instance (steps 0..{steps - 1})")
        if program.finish[slot] < 0 or not 0 <= key[1] < steps or nodes[key[0]].kind == "input":
            raise InputError(f"cotangent for {key!r}: input and boundary nodes take no cotangent")
        what[slot] = f"cotangent for {key!r}"
        out[slot] = _as_batch(value, batch, nodes[key[0]].size, what[slot], dtype)
    if out and not np.isfinite(np.concatenate([v.ravel() for v in out.values()])).all():
        for slot, v in out.items():  # one check for all; name the first bad one
            _check_finite(v, what[slot], ("batch", "unit"))
    return out


def _as_batch(value, batch, size, what, dtype, check_finite=False):
    if type(value) is np.ndarray and value.dtype == dtype:
        v = value  # never written to: the engine only makes new arrays from it
    else:
        v = _real_array(value, what).astype(dtype, copy=False)
    if v.shape == (size,):
        v = np.broadcast_to(v, (batch, size))
    if v.shape != (batch, size):
        raise InputError(f"{what} has shape {_fmt(v.shape)}, expected ({batch}, {size})")
    if check_finite:
        _check_finite(v, what, ("batch", "unit"))
    return v


def _check_arguments(params, inputs, cotangents, initial_states, loss, targets, truncate):
    """Refuse arguments of the wrong type before any work, each with its own message."""
    for name, value in (
        ("params", params),
        ("inputs", inputs),
        ("cotangents", cotangents),
        ("initial_states", initial_states),
    ):
        if value is not None and not isinstance(value, Mapping):
            raise InputError(f"{name} must be a mapping (a dict), got {type(value).__name__}")
    for key in cotangents or {}:
        if not (isinstance(key, tuple) and len(key) == 2):
            raise InputError(f"cotangent keys are node instances (name, t), got {key!r}")
    if loss is not None and not isinstance(loss, str):
        raise InputError(f"loss must be the name of a loss, got {type(loss).__name__}")
    for name, value in targets.items() if isinstance(targets, Mapping) else [(None, targets)]:
        what = "targets" if name is None else f"targets for {name!r}"
        if value is not None and _real_array(value, what).ndim == 0:
            raise InputError(f"{what} must be an array with one row per loss step, got a scalar")
    pair = isinstance(truncate, tuple | list) and len(truncate) == 2
    if truncate is not None and not (pair and all(_is_int(k) and k >= 1 for k in truncate)):
        raise InputError(f"truncate=(k1, k2) takes two positive integers, got {truncate!r}")


def _check_flags(**flags) -> None:
    for name, value in flags.items():
        if not isinstance(value, bool | np.bool_):
            raise InputError(f"{name} must be True or False, got {type(value).__name__}")


def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _float_dtype(dtype) -> np.dtype:
    try:
        found = np.dtype(dtype)
    except (TypeError, ValueError):
        found = None
    if found is None or found.kind != "f":
        raise InputError(f"dtype must be a float type (float64 or float32), got {dtype!r}")
    return found


# ---- memory -----------------------------------------------------------------------------------


def estimate_memory(
    unrolled: Unrolled, batch: int = 1, dtype=np.float64, contributions: bool = False
) -> int:
    """Bytes a :func:`bptt` run over ``unrolled`` is estimated to hold at its peak.

    ``steps x (sum of node sizes) x batch x itemsize x MEMORY_OVERHEAD`` for the values,
    gradients and temporaries, plus ``INSTANCE_BYTES`` per node instance for the compiled
    program, plus three copies of the parameters (values, fused copies, gradients), plus
    ``steps x (parameter entries) x itemsize`` for per-step contributions when they are
    recorded. Measured peaks lie between 0.5 and 1.0 times the estimate (it errs high).

    Examples
    --------
    >>> import unroll
    >>> u = unroll.unroll(unroll.presets.elman(64, 256), steps=500)
    >>> round(estimate_memory(u, batch=32) / 2**20)  # measured peak: 179 MiB
    200
    """
    g, steps = unrolled.graph, unrolled.steps
    itemsize = np.dtype(dtype).itemsize
    values = steps * sum(n.size for n in g.nodes.values()) * batch * itemsize * MEMORY_OVERHEAD
    instances = (steps * len(g.nodes) + len(unrolled.boundary)) * INSTANCE_BYTES
    entries = sum(math.prod(s) for s in unrolled.param_shapes.values()) * itemsize
    return values + instances + 3 * entries + (steps * entries if contributions else 0)


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


def _peek_batch(inputs, cotangents, initial_states) -> int:
    """The batch size the caller means, read without checking (the checks come later)."""
    for value in inputs.values() if isinstance(inputs, Mapping) else ():
        try:
            shape = np.shape(value)
        except ValueError:
            continue
        if len(shape) == 3:
            return max(1, int(shape[1]))
    return max(1, _batch_from(cotangents, initial_states))


def check_memory(
    unrolled: Unrolled,
    batch: int = 1,
    dtype=np.float64,
    contributions: bool = False,
    max_memory: int | str | None = "auto",
) -> None:
    """Raise :class:`~unroll.errors.LimitError` when a run's :func:`estimate_memory` exceeds
    ``max_memory`` (as in :func:`bptt`: bytes, ``"auto"`` or ``None`` for no limit).

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
    limit, why = _memory_limit(max_memory)
    if limit is None:
        return
    dtype = np.dtype(dtype)
    need = estimate_memory(unrolled, batch, dtype, contributions)
    if need > limit:
        raise LimitError(
            f"BPTT over {unrolled.graph.name!r} ({unrolled.steps:,} steps, batch {batch}, "
            f"{dtype}{', with per-step contributions' if contributions else ''}) needs about "
            f"{_bytes(need)}, more than the limit of {_bytes(limit)}{why}",
            "bptt(..., max_memory=None)",
        )


def _fmt(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"
