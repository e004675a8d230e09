"""Per-epoch training checkpoints: one directory of ``state.safetensors`` + ``state.json``.

A checkpoint holds the parameters, the optimizer state, the number of finished epochs
and the seed everything random is derived from (see :mod:`lmrec.train.distributed`), so
a run resumes exactly, with any number of ranks. It is written atomically (temporary
directory, then rename: a crash mid-write leaves the previous checkpoint intact), by
rank 0 only, and never pickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from lmrec._atomic import atomic_dir
from lmrec._version import __version__
from lmrec.errors import ModelFileError

FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint"


def checkpoint_path(directory: str | Path) -> Path:
    """The checkpoint directory inside ``directory``."""
    return Path(directory) / CHECKPOINT_NAME


def save_checkpoint(
    directory: str | Path, arrays: dict[str, np.ndarray], state: dict[str, Any]
) -> Path:
    """Write ``arrays`` (safetensors) and JSON-able ``state`` atomically; returns the path."""
    from safetensors.numpy import save_file

    path = checkpoint_path(directory)
    meta = {"format_version": FORMAT_VERSION, "lmrec_version": __version__, **state}
    with atomic_dir(path, overwrite=True) as tmp:
        save_file(
            {k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp / "state.safetensors")
        )
        (tmp / "state.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    return path


def load_checkpoint(directory: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays and state saved in ``directory``, or ``None`` when it holds no checkpoint.

    Raises :class:`~lmrec.errors.ModelFileError` for a checkpoint of a newer format.
    """
    from safetensors.numpy import load_file

    path = checkpoint_path(directory)
    if not (path / "state.json").exists():
        return None
    state = json.loads((path / "state.json").read_text())
    if int(state.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} is a checkpoint of format {state['format_version']}; this lmrec reads "
            f"format {FORMAT_VERSION}. Upgrade lmrec to resume from it."
        )
    return load_file(str(path / "state.safetensors")), state
