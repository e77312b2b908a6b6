"""``unroll sweep``: gradient verdicts over a grid of settings (a phase diagram)."""

from __future__ import annotations

import contextlib
import math
import sys

import click

from unroll.analysis.cluster import dask_executor, parse_address
from unroll.analysis.errors import AnalysisError
from unroll.analysis.sweep import ModelFactory, grid_values
from unroll.analysis.sweeplog import SweepLog, read_log
from unroll.models import ModelSpecError

from .params import (
    OutputPath,
    force_option,
    limits,
    measurement_options,
    model_argument,
    one_stdout,
    report_outputs,
    save_figure,
    with_newline,
    write_output,
)

__all__ = ["DaskAddress", "Vary", "grid_values", "stderr_is_terminal", "sweep"]


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


class DaskAddress(click.ParamType):
    """``local:N`` or a scheduler address (``tcp://HOST:PORT``), read into a Cluster."""

    name = "ADDRESS"

    def convert(self, value, param, ctx):
        try:
            return parse_address(value) if isinstance(value, str) else value
        except AnalysisError as e:
            self.fail(str(e), param, ctx)


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
@click.option(
    "--dask",
    type=DaskAddress(),
    help="Run the grid points on a Dask cluster: a scheduler's address "
    "(tcp://127.0.0.1:8786) or local:N (N worker processes here, stopped afterwards). "
    "Same results as one process; needs the dask extra.",
)
@click.option(
    "--jsonl",
    type=OutputPath(),
    help="Write each point as one JSON line as it completes (kept if the sweep stops).",
)
@click.option(
    "--resume",
    type=click.Path(exists=True, dir_okay=False),
    help="Continue a sweep stopped part way: skip the points in this --jsonl file of the "
    "same sweep, and append the rest to it.",
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
    dask,
    jsonl,
    resume,
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
      unroll sweep lstm --vary hidden=8,16,32,64 --jsonl points.jsonl
      unroll sweep lstm --vary hidden=8,16,32,64 --resume points.jsonl
      unroll sweep elman --vary spectral_radius=0.5:1.5:101 --dask tcp://127.0.0.1:8786

    A point that fails is one row with verdict "error" and its message; the sweep
    goes on. With --dask the workers read MODEL themselves: a model file must be at
    the same path on every worker.
    """
    from unroll.analysis import sweep as run_sweep

    to_stdout = one_stdout(json=json_out, csv=csv_out)
    if jsonl and resume and jsonl != resume:
        raise click.UsageError("--resume FILE appends to FILE: give --jsonl the same file or none")
    if dask and workers != 1:
        raise click.UsageError("give --workers or --dask, not both")
    names = [name for name, _ in grid]
    if len(set(names)) != len(names):
        raise click.BadParameter("each setting may be varied once", param_hint="--vary")
    grid = dict(grid)
    _check_grid(model, grid)
    factory = ModelFactory(model.label, init, tuple(sorted(init_options)))
    header = {
        "model": model.label,
        "grid": grid,
        "steps": steps,
        "seeds": seeds,
        "options": {"init": init, "init_options": dict(sorted(init_options)), "mode": mode},
    }
    done = read_log(resume, header) if resume else {}
    total = math.prod(len(values) for values in grid.values())
    show = not quiet and stderr_is_terminal()
    log = SweepLog(resume or jsonl, header, append=bool(resume)) if resume or jsonl else None
    try:
        with (
            _executor(dask) as executor,
            click.progressbar(length=total, label="sweep", file=sys.stderr, hidden=not show) as bar,
        ):
            bar.update(len(done))
            result = run_sweep(
                factory,
                grid,
                steps,
                seeds,
                workers=workers,
                executor=executor,
                mode=mode,
                progress=lambda count, _: bar.update(count - bar.pos),
                on_point=log.write if log else None,
                done=done,
                **limits(force, "max_nodes", "max_memory", "max_points", "max_seconds"),
            )
    except KeyboardInterrupt:
        if log:
            click.echo(
                f"stopped: completed points are in {log.path}; continue with --resume {log.path}",
                err=True,
            )
        raise
    finally:
        if log:
            log.close()
    if len(result.failed) == total:
        raise click.ClickException(f"every grid point failed: {result.failed[0]['error']}")
    click.echo(result.summary_table(), err=to_stdout)
    if json_out:
        write_output(json_out, with_newline(result.to_json()))
    if csv_out:
        write_output(csv_out, result.to_csv())
    if plot:
        from unroll.plot import phase_figure

        save_figure(phase_figure(result), plot)


def _executor(cluster):
    """The Dask cluster's executor while the sweep runs, or None to run it here."""
    return contextlib.nullcontext() if cluster is None else dask_executor(cluster)


def _check_grid(model, grid: dict) -> None:
    """Usage errors in --vary: settings nothing takes, values of the wrong type."""
    factory = ModelFactory(model.label)
    try:
        factory.check(grid)
        factory.check_values(grid, carries_params=model.params is not None)
    except ModelSpecError as e:
        raise click.BadParameter(str(e), param_hint="--vary") from None
