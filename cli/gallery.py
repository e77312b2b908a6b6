"""``unroll gallery``: regenerate the teaching diagrams into a folder."""

from __future__ import annotations

import importlib
import sys

import click

__all__ = ["gallery"]


@click.command()
@click.argument("directory", default="gallery", type=click.Path(file_okay=False))
@click.option("--quiet", "-q", is_flag=True, help="Show no progress.")
def gallery(directory, quiet):
    """Regenerate the gallery of teaching diagrams into DIRECTORY (default: gallery).

    Progress (one line per entry) goes to stderr when it is a terminal.

    \b
    Example:
      unroll gallery out/gallery
    """
    try:
        builder = importlib.import_module("unroll.gallery")
    except ModuleNotFoundError as e:
        if e.name not in ("unroll.gallery", "unroll"):
            raise
        raise click.ClickException(
            "the gallery is not part of this installation (module unroll.gallery is missing)"
        ) from None
    shown = {"progress": _progress} if not quiet and _is_terminal() else {}
    written = builder.build(directory, **shown)
    count = f"{len(written)} files" if hasattr(written, "__len__") else "the gallery"
    click.echo(f"wrote {count} to {directory}", err=True)


def _is_terminal() -> bool:
    return sys.stderr.isatty()


def _progress(done: int, total: int, name: str) -> None:
    """``[ 3/17] sequence-modes`` on stderr, each line over the last, a newline at the end."""
    line = f"\r\033[K[{done:>{len(str(total))}}/{total}] {name}"
    click.echo(line, err=True, nl=done == total)
