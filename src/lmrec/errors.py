"""Every exception and warning lmrec raises, in one place so callers can filter by category.

Exceptions subclass the built-in type a caller would expect (``ValueError`` for bad
values, ``KeyError`` for unknown ids, ``ImportError`` for a missing extra), so code
written against the standard library keeps working.
"""

from __future__ import annotations


class LmrecError(Exception):
    """Base class of every lmrec exception; catch it to handle all of them."""


class DataError(LmrecError, ValueError):
    """Input data is malformed; the message names the file, row and column and the fix."""


class ConfigError(LmrecError, ValueError):
    """A hyperparameter, flag or setting has an invalid value."""


class NotFittedError(LmrecError, RuntimeError):
    """A model was asked to predict before ``fit`` was called."""


class UnknownIdError(LmrecError, KeyError):
    """External user or item ids were not seen at training time.

    Attributes
    ----------
    kind : str
        ``"user"`` or ``"item"``.
    ids : list
        The unknown external ids (at most the first 20 are shown in the message).
    """

    def __init__(self, kind: str, ids: list[object]) -> None:
        self.kind = kind
        self.ids = list(ids)
        shown = ", ".join(repr(i) for i in self.ids[:20])
        more = f" (and {len(self.ids) - 20} more)" if len(self.ids) > 20 else ""
        super().__init__(
            f"{len(self.ids)} unknown {kind} id(s): {shown}{more}. They were not in the "
            f"training data; pass on_unknown='ignore' or 'warn' to skip them."
        )

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return str(self.args[0])


class NonFiniteModelError(LmrecError, ValueError):
    """Fitting produced NaN or infinite parameters; the message names the likely input cause."""


class ModelFileError(LmrecError, ValueError):
    """A model directory is missing, incomplete, tampered with or from an incompatible version."""


class StorageError(LmrecError, OSError):
    """Writing a file or directory failed (disk full, permissions); nothing was replaced."""


class MissingExtraError(LmrecError, ImportError):
    """An optional dependency is not installed; the message gives the pip command."""


class DataWarning(UserWarning):
    """Something in the data was unusual but usable (for example ids only in the catalog)."""
