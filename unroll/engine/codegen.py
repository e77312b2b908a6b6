"""Straight-line step programs: Python source written once per loop, compiled with ``exec``.

A loop's scan runs the same few numpy calls at every step; closures per unit, loops over
reads and index arithmetic cost more than the calls themselves at small sizes. A
:class:`Code` collects the lines of one function, binds every array, weight and function
it uses as a local name of that function, and compiles it once per run.
"""

from __future__ import annotations

from collections.abc import Callable
from types import CodeType
from typing import Any

import numpy as np

__all__ = [
    "COLUMN_MAJOR_FROM",
    "KEPT_VALUES",
    "LARGE_STEP",
    "Code",
    "column_major",
    "product_into",
    "row_index",
    "shifted",
]

#: Entries of a unit's step from which a scan does a step's elementwise work at its step,
#: in cache, rather than in one pass over every step in memory before or after it.
LARGE_STEP = 4096
#: The most bytes of a loop layer's values (of small steps) kept for their derivative
#: factors, taken for all steps at once, rather than overwritten by their gradient: six
#: calls a step of an LSTM's backward scan at hidden 8 become one (0.83x its time), where
#: gates of 16 MiB ran 1.12x slower so.
KEPT_VALUES = 8 * 2**20
#: Entries of a float64 weight from which a product at each step of a batch of two or more
#: rows takes the weight column-major (its transpose's memory): OpenBLAS packs it faster,
#: the same bits (an LSTM at hidden 128, batch 32: 119 -> 85 us a product forward, 116 ->
#: 87 backward); smaller weights, one row (a matrix-vector product) or float32 run as fast
#: or faster row-major.
COLUMN_MAJOR_FROM = 2**13


class Code:
    """The source of one generated function and the values its names stand for.

    Examples
    --------
    >>> import numpy as np
    >>> code = Code()
    >>> a = code.bind(np.zeros(3), "a")
    >>> code.line(f"{a}[i] += 1.0", 1)
    >>> add_one = code.function("add_one", "i")
    >>> add_one(2); code.env[a].tolist()
    [0.0, 0.0, 1.0]
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.env: dict[str, Any] = {}
        self._count = 0

    def bind(self, value: Any, hint: str = "v") -> str:
        """A new local name standing for ``value``."""
        name = f"{hint}_{self._count}"
        self._count += 1
        self.env[name] = value
        return name

    def named(self, function: Any) -> str:
        """A new local name for a function the lines call (what op and activation rows'
        ``*_lines`` take as ``name``)."""
        return self.bind(function, "f")

    def line(self, text: str, indent: int) -> None:
        """Append one line at ``indent`` levels (four spaces each)."""
        self.lines.append("    " * indent + text)

    def taken(self, start: int) -> list[str]:
        """Remove and return the lines appended since ``len(lines)`` was ``start``: a block
        to place, once or more, where it belongs."""
        block = self.lines[start:]
        del self.lines[start:]
        return block

    def source(self, name: str, args: str) -> str:
        """The function's text; the bound values become defaults of keyword-only locals."""
        bound = ", ".join(f"{k}={k}" for k in self.env)
        head = f"def {name}({args}{', *, ' if bound else ''}{bound}):"
        body = self.lines or ["    pass"]
        return "\n".join([head, *("    " + line for line in body)]) + "\n"

    def function(self, name: str, args: str) -> Callable:
        """Compile the function; its bound values are fast locals (keyword defaults)."""
        namespace = dict(self.env)
        exec(_compiled(self.source(name, args), name), namespace)
        function = namespace.pop(name)
        for key in self.env:  # its globals keep the builtins only: no reference cycle
            del namespace[key]
        return function


_CACHE: dict[str, CodeType] = {}
_CACHE_SIZE = 256


def _compiled(source: str, name: str) -> CodeType:
    """The code object of ``source``, compiled once: a program runs again and again with
    other arrays bound to the same names."""
    found = _CACHE.get(source)
    if found is None:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))  # the oldest
        found = _CACHE[source] = compile(source, f"<unroll {name}>", "exec")
    return found


def column_major(shape: tuple[int, ...], dtype, batch: int) -> bool:
    """Whether a step's product by a weight of ``shape`` (``(*lead, n, m)``) takes it
    column-major, see :data:`COLUMN_MAJOR_FROM`.

    Examples
    --------
    >>> column_major((128, 512), np.float64, 32), column_major((32, 128), np.float64, 32)
    (True, False)
    """
    large = shape[-1] * shape[-2] >= COLUMN_MAJOR_FROM
    return large and batch >= 2 and np.dtype(dtype) == np.float64


def product_into(code: Code, x: str, weight: np.ndarray, out: str, out_row: np.ndarray) -> str:
    """The text of ``out = x @ weight``, ``out`` a row like ``out_row``: the array's own
    ``dot`` where BLAS may write the row (2-D operands, a contiguous output of one dtype:
    no dispatch through ``np.dot``'s wrapper, the least overhead), else ``np.matmul``."""
    w = code.bind(weight, "w")
    plain = out_row.ndim == 2 and weight.ndim == 2 and out_row.flags.c_contiguous
    if plain and out_row.dtype == weight.dtype:
        return f"{x}.dot({w}, out={out})"
    return f"{code.bind(np.matmul, 'matmul')}({x}, {w}, out={out})"


def row_index(t: str, offset: int, wrap: int, rows: int) -> str:
    """The text of the row holding step ``t`` of an array whose step 0 is at ``offset``:
    no modulo unless the array is a ring (``wrap`` rows of ``rows``)."""
    if wrap == 1:
        return "0"
    return shifted(t, offset) if wrap == rows else f"({shifted(t, offset)}) % {wrap}"


def shifted(t: str, offset: int) -> str:
    """The text of ``t + offset``."""
    return t if offset == 0 else f"{t} + {offset}" if offset > 0 else f"{t} - {-offset}"
