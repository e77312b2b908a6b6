"""What a BPTT run computed, read by node instance: values, gradients, weight gradients.

The result holds the run's arrays, no reference back to itself (dropping it frees its
memory at once, with the cyclic collector off). Values a run did not keep (a loop's
one-step temporaries, activations whose memory the backward pass reused) and gradients
of a loop's inner nodes are recomputed, for all steps at once, when first asked for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cached_property
from typing import NamedTuple

import numpy as np

from ..errors import InputError
from .forward import Forward
from .scale import NO_SCALE, Grads, safe_norms

__all__ = ["BPTTResult", "BPTTRun", "ModelView"]

_LOG10_2 = math.log10(2.0)


class _Store:
    """Reads values and scaled gradients by node, recomputing what the run let go."""

    def __init__(self, fwd: Forward, grads: Grads, scan_scales, exact: bool, states=True):
        self.fwd, self.grads, self.scan_scales = fwd, grads, scan_scales
        self.program = fwd.program
        self.exact = exact  # every loop node's gradient was kept (truncated runs)
        self.states = states  # a loop node's gradients were kept (bptt's state_grads)
        self._values: dict[str, np.ndarray] = {}
        self._forward: Forward | None = None  # the forward pass again, every value kept
        self._replayed: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    # ---- values ---------------------------------------------------------------------------

    def values(self, name: str) -> np.ndarray:
        """Node ``name``'s whole array ``(*lead, rows, B, n)``, recomputed if let go."""
        fwd = self.fwd
        unit = self.program.unit_of.get(name)
        if unit is None:
            return fwd.base[name]
        if unit.name in fwd.ringed:  # a loop kept one segment: run it forward again
            return self._unsegmented().base[name]
        if fwd.wrap[name] != 1 and unit.name not in fwd.overwritten:
            return fwd.base[name]
        if name not in self._values:
            self._materialise(unit)
        return self._values[name]

    def _unsegmented(self) -> Forward:
        """The forward pass again, every value kept (asked for after a checkpointed run)."""
        if self._forward is None:
            f = self.fwd
            again = Forward(f.program, f.params, f.xs, f.initial, f.batch, f.lead, f.dtype)
            with np.errstate(all="ignore"):
                again.run()
            self._forward = again
        return self._forward

    def rows(self, name: str, lo: int, hi: int) -> np.ndarray:
        o = self.fwd.offset(name)
        return self.values(name)[..., lo + o : hi + o, :, :]

    def _materialise(self, unit) -> None:
        fwd, T = self.fwd, self.fwd.steps
        z = fwd.sequence_value(unit, 0, T, source=self.rows)
        for member, (a, b) in zip(unit.members, unit.spans, strict=True):
            array = np.zeros((*fwd.lead, self.program.rows(member), fwd.batch, b - a), fwd.dtype)
            o = fwd.offset(member)
            array[..., o : o + T, :, :] = z[..., a:b]
            before, after = self.program.pad[member]
            for t in [*range(-before, 0), *range(T, T + after)]:
                value = fwd.initial.get((member, t))
                if value is not None:
                    array[..., t + o, :, :] = value
            self._values[member] = array

    # ---- gradients ------------------------------------------------------------------------

    def grads_of(self, name: str):
        """``(G, E)`` of node ``name`` (full rows), or ``None`` when nothing reached it."""
        part = self.program.part_of.get(name)
        if not self.states and part is not None and part.loop:
            raise InputError(
                f"the gradient of {name!r} (a node of a loop) was not kept: "
                "bptt(..., state_grads=False) keeps parameter and input gradients only"
            )
        if name in self.grads.lazy:
            self.grads.G[name] = self.grads.lazy.pop(name).rows()
        if name in self.grads.G:
            return self.grads.G[name], self.grads.E[name]
        if part is None or not part.loop or self.exact or part.index not in self.scan_scales:
            return None
        if name not in self._replayed:
            self._replay(part)
        return self._replayed.get(name)

    def _replay(self, part) -> None:
        """The gradients of a loop's inner nodes, from the kept ones, all steps at once.

        A node whose gradient was not kept is read only at the scan step that computes
        it, so its gradient is the sum of its readers' VJPs at that step, all under
        that step's scale: the step programs' backward, run over every step at once.
        """
        fwd, program, T = self.fwd, self.program, self.fwd.steps
        bottom, history = self.scan_scales[part.index]
        kept = self.grads.G
        acc: dict[str, np.ndarray] = {}

        def grad_rows(name):
            if name in kept:
                o = fwd.offset(name)
                return kept[name][..., o : o + T, :, :]
            if name not in acc:
                shape = (*fwd.lead, program.rows(name), fwd.batch, program.graph.nodes[name].size)
                acc[name] = np.zeros(shape, fwd.dtype)
            o = fwd.offset(name)
            return acc[name][..., o : o + T, :, :]

        def send(r, grad):
            if r.lag is None or r.source in kept:
                return
            grad_rows(r.source)
            o = fwd.offset(r.source) - r.delay
            acc[r.source][..., o : o + T, :, :] += grad

        for unit in reversed(part.units):
            g = np.concatenate([grad_rows(m) for m in unit.members], axis=-1)
            y = np.concatenate([self.rows(m, 0, T) for m in unit.members], axis=-1)
            if unit.is_layer:
                dz = np.concatenate(
                    [act.vjp(g[..., a:b], y[..., a:b]) for a, b, act in unit.runs], -1
                )
                for j, r in enumerate(unit.blocks):
                    if r.lag == 0:
                        w = fwd.block_weight(unit, j)
                        send(r, dz @ (w[:, None] if fwd.lead else w))  # over every step
                for r in unit.identity:
                    send(r, dz)
                continue
            xs = [self.rows(r.source, -r.delay, T - r.delay) for r in unit.sources]
            grads = unit.op.vjp(g, y, *xs, **fwd.op_params(unit, len(fwd.lead) + 3))
            for r, grad in zip(unit.sources, grads[: len(unit.sources)], strict=True):
                send(r, grad)
        for name, G in acc.items():
            before, after = program.pad[name]
            t = np.arange(-before, T + after)
            index = np.clip(part.sign * t + part.offset[name] - bottom, 0, history.shape[-1] - 1)
            self._replayed[name] = (G, history[..., index])

    def node_grad(self, name: str, t: int) -> np.ndarray:
        found = self.grads_of(name)
        o = self.fwd.offset(name)
        if found is None:
            return np.zeros_like(self.values(name)[..., t + o, :, :])
        G, E = found
        with np.errstate(over="ignore"):  # the float64 truth may be inf; the log stays exact
            e = E[..., t + o]
            return np.ldexp(G[..., t + o, :, :], np.where(e == NO_SCALE, 0, e)[..., None, None])


class _InstanceMap(Mapping):
    """A read-only mapping ``(name, t) -> array`` over the unrolled graph's instances."""

    def __init__(self, unrolled, program, get):
        self._unrolled, self._program, self._get = unrolled, program, get

    def _check(self, key) -> tuple[str, int]:
        try:
            name, t = key
            pad = self._program.pad[name]
            a, b = self._program.present[name]
        except (KeyError, TypeError, ValueError):
            raise KeyError(f"no node instance {key!r} in the unrolled graph") from None
        inside = isinstance(t, int | np.integer) and a <= t < b
        if not inside and not (
            isinstance(t, int | np.integer)
            and -pad[0] <= t < self._unrolled.steps + pad[1]
            and (t < 0 or t >= self._unrolled.steps)
            and (name, int(t)) in self._boundary
        ):
            raise KeyError(f"no node instance {key!r} in the unrolled graph")
        return name, int(t)

    @cached_property
    def _boundary(self) -> set:
        return set(self._unrolled.boundary)

    def __getitem__(self, key):
        return self._get(*self._check(key))

    def __iter__(self):
        return iter(self._program.instances)

    def __len__(self):
        return self._unrolled.num_nodes()


class BPTTRun(NamedTuple):
    """What a run started from, as :func:`bptt` takes it, so that parts of it can be run
    again (decay per loss re-runs each loss step's cotangents alone)."""

    params: dict
    inputs: dict
    initial_states: dict
    cotangents: dict  # every seeded instance, the loss's dL/dy included
    truncate: tuple[int, int] | None


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
        The loss value, when a ``loss`` was given (an array of one per model for an
        ensemble).
    run : BPTTRun
        The parameters, inputs, initial states and cotangents the run started from.
    models : int or None
        For an ensemble (parameters with a leading axis of ``S`` models), ``S``: every
        array above then carries that leading axis.
    unrolled : Unrolled
    """

    def __init__(
        self, unrolled, store: _Store, params, records, recorded, loss, first_bad, dtype, run=None
    ):
        self.unrolled, self._store, self.loss, self.dtype = unrolled, store, loss, dtype
        self.run = run
        self._records, self._recorded, self._first_bad = records or {}, recorded, first_bad
        self._views_cache: dict = {}
        fwd, program = store.fwd, store.program
        self.models = fwd.lead[0] if fwd.lead else None
        self.values = _InstanceMap(
            unrolled, program, lambda n, t: store.rows(n, t, t + 1)[..., 0, :, :]
        )
        self.node_grads = _InstanceMap(unrolled, program, store.node_grad)
        grads = {}
        for name, shape in program.param_shapes.items():
            value = params.get(name)
            grads[name] = np.zeros((*fwd.lead, *shape), dtype) if value is None else value
        self.param_grads = dict(sorted(grads.items()))

    def log10_grad_norms(self, name: str, sample: int | None = None) -> np.ndarray:
        """``log10 ||dL/d(name, t)||`` for t = 0 ... steps-1, exact in the log domain.

        The norm is the Frobenius norm over batch and units (or over units only for batch
        item ``sample``); ``-inf`` where the gradient is exactly zero, ``nan`` at steps
        where the node has no copy. For an ensemble, one row per model: ``(S, steps)``.

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
        store = self._store
        if name not in self.unrolled.graph.nodes:
            raise KeyError(f"unknown node {name!r}")
        T, lead = self.unrolled.steps, store.fwd.lead
        out = np.full((*lead, T), -np.inf)
        found = store.grads_of(name)
        if found is not None:
            G, E = found
            o = store.fwd.offset(name)
            seg, e = G[..., o : o + T, :, :], E[..., o : o + T]
            if sample is not None:
                seg = seg[..., sample : sample + 1, :]
            norms = safe_norms(seg)
            held = (norms > 0) & (e != NO_SCALE)
            out[held] = np.log10(norms[held]) + e[held] * _LOG10_2
        a, b = store.program.present[name]
        out[..., :a] = np.nan
        out[..., b:] = np.nan
        return out

    def weight_contributions(self, name: str) -> np.ndarray:
        """Each step's copy of weight or bias ``name``: array ``(steps, *shape)``, summing to
        ``param_grads[name]``. Needs ``bptt(..., contributions=True)``."""
        parts, scales = self._contributions(name)
        with np.errstate(over="ignore"):
            value = np.ldexp(parts, _trail(np.where(scales == NO_SCALE, 0, scales), parts))
        return np.moveaxis(value, 0, len(self._store.fwd.lead))

    def contribution_log10_norms(self, name: str) -> np.ndarray:
        """``log10`` of the norm of each step's contribution to ``name``, exact."""
        lead = len(self._store.fwd.lead)
        records = self._records_of(name)
        if len(records) == 1 and records[0][0] == 0 and records[0][1].steps == self.unrolled.steps:
            one = records[0][1]  # one copy per step: its norms, without forming it
            norms, e = one.norms(), one.e
        else:
            parts, scales = self._contributions(name)
            flat = parts.reshape(*parts.shape[: 1 + lead], -1, 1)
            norms = safe_norms(np.moveaxis(flat, 0, lead))
            e = np.moveaxis(scales, 0, lead) if lead else scales
        out = np.full(norms.shape, -np.inf)
        held = (norms > 0) & (e != NO_SCALE)
        out[held] = np.log10(norms[held]) + e[held] * _LOG10_2
        return out

    def _records_of(self, name):
        if name not in self.param_grads:
            raise KeyError(f"unknown parameter {name!r}")
        if not self._recorded or (self._recorded is not True and name not in self._recorded):
            raise InputError(
                f"per-step contributions of {name!r} need bptt(..., contributions=True)"
            )
        return self._records.get(name, [])

    def _contributions(self, name):
        """Every step's contribution ``(T, *lead, *shape)`` and its scale ``(T, *lead)``."""
        records = self._records_of(name)
        fwd, T = self._store.fwd, self.unrolled.steps
        lead = len(fwd.lead)
        shape = self.param_grads[name].shape[lead:]
        parts = np.zeros((T, *fwd.lead, *shape), fwd.dtype)
        scales = np.full((T, *fwd.lead), NO_SCALE, np.int64)
        for t0, contribution in records:
            values = np.moveaxis(contribution.values(), lead, 0)
            e = np.moveaxis(contribution.e, -1, 0)
            n = len(e)
            seg, segs = parts[t0 : t0 + n], scales[t0 : t0 + n]
            top = np.maximum(segs, e)
            seg[...] = np.ldexp(seg, _trail(segs - top, seg)) + np.ldexp(
                values, _trail(e - top, values)
            )
            segs[...] = top
        return parts, scales

    def first_nonfinite(self):
        """The first node instance (in the unrolled order) whose value is NaN or infinite,
        or ``None``; for an ensemble, the earliest over its models (see :meth:`model`)."""
        return self._store.fwd._earliest([b for b in self._first_bad if b is not None])

    def _cached(self, method: str, *args) -> np.ndarray:
        """Every model's answer of ``method(*args)``, computed once for the views."""
        key = (method, *args)
        if key not in self._views_cache:
            self._views_cache[key] = getattr(self, method)(*args)
        return self._views_cache[key]

    def model(self, index: int) -> ModelView:
        """Model ``index`` of an ensemble, read like the result of a run of it alone.

        Examples
        --------
        >>> import numpy as np, unroll
        >>> g = unroll.presets.neuron(activation="identity", bias=False)
        >>> u = unroll.unroll(g, steps=3)
        >>> p = {"W_ih": np.ones((1, 1)), "W_hh": np.array([[[0.5]], [[2.0]]])}
        >>> r = unroll.bptt(u, p, {"x": np.ones((3, 1, 1))}, {("h", 2): np.ones((1, 1))})
        >>> r.model(1).values[("h", 2)].tolist(), r.model(1).param_grads["W_hh"].tolist()
        ([[7.0]], [[5.0]])
        """
        if self.models is None:
            raise InputError("model(i) reads one model of an ensemble; this run has one model")
        if not -self.models <= index < self.models:
            raise InputError(f"model {index} is not in this ensemble of {self.models}")
        return ModelView(self, index % self.models)

    @cached_property
    def warnings(self) -> list[str]:
        """One line per numeric fault of the run; empty when every number is finite.

        The forward pass: the first node instance whose value overflowed to infinity or
        became NaN (``"forward pass overflowed first at h, step 646"``); every gradient
        that flows through it is then meaningless, so this line comes alone. Otherwise,
        parameter gradients whose float64 value overflowed (their per-step log-domain
        norms stay exact).

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
        return _warnings(self.first_nonfinite(), self.values, self.param_grads)

    def __repr__(self) -> str:
        loss = ""
        if self.loss is not None:
            loss = f", loss={self.loss:.6g}" if np.ndim(self.loss) == 0 else ", loss=[...]"
        models = "" if self.models is None else f", models={self.models}"
        return f"BPTTResult({self.unrolled!r}{loss}{models})"

    def _repr_mimebundle_(self, include=None, exclude=None):
        from ..render import render

        return render(self.unrolled, result=self)._repr_mimebundle_(
            include=include, exclude=exclude
        )


class ModelView:
    """One model of an ensemble's :class:`BPTTResult`, with the same attributes."""

    def __init__(self, result: BPTTResult, index: int):
        self.unrolled, self.dtype, self.models, self._index = (
            result.unrolled,
            result.dtype,
            None,
            index,
        )
        self._result = result
        store, program = result._store, result._store.program
        self.values = _InstanceMap(
            result.unrolled, program, lambda n, t: result.values[(n, t)][index]
        )
        self.node_grads = _InstanceMap(
            result.unrolled, program, lambda n, t: result.node_grads[(n, t)][index]
        )
        self.param_grads = {k: v[index] for k, v in result.param_grads.items()}
        self.loss = None if result.loss is None else float(result.loss[index])
        self._first = store.fwd._earliest(
            [result._first_bad[index]] if result._first_bad[index] else []
        )

    def log10_grad_norms(self, name: str, sample: int | None = None) -> np.ndarray:
        """As :meth:`BPTTResult.log10_grad_norms`, for this model."""
        return self._result._cached("log10_grad_norms", name, sample)[self._index]

    def weight_contributions(self, name: str) -> np.ndarray:
        """As :meth:`BPTTResult.weight_contributions`, for this model."""
        return self._result.weight_contributions(name)[self._index]

    def contribution_log10_norms(self, name: str) -> np.ndarray:
        """As :meth:`BPTTResult.contribution_log10_norms`, for this model."""
        return self._result._cached("contribution_log10_norms", name)[self._index]

    def first_nonfinite(self):
        """As :meth:`BPTTResult.first_nonfinite`, for this model."""
        return self._first

    @property
    def warnings(self) -> list[str]:
        """As :attr:`BPTTResult.warnings`, for this model."""
        return _warnings(self._first, self.values, self.param_grads)

    def __repr__(self) -> str:
        return f"ModelView({self._result!r}, model={self._index})"


def _warnings(first, values, param_grads) -> list[str]:
    if first is not None:  # the root cause: every gradient through it is meaningless
        value = values[first]
        bad = value[~np.isfinite(value)].ravel()[0]
        what = "became NaN" if np.isnan(bad) else "overflowed"
        return [f"forward pass {what} first at {first[0]}, step {first[1]} (value {bad})"]
    return [
        f"the gradient of parameter {name!r} is not finite in float64 (it overflowed); "
        "log10_grad_norms stay exact"
        for name, grad in param_grads.items()
        if not np.isfinite(grad).all()
    ]


def _trail(e, like):
    """Exponents ``e`` shaped to broadcast over ``like``'s trailing axes."""
    e = np.asarray(e)
    return e.reshape(e.shape + (1,) * (like.ndim - e.ndim))
