"""The ``unroll`` command group: every command registered, ``--version`` and ``--debug``."""

import click

import unroll

from .analyze import analyze
from .animate import animate
from .errors import UnrollGroup
from .explore import explore
from .export import export
from .gallery import gallery
from .grads import grads
from .presets import presets
from .render import render
from .sweep import sweep
from .train import train

__all__ = ["main"]


@click.group(cls=UnrollGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(unroll.__version__, prog_name="unroll")
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
def main(debug):
    """Unroll recurrent networks in time, run exact BPTT, draw and measure the gradients.

    MODEL, wherever a command takes one, is a preset with options
    (lstm, elman:hidden=16,activation=relu, stacked:cell=gru,layers=2; see
    `unroll presets`), a TOML model file (examples/lstm.toml), a
    package.module:function returning an unroll.Graph, a saved torch state_dict
    (rnn.pt, with the torch extra), a Keras model (model.keras, with the keras
    extra) or an ONNX model (model.onnx, with the onnx extra).

    \b
    Examples:
      unroll render lstm --steps 4 -o lstm.svg
      unroll analyze elman lstm gru --steps 100 --plot norms.png
      unroll export examples/gru.toml --format json -o gru.json
    """


for command in (render, analyze, sweep, train, presets, export, gallery, explore, animate):
    main.add_command(command)
main.add_command(grads)


if __name__ == "__main__":
    main()
