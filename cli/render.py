"""``unroll render``: draw a model folded, or unrolled over some steps, to SVG/PNG/PDF/DOT."""

from __future__ import annotations

import sys

import click

from unroll.limits import check
from unroll.models import probe
from unroll.unrolled import unroll

from .params import MODE, STEPS, OutputPath, force_option, limits, model_argument, write_output

__all__ = ["DEFAULT_MAX_NODES", "DEFAULT_STEPS", "RENDER_SUFFIXES", "render"]

#: Steps drawn when ``--steps`` is not given.
DEFAULT_STEPS = 4

#: The most nodes a diagram may have unless ``--max-nodes`` says otherwise.
DEFAULT_MAX_NODES = 2000

#: File suffixes ``-o`` accepts; ``.dot``/``.gv`` write the DOT source (no ``dot`` needed).
RENDER_SUFFIXES = (".svg", ".png", ".pdf", ".dot", ".gv")


@click.command()
@model_argument()
@click.option("--steps", type=STEPS, help=f"Time steps to unroll [default: {DEFAULT_STEPS}].")
@click.option("--folded", is_flag=True, help="Draw the cyclic graph, delayed edges as loops.")
@click.option(
    "--detail",
    type=click.Choice(["op", "cell"]),
    default="op",
    show_default=True,
    help="One box per op, or one box per recurrent cell.",
)
@click.option(
    "--grads",
    is_flag=True,
    help="Colour nodes by gradient norm (one BPTT run, loss at the last step).",
)
@click.option("--values", is_flag=True, help="Show values and gradients in the nodes.")
@click.option(
    "--direction",
    type=click.Choice(["LR", "TB"]),
    default="LR",
    show_default=True,
    help="Time runs left to right, or top to bottom.",
)
@click.option(
    "--highlight",
    type=click.Choice(["recurrent", "cell_state"]),
    help="Emphasise the recurrent edges, or the LSTM cell-state path.",
)
@click.option("--full", is_flag=True, help="Draw every step (long sequences are elided).")
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the parameters and inputs for --grads/--values.",
)
@click.option(
    "--mode",
    type=MODE,
    default="synced",
    show_default=True,
    help="Sequence mode: where inputs arrive and losses sit.",
)
@click.option("--title", help="Title drawn above the diagram.")
@click.option(
    "-o",
    "--output",
    type=OutputPath(RENDER_SUFFIXES, stdout=True),
    default="-",
    show_default=True,
    help="Output file (.svg .png .pdf .dot .gv), or - for DOT.",
)
@click.option(
    "--max-nodes",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_NODES,
    show_default=True,
    help="Refuse diagrams with more nodes than this (dot slows down beyond a few "
    "thousand); --force lifts this limit too.",
)
@force_option()
def render(
    model,
    steps,
    folded,
    detail,
    grads,
    values,
    direction,
    highlight,
    full,
    seed,
    mode,
    title,
    output,
    max_nodes,
    force,
):
    """Draw MODEL, folded (the cycle) or unrolled in time (the DAG BPTT runs on).

    The format comes from the suffix of -o; .dot/.gv and -o - give the DOT source
    and need no graphviz binary, images need `dot`. --grads and --values run BPTT
    once: seeded parameters (or the model's own) and inputs, a cotangent of ones on
    the outputs at the last step.

    \b
    Examples:
      unroll render lstm --steps 5 --highlight cell_state -o lstm.svg
      unroll render elman:hidden=2 --steps 3 --values -o - | dot -Tpng > elman.png
      unroll render examples/gru.toml --folded -o gru.pdf
    """
    if folded and (grads or values or steps):
        raise click.UsageError(
            "--folded draws the cyclic graph; --steps, --grads and "
            "--values apply to the unrolled one"
        )
    from unroll.render import render as draw
    from unroll.render import save

    _check_diagram_size(model.graph, max_nodes, force)
    result = None
    if folded:
        target = model.graph
    elif grads or values:
        target, result = probe(model, steps or DEFAULT_STEPS, seed=seed, mode=mode, **limits(force))
        for warning in result.warnings:  # an overflowed forward pass, named
            click.echo(f"Warning: {warning}", err=True)
    else:
        target = unroll(model.graph, steps or DEFAULT_STEPS, mode, **limits(force, "max_nodes"))
    digraph = draw(
        target,
        result=result,
        detail=detail,
        direction=direction,
        full=full,
        highlight=highlight,
        values=values,
        grads=grads or None,
        title=title,
        max_nodes=sys.maxsize if force else max_nodes,
    )
    if output == "-":
        write_output(output, digraph.source)
    else:
        save(digraph, output)


def _check_diagram_size(graph, max_nodes: int, force: bool) -> None:
    """Refuse a graph whose folded form alone exceeds --max-nodes, before laying it out
    (every diagram draws at least one box per node or cell of one step)."""
    if not force:
        check(
            len(graph.nodes),
            max_nodes,
            lambda: (
                f"{graph.name!r} has {len(graph.nodes):,} nodes, more than the "
                f"{max_nodes:,} a diagram may have (--max-nodes)"
            ),
            "--max-nodes N",
        )
