"""Load any model directory by the name it records; save a model (see :mod:`lmrec.models.files`).

The directory format, its checksums and every format-level check live in
:mod:`lmrec.models.files`; a model class reads its own arrays through
:class:`~lmrec.models.files.StateArrays` in ``_set_state``. Here the recorded name picks
the class from the registry -- never an import string from the file.
"""

from __future__ import annotations

from pathlib import Path

from lmrec.errors import ConfigError, ModelFileError
from lmrec.models.base import Recommender
from lmrec.models.files import MANIFEST, read_manifest, read_model_files
from lmrec.models.registry import get_model_class

__all__ = ["MANIFEST", "load_model", "read_manifest", "save_model"]


def save_model(model: Recommender, path: str | Path, *, overwrite: bool = True) -> Path:
    """Write a fitted model to directory ``path`` atomically (the same as ``model.save``)."""
    return model.save(path, overwrite=overwrite)


def load_model(path: str | Path) -> Recommender:
    """Load any lmrec model directory; the class comes from the registry by its name.

    Raises
    ------
    ModelFileError
        The directory is missing, incomplete, tampered with, from an incompatible
        version, names a model this installation does not have, or holds arrays or
        settings its model does not accept.
    """
    files = read_model_files(path)
    try:
        cls = get_model_class(files.name)
    except ConfigError as e:
        raise ModelFileError(f"{path}: {e}") from e
    return cls.from_files(files)
