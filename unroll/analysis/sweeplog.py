"""A sweep's points as JSON lines, one written (and fsynced) as each completes, and read back.

The first line is a header naming the sweep (model, grid, steps, seeds, options); each
further line is one point: ``{"point": i, "settings": {...}, "rows": [...]}`` (a failed
point has one row whose ``verdict`` is ``"error"``). A sweep stopped part way (Ctrl-C,
SIGTERM, a crash) leaves every completed point in the file; :func:`read_log` gives them
back so :func:`unroll.analysis.sweep` runs only the rest. A last line cut off mid-write
is dropped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import AnalysisError
from .export import plain

__all__ = ["LINES_SCHEMA", "SweepLog", "SweepLogError", "read_log"]

LINES_SCHEMA = "unroll.analysis.sweep-lines/1"


class SweepLogError(AnalysisError):
    """A file given to resume is not the log of this sweep; the message names the line."""


def _line(doc: dict) -> str:
    return json.dumps(plain(doc), ensure_ascii=False, allow_nan=False, sort_keys=False) + "\n"


class SweepLog:
    """Append points to a JSON-lines file; ``append=False`` starts it afresh with ``header``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "s.jsonl"
    >>> with SweepLog(path, {"grid": {"a": [1, 2]}}) as log:
    ...     log.write(0, {"a": 1}, [{"verdict": "stable"}])
    >>> read_log(path, {"grid": {"a": [1, 2]}})
    {0: [{'verdict': 'stable'}]}
    """

    def __init__(self, path: str | os.PathLike, header: dict, append: bool = False):
        self.path = Path(path)
        self.file = open(self.path, "a" if append else "w", encoding="utf-8")  # noqa: SIM115
        if not append:
            self._put(_line({"schema": LINES_SCHEMA, **header}))

    def _put(self, text: str) -> None:
        self.file.write(text)
        self.file.flush()
        os.fsync(self.file.fileno())

    def write(self, index: int, settings: dict, rows: list[dict]) -> None:
        """Append one completed point."""
        self._put(_line({"point": index, "settings": settings, "rows": rows}))

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> SweepLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_log(path: str | os.PathLike, header: dict) -> dict[int, list[dict]]:
    """The points a log holds, ``{index: rows}``; a cut-off last line is removed from it.

    Raises
    ------
    SweepLogError
        When the file is not a sweep log, was written by a different sweep (naming the
        first setting that differs), or a line other than the last is malformed.
    OSError
        When it cannot be read.
    """
    path = Path(path)
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    complete = lines[:-1]  # everything before the last newline; lines[-1] is cut off or ""
    if not complete:
        raise SweepLogError(f"{path}: empty, not a sweep log (it has no header line)")
    first = _parse(complete[0], path, 1)
    if first.get("schema") != LINES_SCHEMA:
        raise SweepLogError(f"{path}, line 1: not a sweep log (schema {LINES_SCHEMA} expected)")
    expected = json.loads(_line(header))
    for key, value in expected.items():
        if first.get(key) != value:
            raise SweepLogError(
                f"{path}: written by a different sweep: its {key} is {first.get(key)!r}, this "
                f"sweep's is {value!r}"
            )
    done = {}
    for number, text in enumerate(complete[1:], start=2):
        doc = _parse(text, path, number)
        index, rows = doc.get("point"), doc.get("rows")
        if not isinstance(index, int) or not isinstance(rows, list):
            raise SweepLogError(f"{path}, line {number}: not a sweep point")
        done[index] = rows
    if lines[-1]:  # a point cut off while being written: drop it, run it again
        with open(path, "r+b") as f:
            f.truncate(len(raw) - len(lines[-1]))
    return done


def _parse(text: bytes, path: Path, number: int) -> dict:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        doc = None
    if not isinstance(doc, dict):
        raise SweepLogError(f"{path}, line {number}: not a JSON object")
    return doc
