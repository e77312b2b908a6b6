"""Option types and output helpers shared by the commands: MODEL, steps, key=value, files."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import click

from unroll.errors import UnrollError
from unroll.files import atomic_write
from unroll.models import ModelSpec, ModelSpecError, load_model, parse_scalar
from unroll.unrolled import MODES

from .errors import failure

__all__ = [
    "FIGURE_SUFFIXES",
    "MODE",
    "STEPS",
    "KeyValue",
    "ModelParam",
    "OutputPath",
    "force_option",
    "limits",
    "model_argument",
    "one_stdout",
    "parse_scalar",
    "save_figure",
    "with_newline",
    "write_output",
]

#: A positive number of time steps (0 or less is a usage error).
STEPS = click.IntRange(min=1)

#: A sequence mode of :data:`unroll.unrolled.MODES`.
MODE = click.Choice(list(MODES))


class ModelParam(click.ParamType):
    """A MODEL argument: preset spec, TOML file, ``package.module:function`` or ``.pt`` file.

    A name that resolves to nothing is a usage error (exit 2, with the usage line and
    the closest valid name); a file that exists but is malformed, or a model above the
    size limits, is one ``Error: ...`` line naming the file and line, exit 2 as well.
    ``--force`` (read first: it is eager) lifts the limits.
    """

    name = "MODEL"

    def convert(self, value, param, ctx) -> ModelSpec:
        if isinstance(value, ModelSpec):
            return value
        force = bool(ctx and ctx.params.get("force"))
        try:
            return load_model(value, **limits(force, "max_nodes", "max_memory"))
        except ModelSpecError as e:
            self.fail(str(e), param, ctx)
        except (UnrollError, OSError, MemoryError) as e:
            if ctx and ctx.find_root().params.get("debug"):
                raise
            raise failure(e, ctx.command if ctx else None) from None


def model_argument(*, nargs: int = 1):
    """The MODEL argument, as every command takes it."""
    return click.argument("model", type=ModelParam(), nargs=nargs, required=True)


def force_option():
    """``--force``: lift the size limits of unrolling and BPTT."""
    return click.option(
        "--force",
        is_flag=True,
        is_eager=True,  # read before MODEL, whose loading it may lift the limits of
        help="Lift the size limits: 100,000 model nodes, 20 million unrolled node "
        "instances, 8 GiB (or the memory available) for a BPTT run, 2 GiB of declared "
        "parameters, 10 minutes of estimated run time, 256 MiB of export.",
    )


def limits(force: bool, *names: str) -> dict:
    """The size-limit keywords ``names`` (default ``max_nodes`` and ``max_memory``) set to
    ``None`` for ``--force``; without it none, so the library's defaults apply."""
    return dict.fromkeys(names or ("max_nodes", "max_memory")) if force else {}


class KeyValue(click.ParamType):
    """``NAME=VALUE`` read into ``(name, value)`` with :func:`parse_scalar`."""

    name = "NAME=VALUE"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        key, eq, text = value.partition("=")
        if not eq or not key.strip():
            self.fail(f"{value!r} is not NAME=VALUE (e.g. spectral_radius=0.9)", param, ctx)
        return key.strip(), parse_scalar(text)


class OutputPath(click.ParamType):
    """An output file whose suffix is one of ``suffixes`` (``-`` for stdout if allowed)."""

    name = "FILE"

    def __init__(self, suffixes: tuple[str, ...] = (), stdout: bool = False):
        self.suffixes, self.stdout = tuple(s.lower() for s in suffixes), stdout

    def convert(self, value, param, ctx) -> str:
        value = str(value)
        if value == "-":
            if not self.stdout:
                self.fail("cannot write this output to stdout; give a file name", param, ctx)
            return value
        suffix = Path(value).suffix.lower()
        if self.suffixes and suffix not in self.suffixes:
            known = ", ".join(self.suffixes)
            self.fail(
                f"{value!r}: unknown suffix {suffix or '(none)'!r}; use one of {known}", param, ctx
            )
        return value


#: Image formats for matplotlib figures.
FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def one_stdout(**outputs) -> bool:
    """Whether one of ``outputs`` (``--json``, ``--csv``, ...) goes to stdout; two is a
    usage error, since their texts would run together.

    Examples
    --------
    >>> one_stdout(json="-", csv="out.csv"), one_stdout(json=None, csv="x.csv")
    (True, False)
    """
    to_stdout = [name for name, path in outputs.items() if path == "-"]
    if len(to_stdout) > 1:
        options = " and ".join(f"--{name}" for name in to_stdout)
        raise click.UsageError(f"{options} cannot both write to stdout (-); give file names")
    return bool(to_stdout)


def with_newline(text: str) -> str:
    """``text`` ending in exactly one newline if it had none (JSON documents)."""
    return text if text.endswith("\n") else text + "\n"


def write_output(path: str, data: str | bytes) -> None:
    """Write ``data`` to ``path`` atomically, or to stdout when ``path`` is ``-``."""
    if path == "-":
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            click.echo(data, nl=False)
        return
    atomic_write(path, data)


def save_figure(figure, path: str) -> None:
    """Save a matplotlib figure to ``path`` (format from the suffix), atomically."""
    fmt = Path(path).suffix.lstrip(".").lower()
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, bbox_inches="tight")
    atomic_write(path, buffer.getvalue())


def stacked(*decorators):
    """Apply several click decorators as one (the first listed is the outermost)."""

    def apply(function):
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


def measurement_options(
    *, steps_help: str, seeds: int, seeds_help: str, init_help: str, init_option_help: str
):
    """The options every measuring command shares: --steps, --seeds, --init, --init-option,
    --mode."""
    from unroll.init import SCHEMES

    return stacked(
        click.option("--steps", type=STEPS, default=100, show_default=True, help=steps_help),
        click.option(
            "--seeds", type=click.IntRange(min=1), default=seeds, show_default=True, help=seeds_help
        ),
        click.option(
            "--init",
            type=click.Choice(list(SCHEMES)),
            default="torch",
            show_default=True,
            help=init_help,
        ),
        click.option(
            "--init-option", "init_options", type=KeyValue(), multiple=True, help=init_option_help
        ),
        click.option(
            "--mode",
            type=MODE,
            default="many-to-one",
            show_default=True,
            help="Sequence mode: where the loss sits.",
        ),
    )


def report_outputs(*, plot_help: str, json_help: str, csv_help: str):
    """--plot FILE, --json FILE|- and --csv FILE|- for a command that writes a report."""
    return stacked(
        click.option("--plot", type=OutputPath(FIGURE_SUFFIXES), help=plot_help),
        click.option("--json", "json_out", type=OutputPath(stdout=True), help=json_help),
        click.option("--csv", "csv_out", type=OutputPath(stdout=True), help=csv_help),
    )
