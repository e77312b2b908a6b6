"""``unroll gallery``: regenerate the teaching diagrams into a folder."""

from __future__ import annotations

import importlib

import click

__all__ = ["gallery"]


@click.command()
@click.argument("directory", default="gallery", type=click.Path(file_okay=False))
def gallery(directory):
    """Regenerate the gallery of teaching diagrams into DIRECTORY (default: gallery).

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
    written = builder.build(directory)
    count = f"{len(written)} files" if hasattr(written, "__len__") else "the gallery"
    click.echo(f"wrote {count} to {directory}", err=True)
