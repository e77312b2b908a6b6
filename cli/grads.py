"""``unroll grads``: the per-step gradient norms of one run of a model on your sequences."""

from __future__ import annotations

import click

from .params import (
    MODE,
    OutputPath,
    model_argument,
    one_stdout,
    stacked,
    with_newline,
    write_output,
)

__all__ = [
    "data_options",
    "echo_and_write",
    "grads",
    "read_data",
    "read_given",
    "refuse_init_for_weights",
]


def data_options(*, required: bool, losses: tuple[str, ...], loss_help: str | None = None):
    """--inputs FILE, --targets FILE, --loss and --batch-first, for commands reading data."""
    return stacked(
        click.option(
            "--inputs",
            type=click.Path(dir_okay=False),
            required=required,
            help="Input sequences: .npy (T, B, n), .npz (one array per input node), .csv "
            "(one row per step).",
        ),
        click.option(
            "--targets",
            type=click.Path(dir_okay=False),
            help="Targets of the loss, laid out like the inputs (xent: integer classes).",
        ),
        click.option(
            "--loss",
            type=click.Choice(losses),
            help=loss_help
            or "The loss: mse or xent on --targets (the default with targets), or "
            f"{' / '.join(x for x in losses if x not in ('mse', 'xent'))} without.",
        ),
        click.option(
            "--batch-first",
            is_flag=True,
            help="The .npy/.npz arrays are (B, T, n) instead of (T, B, n).",
        ),
    )


def read_data(model, inputs, targets, loss, batch_first):
    """The checked data of the files, or a usage error (exit 2) naming the file."""
    from unroll.datafiles import DataFileError, load_data

    if targets is not None and inputs is None:
        raise click.UsageError("--targets needs --inputs (the sequences the targets belong to)")
    if targets is not None and loss not in ("mse", "xent"):
        raise click.UsageError(f"--targets needs --loss mse or xent, not {loss}")
    try:
        real = loss if targets is not None else None
        return load_data(model.graph, model.graph, inputs, targets, real, batch_first)
    except DataFileError as e:
        raise click.UsageError(str(e)) from None


def read_given(model, data: dict, default: str | None):
    """The loss and the checked sequences (None without --inputs) of :func:`data_options`.

    ``data`` holds the options' values (``inputs``, ``targets``, ``loss``,
    ``batch_first``); the loss is --loss, else ``mse`` with --targets, else ``default``.
    """
    loss = data["loss"] or ("mse" if data["targets"] else default)
    if data["inputs"] is None:
        if data["targets"] is not None:
            raise click.UsageError("--targets needs --inputs (the sequences the targets belong to)")
        if data["batch_first"]:
            raise click.UsageError("--batch-first: only with --inputs")
        return loss, None
    return loss, read_data(model, data["inputs"], data["targets"], loss, data["batch_first"])


def refuse_init_for_weights(ctx: click.Context, models) -> None:
    """--init and --init-option do not apply to a model that has its own weights."""
    given = [
        f"--{name.replace('_', '-').rstrip('s')}"
        for name in ("init", "init_options")
        if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
    ]
    with_weights = [m.label for m in models if m.params is not None]
    if given and with_weights:
        verb = "does" if len(given) == 1 else "do"
        raise click.UsageError(
            f"{' and '.join(given)} {verb} not apply to {with_weights[0]}: it has its own weights"
        )


@click.command()
@model_argument()
@data_options(required=True, losses=("mse", "xent", "sum"))
@click.option("--mode", type=MODE, default="synced", show_default=True, help="Where the loss sits.")
@click.option(
    "--encoder-steps",
    type=click.IntRange(min=1),
    help="For --mode many-to-many: steps that read inputs before the outputs start.",
)
@click.option("--json", "json_out", type=OutputPath(stdout=True), help="Write JSON (- for stdout).")
@click.option("--csv", "csv_out", type=OutputPath(stdout=True), help="Write CSV (- for stdout).")
def grads(model, mode, encoder_steps, json_out, csv_out, **data):
    """Print ||dL/ds_t|| of every state node at every step of one run of MODEL on --inputs.

    A model with its own weights (rnn.pt, model.keras, model.onnx, a TOML file
    with weights) runs with them; a preset with its init (torch unless it says) of seed 0.
    Without --targets the loss is the sum of the outputs (dL/dy = 1).

    \b
    Examples:
      unroll grads model.pt --inputs x.npy --targets y.npy --batch-first
      unroll grads model.pt --inputs x.csv --mode many-to-one --json -
    """
    from unroll.analysis.stepnorms import step_grad_norms

    _, given = read_given(model, data, "sum")
    params = model.params_for(seed=0)  # its own weights, or drawn as the spec says
    norms = step_grad_norms(model.graph, params, given, mode=mode, encoder_steps=encoder_steps)
    echo_and_write(norms.table(), norms, json_out, csv_out)


def echo_and_write(table: str, result, json_out, csv_out) -> None:
    """Print ``table`` (on stderr when JSON or CSV go to stdout), write ``--json``/``--csv``."""
    to_stdout = one_stdout(json=json_out, csv=csv_out)
    click.echo(table, err=to_stdout)
    if json_out:
        write_output(json_out, with_newline(result.to_json()))
    if csv_out:
        write_output(csv_out, result.to_csv())
