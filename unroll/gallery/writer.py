"""Build the gallery: draw every entry, write its files and the README that shows them.

Diagrams are written as SVG (``dot`` runs in a few threads at once) with their DOT source
beside them, plots as PNG, all atomically; then ``hero.png`` and ``README.md``. Files that
the previous README listed and this build no longer writes are removed, so the folder
holds exactly what its README names. Everything is seeded: building twice gives the same
bytes.
"""

from __future__ import annotations

import html
import os
import re
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..files import atomic_write
from ..render import RenderError, save
from ..render.output import INSTALL_HINT
from .catalogue import ENTRIES, HERO, Entry
from .pictures import Diagram, Picture

__all__ = ["HERO_FILE", "README", "build", "listed_files", "readme_text"]

README = "README.md"
HERO_FILE = "hero.png"
_WORKERS = min(4, os.cpu_count() or 1)
_LINK = re.compile(r'\]\(([^)\s]+)\)|src="([^"]+)"')


def build(
    directory,
    *,
    fast: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[Path]:
    """Write every picture of the gallery, ``hero.png`` and ``README.md`` into ``directory``.

    Parameters
    ----------
    directory : str or path-like
        Created if missing. Files the README there listed before and this build does not
        write are removed; nothing else is touched.
    fast : bool
        Measure with fewer seeds and train for a few iterations only (seconds instead of
        minutes). Diagrams, and so every ``.dot`` file, are the same either way.
    progress : callable, optional
        ``progress(done, total, entry_name)`` after each entry is drawn.

    Returns
    -------
    list of Path
        The files written, in the order the README shows them, then ``hero.png`` and
        ``README.md``.

    Raises
    ------
    RenderError
        When graphviz's ``dot`` program is missing (the SVGs need it).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> written = build(folder, fast=True)                    # doctest: +SKIP
    >>> sorted(listed_files((folder / "README.md").read_text())) == sorted(
    ...     p.name for p in written if p.name != "README.md")  # doctest: +SKIP
    True
    """
    if shutil.which("dot") is None:
        raise RenderError(f"the gallery's diagrams need graphviz's 'dot' program: {INSTALL_HINT}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    old_readme = directory / README
    previous = listed_files(old_readme.read_text("utf-8")) if old_readme.exists() else []
    drawn: list[tuple[Entry, Sequence[Picture]]] = []
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        pending = []
        for done, entry in enumerate(ENTRIES.values(), start=1):
            pictures = entry.draw(fast)
            drawn.append((entry, pictures))
            pending += [pool.submit(picture.write, directory) for picture in pictures]
            if progress is not None:
                progress(done, len(ENTRIES), entry.name)
        written = [path for job in pending for path in job.result()]
    written.append(_write_hero(drawn, directory))
    atomic_write(old_readme, readme_text(drawn))
    written.append(old_readme)
    _remove_stale(directory, previous, {p.name for p in written})
    return written


def _write_hero(drawn, directory: Path) -> Path:
    """``hero.png``: the :data:`~unroll.gallery.catalogue.HERO` diagram as a PNG."""
    for _, pictures in drawn:
        for picture in pictures:
            if isinstance(picture, Diagram) and picture.stem == HERO:
                return save(picture.digraph, directory / HERO_FILE)
    raise LookupError(f"the hero diagram {HERO!r} is not in the catalogue")


def _remove_stale(directory: Path, previous: list[str], kept: set[str]) -> None:
    for name in previous:
        if name not in kept and "/" not in name and name not in (".", ".."):
            (directory / name).unlink(missing_ok=True)


def listed_files(readme: str) -> list[str]:
    """The files a gallery README links to or shows, in order, each once.

    Examples
    --------
    >>> listed_files('![a](x.svg) [x.dot](x.dot) [top](#top) <img src="y.svg"> ![a](x.svg)')
    ['x.svg', 'x.dot', 'y.svg']
    """
    names = [a or b for a, b in _LINK.findall(readme)]
    return list(dict.fromkeys(n for n in names if not n.startswith("#") and "://" not in n))


def _anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as -.

    >>> _anchor("9. Stacked (deep) LSTM and bidirectional RNN")
    '9-stacked-deep-lstm-and-bidirectional-rnn'
    """
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


_INTRO = """\
Teaching pictures for every idea `unroll` is about: recurrence, unrolling in time, the
classic cells, backpropagation through time, and why gradients vanish or explode. Diagrams
are SVG, each with its DOT source beside it (the text graphviz draws from); plots are PNG.
Diagrams count time steps from 1 (`step 1` is `t = 0` in the API); red edges carry a state
from one step to the next.

Everything here is generated by `make gallery` (that is, `unroll gallery gallery`, or
`unroll.gallery.build("gallery")` in Python) from the catalogue in
`unroll/gallery/catalogue.py`: do not edit these files by hand; a test checks that the
diagrams match what the code draws. [hero.png](hero.png) is diagram 11's tanh RNN as a PNG,
for the top of the project's README."""


def readme_text(drawn: list[tuple[Entry, Sequence[Picture]]]) -> str:
    """The gallery's README: contents, then per entry its pictures, caption and sources."""
    headings = [f"{i}. {entry.title}" for i, (entry, _) in enumerate(drawn, start=1)]
    lines = ["# Gallery", "", _INTRO, "", "## Contents", ""]
    lines += [f"- [{h}](#{_anchor(h)})" for h in headings]
    for heading, (entry, pictures) in zip(headings, drawn, strict=True):
        lines += ["", f"## {heading}", "", _pictures(pictures, entry.side_by_side)]
        lines += ["", entry.caption]
        sources = [name for p in pictures for name in p.files if name != p.shown]
        if sources:
            links = " · ".join(f"[{name}]({name})" for name in sources)
            lines += ["", f"<sub>DOT sources: {links}</sub>"]
    return "\n".join(lines) + "\n"


def _pictures(pictures: Sequence[Picture], side_by_side: bool) -> str:
    """The pictures of one entry: Markdown images, or one row of half-width HTML images."""
    if not side_by_side:
        return " ".join(f"![{p.alt}]({p.shown})" for p in pictures)
    width = f"{100 // len(pictures) - 1}%"
    images = " ".join(
        f'<img src="{p.shown}" width="{width}" alt="{html.escape(p.alt)}">' for p in pictures
    )
    return f"<p>{images}</p>"
