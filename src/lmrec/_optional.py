"""Import optional dependencies with an error that says which extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from lmrec import _threads
from lmrec.errors import MissingExtraError


def require(module: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``pip install lmrec[extra]``.

    Only a missing ``module`` itself (or its top-level package) is translated; an
    ``ImportError`` raised from inside an installed package propagates unchanged,
    because hiding it would hide a real bug. ``extra=None`` marks a core dependency,
    whose absence means a broken installation.

    Every import of a threaded runtime in lmrec (torch, numba, implicit,
    transformers, sentence-transformers) comes through here, so that
    :func:`lmrec._threads.configure` sets the OpenMP wait policy and thread counts
    before the runtime loads and reads them.
    """
    if _threads.loads_threads(module):
        _threads.configure()
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        top = module.split(".")[0]
        if e.name is None or e.name.split(".")[0] != top:
            raise
        fix = f"pip install 'lmrec[{extra}]'" if extra else "pip install --force-reinstall lmrec"
        raise MissingExtraError(
            f"{module!r} is not installed, and this feature needs it. Install it with: {fix}"
        ) from e
    _threads.after_import(module)
    return mod
