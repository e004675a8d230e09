"""How data errors name a fix: library parameters in Python, command-line flags in the CLI.

A message such as "pass on_invalid='drop'" is right for a Python caller and wrong for a
user of ``lmrec train``, whose flag is ``--drop-invalid``. Readers build their hints
with :func:`fix`, and the CLI runs its commands inside :func:`cli_vocabulary`, so one
message speaks the interface it is read in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["cli_vocabulary", "fix", "in_cli"]

_CLI: ContextVar[bool] = ContextVar("lmrec_data_cli_vocabulary", default=False)

#: Library parameter -> CLI flag. A value is appended as ``--flag VALUE`` unless the
#: (parameter, value) pair has its own flag.
_FLAGS = {
    "user": "--user-col",
    "item": "--item-col",
    "rating": "--rating-col",
    "weight": "--weight-col",
    "timestamp": "--timestamp-col",
    "timestamp_format": "--timestamp-format",
    "on_overflow": "--on-overflow",
    "duplicates": "--duplicates",
    "sep": "--sep",
    "encoding": "--encoding",
}
_PAIRS = {("on_invalid", "drop"): "--drop-invalid", ("header", "False"): "--no-header"}


def in_cli() -> bool:
    """Whether messages should name CLI flags (inside :func:`cli_vocabulary`)."""
    return _CLI.get()


@contextmanager
def cli_vocabulary() -> Iterator[None]:
    """Within this block, :func:`fix` names command-line flags instead of parameters."""
    token = _CLI.set(True)
    try:
        yield
    finally:
        _CLI.reset(token)


def fix(param: str, value: object = None) -> str:
    """``on_overflow='clip'`` in Python, ``--on-overflow clip`` in the CLI.

    ``value`` is shown as a Python literal (``repr`` of a string, the text of anything
    else) or, in the CLI, as typed on the command line; None shows the parameter alone.
    """
    if not _CLI.get():
        if value is None:
            return param
        shown = repr(value) if isinstance(value, str) else str(value)
        return f"{param}={shown}"
    pair = _PAIRS.get((param, str(value)))
    if pair:
        return pair
    flag = _FLAGS.get(param, "--" + param.replace("_", "-"))
    if value is None:
        return flag
    text = str(value)
    return (
        f"{flag} {text!r}" if (not text or any(c in text for c in " \t;|%")) else f"{flag} {text}"
    )
