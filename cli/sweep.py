"""``unroll sweep``: gradient verdicts over a grid of settings (a phase diagram)."""

from __future__ import annotations

import math
import sys

import click
import numpy as np

from unroll.models import ModelFactory, ModelSpecError

from .params import (
    force_option,
    limits,
    measurement_options,
    model_argument,
    one_stdout,
    parse_scalar,
    report_outputs,
    save_figure,
    with_newline,
    write_output,
)

__all__ = ["Vary", "grid_values", "stderr_is_terminal", "sweep", "sweep_table"]


def grid_values(text: str) -> list:
    """Values of ``START:STOP:COUNT`` (evenly spaced, integers if they all are) or ``a,b,c``.

    Examples
    --------
    >>> grid_values("0.5:1.5:3"), grid_values("4:16:4"), grid_values("tanh,relu")
    ([0.5, 1.0, 1.5], [4, 8, 12, 16], ['tanh', 'relu'])
    """
    parts = text.split(":")
    if len(parts) == 1:
        return [parse_scalar(v) for v in text.split(",") if v.strip()]
    if len(parts) != 3:
        raise ValueError(f"{text!r} is neither START:STOP:COUNT nor a comma-separated list")
    start, stop, count = (parse_scalar(p) for p in parts)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (start, stop)):
        raise ValueError(f"{text!r}: START and STOP must be numbers")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"{text!r}: COUNT must be a positive integer")
    values = np.linspace(start, stop, count)
    integral = all(isinstance(v, int) for v in (start, stop)) and np.all(values == np.round(values))
    return [int(v) for v in values] if integral else [float(v) for v in values]


class Vary(click.ParamType):
    """``NAME=START:STOP:COUNT`` or ``NAME=v1,v2,...`` read into ``(name, values)``."""

    name = "NAME=VALUES"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        key, eq, text = value.partition("=")
        if not eq or not key.strip():
            self.fail(f"{value!r} is not NAME=START:STOP:COUNT or NAME=v1,v2,...", param, ctx)
        try:
            values = grid_values(text)
        except ValueError as e:
            self.fail(str(e), param, ctx)
        if not values:
            self.fail(f"{value!r} gives no values", param, ctx)
        return key.strip(), values


def _cell(value) -> str:
    if value is None:
        return "never"
    return f"{value:g}" if isinstance(value, float) else str(value)


def sweep_table(result) -> str:
    """A text table of a sweep: the grid settings, then state, decay, distance, verdict."""
    names = [*result.grid, "state", "decay_per_step", "distance_to_threshold", "verdict"]
    head = [*result.grid, "state", "decay/step", "distance", "verdict"]
    rows = [head]
    for row in result.rows:
        cells = [_cell(row.get(n)) for n in names]
        cells[len(result.grid) + 1] = f"{row['decay_per_step']:+.4f}"
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def stderr_is_terminal() -> bool:
    """Whether stderr is a terminal (the progress bar is shown only there)."""
    return sys.stderr.isatty()


@click.command()
@model_argument()
@click.option(
    "--vary",
    "grid",
    type=Vary(),
    multiple=True,
    required=True,
    help="A setting and its values: NAME=START:STOP:COUNT or NAME=v1,v2 "
    "(repeatable; every combination is one point).",
)
@measurement_options(
    steps_help="Sequence length (or vary steps itself).",
    seeds=5,
    seeds_help="Random draws per point.",
    init_help="Parameter initialisation scheme (or vary init itself).",
    init_option_help="Fixed option of the scheme, repeatable: forget_bias=1.",
)
@report_outputs(
    plot_help="Phase diagram of the verdicts (.png .svg .pdf).",
    json_help="Write the sweep as JSON (- for stdout).",
    csv_help="Write the rows as CSV (- for stdout).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes to run grid points in (same results as 1).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@force_option()
def sweep(
    model,
    grid,
    steps,
    seeds,
    init,
    init_options,
    mode,
    plot,
    json_out,
    csv_out,
    workers,
    quiet,
    force,
):
    """Analyze MODEL at every point of a grid of settings and print the verdicts.

    A setting is one of the preset's options (hidden, activation, ...), an option
    of the init scheme (spectral_radius, spectral_norm, forget_bias), init (the
    scheme) or steps. A progress bar runs on stderr when it is a terminal.

    \b
    Examples:
      unroll sweep elman --vary spectral_radius=0.5:1.5:11 --init orthogonal
      unroll sweep lstm --vary forget_bias=-2,0,2 --vary hidden=8,32 --plot phase.png
      unroll sweep gru --vary steps=10,100,1000 --json - --quiet
    """
    from unroll.analysis import sweep as run_sweep

    to_stdout = one_stdout(json=json_out, csv=csv_out)
    names = [name for name, _ in grid]
    if len(set(names)) != len(names):
        raise click.BadParameter("each setting may be varied once", param_hint="--vary")
    factory = ModelFactory(model.label, init, tuple(sorted(init_options)))
    try:
        factory.check(names)
    except ModelSpecError as e:
        raise click.BadParameter(str(e), param_hint="--vary") from None
    total = math.prod(len(values) for _, values in grid)
    show = not quiet and stderr_is_terminal()
    with click.progressbar(length=total, label="sweep", file=sys.stderr, hidden=not show) as bar:
        result = run_sweep(
            factory,
            dict(grid),
            steps,
            seeds,
            workers=workers,
            mode=mode,
            progress=lambda done, _: bar.update(done - bar.pos),
            **limits(force),
        )
    click.echo(sweep_table(result), err=to_stdout)
    if json_out:
        write_output(json_out, with_newline(result.to_json()))
    if csv_out:
        write_output(csv_out, result.to_csv())
    if plot:
        save_figure(_figure(result), plot)


def _figure(result):
    from matplotlib.figure import Figure

    from unroll.plot import plot_phase

    figure = Figure(figsize=(6, 4.5))
    plot_phase(result, ax=figure.subplots())
    return figure
