"""Import optional dependencies with an error that says which extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from lmrec.errors import MissingExtraError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``pip install lmrec[extra]``.

    Only a missing ``module`` itself (or its top-level package) is translated; an
    ``ImportError`` raised from inside an installed package propagates unchanged,
    because hiding it would hide a real bug.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        top = module.split(".")[0]
        if e.name is None or e.name.split(".")[0] != top:
            raise
        raise MissingExtraError(
            f"{module!r} is not installed, and this feature needs it. "
            f"Install it with: pip install 'lmrec[{extra}]'"
        ) from e
