"""Seeded probes shared by every measurement: model specs, input sequences, loss cotangents.

Every random draw has its own generator seeded by ``(seed, stream, crc32(name), ...)``, so
two models with an input node of the same name and size get the same input sequence, and
two models with an output of the same name and size get the same loss cotangent.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ..engine import BPTTResult, bptt, check_memory
from ..errors import UnrollError
from ..graph import Graph
from ..init import StackedParams, init_params_many, init_params_stacked
from ..losses import LOSSES
from ..models import ModelSpec, load_model
from ..unrolled import DEFAULT_MAX_NODES, Unrolled, unroll
from .errors import AnalysisError

__all__ = [
    "PROBES",
    "GivenData",
    "Probe",
    "as_models",
    "as_spec",
    "draw_inputs",
    "given_data",
    "model_is_batch_first",
    "probe",
    "probe_cotangents",
    "probe_loss_instances",
    "probe_name",
]

_INPUT_STREAM, _LOSS_STREAM = 1, 2


def params_for_many(jobs: list[tuple[ModelSpec, int]]) -> StackedParams:
    """``spec.params_for(seed)`` of each ``(spec, seed)``, specs of one graph, stacked into
    one ensemble (model ``i`` is job ``i``). Drawn ones go through
    :func:`unroll.init.init_params_stacked`, so seeds are drawn once across specs that differ
    only in their spectral options (a sweep's radius axis), and their spectral norms take
    one SVD per seed."""
    graph = jobs[0][0].graph
    given = {i: spec.params_for(seed) for i, (spec, seed) in enumerate(jobs) if not spec.drawn()}
    drawn = [i for i, (spec, _) in enumerate(jobs) if spec.drawn()]
    for i in drawn:
        jobs[i][0].check_init_options()
    draws = [(jobs[i][1], jobs[i][0].init or "torch", dict(jobs[i][0].init_options)) for i in drawn]
    if not given:
        return _drawing(init_params_stacked, graph, draws)
    if drawn:
        given.update(zip(drawn, _drawing(init_params_many, graph, draws), strict=True))
    return StackedParams.of([given[i] for i in range(len(jobs))], graph.recurrent_weights())


def _drawing(draw, graph: Graph, draws: list):
    """``draw(graph, draws)``, a value of the wrong type for an init option an AnalysisError."""
    try:
        return draw(graph, draws)
    except UnrollError:
        raise
    except (TypeError, ValueError) as e:
        raise AnalysisError(f"model {graph.name!r}: bad init option ({e})") from None


def as_spec(
    value, init: str = "torch", init_options: Mapping | None = None, label: str = "model"
) -> ModelSpec:
    """A Graph, a ``(Graph, options)`` pair or a ModelSpec as a :class:`ModelSpec`.

    ``options`` may name the scheme (``"init"`` or ``"scheme"``) and fixed ``"params"``;
    the other keys are options of :func:`unroll.init_params`, merged over
    ``init_options``.

    Raises
    ------
    AnalysisError
        For anything else, naming the model by ``label``.

    Examples
    --------
    >>> from unroll import presets
    >>> spec = as_spec((presets.lstm(2, 3), {"init": "orthogonal", "forget_bias": 1.0}))
    >>> spec.init, dict(spec.init_options)
    ('orthogonal', {'forget_bias': 1.0})
    """
    init_options = _options(init_options, label)
    if isinstance(value, ModelSpec):
        return value.with_defaults(init, init_options)
    if isinstance(value, Graph):
        return ModelSpec(value, init, dict(init_options))
    if _is_import(value):  # an imported model carries its own weights
        return ModelSpec(value.graph, params=dict(value.params))
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], Graph):
        graph, options = value
        options = _options(options, label)
        scheme = options.pop("init", options.pop("scheme", init))
        params = options.pop("params", None)
        return ModelSpec(graph, scheme, {**init_options, **options}, params)
    raise AnalysisError(
        f"model {label!r}: expected a Graph, a (Graph, init options) pair or "
        f"a ModelSpec, got {type(value).__name__}"
    )


def _is_import(value) -> bool:
    """An imported model (``from_torch``, ``from_keras``, ...): a graph with its weights."""
    return isinstance(getattr(value, "graph", None), Graph) and isinstance(
        getattr(value, "params", None), Mapping
    )


def _options(options, label: str) -> dict:
    """Init options as a dict with string keys (an AnalysisError naming the model if not)."""
    if options is None:
        return {}
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise AnalysisError(
            f"model {label!r}: init options must be a mapping of option names to values, "
            f"got {options!r}"
        )
    return dict(options)


def as_models(
    model, init: str = "torch", init_options: Mapping | None = None, params=None
) -> dict[str, ModelSpec]:
    """Normalise ``analyze``'s ``model`` argument to ``{label: ModelSpec}``.

    A single graph is labelled by its name; a dict keeps its labels (as strings) and its
    order. A value may be a Graph, a ``(Graph, {"init": ..., option: value})`` pair or a
    :class:`ModelSpec`.

    Examples
    --------
    >>> from unroll import presets
    >>> g = presets.elman(2, 3)
    >>> specs = as_models({"orth": (g, {"init": "orthogonal", "spectral_norm": 0.9}), "plain": g})
    >>> [(k, s.init, dict(s.init_options)) for k, s in specs.items()]
    [('orth', 'orthogonal', {'spectral_norm': 0.9}), ('plain', 'torch', {})]
    """
    init_options = _options(init_options, "model")
    if not isinstance(init, str):
        raise AnalysisError(f"init must be the name of a scheme, got {init!r}")
    if isinstance(model, Mapping):
        if not model:
            raise AnalysisError("no models to analyze (the dict is empty)")
        if params is not None:
            raise AnalysisError("params= applies to a single graph; give each model a ModelSpec")
        return {str(k): as_spec(v, init, init_options, str(k)) for k, v in model.items()}
    spec = as_spec(model, init, init_options, getattr(model, "name", "model"))
    if params is not None:
        spec = ModelSpec(spec.graph, spec.init, spec.init_options, params)
    return {spec.graph.name: spec}


def draw_inputs(
    graph: Graph, steps: int, seed: int, batch: int = 1, scale: float = 1.0
) -> dict[str, np.ndarray]:
    """Standard-normal input sequences ``(steps, batch, n)`` times ``scale``, one per input node.

    Examples
    --------
    >>> from unroll import presets
    >>> xs = draw_inputs(presets.elman(2, 3), steps=4, seed=0)
    >>> xs["x"].shape
    (4, 1, 2)
    """
    out = {}
    for name in graph.input_nodes():
        rng = np.random.default_rng([seed, _INPUT_STREAM, zlib.crc32(name.encode())])
        out[name] = rng.standard_normal((steps, batch, graph.nodes[name].size)) * scale
    return out


def _random_cotangent(name: str, size: int, distance: int, seed: int, batch: int):
    rng = np.random.default_rng([seed, _LOSS_STREAM, zlib.crc32(name.encode()), distance])
    v = rng.standard_normal((batch, size))
    return v / np.linalg.norm(v)


def _random(unrolled: Unrolled, seed: int, batch: int) -> dict:
    T, nodes = unrolled.steps, unrolled.graph.nodes
    return {
        (n, t): _random_cotangent(n, nodes[n].size, T - 1 - t, seed, batch)
        for n, t in unrolled.loss_instances
    }


def _sum(unrolled: Unrolled, seed: int, batch: int) -> dict:
    nodes = unrolled.graph.nodes
    return {(n, t): np.ones((batch, nodes[n].size)) for n, t in unrolled.loss_instances}


@dataclass(frozen=True)
class Probe:
    """A loss probe: ``cotangents(unrolled, seed, batch) -> {(output, t): dL/dy}``."""

    name: str
    cotangents: Callable[[Unrolled, int, int], dict]
    doc: str


PROBES: dict[str, Probe] = {
    p.name: p
    for p in [
        Probe(
            "random",
            _random,
            "a random direction of unit norm (over batch and units) on each output at each "
            "loss step, seeded by (seed, output, distance from the last step)",
        ),
        Probe("sum", _sum, "the sum of the outputs at the loss steps: dL/dy = 1 everywhere"),
    ]
}

_PROBE_ALIASES = {
    "random cotangent": "random",
    "random-cotangent": "random",
    "random_cotangent": "random",
}


def probe_cotangents(loss: str, unrolled: Unrolled, seed: int, batch: int) -> dict:
    """The cotangents of loss probe ``loss`` (a key of :data:`PROBES` or an alias).

    Examples
    --------
    >>> import unroll
    >>> u = unroll.unroll(unroll.presets.elman(2, 3), 4, mode="many-to-one")
    >>> cots = probe_cotangents("random", u, seed=0, batch=2)
    >>> list(cots), round(float(np.linalg.norm(cots[("h", 3)])), 12)
    ([('h', 3)], 1.0)
    """
    return PROBES[probe_name(loss)].cotangents(unrolled, seed, batch)


def probe_name(loss: str) -> str:
    """The canonical name of loss probe ``loss``."""
    key = _PROBE_ALIASES.get(loss, loss) if isinstance(loss, str) else loss
    if not isinstance(key, str) or key not in PROBES:
        raise AnalysisError(
            f"unknown loss probe {loss!r} (known: {', '.join(PROBES)}, 'random cotangent')"
        )
    return key


# ---- sequences the user gives ---------------------------------------------------------------


@dataclass(frozen=True)
class GivenData:
    """Input sequences ``{input node: (T, B, n)}`` and, for a real loss, its name and targets."""

    inputs: dict[str, np.ndarray]
    loss: str | None = None
    targets: object = None

    @property
    def steps(self) -> int:
        """The number of steps T the sequences hold."""
        return next(iter(self.inputs.values())).shape[0]

    @property
    def batch(self) -> int:
        """The number of sequences B."""
        return next(iter(self.inputs.values())).shape[1]


#: Imports whose sequences are always batch first (Keras: ``(B, T, n)``); others say so
#: with a ``batch_first`` attribute (torch, ONNX), and a graph is time first.
_ALWAYS_BATCH_FIRST = {"KerasImport"}


def model_is_batch_first(model) -> bool:
    """Whether ``model``'s own sequences are ``(B, T, n)``."""
    if type(model).__name__ in _ALWAYS_BATCH_FIRST:
        return True
    return bool(getattr(model, "batch_first", False))


def _time_first(a: np.ndarray, batch_first: bool) -> np.ndarray:
    return np.swapaxes(a, 0, 1) if batch_first and a.ndim >= 2 else a


def given_data(
    model, graph: Graph, inputs, targets=None, loss: str | None = None, batch_first=None
) -> GivenData:
    """Check and normalise the ``inputs``/``targets`` given to :func:`analyze`.

    Parameters
    ----------
    model : Graph or imported model
        An import (``from_torch``, ...) reads ``inputs`` in its own layout (batch first
        where the module is); a graph reads ``(T, B, n)``, or ``(B, T, n)`` with
        ``batch_first=True``.
    graph : Graph
    inputs : array or mapping
        One array for a graph with one input node, else ``{input node: array}``.
    targets : array or mapping, optional
        Targets of ``loss`` at every step or at the loss steps, in the same layout
        (``xent``: integer classes ``(T, B)``).
    loss : str, optional
        A loss of :mod:`unroll.losses` (``mse``, ``xent``, ``sum``), or None for a probe.
    batch_first : bool, optional
        Override the layout (default: the model's own, time first for a graph).

    Raises
    ------
    AnalysisError
        One line naming the input node and the expected shape.

    Examples
    --------
    >>> from unroll import presets
    >>> d = given_data(presets.elman(2, 3), presets.elman(2, 3), np.zeros((4, 5, 2)))
    >>> d.steps, d.batch
    (4, 5)
    """
    if batch_first is None:
        batch_first = model_is_batch_first(model)
    names = graph.input_nodes()
    if not isinstance(inputs, Mapping):
        if len(names) != 1:
            raise AnalysisError(
                f"model {graph.name!r} has inputs {', '.join(names)}: give inputs as a dict"
            )
        inputs = {names[0]: inputs}
    unknown = sorted(set(inputs) - set(names))
    if unknown or set(inputs) != set(names):
        raise AnalysisError(
            f"inputs name {', '.join(map(repr, sorted(inputs)))}, the model's input nodes are "
            f"{', '.join(map(repr, names))}"
        )
    layout = "(B, T, {})" if batch_first else "(T, B, {})"
    out = {}
    for name in names:
        a = _array(inputs[name])
        size = graph.nodes[name].size
        if a is None or a.ndim != 3 or a.shape[2] != size or 0 in a.shape:
            shape = "non-numeric" if a is None else tuple(a.shape)
            raise AnalysisError(
                f"inputs for {name!r} have shape {shape}, expected {layout.format(size)}"
            )
        out[name] = np.ascontiguousarray(_time_first(a, batch_first))
    shapes = {a.shape[:2] for a in out.values()}
    if len(shapes) > 1:
        raise AnalysisError(f"the inputs disagree on (T, B): {sorted(shapes)}")
    if targets is not None:
        if loss is None:
            raise AnalysisError("targets need a loss that reads them: loss='mse' or 'xent'")
        if isinstance(targets, Mapping):
            targets = {
                k: _time_first(_numeric(v, "targets"), batch_first) for k, v in targets.items()
            }
        else:
            targets = _time_first(_numeric(targets, "targets"), batch_first)
    return GivenData(out, loss, targets)


def _numeric(value, what: str) -> np.ndarray:
    """``value`` as a float64 array; an AnalysisError naming ``what`` if it is not numeric."""
    a = _array(value)
    if a is None:
        raise AnalysisError(f"{what} are not numbers (dtype {np.asarray(value).dtype})")
    return a


def _array(value) -> np.ndarray | None:
    """``value`` as a float64 array, or None if it is not numeric."""
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().double().numpy()
    a = np.asarray(value)
    return a.astype(np.float64) if np.issubdtype(a.dtype, np.number) else None


# ---- one run for pictures ------------------------------------------------------------------


def probe(
    model: str | Graph | ModelSpec,
    steps: int,
    *,
    seed: int = 0,
    mode: str = "synced",
    batch: int = 1,
    max_nodes: int | None = DEFAULT_MAX_NODES,
    max_memory: int | str | None = "auto",
    loss: str | None = None,
    encoder_steps: int | None = None,
    data=None,
) -> tuple[Unrolled, BPTTResult]:
    """Unroll a model and run BPTT once, to show values and gradients on a diagram.

    Parameters come from the model when it carries them, else are drawn for ``seed``
    as its spec says (``lstm:forget_bias=3``); inputs are standard normal (seeded by ``seed``), or
    ``data`` (a :class:`~unroll.analysis.probes.GivenData`, as
    :func:`unroll.datafiles.load_data` reads it): its sequences set the steps and the
    batch, its targets (if any) those of ``loss``. Without
    ``loss`` the cotangent is ones on the output nodes at the last loss step (the
    instances :func:`probe_loss_instances` names); with ``loss`` (``"sum"``, ``"mse"``,
    ``"xent"``) that loss on the outputs at every loss step of the mode, against seeded
    targets (standard normal for ``mse``, uniform classes for ``xent``). ``max_nodes`` and
    ``max_memory`` are the size limits of :func:`unroll.unroll` and :func:`unroll.bptt`.

    Returns
    -------
    (Unrolled, BPTTResult)

    Examples
    --------
    >>> u, r = probe("neuron", steps=3)
    >>> sorted(r.param_grads)
    ['W_hh', 'W_ih', 'b_hh', 'b_ih']
    >>> r.log10_grad_norms("h").shape
    (3,)
    >>> round(probe("neuron", steps=3, loss="mse")[1].loss, 4) > 0
    True
    """
    model = load_model(model)
    if data is not None:
        steps, batch = data.steps, data.batch
    unrolled = unroll(model.graph, steps, mode, encoder_steps, max_nodes=max_nodes)
    check_memory(unrolled, batch, max_memory=max_memory)  # before drawing parameters
    graph = unrolled.graph
    params = model.params_for(seed)  # its own weights, or drawn as the spec says
    rng = np.random.default_rng(seed)
    inputs = (
        data.inputs
        if data is not None
        else {
            name: rng.normal(size=(len(unrolled.input_steps(name)), batch, graph.nodes[name].size))
            for name in graph.input_nodes()
        }
    )
    if loss is not None:
        given = data is not None and data.targets is not None
        targets = data.targets if given else _probe_targets(unrolled, loss, batch, rng)
        return unrolled, bptt(
            unrolled, params, inputs, loss=loss, targets=targets, max_memory=max_memory
        )
    cotangents = {
        inst: np.ones((batch, graph.nodes[inst[0]].size)) for inst in probe_loss_instances(unrolled)
    }
    return unrolled, bptt(unrolled, params, inputs, cotangents, max_memory=max_memory)


def probe_loss_instances(unrolled: Unrolled) -> list[tuple[str, int]]:
    """The output instances :func:`probe`'s default cotangent sits on: every output node
    at the last loss step of the sequence mode.

    Examples
    --------
    >>> from unroll import presets, unroll
    >>> probe_loss_instances(unroll(presets.elman(output_size=2), 4, mode="many-to-one"))
    [('y', 3)]
    """
    last = max(unrolled.loss_steps)
    return [(name, last) for name in unrolled.graph.output_nodes()]


def _probe_targets(unrolled: Unrolled, loss: str, batch: int, rng):
    """Seeded targets for ``loss`` at the mode's loss instances (None where none needed)."""
    if loss in LOSSES and not LOSSES[loss].needs_targets:
        return None
    k = len(unrolled.loss_instances)
    size = unrolled.graph.nodes[unrolled.loss_instances[0][0]].size if k else 1
    if loss == "xent":
        return rng.integers(0, size, size=(k, batch))
    return rng.normal(size=(k, batch, size))
