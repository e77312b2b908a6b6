"""Error handling of the command line: one ``Error:`` line on stderr, and the exit code.

Anything wrong with what the user gave (arguments, model files, weight files, input
arrays, sizes above a limit) exits 2; a failure while running (disk full, a program
that failed, out of memory, interrupted by Ctrl-C or SIGTERM) exits 1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import warnings

import click

from unroll.errors import LimitError, UnrollError

__all__ = [
    "UnrollGroup",
    "exit_code",
    "failure",
    "one_line",
    "terminate_as_interrupt",
    "warnings_as_lines",
]


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


def exit_code(error: BaseException) -> int:
    """2 for an error in what the user gave, 1 for a failure while running.

    Examples
    --------
    >>> from unroll.errors import GraphError, RunFailure
    >>> exit_code(GraphError("edge h -> g: unknown node 'g'")), exit_code(RunFailure("dot"))
    (2, 1)
    >>> exit_code(OSError(28, "No space left on device", "out.json"))
    1
    """
    return getattr(error, "exit_code", 1) if isinstance(error, UnrollError) else 1


@contextlib.contextmanager
def warnings_as_lines():
    """Show every warning as one ``Warning: ...`` line on stderr, each text once (numpy's
    ``RuntimeWarning: overflow encountered in matmul`` as ``Warning: overflow encountered
    in matmul``), never Python's two lines with the source."""
    with warnings.catch_warnings():
        seen: set[str] = set()

        def show(message, category, filename, lineno, file=None, line=None):
            text = one_line(message) if isinstance(message, Warning) else str(message)
            if text not in seen:
                seen.add(text)
                click.echo(f"Warning: {text}", err=True)

        warnings.showwarning = show
        warnings.simplefilter("default")
        yield


@contextlib.contextmanager
def terminate_as_interrupt():
    """Treat SIGTERM like Ctrl-C while the command runs, so files in progress are cleaned up
    and the command ends with ``Aborted!`` and exit 1."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Failure(click.ClickException):
    """``Error: <message>`` with the exit code of :func:`exit_code`."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        # click declares exit_code a ClassVar; this one exception carries its own code
        self.exit_code = code  # type: ignore[misc]


def failure(error: BaseException, command: click.Command | None) -> click.ClickException:
    """The ``Error: <one line>`` for ``error`` with its exit code; a size limit names
    ``--force`` when ``command`` has that option."""
    if isinstance(error, LimitError) and any(
        p.name == "force" for p in getattr(command, "params", ())
    ):
        message = f"{error.problem}; pass --force to lift the limit"
    elif isinstance(error, MemoryError):
        message = "out of memory (a smaller model, fewer steps or a smaller batch may fit)"
    else:
        message = one_line(error)
    return _Failure(message, exit_code(error))


class UnrollGroup(click.Group):
    """A click group that reports library and file errors as one ``Error: ...`` line.

    The exit code follows :func:`exit_code`; usage errors click finds itself (bad
    options) exit 2 with the usage line. A size limit names the command's ``--force``
    option when it has one. The group's ``--debug`` option lets the traceback through.
    """

    def invoke(self, ctx: click.Context):
        try:
            with warnings_as_lines(), terminate_as_interrupt():
                return super().invoke(ctx)
        except BrokenPipeError:  # `unroll presets | head`: the reader has all it wants
            _silence_stdout()
            ctx.exit(0)
        except (UnrollError, OSError, MemoryError) as error:
            if ctx.params.get("debug"):
                raise
            raise failure(error, self.get_command(ctx, ctx.invoked_subcommand or "")) from None


def _silence_stdout() -> None:
    """Point stdout at /dev/null so Python's exit flush does not hit the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
