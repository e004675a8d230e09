"""The installed lmrec version, stamped into every model file."""

__version__ = "0.1.0"
