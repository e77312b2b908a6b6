"""Import ONNX recurrent models (RNN, LSTM, GRU nodes, stacked as torch.onnx exports them).

:func:`from_onnx` reads the recurrent nodes of an ONNX graph, unpacks their ``W``, ``R``
and ``B`` tensors (gate orders ``iofc`` for LSTM, ``zrh`` for GRU) into torch.nn's layout,
and returns an :class:`OnnxImport`: the same graph and parameters :func:`unroll.from_torch`
gives for the torch.nn module that would compute the same thing, with the same translators
(``.inputs``, ``.outputs``, ``.cotangents``, ``.torch_grads``, ...) plus
:meth:`OnnxImport.onnx_outputs` and :meth:`OnnxImport.onnx_grads`, keyed by the ONNX
graph's own names.

Everything between the recurrent nodes (the Transpose/Reshape/Concat/Expand "glue" torch
emits) is checked, not trusted: the glue alone is run once by ONNX's reference evaluator on
random probe values, and each layer's input, initial states and the graph's outputs must
come out as the known layouts (the graph input, the layer below joined torch's way, zeros
or a slice of an initial-state input; torch's ``output``/``h_n``/``c_n`` or ONNX's ``Y``).

ONNX is an optional extra; it is imported only by these functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .. import presets
from ..errors import format_shape
from ..graph import Graph
from .torch_modules import (
    SUPPORTED,
    TorchImport,
    TorchInteropError,
    TorchKind,
    _build_graph,
    _param_names,
)

__all__ = [
    "ONNX_INSTALL_HINT",
    "MissingOnnxError",
    "OnnxImport",
    "OnnxInteropError",
    "from_onnx",
    "load_onnx",
]

ONNX_INSTALL_HINT = "pip install rnn-unroll[onnx]"


class OnnxInteropError(TorchInteropError):
    """An ONNX model or file that unroll cannot represent; the message is one line."""


class MissingOnnxError(OnnxInteropError, ImportError):
    """The onnx package is needed here but is not installed (also an :class:`ImportError`)."""


def _require_onnx():
    try:
        import onnx
        import onnx.reference
    except ImportError:
        raise MissingOnnxError(
            f"onnx is not installed; install it with: {ONNX_INSTALL_HINT}"
        ) from None
    return onnx


@dataclass(frozen=True)
class _OnnxOp:
    """One recurrent ONNX op: the torch.nn kind it becomes, where ONNX's gate blocks go in
    torch's order (``order[q]`` is the ONNX block of torch gate ``q``), and its default
    activations per direction."""

    kind: str
    order: tuple[int, ...]
    activations: tuple[str, ...]


_OPS = {
    "RNN": _OnnxOp("RNN", (0,), ("Tanh",)),
    "LSTM": _OnnxOp("LSTM", (0, 2, 3, 1), ("Sigmoid", "Tanh", "Tanh")),  # iofc -> ifgo
    "GRU": _OnnxOp("GRU", (1, 0, 2), ("Sigmoid", "Tanh")),  # zrh -> rzn
}
_RNN_ACTIVATIONS = {"Tanh": "tanh", "Relu": "relu"}

#: Ops allowed between the recurrent nodes: layout only, each checked by the probe run.
GLUE_OPS = frozenset(
    {
        "Cast",
        "Concat",
        "Constant",
        "ConstantOfShape",
        "Expand",
        "Flatten",
        "Gather",
        "Identity",
        "Reshape",
        "Shape",
        "Slice",
        "Split",
        "Squeeze",
        "Transpose",
        "Unsqueeze",
    }
)
_DIRECTIONS = {"forward": (0,), "reverse": (1,), "bidirectional": (0, 1)}


# ---- reading the recurrent nodes ------------------------------------------------------------


@dataclass
class _Layer:
    """One recurrent node, read and checked."""

    node: object
    op: _OnnxOp
    hidden_size: int
    directions: tuple[int, ...]
    weights: dict[str, np.ndarray]  # W, R, and B if present
    options: dict
    inputs: dict[str, str]  # ONNX input role -> tensor name (non-empty ones)
    outputs: list[str]


def _attributes(onnx, node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _label(node) -> str:
    return f"node {node.name or node.output[0]!r} ({node.op_type})"


_ROLES = {
    "RNN": ("X", "W", "R", "B", "sequence_lens", "initial_h"),
    "GRU": ("X", "W", "R", "B", "sequence_lens", "initial_h"),
    "LSTM": ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"),
}


def _read_layer(onnx, node, constants: dict) -> _Layer:
    op, label = _OPS[node.op_type], _label(node)
    attrs = _attributes(onnx, node)
    roles = {r: n for r, n in zip(_ROLES[node.op_type], node.input, strict=False) if n}
    refusals = [
        ("P" in roles, "peepholes (input P) are not supported yet"),
        (
            "sequence_lens" in roles,
            "sequence_lens (sequences of different lengths) is not supported",
        ),
        ("clip" in attrs, f"clip={attrs.get('clip')} is not supported (cell clipping)"),
        (bool(attrs.get("input_forget", 0)), "input_forget=1 (coupled gates) is not supported"),
        (bool(attrs.get("layout", 0)), "layout=1 (batch-first inside the node) is not supported"),
        (
            "activation_alpha" in attrs or "activation_beta" in attrs,
            "activation_alpha/activation_beta are not supported",
        ),
    ]
    for refused, message in refusals:
        if refused:
            raise OnnxInteropError(f"{label}: {message}")
    direction = _text(attrs.get("direction", b"forward"))
    if direction not in _DIRECTIONS:
        raise OnnxInteropError(f"{label}: unknown direction {direction!r}")
    directions = _DIRECTIONS[direction]
    options = _activation_options(op, attrs, len(directions), label)
    if node.op_type == "GRU" and not attrs.get("linear_before_reset", 0):
        options["reset_after"] = False
    weights: dict[str, np.ndarray] = {}
    for role in ("W", "R", "B"):
        if role in roles:
            if roles[role] not in constants:
                raise OnnxInteropError(
                    f"{label}: its {role} input {roles[role]!r} is not a constant (an initializer)"
                )
            weights[role] = np.asarray(constants[roles[role]], dtype=np.float64)
    if "hidden_size" not in attrs:
        raise OnnxInteropError(f"{label}: no hidden_size attribute")
    layer = _Layer(
        node, op, int(attrs["hidden_size"]), directions, weights, options, roles, list(node.output)
    )
    _check_weight_shapes(layer, label)
    return layer


def _activation_options(op: _OnnxOp, attrs: dict, n_directions: int, label: str) -> dict:
    given = [_text(a) for a in attrs.get("activations", [])]
    if not given:
        return {}
    per = [
        tuple(given[i * len(op.activations) : (i + 1) * len(op.activations)])
        for i in range(n_directions)
    ]
    if len(given) != len(op.activations) * n_directions or len(set(per)) != 1:
        raise OnnxInteropError(f"{label}: activations {given} do not give one list per direction")
    if op.kind == "RNN" and per[0][0] in _RNN_ACTIVATIONS:
        return {"activation": _RNN_ACTIVATIONS[per[0][0]]}
    if per[0] == op.activations:
        return {}
    raise OnnxInteropError(
        f"{label}: activations {list(per[0])} are not supported (only the defaults "
        f"{list(op.activations)}{', or Relu' if op.kind == 'RNN' else ''})"
    )


def _check_weight_shapes(layer: _Layer, label: str) -> None:
    D, H, G = len(layer.directions), layer.hidden_size, len(layer.op.order)
    W, R = layer.weights.get("W"), layer.weights.get("R")
    if W is None or R is None:
        raise OnnxInteropError(f"{label}: needs the inputs W and R")
    expected = {
        "W": (D, G * H, W.shape[-1] if W.ndim == 3 else -1),
        "R": (D, G * H, H),
        "B": (D, 2 * G * H),
    }
    for role, value in layer.weights.items():
        if value.shape != expected[role]:
            raise OnnxInteropError(
                f"{label}: {role} has shape {format_shape(value.shape)}, "
                f"expected {format_shape(expected[role])} "
                f"(directions {D}, hidden_size {H}, {G} gate blocks)"
            )


# ---- checking the glue by a probe run -------------------------------------------------------


@dataclass
class _Layouts:
    """What the probe found: batch layout, initial states' sources, each output's form."""

    batch_first: bool = False
    initial: dict[tuple[int, str], tuple[str, int] | None] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)


def _probe_model(model, layers: list[_Layer]):
    """The graph without its recurrent nodes: their outputs become inputs, and each layer's
    X and initial states, and the graph's outputs, become outputs."""
    from onnx import TensorProto, helper

    graph = model.graph
    recurrent = {id(layer.node) for layer in layers}
    constants = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in constants]
    for layer in layers:
        inputs += [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in layer.outputs if n
        ]
    wanted = [
        layer.inputs[r]
        for layer in layers
        for r in ("X", "initial_h", "initial_c")
        if r in layer.inputs
    ]
    outputs = [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in dict.fromkeys(wanted)
    ]
    outputs += [o for o in graph.output if o.name not in wanted]
    nodes = [n for n in graph.node if id(n) not in recurrent]
    probe = helper.make_graph(nodes, "probe", inputs, outputs, list(graph.initializer))
    return helper.make_model(
        probe, opset_imports=list(model.opset_import), ir_version=model.ir_version
    )


def _probe(model, layers: list[_Layer], x_name: str) -> _Layouts:
    """Run the glue once on random values standing in for every recurrent output, time first
    and then batch first, and read off the layouts."""
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(0)
    evaluator = ReferenceEvaluator(_probe_model(model, layers))
    infos = {i.name: i for i in model.graph.input}
    x = rng.normal(size=_dims(infos[x_name], (3, 2, layers[0].weights["W"].shape[2])))
    x = x.astype(np.float32)
    for batch_first in (False, True):
        T, B = (x.shape[1], x.shape[0]) if batch_first else (x.shape[0], x.shape[1])
        feeds: dict[str, np.ndarray] = {x_name: x}
        for name in evaluator.input_names:
            if name in infos and name != x_name:
                feeds[name] = rng.normal(size=_dims(infos[name], (2, B, 2), fill=B)).astype(
                    np.float32
                )
        ys = []
        for layer in layers:
            D, H = len(layer.directions), layer.hidden_size
            made = [
                rng.normal(size=s).astype(np.float32) for s in ((T, D, B, H), (D, B, H), (D, B, H))
            ]
            ys.append(made)
            feeds.update({n: v for n, v in zip(layer.outputs, made, strict=False) if n})
        try:
            got = dict(zip(evaluator.output_names, evaluator.run(None, feeds), strict=True))
        except Exception as e:  # the reference evaluator raises many types
            raise OnnxInteropError(
                f"the nodes between the recurrent layers cannot be run "
                f"({type(e).__name__}: {_first_line(e)})"
            ) from None
        time_first = x.transpose(1, 0, 2) if batch_first else x
        if _same(got[layers[0].inputs["X"]], time_first):
            return _read_layouts(model, layers, feeds, got, ys, batch_first, x_name)
    raise OnnxInteropError(
        f"{_label(layers[0].node)}: its input X is not the graph input {x_name!r} "
        "(time first, or batch first through a Transpose)"
    )


def _read_layouts(model, layers, feeds, got, ys, batch_first, x_name) -> _Layouts:
    found = _Layouts(batch_first=batch_first)
    for k, layer in enumerate(layers):
        if k and not _same(got[layer.inputs["X"]], _join(ys[k - 1][0])):
            raise OnnxInteropError(
                f"{_label(layer.node)}: its input X is not the layer below's output joined "
                "as torch joins it (T, B, D*H)"
            )
        for role in ("initial_h", "initial_c"):
            found.initial[(k, role)] = _initial_source(
                got, feeds, layer, len(layers), k, role, x_name
            )
    top = _join(ys[-1][0])
    forms = {
        "output": top.transpose(1, 0, 2) if batch_first else top,
        "Y": ys[-1][0],
        "h_n": np.concatenate([y[1] for y in ys]),
    }
    if layers[0].op.kind == "LSTM":
        forms["c_n"] = np.concatenate([y[2] for y in ys])
    for out in model.graph.output:
        match = [form for form, value in forms.items() if _same(got.get(out.name), value)]
        if not match:
            raise OnnxInteropError(
                f"graph output {out.name!r} is none of the layouts unroll reads (the top "
                "layer's output, its Y, or the final states h_n / c_n of every layer)"
            )
        found.outputs[out.name] = match[0]
    return found


def _dims(info, default, fill=None) -> tuple[int, ...]:
    """A graph input's shape: its fixed sizes, ``default`` (or ``fill``) where dynamic."""
    dims = [d.dim_value or None for d in info.type.tensor_type.shape.dim]
    return tuple(d or (fill or default[i]) for i, d in enumerate(dims))


def _join(y: np.ndarray) -> np.ndarray:
    """ONNX's ``Y (T, D, B, H)`` as torch's output ``(T, B, D*H)``."""
    T, D, B, H = y.shape
    return y.transpose(0, 2, 1, 3).reshape(T, B, D * H)


def _same(a, b) -> bool:
    return a is not None and np.shape(a) == np.shape(b) and np.array_equal(a, b)


def _initial_source(got, feeds, layer, n_layers, k, role, x_name):
    """``None`` for a zero state, else ``(graph input, first row)`` it is sliced from."""
    if role not in layer.inputs:
        return None
    value = got[layer.inputs[role]]
    if not np.any(value):
        return None
    D = len(layer.directions)
    for name, fed in feeds.items():
        if name == x_name or fed.ndim != 3:
            continue
        if fed.shape[0] == D * n_layers and _same(value, fed[k * D : (k + 1) * D]):
            return name, k * D
    raise OnnxInteropError(
        f"{_label(layer.node)}: its {role} is neither zero nor this layer's rows of an "
        "initial-state input (L*D, B, H)"
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no details"


# ---- the import -----------------------------------------------------------------------------


class OnnxImport(TorchImport):
    """An ONNX recurrent model as an unroll graph: a :class:`TorchImport` of the torch.nn
    module that computes the same thing (its translators use torch's layouts), plus the
    ONNX graph's own inputs (:meth:`feed`), outputs (:meth:`onnx_outputs`) and packed
    weight gradients (:meth:`onnx_grads`) by name.

    Attributes
    ----------
    model : onnx.ModelProto
    graph, params, param_names, kind, input_size, hidden_size, num_layers,
    num_directions, batch_first, directions
        As for :class:`TorchImport`; ``param_names`` are torch's (``weight_ih_l0``, ...).
    input_names : dict
        ``{"x": the sequence input}`` plus any initial-state inputs the graph takes.
    output_forms : dict
        ``{graph output: "output" | "Y" | "h_n" | "c_n"}``.

    Examples
    --------
    >>> import io, torch, unroll
    >>> _ = torch.manual_seed(0)
    >>> gru = torch.nn.GRU(3, 4, num_layers=2)
    >>> f = io.BytesIO()
    >>> torch.onnx.export(gru, (torch.randn(5, 2, 3),), f, dynamo=False,
    ...                   input_names=["x"], output_names=["output", "h_n"])
    >>> imp = from_onnx(f.getvalue())
    >>> imp.graph == unroll.from_torch(gru).graph, imp.output_forms
    (True, {'output': 'output', 'h_n': 'h_n'})
    """

    def __init__(self, model, layers: list[_Layer], layouts: _Layouts, x_name: str):
        first = layers[0]
        reverse_only = first.directions == (1,)
        self.module, self.model = model, model
        self.kind = _torch_kind(first)
        self.input_size = int(first.weights["W"].shape[2])
        self.hidden_size = first.hidden_size
        self.num_layers = len(layers)
        self.num_directions = len(first.directions)
        self.batch_first = layouts.batch_first
        self.bias = "B" in first.weights
        options = first.options
        if reverse_only:
            self.graph = _reverse_graph(
                self.kind, self.input_size, self.hidden_size, self.num_layers, self.bias, options
            )
        else:
            self.graph = _build_graph(
                self.kind,
                self.input_size,
                self.hidden_size,
                self.num_layers,
                self.num_directions == 2,
                self.bias,
                options,
            )
        self.directions = [(k, d) for k in range(self.num_layers) for d in first.directions]
        self.param_names = _param_names(self.kind, self.directions, self.num_layers, self.bias)
        self.params = self._split(_torch_layout(layers, self.directions, self.num_layers))
        self.input_name = self.graph.input_nodes()[0]
        self.output_node = self.graph.output_nodes()[0]
        self._layers = layers
        self._initial = layouts.initial
        self.output_forms = layouts.outputs
        self.input_names = {"x": x_name}
        self.input_names.update({role: src[0] for (k, role), src in layouts.initial.items() if src})

    def __repr__(self) -> str:
        return f"OnnxImport(graph={self.graph.name!r}, params={len(self.params)})"

    def feed(self, feeds) -> dict:
        """The ONNX graph's inputs ``{name: array}`` as keyword arguments of :func:`unroll.bptt`.

        Returns
        -------
        dict
            ``{"inputs": ..., "initial_states": ...}``: the sequence in our layout, and the
            initial states the graph slices from its state inputs (zero ones left out).
        """
        x_name = self.input_names["x"]
        if x_name not in feeds:
            raise OnnxInteropError(f"feed: no value for the graph input {x_name!r}")
        states = {}
        for (k, role), source in sorted(self._initial.items()):
            if source is None:
                continue
            name, row = source
            if name not in feeds:
                raise OnnxInteropError(f"feed: no value for the graph input {name!r}")
            value = self._states_in(feeds[name], name)
            for j, d in enumerate(d for kk, d in self.directions if kk == k):
                states[self.state_node(role[-1], k, d)] = value[row + j]
        return {"inputs": self.inputs(feeds[x_name]), "initial_states": states}

    def onnx_outputs(self, result) -> dict[str, np.ndarray]:
        """Our forward values as the ONNX graph's outputs, by name, in their layouts."""
        output, finals = self.outputs(result)
        finals = finals if isinstance(finals, tuple) else (finals,)
        forms = {"output": output, "h_n": finals[0]}
        if len(finals) > 1:
            forms["c_n"] = finals[1]
        if "Y" in self.output_forms.values():
            forms["Y"] = self._raw_y(result)
        return {name: forms[form] for name, form in self.output_forms.items()}

    def onnx_grads(self, result) -> dict[str, np.ndarray]:
        """Our parameter gradients keyed by the ONNX initializers ``W``, ``R``, ``B`` of each
        node, packed in ONNX's layout (directions first, ONNX's gate order)."""
        torch_grads = self.torch_grads(result)
        grads = {}
        for k, layer in enumerate(self._layers):
            H, order = layer.hidden_size, layer.op.order
            for role, value in layer.weights.items():
                packed = np.zeros(value.shape)
                for j, d in enumerate(layer.directions):
                    suffix = f"_l{k}" + ("_reverse" if d == 1 else "")
                    for part, name in enumerate(_TORCH_NAMES[role]):
                        g = torch_grads[f"{name}{suffix}"]
                        offset = part * len(order) * H
                        for q, block in enumerate(order):
                            rows = slice(offset + block * H, offset + (block + 1) * H)
                            packed[j, rows] = g[q * H : (q + 1) * H]
                grads[layer.inputs[role]] = packed
        return grads

    def _raw_y(self, result) -> np.ndarray:
        """ONNX's ``Y (T, D, B, H)`` of the top layer."""
        k, T = self.num_layers - 1, result.unrolled.steps
        directions = [d for kk, d in self.directions if kk == k]
        return np.stack(
            [
                np.stack([result.values[(self.state_node("h", k, d), t)] for d in directions])
                for t in range(T)
            ]
        )


#: ONNX's packed inputs -> the torch parameters they hold, in packing order.
_TORCH_NAMES = {"W": ("weight_ih",), "R": ("weight_hh",), "B": ("bias_ih", "bias_hh")}


def _torch_kind(layer: _Layer) -> TorchKind:
    kind = SUPPORTED[layer.op.kind]
    if layer.options:
        options = dict(layer.options)
        return replace(kind, cell_options=lambda module: dict(options))
    return kind


def _reverse_graph(kind: TorchKind, input_size, hidden_size, layers, bias, options) -> Graph:
    """Layers that each run backward in time only (ONNX's ``direction="reverse"``)."""
    g = Graph(f"reverse_{kind.cell}")
    below = g.input("x", input_size)
    for k in range(layers):
        suffix = (f"_l{k}" if layers > 1 else "") + "_reverse"
        below = presets.CELLS[kind.cell](
            g, below, hidden_size, suffix=suffix, reverse=True, bias=bias, **options
        )
    g.set_outputs(below)
    return g


def _torch_layout(layers: list[_Layer], directions, n_layers: int) -> dict[str, np.ndarray]:
    """ONNX's packed W, R, B per layer as torch's weight_ih_l0, bias_hh_l1_reverse, ..."""
    out = {}
    for k, layer in enumerate(layers):
        H, order = layer.hidden_size, layer.op.order
        for j, d in enumerate(layer.directions):
            suffix = f"_l{k}" + ("_reverse" if d == 1 else "")

            def blocks(a, H=H, order=order):
                return np.concatenate([a[q * H : (q + 1) * H] for q in order])

            out[f"weight_ih{suffix}"] = blocks(layer.weights["W"][j])
            out[f"weight_hh{suffix}"] = blocks(layer.weights["R"][j])
            if "B" in layer.weights:
                half = layer.weights["B"].shape[1] // 2
                out[f"bias_ih{suffix}"] = blocks(layer.weights["B"][j][:half])
                out[f"bias_hh{suffix}"] = blocks(layer.weights["B"][j][half:])
    return out


def _constants(onnx, graph) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(a.t)
    return values


def _recurrent_layers(onnx, model) -> list[_Layer]:
    graph = model.graph
    for node in graph.node:
        if node.op_type not in _OPS and node.op_type not in GLUE_OPS:
            raise OnnxInteropError(
                f"{_label(node)}: op {node.op_type} is not supported (recurrent ops: "
                f"{', '.join(_OPS)}; and layout ops between them)"
            )
        if node.domain not in ("", "ai.onnx"):
            raise OnnxInteropError(f"{_label(node)}: op domain {node.domain!r} is not supported")
    constants = _constants(onnx, graph)
    layers = [_read_layer(onnx, n, constants) for n in graph.node if n.op_type in _OPS]
    if not layers:
        raise OnnxInteropError("the graph has no RNN, LSTM or GRU node")
    first = layers[0]
    for layer in layers[1:]:
        same = (
            layer.op == first.op,
            layer.hidden_size == first.hidden_size,
            layer.directions == first.directions,
            layer.options == first.options,
            ("B" in layer.weights) == ("B" in first.weights),
        )
        if not all(same):
            raise OnnxInteropError(
                f"{_label(layer.node)} differs from {_label(first.node)} (op, hidden_size, "
                "direction, activations or bias): only uniform stacks, as torch.onnx exports "
                "them, are supported"
            )
    return layers


def from_onnx(model) -> OnnxImport:
    """Import an ONNX model whose recurrent part is RNN, LSTM or GRU nodes.

    Parameters
    ----------
    model : onnx.ModelProto, bytes, or str / path-like
        The model, its serialized bytes, or a ``.onnx`` file (see :func:`load_onnx`).
        Supported: one node per layer, stacked as torch.onnx exports them; directions
        forward, reverse, bidirectional; GRU with ``linear_before_reset`` 1 (torch's GRU)
        or 0; with or without ``B``; zero initial states or ones sliced from graph inputs.

    Returns
    -------
    OnnxImport

    Raises
    ------
    OnnxInteropError
        Naming the node: peepholes (``P``), ``clip``, ``input_forget``, ``layout=1``,
        activations other than the defaults (and Relu for RNN), ``sequence_lens``, an
        op that is neither recurrent nor layout, glue the probe cannot read.
    MissingOnnxError
        Without the onnx package (``pip install rnn-unroll[onnx]``).

    Examples
    --------
    One GRU node that resets before the recurrent product (``linear_before_reset=0``):

    >>> import numpy as np
    >>> from onnx import TensorProto, helper, numpy_helper
    >>> rng = np.random.default_rng(0)
    >>> W, R = (numpy_helper.from_array(rng.normal(size=s).astype(np.float32), n)
    ...         for n, s in (("W", (1, 6, 3)), ("R", (1, 6, 2))))
    >>> node = helper.make_node("GRU", ["X", "W", "R"], ["Y", "Y_h"], hidden_size=2)
    >>> graph = helper.make_graph(
    ...     [node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [4, 1, 3])],
    ...     [helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [1, 1, 2])], [W, R])
    >>> imp = from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]))
    >>> imp.graph.name, sorted(imp.params)[:3], imp.output_forms
    ('gru_reset_before', ['W_hn', 'W_hr', 'W_hz'], {'Y_h': 'h_n'})
    """
    onnx = _require_onnx()
    if isinstance(model, str | Path):
        return load_onnx(model)
    if isinstance(model, bytes | bytearray):
        model = _parse(onnx, bytes(model), "the model bytes")
    else:
        _check(onnx, model, "the model")
    return _import(onnx, model)


def _import(onnx, model) -> OnnxImport:
    layers = _recurrent_layers(onnx, model)
    constants = {i.name for i in model.graph.initializer}
    sequence_inputs = [i.name for i in model.graph.input if i.name not in constants]
    if not sequence_inputs:
        raise OnnxInteropError("the graph has no input")
    layouts = _probe(model, layers, sequence_inputs[0])
    return OnnxImport(model, layers, layouts, sequence_inputs[0])


def _parse(onnx, data: bytes, where: str):
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf's DecodeError and friends
        raise OnnxInteropError(
            f"{where}: not an ONNX model ({type(e).__name__}: {_first_line(e)})"
        ) from None
    _check(onnx, model, where)
    return model


def _check(onnx, model, where: str) -> None:
    if not isinstance(model, onnx.ModelProto):
        raise OnnxInteropError(
            f"{where} is a {type(model).__name__}, not an onnx.ModelProto, bytes or a path"
        )
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # onnx.checker.ValidationError and friends
        raise OnnxInteropError(f"{where}: not a valid ONNX model ({_first_line(e)})") from None


def load_onnx(path) -> OnnxImport:
    """Import a ``.onnx`` file: parsed with ``onnx.load`` (protobuf: nothing is executed),
    checked with ``onnx.checker``, then read by :func:`from_onnx`.

    Raises
    ------
    OnnxInteropError
        One line naming the file: missing, not ONNX (or truncated), invalid, or a node
        :func:`from_onnx` does not support.

    Examples
    --------
    >>> import os, tempfile
    >>> load_onnx(os.path.join(tempfile.mkdtemp(), "missing.onnx"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    unroll.interop.onnx_models.OnnxInteropError: .../missing.onnx: no such file
    """
    onnx = _require_onnx()
    path = Path(path)
    if not path.is_file():
        raise OnnxInteropError(f"{path}: no such file")
    model = _parse(onnx, path.read_bytes(), str(path))
    try:
        return _import(onnx, model)
    except OnnxInteropError as e:
        raise OnnxInteropError(f"{path}: {e}") from None
