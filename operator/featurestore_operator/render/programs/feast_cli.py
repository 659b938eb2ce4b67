"""Feast's CLI: ``python -c SOURCE ARGS`` runs ``feast ARGS``, after the prelude
(``programs.feast_program``)."""

import sys

from feast.cli.cli import cli

sys.exit(cli(sys.argv[1:], prog_name="feast"))
