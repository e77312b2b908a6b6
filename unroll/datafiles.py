"""Read your sequences from ``.npy``, ``.npz`` (named arrays) and ``.csv`` (a row per step) files.

:func:`read_array` reads one file as it is; :func:`load_data` reads the inputs (and
targets) of a model, checks their shapes against its graph and returns the
:class:`~unroll.analysis.probes.GivenData` that :func:`unroll.analyze` and
``unroll grads`` run on. Every error is one line naming the file.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import InputError

__all__ = ["READERS", "DataFileError", "load_data", "read_array"]


class DataFileError(InputError):
    """A data file that cannot be read or does not fit the model; the message names the file."""


def _read_npy(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in sorted(archive.files)}
    if not arrays:
        raise DataFileError(f"{path}: the archive holds no arrays")
    return arrays


def _read_csv(path: Path) -> np.ndarray:
    """One row per step; a first row that is not numbers is a header."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [(i, line) for i, line in enumerate(lines, start=1) if line.strip()]
    if rows and not _is_numeric_row(rows[0][1]):
        rows = rows[1:]
    if not rows:
        raise DataFileError(f"{path}: no rows of numbers")
    values = []
    for number, line in rows:
        try:
            values.append([float(cell) for cell in line.split(",")])
        except ValueError:
            raise DataFileError(f"{path}, line {number}: not a row of numbers: {line!r}") from None
        if len(values[-1]) != len(values[0]):
            raise DataFileError(
                f"{path}, line {number}: {len(values[-1])} columns, the first row has "
                f"{len(values[0])}"
            )
    return np.array(values)


def _is_numeric_row(line: str) -> bool:
    try:
        [float(cell) for cell in line.split(",")]
    except ValueError:
        return False
    return True


#: The readers by file suffix: each returns an array or ``{name: array}``.
READERS: dict[str, Callable[[Path], np.ndarray | dict[str, np.ndarray]]] = {
    ".npy": _read_npy,
    ".npz": _read_npz,
    ".csv": _read_csv,
}


def read_array(path) -> np.ndarray | dict[str, np.ndarray]:
    """Read ``path``: an array (``.npy``, ``.csv``) or ``{name: array}`` (``.npz``).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    array or dict
        A ``.csv`` gives ``(rows, columns)`` floats, one row per step.

    Raises
    ------
    DataFileError
        One line naming the file: missing, unknown suffix, unreadable, pickled objects.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "x.csv")
    >>> _ = open(path, "w").write("x0,x1\\n1,2\\n3,4\\n")
    >>> read_array(path).tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    """
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise DataFileError(
            f"{path}: unknown suffix {path.suffix or '(none)'!r}; use one of {', '.join(READERS)}"
        )
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    try:
        return reader(path)
    except DataFileError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        text = str(e).strip().splitlines()
        reason = text[0] if text else type(e).__name__
        raise DataFileError(f"{path}: cannot read it as {path.suffix} ({reason})") from None


def _as_sequences(value, path: Path, batch_first: bool, classes: bool = False):
    """A ``.csv`` (one row per step, one sequence) in the array layout of the other files."""
    if path.suffix.lower() != ".csv":
        return value
    if classes:  # one class per step: (T, 1) -> (T, B=1)
        value = value.astype(np.int64)
        value = value if value.shape[1] == 1 else value[:, :1]
        seq = value
    else:
        seq = value[:, None, :]
    return np.swapaxes(seq, 0, 1) if batch_first else seq


def _named(value, path: Path, names: list[str], what: str):
    """An ``.npz`` keeps its names; a single array goes to the only node."""
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and len(names) == 1:
        return {names[0]: next(iter(value.values()))}
    missing = sorted(set(names) - set(value))
    if missing:
        raise DataFileError(
            f"{path}: no array named {missing[0]!r} (it holds {', '.join(value)}; "
            f"name one array per {what} node: {', '.join(names)})"
        )
    return {name: value[name] for name in names}


def load_data(model, graph, inputs, targets=None, loss: str | None = None, batch_first=None):
    """Read ``inputs`` (and ``targets``) files for ``model`` and check them against ``graph``.

    Parameters
    ----------
    model : Graph or imported model
        Its layout decides batch-first where ``batch_first`` is None.
    graph : Graph
    inputs, targets : str or path-like
        ``.npy`` ``(T, B, n)`` (``(B, T, n)`` batch first), ``.npz`` with one array per
        input (output) node by name, ``.csv`` one row per step (one sequence). Targets
        of ``xent`` are integer classes ``(T, B)`` (``.csv``: one column).
    loss : str, optional
        A loss of :mod:`unroll.losses` reading the targets.
    batch_first : bool, optional

    Returns
    -------
    GivenData

    Raises
    ------
    DataFileError
        One line naming the file and the expected shape.

    Examples
    --------
    >>> import os, tempfile, numpy as np, unroll
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(path, np.zeros((6, 2, 3)))
    >>> g = unroll.presets.elman(3, 4)
    >>> load_data(g, g, path).inputs["x"].shape
    (6, 2, 3)
    >>> g2 = unroll.presets.elman(2, 4)
    >>> load_data(g2, g2, path, batch_first=True)
    Traceback (most recent call last):
    ...
    unroll.datafiles.DataFileError: ...x.npy: inputs for 'x' have shape (6, 2, 3), expected ...
    """
    from .analysis.errors import AnalysisError
    from .analysis.probes import given_data, model_is_batch_first

    first = model_is_batch_first(model) if batch_first is None else batch_first
    in_path = Path(inputs)
    xs = _named(read_array(in_path), in_path, graph.input_nodes(), "input")
    xs = _as_sequences(xs, in_path, first) if not isinstance(xs, dict) else xs
    try:
        data = given_data(model, graph, xs, None, None, first)
    except AnalysisError as e:
        raise DataFileError(f"{in_path}: {e}") from None
    if targets is None:
        return type(data)(data.inputs, loss, None)
    t_path = Path(targets)
    ts = _named(read_array(t_path), t_path, graph.output_nodes(), "output")
    if not isinstance(ts, dict):
        ts = _as_sequences(ts, t_path, first, classes=loss == "xent")
    if loss is None:
        raise DataFileError(f"{t_path}: targets need a loss that reads them (mse or xent)")
    per_node = ts if isinstance(ts, dict) else {graph.output_nodes()[0]: ts}
    per_node = {
        k: np.swapaxes(v, 0, 1) if first and v.ndim >= 2 else v for k, v in per_node.items()
    }
    _check_targets(t_path, graph, data, per_node, loss)
    if not isinstance(ts, dict):
        per_node = next(iter(per_node.values()))
    return type(data)(data.inputs, loss, per_node)


def _check_targets(path: Path, graph, data, per_node: dict, loss: str) -> None:
    """Targets are ``(T or loss steps, B, out)``, or ``(.., B)`` classes for xent."""
    for name, t in per_node.items():
        size = graph.nodes[name].size
        tail = (data.batch,) if loss == "xent" else (data.batch, size)
        if t.ndim != 1 + len(tail) or tuple(t.shape[1:]) != tail:
            want = ", ".join(["T", *map(str, tail)])
            raise DataFileError(
                f"{path}: targets for {name!r} have shape {tuple(t.shape)} (time first), "
                f"expected ({want})"
            )
