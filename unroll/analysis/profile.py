"""Gradient-norm profiles over time: ``analyze`` one model or several on the same probes.

For each model and seed, :func:`analyze` draws the parameters and an input sequence,
puts a loss probe at the loss steps of the sequence mode (by default a unit-norm random
cotangent on the output at the last step), runs :func:`unroll.bptt` with per-step weight
contributions and records, at every step ``t`` (distance ``T-1-t`` from the last step):

* ``log10 ||dL/ds_t||`` for each state node ``s`` (exact in the log domain),
* ``log10`` of the norm of each tied recurrent weight's step-``t`` contribution and its
  share ``||contribution_t|| / sum_t ||contribution_t||`` (norms, so that cancelling
  contributions do not hide a step); the ``"recurrent"`` share treats all recurrent
  weights of the model as one vector,
* the theory overlay of :mod:`unroll.analysis.theory` where one applies.

Over seeds it keeps the median and a quantile band; the summary fits the decay rate,
finds the distance where the norm drops below ``threshold`` times its value at the loss
and names a verdict with :data:`unroll.analysis.verdict.DEFAULT_RULE`.

JSON schema (``Report.to_json``; key order fixed; non-finite numbers are ``null``:
``-inf`` is an exactly zero gradient, ``nan`` an overflowed forward pass)::

    {"schema": "unroll.analysis.report/1",
     "versions": {"unroll", "numpy", "python"},
     "settings": {"steps", "seeds", "init", "init_options", "mode", "batch",
                  "input_scale", "loss", "quantiles", "threshold"},
     "thresholds": {"vanishing_below", "exploding_above", "first_steps_fraction",
                    "norm_drop", "units", "rule"},
     "distance": [T-1, ..., 0],                    # indexed by step t
     "models": [{"label", "graph", "axis", "distance", "params", "state_nodes",
                 "recurrent_weights",
                 "first_steps_share",
                 "summary": {state: {"decay_per_step", "factor_per_step",
                                     "distance_to_threshold", "verdict",
                                     "log10_norm_at_loss", "log10_drop_over_horizon"}},
                 "grad_norms": {state: {"median", "q_low", "q_high", "per_seed"}},
                 "contributions": {weight: {"log10_norm": band, "share": band}},
                 "recurrent_share": band,
                 "theory": {state: {"kind", "formula", "log10": band,
                                    "log10_factor": band or null}},
                 "verdict_from": "per-loss" or "total",
                 "per_loss": {state: band over distance t-k},  # losses at many steps
                 "warnings": [str]}]}       # only when there are any (see ModelProfile)

where a band is ``{"median", "q_low", "q_high"}``, each a list over steps t = 0 ... T-1
(``"distance"`` gives T-1-t for each; a model's own ``"distance"`` counts layers where its
``"axis"`` is ``"depth"``: a feed-forward graph, measured per layer, the first at index 0),
and ``log10_factor`` is Pascanu's per-step
``log10(gamma sigma_max)`` as ``{"median", "q_low", "q_high"}`` numbers over seeds, or
``null`` for a gate-path overlay.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from ..engine import bptt, check_memory
from ..errors import InputError, LimitError
from ..graph import Graph
from ..losses import LOSSES
from ..models import ModelSpec
from ..unrolled import DEFAULT_MAX_NODES, unroll
from .axes import AXES, axis_of
from .errors import AnalysisError
from .export import csv_cell, plain, plain_list, versions
from .logspace import log10_norm, log10_sum, quantiles
from .perloss import per_loss_norms, real_loss_cotangents
from .probes import (
    GivenData,
    as_models,
    draw_inputs,
    given_data,
    params_for_many,
    probe_cotangents,
    probe_name,
)
from .theory import theory_bound
from .verdict import DEFAULT_RULE, VerdictRule, distance_below, fit_decay, verdict

__all__ = ["SCHEMA", "ModelProfile", "Report", "StateSummary", "analyze", "compare"]

SCHEMA = "unroll.analysis.report/1"

#: The most seeds :func:`analyze` runs (each is one BPTT run per model).
MAX_SEEDS = 100_000


@dataclass(frozen=True)
class StateSummary:
    """The summary of one state node's median gradient norm against the distance."""

    decay_per_step: float
    factor_per_step: float
    distance_to_threshold: int | None
    verdict: str
    log10_norm_at_loss: float
    log10_drop_over_horizon: float

    def to_dict(self) -> dict:
        """Plain JSON-able dict, keys in declaration order."""
        return {k: plain(v) for k, v in self.__dict__.items()}


@dataclass
class ModelProfile:
    """Everything measured for one model: arrays of shape (seeds, T).

    Attributes
    ----------
    label : str
    spec : ModelSpec
    seeds : list of int
    quantiles : (float, float)
        The band's quantiles.
    grad_norms : dict
        ``{state node: array}`` of ``log10 ||dL/ds_t||`` over steps ``t``.
    contribution_norms : dict
        ``{recurrent weight: array}``: log10 norm of each step's contribution.
    shares : dict
        ``{recurrent weight or "recurrent": array}``: each step's share of the gradient.
    theory : dict
        ``{state node: array}``: the theory overlay's log10 over distance ``k``.
    theory_info : dict
        ``{state node: (kind, formula)}``.
    theory_factors : dict
        ``{state node: array (seeds,)}``: Pascanu's ``log10(gamma sigma_max)`` per seed
        (``nan`` for a gate-path overlay).
    summary : dict
        ``{state node: StateSummary}``.
    first_steps_share : float or None
        Median over seeds of the share of the first steps (``rule.first_steps_fraction``
        of the sequence) in the recurrent weights' gradient.
    warnings : list of str
        One line per fault of the measurement: a forward pass that overflowed (its seeds'
        norms are NaN), a state no gradient reaches.
    axis : str
        What distance counts (a key of :data:`unroll.analysis.axes.AXES`): ``"time"``
        (steps), or ``"depth"`` for a feed-forward graph, measured per layer: its series
        ``"h"`` holds ``log10 ||dL/dh||`` of each layer, the first layer at index 0.
    """

    label: str
    spec: ModelSpec
    seeds: list[int]
    quantiles: tuple[float, float]
    grad_norms: dict[str, np.ndarray]
    contribution_norms: dict[str, np.ndarray]
    shares: dict[str, np.ndarray]
    theory: dict[str, np.ndarray] = field(default_factory=dict)
    theory_info: dict[str, tuple[str, str]] = field(default_factory=dict)
    theory_factors: dict[str, np.ndarray] = field(default_factory=dict)
    summary: dict[str, StateSummary] = field(default_factory=dict)
    first_steps_share: float | None = None
    warnings: list[str] = field(default_factory=list)
    per_loss: dict[str, np.ndarray] = field(default_factory=dict)
    axis: str = "time"

    @property
    def verdict_from(self) -> str:
        """``"per-loss"`` where losses sit at many steps (the verdict reads each loss's own
        decay ``||dℓ_t/ds_k||`` against ``t - k``), else ``"total"`` (``dL/ds_t``)."""
        return "per-loss" if self.per_loss else "total"

    def per_loss_by_distance(self, state: str) -> dict[str, np.ndarray]:
        """The band of ``log10 ||dℓ_t/ds_k||`` over distance ``t - k``, over every loss
        step ``t`` and seed (only where losses sit at many steps)."""
        rows = self.per_loss[state]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no sample beyond the last loss
            med, lo, hi = (np.nanquantile(rows, q, axis=0) for q in (0.5, *self.quantiles))
        return {"median": med, "q_low": lo, "q_high": hi}

    def decay_curve(self, state: str) -> np.ndarray:
        """The median curve over distance the summary fits: per-loss if there is one."""
        if state in self.per_loss:
            return self.per_loss_by_distance(state)["median"]
        return self.by_distance(state)["median"]

    @property
    def state_nodes(self) -> list[str]:
        """The state nodes, in graph order."""
        return list(self.grad_norms)

    @property
    def steps(self) -> int:
        """The number of unrolled steps T."""
        return next(iter(self.grad_norms.values())).shape[1]

    def band(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """``{"median", "q_low", "q_high"}`` over seeds of an array ``(seeds, T)``."""
        med, lo, hi = quantiles(values, (0.5, *self.quantiles))
        return {"median": med, "q_low": lo, "q_high": hi}

    def by_distance(self, state: str) -> dict[str, np.ndarray]:
        """The band of ``log10 ||dL/ds||`` indexed by distance ``k`` (reversed steps)."""
        return {k: v[::-1] for k, v in self.band(self.grad_norms[state]).items()}


def _shares(log10_norms: np.ndarray) -> np.ndarray:
    total = log10_sum(log10_norms, axis=-1)
    with np.errstate(invalid="ignore"):
        return np.where(
            np.isfinite(total)[..., None],
            10.0 ** (log10_norms - np.asarray(total)[..., None]),
            np.nan,
        )


#: The most (model, seed) pairs one ensemble pass of :func:`analyze` runs together.
SEEDS_PER_PASS = 256


@dataclass
class _Measured:
    """Every seed of the models of one graph: arrays with leading axes ``(models, seeds)``.

    ``norms``, ``contrib`` and ``theory`` are ``(M, N, length)``, ``factors`` ``(M, N)``;
    ``faults`` holds, per model, ``(seed, message)`` of each overflowed seed, ``per_loss``
    (where losses sit at many steps) each loss's own gradient profile per state.
    """

    norms: dict[str, np.ndarray]
    contrib: dict[str, np.ndarray]
    faults: list[list[tuple[int, str]]]
    per_loss: list[dict[str, np.ndarray]]
    theory: dict[str, np.ndarray] = field(default_factory=dict)
    factors: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, tuple[str, str]] = field(default_factory=dict)


def _measure(
    specs: list[ModelSpec],
    steps: int,
    seeds,
    mode: str,
    batch: int,
    input_scale: float,
    loss: str,
    limits: dict,
    data: GivenData | None = None,
) -> _Measured:
    """Run every seed of models that share one graph (their parameters may differ), as
    ensembles of up to :data:`SEEDS_PER_PASS` (model, seed) pairs. ``data``: given inputs
    (and a loss) for every seed."""
    g = specs[0].graph
    axis = axis_of(g)
    u = unroll(g, *axis.unrolling(steps, mode), max_nodes=limits["max_nodes"])
    check_memory(u, batch, contributions=True, max_memory=limits["max_memory"])  # before init
    states, weights, length = axis.series(g), g.recurrent_params(), axis.length(g, steps)
    seeds = list(seeds)
    lead = (len(specs), len(seeds))
    many_losses = len(u.loss_steps) > 1
    out = _Measured(
        {s: np.empty((*lead, length)) for s in states},
        {w: np.empty((*lead, steps)) for w in weights},
        [[] for _ in specs],
        [],
    )
    per_loss: list[dict[str, list]] = [{s: [] for s in states} for _ in specs]
    with_theory = u.loss_steps == [steps - 1] and bool(weights)
    jobs = [(i, k, seed) for i in range(len(specs)) for k, seed in enumerate(seeds)]
    per_pass = _seeds_per_pass(u, batch, len(jobs), limits["max_memory"])
    for start in range(0, len(jobs), per_pass):
        chunk = jobs[start : start + per_pass]
        at = tuple(np.array([job[:2] for job in chunk]).T)  # (model, seed position) of each
        drawn = params_for_many([(specs[i], seed) for i, _, seed in chunk])
        r = bptt(
            u,
            drawn.params,
            *_inputs_and_cotangents(
                data, g, u, [seed for _, _, seed in chunk], batch, input_scale, loss
            ),
            contributions=weights or False,
            input_grads=False,
            max_memory=limits["max_memory"],
            **_given_loss(data),
        )
        lost = _lost(r, len(chunk))[:, None]  # every gradient through an overflow: meaningless
        for s, v in axis.norms(r, g).items():
            out.norms[s][at] = np.where(lost, np.nan, v)
        for w in weights:
            out.contrib[w][at] = np.where(lost, np.nan, r.contribution_log10_norms(w))
        if with_theory:
            bounds = theory_bound(g, drawn.params, r, spectral_norms=drawn.spectral_norms)
            _keep_theory(out, bounds, at, (*lead, steps))
        for m, (i, _, seed) in enumerate(chunk):
            if lost[m, 0]:
                out.faults[i].append((seed, r.model(m).warnings[0]))
            elif many_losses:
                xs = (
                    data.inputs
                    if data is not None
                    else draw_inputs(g, steps, seed, batch, input_scale)
                )
                params = drawn.model(m)
                for s, rows in _per_loss(u, params, xs, seed, batch, loss, data, limits).items():
                    per_loss[i][s].append(rows)
    out.per_loss = [{s: np.concatenate(rows) for s, rows in p.items() if rows} for p in per_loss]
    return out


def _lost(result, models: int) -> np.ndarray:
    """``(models,)`` booleans: whose forward pass overflowed."""
    if result.first_nonfinite() is None:
        return np.zeros(models, dtype=bool)
    return np.array([result.model(m).first_nonfinite() is not None for m in range(models)])


def _keep_theory(out: _Measured, bounds: dict, at: tuple, shape: tuple[int, int, int]) -> None:
    """Write one pass's theory overlays at the (model, seed) positions ``at`` of arrays
    ``shape`` ``(models, seeds, T)``."""
    for s, th in bounds.items():
        out.theory.setdefault(s, np.empty(shape))[at] = th.log10
        factor = np.nan if th.log10_factor is None else th.log10_factor
        out.factors.setdefault(s, np.full(shape[:2], np.nan))[at] = factor
        out.info[s] = (th.kind, th.formula)


def _by_graph(specs: dict[str, ModelSpec]) -> list[list[str]]:
    """The labels grouped by equal graphs (first appearance order): one ensemble each."""
    groups: list[list[str]] = []
    for label, spec in specs.items():
        for group in groups:
            if specs[group[0]].graph == spec.graph:
                group.append(label)
                break
        else:
            groups.append([label])
    return groups


def _per_loss(u, params, inputs, seed, batch, loss, data, limits) -> dict:
    """``{state: (loss steps, T)}`` of one seed: each loss's own gradient over distance."""
    if data is not None and data.loss is not None:
        full = real_loss_cotangents(u, params, inputs, data.loss, data.targets)
    else:
        full = probe_cotangents(loss, u, seed, batch)
    states = u.graph.state_nodes()
    per_pass = _seeds_per_pass(u, batch, len(u.loss_steps), limits["max_memory"])
    return per_loss_norms(u, params, inputs, full, states, limits["max_memory"], per_pass)


def _inputs_and_cotangents(data, graph, unrolled, chunk, batch, input_scale, loss):
    """The stacked inputs and probe cotangents of the seeds in ``chunk`` (None for a loss)."""
    seeds = sorted(set(chunk))  # a sweep's points share their seeds: draw each seed once
    if data is None:
        drawn = {s: draw_inputs(graph, unrolled.steps, s, batch, input_scale) for s in seeds}
        inputs = [drawn[s] for s in chunk]
    else:
        inputs = [data.inputs] * len(chunk)
    if data is not None and data.loss is not None:
        return _stack(inputs), None
    cotangents = {s: probe_cotangents(loss, unrolled, s, batch) for s in seeds}
    return _stack(inputs), _stack([cotangents[s] for s in chunk])


def _given_loss(data) -> dict:
    """``bptt``'s ``loss=``/``targets=`` for given data with a real loss."""
    if data is None or data.loss is None:
        return {}
    return {"loss": data.loss, "targets": data.targets}


def _seeds_per_pass(unrolled, batch: int, seeds: int, max_memory) -> int:
    """As many seeds as fit one pass: :data:`SEEDS_PER_PASS`, fewer where memory is short."""
    per_pass = min(SEEDS_PER_PASS, max(1, seeds))
    while per_pass > 1:
        try:
            check_memory(
                unrolled, batch, contributions=True, max_memory=max_memory, models=per_pass
            )
            break
        except LimitError:
            per_pass //= 2
    return per_pass


def _stack(per_seed: list[dict]) -> dict:
    """``{key: array}`` per seed -> ``{key: array (seeds, ...)}``: one ensemble."""
    return {key: np.stack([d[key] for d in per_seed]) for key in per_seed[0]}


def _summarize(
    profile: ModelProfile, curves: Mapping[str, np.ndarray], threshold: float, rule: VerdictRule
) -> None:
    """Each state's summary from its decay curve (:meth:`ModelProfile.decay_curve`)."""
    for s, curve in curves.items():
        slope = fit_decay(curve)
        zero = bool(np.isneginf(curve).any())
        reached = not np.isneginf(profile.grad_norms[s]).all()
        with np.errstate(invalid="ignore"):  # -inf - -inf: an unreached state has no drop
            drop = float(curve[-1] - curve[0])
        profile.summary[s] = StateSummary(
            decay_per_step=slope,
            factor_per_step=10.0**slope,
            distance_to_threshold=distance_below(curve, threshold),
            verdict=verdict(slope, zero, rule, reached=reached),
            log10_norm_at_loss=float(curve[0]),
            log10_drop_over_horizon=drop,
        )


def _all_shares(contrib: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each step's share of each recurrent weight's gradient, and of all of them as
    ``"recurrent"``: arrays ``(..., seeds, T)`` like ``contrib``."""
    shares = {w: _shares(v) for w, v in contrib.items()}
    if len(contrib) == 1:  # the joint norm of one weight is its own norm, bitwise
        shares["recurrent"] = next(iter(shares.values()))
    elif contrib:
        shares["recurrent"] = _shares(log10_norm(np.stack(list(contrib.values())), axis=0))
    return shares


def _first_steps_shares(recurrent: np.ndarray, rule: VerdictRule) -> list[float | None]:
    """Per model of the ``"recurrent"`` shares ``(models, seeds, T)``: the median, over the
    seeds whose gradient was not lost, of the first steps' share (``None``: no such seed)."""
    first = max(1, math.ceil(rule.first_steps_fraction * recurrent.shape[-1]))
    measured = ~np.isnan(recurrent).all(axis=-1)
    per_seed = np.nansum(recurrent[..., :first], axis=-1)
    if measured.all():
        return [float(v) for v in np.median(per_seed, axis=-1)]
    return [
        float(np.median(values[ok])) if ok.any() else None
        for values, ok in zip(per_seed, measured, strict=True)
    ]


def _check_reachable(label: str, graph) -> dict[str, str]:
    """``{state: reason}`` for the state nodes from which no path leads to an output.

    Raises :class:`AnalysisError` when the graph has no state node, or none reaches.
    """
    axis = axis_of(graph)
    states, outputs = axis.series(graph), graph.output_nodes()
    if not states:
        raise AnalysisError(f"model {label!r} {axis.nothing}")
    folded = nx.DiGraph([(e.source, e.target) for e in graph.edges])
    cut = {
        s: f"no path from {s} to the outputs ({', '.join(outputs)})"
        for s in graph.state_nodes()
        if not any(s == o or (o in folded and nx.has_path(folded, s, o)) for o in outputs)
    }
    if len(cut) == len(states):
        raise AnalysisError(_unreached(label, states, outputs, "; ".join(cut.values())))
    return cut


def _unreached(label: str, states, outputs, reason: str) -> str:
    return (
        f"model {label!r}: no gradient reaches {', '.join(states)} from the loss on "
        f"{', '.join(outputs)}: every gradient is exactly zero ({reason})"
    )


def _fault_warnings(profile: ModelProfile, faults, cut: dict[str, str]) -> list[str]:
    out = []
    if faults:
        seed, message = faults[0]
        count = f"{len(faults)} of {len(profile.seeds)} seeds overflowed"
        out.append(
            f"{message} with seed {seed}; {count}: their gradient norms are NaN (not meaningful)"
        )
    for s, sm in profile.summary.items():
        if sm.verdict == "unreached":
            reason = cut.get(s, "the gradient is exactly zero at every step for every seed")
            out.append(f"no gradient reaches {s}: every gradient is exactly zero ({reason})")
    return out


def _profiles(
    labels: list[str],
    specs: Mapping[str, ModelSpec],
    seeds: list[int],
    measured: _Measured,
    qs: tuple[float, float],
    threshold: float,
    rule: VerdictRule,
    cut: dict[str, str],
) -> dict[str, ModelProfile]:
    """The profiles of the models of one graph, summarised over the model axis at once."""
    shares = _all_shares(measured.contrib)
    first = (
        _first_steps_shares(shares["recurrent"], rule)
        if "recurrent" in shares
        else [None] * len(labels)
    )
    medians = {s: quantiles(v, (0.5,), axis=1)[0][..., ::-1] for s, v in measured.norms.items()}
    axis = axis_of(specs[labels[0]].graph).name
    out = {}
    for i, label in enumerate(labels):
        profile = ModelProfile(
            label,
            specs[label],
            list(seeds),
            qs,
            {s: v[i] for s, v in measured.norms.items()},
            {w: v[i] for w, v in measured.contrib.items()},
            {w: v[i] for w, v in shares.items()},
            {s: v[i] for s, v in measured.theory.items()},
            dict(measured.info),
            {s: v[i] for s, v in measured.factors.items()},
            per_loss=measured.per_loss[i],
            axis=axis,
        )
        curves = {
            s: profile.decay_curve(s) if s in profile.per_loss else medians[s][i]
            for s in profile.grad_norms
        }
        _summarize(profile, curves, threshold, rule)
        profile.first_steps_share = first[i]
        profile.warnings = _fault_warnings(profile, measured.faults[i], cut)
        out[label] = profile
    return out


def _refuse_unreached(profile: ModelProfile) -> None:
    """Raise :class:`AnalysisError` for a model no gradient reaches at all."""
    if all(sm.verdict == "unreached" for sm in profile.summary.values()):
        raise AnalysisError(
            _unreached(
                profile.label,
                profile.state_nodes,
                profile.spec.graph.output_nodes(),
                "the gradient is exactly zero at every step for every seed",
            )
        )


class Report:
    """The gradient profiles of one or several models on the same probes.

    Attributes
    ----------
    models : list of str
        The labels, in the order given.
    profiles : dict
        ``{label: ModelProfile}``.
    settings : dict
        The settings of :func:`analyze`.
    rule : VerdictRule
    threshold : float
    """

    def __init__(
        self, profiles: dict[str, ModelProfile], settings: dict, rule: VerdictRule, threshold: float
    ):
        self.profiles, self.settings, self.rule = profiles, settings, rule
        self.threshold = threshold

    @property
    def models(self) -> list[str]:
        """The model labels, in the order given."""
        return list(self.profiles)

    @property
    def steps(self) -> int:
        """The number of unrolled steps T."""
        return self.settings["steps"]

    @property
    def distance(self) -> np.ndarray:
        """Distance ``T-1-t`` from the last step, indexed by step ``t``."""
        return np.arange(self.steps)[::-1]

    @property
    def warnings(self) -> list[str]:
        """Every model's warnings, each prefixed with the model's label."""
        return [f"{label}: {w}" for label, p in self.profiles.items() for w in p.warnings]

    @property
    def summary(self) -> dict[str, dict[str, StateSummary]]:
        """``{label: {state node: StateSummary}}``."""
        return {label: p.summary for label, p in self.profiles.items()}

    @property
    def theory(self) -> dict[str, dict[str, dict]]:
        """``{label: {state node: {"kind", "formula", "median", "q_low", "q_high"}}}`` over
        distance k, for the models a theory applies to."""
        out = {}
        for label, p in self.profiles.items():
            if p.theory:
                out[label] = {
                    s: {
                        "kind": p.theory_info[s][0],
                        "formula": p.theory_info[s][1],
                        **p.band(values),
                    }
                    for s, values in p.theory.items()
                }
        return out

    def __getitem__(self, label: str) -> ModelProfile:
        return self.profiles[label]

    def summary_table(self) -> str:
        """A compact text table: one row per model and state node, the rule underneath."""
        drop = f"dist. to {self.threshold:g}"
        first = f"first {self.rule.first_steps_fraction:.0%} share"
        per = " or ".join(dict.fromkeys(AXES[p.axis].unit for p in self.profiles.values()))
        head = ["model", "state", f"decay/{per}", f"×/{per}", drop, "verdict", first]
        rows = [head]
        for label, p in self.profiles.items():
            for s, sm in p.summary.items():
                rows.append(
                    [
                        label,
                        s,
                        f"{sm.decay_per_step:+.4f}",
                        f"{sm.factor_per_step:.4g}",
                        "never"
                        if sm.distance_to_threshold is None
                        else str(sm.distance_to_threshold),
                        sm.verdict,
                        "-" if p.first_steps_share is None else f"{p.first_steps_share:.3g}",
                    ]
                )
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        notes = [
            f"decay/step: fitted slope of log10 ‖∂L/∂s_t‖ in decades per step over "
            f"{self.steps} steps, median of {len(self.settings['seeds'])} seeds; "
            f"{drop}: first distance where the norm < {self.threshold:g} × its value "
            "at the loss",
            self.rule.describe(),
        ]
        notes += [_verdict_note(p) for p in self.profiles.values() if p.per_loss]
        notes += [_depth_note(p) for p in self.profiles.values() if p.axis == "depth"]
        notes += [f"warning: {w}" for w in self.warnings]
        return "\n".join([*lines, "", *notes])

    def _repr_html_(self) -> str:
        """The summary as an HTML table, for Jupyter: one row per model and state node."""
        drop = f"dist. to {self.threshold:g}"
        head = ["model", "state", "decay/step", "×/step", drop, "verdict", "verdict from"]
        rows = []
        for label, p in self.profiles.items():
            for s, sm in p.summary.items():
                dist = "never" if sm.distance_to_threshold is None else sm.distance_to_threshold
                cells: list[object] = [label, s, f"{sm.decay_per_step:+.4f}"]
                cells.append(f"{sm.factor_per_step:.4g}")
                cells += [dist, sm.verdict, p.verdict_from]
                rows.append("".join(f"<td>{html.escape(str(c))}</td>" for c in cells))
        header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        body = "".join(f"<tr>{r}</tr>" for r in rows)
        notes = [self.rule.describe(), *self.warnings]
        caption = "".join(f"<br><small>{html.escape(n)}</small>" for n in notes)
        return (
            f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"
            f"<p><small>{self.steps} steps, {len(self.settings['seeds'])} seeds, mode "
            f"{html.escape(str(self.settings['mode']))}</small>{caption}</p>"
        )

    def __str__(self) -> str:
        return self.summary_table()

    def __repr__(self) -> str:
        return f"Report(models={self.models!r}, steps={self.steps})"

    # ---- export --------------------------------------------------------------------------

    def _band_json(self, p: ModelProfile, values: np.ndarray) -> dict:
        return {k: plain_list(v) for k, v in p.band(values).items()}

    def _model_json(self, p: ModelProfile) -> dict:
        g = p.spec.graph
        return {
            "label": p.label,
            "graph": g.name,
            "axis": p.axis,
            "distance": list(range(p.steps))[::-1],
            "params": plain(p.spec.describe()),
            "state_nodes": p.state_nodes,
            "recurrent_weights": list(p.contribution_norms),
            "first_steps_share": plain(p.first_steps_share),
            "summary": {s: sm.to_dict() for s, sm in p.summary.items()},
            "grad_norms": {
                s: {**self._band_json(p, v), "per_seed": [plain_list(row) for row in v]}
                for s, v in p.grad_norms.items()
            },
            "contributions": {
                w: {"log10_norm": self._band_json(p, v), "share": self._band_json(p, p.shares[w])}
                for w, v in p.contribution_norms.items()
            },
            "recurrent_share": (
                self._band_json(p, p.shares["recurrent"]) if "recurrent" in p.shares else None
            ),
            "theory": {
                s: {
                    "kind": p.theory_info[s][0],
                    "formula": p.theory_info[s][1],
                    "log10": self._band_json(p, v[:, ::-1]),
                    "log10_factor": (
                        {
                            k: plain(float(b[0]))
                            for k, b in p.band(p.theory_factors[s][:, None]).items()
                        }
                        if np.isfinite(p.theory_factors[s]).any()
                        else None
                    ),
                }
                for s, v in p.theory.items()
            },
            "verdict_from": p.verdict_from,
            "per_loss": {
                s: {k: plain_list(v) for k, v in p.per_loss_by_distance(s).items()}
                for s in p.per_loss
            },
            **({"warnings": list(p.warnings)} if p.warnings else {}),
        }

    def to_dict(self) -> dict:
        """The report as plain JSON-able data (see the module docstring for the schema)."""
        return {
            "schema": SCHEMA,
            "versions": versions(),
            "settings": self.settings,
            "thresholds": {
                **self.rule.to_dict(),
                "norm_drop": self.threshold,
                "units": "decades (log10) per step",
                "rule": self.rule.describe(),
            },
            "distance": [int(d) for d in self.distance],
            "models": [self._model_json(p) for p in self.profiles.values()],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text, byte-stable for equal inputs."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    def to_csv(self) -> str:
        """The per-step table in long form, one row per (model, series, node, step).

        Columns: ``model, series, node, step, distance, median, q_low, q_high``; series
        ``log10_grad_norm`` (node: a state), ``log10_contribution_norm`` and
        ``contribution_share`` (node: a recurrent weight, or ``recurrent`` for all of
        them), ``theory_log10`` (node: a state). For a feed-forward model (``axis``
        ``depth`` in the JSON) ``step`` is a layer's index (0: the first) and ``distance``
        the layers from the loss. Numbers are written with 17 significant digits; ``-inf``
        is an exactly zero gradient.
        """
        buf = io.StringIO()
        out = csv.writer(buf, lineterminator="\n")
        out.writerow(["model", "series", "node", "step", "distance", "median", "q_low", "q_high"])
        for label, p in self.profiles.items():
            T = p.steps
            series = [("log10_grad_norm", s, v) for s, v in p.grad_norms.items()]
            series += [("log10_contribution_norm", w, v) for w, v in p.contribution_norms.items()]
            series += [("contribution_share", w, v) for w, v in p.shares.items()]
            series += [("theory_log10", s, v[:, ::-1]) for s, v in p.theory.items()]
            for name, node, values in series:
                band = p.band(values)
                for t in range(T):
                    out.writerow(
                        [
                            label,
                            name,
                            node,
                            t,
                            T - 1 - t,
                            *(csv_cell(band[k][t]) for k in ("median", "q_low", "q_high")),
                        ]
                    )
        return buf.getvalue()


def _seed_list(seeds) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if not 1 <= seeds <= MAX_SEEDS:
            raise AnalysisError(
                f"seeds must be a count from 1 to {MAX_SEEDS:,} or a list of seeds, got {seeds}"
            )
        return list(range(int(seeds)))
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise AnalysisError(f"seeds must be a positive count or a list of seeds, got {seeds!r}")
    seed_list = list(seeds)
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in seed_list):
        raise AnalysisError(f"seeds: every seed must be an integer, got {seed_list!r}")
    if not seed_list:
        raise AnalysisError("seeds: the list of seeds is empty")
    if any(s < 0 for s in seed_list):
        raise AnalysisError(f"seeds: a seed must not be negative, got {seed_list!r}")
    return [int(s) for s in seed_list]


def _check_settings(batch, input_scale, quantiles, threshold) -> tuple[float, float]:
    """Check analyze's numeric settings; return the quantiles as two floats."""
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise AnalysisError(f"batch must be a positive integer, got {batch!r}")
    if not _is_real(input_scale) or not math.isfinite(input_scale):
        raise AnalysisError(f"input_scale must be a finite number, got {input_scale!r}")
    if not _is_real(threshold) or not 0 < threshold < 1:
        raise AnalysisError(f"threshold must be a number between 0 and 1, got {threshold!r}")
    try:
        low, high = (float(q) for q in quantiles)
    except (TypeError, ValueError):
        raise AnalysisError(f"quantiles must be two numbers, got {quantiles!r}") from None
    if not 0 <= low <= high <= 1:
        raise AnalysisError(f"quantiles must satisfy 0 <= low <= high <= 1, got {quantiles!r}")
    return low, high


def _is_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def analyze(
    model,
    steps: int = 100,
    seeds=10,
    *,
    init: str = "torch",
    init_options: Mapping | None = None,
    mode: str = "many-to-one",
    batch: int = 1,
    input_scale: float = 1.0,
    loss: str = "random",
    quantiles=(0.1, 0.9),
    threshold: float = 1e-3,
    rule: VerdictRule = DEFAULT_RULE,
    params=None,
    max_nodes: int | None = DEFAULT_MAX_NODES,
    max_memory: int | str | None = "auto",
    inputs=None,
    targets=None,
    batch_first: bool | None = None,
) -> Report:
    """Measure how gradient norms vanish or explode with the distance from the loss.

    Parameters
    ----------
    model : Graph, imported model, BPTTResult or dict
        One graph, or ``{label: Graph | (Graph, init options) | ModelSpec}`` to compare
        several (every model gets the same inputs and the same loss probe). An init
        options dict may name the scheme (``{"init": "orthogonal", "spectral_norm": 1}``).
        An imported model (:func:`unroll.from_torch`, ``from_keras``, ``from_onnx``)
        keeps its own weights. A single :class:`~unroll.engine.BPTTResult` (a run you
        made) is summarised as it is: one "seed", no other argument applies.
    steps : int
        Unrolled length T.
    seeds : int or list of int
        ``n`` means seeds ``0 ... n-1``; each draws parameters, inputs and the probe.
    init : str
        Default scheme of :func:`unroll.init_params` (``torch``, ``orthogonal``, ...).
    init_options : mapping, optional
        Default options of :func:`unroll.init_params` (``spectral_norm``, ``forget_bias``,
        ``bias``, ...).
    mode : str
        Sequence mode (default ``many-to-one``: inputs at every step, loss at the last).
    batch : int
        Sequences per seed (norms are over batch and units).
    input_scale : float
        Inputs are standard normal times this (0 for zero input).
    loss : {"random", "sum", "mse", "xent"}
        The loss probe: ``random`` (alias ``"random cotangent"``) puts a seeded random
        cotangent of unit norm on the output at each loss step; ``sum`` puts ones. With
        ``inputs``, ``mse`` and ``xent`` are the real losses on ``targets``.
    quantiles : (float, float)
        The band drawn around the median over seeds.
    threshold : float
        The summary reports the first distance where the norm falls below
        ``threshold`` times its value at the loss.
    rule : VerdictRule
        Thresholds of the verdict (default: slope < -0.005 decades/step vanishing,
        > +0.005 exploding).
    params : mapping or callable, optional
        Fixed parameters of a single graph (or ``seed -> params``) instead of drawing.
    max_nodes, max_memory
        The size limits of :func:`unroll.unroll` and :func:`unroll.bptt` (20 million
        node instances; 8 GiB or the available memory); ``None`` lifts them.
    inputs : array or mapping, optional
        Your sequences instead of random ones: ``(T, B, n)`` (``{input node: array}`` for
        several inputs), batch first where the model is (a ``batch_first`` torch module)
        or with ``batch_first=True``; ``steps`` and ``batch`` then come from them.
    targets : array or mapping, optional
        The targets of an ``mse`` or ``xent`` loss, at every step or at the loss steps of
        ``mode``, in the inputs' layout.
    batch_first : bool, optional
        The layout of ``inputs`` and ``targets`` (default: the model's own).

    Returns
    -------
    Report
        Its :attr:`~Report.warnings` name a forward pass that overflowed (first node and
        step; those seeds' norms are NaN and the verdict ``undefined``) and any state no
        gradient reaches (verdict ``unreached``).

    Raises
    ------
    AnalysisError
        For an unknown probe, a bad model spec, bad seeds or settings, a model without
        state nodes, or one where no gradient reaches any state ("no gradient reaches h
        from the loss on y: every gradient is exactly zero ..."); ``UnrollError``
        subclasses from the core for a bad graph, mode or init option, and
        :class:`~unroll.errors.LimitError` above the size limits.

    Examples
    --------
    >>> import unroll
    >>> g = unroll.presets.elman(4, 8, bias=False)
    >>> rep = analyze(g, steps=30, seeds=2, init="orthogonal",
    ...               init_options={"spectral_norm": 0.5}, input_scale=0.0)
    >>> s = rep.summary["elman"]["h"]
    >>> round(s.decay_per_step, 6), s.verdict, s.distance_to_threshold
    (-0.30103, 'vanishing', 10)
    """
    if _is_result(model):
        return _report_of_result(model, quantiles, threshold, rule)
    specs = as_models(model, init, init_options, params)
    _refuse_init_for_imports(model, init, init_options)
    data = None
    if inputs is not None:
        graph = next(iter(specs.values())).graph
        real = loss if loss in LOSSES and loss != "sum" else None
        data = given_data(model, graph, inputs, targets, real, batch_first)
        steps, batch = data.steps, data.batch
    elif targets is not None:
        raise AnalysisError("targets= needs inputs= (the sequences the targets belong to)")
    seed_list = _seed_list(seeds)
    if data is not None and data.loss is not None and _all_fixed(specs):
        seed_list = seed_list[:1]  # fixed weights, inputs and loss: every seed is the same run
    loss = loss if data is not None and data.loss is not None else probe_name(loss)
    qs = _check_settings(batch, input_scale, quantiles, threshold)
    limits = {"max_nodes": max_nodes, "max_memory": max_memory}
    groups = _by_graph(specs)  # models of one graph run as one ensemble
    cuts = [_check_reachable(labels[0], specs[labels[0]].graph) for labels in groups]
    built: dict[str, ModelProfile] = {}  # (every graph is checked before any run)
    for labels, cut in zip(groups, cuts, strict=True):
        group = [specs[label] for label in labels]
        measured = _measure(group, steps, seed_list, mode, batch, input_scale, loss, limits, data)
        built.update(_profiles(labels, specs, seed_list, measured, qs, threshold, rule, cut))
    profiles = {label: built[label] for label in specs}
    for profile in profiles.values():
        _refuse_unreached(profile)
    settings = {
        "steps": steps,
        "seeds": seed_list,
        "init": init,
        "init_options": plain(dict(sorted((init_options or {}).items()))),
        "mode": mode,
        "batch": int(batch),
        "input_scale": float(input_scale),
        "loss": loss,
        "quantiles": list(qs),
        "threshold": float(threshold),
    }
    if data is not None:
        settings["inputs"] = "given"
    return Report(profiles, settings, rule, threshold)


def _depth_note(p: ModelProfile) -> str:
    return (
        f"{p.label}: no delays, a feed-forward net of {p.steps} layers: distance = layers "
        "from the loss, decay and × per layer, ‖∂L/∂h_l‖ of each layer l (depth is "
        "time without tied weights)"
    )


def _verdict_note(p: ModelProfile) -> str:
    return (
        f"{p.label}: losses at {len(p.per_loss[p.state_nodes[0]]) // len(p.seeds)} steps: "
        "decay, distance and verdict read each loss's own gradient ‖∂ℓ_t/∂s_k‖ against "
        "t−k (median over t and seeds), not the total ‖∂L/∂s_t‖, which sums every later loss"
    )


def _refuse_init_for_imports(model, init, init_options) -> None:
    """An imported model has its own weights: an init scheme or option would be ignored."""
    if not (isinstance(getattr(model, "graph", None), Graph) and hasattr(model, "params")):
        return
    if init != "torch" or init_options:
        given = [f"init={init!r}"] if init != "torch" else []
        given += [f"{k}={v!r}" for k, v in sorted((init_options or {}).items())]
        raise AnalysisError(
            f"{', '.join(given)} does not apply to an imported model: it has its own weights"
        )


def _all_fixed(specs: dict) -> bool:
    return all(isinstance(s.params, Mapping) for s in specs.values())


def _is_result(value) -> bool:
    return hasattr(value, "log10_grad_norms") and hasattr(value, "unrolled")


def _report_of_result(result, quantiles_, threshold, rule) -> Report:
    """The report of one run the user made: its gradient norms as one seed."""
    u = result.unrolled
    g = u.graph
    qs = _check_settings(1, 1.0, quantiles_, threshold)
    axis = axis_of(g)
    norms = {s: np.atleast_2d(v) for s, v in axis.norms(result, g).items()}
    if any(v.shape[0] != 1 for v in norms.values()):
        raise AnalysisError("analyze takes one run; pick one model of an ensemble with r.model(m)")
    contrib = {}
    for w in g.recurrent_params():
        try:
            contrib[w] = np.atleast_2d(result.contribution_log10_norms(w))
        except InputError:  # the run kept no per-step contributions
            contrib = {}
            break
    shares = _all_shares(contrib)
    run = getattr(result, "run", None)
    spec = ModelSpec(g, params=dict(run.params) if run is not None else {})
    profile = ModelProfile(g.name, spec, [0], qs, norms, contrib, shares, axis=axis.name)
    profile.per_loss = _per_loss_of_result(result)
    _summarize(profile, {s: profile.decay_curve(s) for s in norms}, threshold, rule)
    if "recurrent" in shares:
        (profile.first_steps_share,) = _first_steps_shares(shares["recurrent"][None], rule)
    settings = {
        "steps": u.steps,
        "seeds": [0],
        "init": "given",
        "init_options": {},
        "mode": u.mode.name,
        "batch": int(next(iter(result.values.values())).shape[-2]),
        "input_scale": float("nan"),
        "loss": "given",
        "quantiles": list(qs),
        "threshold": float(threshold),
        "inputs": "given",
    }
    return Report({g.name: profile}, settings, rule, threshold)


def _per_loss_of_result(result) -> dict:
    """Each loss step's own decay in a run whose cotangents sit at several steps (as
    :func:`analyze` measures it for a model); ``{}`` for one step or a truncated run."""
    run = getattr(result, "run", None)
    if run is None:
        return {}
    steps = sorted({t for _, t in run.cotangents})
    if len(steps) < 2 or run.truncate is not None:
        return {}
    u = result.unrolled
    batch = next(iter(run.cotangents.values())).shape[-2]
    per_pass = _seeds_per_pass(u, batch, len(steps), "auto")
    return per_loss_norms(
        u,
        run.params,
        run.inputs,
        run.cotangents,
        u.graph.state_nodes(),
        "auto",
        per_pass,
        loss_steps=steps,
        initial_states=run.initial_states,
    )


def compare(
    models, steps: int = 100, seeds=10, *, inits: Mapping | None = None, **options
) -> Report:
    """Analyze several models on the same probes; or one graph under several inits.

    ``compare({"RNN": g1, "LSTM": g2})`` is ``analyze`` with a dict;
    ``compare(g, inits={"torch": {}, "orthogonal": {"init": "orthogonal"}})`` analyzes one
    graph under each init (options as in a ``(Graph, options)`` model spec).

    Examples
    --------
    >>> import unroll
    >>> g = unroll.presets.elman(2, 4)
    >>> rep = compare(g, steps=10, seeds=2,
    ...               inits={"small": {"spectral_norm": 0.5}, "large": {"spectral_norm": 2.0}})
    >>> rep.models
    ['small', 'large']
    """
    if inits is not None:
        models = {label: (models, dict(opts)) for label, opts in inits.items()}
    return analyze(models, steps, seeds, **options)
