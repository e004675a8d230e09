"""Checks of scalar arguments shared by every layer (one definition, one message)."""

from __future__ import annotations

import numpy as np

from lmrec.errors import ConfigError


def check_int(value: object, name: str, *, minimum: int = 1, where: str | None = None) -> int:
    """``value`` as an int >= ``minimum``, or ConfigError naming the parameter.

    ``bool`` is refused although it subclasses ``int`` (``k=True`` is a bug, not 1).

    >>> check_int(np.int64(3), "k")
    3
    >>> check_int(True, "k")
    Traceback (most recent call last):
    ...
    lmrec.errors.ConfigError: The 'k' parameter must be an int >= 1. Got True instead.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        owner = f" of {where}" if where else ""
        raise ConfigError(
            f"The {name!r} parameter{owner} must be an int >= {minimum}. Got {value!r} instead."
        )
    return int(value)


def check_k(k: object, where: str = "recommend") -> int:
    """Validate a list length ``k`` (an int >= 1) for the function named ``where``."""
    return check_int(k, "k", where=where)
