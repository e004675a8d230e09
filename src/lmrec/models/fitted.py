"""Fitted attributes: typed once set, and a clear error when read before ``fit``.

A model's learned state (``B_``, ``item_factors_``, ...) exists only after ``fit`` or
``load``. Declared as ``X_: Fitted[np.ndarray] = Fitted()``, the attribute reads as an
``np.ndarray`` (for the type checker too, so the code using it needs no ``None`` checks),
and reading it before it was set raises :class:`~lmrec.errors.NotFittedError` naming the
model and the attribute, instead of failing later on ``None``. Learned state that is
legitimately absent after a fit (a privacy report without differential privacy, text
vectors without a text encoder) stays an ordinary ``X | None`` attribute.

>>> import numpy as np
>>> class Model:
...     weights_: Fitted[np.ndarray] = Fitted()
>>> m = Model()
>>> m.weights_
Traceback (most recent call last):
...
lmrec.errors.NotFittedError: Model is not fitted (weights_ is not set); call .fit(data) first (or Model.load(dir)).
>>> m.weights_ = np.ones(2)
>>> m.weights_.tolist()
[1.0, 1.0]
"""

from __future__ import annotations

from typing import Generic, Self, TypeVar, overload

from lmrec.errors import NotFittedError

T = TypeVar("T")

__all__ = ["Fitted"]


class Fitted(Generic[T]):
    """A data descriptor for one fitted attribute, stored in the instance's ``__dict__``
    (so copies and in-process pickles keep it).

    Parameters
    ----------
    hint : str
        What to call to set it, for the error message.
    """

    def __init__(self, hint: str = "call .fit(data) first (or Model.load(dir))") -> None:
        self.hint = hint
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Self: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> T | Self:
        if obj is None:
            return self
        try:
            value: T = obj.__dict__[self.name]
        except KeyError:
            raise NotFittedError(
                f"{type(obj).__name__} is not fitted ({self.name} is not set); {self.hint}."
            ) from None
        return value

    def __set__(self, obj: object, value: T) -> None:
        obj.__dict__[self.name] = value

    def is_set(self, obj: object) -> bool:
        """Whether ``obj`` has a value for this attribute (without raising)."""
        return self.name in obj.__dict__
