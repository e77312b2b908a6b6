"""``unroll export``: a model's folded graph, or its unrolled DAG, as TOML, JSON, GraphML or DOT."""

from __future__ import annotations

from pathlib import Path

import click

from unroll.files import EXPORTERS
from unroll.files import export as export_text
from unroll.limits import check_export
from unroll.unrolled import unroll

from .params import MODE, STEPS, OutputPath, force_option, limits, model_argument, write_output

__all__ = ["SUFFIX_FORMATS", "export"]

#: The export format a file suffix implies when ``--format`` is not given.
SUFFIX_FORMATS = {
    ".toml": "toml",
    ".json": "json",
    ".graphml": "graphml",
    ".dot": "dot",
    ".gv": "dot",
}


@click.command()
@model_argument()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(EXPORTERS)),
    help="Output format (default: from the file suffix, else toml).",
)
@click.option("--steps", type=STEPS, help="Export the DAG unrolled over this many steps.")
@click.option(
    "--mode",
    type=MODE,
    default="synced",
    show_default=True,
    help="Sequence mode of the unrolling (with --steps).",
)
@click.option(
    "-o",
    "--output",
    type=OutputPath(stdout=True),
    default="-",
    show_default=True,
    help="Output file, or - for stdout.",
)
@force_option()
def export(model, fmt, steps, mode, output, force):
    """Write MODEL's folded graph (or, with --steps, its unrolled DAG) to a file.

    TOML is the model file format (export, then load: the same graph; parameters a
    model carries go in [params]); JSON is a node-link document (schema
    unroll-graph/1, byte-stable); GraphML has string attributes only; DOT is the
    graphviz source of the diagram.

    \b
    Examples:
      unroll export lstm --format toml -o lstm.toml
      unroll export examples/elman.toml --steps 5 --format json -o elman5.json
      unroll export gru --format graphml -o - | head
    """
    fmt = fmt or SUFFIX_FORMATS.get(Path(output).suffix.lower(), "toml")
    check_export(model.graph, fmt, steps, mode, model.params, **limits(force, "max_bytes"))
    target = (
        unroll(model.graph, steps, mode, **limits(force, "max_nodes")) if steps else model.graph
    )
    write_output(output, export_text(target, fmt, model.params))
