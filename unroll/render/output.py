"""Write a diagram to a file, the format taken from the suffix, atomically.

``.dot``/``.gv`` write the DOT text and need no graphviz program; image formats run
``dot``. The bytes go to a temporary file in the target's folder, which then replaces
the target (``os.replace``), so a failure never leaves half a file behind.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import graphviz

from ..atomic import atomic_write
from .errors import DotFailure, RenderError

__all__ = ["FORMATS", "INSTALL_HINT", "save"]

#: Suffix -> format: ``"dot"`` is the DOT source; the others are ``dot -T`` formats.
FORMATS: dict[str, str] = {
    ".dot": "dot",
    ".gv": "dot",
    ".svg": "svg",
    ".png": "png",
    ".pdf": "pdf",
    ".jpg": "jpg",
    ".jpeg": "jpg",
}

INSTALL_HINT = (
    "install graphviz (apt-get install graphviz, brew install graphviz or conda "
    "install graphviz), or save as .dot"
)


def save(digraph: graphviz.Digraph, path, format: str | None = None) -> Path:
    """Write ``digraph`` to ``path``; the format comes from the suffix unless given.

    Parameters
    ----------
    digraph : graphviz.Digraph
        From :func:`unroll.render.render`.
    path : str or Path
    format : str, optional
        One of :data:`FORMATS`' values (``"dot"``, ``"svg"``, ``"png"``, ...).

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    RenderError
        For an unknown suffix or format, when ``dot`` is not installed (image formats
        only), or when ``dot`` fails; no file is left behind.

    Examples
    --------
    >>> import tempfile, pathlib, unroll
    >>> from unroll.render import render
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "neuron.dot"
    >>> save(render(unroll.presets.neuron()), out).read_text().startswith("digraph neuron")
    True
    """
    path = Path(path)
    fmt = _format(path, format)
    data = digraph.source.encode("utf-8") if fmt == "dot" else _pipe(digraph, fmt, path)
    atomic_write(path, data)
    return path


def _format(path: Path, format: str | None) -> str:
    if format is not None:
        if format not in set(FORMATS.values()):
            raise RenderError(
                f"unknown format {format!r} (known: {', '.join(sorted(set(FORMATS.values())))})"
            )
        return format
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise RenderError(
            f"{path}: unknown suffix {suffix or '(none)'!r} (known: {', '.join(FORMATS)})"
        )
    return FORMATS[suffix]


def _pipe(digraph: graphviz.Digraph, fmt: str, path: Path) -> bytes:
    if shutil.which("dot") is None:
        raise DotFailure(
            f"writing {path} needs graphviz's 'dot' program, which is not on PATH: {INSTALL_HINT}"
        )
    try:
        return digraph.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise DotFailure(f"writing {path} needs graphviz's 'dot' program: {INSTALL_HINT}") from None
    except (graphviz.CalledProcessError, subprocess.CalledProcessError) as e:
        detail = (e.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise DotFailure(f"dot failed to write {path}: {detail[0] if detail else e}") from None
