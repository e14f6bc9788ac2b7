"""`python -m srljax ...`: the training command line (see `srljax.cli`)."""
import sys

from srljax.cli import cli

sys.exit(cli())
