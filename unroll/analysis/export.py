"""Plain JSON and CSV values from numpy data: non-finite numbers to null, floats to 17 digits."""

from __future__ import annotations

import math
import platform
from collections.abc import Mapping

import numpy as np

__all__ = ["csv_cell", "plain", "plain_list", "versions"]


def plain(value):
    """``value`` as JSON-able Python data: numpy scalars unwrapped, ``nan``/``inf`` to ``None``.

    Mappings keep their order (keys as strings); objects with ``to_dict`` are converted.

    Examples
    --------
    >>> plain({"a": np.float64(0.5), "b": [np.int64(2), float("-inf")], "c": (1, "x")})
    {'a': 0.5, 'b': [2, None], 'c': [1, 'x']}
    """
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if hasattr(value, "to_dict"):
        return plain(value.to_dict())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def plain_list(values) -> list:
    """A float array as a flat list of floats, ``None`` where not finite."""
    return [plain(float(v)) for v in np.asarray(values, dtype=float).ravel()]


def csv_cell(value) -> str:
    """One CSV cell: floats with 17 significant digits (``-inf``, ``nan`` spelled out),
    ``None`` as empty.

    Examples
    --------
    >>> csv_cell(0.1), csv_cell(float("-inf")), csv_cell(None), csv_cell("tanh")
    ('0.10000000000000001', '-inf', '', 'tanh')
    """
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return format(float(value), ".17g")
    if isinstance(value, (np.integer, np.bool_)):
        return str(value.item())
    return str(value)


def versions() -> dict:
    """The versions that produced a result: unroll, numpy, python."""
    from .. import __version__

    return {"unroll": __version__, "numpy": np.__version__, "python": platform.python_version()}
