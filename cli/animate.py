"""``unroll animate``: the backward flow of one BPTT run as a GIF or MP4, for slides."""

from __future__ import annotations

import click

from .params import MODE, STEPS, OutputPath, force_option, limits, model_argument

__all__ = ["animate"]


@click.command()
@model_argument()
@click.option("--steps", type=STEPS, default=8, show_default=True, help="Time steps to unroll.")
@click.option(
    "--fps",
    type=click.FloatRange(min=0.1, max=60),
    default=2.0,
    show_default=True,
    help="Frames per second.",
)
@click.option(
    "--detail",
    type=click.Choice(["op", "cell"]),
    default="op",
    show_default=True,
    help="One box per op, or one box per recurrent cell.",
)
@click.option("--full", is_flag=True, help="Draw every step (long sequences are elided).")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of parameters and inputs."
)
@click.option(
    "--mode",
    type=MODE,
    default="synced",
    show_default=True,
    help="Sequence mode: where inputs arrive and losses sit.",
)
@click.option(
    "-o",
    "--output",
    type=OutputPath((".gif", ".mp4")),
    required=True,
    help="The animation to write: .gif, or .mp4 (needs ffmpeg).",
)
@force_option()
def animate(model, steps, fps, detail, full, seed, mode, output, force):
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

    movie = build(
        model, steps=steps, seed=seed, mode=mode, fps=fps, detail=detail, full=full, **limits(force)
    )
    movie.save(output)
    click.echo(f"wrote {output} ({len(movie.fronts)} frames)", err=True)
