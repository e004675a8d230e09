"""``python -m lmrec`` runs the command line."""

from lmrec.cli import entry

entry()
