"""``python -m unroll`` runs the command line."""

from unroll.cli.main import main

main(prog_name="unroll")
