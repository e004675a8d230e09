"""Progress bars that stay silent when output is not a terminal, and quiet model loading."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any


def progress(**kwargs: Any):
    """A tqdm bar; ``disable=None`` (the default) hides it when stderr is not a TTY."""
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", None)
    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(**kwargs)


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence Hugging Face's loading noise inside the block, then restore its settings.

    Loading a small local model printed transformers' "Loading weights" bar (even into
    log files), its info/warning logs and deprecation warnings raised inside
    transformers and peft, none of which a user of lmrec can act on (issue 15.9). The
    block turns off transformers' and huggingface_hub's progress bars, lowers
    transformers' log level to errors and ignores ``FutureWarning``/``DeprecationWarning``
    from those packages; everything is put back afterwards. Errors still raise.
    """
    from lmrec._optional import require

    hf_logging = require("transformers", "lm").utils.logging
    bars_on = hf_logging.is_progress_bar_enabled()
    level = hf_logging.get_verbosity()
    hub_utils: Any = None
    with contextlib.suppress(ImportError):
        import huggingface_hub.utils as hub_utils
    hub_bars_off = hub_utils.are_progress_bars_disabled() if hub_utils is not None else True
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    if hub_utils is not None:
        hub_utils.disable_progress_bars()
    try:
        with warnings.catch_warnings():
            for module in ("transformers", "peft", "sentence_transformers"):
                warnings.filterwarnings("ignore", category=FutureWarning, module=module)
                warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
            yield
    finally:
        if bars_on:
            hf_logging.enable_progress_bar()
        hf_logging.set_verbosity(level)
        if hub_utils is not None and not hub_bars_off:
            hub_utils.enable_progress_bars()
