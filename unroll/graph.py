"""Declare a recurrent network as a cyclic graph of vector nodes and delayed edges; validate it.

A :class:`Graph` holds nodes of the kinds in :data:`unroll.ops.OPS` and edges that carry
an integer *delay*: an edge ``u -> v`` with delay ``d`` feeds ``u``'s value from step
``t - d`` into ``v`` at step ``t``. Delay 0 is an ordinary connection, delay 1 the
recurrent loop, a negative delay reads the future (the backward half of a bidirectional
net). Edges into ``layer`` nodes may carry a named weight matrix; the same name on two
edges ties them.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn, TypeVar

import networkx as nx

from . import ops
from .errors import GraphError, LimitError
from .ops import OPS
from .quoting import NAME_PATTERN, is_name

__all__ = ["LOOP_CHECK_BUDGET", "MAX_SIZE", "Edge", "Graph", "Node"]

#: The largest node size (units) a graph accepts: a weight between two such nodes would
#: already hold 10**12 numbers, and numpy cannot index beyond 2**63.
MAX_SIZE = 1_000_000


@dataclass(frozen=True)
class Node:
    """A vector-valued node: ``kind`` is a row of :data:`unroll.ops.OPS`.

    ``activation`` and ``biases`` apply to ``layer`` nodes; ``gate`` names the role a
    node plays in a gated cell (``"forget"``, ``"update"``, ...) for init and diagrams.
    ``params`` names the parameters the kind's row declares (:attr:`unroll.ops.Op.params`,
    in its order; the same name on two nodes ties them) and ``init`` a rule of
    :data:`unroll.ops.PARAM_INITS` that replaces the row's default for them.
    """

    name: str
    kind: str
    size: int
    activation: str | None = None
    biases: tuple[str, ...] = ()
    gate: str | None = None
    params: tuple[str, ...] = ()
    init: str | None = None

    @property
    def op(self) -> ops.Op:
        """The row of :data:`unroll.ops.OPS` for this node's kind."""
        return ops.op(self.kind)


@dataclass(frozen=True)
class Edge:
    """``source -> target``: ``target`` at step t reads ``source`` at step ``t - delay``."""

    source: str
    target: str
    delay: int = 0
    weight: str | None = None

    def describe(self) -> str:
        """Return ``"h -> h @ t-1"``-style text naming the edge, for messages."""
        return f"{self.source} -> {self.target}{_delay_suffix(self.delay)}"


def _delay_suffix(delay: int) -> str:
    return "" if delay == 0 else f" @ t{-delay:+d}"


class _EdgeList(list[Any]):
    """A list of edges that counts its changes, so :meth:`Graph.in_edges` can keep an index;
    a frozen graph's list refuses them."""

    version = 0
    owner: str | None = None  # the name of the frozen graph holding this list

    def _changed(self) -> None:
        if self.owner is not None:
            _refuse_edit(self.owner)
        self.version += 1


class _FrozenList(_EdgeList):
    """A frozen graph's list of outputs or edges."""

    def __init__(self, items: Iterable[Any], owner: str) -> None:
        super().__init__(items)
        self.owner = owner


class _FrozenNodes(dict[str, Node]):
    """A frozen graph's nodes: reading as a dict, refusing every change."""

    def __init__(self, nodes: Mapping[str, Node], owner: str) -> None:
        super().__init__(nodes)
        self.owner = owner

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        _refuse_edit(self.owner)


for _method in ("__setitem__", "__delitem__", "clear", "pop", "popitem", "setdefault", "update"):
    setattr(_FrozenNodes, _method, _FrozenNodes._refuse)
_FrozenNodes.__ior__ = _FrozenNodes._refuse  # type: ignore[method-assign,assignment]


def _refuse_edit(name: str) -> NoReturn:
    raise GraphError(
        f"graph {name!r} is frozen: it is the graph of an unrolled graph; "
        "edit a copy (graph.copy()) and unroll that"
    )


def _counting(method: Callable[..., Any]) -> Callable[..., Any]:
    def changed(self: _EdgeList, *args: Any, **kwargs: Any) -> Any:
        self._changed()
        return method(self, *args, **kwargs)

    return changed


for _method in (
    "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse",
    "__setitem__", "__delitem__", "__iadd__", "__imul__",
):  # fmt: skip
    setattr(_EdgeList, _method, _counting(getattr(list, _method)))


@dataclass
class Graph:
    """A recurrent network declared as a cyclic graph.

    Build it node by node and edge by edge; :meth:`validate` (called by
    :func:`unroll.unroll`) checks it as a whole.

    Examples
    --------
    The single neuron with a connection to itself:

    >>> g = Graph("neuron")
    >>> g.input("x", 1)
    'x'
    >>> g.layer("h", 1, activation="tanh", biases=["b"])
    'h'
    >>> g.edge("x", "h", weight="W_ih")
    >>> g.edge("h", "h", delay=1, weight="W_hh")
    >>> g.validate().params()
    {'W_hh': (1, 1), 'W_ih': (1, 1), 'b': (1,)}
    >>> g.state_nodes()
    ['h']
    """

    name: str = "graph"
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.edges = _EdgeList(self.edges)

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(self.__dict__.get("nodes"), _FrozenNodes):
            _refuse_edit(self.name)
        super().__setattr__(name, value)

    @property
    def frozen(self) -> bool:
        """Whether this graph refuses edits (:func:`unroll.unroll` keeps a frozen copy)."""
        return isinstance(self.nodes, _FrozenNodes)

    def freeze(self) -> Graph:
        """A frozen copy (this graph itself if frozen already): every edit raises
        :class:`GraphError`, so what was unrolled cannot drift from what is run.

        Examples
        --------
        >>> g = Graph("g")
        >>> g.input("x", 1)
        'x'
        >>> f = g.freeze()
        >>> f.input("y", 1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        unroll.errors.GraphError: graph 'g' is frozen: ... edit a copy (graph.copy()) ...
        >>> f.copy().input("y", 1)
        'y'
        """
        if self.frozen:
            return self
        g = self.copy()
        d = g.__dict__
        d["edges"] = _FrozenList(g.edges, g.name)
        d["outputs"] = _FrozenList(g.outputs, g.name)
        d["nodes"] = _FrozenNodes(g.nodes, g.name)
        return g

    # ---- building -------------------------------------------------------------------

    def add_node(
        self,
        name: str,
        kind: str,
        size: int,
        *,
        activation: str | None = None,
        biases: str | Iterable[str] = (),
        gate: str | None = None,
        params: dict[str, str] | Iterable[str] | None = None,
        init: str | None = None,
    ) -> str:
        """Add a node of any kind and return its name; errors name the node.

        ``params`` names the parameters the kind's row declares: a dict by role, a list
        in the row's order, or ``None`` for the row's default names (e.g. ``w_uh``).
        """
        _check_name(name, "node")
        if name in self.nodes:
            raise GraphError(f"duplicate node {name!r}")
        for what, value in (
            ("kind", kind), ("activation", activation), ("gate", gate), ("init", init)
        ):  # fmt: skip
            if value is not None and not isinstance(value, str):
                raise GraphError(f"node {name!r}: {what} must be a string, got {value!r}")
        try:
            row = ops.op(kind)
        except KeyError as e:
            raise GraphError(f"node {name!r}: {e.args[0]}") from None
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise GraphError(f"node {name!r}: size must be a positive integer, got {size!r}")
        if size > MAX_SIZE:
            raise GraphError(f"node {name!r}: size {size:,} is more than the {MAX_SIZE:,} allowed")
        if row.weighted:
            activation = activation or "identity"
            try:
                ops.activation(activation)
            except KeyError as e:
                raise GraphError(f"node {name!r}: {e.args[0]}") from None
        elif activation is not None or biases:
            raise GraphError(f"node {name!r}: only layer nodes take an activation or biases")
        biases = _bias_names(name, biases)
        names = _param_names(name, row, params)
        if init is not None and init not in ops.PARAM_INITS:
            known = ", ".join(sorted(ops.PARAM_INITS))
            raise GraphError(f"node {name!r}: unknown init {init!r} (known: {known})")
        self.nodes[name] = Node(name, kind, size, activation, biases, gate, names, init)
        return name

    def input(self, name: str, size: int) -> str:
        """Add an input node: a sequence fed from outside."""
        return self.add_node(name, "input", size)

    def layer(
        self,
        name: str,
        size: int,
        activation: str = "identity",
        biases: str | Iterable[str] = (),
        gate: str | None = None,
    ) -> str:
        """Add ``act(sum of incoming edges + biases)``; weights sit on the edges."""
        return self.add_node(name, "layer", size, activation=activation, biases=biases, gate=gate)

    def add(self, name: str, size: int) -> str:
        """Add an elementwise sum of the incoming edges."""
        return self.add_node(name, "add", size)

    def mul(self, name: str, size: int, gate: str | None = None) -> str:
        """Add an elementwise product of the incoming edges."""
        return self.add_node(name, "mul", size, gate=gate)

    def one_minus(self, name: str, size: int) -> str:
        """Add ``1 - x`` of the single incoming edge."""
        return self.add_node(name, "one_minus", size)

    def scale(
        self, name: str, size: int, weight: str | None = None, init: str | None = None
    ) -> str:
        """Add ``w ⊙ x`` of the single incoming edge: ``weight`` names the per-unit vector
        ``w`` (default ``w_<name>``); the same name on two scale nodes ties them."""
        return self.add_node(
            name, "scale", size, params=None if weight is None else [weight], init=init
        )

    def concat(self, name: str, size: int) -> str:
        """Add the incoming edges' values joined end to end, in declaration order."""
        return self.add_node(name, "concat", size)

    def edge(self, source: str, target: str, delay: int = 0, weight: str | None = None) -> None:
        """Connect ``source -> target``; ``target`` at t reads ``source`` at ``t - delay``."""
        for end in (source, target):
            if not isinstance(end, str):
                raise GraphError(
                    f"edge {source!r} -> {target!r}: nodes are named by strings, got {end!r}"
                )
        if isinstance(delay, bool) or not isinstance(delay, int):
            raise GraphError(f"edge {source} -> {target}: delay must be an integer, got {delay!r}")
        if weight is not None:
            _check_name(weight, "weight")
        self.edges.append(Edge(source, target, delay, weight))

    def set_outputs(self, *names: str) -> None:
        """Name the nodes where a loss attaches (default: ``y`` if present, else ``h``)."""
        for name in names:
            if not isinstance(name, str):
                raise GraphError(f"output {name!r}: nodes are named by strings")
        self.outputs = list(names)

    # ---- reading --------------------------------------------------------------------

    def in_edges(self, name: str) -> list[Edge]:
        """Edges into ``name``, in declaration order (the order ops see their inputs)."""
        return list(self.incoming().get(name, ()))

    def incoming(self) -> dict[str, list[Edge]]:
        """``{node: edges into it}`` in declaration order, built once per change of edges."""
        if not isinstance(self.edges, _EdgeList):  # assigned a plain list
            self.edges = _EdgeList(self.edges)
        key = (self.edges.version, len(self.edges))
        cached = self.__dict__.get("_incoming")
        if cached is None or cached[0] is not self.edges or cached[1] != key:
            index: dict[str, list[Edge]] = {}
            for e in self.edges:
                index.setdefault(e.target, []).append(e)
            cached = self.__dict__["_incoming"] = (self.edges, key, index)
        return cached[2]

    def output_nodes(self) -> list[str]:
        """The nodes losses attach to: :attr:`outputs`, else ``y``, else ``h``."""
        if self.outputs:
            return list(self.outputs)
        for default in ("y", "h"):
            if default in self.nodes:
                return [default]
        sources = {e.source for e in self.edges}
        return [n for n in self.nodes if n not in sources][-1:]

    def input_nodes(self) -> list[str]:
        """The input nodes, in declaration order."""
        return [n.name for n in self.nodes.values() if n.op.has("fed")]

    def state_nodes(self) -> list[str]:
        """Nodes read across time (the source of an edge with nonzero delay)."""
        sources = {e.source for e in self.edges if e.delay != 0}
        return [n for n in self.nodes if n in sources and not self.nodes[n].op.has("fed")]

    def params(self) -> dict[str, tuple[int, ...]]:
        """Every parameter name with its shape, sorted by name (validates first)."""
        self.validate()
        shapes: dict[str, tuple[int, ...]] = {}
        for e in self.edges:
            if e.weight is not None:
                shapes[e.weight] = (self.nodes[e.target].size, self.nodes[e.source].size)
        for node in self.nodes.values():
            for b in node.biases:
                shapes[b] = (node.size,)
        for name, (node, spec) in self.op_params().items():
            shapes[name] = self._param_shape(node, spec)
        return dict(sorted(shapes.items()))

    def op_params(self) -> dict[str, tuple[Node, ops.Param]]:
        """Every parameter an op row declares, by name: the first node that uses it and
        the row's declaration (:class:`unroll.ops.Param`)."""
        found: dict[str, tuple[Node, ops.Param]] = {}
        for node in self.nodes.values():
            for name, spec in zip(node.params, node.op.params, strict=True):
                found.setdefault(name, (node, spec))
        return found

    def _param_shape(self, node: Node, spec: ops.Param) -> tuple[int, ...]:
        sizes = [self.nodes[e.source].size for e in self.incoming().get(node.name, ())]
        return tuple(spec.shape(node.size, sizes))

    def recurrent_weights(self) -> list[str]:
        """Names of weights on edges with nonzero delay, sorted."""
        return sorted({e.weight for e in self.edges if e.weight is not None and e.delay != 0})

    def recurrent_params(self) -> list[str]:
        """The recurrent weights, and the op parameters of nodes that read across time
        (IndRNN's ``w_hh``, the LRU's ``nu``, a peephole's ``w_ci``), sorted."""
        delayed = {e.target for e in self.edges if e.delay != 0}
        own = {p for n in delayed for p in self.nodes[n].params}
        return sorted(set(self.recurrent_weights()) | own)

    def is_causal(self) -> bool:
        """True when no edge reads the future (every delay is >= 0)."""
        return all(e.delay >= 0 for e in self.edges)

    def max_delay(self) -> int:
        """The largest absolute delay of any edge (0 for a feed-forward graph)."""
        return max((abs(e.delay) for e in self.edges), default=0)

    def step_order(self) -> list[str]:
        """Nodes in a topological order of the delay-0 edges; ties by declaration order."""
        return topological_order(
            list(self.nodes), [(e.source, e.target) for e in self.edges if e.delay == 0]
        )

    def to_networkx(self) -> nx.MultiDiGraph:
        """The folded (cyclic) graph as a networkx ``MultiDiGraph`` with all attributes."""
        g = nx.MultiDiGraph(name=self.name)
        for node in self.nodes.values():
            g.add_node(
                node.name,
                kind=node.kind,
                size=node.size,
                activation=node.activation or "",
                biases=",".join(node.biases),
                gate=node.gate or "",
                params=",".join(node.params),
            )
        for i, e in enumerate(self.edges):
            g.add_edge(e.source, e.target, key=i, delay=e.delay, weight=e.weight or "")
        return g

    def copy(self) -> Graph:
        """An independent copy (nodes and edges are immutable, so a shallow copy)."""
        return replace(
            self, nodes=dict(self.nodes), edges=list(self.edges), outputs=list(self.outputs)
        )

    # ---- validation -----------------------------------------------------------------

    def validate(self) -> Graph:
        """Check the whole graph and return it; raise :class:`GraphError` naming the fault.

        Checks, in order: the graph is not empty; edges name known nodes; inputs have
        no incoming edges; weights only sit on edges into layers; each kind gets the
        number of inputs it takes; sizes agree (weights tied across edges, identity
        edges, elementwise ops, biases); outputs exist and are computed (not input)
        nodes; no closed walk of total delay 0 (an algebraic loop, which would make
        the unrolled graph cyclic).
        """
        if not isinstance(self.name, str):
            raise GraphError(f"the graph's name must be a string, got {self.name!r}")
        if not self.nodes:
            raise GraphError(f"graph {self.name!r} has no nodes")
        for e in self.edges:
            self._check_edge(e)
        for node in self.nodes.values():
            self._check_arity(node)
        self._check_weight_shapes()
        self._check_node_sizes()
        self._check_biases()
        self._check_op_params()
        for name in self.outputs:
            if not isinstance(name, str) or name not in self.nodes:
                raise GraphError(f"output {name!r}: unknown node")
        self._check_outputs_computed()
        loop = find_algebraic_loop(self)
        if loop:
            raise GraphError(f"algebraic loop: {loop}")
        return self

    def _check_outputs_computed(self) -> None:
        if all(node.op.has("fed") for node in self.nodes.values()):
            raise GraphError(
                f"graph {self.name!r} has only input nodes: there is nothing to compute"
            )
        for name in self.output_nodes():
            if self.nodes[name].op.has("fed"):
                raise GraphError(
                    f"output {name!r} is an input node: a loss attaches to a computed node "
                    "(name one in outputs)"
                )

    def _check_edge(self, e: Edge) -> None:
        for end in (e.source, e.target):
            if end not in self.nodes:
                raise GraphError(f"edge {e.describe()}: unknown node {end!r}")
        target = self.nodes[e.target]
        if target.op.has("fed"):
            raise GraphError(
                f"edge {e.describe()}: input node {e.target!r} cannot have incoming edges"
            )
        if e.weight is not None and not OPS[target.kind].weighted:
            raise GraphError(
                f"edge {e.describe()}: {target.kind} node {e.target!r} takes "
                f"unweighted edges, but the edge carries weight {e.weight!r}"
            )

    def _check_arity(self, node: Node) -> None:
        row, n = OPS[node.kind], len(self.incoming().get(node.name, ()))
        if n < row.min_inputs:
            raise GraphError(
                f"node {node.name!r} ({node.kind}) needs at least "
                f"{row.min_inputs} incoming edge{'s' * (row.min_inputs > 1)}, "
                f"has {n}"
            )
        if row.max_inputs is not None and n > row.max_inputs:
            raise GraphError(
                f"node {node.name!r} ({node.kind}) takes at most "
                f"{row.max_inputs} incoming edge, has {n}"
            )

    def _check_weight_shapes(self) -> None:
        first: dict[str, tuple[Edge, tuple[int, int]]] = {}
        for e in self.edges:
            if e.weight is None:
                continue
            shape = (self.nodes[e.target].size, self.nodes[e.source].size)
            if e.weight in first and first[e.weight][1] != shape:
                other, other_shape = first[e.weight]
                raise GraphError(
                    f"weight {e.weight!r}: edge {e.describe()} needs {_fmt(shape)}, but "
                    f"edge {other.describe()} needs {_fmt(other_shape)}"
                )
            first.setdefault(e.weight, (e, shape))

    def _check_node_sizes(self) -> None:
        for node in self.nodes.values():
            edges = self.incoming().get(node.name, [])
            sizes = [self.nodes[e.source].size for e in edges]
            message = node.op.check_sizes(node, edges, sizes)
            if message:
                raise GraphError(message)

    def _check_biases(self) -> None:
        weights = {e.weight for e in self.edges if e.weight is not None}
        owner: dict[str, Node] = {}
        for node in self.nodes.values():
            for b in node.biases:
                if b in weights:
                    raise GraphError(f"parameter {b!r} is used both as a weight and as a bias")
                if b in owner and owner[b].size != node.size:
                    raise GraphError(
                        f"bias {b!r} is used by node {owner[b].name!r} (size "
                        f"{owner[b].size}) and node {node.name!r} (size "
                        f"{node.size})"
                    )
                owner.setdefault(b, node)

    def _check_op_params(self) -> None:
        taken = {e.weight: "a weight" for e in self.edges if e.weight is not None}
        taken.update((b, "a bias") for node in self.nodes.values() for b in node.biases)
        first: dict[str, tuple[Node, tuple[int, ...]]] = {}
        for node in self.nodes.values():
            for name, spec in zip(node.params, node.op.params, strict=True):
                if name in taken:
                    raise GraphError(
                        f"node {node.name!r}: parameter {name!r} is also used as {taken[name]}"
                    )
                shape = self._param_shape(node, spec)
                if name in first and first[name][1] != shape:
                    other, other_shape = first[name]
                    raise GraphError(
                        f"parameter {name!r}: node {node.name!r} needs {_fmt(shape) or 'a scalar'}"
                        f", but node {other.name!r} needs {_fmt(other_shape) or 'a scalar'}"
                    )
                first.setdefault(name, (node, shape))

    # ---- display ----------------------------------------------------------------------

    def __str__(self) -> str:
        """The graph's equations, one node per line in step order, weights and delays named.

        Examples
        --------
        >>> from unroll import presets
        >>> print(presets.gru(2, 3))
        gru: input x (2); output h
        x[t]           input of size 2
        r[t]           = sigmoid(W_ir x[t] + W_hr h[t−1] + b_ir + b_hr)
        z[t]           = sigmoid(W_iz x[t] + W_hz h[t−1] + b_iz + b_hz)
        hn[t]          = W_hn h[t−1] + b_hn
        r_hn[t]        = r[t] × hn[t]
        n[t]           = tanh(W_in x[t] + r_hn[t] + b_in)
        one_minus_z[t] = 1 − z[t]
        new_part[t]    = one_minus_z[t] × n[t]
        old_part[t]    = z[t] × h[t−1]
        h[t]           = new_part[t] + old_part[t]
        """
        inputs = ", ".join(f"{n} ({self.nodes[n].size})" for n in self.input_nodes())
        outputs = ", ".join(self.output_nodes())
        plural = "s" if len(self.input_nodes()) > 1 else ""
        head = f"{self.name}: input{plural} {inputs or '(none)'}; output {outputs}"
        order = self.step_order() if find_algebraic_loop(self) is None else list(self.nodes)
        width = max((len(n) for n in order), default=0) + 3
        lines = [f"{n + '[t]':<{width}} {self._equation(n)}" for n in order]
        return "\n".join([head, *lines])

    def _equation(self, name: str) -> str:
        node = self.nodes[name]
        reads = [_read_text(e) for e in self.in_edges(name)]
        if node.op.has("fed"):
            return f"input of size {node.size}"
        return "= " + node.op.equation(node, reads, list(node.params))

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> dict[str, Any]:
        from .render import render

        bundle: dict[str, Any] = render(self)._repr_mimebundle_(include=include, exclude=exclude)
        return bundle


def _read_text(e: Edge) -> str:
    """``W_hh h[t−1]``: the weight (if any) times the value the edge reads."""
    step = "t" if e.delay == 0 else f"t{'−' if e.delay > 0 else '+'}{abs(e.delay)}"
    read = f"{e.source}[{step}]"
    return f"{e.weight} {read}" if e.weight else read


def _param_names(
    node: str, row: ops.Op, params: dict[str, str] | Iterable[str] | None
) -> tuple[str, ...]:
    """The checked names of a node's op parameters (the row's defaults where not given)."""
    if params is not None and not row.params:
        raise GraphError(f"node {node!r}: {row.kind} nodes take no parameters, got {params!r}")
    given: dict[str, str] | list[str] | None
    if params is None or isinstance(params, dict):
        given = params
    else:
        try:
            given = [params] if isinstance(params, str) else list(params)
        except TypeError:
            raise GraphError(
                f"node {node!r}: params must be a list or table of names, got {params!r}"
            ) from None
        if len(given) != len(row.params):
            raise GraphError(
                f"node {node!r}: {row.kind} takes {len(row.params)} parameter(s) "
                f"({', '.join(p.role for p in row.params)}), got {len(given)}"
            )
    if isinstance(given, dict):
        roles = {p.role for p in row.params}
        for role in given:
            if role not in roles:
                raise GraphError(
                    f"node {node!r}: {row.kind} has no parameter {role!r} "
                    f"(it has: {', '.join(sorted(roles))})"
                )
    names = row.param_names(node, given)
    for name in names:
        _check_name(name, "parameter")
    return names


def _bias_names(node: str, biases: str | Iterable[str]) -> tuple[str, ...]:
    """``biases`` (a name or an iterable of names) as a tuple of checked names."""
    if isinstance(biases, str):
        biases = [biases]
    try:
        names = tuple(biases)
    except TypeError:
        raise GraphError(
            f"node {node!r}: biases must be a name or a list of names, got {biases!r}"
        ) from None
    for b in names:
        _check_name(b, "bias")
    return names


_Item = TypeVar("_Item", bound=Hashable)


def topological_order(items: Sequence[_Item], pairs: Iterable[tuple[_Item, _Item]]) -> list[_Item]:
    """Kahn's algorithm, iterative; among the ready items the one listed first goes first.

    Items in a cycle are left out (callers validate acyclicity first).

    Examples
    --------
    >>> topological_order(["c", "b", "a"], [("a", "b")])
    ['c', 'a', 'b']
    """
    rank = {item: i for i, item in enumerate(items)}
    waiting = dict.fromkeys(items, 0)
    after: dict[_Item, list[_Item]] = {item: [] for item in items}
    for source, target in pairs:
        waiting[target] += 1
        after[source].append(target)
    ready = [(rank[item], item) for item, k in waiting.items() if k == 0]
    heapq.heapify(ready)
    order: list[_Item] = []
    while ready:
        _, item = heapq.heappop(ready)
        order.append(item)
        for nxt in after[item]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                heapq.heappush(ready, (rank[nxt], nxt))
    return order


def _check_name(name: object, what: str) -> None:
    if not is_name(name):
        raise GraphError(
            f"{what} name {name!r} must be a letter or _ followed by letters, digits or _ "
            f"({NAME_PATTERN})"
        )


def _fmt(shape: Iterable[int]) -> str:
    return "x".join(str(s) for s in shape)


# ---- algebraic loops -------------------------------------------------------------------


#: Edge relaxations the Bellman-Ford search may spend on one strongly connected part whose
#: delays mix signs (the only case that is not linear); beyond it :class:`LimitError`.
LOOP_CHECK_BUDGET = 20_000_000


def find_algebraic_loop(graph: Graph, budget: int | None = LOOP_CHECK_BUDGET) -> str | None:
    """Describe a closed walk of total delay 0, or return ``None`` if there is none.

    Such a walk exists exactly when one strongly connected part of the graph holds a
    cycle of total delay <= 0 and a cycle of total delay >= 0: either one of them is 0,
    or walking the positive one ``n`` times and the negative one ``p`` times cancels.
    A part whose delays are all >= 0 (or all <= 0) has one exactly when its delay-0
    edges close a cycle: a depth-first search, linear in nodes and edges. A part whose
    delays mix signs needs Bellman-Ford on integer weights ``L * delay - 1`` (and
    ``-L * delay - 1``), ``L`` exceeding the node count, so a simple cycle is negative
    exactly when its total delay is <= 0 (resp. >= 0); ``budget`` bounds its work.

    Raises
    ------
    LimitError
        When a mixed-sign part needs more than ``budget`` edge relaxations.

    Examples
    --------
    >>> g = Graph("loop")
    >>> for name in ("h", "g"):
    ...     _ = g.layer(name, 1)
    >>> g.edge("h", "g"); g.edge("g", "h")
    >>> find_algebraic_loop(g)
    'h -> g -> h has total delay 0'
    """
    index = {n: i for i, n in enumerate(graph.nodes)}
    part_of: dict[str, int] = {}
    for k, part in enumerate(_strongly_connected_parts(graph, index)):
        part_of.update(dict.fromkeys(part, k))
    inside: dict[int, list[Edge]] = {}
    for e in graph.edges:
        k = part_of[e.source]
        if part_of[e.target] == k:
            inside.setdefault(k, []).append(e)
    big = len(graph.nodes) + 1
    for k in sorted(inside):
        edges = inside[k]
        if all(e.delay >= 0 for e in edges) or all(e.delay <= 0 for e in edges):
            cycle = _cycle_of([e for e in edges if e.delay == 0], index)
            if cycle:
                return _walk_text(_rotate(cycle, index))
            continue
        nodes = sorted({e.source for e in edges}, key=index.__getitem__)
        work = _Budget(budget, len(nodes), len(edges))
        nonpos = _negative_cycle(nodes, edges, lambda e: big * e.delay - 1, work)
        nonneg = _negative_cycle(nodes, edges, lambda e: -big * e.delay - 1, work)
        if nonpos and nonneg:
            return _describe_loop(nonpos, nonneg, index)
    return None


def _strongly_connected_parts(graph: Graph, index: dict[str, int]) -> list[list[str]]:
    """Tarjan's strongly connected parts, iteratively, in a deterministic order."""
    after: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for e in graph.edges:
        after[e.source].append(e.target)
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    parts: list[list[str]] = []
    for root in graph.nodes:
        if root in order:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                order[v] = low[v] = len(order)
                stack.append(v)
                on_stack.add(v)
            if i < len(after[v]):
                work.append((v, i + 1))
                w = after[v][i]
                if w not in order:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], order[w])
                continue
            if low[v] == order[v]:
                part = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    part.append(w)
                    if w == v:
                        break
                parts.append(sorted(part, key=index.__getitem__))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return sorted(parts, key=lambda p: index[p[0]])


def _cycle_of(edges: list[Edge], index: dict[str, int]) -> list[Edge] | None:
    """The edges of a cycle among ``edges`` (iterative depth-first search), or None."""
    after: dict[str, list[Edge]] = {}
    for e in edges:
        after.setdefault(e.source, []).append(e)
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    for root in sorted(after, key=index.__getitem__):
        if root in state:
            continue
        state[root] = 1
        path: list[Edge] = []
        work = [(root, 0)]
        while work:
            v, i = work[-1]
            out = after.get(v, ())
            if i == len(out):
                work.pop()
                state[v] = 2
                if path:
                    path.pop()
                continue
            work[-1] = (v, i + 1)
            e = out[i]
            if e.target == v:  # a loop on the node itself
                return [e]
            if state.get(e.target) == 1:  # back to a node on the path: the path from it, closed
                start = next(k for k, p in enumerate(path) if p.source == e.target)
                return [*path[start:], e]
            if e.target not in state:
                state[e.target] = 1
                path.append(e)
                work.append((e.target, 0))
    return None


class _Budget:
    """Counts Bellman-Ford's edge relaxations against a limit."""

    def __init__(self, limit: int | None, nodes: int, edges: int) -> None:
        self.limit, self.nodes, self.edges, self.spent = limit, nodes, edges, 0

    def spend(self, n: int) -> None:
        self.spent += n
        if self.limit is not None and self.spent > self.limit:
            raise LimitError(
                f"checking for algebraic loops in a strongly connected part of {self.nodes:,} "
                f"nodes and {self.edges:,} edges whose delays mix signs takes more than "
                f"{self.limit:,} steps of Bellman-Ford",
                "find_algebraic_loop(..., budget=None)",
            )


def _negative_cycle(
    nodes: list[str], edges: list[Edge], weight: Callable[[Edge], int], work: _Budget
) -> list[Edge] | None:
    """Bellman-Ford from a virtual source; return the edges of a negative cycle or None."""
    dist = dict.fromkeys(nodes, 0)
    pred: dict[str, Edge] = {}
    changed: str | None = None
    for _ in range(len(nodes)):
        work.spend(len(edges))
        changed = None
        for e in edges:
            d = dist[e.source] + weight(e)
            if d < dist[e.target]:
                dist[e.target], pred[e.target], changed = d, e, e.target
        if changed is None:
            return None
    if changed is None:  # no nodes: no cycle
        return None
    v = changed
    for _ in range(len(nodes)):
        v = pred[v].source
    cycle, u = [], v
    while True:
        e = pred[u]
        cycle.append(e)
        u = e.source
        if u == v:
            break
    return cycle[::-1]


def _rotate(cycle: list[Edge], index: dict[str, int]) -> list[Edge]:
    start = min(range(len(cycle)), key=lambda i: index[cycle[i].source])
    return cycle[start:] + cycle[:start]


def _walk_text(walk: list[Edge]) -> str:
    names = [walk[0].source] + [e.target for e in walk]
    if len(walk) > 12:  # a long ring: its ends and its length
        names = [*names[:4], "...", *names[-3:]]
    text = " -> ".join(names) + (f" ({len(walk)} edges)" if len(walk) > 12 else "")
    text += " has total delay 0"
    if any(e.delay for e in walk) and len(walk) <= 12:
        text += " (edge delays " + ", ".join(f"{e.delay:+d}" for e in walk) + ")"
    return text


def _describe_loop(nonpos: list[Edge], nonneg: list[Edge], index: dict[str, int]) -> str:
    for cycle in (nonpos, nonneg):
        if sum(e.delay for e in cycle) == 0:
            return _walk_text(_rotate(cycle, index))
    n, p = -sum(e.delay for e in nonpos), sum(e.delay for e in nonneg)
    g = math.gcd(n, p)
    shared = {e.source for e in nonpos} & {e.source for e in nonneg}
    if shared and (n + p) // g <= 12:
        v = min(shared, key=index.__getitem__)
        neg = _rotate_to(nonpos, v)
        pos = _rotate_to(nonneg, v)
        return _walk_text(pos * (n // g) + neg * (p // g))
    return (
        f"the cycle {_cycle_text(nonneg)} (total delay {p:+d}) and the cycle "
        f"{_cycle_text(nonpos)} (total delay {-n:+d}) are connected, so walking "
        f"them {n // g} and {p // g} times closes a loop of total delay 0"
    )


def _rotate_to(cycle: list[Edge], v: str) -> list[Edge]:
    i = next(i for i, e in enumerate(cycle) if e.source == v)
    return cycle[i:] + cycle[:i]


def _cycle_text(cycle: list[Edge]) -> str:
    return " -> ".join([cycle[0].source] + [e.target for e in cycle])
