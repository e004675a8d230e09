"""Progress bars that stay silent when output is not a terminal."""

from __future__ import annotations

from typing import Any


def progress(**kwargs: Any):
    """A tqdm bar; ``disable=None`` (the default) hides it when stderr is not a TTY."""
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", None)
    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(**kwargs)
