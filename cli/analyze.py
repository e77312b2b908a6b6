"""``unroll analyze``: how gradients vanish or explode with distance in time, per model."""

from __future__ import annotations

import click

from .grads import data_options, echo_and_write, read_given, refuse_init_for_weights
from .params import (
    force_option,
    limits,
    measurement_options,
    model_argument,
    one_stdout,
    report_outputs,
    save_figure,
)

__all__ = ["analyze"]


@click.command()
@model_argument(nargs=-1)
@measurement_options(
    steps_help="Sequence length: the farthest distance in time measured.",
    seeds=10,
    seeds_help="Random draws of parameters and inputs (median and quantile bands).",
    init_help="Parameter initialisation scheme.",
    init_option_help="Option of the scheme, repeatable: spectral_radius=0.9, forget_bias=1.",
)
@report_outputs(
    plot_help="Plot log10 gradient norm against distance (.png .svg .pdf).",
    json_help="Write the full report as JSON (- for stdout).",
    csv_help="Write the per-step gradient norms as CSV (- for stdout).",
)
@data_options(required=False, losses=("random", "sum", "mse", "xent"))
@force_option()
@click.pass_context
def analyze(
    ctx: click.Context,
    /,
    model,
    steps,
    seeds,
    init,
    init_options,
    mode,
    plot,
    json_out,
    csv_out,
    force,
    **data,
):
    """Measure how gradients vanish or explode with distance in time, for each MODEL.

    Prints one row per model: decay per step (log10), distance at which the
    gradient falls below 1e-3 of its value at the loss, verdict (vanishing /
    exploding / stable) and the share of the gradient from the first steps.

    \b
    Examples:
      unroll analyze elman lstm gru --steps 100 --seeds 10
      unroll analyze elman --init orthogonal --init-option spectral_radius=1.1
      unroll analyze lstm lstm:forget_bias=3 --plot forget.png
      unroll analyze lstm examples/gru.toml --plot norms.png --json report.json
      unroll analyze model.pt --inputs x.npy --targets y.npy --batch-first --mode synced

    With --inputs (and --targets) the run uses your sequences (and the loss on
    them) instead of random ones; --steps then comes from the file.
    """
    from unroll.analysis import analyze as measure
    from unroll.limits import check_run
    from unroll.models import by_label

    one_stdout(json=json_out, csv=csv_out)  # two outputs on stdout: a usage error
    refuse_init_for_weights(ctx, model)
    for each in model:
        # memory is the engine's check (check_memory); here the estimated time
        check_run(
            "analyze", each.graph, steps, seeds, max_memory=None, **limits(force, "max_seconds")
        )
    report = measure(
        by_label(model),
        steps=steps,
        seeds=seeds,
        init=init,
        init_options=dict(init_options),
        mode=mode,
        **_given(model, data),
        **limits(force),
    )
    echo_and_write(report.summary_table(), report, json_out, csv_out)
    if plot:
        from unroll.plot import gradient_figure

        save_figure(gradient_figure(report), plot)


def _given(models, data) -> dict:
    """``analyze``'s ``inputs``/``targets``/``loss`` for --inputs/--targets/--loss."""
    loss, given = read_given(models[0], data, "random")
    if given is None:
        return {"loss": loss}
    return {"inputs": given.inputs, "targets": given.targets, "loss": loss}
