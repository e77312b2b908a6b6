"""``unroll render``: draw a model folded, or unrolled over some steps, to SVG/PNG/PDF/DOT."""

from __future__ import annotations

import sys

import click

from unroll.analysis.probes import probe, probe_loss_instances
from unroll.limits import check
from unroll.losses import LOSSES
from unroll.unrolled import unroll

from .grads import data_options, read_given
from .params import MODE, STEPS, OutputPath, force_option, limits, model_argument, write_output

__all__ = ["DEFAULT_MAX_NODES", "DEFAULT_STEPS", "RENDER_SUFFIXES", "render"]

#: Steps drawn when ``--steps`` is not given.
DEFAULT_STEPS = 4

#: The most nodes a diagram may have unless ``--max-nodes`` says otherwise.
DEFAULT_MAX_NODES = 2000

#: File suffixes ``-o`` accepts; ``.dot``/``.gv`` write the DOT source (no ``dot`` needed).
RENDER_SUFFIXES = (".svg", ".png", ".pdf", ".dot", ".gv")


class SpanParam(click.ParamType):
    """``A:B`` as a pair of integers, or (``counts``) one count ``N``.

    ``counts``: steps to draw, ``FIRST:LAST`` of at least one step in all, or ``N >= 1``;
    otherwise a range ``LO:HI`` of whole numbers with ``LO < HI`` (may be negative).
    """

    def __init__(self, counts: bool):
        self.counts = counts
        self.name = "FIRST:LAST" if counts else "LO:HI"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple | int):
            return value
        first, colon, last = str(value).partition(":")
        example = "3:2 or 4" if self.counts else "-8:0"
        try:
            span = int(first) if not colon and self.counts else (int(first), int(last))
        except ValueError:
            self.fail(f"{value!r} is not {self.name} in whole numbers (e.g. {example})", param, ctx)
        if self.counts and not _drawable(span):
            self.fail(f"{value!r}: draw at least one step, no negative counts", param, ctx)
        if not self.counts and isinstance(span, tuple) and span[0] >= span[1]:
            self.fail(f"{value!r}: LO must be below HI (e.g. {example})", param, ctx)
        return span


def _drawable(span) -> bool:
    if isinstance(span, int):
        return span >= 1
    return min(span) >= 0 and sum(span) >= 1


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
    help="Colour nodes by gradient norm (one BPTT run; see --loss).",
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
    "--steps-shown",
    type=SpanParam(counts=True),
    help="Steps drawn at the start and the end of a long sequence, as FIRST:LAST or one "
    "count N (split between both) [default: 3:2 beyond 8 steps].",
)
@click.option(
    "--encoder-steps",
    type=click.IntRange(min=1),
    help="For --mode many-to-many: steps that read input before outputs start "
    "[default: half the steps].",
)
@data_options(
    required=False,
    losses=tuple(sorted(LOSSES)),
    loss_help="For --grads/--values: this loss on the outputs at every loss step of --mode "
    "(on --targets, else seeded targets) [default: mse with --targets, else the sum of the "
    "outputs at the last loss step].",
)
@click.option(
    "--grad-range",
    type=SpanParam(counts=False),
    help="log10 limits LO:HI of the --grads colour scale (e.g. -8:0), so that several "
    "pictures share one scale [default: the drawn norms' range].",
)
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
@click.option("--title", help="Title drawn above the diagram ('' for none).")
@click.option(
    "--caption/--no-caption",
    default=True,
    show_default=True,
    help="Write the lines under the title that explain colours, edges and elisions.",
)
@click.option(
    "--formulas/--no-formulas",
    default=True,
    show_default=True,
    help="Write each layer's formula in its box.",
)
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
    steps_shown,
    encoder_steps,
    grad_range,
    seed,
    mode,
    title,
    caption,
    formulas,
    output,
    max_nodes,
    force,
    **data,
):
    """Draw MODEL, folded (the cycle) or unrolled in time (the DAG BPTT runs on).

    The format comes from the suffix of -o; .dot/.gv and -o - give the DOT source
    and need no graphviz binary, images need `dot`. --grads and --values run BPTT
    once: seeded parameters (or the model's own) and inputs, and the sum of the
    outputs at the last loss step as the loss (or --loss at every loss step); the
    loss node L shows where it sits. --inputs (and --targets) run it on your
    sequences (and your loss), read and checked as `unroll grads` reads them; the
    steps then come from the file.

    \b
    Examples:
      unroll render lstm --steps 5 --highlight cell_state -o lstm.svg
      unroll render elman:hidden=2 --steps 3 --values -o - | dot -Tpng > elman.png
      unroll render examples/gru.toml --folded -o gru.pdf
      unroll render elman --steps 8 --grads --mode many-to-one --grad-range -8:0 -o a.svg
      unroll render model.pt --grads --inputs x.npy --targets y.npy --batch-first -o g.svg
    """
    unrolled_only = {
        "--steps": steps,
        "--grads": grads,
        "--values": values,
        "--steps-shown": steps_shown,
        "--encoder-steps": encoder_steps,
        "--grad-range": grad_range,
        "--full": full,
        **_data_given(data),
    }
    for_unrolled = [name for name, value in unrolled_only.items() if value]
    if folded and for_unrolled:
        raise click.UsageError(
            f"--folded draws the cyclic graph; {', '.join(for_unrolled)}: for the unrolled one only"
        )
    overlays = {"--grad-range": grad_range, **_data_given(data)}
    if not (grads or values) and (needless := [n for n, v in overlays.items() if v]):
        raise click.UsageError(f"{', '.join(needless)}: only with --grads or --values")
    loss, given = read_given(model, data, None) if grads or values else (None, None)
    if given is not None and steps is not None and steps != given.steps:
        raise click.UsageError(
            f"--steps {steps}: the sequences of --inputs {data['inputs']} have {given.steps} steps"
        )
    steps = steps or (given.steps if given is not None else DEFAULT_STEPS)
    if encoder_steps is not None and mode != "many-to-many":
        raise click.UsageError("--encoder-steps: only with --mode many-to-many")
    if encoder_steps is not None and not encoder_steps < steps:
        raise click.UsageError(
            f"--encoder-steps must be below --steps ({steps}): the decoder needs at least one step"
        )
    from unroll.render import render as draw
    from unroll.render import save

    _check_diagram_size(model.graph, max_nodes, force)
    result, loss_at = None, None
    if folded:
        target = model.graph
    elif grads or values:
        target, result = probe(
            model,
            steps,
            seed=seed,
            mode=mode,
            loss=loss,
            encoder_steps=encoder_steps,
            data=given,
            **limits(force),
        )
        loss_at = None if loss else probe_loss_instances(target)
        for warning in result.warnings:  # an overflowed forward pass, named
            click.echo(f"Warning: {warning}", err=True)
    else:
        target = unroll(model.graph, steps, mode, encoder_steps, **limits(force, "max_nodes"))
    digraph = draw(
        target,
        result=result,
        detail=detail,
        direction=direction,
        full=full,
        steps_shown=steps_shown,
        highlight=highlight,
        values=values,
        grads=grads or None,
        grad_range=grad_range,
        loss_at=loss_at,
        title=title,
        caption=caption,
        formulas=formulas,
        voice="cli",
        max_nodes=sys.maxsize if force else max_nodes,
    )
    if output == "-":
        write_output(output, digraph.source)
    else:
        save(digraph, output)


def _data_given(data: dict) -> dict:
    """``{"--inputs": value, ...}`` of the data options (for the checks of what applies)."""
    return {f"--{k.replace('_', '-')}": v for k, v in data.items()}


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
