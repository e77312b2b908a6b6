"""``unroll animate``: the backward flow of one BPTT run as a GIF or MP4, for slides."""

from __future__ import annotations

import click

from .explore import echo_warnings, probe_run, probe_run_options
from .params import OutputPath, model_argument

__all__ = ["animate"]


@click.command()
@model_argument()
@click.option(
    "--fps",
    type=click.FloatRange(min=0.1, max=60),
    default=2.0,
    show_default=True,
    help="Frames per second.",
)
@click.option(
    "-o",
    "--output",
    type=OutputPath((".gif", ".mp4")),
    required=True,
    help="The animation to write: .gif, or .mp4 (needs ffmpeg).",
)
@probe_run_options()
def animate(model, fps, output, **options):
    """Animate the gradient flowing back in time through MODEL, one frame per drawn step.

    Each frame paints the copies the gradient front has reached by log10 ||dL/dv|| on the
    explorer's colour scale, with the plot of log10 ||dL/ds_t|| beneath. The run is
    render --grads's: seeded parameters and inputs, ones on the outputs at the last step.

    \b
    Examples:
      unroll animate elman --steps 8 -o flow.gif
      unroll animate lstm:hidden=8 --steps 6 --detail cell -o lstm.mp4
    """
    from unroll.explore.movie import animate as build

    movie = build(model, fps=fps, **probe_run(options))
    echo_warnings([movie.run])
    movie.save(output)
    click.echo(f"wrote {output} ({len(movie.fronts)} frames)", err=True)
