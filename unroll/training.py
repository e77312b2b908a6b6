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

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from .analysis.clipping import clip_gradients, global_norm
from .analysis.export import plain, plain_list, versions
from .engine import bptt
from .errors import RunFailure, UnrollError
from .graph import Graph
from .init import init_params
from .losses import loss_cotangents
from .tasks import Task

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adam",
    "TrainHistory",
    "TrainingDiverged",
    "TrainingError",
    "make_optimizer",
    "train",
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
OPTIMIZERS: dict[str, type[SGD] | type[Adam]] = {"sgd": SGD, "adam": Adam}


def make_optimizer(name: str, lr: float | None = None, momentum: float = 0.9) -> SGD | Adam:
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


# ---- history --------------------------------------------------------------------------------


def running_mean_window(iterations: int) -> int:
    """Iterations in a running mean of the loss: 1/40 of the run, at least 1."""
    return max(1, iterations // 40)


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
        return float(np.mean(self.losses[-(window or running_mean_window(len(self.losses))) :]))

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
        window = running_mean_window(len(self.losses))
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

    def run(sample: Task, state_grads: bool = False):
        return bptt(
            unrolled,
            current,
            {x: sample.inputs},
            loss=task.loss,
            targets=sample.targets,
            truncate=truncate,
            dtype=dtype,
            input_grads=False,
            state_grads=state_grads,  # a step needs its parameters' gradients only
        )

    profiles, probe_losses = {}, {}
    recall_only = set(task.recall_steps) != set(unrolled.loss_steps)

    def record(iteration: int) -> None:
        result = run(task, state_grads=True)  # (the profile reads the state's gradients)
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
