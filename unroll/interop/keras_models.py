"""Import Keras 3 recurrent models (SimpleRNN, LSTM, GRU, Bidirectional, Dense heads).

:func:`from_keras` reads a Keras layer, ``Sequential`` or chain-shaped ``Functional`` model
once (a float64 snapshot of its weights) and returns a :class:`KerasImport`: the graph,
built with the presets' cell builders, the parameters under our names, and translators
between Keras's layouts and the dicts :func:`unroll.bptt` takes and returns.

Keras is **batch first**: sequences are ``(B, T, n)``, a layer with
``return_sequences=False`` returns ``(B, n)``. The translators take and give those
layouts; the graph runs on ``(T, B, n)``. A layer with ``go_backwards=True`` returns its
sequence in the order it read it (reversed time), as Keras does; ``Bidirectional`` flips
its backward half back before merging. The import is the inference computation
(``model(x)``, ``model.predict``): dropout is off.

Keras is an optional extra: it is imported only to read a ``.keras`` file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import presets
from ..errors import InputError, format_shape
from ..graph import Graph

__all__ = [
    "KERAS_INSTALL_HINT",
    "KERAS_LAYERS",
    "KerasCell",
    "KerasImport",
    "KerasInteropError",
    "MissingKerasError",
    "from_keras",
    "load_keras",
]

KERAS_INSTALL_HINT = "pip install rnn-unroll[keras]"


class KerasInteropError(InputError):
    """A Keras model, layer or file that unroll cannot represent; the message is one line."""


class MissingKerasError(KerasInteropError, ImportError):
    """Keras is needed here but is not installed (also an :class:`ImportError`)."""


#: Keras activation names -> rows of :data:`unroll.ops.ACTIVATIONS`. Keras's
#: ``hard_sigmoid`` is Keras 3's, ``clip(x / 6 + 1/2, 0, 1)``; Keras 2 (whose LSTM and GRU
#: defaulted to it) used ``clip(0.2 x + 0.5, 0, 1)``, which a Keras 3 file cannot name.
#: ``leaky_relu`` is left out: Keras's slope is 0.2, the registry's 0.01.
KERAS_ACTIVATIONS = {
    "linear": "identity",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "relu": "relu",
    "softplus": "softplus",
    "softsign": "softsign",
    "hard_sigmoid": "hard_sigmoid",
}


# ---- what flows from one layer to the next --------------------------------------------------


@dataclass(frozen=True)
class _Flow:
    """A layer's output as the next layer sees it.

    ``orientation`` +1 means Keras's step ``s`` is our time ``s``, -1 that it is ``T-1-s``
    (after a ``go_backwards`` layer). ``at`` is ``None`` for a sequence, else the time of
    the one value a ``return_sequences=False`` layer returns: ``"last"`` (T-1) or
    ``"first"`` (0, a layer that ran backward in time).
    """

    node: str
    size: int
    orientation: int = 1
    at: str | None = None


@dataclass(frozen=True)
class _Block:
    """One of our parameters inside a Keras weight: ``weight[index]``, transposed or not."""

    name: str
    index: tuple
    transpose: bool


@dataclass
class KerasCell:
    """One recurrent cell of the graph: the Keras RNN layer it comes from and its states."""

    layer: object
    states: tuple[str, ...]
    reverse: bool

    def final_time(self, steps: int) -> int:
        return 0 if self.reverse else steps - 1

    def boundary_time(self, steps: int) -> int:
        return steps if self.reverse else -1


@dataclass
class _Build:
    """The graph under construction and what the translators need to know about it."""

    graph: Graph
    steps: int | None
    blocks: dict[str, list[_Block]] = field(default_factory=dict)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    cells: dict[str, list[KerasCell]] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    top: _Flow | None = None
    top_owner: str | None = None

    def read(self, flow: _Flow, target: str, layer, weight: str | None = None) -> None:
        """Connect ``flow`` into ``target``; a single value is read at step T-1.

        A value at step 0 (a layer that ran backward in time and returned one step) is
        read at T-1 through an edge of delay T-1, so the graph needs the steps.
        """
        delay = 0
        if flow.at == "first":
            if self.steps is None:
                raise KerasInteropError(
                    f"layer {layer.name!r} reads the last output of a layer that ran "
                    "backward in time (our step 0) at step T-1: give from_keras(..., "
                    "steps=T) or an Input with a fixed sequence length"
                )
            delay = self.steps - 1
        self.graph.edge(flow.node, target, delay=delay, weight=weight)

    def weight(self, variable, blocks: list[_Block]) -> None:
        """Record a Keras weight and copy its blocks into our parameters (float64)."""
        value = np.array(variable.numpy(), dtype=np.float64)
        self.blocks[variable.path], self.shapes[variable.path] = blocks, value.shape
        for b in blocks:
            part = value[b.index]
            self.values[b.name] = np.ascontiguousarray(part.T if b.transpose else part)


# ---- the supported layers -------------------------------------------------------------------


@dataclass(frozen=True)
class _Recurrent:
    """A Keras RNN class: the preset cell it becomes, its gates in Keras's weight order, its
    states, and the cell options (activations, biases) it reads off a layer."""

    cell: str
    gates: tuple[str, ...]
    states: tuple[str, ...]
    options: Callable[[object], dict]


def _two_biases(layer) -> bool:
    """GRU with ``reset_after=True`` keeps an input and a recurrent bias (torch's layout)."""
    return bool(getattr(layer, "reset_after", False))


def _elman_options(layer) -> dict:
    return {"activation": _activation(layer, "activation"), "recurrent_bias": False}


def _lstm_options(layer) -> dict:
    return {
        "activation": _activation(layer, "activation"),
        "recurrent_activation": _activation(layer, "recurrent_activation"),
        "recurrent_bias": _two_biases(layer),
    }


def _gru_options(layer) -> dict:
    return {**_lstm_options(layer), "reset_after": _two_biases(layer)}


_RECURRENT = {
    "SimpleRNN": _Recurrent("elman", ("h",), ("h",), _elman_options),
    "LSTM": _Recurrent("lstm", ("i", "f", "g", "o"), ("h", "c"), _lstm_options),
    "GRU": _Recurrent("gru", ("z", "r", "n"), ("h",), _gru_options),
}

#: Bidirectional's merge modes -> the node kind joining the two directions.
MERGES = {"concat": "concat", "sum": "add", "mul": "mul", "ave": "mean"}


def _activation(layer, key: str) -> str:
    name = layer.get_config().get(key)
    if isinstance(name, str) and name in KERAS_ACTIVATIONS:
        return KERAS_ACTIVATIONS[name]
    shown = name.get("class_name", name) if isinstance(name, dict) else name
    raise KerasInteropError(
        f"layer {layer.name!r}: {key} {shown!r} has no registry row "
        f"(supported: {', '.join(KERAS_ACTIVATIONS)})"
    )


def _check_rnn(layer, training: bool) -> None:
    if layer.stateful:
        raise KerasInteropError(
            f"layer {layer.name!r}: stateful=True is not supported (its state carries over "
            "between batches); rebuild it with stateful=False"
        )
    rates = {k: float(getattr(layer, k, 0) or 0) for k in ("dropout", "recurrent_dropout")}
    used = [f"{k}={v}" for k, v in rates.items() if v > 0]
    if training and used:
        raise KerasInteropError(
            f"layer {layer.name!r}: {', '.join(used)} in training mode is not supported "
            "(random masks); import with training=False"
        )


def _cell_weights(layer, kind: _Recurrent, s: str, H: int) -> list[tuple[object, list[_Block]]]:
    """Keras's kernel (I, G*H), recurrent_kernel (H, G*H) and bias, split into our blocks."""
    cols = [slice(q * H, (q + 1) * H) for q in range(len(kind.gates))]
    pairs = [
        (
            layer.cell.kernel,
            [
                _Block(f"W_i{g}{s}", (slice(None), c), True)
                for g, c in zip(kind.gates, cols, strict=True)
            ],
        ),
        (
            layer.cell.recurrent_kernel,
            [
                _Block(f"W_h{g}{s}", (slice(None), c), True)
                for g, c in zip(kind.gates, cols, strict=True)
            ],
        ),
    ]
    if layer.use_bias:
        rows = ((0, "i"), (1, "h")) if _two_biases(layer) else ((None, "i"),)
        pairs.append(
            (
                layer.cell.bias,
                [
                    _Block(f"b_{side}{g}{s}", (c,) if row is None else (row, c), False)
                    for row, side in rows
                    for g, c in zip(kind.gates, cols, strict=True)
                ],
            )
        )
    return pairs


def _add_cell(build: _Build, layer, flow: _Flow, suffix: str, owner: str, training: bool) -> _Flow:
    """Add the cell of Keras RNN ``layer`` reading ``flow``; return its output as a flow."""
    kind = _RECURRENT.get(type(layer).__name__)
    if kind is None:
        raise KerasInteropError(
            f"layer {layer.name!r} ({type(layer).__name__}) inside Bidirectional is not "
            f"supported (supported: {', '.join(_RECURRENT)})"
        )
    _check_rnn(layer, training)
    orientation = -flow.orientation if layer.go_backwards else flow.orientation
    reverse = orientation == -1
    H = int(layer.units)
    add_cell = presets.CELLS[kind.cell]
    options = kind.options(layer)
    h = add_cell(
        build.graph,
        flow.node,
        H,
        suffix=suffix,
        reverse=reverse,
        bias=bool(layer.use_bias),
        **options,
    )
    build.cells.setdefault(owner, []).append(
        KerasCell(layer, tuple(f"{state}{suffix}" for state in kind.states), reverse)
    )
    for variable, blocks in _cell_weights(layer, kind, suffix, H):
        build.weight(variable, blocks)
    if layer.return_sequences:
        return _Flow(h, H, orientation)
    return _Flow(h, H, orientation, "first" if reverse else "last")


def _needs_sequence(layer, flow: _Flow) -> None:
    if flow.at is not None:
        raise KerasInteropError(
            f"layer {layer.name!r} needs a sequence, but the layer before it returns one "
            "step (return_sequences=False)"
        )


def _rnn(build, layer, flow, suffix, top, training) -> _Flow:
    _needs_sequence(layer, flow)
    return _add_cell(build, layer, flow, suffix, layer.name, training)


def _bidirectional(build, layer, flow, suffix, top, training) -> _Flow:
    _needs_sequence(layer, flow)
    if layer.merge_mode not in MERGES:
        raise KerasInteropError(
            f"layer {layer.name!r}: merge_mode={layer.merge_mode!r} is not supported "
            f"(supported: {', '.join(MERGES)})"
        )
    forward = _add_cell(build, layer.forward_layer, flow, suffix, layer.name, training)
    backward = _add_cell(
        build, layer.backward_layer, flow, f"{suffix}_reverse", layer.name, training
    )
    if backward.at is None:  # Keras flips the backward sequence back into input order
        backward = _Flow(backward.node, backward.size, -backward.orientation)
    size = forward.size * (2 if layer.merge_mode == "concat" else 1)
    merged = build.graph.add_node("y" if top else f"y{suffix}", MERGES[layer.merge_mode], size)
    build.read(forward, merged, layer)
    build.read(backward, merged, layer)
    if forward.at is None:
        return _Flow(merged, size, forward.orientation)
    return _Flow(merged, size, 1, "last")


def _dense(build, layer, flow, suffix, top, training) -> _Flow:
    s = "" if top else suffix
    units = int(layer.units)
    node = build.graph.layer(
        f"y{s}",
        units,
        _activation(layer, "activation"),
        biases=[f"b_y{s}"] if layer.use_bias else [],
    )
    build.read(flow, node, layer, weight=f"W_y{s}")
    build.weight(layer.kernel, [_Block(f"W_y{s}", (slice(None), slice(None)), True)])
    if layer.use_bias:
        build.weight(layer.bias, [_Block(f"b_y{s}", (slice(None),), False)])
    return _Flow(node, units, flow.orientation, None if flow.at is None else "last")


def _dropout(build, layer, flow, suffix, top, training) -> _Flow:
    if training and float(layer.rate) > 0:
        raise KerasInteropError(
            f"layer {layer.name!r}: Dropout(rate={layer.rate}) in training mode is not "
            "supported (random masks); import with training=False"
        )
    return flow


#: The Keras layer classes :func:`from_keras` reads, by class name: each adds its nodes to
#: the graph and returns what the next layer reads. ``Dropout`` is the identity (inference).
KERAS_LAYERS: dict[str, Callable[..., _Flow]] = {
    "SimpleRNN": _rnn,
    "LSTM": _rnn,
    "GRU": _rnn,
    "Bidirectional": _bidirectional,
    "Dense": _dense,
    "Dropout": _dropout,
}
_SKIPPED = ("Dropout",)  # layers that add no node, so take no index in the names


# ---- reading a model ------------------------------------------------------------------------


def _layers_of(model) -> tuple[list, list[int]]:
    """The chain of layers from the input to the output, and which outputs of the last one
    the model returns (0 the output, ``i`` its ``i``-th state)."""
    classes = {cls.__name__ for cls in type(model).__mro__}
    if "Sequential" in classes:
        layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
        return layers, _all_outputs(layers[-1]) if layers else [0]
    if "Functional" in classes:
        return _functional_chain(model)
    if "Model" in classes:
        raise KerasInteropError(
            f"model {model.name!r} is a subclassed keras.Model: its call() is Python code "
            "unroll cannot read; build it as a Sequential or Functional model"
        )
    return [model], _all_outputs(model)


def _all_outputs(layer) -> list[int]:
    if not getattr(layer, "return_state", False):
        return [0]
    cells = (
        [layer.forward_layer, layer.backward_layer] if hasattr(layer, "forward_layer") else [layer]
    )
    states = sum(
        len(_RECURRENT[type(c).__name__].states) for c in cells if type(c).__name__ in _RECURRENT
    )
    return list(range(1 + states))


def _functional_chain(model) -> tuple[list, list[int]]:
    histories = [t._keras_history for t in model.outputs]
    last = {h[0] for h in histories}
    if len(last) != 1:
        names = ", ".join(sorted(op.name for op in last))
        raise KerasInteropError(
            f"model {model.name!r}: its outputs come from several layers ({names}); only "
            "chains of layers are supported"
        )
    chain: list[Any] = []  # Keras layers, outermost first
    tensor = model.outputs[0]
    while True:
        layer, node_index, tensor_index = tensor._keras_history
        if type(layer).__name__ == "InputLayer":
            break
        if chain and tensor_index != 0:
            raise KerasInteropError(
                f"layer {chain[-1].name!r} reads a state of layer {layer.name!r}; only "
                "chains of layers reading each other's outputs are supported"
            )
        inputs = layer._inbound_nodes[node_index].arguments.keras_tensors
        if len(inputs) != 1:
            raise KerasInteropError(
                f"layer {layer.name!r} takes {len(inputs)} inputs (initial states or merges "
                "from other layers are not read from a model; give initial states with "
                "KerasImport.initial_states)"
            )
        chain.append(layer)
        tensor = inputs[0]
    if len(model.inputs) != 1:
        raise KerasInteropError(f"model {model.name!r} has {len(model.inputs)} inputs, expected 1")
    return chain[::-1], [h[2] for h in histories]


def _input_size(model, layers) -> int:
    inputs = getattr(model, "inputs", None)
    if inputs:
        return int(inputs[0].shape[-1])
    first = layers[0]
    first = getattr(first, "forward_layer", first)
    cell = getattr(first, "cell", first)
    return int(cell.kernel.shape[0])


def _fixed_steps(model) -> int | None:
    inputs = getattr(model, "inputs", None)
    if inputs and len(inputs[0].shape) == 3 and inputs[0].shape[1] is not None:
        return int(inputs[0].shape[1])
    return None


def _check_supported(layer) -> None:
    if type(layer).__name__ not in KERAS_LAYERS:
        raise KerasInteropError(
            f"layer {layer.name!r} ({type(layer).__name__}) is not supported "
            f"(supported: {', '.join(KERAS_LAYERS)})"
        )


def _check_built(layer) -> None:
    if not layer.built or (not layer.weights and type(layer).__name__ not in _SKIPPED):
        raise KerasInteropError(
            f"layer {layer.name!r} has no weights yet: build it first (call it on an input "
            "or start the model with keras.Input(shape=(T, n)))"
        )


# ---- the import -----------------------------------------------------------------------------


class KerasImport:
    """A Keras recurrent model as an unroll graph, with translators between layouts.

    Attributes
    ----------
    model : keras.Layer or keras.Model
        The imported model (a reference; :attr:`params` is a snapshot taken at import).
    graph : Graph
        The preset cells (``elman``, ``lstm``, ``gru``) of each recurrent layer, joined as
        the model joins them; layer ``k`` of several carries the suffix ``_lk``, the
        backward half of a ``Bidirectional`` ``_reverse``, a ``Dense`` head is a layer
        node ``y`` (``y_lk`` below the top). Keras's single bias per gate is ``b_i*``.
    params : dict
        float64 copies of the weights under our names; Keras's kernels ``(n_in, G*H)`` are
        split into gates (``[i|f|c|o]`` LSTM, ``[z|r|h]`` GRU) and transposed.
    mode : str
        The sequence mode to unroll with: ``"synced"`` when the model returns a sequence,
        ``"many-to-one"`` when it returns the last step.
    steps : int or None
        The sequence length the graph is built for, where it depends on it.
    paths : list of str
        The Keras weight paths :meth:`keras_grads` returns, in the model's order.
    cells : dict
        ``{Keras layer name: [cell, ...]}`` for each recurrent layer (a Bidirectional has
        two, forward first); a cell has ``.layer`` (the Keras RNN layer), ``.states`` (our
        state nodes, in Keras's state order) and ``.reverse`` (it runs backward in our
        time, so Keras's processing step ``p`` is our step ``T-1-p``).

    Notes
    -----
    Keras is batch first: :meth:`inputs` takes ``(B, T, n)``, :meth:`outputs` and
    :meth:`cotangents` use the model's output layouts, ``(B, T, n)`` or ``(B, n)``, then
    each returned state ``(B, H)``. Every array may be a numpy array or a tensor of the
    backend; every array returned is float64.

    Examples
    --------
    A classifier head on the last step: the graph is unrolled "many-to-one".

    >>> import keras, unroll
    >>> model = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4, name="lstm"),
    ...                           keras.layers.Dense(2, name="head")], name="classifier")
    >>> imp = from_keras(model)
    >>> imp.mode, imp.graph.output_nodes(), imp.params["W_y"].shape
    ('many-to-one', ['y'], (2, 4))
    >>> imp.paths[-2:]
    ['classifier/head/kernel', 'classifier/head/bias']
    """

    def __init__(self, model, layers, output_index, build: _Build, input_size: int):
        self.model, self.graph, self.steps = model, build.graph, build.steps
        self.input_size = input_size
        self._layers = layers
        self._outputs_index = output_index
        self._blocks, self._shapes, self.cells = build.blocks, build.shapes, build.cells
        self.params = dict(sorted(build.values.items()))
        self.paths = list(build.blocks)
        assert build.top is not None  # from_keras sets it before this
        self._main: _Flow = build.top
        self._top_owner = build.top_owner
        self.mode = "synced" if self._main.at is None else "many-to-one"
        need = self.graph.params()
        got = {name: value.shape for name, value in self.params.items()}
        if got != need:  # the presets' naming changed under us
            raise KerasInteropError(
                f"graph {self.graph.name!r} needs parameters {need}, the model gives {got}"
            )

    def __repr__(self) -> str:
        name, graph = self.model.name, self.graph.name
        return f"KerasImport({name!r}, graph={graph!r}, params={len(self.params)})"

    # -- steps and instances --

    def _steps_of(self, steps: int) -> int:
        if self.steps is not None and steps != self.steps:
            raise KerasInteropError(
                f"the graph was built for {self.steps} steps (an edge reads step 0 at step "
                f"{self.steps - 1}), got {steps}"
            )
        return steps

    def _time(self, s: int, steps: int) -> int:
        """Our time of Keras's step ``s`` of the output sequence."""
        return s if self._main.orientation == 1 else steps - 1 - s

    def _main_time(self, steps: int) -> int:
        return 0 if self._main.at == "first" else steps - 1

    def _state_instances(self, steps: int) -> list[tuple[str, int]]:
        """The returned states in Keras's order: each cell's states at its last step."""
        if self._top_owner is None:  # no layer with states
            return []
        return [
            (state, cell.final_time(steps))
            for cell in self.cells.get(self._top_owner, [])
            for state in cell.states
        ]

    def _check_result(self, result) -> int:
        if result.unrolled.graph != self.graph:
            raise KerasInteropError(
                f"the result was computed on graph {result.unrolled.graph.name!r}, not on "
                f"this import's graph {self.graph.name!r}"
            )
        return self._steps_of(result.unrolled.steps)

    # -- layouts --

    def inputs(self, x) -> dict[str, np.ndarray]:
        """The input sequence, Keras's ``(B, T, n)``, as :func:`unroll.bptt` takes it."""
        a = _numeric(x, "x")
        if a.ndim != 3 or a.shape[2] != self.input_size or a.shape[1] < 1:
            raise KerasInteropError(
                f"x has shape {format_shape(a.shape)}, expected (B, T, "
                f"{self.input_size}) (Keras is "
                "batch first)"
            )
        self._steps_of(a.shape[1])
        return {"x": np.ascontiguousarray(a.transpose(1, 0, 2))}

    def initial_states(self, states) -> dict[str, np.ndarray]:
        """Initial states as Keras's ``layer(x, initial_state=[...])`` takes them.

        Parameters
        ----------
        states : list or dict
            A list of ``(B, H)`` arrays in Keras's order (``[h, c]`` for an LSTM, forward
            then backward for a Bidirectional) when the model has one recurrent layer, or
            ``{layer name: list}``.

        Returns
        -------
        dict
            ``{state node: array (B, H)}``, as :func:`unroll.bptt`'s ``initial_states``.
        """
        if not isinstance(states, dict):
            if len(self.cells) != 1:
                raise KerasInteropError(
                    f"the model has {len(self.cells)} recurrent layers: give initial states "
                    f"as {{layer name: [...]}} ({', '.join(self.cells)})"
                )
            states = {next(iter(self.cells)): states}
        out = {}
        for owner, given in states.items():
            if owner not in self.cells:
                raise KerasInteropError(
                    f"no recurrent layer {owner!r} (layers: {', '.join(self.cells)})"
                )
            nodes = [s for cell in self.cells[owner] for s in cell.states]
            if len(given) != len(nodes):
                raise KerasInteropError(
                    f"layer {owner!r} takes {len(nodes)} initial states, got {len(given)}"
                )
            for node, value in zip(nodes, given, strict=True):
                out[node] = self._vector(value, self.graph.nodes[node].size, f"{owner} {node}")
        return out

    def outputs(self, result):
        """Our forward values as the model returns them: one array, or a list of them."""
        steps = self._check_result(result)
        values = result.values
        parts = [self._main_out(values, steps)]
        parts += [values[key] for key in self._state_instances(steps)]
        picked = [parts[i] for i in self._outputs_index]
        return picked[0] if len(picked) == 1 else picked

    def _main_out(self, values, steps):
        node = self._main.node
        if self._main.at is not None:
            return values[(node, self._main_time(steps))]
        return np.stack([values[(node, self._time(s, steps))] for s in range(steps)], axis=1)

    def cotangents(self, *grads, steps: int | None = None) -> dict[tuple[str, int], np.ndarray]:
        """Gradients on the model's outputs, in its layouts, as the ``cotangents`` dict.

        Parameters
        ----------
        *grads : array or None
            One per model output (``None`` for none); a sequence ``(B, T, n)``.
        steps : int, optional
            The number of steps; needed unless a sequence gradient gives it.
        """
        if len(grads) != len(self._outputs_index):
            raise KerasInteropError(
                f"the model has {len(self._outputs_index)} outputs, got {len(grads)} gradients"
            )
        for g, i in zip(grads, self._outputs_index, strict=True):
            if g is not None and i == 0 and self._main.at is None:
                steps = np.shape(g)[1] if steps is None else steps
        if steps is None:
            raise KerasInteropError("cotangents: give steps= (no sequence gradient says it)")
        steps = self._steps_of(steps)
        instances = self._state_instances(steps)
        cots: dict[tuple[str, int], np.ndarray] = {}
        for g, i in zip(grads, self._outputs_index, strict=True):
            if g is None:
                continue
            for key, part in self._placed(g, i, steps, instances):
                cots[key] = cots[key] + part if key in cots else part
        return cots

    def _placed(self, g, i: int, steps: int, instances):
        if i > 0:
            node, t = instances[i - 1]
            return [((node, t), self._vector(g, self.graph.nodes[node].size, f"gradient {i}"))]
        node, size = self._main.node, self._main.size
        if self._main.at is not None:
            return [((node, self._main_time(steps)), self._vector(g, size, "gradient 0"))]
        a = _numeric(g, "gradient 0")
        if a.shape[1:] != (steps, size) or a.ndim != 3:
            raise KerasInteropError(
                f"gradient 0 has shape {format_shape(a.shape)}, expected (B, {steps}, {size})"
            )
        return [((node, self._time(s, steps)), a[:, s]) for s in range(steps)]

    def _vector(self, value, size: int, what: str) -> np.ndarray:
        a = _numeric(value, what)
        if a.ndim != 2 or a.shape[1] != size:
            raise KerasInteropError(
                f"{what} has shape {format_shape(a.shape)}, expected (B, {size})"
            )
        return a

    def keras_grads(self, result) -> dict[str, np.ndarray]:
        """Our parameter gradients keyed by Keras weight ``path``, in Keras's shapes."""
        self._check_result(result)
        grads = {}
        for path, blocks in self._blocks.items():
            out = np.zeros(self._shapes[path])
            for b in blocks:
                g = result.param_grads[b.name]
                out[b.index] = g.T if b.transpose else g
            grads[path] = out
        return grads

    def input_grads(self, result) -> np.ndarray:
        """dL/dx in Keras's layout ``(B, T, n)`` (needs ``bptt(..., input_grads=True)``)."""
        steps = self._check_result(result)
        return np.stack([result.node_grads[("x", t)] for t in range(steps)], axis=1)

    def initial_state_grads(self, result) -> dict[str, np.ndarray]:
        """dL/d(initial state) per state node (the order of :meth:`initial_states`)."""
        steps = self._check_result(result)
        return {
            state: result.node_grads[(state, cell.boundary_time(steps))]
            for cells in self.cells.values()
            for cell in cells
            for state in cell.states
        }


def _numeric(value, what: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor (Keras's torch backend)
        value = value.detach().cpu().double().numpy()
    elif hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # tf / jax arrays
        value = value.numpy()
    a = np.asarray(value)
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise KerasInteropError(f"{what} has dtype {a.dtype}, expected real numbers")
    return a.astype(np.float64)


def from_keras(model, *, steps: int | None = None, training: bool = False) -> KerasImport:
    """Import a Keras 3 recurrent layer, ``Sequential`` or chain-shaped ``Functional`` model.

    Parameters
    ----------
    model : keras.Layer or keras.Model
        Built (with weights). Layers: ``SimpleRNN``, ``LSTM``, ``GRU`` (``reset_after``
        True, which is torch's GRU, or False), ``Bidirectional`` of them (merge modes
        ``concat``, ``sum``, ``mul``, ``ave``), ``Dense`` heads, ``Dropout`` (identity);
        ``go_backwards``, ``return_sequences``, ``return_state`` (on the last layer) and
        activations with a registry row (``linear``, ``tanh``, ``sigmoid``, ``relu``,
        ``softplus``, ``softsign``, ``hard_sigmoid``).
    steps : int, optional
        The sequence length, needed only where the graph depends on it: a layer reading
        the one step a backward-running layer returns (ours at step 0) at step T-1.
        Defaults to the model's fixed input length, if any.
    training : bool
        The imported computation is inference (dropout off); ``True`` refuses dropout.

    Returns
    -------
    KerasImport

    Raises
    ------
    KerasInteropError
        Naming the layer: an unsupported layer class, ``stateful=True``, an activation
        with no registry row, ``merge_mode=None``, a model that is not a chain of layers,
        or an unbuilt layer.

    Examples
    --------
    Keras's own forward pass agrees (to float32 precision: Keras's type promotion computes
    its matrix products in float32 even for float64 weights on the torch and jax backends).

    >>> import keras, numpy as np, unroll
    >>> layer = keras.layers.GRU(4, reset_after=False, return_sequences=True)
    >>> x = np.random.default_rng(0).normal(size=(2, 6, 3))  # (B, T, n): batch first
    >>> expected = keras.ops.convert_to_numpy(layer(x))
    >>> imp = from_keras(layer)
    >>> u = unroll.unroll(imp.graph, steps=6, mode=imp.mode)
    >>> r = unroll.bptt(u, imp.params, imp.inputs(x))
    >>> bool(abs(imp.outputs(r) - expected).max() < 1e-5)
    True
    """
    layers, output_index = _layers_of(model)
    if not layers:
        raise KerasInteropError(f"model {model.name!r} has no layers")
    for layer in layers:
        _check_supported(layer)
        _check_built(layer)
    named = [layer for layer in layers if type(layer).__name__ not in _SKIPPED]
    build = _Build(
        Graph(f"keras_{model.name}"), steps if steps is not None else _fixed_steps(model)
    )
    input_size = _input_size(model, layers)
    flow = _Flow(build.graph.input("x", input_size), input_size)
    index = 0
    for layer in layers:
        add = KERAS_LAYERS[type(layer).__name__]
        suffix = f"_l{index}" if len(named) > 1 else ""
        top = layer is named[-1]
        flow = add(build, layer, flow, suffix, top, training)
        if layer in named:
            index += 1
            build.top_owner = layer.name
    if max(output_index) > 0 and build.top_owner not in build.cells:
        raise KerasInteropError(f"layer {build.top_owner!r} returns no states")
    build.top = flow
    build.graph.set_outputs(flow.node)
    build.graph.validate()
    return KerasImport(model, layers, output_index, build, input_size)


# ---- files ----------------------------------------------------------------------------------

_BACKENDS = ("torch", "jax", "tensorflow")


def _require_keras():
    """Import Keras on a backend that is installed (the configured one, if it is)."""
    if importlib.util.find_spec("keras") is None:
        raise MissingKerasError(f"Keras is not installed; install it with: {KERAS_INSTALL_HINT}")
    if "KERAS_BACKEND" not in os.environ and "keras" not in sys.modules:
        wanted = _configured_backend()
        if importlib.util.find_spec(wanted) is None:
            found = [b for b in _BACKENDS if importlib.util.find_spec(b) is not None]
            os.environ["KERAS_BACKEND"] = found[0] if found else wanted
    try:
        import keras
    except ImportError as e:  # Keras is there, its backend is not
        raise MissingKerasError(
            f"Keras cannot start ({_first_line(e)}); install a backend: torch, jax or "
            "tensorflow (and set KERAS_BACKEND)"
        ) from None
    return keras


def _configured_backend() -> str:
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as f:
            return str(json.load(f).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def load_keras(path, **options) -> KerasImport:
    """Import a model saved with ``model.save("model.keras")``.

    The file is read with ``keras.saving.load_model(path, safe_mode=True, compile=False)``:
    Keras refuses lambda layers and arbitrary code in safe mode. Keras is imported on the
    backend configured (``KERAS_BACKEND`` or ``~/.keras/keras.json``) if it is installed,
    else on one that is.

    Parameters
    ----------
    path : str or path-like
        A ``.keras`` file.
    **options
        Passed to :func:`from_keras` (``steps``, ``training``).

    Raises
    ------
    KerasInteropError
        One line naming the file: missing, not a Keras archive (or truncated), refused by
        Keras's safe loader, or a layer :func:`from_keras` does not support.
    MissingKerasError
        Without Keras (``pip install rnn-unroll[keras]``).

    Examples
    --------
    >>> import os, tempfile, keras
    >>> path = os.path.join(tempfile.mkdtemp(), "tagger.keras")
    >>> keras.Sequential([keras.Input((None, 2)), keras.layers.GRU(3, return_sequences=True),
    ...                   keras.layers.Dense(1)]).save(path)
    >>> imp = load_keras(path)
    >>> imp.mode, imp.graph.nodes["y"].size
    ('synced', 1)
    """
    path = Path(path)
    if not path.is_file():
        raise KerasInteropError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise KerasInteropError(f"{path}: not a Keras model file ({_first_line(e)})") from None
    if bad is not None or "config.json" not in names:
        problem = f"corrupt member {bad}" if bad else "no config.json in the archive"
        raise KerasInteropError(f"{path}: not a Keras model file ({problem})")
    keras = _require_keras()
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as e:  # Keras raises many types for a file it cannot rebuild
        raise KerasInteropError(
            f"{path}: Keras cannot load it ({type(e).__name__}: {_first_line(e)})"
        ) from None
    try:
        return from_keras(model, **options)
    except KerasInteropError as e:
        raise KerasInteropError(f"{path}: {e}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no details"
