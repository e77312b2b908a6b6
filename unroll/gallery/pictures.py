"""The two kinds of picture a gallery entry draws: graphviz diagrams and matplotlib plots.

A :class:`Diagram` is written as an SVG with its DOT source beside it (``<stem>.svg``,
``<stem>.dot``); a :class:`Plot` is a matplotlib figure rendered once, at a fixed dpi and
without the ``Software`` metadata, to PNG bytes (``<stem>.png``). Both are written
atomically, and both give the same bytes every time they are drawn from the same inputs.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import graphviz

from ..files import atomic_write
from ..render import save

__all__ = ["DPI", "Diagram", "Picture", "Plot", "new_figure", "png_bytes", "without_software"]

#: Resolution of every plot, in dots per inch (fixed, so the PNG bytes are too).
DPI = 110


@dataclass(frozen=True)
class Diagram:
    """A graphviz diagram, shown as ``<stem>.svg``, its DOT source in ``<stem>.dot``."""

    stem: str
    digraph: graphviz.Digraph
    alt: str

    @property
    def shown(self) -> str:
        """The file the gallery's README shows."""
        return f"{self.stem}.svg"

    @property
    def files(self) -> tuple[str, ...]:
        """Every file this picture writes, the shown one first."""
        return (f"{self.stem}.svg", f"{self.stem}.dot")

    def write(self, directory: Path) -> list[Path]:
        """Write the DOT source and the SVG (``dot`` runs here) into ``directory``."""
        return [save(self.digraph, directory / name) for name in self.files]


@dataclass(frozen=True)
class Plot:
    """A plot already rendered to PNG bytes, shown as ``<stem>.png``."""

    stem: str
    png: bytes
    alt: str

    @property
    def shown(self) -> str:
        """The file the gallery's README shows."""
        return f"{self.stem}.png"

    @property
    def files(self) -> tuple[str, ...]:
        """Every file this picture writes."""
        return (self.shown,)

    def write(self, directory: Path) -> list[Path]:
        """Write the PNG into ``directory``."""
        path = directory / self.shown
        atomic_write(path, self.png)
        return [path]


Picture = Diagram | Plot


def new_figure(width: float = 8.0, height: float = 5.6, columns: int = 1):
    """A matplotlib figure outside pyplot (no backend, nothing global) and its axes.

    Examples
    --------
    >>> figure, (left, right) = new_figure(12, 4.8, columns=2)
    >>> len(figure.axes)
    2
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(1, columns)
    return figure, axes


def png_bytes(figure) -> bytes:
    """``figure`` as PNG bytes at :data:`DPI`, without metadata that names the software.

    Examples
    --------
    >>> figure, ax = new_figure(2, 1)
    >>> data = png_bytes(figure)
    >>> data[:8] == b"\\x89PNG\\r\\n\\x1a\\n", data == png_bytes(figure), b"Matplotlib" in data
    (True, True, False)
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


_TEXT_CHUNKS = (b"tEXt", b"iTXt", b"zTXt")


def without_software(png: bytes) -> bytes:
    """``png`` without the text chunk that names the program (and version) that wrote it,
    so the bytes do not change with the matplotlib version.

    Examples
    --------
    >>> figure, ax = new_figure(2, 1)
    >>> import io
    >>> buffer = io.BytesIO()
    >>> figure.savefig(buffer, format="png", dpi=DPI)
    >>> b"Software" in buffer.getvalue(), without_software(buffer.getvalue()) == png_bytes(figure)
    (True, True)
    """
    kept, at = [png[:8]], 8
    while at < len(png):
        length = int.from_bytes(png[at : at + 4], "big")
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        if not (kind in _TEXT_CHUNKS and data.split(b"\0", 1)[0] == b"Software"):
            kept.append(png[at : at + 12 + length])
        at += 12 + length
    return b"".join(kept)
