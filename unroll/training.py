"""Train a recurrent graph on a task with minibatch BPTT; record how far back the gradient reaches.

:func:`train` draws a fresh minibatch of the task at every iteration, runs
:func:`unroll.bptt` (full, or truncated with ``truncate=(k1, k2)``), optionally clips the
gradient on its global norm (Pascanu et al. 2013), and updates the parameters with an
optimizer of :data:`OPTIMIZERS` (SGD with momentum, or Adam, as torch.optim defines them).
Every ``record_every`` iterations it runs the fixed batch the task came with (the *probe*)
and keeps the per-step profile ``log10 ||dL/dh_t||`` of the loss at the task's recall
steps (:attr:`unroll.tasks.Task.recall_steps`), so one can watch the gradient reach
further back in time as an LSTM learns, while a plain tanh loop's stays short.

A graph without an output layer ``y`` gets a linear readout (:func:`with_readout`).
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .analysis.clipping import clip_gradients, global_norm
from .analysis.export import plain, plain_list, versions
from .engine import bptt
from .errors import RunFailure, UnrollError
from .graph import Graph
from .init import init_params
from .losses import loss_cotangents
from .plot import axes_or_new
from .tasks import Task, adding_problem

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adam",
    "TrainHistory",
    "TrainingDiverged",
    "TrainingError",
    "load_model_for_task",
    "make_optimizer",
    "plot_losses",
    "plot_profiles",
    "train",
    "train_gallery_figure",
    "training_figure",
    "with_readout",
]


class TrainingError(UnrollError):
    """Training cannot go on (a non-finite loss or gradient), or a setting it cannot use."""


class TrainingDiverged(TrainingError, RunFailure):
    """The loss or gradient stopped being finite while training (exit 1 on the command line)."""


# ---- optimizers -----------------------------------------------------------------------------


class SGD:
    """Stochastic gradient descent with momentum, as ``torch.optim.SGD`` (no dampening).

    ``v <- momentum * v + g``, then ``p <- p - lr * v``; ``momentum=0`` is plain SGD.

    Examples
    --------
    >>> p, opt = {"w": np.array([1.0])}, SGD(lr=0.1, momentum=0.9)
    >>> opt.step(p, {"w": np.array([2.0])}); opt.step(p, {"w": np.array([2.0])})
    >>> p["w"].round(12).tolist()  # 1 - 0.1*2 - 0.1*(0.9*2 + 2)
    [0.42]
    """

    name = "sgd"
    default_lr = 0.01

    def __init__(self, lr: float = default_lr, momentum: float = 0.9):
        if not lr > 0 or not 0 <= momentum < 1:
            raise TrainingError(f"sgd needs lr > 0 and 0 <= momentum < 1, got {lr}, {momentum}")
        self.lr, self.momentum = float(lr), float(momentum)
        self.velocity: dict[str, np.ndarray] = {}

    def step(self, params: dict[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        """Update ``params`` in place from ``grads``."""
        for name, g in grads.items():
            v = self.velocity.get(name)
            if v is None:
                v = self.velocity[name] = np.array(g, dtype=params[name].dtype)
            else:
                v *= self.momentum
                v += g
            params[name] -= self.lr * v


class Adam:
    """Adam (Kingma & Ba 2015), as ``torch.optim.Adam``; ``momentum`` is its ``beta1``.

    ``m <- b1 m + (1-b1) g``, ``v <- b2 v + (1-b2) g^2``,
    ``p <- p - lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)``.

    Examples
    --------
    The first step moves every entry by ``lr`` against the sign of its gradient:

    >>> p, opt = {"w": np.array([1.0, 1.0])}, Adam(lr=0.1)
    >>> opt.step(p, {"w": np.array([3.0, -0.01])})
    >>> p["w"].round(4).tolist()
    [0.9, 1.1]
    """

    name = "adam"
    default_lr = 1e-3

    def __init__(
        self, lr: float = default_lr, momentum: float = 0.9, beta2: float = 0.999, eps=1e-8
    ):
        if not lr > 0 or not 0 <= momentum < 1 or not 0 <= beta2 < 1:
            raise TrainingError(f"adam needs lr > 0 and betas in [0, 1), got {lr}, {momentum}")
        self.lr, self.beta1, self.beta2, self.eps = float(lr), float(momentum), beta2, eps
        self.t = 0
        self.first: dict[str, np.ndarray] = {}
        self.second: dict[str, np.ndarray] = {}

    def step(self, params: dict[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        """Update ``params`` in place from ``grads``."""
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        step_size = self.lr / (1.0 - b1**self.t)
        root_correction = math.sqrt(1.0 - b2**self.t)
        for name, g in grads.items():
            p = params[name]
            m = self.first.setdefault(name, np.zeros_like(p))
            v = self.second.setdefault(name, np.zeros_like(p))
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * np.square(g)
            p -= step_size * m / (np.sqrt(v) / root_correction + self.eps)


#: Optimizers by name; each takes ``lr`` and ``momentum`` (Adam's ``beta1``).
OPTIMIZERS: dict[str, type] = {"sgd": SGD, "adam": Adam}


def make_optimizer(name: str, lr: float | None = None, momentum: float = 0.9):
    """An optimizer of :data:`OPTIMIZERS` (``lr=None``: its default, 0.01 SGD, 1e-3 Adam).

    Examples
    --------
    >>> make_optimizer("adam").lr, make_optimizer("sgd", lr=0.1, momentum=0.5).momentum
    (0.001, 0.5)
    """
    if name not in OPTIMIZERS:
        raise TrainingError(f"unknown optimizer {name!r} (known: {', '.join(OPTIMIZERS)})")
    cls = OPTIMIZERS[name]
    return cls(lr=cls.default_lr if lr is None else lr, momentum=momentum)


# ---- the model --------------------------------------------------------------------------------


def _free_name(taken, base: str) -> str:
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}{k}"
    return name


def with_readout(graph: Graph, output_size: int) -> Graph:
    """``graph`` with a linear readout ``y = W_hy h + b_y`` of ``output_size`` units.

    The readout reads the graph's output node (its top state). A graph whose output node
    is already named ``y`` with ``output_size`` units is returned as it is; otherwise a
    copy gets the readout (named ``y2``, ``W_hy2``, ... if those names are taken).

    Examples
    --------
    >>> import unroll
    >>> g = with_readout(unroll.presets.lstm(2, 4), 1)
    >>> g.output_nodes(), g.params()["W_hy"], g.params()["b_y"]
    (['y'], (1, 4), (1,))
    >>> with_readout(g, 1) is g
    True
    """
    outputs = graph.output_nodes()
    if len(outputs) != 1:
        raise TrainingError(
            f"graph {graph.name!r} has {len(outputs)} output nodes ({', '.join(outputs)}); "
            "a readout needs exactly one"
        )
    top = outputs[0]
    if top == "y" and graph.nodes[top].size == output_size:
        return graph
    g = graph.copy()
    params = set(graph.params())
    y = _free_name(g.nodes, "y")
    suffix = y[1:]
    g.layer(y, output_size, "identity", biases=(_free_name(params, f"b_y{suffix}"),))
    g.edge(top, y, weight=_free_name(params, f"W_hy{suffix}"))
    g.set_outputs(y)
    return g.validate()


def load_model_for_task(spec, task: Task):
    """Resolve a MODEL argument (see :func:`unroll.models.load_model`) with the task's inputs.

    A preset spec that does not set its input size gets the task's (``lstm:hidden=32``
    reads the adding problem's 2 inputs); any other model must already match it.

    Returns
    -------
    unroll.models.Model

    Raises
    ------
    unroll.models.ModelSpecError
        For an unknown model, or an input size that does not match the task.

    Examples
    --------
    >>> from unroll.tasks import copy_memory
    >>> load_model_for_task("gru:hidden=4", copy_memory(5)).graph.nodes["x"].size
    10
    """
    from .models import (
        MODEL_SOURCES,
        OPTION_ALIASES,
        Model,
        ModelSpecError,
        build_preset,
        load_model,
        parse_preset_spec,
    )
    from .presets import PRESETS, preset_options

    if isinstance(spec, str) and next(s for s in MODEL_SOURCES if s.matches(spec)).name == "preset":
        name, options = parse_preset_spec(spec)
        given = {OPTION_ALIASES.get(k, k) for k in options}
        if name in PRESETS and "input_size" in preset_options(name) and "input_size" not in given:
            return Model(build_preset(name, {**options, "input_size": task.input_size}), None, spec)
    model = load_model(spec)
    inputs = model.graph.input_nodes()
    sizes = [model.graph.nodes[n].size for n in inputs]
    if sizes != [task.input_size]:
        have = ", ".join(f"{n} of size {s}" for n, s in zip(inputs, sizes, strict=True))
        raise ModelSpecError(
            f"{model.label}: the {task.name} task feeds one input of size {task.input_size}, "
            f"the model has {have or 'no input'}"
        )
    return model


# ---- history --------------------------------------------------------------------------------


@dataclass
class TrainHistory:
    """What :func:`train` recorded.

    Attributes
    ----------
    label : str
        The model's name (for legends).
    graph : Graph
        The graph trained (with its readout).
    task : Task
        The probe batch (the task passed to :func:`train`): its name, length, baseline.
    losses : numpy.ndarray
        The minibatch loss at every iteration, before that iteration's update.
    grad_norms : numpy.ndarray
        The global norm of the parameter gradient at every iteration, before clipping.
    profiles : dict
        ``{iteration: log10 ||dL/d(node, t)|| over t}`` on the probe batch, every
        ``record_every`` iterations and after the last (``iteration = iterations``);
        ``L`` is the part of the loss at the task's recall steps (all of it for the
        adding problem, the last ten steps of the copy problem).
    probe_losses : dict
        ``{iteration: loss on the probe batch}`` at the same iterations.
    params : dict
        The trained parameters.
    settings : dict
        The options of the run (optimizer, lr, batch, clip, truncate, seed, ...).
    seconds : float
        Wall time of the run (not part of :meth:`to_json`, which is deterministic).
    """

    label: str
    graph: Graph
    task: Task
    losses: np.ndarray
    grad_norms: np.ndarray
    profiles: dict[int, np.ndarray]
    probe_losses: dict[int, float]
    params: dict[str, np.ndarray]
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def baseline(self) -> float:
        """The task's memoryless loss."""
        return self.task.baseline

    @property
    def profile_node(self) -> str:
        """The node whose gradient norms :attr:`profiles` holds."""
        return self.settings["profile_node"]

    def final_loss(self, window: int | None = None) -> float:
        """The mean minibatch loss over the last ``window`` iterations (default: the last
        1/40 of the run, as the running mean of :func:`plot_losses`)."""
        return float(np.mean(self.losses[-(window or _window(len(self.losses))) :]))

    def reach(self, iteration: int) -> float:
        """``log10`` of the recall loss's gradient at the first step holding what must be
        remembered, relative to the last step, at a recorded ``iteration``: how far back
        the gradient reaches (0: undiminished; -20: 10^20 times smaller)."""
        profile = self.profiles[iteration]
        return float(profile[self.task.source_span[0]] - profile[-1])

    def summary(self) -> str:
        """Three lines: the run, the loss against the baseline, the gradient's reach.

        Examples
        --------
        >>> import unroll
        >>> from unroll.tasks import adding_problem
        >>> h = train(unroll.presets.elman(2, 3), adding_problem(4, 8), iterations=5)
        >>> print(h.summary().splitlines()[0])  # doctest: +ELLIPSIS
        elman on adding (T=4, 4 steps): 5 iterations, batch 8, adam lr 0.001, ... s
        """
        task, s = self.task, self.settings
        clipping = "" if s["clip"] is None else f", clip {s['clip']:g}"
        window = _window(len(self.losses))
        final, first = self.final_loss(), float(np.mean(self.losses[:window]))
        start, end = min(self.profiles), max(self.profiles)
        node, source = self.profile_node, task.source_span[0]
        return "\n".join(
            [
                f"{self.label} on {task.name} (T={task.length}, {task.steps} steps): "
                f"{s['iterations']} iterations, batch {s['batch']}, {s['optimizer']} "
                f"lr {s['lr']:g}{clipping}, {self.seconds:.1f} s",
                f"loss {first:.4g} -> {final:.4g} (mean of {window} minibatches); memoryless "
                f"baseline {self.baseline:.4g}, final/baseline = {final / self.baseline:.3g}",
                f"gradient reach ||dL/d{node}_{source}|| / ||dL/d{node}_{task.steps - 1}||: "
                f"10^{self.reach(start):.1f} at iteration {start}, "
                f"10^{self.reach(end):.1f} at iteration {end}",
            ]
        )

    def to_dict(self, include_params: bool = False) -> dict:
        """The history as plain data (see :meth:`to_json`)."""
        out = {
            "schema": "unroll.training.history/1",
            "versions": versions(),
            "label": self.label,
            "graph": self.graph.name,
            "task": {
                "name": self.task.name,
                "length": self.task.length,
                "steps": self.task.steps,
                "loss": self.task.loss,
                "mode": self.task.mode,
                "baseline": self.baseline,
                "probe_batch": self.task.batch,
                "probe_seed": self.task.seed,
            },
            "settings": plain(self.settings),
            "losses": plain_list(self.losses),
            "grad_norms": plain_list(self.grad_norms),
            "probe_losses": {str(i): plain(v) for i, v in sorted(self.probe_losses.items())},
            "profiles": {str(i): plain_list(v) for i, v in sorted(self.profiles.items())},
        }
        if include_params:
            out["params"] = {k: plain(v) for k, v in sorted(self.params.items())}
        return out

    def to_json(self, include_params: bool = False, indent: int | None = 2) -> str:
        """JSON text, byte-stable for equal runs; non-finite numbers are ``null``.

        Keys: ``schema, versions, label, graph, task {name, length, steps, loss, mode,
        baseline, probe_batch, probe_seed}, settings, losses, grad_norms, probe_losses
        {iteration: loss}, profiles {iteration: [log10 norm per step]}`` and, with
        ``include_params``, ``params {name: nested lists}``.
        """
        return json.dumps(self.to_dict(include_params), indent=indent, allow_nan=False)

    def __repr__(self) -> str:
        return (
            f"TrainHistory({self.label!r} on {self.task.name} T={self.task.length}, "
            f"iterations={len(self.losses)}, final loss={self.final_loss():.4g}, "
            f"baseline={self.baseline:.4g})"
        )


# ---- training -------------------------------------------------------------------------------


def _initial_params(graph, given, seed, init, dtype):
    drawn = init_params(graph, seed, **dict(init or {}), dtype=dtype)
    if given is None:
        return drawn
    unknown = sorted(set(given) - set(drawn))
    if unknown:
        raise TrainingError(f"unknown parameter {unknown[0]!r} for graph {graph.name!r}")
    return {k: np.array(given.get(k, v), dtype=dtype) for k, v in drawn.items()}


def _settings(**options) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in options.items()}


def _check_finite(loss, norm, iteration) -> None:
    if not (math.isfinite(loss) and math.isfinite(norm)):
        what = f"loss {loss}" if not math.isfinite(loss) else f"gradient norm {norm}"
        raise TrainingDiverged(
            f"{what} at iteration {iteration}: lower the learning rate or clip the gradient"
        )


def _model_for(graph: Graph, task: Task, profile_node: str | None):
    """The graph with its readout, its input's name, and the node to profile."""
    model = with_readout(graph, task.output_size)
    inputs = model.input_nodes()
    if len(inputs) != 1 or model.nodes[inputs[0]].size != task.input_size:
        raise TrainingError(
            f"graph {graph.name!r} must have one input of size {task.input_size} for the "
            f"{task.name} task, has {', '.join(f'{n}:{model.nodes[n].size}' for n in inputs)}"
        )
    node = profile_node or next(e.source for e in model.in_edges(model.output_nodes()[0]))
    if node not in model.nodes:
        raise TrainingError(f"profile_node {node!r} is not a node of graph {graph.name!r}")
    return model, inputs[0], node


def _recall_cotangents(unrolled, result, task: Task) -> dict:
    """dL/dy at the recall steps only: the part of the loss that needs memory."""
    identity = {inst: inst for inst in unrolled.loss_instances}
    _, grads = loss_cotangents(unrolled, result.values, identity, task.loss, task.targets)
    recall = set(task.recall_steps)
    return {inst: g for inst, g in grads.items() if inst[1] in recall}


def train(
    graph: Graph,
    task: Task,
    iterations: int = 1000,
    optimizer: str = "adam",
    lr: float | None = None,
    momentum: float = 0.9,
    batch: int | None = None,
    clip: float | None = None,
    truncate: tuple[int, int] | None = None,
    seed: int = 0,
    record_every: int | None = None,
    progress: Callable[[int, float], None] | None = None,
    *,
    params: Mapping[str, np.ndarray] | None = None,
    init: Mapping | None = None,
    dtype=np.float64,
    profile_node: str | None = None,
) -> TrainHistory:
    """Train ``graph`` on ``task`` with minibatch BPTT; record losses and gradient profiles.

    Parameters
    ----------
    graph : Graph
        The recurrent model; it gets a readout to the task's output size unless its
        output node is already ``y`` of that size (:func:`with_readout`).
    task : Task
        From :mod:`unroll.tasks`; its own batch is the fixed *probe* on which profiles
        are recorded, and :meth:`Task.sample` draws the training minibatches.
    iterations : int
        Parameter updates, one minibatch each.
    optimizer : {"adam", "sgd"}
        A key of :data:`OPTIMIZERS`.
    lr : float, optional
        Learning rate (default: the optimizer's, 1e-3 Adam, 0.01 SGD).
    momentum : float
        SGD's momentum, Adam's ``beta1`` (0.9).
    batch : int, optional
        Sequences per minibatch (default: the task's batch).
    clip : float, optional
        Rescale the gradient to this global norm when it is longer (Pascanu et al. 2013).
    truncate : (k1, k2), optional
        Truncated BPTT, passed to :func:`unroll.bptt`; ``None`` is full BPTT.
    seed : int
        Seeds the initial parameters (``init_params(graph, seed)``) and the minibatches
        (``np.random.default_rng([seed, 1])``): the same seed gives the same run.
    record_every : int, optional
        Record a profile every this many iterations (default ``iterations // 10``).
    progress : callable, optional
        ``progress(iterations_done, minibatch_loss)`` after every iteration.
    params : mapping, optional
        Starting parameters (any missing, e.g. the readout's, are drawn).
    init : mapping, optional
        Options of :func:`unroll.init_params`: ``{"scheme": "orthogonal"}``,
        ``{"forget_bias": 1.0}``.
    dtype : numpy dtype
        ``float64`` (default) or ``float32``.
    profile_node : str, optional
        The node whose per-step gradient norm is recorded (default: the state the
        readout reads, ``h``).

    Returns
    -------
    TrainHistory

    Raises
    ------
    TrainingError
        For a bad setting, or when the loss or gradient stops being finite.

    Examples
    --------
    >>> import unroll
    >>> from unroll.tasks import adding_problem
    >>> task = adding_problem(length=6, batch=16, seed=0)
    >>> h = train(unroll.presets.lstm(2, 4), task, iterations=20, lr=0.01, record_every=10)
    >>> h.losses.shape, sorted(h.profiles), h.profiles[20].shape
    ((20,), [0, 10, 20], (6,))
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise TrainingError(f"iterations must be a positive integer, got {iterations!r}")
    if clip is not None and not clip > 0:
        raise TrainingError(f"clip must be a positive gradient norm, got {clip!r}")
    model, x, node = _model_for(graph, task, profile_node)
    record_every = record_every or max(1, iterations // 10)
    opt = make_optimizer(optimizer, lr, momentum)
    current = _initial_params(model, params, seed, init, dtype)
    unrolled = task.unroll(model)
    rng = np.random.default_rng([seed, 1])
    batch = task.batch if batch is None else batch

    def run(sample: Task):
        return bptt(
            unrolled,
            current,
            {x: sample.inputs},
            loss=task.loss,
            targets=sample.targets,
            truncate=truncate,
            dtype=dtype,
            input_grads=False,
        )

    profiles, probe_losses = {}, {}
    recall_only = set(task.recall_steps) != set(unrolled.loss_steps)

    def record(iteration: int) -> None:
        result = run(task)
        probe_losses[iteration] = float(result.loss)
        if recall_only:  # the gradient of the recall steps' part of the loss alone
            cotangents = _recall_cotangents(unrolled, result, task)
            result = bptt(
                unrolled,
                current,
                {x: task.inputs},
                cotangents,
                truncate=truncate,
                dtype=dtype,
                input_grads=False,
            )
        profiles[iteration] = result.log10_grad_norms(node)

    losses, norms = np.empty(iterations), np.empty(iterations)
    start = time.perf_counter()
    for i in range(iterations):
        if i % record_every == 0:
            record(i)
        result = run(task.sample(batch, rng))
        grads = result.param_grads
        norm = global_norm(grads)
        _check_finite(result.loss, norm, i)
        if clip is not None:
            grads, _ = clip_gradients(grads, clip)
        opt.step(current, grads)
        losses[i], norms[i] = result.loss, norm
        if progress is not None:
            progress(i + 1, float(result.loss))
    record(iterations)
    settings = _settings(
        iterations=iterations,
        optimizer=optimizer,
        lr=opt.lr,
        momentum=momentum,
        batch=batch,
        clip=clip,
        truncate=truncate,
        seed=seed,
        record_every=record_every,
        init=dict(init or {}),
        dtype=np.dtype(dtype).name,
        profile_node=node,
    )
    return TrainHistory(
        graph.name,
        model,
        task,
        losses,
        norms,
        profiles,
        probe_losses,
        current,
        settings,
        time.perf_counter() - start,
    )


# ---- figures --------------------------------------------------------------------------------


def _as_histories(histories) -> dict[str, TrainHistory]:
    if isinstance(histories, TrainHistory):
        return {histories.label: histories}
    return dict(histories)


def _window(iterations: int) -> int:
    """Iterations in a running mean of the loss: 1/40 of the run, at least 1."""
    return max(1, iterations // 40)


def _running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean over the last ``window`` values at each point (fewer at the start)."""
    sums = np.cumsum(np.concatenate([[0.0], values]))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(0, ends - window)
    return (sums[ends] - sums[starts]) / (ends - starts)


def plot_losses(histories, ax=None, window: int | None = None):
    """Minibatch loss against iterations (faint) with its running mean, and the baseline.

    The loss axis is logarithmic when the running means span a factor of 10 or more.

    Parameters
    ----------
    histories : TrainHistory or mapping of label to TrainHistory
    ax : matplotlib Axes, optional
    window : int, optional
        Iterations in the running mean (default: 1/40 of the run, at least 1; the final
        loss in the legend is the mean of the last ``window``).

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import unroll
    >>> from unroll.tasks import adding_problem
    >>> h = train(unroll.presets.elman(2, 3), adding_problem(4, 8), iterations=5)
    >>> plot_losses(h).get_xlabel()
    'training iteration'
    """
    ax = axes_or_new(ax, figsize=(7.0, 4.5))
    histories = _as_histories(histories)
    baselines, means = {}, []
    for i, (label, h) in enumerate(histories.items()):
        color = f"C{i % 10}"
        n = len(h.losses)
        steps = np.arange(1, n + 1)
        width = window or _window(n)
        means.append(_running_mean(h.losses, width))
        ax.plot(steps, h.losses, color=color, lw=0.6, alpha=0.25)
        ax.plot(
            steps,
            means[-1],
            color=color,
            lw=2.2,
            label=f"{label}: {h.final_loss(width):.3g} at the end (mean of {width})",
        )
        baselines.setdefault(round(h.baseline, 12), h)
    for h in baselines.values():
        ax.axhline(
            h.baseline,
            color="0.15",
            lw=1.4,
            ls="--",
            label=f"memoryless baseline ({h.task.kind.baseline_text})",
        )
    spread = np.concatenate(means)
    spread = spread[spread > 0]
    log = spread.size > 0 and spread.max() / spread.min() >= 10.0
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("training iteration")
    loss = next(iter(histories.values())).task.loss
    scale = ", log scale" if log else ""
    ax.set_ylabel(f"training loss ({_LOSS_NAMES.get(loss, loss)}{scale})")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8.5, loc="best")
    return ax


_LOSS_NAMES = {"mse": "mean squared error", "xent": "cross-entropy"}


def _shades(index: int, alone: bool) -> Callable[[float], tuple]:
    """Colours from early (0) to late (1) in training: viridis for one model, else light
    to full shades of the model's own colour."""
    from matplotlib import colormaps
    from matplotlib.colors import to_rgb

    if alone:
        return lambda late: colormaps["viridis"](0.85 * (1.0 - late))
    base = np.array(to_rgb(f"C{index % 10}"))
    return lambda late: tuple(1.0 - (1.0 - base) * (0.45 + 0.55 * late))


def _power_text(log10_value: float) -> str:
    """``10^-3.2`` in mathtext, or ``0`` for an exactly zero gradient."""
    return "0" if np.isneginf(log10_value) else f"$10^{{{log10_value:.1f}}}$"


def _profile_iterations(h: TrainHistory, count: int) -> list[int]:
    recorded = sorted(h.profiles)
    if len(recorded) <= count:
        return recorded
    picks = np.linspace(0, len(recorded) - 1, count).round().astype(int)
    return [recorded[i] for i in sorted(set(picks.tolist()))]


def plot_profiles(histories, ax=None, iterations=None, count: int = 5, relative: bool = True):
    """The gradient-norm profile ``log10 ||dL/dh_t||`` over steps at points of training.

    One colour per model; within a model, lighter and dashed is earlier, darker and
    solid is later. The steps holding what must be remembered are shaded (the adding
    problem's first half, the copy problem's ten symbols): the gradient of the recall
    loss must reach them for the net to learn.

    Parameters
    ----------
    histories : TrainHistory or mapping of label to TrainHistory
    ax : matplotlib Axes, optional
    iterations : list of int, optional
        Recorded iterations to draw (default: ``count`` of them, first to last).
    count : int
        How many recorded profiles to draw per model when ``iterations`` is not given.
    relative : bool
        Plot each profile relative to its value at the last step (a recall step), so
        that the loss shrinking does not shift the curve.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import unroll
    >>> from unroll.tasks import adding_problem
    >>> h = train(unroll.presets.elman(2, 3), adding_problem(4, 8), iterations=5)
    >>> plot_profiles(h).get_xlabel()
    'time step t (the answer is read at the last step)'
    """
    ax = axes_or_new(ax, figsize=(7.0, 4.5))
    histories = _as_histories(histories)
    first = next(iter(histories.values()))
    steps = first.task.steps
    start, end = first.task.source_span
    ax.axvspan(start - 0.5, end - 0.5, color="0.9", lw=0)
    ax.text(
        (start + end - 1) / 2,
        0.98,
        first.task.kind.source_text,
        transform=ax.get_xaxis_transform(),
        ha="center",
        va="top",
        fontsize=8.5,
        color="0.3",
        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.5},
        zorder=5,
    )
    for i, (label, h) in enumerate(histories.items()):
        chosen = iterations if iterations is not None else _profile_iterations(h, count)
        chosen = [it for it in chosen if it in h.profiles]
        shade = _shades(i, len(histories) == 1)
        for j, it in enumerate(chosen):
            late = j / max(1, len(chosen) - 1)
            color = shade(late)
            curve = h.profiles[it] - (h.profiles[it][-1] if relative else 0.0)
            ax.plot(
                np.arange(len(curve)),
                curve,
                color=color,
                lw=1.2 + 1.3 * late,
                ls="-" if j == len(chosen) - 1 else (0, (4, 2)),
                label=f"{label}, iteration {it}: {_power_text(curve[start])} at t = {start}",
            )
    ax.set_xlim(-0.5, steps - 0.5)
    recall = first.task.recall_steps
    where = "the last step" if len(recall) == 1 else f"the last {len(recall)} steps"
    ax.set_xlabel(f"time step t (the answer is read at {where})")
    node, last = first.profile_node, steps - 1
    norm = rf"\|\partial L/\partial {node}_{{t}}\|"
    ax.set_ylabel(
        rf"${norm}\ /\ \|\partial L/\partial {node}_{{{last}}}\|$ (log scale)"
        if relative
        else f"${norm}$ (log scale)"
    )
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"$10^{{{round(v)}}}$"))
    ax.grid(True, alpha=0.25)
    ax.legend(fontsize=8, loc="lower right")
    return ax


def training_figure(histories, title: str | None = None, count: int = 5):
    """A two-panel figure: loss against iterations, and gradient profiles during training.

    Returns
    -------
    matplotlib.figure.Figure
        Not attached to pyplot (no backend needed); save it with ``savefig``.
    """
    from matplotlib.figure import Figure

    histories = _as_histories(histories)
    figure = Figure(figsize=(13.0, 5.2), layout="constrained")
    left, right = figure.subplots(1, 2)
    plot_losses(histories, ax=left)
    plot_profiles(histories, ax=right, count=count)
    h = next(iter(histories.values()))
    left.set_title("Loss while training (faint: each minibatch; bold: running mean)", fontsize=10)
    right.set_title(
        "How far back the gradient reaches, early (dashed) and late (solid) in training",
        fontsize=10,
    )
    task = h.task
    s = h.settings
    figure.suptitle(
        title
        or (
            f"{task.name} problem, T = {task.length}: {', '.join(histories)} "
            f"({s['optimizer']} lr {s['lr']:g}, batch {s['batch']}, "
            f"{s['iterations']} iterations)"
        ),
        fontsize=12,
    )
    return figure


def _gallery_caption(histories: dict[str, TrainHistory], task: Task) -> str:
    last, (start, end) = task.steps - 1, task.source_span
    reach = ", ".join(
        f"the {label}'s {_power_text(h.reach(max(h.profiles)))}" for label, h in histories.items()
    )
    return (
        f"The answer is read at the last step (t = {last}); the first marked value lies in "
        f"steps {start}–{end - 1}. A net can learn to use it only if the gradient ∂L/∂h_t "
        f"still reaches those steps.\nAfter training, the gradient at t = {start}, relative "
        f"to its value at the loss, is {reach}."
    )


def train_gallery_figure(
    path,
    length: int = 100,
    hidden: int = 32,
    iterations: int = 3000,
    batch: int = 32,
    lr: float = 0.01,
    seed: int = 0,
    probe_batch: int = 256,
) -> dict[str, TrainHistory]:
    """Train a tanh RNN and an LSTM on the adding problem; save the two-panel figure.

    The LSTM's loss falls far below the memoryless baseline (MSE 1/6) while the plain
    tanh loop's stays near it; the right panel shows why: its gradient does not reach
    back to the first half of the sequence.

    Parameters
    ----------
    path : str or path-like
        Image file (``.png``, ``.svg``, ``.pdf``), written atomically.
    length, hidden, iterations, batch, lr, seed : optional
        The problem's ``T``, both nets' hidden size, and the training settings (Adam).
    probe_batch : int
        Sequences in the fixed batch the gradient profiles are measured on.

    Returns
    -------
    dict
        ``{"tanh RNN": TrainHistory, "LSTM": TrainHistory}``.
    """
    from .files import atomic_write
    from .presets import elman, lstm

    task = adding_problem(length, probe_batch, seed=[seed, 2])
    models = {"tanh RNN": elman(2, hidden, "tanh"), "LSTM": lstm(2, hidden)}
    histories = {
        label: train(
            graph,
            task,
            iterations,
            "adam",
            lr,
            batch=batch,
            seed=seed,
            record_every=max(1, iterations // 20),
        )
        for label, graph in models.items()
    }
    for label, h in histories.items():
        h.label = label
    finals = ", ".join(f"{label} {h.final_loss():.3g}" for label, h in histories.items())
    figure = training_figure(
        histories,
        title=(
            f"Adding problem, T = {length} (hidden {hidden}, Adam lr {lr:g}, batch {batch}): "
            f"final loss {finals}; memoryless baseline 1/6 = 0.167"
        ),
        count=2,
    )
    figure.supxlabel(_gallery_caption(histories, task), fontsize=9.5, color="0.2")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=Path(path).suffix.lstrip(".").lower() or "png", dpi=110)
    atomic_write(path, buffer.getvalue())
    return histories
