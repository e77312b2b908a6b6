"""Model files: read recurrent graphs from TOML; write TOML, JSON, GraphML and DOT, atomically.

The TOML model format declares nodes and edges as a reader would draw them::

    name = "elman"
    outputs = ["h"]                           # optional: where a loss attaches
    edges = [                                 # "SRC -> DST [@ t-k] [: WEIGHT]"
        "x -> h : W_ih",
        "h -> h @ t-1 : W_hh",                # h at step t reads h at step t-1
    ]

    [nodes]                                   # declaration order is kept
    x = { kind = "input", size = 3 }
    h = { kind = "layer", size = 8, activation = "tanh", biases = ["b_ih", "b_hh"] }

Top-level keys (``name``, ``outputs``, ``edges``) come before the first ``[table]``
header, as TOML requires. Edges may instead be written as tables, anywhere in the file::

    [[edges]]
    from = "h"
    to = "h"
    delay = 1          # h at step t reads h at step t - 1 (default 0)
    weight = "W_hh"    # optional: no weight is an identity edge

``@ t-k`` in an edge string is ``delay = k``; ``@ t+k`` reads the future (``delay = -k``).
An optional ``[params]`` table gives parameter values (``W_hh = [[...], ...]``).

The JSON export is a node-link document (see :func:`to_json`); GraphML carries string
attributes only; DOT comes from :mod:`unroll.render`. Every writer is deterministic, so
exports are byte-stable, and :func:`atomic_write` never leaves half a file behind.
"""

from __future__ import annotations

import bisect
import difflib
import json
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, NoReturn

import networkx as nx
import numpy as np

from .atomic import atomic_write
from .errors import GraphError, UnrollError
from .graph import Edge, Graph
from .limits import MAX_GRAPH_NODES, check_graph_size
from .ops import ACTIVATIONS, OPS
from .quoting import toml_string
from .unrolled import Unrolled

__all__ = [
    "EXPORTERS",
    "JSON_SCHEMA",
    "ModelFile",
    "ModelFileError",
    "atomic_write",
    "export",
    "load_toml",
    "parse_edge",
    "parse_toml",
    "suggest",
    "to_graphml",
    "to_json",
    "to_toml",
    "unrolled_as_graph",
]

#: Name and version of the JSON node-link document :func:`to_json` writes.
JSON_SCHEMA = "unroll-graph/1"


class ModelFileError(UnrollError):
    """A model file cannot be read: the message names the file, the line and the fault."""

    def __init__(
        self, message: str, path: str | os.PathLike | None = None, line: int | None = None
    ):
        self.path, self.line, self.problem = path, line, message
        where = ", ".join(
            filter(
                None,
                [os.fspath(path) if path is not None else None, f"line {line}" if line else None],
            )
        )
        super().__init__(f"{where}: {message}" if where else message)


@dataclass
class ModelFile:
    """What a model file declares: the graph, and parameter values if it gives them."""

    graph: Graph
    params: dict[str, np.ndarray] | None = None


def suggest(name: str, known: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest known name, else ``""``.

    Examples
    --------
    >>> suggest("tahn", ["tanh", "relu"])
    " (did you mean 'tanh'?)"
    >>> suggest("zzz", ["tanh"])
    ''
    """
    close = difflib.get_close_matches(str(name), sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown(what: str, name: str, known: Iterable[str]) -> str:
    known = list(known)
    return f"unknown {what} {name!r}{suggest(name, known)}; known: {', '.join(known)}"


# ---- atomic writes ----------------------------------------------------------------------


# ---- reading TOML -----------------------------------------------------------------------

_ROOT_KEYS = ("name", "outputs", "nodes", "edges", "params")
_NODE_FIELDS = ("kind", "size", "activation", "biases", "gate", "params", "init")
_EDGE_FIELDS = ("from", "to", "delay", "weight")
_EDGE = re.compile(
    r"\A\s*(?P<source>[A-Za-z_]\w*)\s*->\s*(?P<target>[A-Za-z_]\w*)\s*"
    r"(?:@\s*t\s*(?:(?P<sign>[+-])\s*(?P<k>\d+))?\s*)?"
    r"(?::\s*(?P<weight>[A-Za-z_]\w*)\s*)?\Z"
)
_EDGES_HEADER = re.compile(r"^\s*\[\[\s*edges\s*\]\]")
_KEY_AT_START = re.compile(
    r"^\s*(?:\"((?:[^\"\\]|\\.)*)\"|'([^']*)'|([A-Za-z0-9_-]+(?:\s*\.\s*[A-Za-z0-9_\"'-]+)*))\s*="
)
_STRING_LITERAL = re.compile(r"\"((?:[^\"\\]|\\.)*)\"|'([^']*)'")
_TOML_POSITION = re.compile(r"\s*\(at (?:line (\d+), column \d+|end of document)\)$")


def parse_edge(text: str) -> Edge:
    """Parse ``"SRC -> DST [@ t-k] [: WEIGHT]"`` into an :class:`~unroll.graph.Edge`.

    ``@ t-k`` means the target at step t reads the source at step t-k (delay k);
    ``@ t+k`` reads the future (delay -k); no ``@`` is delay 0.

    Raises
    ------
    ModelFileError
        When the text does not have that form (a ``ValueError`` too).

    Examples
    --------
    >>> parse_edge("h -> h @ t-1 : W_hh")
    Edge(source='h', target='h', delay=1, weight='W_hh')
    >>> parse_edge("h_reverse -> h_reverse @ t+1").delay
    -1
    """
    m = _EDGE.match(text) if isinstance(text, str) else None
    if not m:
        raise ModelFileError(f'edge {text!r} is not of the form "SRC -> DST [@ t-k] [: WEIGHT]"')
    k = int(m["k"] or 0)
    return Edge(m["source"], m["target"], k if m["sign"] == "-" else -k, m["weight"])


def load_toml(path: str | os.PathLike, max_nodes: int | None = MAX_GRAPH_NODES) -> ModelFile:
    """Read a TOML model file (format in the module docstring).

    Parameters
    ----------
    path : str or path-like
    max_nodes : int or None
        Refuse a file declaring more nodes (or more than 10 edges per allowed node),
        counted before the graph is built (:data:`unroll.limits.MAX_GRAPH_NODES`).

    Returns
    -------
    ModelFile
        ``.graph`` (validated) and ``.params`` (``None`` without a ``[params]`` table).

    Raises
    ------
    ModelFileError
        Naming the file, the line and the problem.
    LimitError
        Above ``max_nodes``.
    OSError
        When the file cannot be read.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "loop.toml"
    >>> _ = f.write_text('edges = ["x -> h", "h -> h @ t-1 : W"]\\n'
    ...                  '[nodes]\\nx = { kind = "input", size = 1 }\\n'
    ...                  'h = { kind = "layer", size = 1 }\\n')
    >>> load_toml(f).graph.params()
    {'W': (1, 1)}
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ModelFileError(f"not UTF-8 text ({e.reason})", path) from None
    return parse_toml(text, path, default_name=path.stem, max_nodes=max_nodes)


def parse_toml(
    text: str,
    path: str | os.PathLike = "<string>",
    default_name: str = "graph",
    max_nodes: int | None = MAX_GRAPH_NODES,
) -> ModelFile:
    """Build the graph a TOML model text declares; errors name ``path`` and the line.

    Examples
    --------
    >>> doc = '''
    ... edges = ["x -> h : W_ih", "h -> h @ t-1 : W_hh"]
    ... [nodes]
    ... x = { kind = "input", size = 2 }
    ... h = { kind = "layer", size = 4, activation = "tanh" }
    ... '''
    >>> parse_toml(doc).graph.recurrent_weights()
    ['W_hh']
    >>> parse_toml(doc.replace("h -> h @", "hh -> h @"))  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    unroll.files.ModelFileError: <string>, line 2: edge "hh -> h @ t-1":
    unknown node 'hh' (did you mean 'h'?)
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise _syntax_error(e, text, path) from None
    except RecursionError:  # arrays or tables nested hundreds deep
        raise ModelFileError("invalid TOML: nested too deeply", path) from None
    nodes, edges = doc.get("nodes"), doc.get("edges")
    check_graph_size(
        os.fspath(path),
        len(nodes) if isinstance(nodes, dict) else 0,
        len(edges) if isinstance(edges, list) else 0,
        max_nodes,
    )
    return _Reader(doc, _Locator(text), path, default_name).read()


def _syntax_error(e: tomllib.TOMLDecodeError, text: str, path) -> ModelFileError:
    message = str(e)
    m = _TOML_POSITION.search(message)
    if not m:
        return ModelFileError(f"invalid TOML: {message}", path)
    line = int(m[1]) if m[1] else max(1, text.count("\n") + (not text.endswith("\n")))
    return ModelFileError(f"invalid TOML: {message[: m.start()]}", path, line)


class _Locator:
    """Find the line (1-based) where a key, node, edge or parameter of a TOML text sits.

    The keys of each table, the string literals and the ``[[edges]]`` headers are indexed
    in one pass over the text, so finding every node's and edge's line stays linear.
    """

    def __init__(self, text: str):
        self.lines = text.splitlines()
        self.sections: list[str | None] = []  # the [table] each line belongs to
        self.keys: dict[tuple[str | None, str], int] = {}  # (table, key) -> first line
        self.literals: dict[str, list[int]] = {}  # a string's text -> the lines it is on
        self.edge_headers: list[int] = []
        section = None
        for number, line in enumerate(self.lines, start=1):
            header = re.match(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?", line)
            if header:
                section = header[1].replace(" ", "").replace('"', "").replace("'", "")
                table, _, key = section.rpartition(".")
                if table:
                    self.keys.setdefault((table, key), number)
                if _EDGES_HEADER.match(line):
                    self.edge_headers.append(number)
            self.sections.append(section)
            self._index_line(section, number, line)

    def _index_line(self, section: str | None, number: int, line: str) -> None:
        key = _KEY_AT_START.match(line)
        if key:
            quoted, single, bare = key.groups()
            name = quoted if quoted is not None else single if single is not None else bare
            name = re.sub(r"\s+", "", name) if bare is not None else name
            self.keys.setdefault((section, name), number)
            table, dot, rest = name.partition(".")
            if dot and section is None:
                self.keys.setdefault((table, rest.strip().strip("\"'")), number)
        for m in _STRING_LITERAL.finditer(line):
            self.literals.setdefault(m[1] if m[1] is not None else m[2], []).append(number)

    def _find(self, pattern: str, section: str | None = "*", start: int = 0) -> int | None:
        rx = re.compile(pattern)
        for i in range(start, len(self.lines)):
            if (section == "*" or self.sections[i] == section) and rx.search(self.lines[i]):
                return i + 1
        return None

    def root_key(self, key: str) -> int | None:
        return self.keys.get((None, key))

    def section(self, name: str) -> int | None:
        return self._find(rf"^\s*\[\s*{name}\s*\]")

    def table_key(self, table: str, key: str) -> int | None:
        return self.keys.get((table, key))

    def edge(self, index: int, item, after: int) -> int | None:
        if isinstance(item, str):
            lines = self.literals.get(item, [])
            later = bisect.bisect_left(lines, after)
            return lines[later] if later < len(lines) else (lines[0] if lines else None)
        if self.edge_headers:
            return self.edge_headers[index] if index < len(self.edge_headers) else None
        if not isinstance(item, dict):
            return self._find(
                rf"(^|[\s,\[]){re.escape(str(item))}\s*(,|\]|$)", start=max(after - 1, 0)
            )
        source = re.escape(str(item.get("from", "")))
        return self._find(rf"\bfrom\s*=\s*[\"']{source}[\"']", start=after)


class _Reader:
    """One pass over a parsed TOML document, building the graph and naming faults' lines."""

    def __init__(self, doc: dict, where: _Locator, path, default_name: str):
        self.doc, self.where, self.path = doc, where, path
        self.graph = Graph(doc.get("name", default_name))
        self.edge_lines: list[int | None] = []

    def fail(self, message: str, line: int | None = None) -> NoReturn:
        raise ModelFileError(message, self.path, line)

    def read(self) -> ModelFile:
        for key in self.doc:
            if key not in _ROOT_KEYS:
                self.fail(
                    f"unknown top-level key {key!r}{suggest(key, _ROOT_KEYS)}; known: "
                    f"{', '.join(_ROOT_KEYS)}",
                    self.where.root_key(key),
                )
        if not isinstance(self.graph.name, str):
            self.fail("name must be a string", self.where.root_key("name"))
        self.read_nodes()
        self.read_edges()
        self.read_outputs()
        try:
            self.graph.validate()
        except GraphError as e:
            self.fail(*self.locate(str(e)))
        return ModelFile(self.graph, self.read_params())

    # -- nodes --

    def read_nodes(self) -> None:
        nodes = self.doc.get("nodes")
        if not isinstance(nodes, dict) or not nodes:
            self.fail(
                'no nodes: declare them in a [nodes] table, e.g. x = { kind = "input", size = 3 }',
                self.where.section("nodes"),
            )
        for name, spec in nodes.items():
            self.read_node(name, spec)

    def read_node(self, name: str, spec) -> None:
        line = self.where.table_key("nodes", name)
        if not isinstance(spec, dict):
            if name in _ROOT_KEYS:
                self.fail(
                    f"{name!r} sits inside [nodes]: write top-level keys before the "
                    "first [table] header (TOML puts later keys into that table)",
                    line,
                )
            self.fail(
                f"node {name!r} must be a table such as "
                '{ kind = "layer", size = 8, activation = "tanh" }',
                line,
            )
        for key in spec:
            if key not in _NODE_FIELDS:
                self.fail(
                    f"node {name!r}: unknown field {key!r}{suggest(key, _NODE_FIELDS)}; "
                    f"fields: {', '.join(_NODE_FIELDS)}",
                    line,
                )
        for key in ("kind", "size"):
            if key not in spec:
                self.fail(f"node {name!r}: missing {key!r}", line)
        kind, activation, gate = spec["kind"], spec.get("activation"), spec.get("gate")
        init = spec.get("init")
        for key, value in (
            ("kind", kind), ("activation", activation), ("gate", gate), ("init", init)
        ):  # fmt: skip
            if value is not None and not isinstance(value, str):
                self.fail(f"node {name!r}: {key} must be a string, got {value!r}", line)
        if kind not in OPS:
            self.fail(f"node {name!r}: {_unknown('node kind', kind, OPS)}", line)
        if activation is not None and activation not in ACTIVATIONS:
            self.fail(f"node {name!r}: {_unknown('activation', activation, ACTIVATIONS)}", line)
        biases = spec.get("biases", ())
        if not isinstance(biases, str | list | tuple) or not all(map(_is_str, biases)):
            self.fail(f"node {name!r}: biases must be a list of names", line)
        params = spec.get("params")
        if params is not None and not (
            (isinstance(params, list) and all(map(_is_str, params)))
            or (isinstance(params, dict) and all(map(_is_str, params.values())))
        ):
            self.fail(
                f"node {name!r}: params must be a list of names or a table of role = name",
                line,
            )
        try:
            self.graph.add_node(
                name,
                kind,
                spec["size"],
                activation=activation,
                biases=biases,
                gate=gate,
                params=params,
                init=init,
            )
        except GraphError as e:
            self.fail(str(e), line)

    # -- edges --

    def read_edges(self) -> None:
        edges = self.doc.get("edges", [])
        if not isinstance(edges, list):
            self.fail(
                'edges must be a list of "SRC -> DST [@ t-k] [: WEIGHT]" strings or '
                "[[edges]] tables",
                self.where.root_key("edges"),
            )
        after = 0
        for index, item in enumerate(edges):
            line = self.where.edge(index, item, after)
            after = line or after
            self.edge_lines.append(line)
            edge = self.parse_item(item, line)
            for end in (edge.source, edge.target):
                if end not in self.graph.nodes:
                    self.fail(
                        f'edge "{edge.describe()}": unknown node {end!r}'
                        f"{suggest(end, self.graph.nodes)}",
                        line,
                    )
            try:
                self.graph.edge(edge.source, edge.target, edge.delay, edge.weight)
            except GraphError as e:
                self.fail(str(e), line)

    def parse_item(self, item, line) -> Edge:
        if isinstance(item, str):
            try:
                return parse_edge(item)
            except ValueError as e:
                self.fail(str(e), line)
        if not isinstance(item, dict):
            self.fail(f"edge {item!r} must be a string or a table", line)
        for key in item:
            if key not in _EDGE_FIELDS:
                self.fail(
                    f"edge: unknown field {key!r}{suggest(key, _EDGE_FIELDS)}; fields: "
                    f"{', '.join(_EDGE_FIELDS)}",
                    line,
                )
        for key in ("from", "to"):
            if not isinstance(item.get(key), str):
                self.fail(f"edge: {key!r} must name a node", line)
        delay = item.get("delay", 0)
        if isinstance(delay, bool) or not isinstance(delay, int):
            self.fail(
                f"edge {item['from']} -> {item['to']}: delay must be an integer, got {delay!r}",
                line,
            )
        return Edge(item["from"], item["to"], delay, item.get("weight"))

    # -- outputs, params --

    def read_outputs(self) -> None:
        outputs = self.doc.get("outputs", [])
        line = self.where.root_key("outputs")
        if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
            self.fail("outputs must be a list of node names", line)
        for name in outputs:
            if name not in self.graph.nodes:
                self.fail(f"output {name!r}: unknown node{suggest(name, self.graph.nodes)}", line)
        self.graph.set_outputs(*outputs)

    def read_params(self) -> dict[str, np.ndarray] | None:
        given = self.doc.get("params")
        if given is None:
            return None
        shapes = self.graph.params()
        if not isinstance(given, dict):
            self.fail("params must be a table of arrays", self.where.root_key("params"))
        params = {}
        for name, value in given.items():
            line = self.where.table_key("params", name)
            if name not in shapes:
                self.fail(f"params: {_unknown('parameter', name, shapes)}", line)
            try:
                array = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                self.fail(f"params: {name!r} must be a (nested) list of numbers", line)
            except OverflowError:
                self.fail(f"params: {name!r} holds an integer too large for a float64", line)
            if array.shape != shapes[name]:
                self.fail(
                    f"params: {name!r} has shape {_shape(array.shape)}, the graph needs "
                    f"{_shape(shapes[name])}",
                    line,
                )
            if not np.isfinite(array).all():
                index = [int(i) for i in np.argwhere(~np.isfinite(array))[0]]
                self.fail(
                    f"params: {name!r} has a non-finite value at index {index} "
                    f"({array[tuple(index)]})",
                    line,
                )
            params[name] = array
        missing = [n for n in shapes if n not in params]
        if missing:
            self.fail(f"params: missing {', '.join(missing)}", self.where.section("params"))
        return dict(sorted(params.items()))

    # -- mapping a validation error to a line --

    def locate(self, message: str) -> tuple[str, int | None]:
        """Rewrite a :class:`GraphError` message for a file and find its line."""
        for pattern, find in self._LOCATORS:
            m = re.match(pattern, message)
            if m:
                return find(self, m, message)
        return message, None

    def _edge_line(self, predicate: Callable[[Edge], bool]) -> int | None:
        for edge, line in zip(self.graph.edges, self.edge_lines, strict=True):
            if predicate(edge):
                return line
        return None

    def _at_edge(self, m, message):
        text = m["edge"]
        line = self._edge_line(lambda e: e.describe() == text)
        return f'edge "{text}"{message[m.end("edge") :]}', line

    def _at_weight(self, m, message):
        return message, self._edge_line(lambda e: e.describe() == m["edge"])

    def _at_node(self, m, message):
        return message, self.where.table_key("nodes", m["node"])

    def _at_bias(self, m, message):
        owners = [n for n in self.graph.nodes.values() if m["bias"] in n.biases]
        node = m["other"] or (owners[0].name if owners else "")
        return message, self.where.table_key("nodes", node)

    def _at_loop(self, m, message):
        line = self._edge_line(lambda e: (e.source, e.target) == (m["a"], m["b"]))
        return message, line

    def _at_output(self, m, message):
        return message, self.where.root_key("outputs")

    _LOCATORS: ClassVar = [
        (r"^edge (?P<edge>.+?): ", _at_edge),
        (r"^weight '\w+': edge (?P<edge>.+?) needs", _at_weight),
        (r"^node '(?P<node>\w+)'", _at_node),
        (r"^(?:parameter|bias) '(?P<bias>\w+)'(?:.*and node '(?P<other>\w+)')?", _at_bias),
        (r"^algebraic loop: (?:the cycle )?(?P<a>\w+) -> (?P<b>\w+)", _at_loop),
        (r"^output ", _at_output),
    ]


def _is_str(value) -> bool:
    return isinstance(value, str)


def _shape(shape) -> str:
    return "x".join(str(s) for s in shape) or "scalar"


# ---- writing TOML -----------------------------------------------------------------------


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(float(value)) if isinstance(value, float | np.floating) else str(value)


def _toml_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else toml_string(name)


def _edge_text(edge: Edge) -> str:
    weight = f" : {edge.weight}" if edge.weight else ""
    return f"{edge.describe()}{weight}"


def _node_table(node) -> str:
    fields = {
        "kind": node.kind,
        "size": node.size,
        "activation": node.activation,
        "biases": list(node.biases) or None,
        "gate": node.gate,
        "params": list(node.params) or None,
        "init": node.init,
    }
    inner = ", ".join(f"{k} = {_toml_value(v)}" for k, v in fields.items() if v is not None)
    return f"{{ {inner} }}"


def _array_text(array: np.ndarray) -> str:
    if array.ndim == 1:
        return "[" + ", ".join(repr(float(v)) for v in array) + "]"
    rows = ",\n".join(f"    {_array_text(row)}" for row in array)
    return f"[\n{rows},\n]"


def _graph(obj) -> Graph:
    """``obj`` if it is a Graph, else an UnrollError naming what it is."""
    if not isinstance(obj, Graph):
        raise UnrollError(f"expected a Graph or an Unrolled graph, got {type(obj).__name__}")
    return obj


def _checked_params(params) -> dict[str, np.ndarray] | None:
    """Parameters to write: names to real arrays of one or two dimensions."""
    if params is None:
        return None
    if not isinstance(params, Mapping):
        raise UnrollError(f"params must be a mapping of names to arrays, got {params!r}")
    out = {}
    for name, value in params.items():
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            array = None
        if not isinstance(name, str) or array is None or array.ndim not in (1, 2):
            raise UnrollError(f"params: {name!r} must name a vector or matrix of numbers")
        out[name] = array
    return out


def to_toml(obj: Graph | Unrolled, params: dict | None = None) -> str:
    """The TOML model text of a graph (an unrolled one via :func:`unrolled_as_graph`).

    Loading the text back (:func:`parse_toml`) gives an equal :class:`~unroll.graph.Graph`;
    ``params``, if given, are written as a ``[params]`` table with exact float repr.

    Examples
    --------
    >>> from unroll import presets
    >>> print(to_toml(presets.neuron()))
    name = "neuron"
    edges = [
        "x -> h : W_ih",
        "h -> h @ t-1 : W_hh",
    ]
    <BLANKLINE>
    [nodes]
    x = { kind = "input", size = 1 }
    h = { kind = "layer", size = 1, activation = "tanh", biases = ["b_ih", "b_hh"] }
    <BLANKLINE>
    >>> parse_toml(to_toml(presets.lstm())).graph == presets.lstm()
    True
    """
    graph = unrolled_as_graph(obj) if isinstance(obj, Unrolled) else _graph(obj)
    params = _checked_params(params)
    lines = [f"name = {toml_string(graph.name)}"]
    if graph.outputs:
        lines.append(f"outputs = {_toml_value(graph.outputs)}")
    lines.append("edges = [")
    lines += [f"    {toml_string(_edge_text(e))}," for e in graph.edges]
    lines += ["]", "", "[nodes]"]
    lines += [f"{_toml_key(n.name)} = {_node_table(n)}" for n in graph.nodes.values()]
    if params is not None:
        lines += ["", "[params]"]
        for name in sorted(params):
            lines.append(f"{_toml_key(name)} = {_array_text(np.asarray(params[name]))}")
    return "\n".join(lines) + "\n"


# ---- the unrolled DAG as a graph, JSON and GraphML ----------------------------------------


def _instance_name(name: str, t: int) -> str:
    return f"{name}_t{t}" if t >= 0 else f"{name}_tm{-t}"


def unrolled_as_graph(unrolled: Unrolled) -> Graph:
    """The unrolled DAG as a feed-forward :class:`~unroll.graph.Graph` (every delay 0).

    Node ``h`` at step ``t`` becomes ``h_t3`` (``h_tm1`` for step -1); boundary states
    become input nodes; every edge keeps its weight's name, so the weights stay tied and
    one step of the new graph computes what ``unrolled`` computes over all its steps.
    The outputs are the instances the sequence mode's loss reads.

    Examples
    --------
    >>> import unroll
    >>> g = unrolled_as_graph(unroll.unroll(unroll.presets.neuron(), steps=2))
    >>> [e.describe() for e in g.edges]
    ['x_t0 -> h_t0', 'h_tm1 -> h_t0', 'x_t1 -> h_t1', 'h_t0 -> h_t1']
    >>> g.input_nodes(), g.outputs
    (['h_tm1', 'x_t0', 'x_t1'], ['h_t0', 'h_t1'])
    """
    folded = unrolled.graph
    graph = Graph(f"{folded.name}_unrolled_{unrolled.steps}")
    for name, t in unrolled.boundary:
        graph.input(_instance_name(name, t), folded.nodes[name].size)
    for name, t in unrolled.order:
        node = folded.nodes[name]
        graph.add_node(
            _instance_name(name, t),
            node.kind,
            node.size,
            activation=node.activation,
            biases=node.biases,
            gate=node.gate,
            params=node.params if node.params else None,
            init=node.init,
        )
    for inst in unrolled.order:
        for e, src in unrolled.sources(inst):
            graph.edge(_instance_name(*src), _instance_name(*inst), weight=e.weight)
    graph.set_outputs(*[_instance_name(*i) for i in unrolled.loss_instances])
    return graph


def _node_record(node, node_id: str, step: int | None, boundary: bool = False) -> dict:
    """A JSON node; a boundary copy (an initial state) computes nothing, so has no op."""
    if boundary:
        return {
            "id": node_id,
            "name": node.name,
            "step": step,
            "kind": "boundary",
            "size": node.size,
            "activation": None,
            "biases": [],
            "gate": None,
            "params": [],
        }
    return {
        "id": node_id,
        "name": node.name,
        "step": step,
        "kind": node.kind,
        "size": node.size,
        "activation": node.activation,
        "biases": list(node.biases),
        "gate": node.gate,
        "params": list(node.params),
    }


def _edge_record(source: str, target: str, edge: Edge) -> dict:
    return {"source": source, "target": target, "delay": edge.delay, "weight": edge.weight}


def _json_id(name: str, t: int) -> str:
    return f"{name}@{t}"


def _folded_document(graph: Graph) -> dict:
    return {
        "schema": JSON_SCHEMA,
        "name": graph.name,
        "view": "folded",
        "steps": None,
        "mode": None,
        "outputs": graph.output_nodes(),
        "nodes": [_node_record(n, n.name, None) for n in graph.nodes.values()],
        "edges": [_edge_record(e.source, e.target, e) for e in graph.edges],
        "params": {k: list(v) for k, v in graph.params().items()},
    }


def _unrolled_document(unrolled: Unrolled) -> dict:
    graph = unrolled.graph
    nodes = [
        _node_record(graph.nodes[n], _json_id(n, t), t, boundary=True) for n, t in unrolled.boundary
    ]
    nodes += [_node_record(graph.nodes[n], _json_id(n, t), t) for n, t in unrolled.order]
    edges = [
        _edge_record(_json_id(*src), _json_id(*inst), e)
        for inst in unrolled.order
        for e, src in unrolled.sources(inst)
    ]
    return {
        "schema": JSON_SCHEMA,
        "name": graph.name,
        "view": "unrolled",
        "steps": unrolled.steps,
        "mode": unrolled.mode.name,
        "outputs": [_json_id(*i) for i in unrolled.loss_instances],
        "nodes": nodes,
        "edges": edges,
        "params": {k: list(v) for k, v in graph.params().items()},
    }


def to_json(obj: Graph | Unrolled) -> str:
    """A node-link JSON document of a folded or unrolled graph, byte-stable.

    Schema ``"unroll-graph/1"``: an object with

    - ``schema``: ``"unroll-graph/1"``; ``name``: the graph's name;
    - ``view``: ``"folded"`` or ``"unrolled"``; ``steps`` and ``mode``: the unrolling's
      step count and sequence mode (``null`` when folded);
    - ``outputs``: ids of the nodes a loss reads;
    - ``nodes``: objects ``{id, name, step, kind, size, activation, biases, gate, params}``; the
      id is the node's name when folded and ``"name@t"`` when unrolled (``step`` is
      ``null`` when folded); boundary states (initial states such as ``h@-1``) have kind
      ``"boundary"``; declaration order when folded, topological order when unrolled;
    - ``edges``: objects ``{source, target, delay, weight}`` (ids; the folded edge's delay;
      weight ``null`` for an identity edge), in declaration order;
    - ``params``: ``{name: shape}`` sorted by name; a weight's name ties all its edges.

    Examples
    --------
    >>> import json, unroll
    >>> doc = json.loads(to_json(unroll.unroll(unroll.presets.neuron(), steps=2)))
    >>> doc["view"], [n["id"] for n in doc["nodes"]]
    ('unrolled', ['h@-1', 'x@0', 'h@0', 'x@1', 'h@1'])
    >>> doc["edges"][1]
    {'source': 'h@-1', 'target': 'h@0', 'delay': 1, 'weight': 'W_hh'}
    """
    doc = _unrolled_document(obj) if isinstance(obj, Unrolled) else _folded_document(_graph(obj))
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _stringified(g: nx.Graph) -> nx.Graph:
    """A copy whose node ids and attribute values are all strings (``None`` -> ``""``)."""

    def text(value) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    out = nx.MultiDiGraph(name=g.graph.get("name", ""))
    out.graph.update({k: text(v) for k, v in g.graph.items()})
    for node, data in g.nodes(data=True):
        out.add_node(text(node), **{k: text(v) for k, v in data.items()})
    return out


def to_graphml(obj: Graph | Unrolled) -> str:
    """GraphML of a folded graph (a multigraph) or an unrolled DAG; string attributes only.

    Folded node ids are node names; unrolled ids are ``"name@t"``. Nodes carry ``kind``,
    ``size``, ``activation``, ``biases`` (comma-separated), ``gate`` (and ``node``,
    ``step`` when unrolled); edges carry ``delay`` and ``weight``.

    Examples
    --------
    >>> import unroll
    >>> text = to_graphml(unroll.presets.neuron())
    >>> 'attr.type="string"' in text and 'attr.type="int"' not in text
    True
    """
    if isinstance(obj, Unrolled):
        g = nx.MultiDiGraph(name=obj.graph.name, steps=obj.steps, mode=obj.mode.name)
        doc = _unrolled_document(obj)
        for n in doc["nodes"]:
            g.add_node(
                n["id"],
                kind=n["kind"],
                node=n["name"],
                step=n["step"],
                size=n["size"],
                activation=n["activation"],
                biases=",".join(n["biases"]),
                gate=n["gate"],
            )
        edges = doc["edges"]
    else:
        g = _graph(obj).to_networkx()
        edges = _folded_document(obj)["edges"]
    out = _stringified(g)
    for key, e in enumerate(edges):
        out.add_edge(
            e["source"], e["target"], key=key, delay=str(e["delay"]), weight=e["weight"] or ""
        )
    return "\n".join(nx.generate_graphml(out)) + "\n"


def _to_dot(obj: Graph | Unrolled) -> str:
    from .render import render

    return render(obj).source


#: Export formats by name: each maps a folded or unrolled graph to text.
EXPORTERS: dict[str, Callable[[Graph | Unrolled], str]] = {
    "toml": to_toml,
    "json": to_json,
    "graphml": to_graphml,
    "dot": _to_dot,
}


def export(obj: Graph | Unrolled, fmt: str, params: dict | None = None) -> str:
    """The text of ``obj`` in format ``fmt`` (a key of :data:`EXPORTERS`).

    ``params`` are written by the ``toml`` format only.

    Raises
    ------
    UnrollError
        For an unknown format (with a suggestion).

    Examples
    --------
    >>> import unroll
    >>> export(unroll.presets.neuron(), "json").startswith('{\\n  "schema": "unroll-graph/1"')
    True
    """
    if not isinstance(fmt, str) or fmt not in EXPORTERS:
        raise UnrollError(_unknown("export format", fmt, EXPORTERS))
    if not isinstance(obj, Graph | Unrolled):
        _graph(obj)
    if fmt == "toml":
        return to_toml(obj, params)
    return EXPORTERS[fmt](obj)
