"""Error handling of the command line: one line on stderr, exit 1 at run time, 2 for usage."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings

import click

from unroll.errors import LimitError, UnrollError, UnrollWarning

__all__ = ["UnrollGroup", "one_line", "warnings_as_lines"]


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


@contextlib.contextmanager
def warnings_as_lines():
    """Show each :class:`~unroll.errors.UnrollWarning` as one ``Warning: ...`` line on stderr
    (other warnings as Python shows them)."""
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, UnrollWarning):
                click.echo(f"Warning: {one_line(message)}", err=True)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        warnings.simplefilter("default", UnrollWarning)
        yield


class UnrollGroup(click.Group):
    """A click group that reports library and file errors as ``Error: <one line>``, exit 1.

    Usage errors (bad options, unknown presets) stay click's: exit 2 with the usage line.
    A size limit names the command's ``--force`` option when it has one. The group's
    ``--debug`` option lets the traceback through instead.
    """

    def invoke(self, ctx: click.Context):
        try:
            with warnings_as_lines():
                return super().invoke(ctx)
        except BrokenPipeError:  # `unroll presets | head`: the reader has all it wants
            _silence_stdout()
            ctx.exit(0)
        except (UnrollError, OSError) as error:
            if ctx.params.get("debug"):
                raise
            raise click.ClickException(self._message(ctx, error)) from None

    def _message(self, ctx: click.Context, error: BaseException) -> str:
        command = self.get_command(ctx, ctx.invoked_subcommand or "")
        if isinstance(error, LimitError) and any(
            p.name == "force" for p in getattr(command, "params", ())
        ):
            return f"{error.problem}; pass --force to lift the limit"
        return one_line(error)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so Python's exit flush does not hit the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
