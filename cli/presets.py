"""``unroll presets``: list the preset architectures with their options and defaults."""

from __future__ import annotations

import click

from unroll.models import OPTION_ALIASES, preset_catalog

__all__ = ["format_value", "presets"]


def format_value(value) -> str:
    """An option's default as a user would type it in a MODEL spec.

    Examples
    --------
    >>> [format_value(v) for v in [True, None, 8, "tanh"]]
    ['true', 'none', '8', 'tanh']
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    return "none" if value is None else str(value)


@click.command()
def presets():
    """List the presets, with their options, defaults and one line of doc.

    Give options after a colon: NAME:OPTION=VALUE,OPTION=VALUE. Short names:
    hidden, input, output for hidden_size, input_size, output_size. The stacking
    presets (stacked, bidirectional) also take the chosen cell's options.

    \b
    Example:
      unroll presets
      unroll render stacked:cell=gru,layers=3,hidden=4 -o deep.svg
    """
    rows = preset_catalog()
    width = max(len(row.name) for row in rows) + 2
    for row in rows:
        doc = row.doc.replace("``", "")
        options = ", ".join(f"{k}={format_value(v)}" for k, v in row.options.items())
        click.echo(f"{row.name:<{width}}{doc}")
        click.echo(f"{'':<{width}}{options}")
    aliases = ", ".join(f"{short}={full}" for short, full in OPTION_ALIASES.items())
    click.echo(f"\nshort option names: {aliases}")
