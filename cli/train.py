"""``unroll train``: learn the adding or copy problem with BPTT and watch the gradient's reach."""

from __future__ import annotations

import sys
from collections.abc import Mapping

import click

from unroll.init import INIT_OPTIONS, SCHEMES
from unroll.tasks import TASKS
from unroll.training import OPTIMIZERS

from .params import (
    FIGURE_SUFFIXES,
    STEPS,
    KeyValue,
    OutputPath,
    force_option,
    limits,
    save_figure,
    with_newline,
    write_output,
)

__all__ = ["Truncation", "train"]


class Truncation(click.ParamType):
    """``K1,K2`` for truncated BPTT (every K1 steps, backpropagate through the last K2)."""

    name = "K1,K2"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        parts = [p.strip() for p in str(value).split(",")]
        try:
            k1, k2 = (int(p) for p in parts)
        except ValueError:
            self.fail(f"{value!r} is not K1,K2 (two positive integers, e.g. 10,20)", param, ctx)
        if k1 < 1 or k2 < 1:
            self.fail(f"{value!r}: K1 and K2 must be positive", param, ctx)
        return k1, k2


@click.command("train")
@click.argument("model")
@click.option(
    "--task",
    "task_name",
    type=click.Choice(list(TASKS)),
    default="adding",
    show_default=True,
    help="The problem: adding (sum two marked values) or copy (recall ten symbols).",
)
@click.option(
    "--length",
    "-T",
    type=STEPS,
    default=50,
    show_default=True,
    help="The problem's T: steps of the adding problem, the gap of the copy problem.",
)
@click.option(
    "--iterations",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Parameter updates, one fresh minibatch each.",
)
@click.option(
    "--batch", type=click.IntRange(min=1), default=32, show_default=True, help="Minibatch size."
)
@click.option("--optimizer", type=click.Choice(list(OPTIMIZERS)), default="adam", show_default=True)
@click.option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    help="Learning rate (default 0.001 for adam, 0.01 for sgd).",
)
@click.option(
    "--momentum",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.9,
    show_default=True,
    help="SGD's momentum, Adam's beta1.",
)
@click.option(
    "--clip",
    type=click.FloatRange(min=0, min_open=True),
    help="Rescale the gradient to this global norm when longer (Pascanu et al.).",
)
@click.option("--truncate", type=Truncation(), help="Truncated BPTT K1,K2 (default: full BPTT).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds weights and data.")
@click.option(
    "--init",
    type=click.Choice(list(SCHEMES)),
    default="torch",
    show_default=True,
    help="Parameter initialisation scheme.",
)
@click.option(
    "--init-option",
    "init_options",
    type=KeyValue(),
    multiple=True,
    help="Option of the scheme, repeatable: forget_bias=1, spectral_radius=0.9.",
)
@click.option(
    "--record-every",
    type=click.IntRange(min=1),
    help="Record the gradient profile every N iterations (default: iterations/10).",
)
@click.option(
    "--probe-batch",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help="Sequences in the fixed batch the gradient profiles are measured on.",
)
@click.option(
    "--plot",
    type=OutputPath(FIGURE_SUFFIXES),
    help="Plot the loss with its baseline, and the gradient profiles (.png .svg .pdf).",
)
@click.option(
    "--json", "json_out", type=OutputPath(stdout=True), help="Write the history (- for stdout)."
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@force_option()
def train(
    model,
    task_name,
    length,
    iterations,
    batch,
    optimizer,
    lr,
    momentum,
    clip,
    truncate,
    seed,
    init,
    init_options,
    record_every,
    probe_batch,
    plot,
    json_out,
    quiet,
    force,
):
    """Train MODEL on the adding or copy problem with BPTT, and watch the gradient.

    A preset MODEL (lstm:hidden=32) gets the task's input size; the net gets a
    linear readout y unless it has one. Prints the loss against the memoryless
    baseline and how far back the gradient reaches, before and after training.
    A progress bar runs on stderr when it is a terminal.

    \b
    Examples:
      unroll train lstm:hidden=32 --task adding --length 50 --iterations 2000 --lr 0.01
      unroll train elman:hidden=32 --task adding -T 50 --clip 1 --plot rnn.png
      unroll train gru:hidden=64 --task copy -T 20 --json history.json --quiet
    """
    from unroll.limits import check_run
    from unroll.models import ModelSpecError, load_model_for_task
    from unroll.tasks import make_task
    from unroll.training import train as run_training

    names = [name for name, _ in init_options]
    for name in names:
        if name not in INIT_OPTIONS:
            raise click.BadParameter(
                f"unknown init option {name!r}; options: {', '.join(INIT_OPTIONS)}",
                param_hint="--init-option",
            )
    task = make_task(task_name, length, probe_batch, seed=[seed, 2])
    try:
        resolved = load_model_for_task(model, task)
    except ModelSpecError as e:
        raise click.BadParameter(str(e), param_hint="MODEL") from None
    records = iterations // (record_every or max(1, iterations // 10)) + 1
    check_run(
        "train",
        resolved.graph,
        task.inputs.shape[0],
        iterations + 2 * records,
        max(batch, probe_batch),
        copies=5,  # values, gradients, the optimizer's two moments, the update
        **limits(force, "max_memory", "max_seconds"),
    )
    show = not quiet and sys.stderr.isatty()
    # no iterable given, so mypy cannot infer the bar's item type
    with click.progressbar(  # type: ignore[var-annotated]
        length=iterations,
        label=f"train {resolved.label}",
        file=sys.stderr,
        hidden=not show,
        item_show_func=lambda loss: "" if loss is None else f"loss {loss:.4g}",
    ) as bar:
        history = run_training(
            resolved.graph,
            task,
            iterations,
            optimizer,
            lr,
            momentum,
            batch,
            clip,
            truncate,
            seed,
            record_every,
            progress=lambda done, loss: bar.update(1, loss),
            params=resolved.params if isinstance(resolved.params, Mapping) else None,
            init={"scheme": init, **dict(init_options)},
        )
    history.label = resolved.label
    click.echo(history.summary(), err=json_out == "-")
    if json_out:
        write_output(json_out, with_newline(history.to_json()))
    if plot:
        from unroll.plot import training_figure

        save_figure(training_figure(history), plot)
