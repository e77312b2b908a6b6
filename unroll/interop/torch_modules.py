"""Import torch.nn recurrent modules (RNN, LSTM, GRU and their cells) as unroll graphs.

:func:`from_torch` reads a module's settings and weights once (a float64 snapshot) and
returns a :class:`TorchImport`: the graph, built with the presets' own cell builders,
the parameters under our names, and translators between torch's tensor layouts and
the dicts :func:`unroll.bptt` takes and returns. :func:`load_state_dict` does the same for
weights saved with ``torch.save(module.state_dict(), path)``, inferring the architecture
from the parameter names and shapes.

Torch is an optional extra: it is imported inside the functions that need it, never at
module import.
"""

from __future__ import annotations

import math
import pickle
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from .. import presets
from ..errors import InputError, format_shape
from ..graph import Graph
from ..limits import MAX_PARAM_BYTES, check_parameters

__all__ = [
    "HEAD_NODE",
    "INSTALL_HINT",
    "SUPPORTED",
    "MissingTorchError",
    "TorchImport",
    "TorchInteropError",
    "TorchKind",
    "from_torch",
    "load_state_dict",
]

INSTALL_HINT = "pip install rnn-unroll[torch]"

#: The node, weight and bias names a ``head=`` Linear layer takes in the graph.
HEAD_NODE, HEAD_WEIGHT, HEAD_BIAS = "head", "W_head", "b_head"
_HEAD_PARAMS = {"weight": HEAD_WEIGHT, "bias": HEAD_BIAS}


class TorchInteropError(InputError):
    """A torch module, state_dict or file that unroll cannot represent; the message is one line."""


class MissingTorchError(TorchInteropError, ImportError):
    """PyTorch is needed here but is not installed (also an :class:`ImportError`)."""


def _require_torch():
    try:
        import torch
    except ImportError:
        raise MissingTorchError(
            f"PyTorch is not installed; install it with: {INSTALL_HINT}"
        ) from None
    return torch


# ---- the supported module types -------------------------------------------------------------


@dataclass(frozen=True)
class TorchKind:
    """One supported torch.nn class: the preset cell it becomes and how torch packs its rows.

    ``gates`` are the row blocks of torch's packed ``weight_ih``, ``weight_hh``, ``bias_ih``
    and ``bias_hh``, in torch's order; block ``q`` of ``weight_ih`` is our ``W_iq`` and of
    ``bias_hh`` our ``b_hq`` (torch.nn.RNN has one block, named ``h``: ``W_ih``, ``b_hh``).
    ``states`` are the recurrent states torch returns; ``is_cell`` marks the one-step
    ``*Cell`` modules; ``cell_options`` reads the preset options (the activation) off a
    module.
    """

    name: str
    cell: str
    gates: tuple[str, ...]
    states: tuple[str, ...]
    is_cell: bool
    cell_options: Callable[[object], dict]


def _activation_of(module) -> dict:
    return {"activation": module.nonlinearity}


def _no_options(module) -> dict:
    return {}


_LSTM_GATES, _GRU_GATES = ("i", "f", "g", "o"), ("r", "z", "n")

#: The torch.nn classes :func:`from_torch` accepts, by class name.
SUPPORTED: dict[str, TorchKind] = {
    k.name: k
    for k in [
        TorchKind("RNN", "elman", ("h",), ("h",), False, _activation_of),
        TorchKind("LSTM", "lstm", _LSTM_GATES, ("h", "c"), False, _no_options),
        TorchKind("GRU", "gru", _GRU_GATES, ("h",), False, _no_options),
        TorchKind("RNNCell", "elman", ("h",), ("h",), True, _activation_of),
        TorchKind("LSTMCell", "lstm", _LSTM_GATES, ("h", "c"), True, _no_options),
        TorchKind("GRUCell", "gru", _GRU_GATES, ("h",), True, _no_options),
    ]
}


def _kind_of(torch, module) -> TorchKind:
    for cls in type(module).__mro__:
        if cls.__name__ in SUPPORTED and getattr(torch.nn, cls.__name__, None) is cls:
            return SUPPORTED[cls.__name__]
    raise TorchInteropError(
        f"unsupported module type {type(module).__name__!r} "
        f"(supported: {', '.join(sorted(SUPPORTED))})"
    )


@dataclass(frozen=True)
class _Unsupported:
    """A module setting we cannot represent: ``applies(module)`` and its message."""

    applies: Callable[[Any], bool]  # of a torch module
    message: Callable[[Any], str]


_UNSUPPORTED = [
    _Unsupported(
        lambda m: getattr(m, "proj_size", 0) > 0,
        lambda m: (
            f"LSTM with proj_size={m.proj_size} is not supported (a projected hidden "
            "state has no preset cell); use proj_size=0"
        ),
    ),
    _Unsupported(
        lambda m: m.training and getattr(m, "dropout", 0) > 0 and getattr(m, "num_layers", 1) > 1,
        lambda m: (
            f"{type(m).__name__} with dropout={m.dropout} in training mode is not "
            "supported (random masks between layers); call module.eval() or set "
            "dropout=0"
        ),
    ),
]


def _check_supported(module) -> None:
    for rule in _UNSUPPORTED:
        if rule.applies(module):
            raise TorchInteropError(rule.message(module))


# ---- building the graph and the name map ----------------------------------------------------


def _suffix(layers: int, k: int, reverse: bool) -> str:
    """Our suffix for layer ``k``: the one :func:`unroll.presets.stacked` gives its nodes."""
    return (f"_l{k}" if layers > 1 else "") + ("_reverse" if reverse else "")


def _torch_suffix(kind: TorchKind, k: int, reverse: bool) -> str:
    return "" if kind.is_cell else f"_l{k}" + ("_reverse" if reverse else "")


def _build_graph(
    kind: TorchKind, input_size, hidden_size, layers, bidirectional, bias, options
) -> Graph:
    if bidirectional:
        return presets.bidirectional(
            kind.cell, input_size, hidden_size, layers, bias=bias, **options
        )
    if layers == 1:
        return presets.PRESETS[kind.cell](input_size, hidden_size, bias=bias, **options)
    return presets.stacked(kind.cell, input_size, hidden_size, layers, bias=bias, **options)


def _param_names(kind: TorchKind, directions, layers, bias) -> dict[str, tuple[str, ...]]:
    """``{torch name: our names of its row blocks}``: per layer and direction, ``weight_ih``,
    ``weight_hh``, ``bias_ih``, ``bias_hh`` (torch's order)."""
    names = {}
    parts = [("weight", "W")] + ([("bias", "b")] if bias else [])
    for k, d in directions:
        ours, theirs = _suffix(layers, k, d == 1), _torch_suffix(kind, k, d == 1)
        for what, short in parts:
            for side in ("ih", "hh"):
                names[f"{what}_{side}{theirs}"] = tuple(
                    f"{short}_{side[0]}{q}{ours}" for q in kind.gates
                )
    return names


def _as_float64(tensor) -> np.ndarray:
    if hasattr(tensor, "detach"):  # a torch tensor; other importers hand numpy arrays
        tensor = tensor.detach().cpu().double().numpy()
    return np.array(tensor, dtype=np.float64)


# ---- the import -----------------------------------------------------------------------------


class TorchImport:
    """A torch.nn recurrent module as an unroll graph, with translators between layouts.

    Attributes
    ----------
    module : torch.nn.Module
        The imported module (a reference; :attr:`params` is a snapshot taken at import).
    kind : TorchKind
        The row of :data:`SUPPORTED` it matched.
    graph : Graph
        Built with :mod:`unroll.presets`: ``lstm``/``gru``/``elman`` for one layer,
        ``stacked`` for several, ``bidirectional`` for two directions.
    params : dict
        float64 copies of the weights under our names (``W_ii``, ``b_hn_l1_reverse``, ...):
        torch's packed rows are split into gates, ``[i|f|g|o]`` (LSTM), ``[r|z|n]`` (GRU).
    param_names : dict
        ``{torch name: our names of its row blocks}``, in ``named_parameters()`` order.
    input_size, hidden_size, num_layers, num_directions : int
    batch_first : bool
    directions : list of (layer, direction)
        In the order of the first axis of torch's ``h_n`` (``layer * num_directions +
        direction``; direction 1 runs backward in time).

    Notes
    -----
    Every array argument may be a torch tensor or a numpy array; every array returned is a
    float64 numpy array (:meth:`torch_grads` too: wrap them with ``torch.from_numpy``).
    ``batched=False`` asks for torch's unbatched layouts (no batch axis).

    A cell module (``RNNCell``, ``LSTMCell``, ``GRUCell``) computes one step; it is
    imported as the one-layer net that calls it once per step, ``h_t = cell(x[t],
    h_{t-1})`` with ``h_{-1} = hx``. Its sequences are time first, ``(T, B, I)`` or
    ``(T, I)``; its states are ``(B, H)`` or ``(H,)``; :meth:`outputs` stacks the ``h_t``
    into ``(T, B, H)`` beside the last call's return value.

    Examples
    --------
    Gradients of a bidirectional GRU, checked against torch autograd:

    >>> import torch, unroll
    >>> _ = torch.manual_seed(0)
    >>> gru = torch.nn.GRU(3, 4, num_layers=2, bidirectional=True).double()
    >>> imp = from_torch(gru)
    >>> x = torch.randn(6, 2, 3, dtype=torch.float64)
    >>> output, h_n = gru(x)
    >>> (output.sum() + h_n[-1].sum()).backward()
    >>> dh_n = torch.zeros(4, 2, 4, dtype=torch.float64)
    >>> dh_n[-1] = 1.0
    >>> cots = imp.cotangents(torch.ones(6, 2, 8), dh_n)
    >>> r = unroll.bptt(unroll.unroll(imp.graph, steps=6), imp.params, imp.inputs(x), cots)
    >>> ours = imp.torch_grads(r)
    >>> errors = [abs(ours[n] - p.grad.numpy()).max() / abs(p.grad.numpy()).max()
    ...           for n, p in gru.named_parameters()]
    >>> bool(max(errors) < 1e-10)
    True
    """

    #: ``{"head.weight": ("W_head",), ...}`` of a head (empty without one; subclasses
    #: that build themselves, such as the ONNX import, have none).
    head_names: Mapping[str, tuple[str, ...]] = MappingProxyType({})
    head = None

    def __init__(self, module, kind: TorchKind, head=None):
        self.module, self.kind, self.head = module, kind, head
        self.input_size, self.hidden_size = int(module.input_size), int(module.hidden_size)
        self.num_layers = 1 if kind.is_cell else int(module.num_layers)
        self.num_directions = 2 if getattr(module, "bidirectional", False) else 1
        self.batch_first = bool(getattr(module, "batch_first", False))
        self.bias = bool(module.bias)
        self.graph = _build_graph(
            kind,
            self.input_size,
            self.hidden_size,
            self.num_layers,
            self.num_directions == 2,
            self.bias,
            kind.cell_options(module),
        )
        self.directions = [
            (k, d) for k in range(self.num_layers) for d in range(self.num_directions)
        ]
        self.param_names = _param_names(kind, self.directions, self.num_layers, self.bias)
        self.params = self._split(dict(module.named_parameters()))
        self.input_name = self.graph.input_nodes()[0]
        self.output_node = self.graph.output_nodes()[0]
        if head is not None:
            self._attach_head(head)

    def __repr__(self) -> str:
        return f"TorchImport({self.module!r}, graph={self.graph.name!r}, params={len(self.params)})"

    # -- the head --

    def _attach_head(self, head) -> None:
        """Add ``head`` (an ``nn.Linear`` on the RNN's output) as the layer node ``HEAD_NODE``."""
        width = self.hidden_size * self.num_directions
        if int(head.in_features) != width:
            raise TorchInteropError(
                f"head {type(head).__name__}(in_features={head.in_features}) does not fit the "
                f"{self.kind.name} output of width {width}"
            )
        graph = self.graph.copy()
        graph.name = f"{graph.name}_head"
        biases = [HEAD_BIAS] if head.bias is not None else []
        graph.layer(HEAD_NODE, int(head.out_features), biases=biases)
        graph.edge(self.output_node, HEAD_NODE, weight=HEAD_WEIGHT)
        graph.set_outputs(HEAD_NODE)
        self.graph = graph.validate()
        tensors = dict(head.named_parameters())
        self.head_names = {f"head.{name}": (_HEAD_PARAMS[name],) for name in sorted(tensors)}
        self.params = dict(
            sorted(
                {
                    **self.params,
                    **{_HEAD_PARAMS[n]: _as_float64(t) for n, t in tensors.items()},
                }.items()
            )
        )

    def head_outputs(self, result, batched: bool = True) -> np.ndarray:
        """The head's values at the loss steps, in the module's sequence layout.

        Parameters
        ----------
        result : BPTTResult
            From :func:`unroll.bptt` on this import's graph (which has a head).
        batched : bool
            False for unbatched input: drop the batch axis.

        Returns
        -------
        array
            ``head(output)`` at each loss step: ``(T', B, out)`` (``(B, T', out)`` batch
            first), ``T' = T`` in ``synced`` mode and ``1`` in ``many-to-one``.
        """
        self._check_result(result)
        if self.head is None:
            raise TorchInteropError("this import has no head; pass head= to from_torch")
        steps = result.unrolled.loss_steps
        rows = np.stack([result.values[(HEAD_NODE, t)] for t in steps])
        return self._sequence_out(rows, batched)

    # -- weights --

    def _split(self, tensors) -> dict[str, np.ndarray]:
        if set(tensors) != set(self.param_names):
            raise TorchInteropError(
                f"{self.kind.name} has parameters {', '.join(sorted(tensors))}, expected "
                f"{', '.join(self.param_names)}"
            )
        H, params = self.hidden_size, {}
        for torch_name, ours in self.param_names.items():
            value = _as_float64(tensors[torch_name])
            for i, name in enumerate(ours):
                params[name] = value[i * H : (i + 1) * H].copy()
        need = self.graph.params()
        got = {name: value.shape for name, value in params.items()}
        if got != need:  # the presets' naming changed under us
            raise TorchInteropError(
                f"graph {self.graph.name!r} needs parameters {need}, the module gives {got}"
            )
        return dict(sorted(params.items()))

    def torch_grads(self, result) -> dict[str, np.ndarray]:
        """Our parameter gradients keyed and shaped like ``module.named_parameters()``.

        Parameters
        ----------
        result : BPTTResult
            From :func:`unroll.bptt` on this import's graph.

        Returns
        -------
        dict
            ``{torch name: float64 array}``, gates stacked back in torch's row order; a
            head's as ``"head.weight"`` and ``"head.bias"``.
        """
        self._check_result(result)
        names = {**self.param_names, **self.head_names}
        return {
            torch_name: np.concatenate([result.param_grads[n] for n in ours], axis=0)
            for torch_name, ours in names.items()
        }

    # -- node names and steps --

    def state_node(self, state: str, layer: int, direction: int) -> str:
        """Our node holding torch's state ``"h"`` or ``"c"`` of one layer and direction."""
        return f"{state}{_suffix(self.num_layers, layer, direction == 1)}"

    @staticmethod
    def _last_step(direction: int, steps: int) -> int:
        """The step whose state torch returns in ``h_n``: T-1 forward, 0 backward."""
        return steps - 1 if direction == 0 else 0

    @staticmethod
    def _boundary_step(direction: int, steps: int) -> int:
        """The boundary instance holding the initial state: -1 forward, T backward."""
        return -1 if direction == 0 else steps

    def _check_result(self, result) -> None:
        if result.unrolled.graph != self.graph:
            raise TorchInteropError(
                f"the result was computed on graph "
                f"{result.unrolled.graph.name!r}, not on this import's "
                f"graph {self.graph.name!r}"
            )

    # -- sequences: torch layout <-> (T, B, n) --

    def _sequence_in(self, value, width: int, what: str) -> np.ndarray:
        a = _numeric(value, what)
        layout = "(T, B, n)" if self.kind.is_cell or not self.batch_first else "(B, T, n)"
        if a.ndim == 2:
            a = a[:, None, :]
        elif a.ndim == 3 and self.batch_first and not self.kind.is_cell:
            a = a.transpose(1, 0, 2)
        if a.ndim != 3 or a.shape[2] != width or a.shape[0] < 1:
            raise TorchInteropError(
                f"{what} has shape {format_shape(np.shape(value))}, expected "
                f"{layout.replace('n', str(width))} or (T, {width})"
            )
        return np.ascontiguousarray(a)

    def _sequence_out(self, a: np.ndarray, batched: bool) -> np.ndarray:
        if not batched:
            return _drop_batch(a)
        return a.transpose(1, 0, 2).copy() if self.batch_first and not self.kind.is_cell else a

    # -- states: torch layout (L*D, B, H) or (B, H) for cells <-> one (B, H) per direction --

    def _states_in(self, value, what: str) -> list[np.ndarray]:
        a = _numeric(value, what)
        H, n = self.hidden_size, len(self.directions)
        batched_ndim = 2 if self.kind.is_cell else 3
        if a.ndim == batched_ndim - 1:
            a = a[..., None, :]
        if self.kind.is_cell and a.ndim == 2:
            a = a[None]
        expected = f"(B, {H})" if self.kind.is_cell else f"({n}, B, {H})"
        if a.ndim != 3 or a.shape[0] != n or a.shape[2] != H:
            raise TorchInteropError(
                f"{what} has shape {format_shape(np.shape(value))}, expected {expected}"
            )
        return list(a)

    def _states_out(self, parts: list[np.ndarray], batched: bool) -> np.ndarray:
        a = np.stack(parts)
        if not batched:
            a = _drop_batch(a)
        return a[0] if self.kind.is_cell else a

    # -- the translators --

    def inputs(self, x) -> dict[str, np.ndarray]:
        """The module's input, in its own layout, as the ``inputs`` dict of :func:`unroll.bptt`.

        Parameters
        ----------
        x : tensor or array
            ``(T, B, I)``, ``(B, T, I)`` with ``batch_first``, or unbatched ``(T, I)``.

        Returns
        -------
        dict
            ``{"x": array (T, B, I)}``, float64.
        """
        return {self.input_name: self._sequence_in(x, self.input_size, "input")}

    def initial_states(self, h0=None, c0=None) -> dict[str, np.ndarray]:
        """torch's initial states as the ``initial_states`` dict of :func:`unroll.bptt`.

        Parameters
        ----------
        h0, c0 : tensor or array, optional
            torch's layout ``(num_layers * num_directions, B, H)`` (unbatched: no ``B``;
            cells: ``(B, H)``); ``c0`` only for LSTMs. ``h0`` may also be the tuple
            ``(h0, c0)`` an LSTM takes. Missing states are zero, as in torch.

        Returns
        -------
        dict
            ``{state node: array (B, H)}``, keyed by node name: each state node has one
            boundary copy, ``(h, -1)`` for a forward direction and ``(h_reverse, T)`` for a
            backward one.
        """
        if isinstance(h0, tuple) and c0 is None:
            h0, c0 = h0
        if c0 is not None and "c" not in self.kind.states:
            raise TorchInteropError(
                f"{self.kind.name} has no cell state; c0 applies to LSTM and LSTMCell only"
            )
        states = {}
        for state, value in (("h", h0), ("c", c0)):
            if value is None:
                continue
            for (k, d), part in zip(
                self.directions, self._states_in(value, f"{state}0"), strict=True
            ):
                states[self.state_node(state, k, d)] = part
        return states

    def outputs(self, result, batched: bool = True):
        """Our forward values in the module's output layout, as the module returns them.

        Parameters
        ----------
        result : BPTTResult
            From :func:`unroll.bptt` on this import's graph, unrolled in ``synced`` mode.
        batched : bool
            False for unbatched input: drop the batch axis, as torch does.

        Returns
        -------
        tuple
            ``(output, h_n)``, or ``(output, (h_n, c_n))`` for an LSTM. ``output`` holds
            the top layer at every step, both directions joined as torch does; ``h_n`` and
            ``c_n`` every layer's final state in torch's layout. For a cell, ``output``
            stacks the state of each step ``(T, B, H)`` and ``h_n = output[-1]``.
        """
        self._check_result(result)
        T, values = result.unrolled.steps, result.values
        missing = [t for t in range(T) if not result.unrolled.present(self.output_node, t)]
        if missing:
            raise TorchInteropError(
                f"the output {self.output_node!r} has no value at step "
                f"{missing[0]}: unroll with mode='synced'"
            )
        output = self._sequence_out(
            np.stack([values[(self.output_node, t)] for t in range(T)]), batched
        )
        finals = tuple(
            self._states_out(
                [
                    values[(self.state_node(s, k, d), self._last_step(d, T))]
                    for k, d in self.directions
                ],
                batched,
            )
            for s in self.kind.states
        )
        return output, (finals[0] if len(finals) == 1 else finals)

    def cotangents(
        self, grad_output=None, grad_h_n=None, grad_c_n=None, *, steps: int | None = None
    ) -> dict[tuple[str, int], np.ndarray]:
        """Gradients on the module's outputs, in its layouts, as the ``cotangents`` dict.

        Parameters
        ----------
        grad_output : tensor or array, optional
            dL/d(output), shaped like ``output``. For a bidirectional net it lands on the
            joined node ``("y", t)``, otherwise on the top layer's ``("h...", t)``.
        grad_h_n, grad_c_n : tensor or array, optional
            dL/dh_n and dL/dc_n in torch's layout; they land on each layer's final state,
            step ``T - 1`` forward and step ``0`` backward (added to ``grad_output`` where
            both name the same instance).
        steps : int, optional
            The number of steps; needed only without ``grad_output``.

        Returns
        -------
        dict
            ``{(node, t): array (B, n)}``.
        """
        cots: dict[tuple[str, int], np.ndarray] = {}
        if grad_output is not None:
            width = self.hidden_size * self.num_directions
            g = self._sequence_in(grad_output, width, "grad_output")
            if steps is not None and g.shape[0] != steps:
                raise TorchInteropError(f"grad_output has {g.shape[0]} steps, steps={steps}")
            steps = g.shape[0]
            cots.update({(self.output_node, t): g[t] for t in range(steps)})
        finals = [("h", grad_h_n), ("c", grad_c_n)]
        if steps is None and any(v is not None for _, v in finals):
            raise TorchInteropError(
                "cotangents: give grad_output or steps= to place grad_h_n and grad_c_n"
            )
        for state, value in finals:
            if value is None:
                continue
            if state not in self.kind.states:
                raise TorchInteropError(
                    f"{self.kind.name} has no cell state; grad_c_n "
                    "applies to LSTM and LSTMCell only"
                )
            assert steps is not None  # refused above when a final state is given without it
            for (k, d), part in zip(
                self.directions, self._states_in(value, f"grad_{state}_n"), strict=True
            ):
                key = (self.state_node(state, k, d), self._last_step(d, steps))
                cots[key] = cots[key] + part if key in cots else part
        return cots

    def initial_state_grads(self, result, batched: bool = True):
        """Gradients on the initial states, in torch's layout.

        Parameters
        ----------
        result : BPTTResult
            From :func:`unroll.bptt` on this import's graph.
        batched : bool
            False for unbatched input: drop the batch axis.

        Returns
        -------
        array or tuple
            dL/dh0 ``(num_layers * num_directions, B, H)`` (cells: ``(B, H)``), or
            ``(dL/dh0, dL/dc0)`` for an LSTM, mirroring the ``hx`` it takes.
        """
        self._check_result(result)
        T, grads = result.unrolled.steps, result.node_grads
        parts = tuple(
            self._states_out(
                [
                    grads[(self.state_node(s, k, d), self._boundary_step(d, T))]
                    for k, d in self.directions
                ],
                batched,
            )
            for s in self.kind.states
        )
        return parts[0] if len(parts) == 1 else parts

    def input_grads(self, result, batched: bool = True) -> np.ndarray:
        """Gradients on the input sequence, in the module's input layout.

        Parameters
        ----------
        result : BPTTResult
            From :func:`unroll.bptt` on this import's graph, with ``input_grads=True``
            (the default).
        batched : bool
            False for unbatched input: drop the batch axis.

        Returns
        -------
        array
            dL/dx, shaped like the module's input ``x``.
        """
        self._check_result(result)
        T, grads = result.unrolled.steps, result.node_grads
        steps = result.unrolled.input_steps(self.input_name)
        rows = {t: grads[(self.input_name, t)] for t in steps}
        batch = next(iter(rows.values())).shape[0]
        zero = np.zeros((batch, self.input_size))
        return self._sequence_out(np.stack([rows.get(t, zero) for t in range(T)]), batched)


def _numeric(value, what: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().double().numpy()
    a = np.asarray(value)
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise TorchInteropError(f"{what} has dtype {a.dtype}, expected real numbers")
    return a.astype(np.float64)


def _drop_batch(a: np.ndarray) -> np.ndarray:
    """``(n, 1, m) -> (n, m)``, for torch's unbatched layouts."""
    if a.shape[1] != 1:
        raise TorchInteropError(f"batched=False needs batch size 1, the result has {a.shape[1]}")
    return a[:, 0, :]


def from_torch(module, head=None) -> TorchImport:
    """Import a torch.nn ``RNN``, ``LSTM``, ``GRU``, ``RNNCell``, ``LSTMCell`` or ``GRUCell``.

    Parameters
    ----------
    module : torch.nn.Module
        Any ``num_layers``, ``bias``, ``batch_first``, ``bidirectional``; ``nonlinearity``
        tanh or relu. Dropout between layers only in eval mode (where torch skips it).
    head : torch.nn.Linear, optional
        A linear layer applied to the module's ``output``; it becomes the graph's output
        node ``"head"`` (weights ``W_head``, ``b_head``), computed at every loss step the
        sequence mode names: every step in ``synced`` mode (``head(output)``), the last
        one in ``many-to-one`` (``head(output[:, -1])``). Losses and their gradients then
        flow through it as in torch.

    Returns
    -------
    TorchImport
        ``.graph`` and ``.params`` for :func:`unroll.unroll` and :func:`unroll.bptt`, and
        translators ``.inputs``, ``.initial_states``, ``.cotangents``, ``.outputs``,
        ``.torch_grads``, ``.initial_state_grads``, ``.input_grads``.

    Raises
    ------
    MissingTorchError
        Without PyTorch (``pip install rnn-unroll[torch]``).
    TorchInteropError
        For another module type, an LSTM with ``proj_size > 0``, dropout between layers
        in training mode, or a head that is not an ``nn.Linear`` fitting the output.

    Examples
    --------
    >>> import torch, unroll
    >>> _ = torch.manual_seed(0)
    >>> lstm = torch.nn.LSTM(3, 8).double()
    >>> imp = from_torch(lstm)
    >>> imp.graph == unroll.presets.lstm(3, 8)
    True
    >>> x = torch.randn(5, 2, 3, dtype=torch.float64)
    >>> r = unroll.bptt(unroll.unroll(imp.graph, steps=5), imp.params, imp.inputs(x))
    >>> output, (h_n, c_n) = imp.outputs(r)
    >>> expected, _ = lstm(x)
    >>> bool(abs(output - expected.detach().numpy()).max() < 1e-12)
    True

    With a head, a mean-squared-error loss at every step flows through it:

    >>> fc = torch.nn.Linear(8, 2).double()
    >>> imp = from_torch(lstm, head=fc)
    >>> targets = torch.randn(5, 2, 2, dtype=torch.float64)
    >>> u = unroll.unroll(imp.graph, steps=5)
    >>> r = unroll.bptt(u, imp.params, imp.inputs(x), loss="mse", targets=targets.numpy())
    >>> torch.nn.functional.mse_loss(fc(lstm(x)[0]), targets).backward()
    >>> bool(abs(imp.torch_grads(r)["head.weight"] - fc.weight.grad.numpy()).max() < 1e-12)
    True
    """
    torch = _require_torch()
    kind = _kind_of(torch, module)
    _check_supported(module)
    if head is not None and not isinstance(head, torch.nn.Linear):
        raise TorchInteropError(
            f"head must be a torch.nn.Linear, got {type(head).__name__} (wrap other heads "
            "yourself: take the cotangents of the module's output with imp.cotangents)"
        )
    return TorchImport(module, kind, head)


# ---- saved weights --------------------------------------------------------------------------

_KEY = re.compile(r"^(weight|bias)_(ih|hh)(?:_l(\d+)(_reverse)?)?$")
_MODULE_GATES = {1: "RNN", 3: "GRU", 4: "LSTM"}
_OPTIONS = ("batch_first", "head", "nonlinearity", "prefix")
_HEAD_KEYS = ({"weight"}, {"weight", "bias"})


def load_state_dict(
    path, kind: str | None = None, *, max_memory: int | None = MAX_PARAM_BYTES, **options
) -> TorchImport:
    """Import weights saved with ``torch.save(module.state_dict(), path)``.

    The file is read with ``torch.load(path, map_location="cpu", weights_only=True)``, so
    no arbitrary object is ever unpickled. The architecture comes from the names and
    shapes: ``weight_hh_l0`` of shape ``(gH, H)`` gives the hidden size ``H`` and the
    kind (``g`` = 1: RNN, 3: GRU, 4: LSTM), ``weight_ih_l0`` the input size, the ``_lK``
    suffixes the layers, ``_reverse`` the directions, ``bias_*`` the bias; names without
    ``_lK`` are a cell. A module is built with the saved dtype, loaded and set to eval mode.

    Parameters
    ----------
    path : str or path-like
        A state_dict, or a dict holding one under ``"state_dict"`` or ``"model_state_dict"``.
    kind : str, optional
        ``"RNN"``, ``"LSTM"``, ``"GRU"`` or a ``*Cell`` (any case), checked against the file.
    **options
        ``nonlinearity`` (``"tanh"``, the default, or ``"relu"``; a state_dict does not
        record it), ``batch_first`` (default False), ``prefix``: the submodule whose
        weights to take (``"rnn"`` or ``"rnn."``); by default the one submodule holding
        RNN names (``weight_ih_l0``, ...), or a prefix all names share. ``head``: the
        submodule holding an ``nn.Linear`` applied to the RNN's output (``"fc"`` or
        ``"fc."``; ``""`` or False for none); by default the one other submodule holding
        exactly ``weight`` (and ``bias``). The head becomes the graph's output node (see
        :func:`from_torch`).
    max_memory : int or None
        Refuse a file whose declared shapes need more bytes as float64 (with the module
        torch builds and the gradients); checked from the tensors' metadata before any
        tensor is built (:data:`unroll.limits.MAX_PARAM_BYTES`); ``None``: no limit.

    Returns
    -------
    TorchImport

    Raises
    ------
    TorchInteropError
        One line naming the file and the problem: unreadable, not a torch file, objects
        other than tensors, sparse tensors or tensors whose data is smaller than their
        shape (expanded views), unknown or missing names, inconsistent shapes, or a
        ``kind`` that contradicts the shapes.
    LimitError
        Above ``max_memory``.
    MissingTorchError
        Without PyTorch.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> path = os.path.join(tempfile.mkdtemp(), "gru.pt")
    >>> torch.save(torch.nn.GRU(3, 5, num_layers=2).state_dict(), path)
    >>> imp = load_state_dict(path)
    >>> imp.graph.name, imp.params["W_hn_l1"].shape
    ('stacked_gru', (5, 5))

    A model holding an LSTM and a Linear head, found by names and shapes:

    >>> class Net(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.lstm, self.fc = torch.nn.LSTM(3, 4), torch.nn.Linear(4, 2)
    >>> torch.save(Net().state_dict(), path)
    >>> imp = load_state_dict(path)
    >>> imp.graph.output_nodes(), imp.params["W_head"].shape
    (['head'], (2, 4))
    """
    torch = _require_torch()
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise TorchInteropError(
            f"load_state_dict: unknown option {unknown[0]!r} (options: {', '.join(_OPTIONS)})"
        )
    saved = _read(torch, path)
    _check_keys(saved, path)
    prefix = _find_prefix(saved, path, options.get("prefix"))
    state = _pick_submodule(saved, path, prefix)
    spec = _infer(torch, state, path, kind, options)
    check_parameters(
        f"{path} ({spec.describe()})", _declared_numbers(spec), copies=4, max_bytes=max_memory
    )
    module = _construct(torch, spec, path)
    _check_names_and_shapes(module, state, path, spec)
    module.load_state_dict(state)
    head = _load_head(torch, saved, path, prefix, options.get("head"))
    return from_torch(module.eval(), head=head)


def _read(torch, path) -> Mapping:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except OSError as e:
            raise TorchInteropError(f"{path}: cannot read the file ({e.strerror})") from None
        except pickle.UnpicklingError as e:
            text = str(e).lower()
            if "unsupported global" in text:
                raise TorchInteropError(
                    f"{path}: refused: the file holds Python objects other than tensors "
                    "(read with weights_only=True); save module.state_dict() instead"
                ) from None
            if "weights only" in text:  # a plain pickle and junk look alike to torch here
                raise TorchInteropError(
                    f"{path}: refused: not a torch state_dict, or one holding objects other "
                    "than tensors (read with weights_only=True)"
                ) from None
            raise TorchInteropError(f"{path}: not a torch file ({_first_line(e)})") from None
        except Exception as e:  # torch raises many types for a file it cannot parse
            raise TorchInteropError(
                f"{path}: not a torch file ({type(e).__name__}: {_first_line(e)})"
            ) from None
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict"):
            if isinstance(obj.get(key), Mapping):
                return obj[key]
        return obj
    raise TorchInteropError(f"{path}: holds a {type(obj).__name__}, not a state_dict")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no details"


def _check_keys(state: Mapping, path) -> None:
    keys = [k for k in state if isinstance(k, str)]
    if len(keys) != len(state) or not keys:
        raise TorchInteropError(
            f"{path}: not a state_dict (its keys must be parameter names, got {len(state)} entries)"
        )


def _as_prefix(name: str) -> str:
    """A submodule name with the trailing dot of its parameter names: ``"lstm"`` -> ``"lstm."``."""
    return name if name == "" or name.endswith(".") else f"{name}."


def _groups(state: Mapping) -> dict[str, set[str]]:
    """``{submodule prefix ("lstm." or ""): {parameter names below it}}``."""
    groups: dict[str, set[str]] = {}
    for key in state:
        owner, _, leaf = key.rpartition(".")
        groups.setdefault(_as_prefix(owner), set()).add(leaf)
    return groups


def _find_prefix(state: Mapping, path, prefix: str | None) -> str:
    """The given prefix (a trailing dot optional), else the one submodule of RNN names."""
    if prefix is not None:
        return _as_prefix(prefix)
    groups = _groups(state)
    recurrent = sorted(p for p, leaves in groups.items() if all(_KEY.match(k) for k in leaves))
    if len(recurrent) == 1 and len(groups) > 1:
        return recurrent[0]
    return next(iter(groups)) if len(groups) == 1 else ""


def _head_prefix(state: Mapping, path, prefix: str, head) -> str | None:
    """The head's prefix: ``head`` if given, else the one other submodule holding Linear names."""
    if head is not None:
        return _as_prefix(head) if head else None
    others = {p: leaves for p, leaves in _groups(state).items() if p != prefix}
    linear = sorted(p for p, leaves in others.items() if leaves in _HEAD_KEYS)
    if len(linear) > 1:
        raise TorchInteropError(
            f"{path}: several submodules could be the head ({', '.join(linear)}); "
            "pick one with head="
        )
    return linear[0] if linear else None


def _load_head(torch, state: Mapping, path, prefix: str, head):
    """The ``nn.Linear`` head saved beside the RNN, or None."""
    where = _head_prefix(state, path, prefix, head)
    if where is None:
        return None
    tensors = {k[len(where) :]: v for k, v in state.items() if k.startswith(where)}
    if set(tensors) not in _HEAD_KEYS:
        found = ", ".join(sorted(tensors)) or "nothing"
        raise TorchInteropError(
            f"{path}: head {where!r} holds {found}, expected a Linear's weight and bias"
        )
    weight = tensors["weight"]
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise TorchInteropError(f"{path}: {where}weight is not a matrix")
    out_features, in_features = weight.shape
    linear = torch.nn.Linear(in_features, out_features, bias="bias" in tensors, dtype=weight.dtype)
    try:
        linear.load_state_dict(tensors)
    except RuntimeError as e:
        raise TorchInteropError(f"{path}: head {where!r}: {_first_line(e)}") from None
    return linear


def _pick_submodule(state: Mapping, path, prefix: str) -> dict:
    picked = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    if not picked:
        raise TorchInteropError(f"{path}: no parameter name starts with prefix {prefix!r}")
    return picked


@dataclass(frozen=True)
class _Spec:
    """What a state_dict says about the module that saved it."""

    kind: TorchKind
    arguments: dict
    dtype: object

    def describe(self) -> str:
        a = self.arguments
        layers = a.get("num_layers", 1)
        text = (f"{layers}-layer " if layers > 1 else "") + (
            "bidirectional " if a.get("bidirectional") else ""
        )
        return (
            f"{text}{self.kind.name} (input {a['input_size']}, hidden "
            f"{a['hidden_size']}, bias={a['bias']})"
        )


def _check_dense(torch, key: str, value, path) -> None:
    """A plain tensor whose storage holds every number its shape declares."""
    if not isinstance(value, torch.Tensor):
        raise TorchInteropError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
    if value.layout != torch.strided:
        raise TorchInteropError(
            f"{path}: entry {key!r} is a {value.layout} tensor; a state_dict holds dense ones"
        )
    if not value.is_floating_point():
        raise TorchInteropError(
            f"{path}: entry {key!r} has dtype {value.dtype}, expected floating point"
        )
    declared = math.prod(value.shape)
    stored = value.untyped_storage().nbytes() // max(1, value.element_size())
    if declared > stored:
        raise TorchInteropError(
            f"{path}: entry {key!r} declares shape {format_shape(value.shape)} "
            f"({declared:,} numbers) "
            f"but stores {stored:,} (an expanded or strided view); save module.state_dict()"
        )


def _declared_numbers(spec: _Spec) -> int:
    """Parameters of the module ``spec`` describes, from its sizes alone."""
    a = spec.arguments
    gates, hidden = len(spec.kind.gates), a["hidden_size"]
    layers, directions = a.get("num_layers", 1), 1 + bool(a.get("bidirectional"))
    first = gates * hidden * (a["input_size"] + hidden + 2)
    later = gates * hidden * (directions * hidden + hidden + 2)
    return directions * (first + (layers - 1) * later)


def _infer(torch, state: dict, path, kind: str | None, options) -> _Spec:
    for key, value in state.items():
        _check_dense(torch, key, value, path)
    parsed = {key: _parse_key(key, path) for key in state}
    cell = _is_cell(parsed, path)
    first = "" if cell else "_l0"
    w_hh, w_ih = (_weight(state, f"weight_{s}{first}", path) for s in ("hh", "ih"))
    rows, hidden = w_hh.shape
    gates = rows // hidden if hidden and rows % hidden == 0 else 0
    if gates not in _MODULE_GATES:
        raise TorchInteropError(
            f"{path}: weight_hh{first} has shape {rows}x{hidden}: its rows "
            f"are not 1, 3 or 4 times the hidden size {hidden}"
        )
    found = SUPPORTED[_MODULE_GATES[gates] + ("Cell" if cell else "")]
    if kind is not None:
        _check_kind(kind, found, path)
    arguments = {
        "input_size": w_ih.shape[1],
        "hidden_size": hidden,
        "bias": any(what == "bias" for what, *_ in parsed.values()),
    }
    if not cell:
        arguments["num_layers"] = 1 + max(layer for *_, layer, _ in parsed.values())
        arguments["bidirectional"] = any(reverse for *_, reverse in parsed.values())
        arguments["batch_first"] = _flag(options.get("batch_first", False), "batch_first", path)
    elif "batch_first" in options:
        raise TorchInteropError(f"{path}: batch_first does not apply to {found.name}")
    if "nonlinearity" in options:
        if found.cell != "elman":
            raise TorchInteropError(
                f"{path}: nonlinearity applies to RNN and RNNCell, the file holds a {found.name}"
            )
        arguments["nonlinearity"] = options["nonlinearity"]
    return _Spec(found, arguments, w_hh.dtype)


def _flag(value, name: str, path) -> bool:
    """A bool, or its text from a MODEL spec (``rnn.pt:batch_first=true``)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return text in ("true", "yes", "on", "1")
    raise TorchInteropError(f"{path}: {name}={value!r} is not true or false")


def _parse_key(key: str, path):
    match = _KEY.match(key)
    if match is None:
        if re.match(r"^weight_hr(_l\d+)?", key):
            raise TorchInteropError(
                f"{path}: {key!r} belongs to an LSTM with proj_size > 0, which is not supported"
            )
        raise TorchInteropError(
            f"{path}: unexpected parameter {key!r} (expected torch.nn RNN/LSTM/GRU names such "
            "as weight_ih_l0, bias_hh_l1_reverse, or weight_ih for a cell; pick a submodule "
            "with prefix=)"
        )
    what, side, layer, reverse = match.groups()
    return what, side, None if layer is None else int(layer), bool(reverse)


def _is_cell(parsed: dict, path) -> bool:
    layered = {layer is not None for _, _, layer, _ in parsed.values()}
    if len(layered) > 1:
        raise TorchInteropError(
            f"{path}: mixes cell names (weight_ih) and layer names (weight_ih_l0)"
        )
    return layered == {False}


def _weight(state: dict, key: str, path):
    if key not in state:
        raise TorchInteropError(f"{path}: no {key!r} (found: {', '.join(sorted(state))})")
    value = state[key]
    if value.dim() != 2:
        raise TorchInteropError(
            f"{path}: {key!r} has shape {format_shape(value.shape)}, expected a matrix"
        )
    return value


def _check_kind(kind: str, found: TorchKind, path) -> None:
    names = {name.lower(): name for name in SUPPORTED}
    if not isinstance(kind, str) or kind.lower() not in names:
        raise TorchInteropError(f"kind={kind!r} is not one of {', '.join(sorted(SUPPORTED))}")
    if names[kind.lower()] != found.name:
        raise TorchInteropError(
            f"{path}: kind={kind!r}, but the names and shapes are those of a {found.name}"
        )


def _construct(torch, spec: _Spec, path):
    try:
        return getattr(torch.nn, spec.kind.name)(**spec.arguments, dtype=spec.dtype)
    except (ValueError, TypeError) as e:
        raise TorchInteropError(
            f"{path}: cannot build a {spec.describe()}: {_first_line(e)}"
        ) from None


def _check_names_and_shapes(module, state: dict, path, spec: _Spec) -> None:
    expected = {name: tuple(p.shape) for name, p in module.named_parameters()}
    for name in expected:
        if name not in state:
            raise TorchInteropError(f"{path}: missing {name!r}, which a {spec.describe()} has")
    for name in state:
        if name not in expected:
            raise TorchInteropError(f"{path}: unexpected {name!r} for a {spec.describe()}")
        if tuple(state[name].shape) != expected[name]:
            raise TorchInteropError(
                f"{path}: {name!r} has shape {format_shape(state[name].shape)}, "
                f"a {spec.describe()} "
                f"needs {format_shape(expected[name])}"
            )
