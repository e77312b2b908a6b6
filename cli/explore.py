"""``unroll explore``: write an interactive, offline HTML page of one or more BPTT runs."""

from __future__ import annotations

import click

from .params import (
    MODE,
    STEPS,
    ModelParam,
    OutputPath,
    force_option,
    limits,
    model_argument,
    stacked,
)

__all__ = ["echo_warnings", "explore", "probe_run", "probe_run_options"]


def probe_run_options():
    """The options of a probe run and its diagram, shared by ``explore`` and ``animate``:
    ``--steps``, ``--detail``, ``--full``, ``--seed``, ``--mode`` and ``--force``."""
    return stacked(
        click.option(
            "--steps", type=STEPS, default=8, show_default=True, help="Time steps to unroll."
        ),
        click.option(
            "--detail",
            type=click.Choice(["op", "cell"]),
            default="op",
            show_default=True,
            help="One box per op, or one box per recurrent cell.",
        ),
        click.option("--full", is_flag=True, help="Draw every step (long sequences are elided)."),
        click.option(
            "--seed", type=int, default=0, show_default=True, help="Seed of parameters and inputs."
        ),
        click.option(
            "--mode",
            type=MODE,
            default="synced",
            show_default=True,
            help="Sequence mode: where inputs arrive and losses sit.",
        ),
        force_option(),
    )


def echo_warnings(runs) -> None:
    """Say on stderr what went wrong in each run (an overflowed forward pass, named)."""
    for run in runs:
        for warning in run.result.warnings:
            click.echo(f"Warning: {run.label}: {warning}", err=True)


def probe_run(options: dict) -> dict:
    """The keywords of :func:`unroll.explore.explore` (and ``animate``) for those options."""
    force = options.pop("force")
    return {**options, **limits(force)}


@click.command()
@model_argument()
@click.option(
    "--compare",
    type=ModelParam(),
    multiple=True,
    metavar="MODEL",
    help="Another model to show beneath, on the same time axis and colour scale (repeat it).",
)
@click.option("--title", help="Title of the page.")
@click.option(
    "-o",
    "--output",
    type=OutputPath((".html", ".htm")),
    required=True,
    help="The page to write (.html).",
)
@probe_run_options()
def explore(model, compare, title, output, **options):
    """Write an interactive page that shows BPTT happen on MODEL (and --compare models).

    One self-contained HTML file, offline: hover a node copy for its value and gradient,
    move the step slider or press play to watch the forward pass fill the copies and the
    gradient flow back in time, painted on one log colour scale, beside a plot of
    log10 ||dL/ds_t|| per state node. The run is render --grads's: seeded parameters and
    inputs, a cotangent of ones on the outputs at the last step.

    \b
    Examples:
      unroll explore elman --steps 8 -o elman.html
      unroll explore elman:hidden=32 --compare lstm:hidden=32 --compare gru:hidden=32 \\
        --steps 100 -o flow.html
    """
    from unroll.explore import explore as build

    page = build(model, compare=compare, title=title, **probe_run(options))
    echo_warnings(page.runs)
    page.save(output)
    click.echo(f"wrote {output}", err=True)
