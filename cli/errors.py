"""Error handling of the command line: one line on stderr, exit 1 at run time, 2 for usage."""

from __future__ import annotations

import click

from unroll.errors import UnrollError

__all__ = ["UnrollGroup", "one_line"]


def one_line(error: BaseException) -> str:
    """The message of ``error`` on one line (a file error names the file and the reason).

    Examples
    --------
    >>> one_line(FileNotFoundError(2, "No such file or directory", "out/x.svg"))
    'out/x.svg: No such file or directory'
    """
    if isinstance(error, OSError) and error.strerror:
        where = error.filename if error.filename is not None else ""
        return f"{where}: {error.strerror}" if where else error.strerror
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class UnrollGroup(click.Group):
    """A click group that reports library and file errors as ``Error: <one line>``, exit 1.

    Usage errors (bad options, unknown presets) stay click's: exit 2 with the usage line.
    The group's ``--debug`` option lets the traceback through instead.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (UnrollError, OSError) as error:
            if ctx.params.get("debug"):
                raise
            raise click.ClickException(one_line(error)) from None
