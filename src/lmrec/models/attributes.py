"""User attributes as groups: the categorical codes that attribute-aware models read.

A data set's ``users`` table (e.g. MovieLens' age, gender, occupation, zip) holds mixed
columns. Models that use them (:class:`~lmrec.models.group_popularity.GroupPopularity`,
:class:`~lmrec.models.onboard.Onboard`) need *groups*: each user's value of one
attribute, or of a combination of attributes, as a label. Numeric columns are cut into
bins (MovieLens' age groups for ``age`` by default, else quintiles of the column);
other columns are used as they are. A user with a missing value has no group (code -1).

Stability: experimental. .. versionadded:: 0.3.0
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from lmrec.errors import DataWarning

__all__ = ["AGE_BINS", "AttributeGroups", "attribute_labels"]

#: MovieLens' age groups (lower edges after the first): under 18, 18-24, ..., 56 and over.
AGE_BINS = (18.0, 25.0, 35.0, 45.0, 50.0, 56.0)
#: Bins of numeric attributes unless a config says otherwise.
DEFAULT_BINS: dict[str, tuple[float, ...]] = {"age": AGE_BINS}


def _bin_labels(column: str, values: pd.Series, edges: Sequence[float]) -> np.ndarray:
    """``"<18"``, ``"18-24"``, ..., ``"56+"`` labels of numeric ``values`` ("" when missing)."""
    edges = sorted(float(e) for e in edges)
    x = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
    idx = np.searchsorted(np.asarray(edges), x, side="right")

    def fmt(v: float) -> str:
        return str(int(v)) if float(v).is_integer() else f"{v:g}"

    names = [f"<{fmt(edges[0])}"] if edges else ["all"]
    names += [
        f"{fmt(lo)}-{fmt(hi - 1) if float(hi).is_integer() and float(lo).is_integer() else fmt(hi)}"
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]
    names += [f"{fmt(edges[-1])}+"] if edges else []
    out = np.array([f"{column} {names[i]}" for i in np.minimum(idx, len(names) - 1)], dtype=object)
    out[np.isnan(x)] = ""
    return out


def attribute_labels(
    users: pd.DataFrame, column: str, bins: Mapping[str, Sequence[float]] | None = None
) -> np.ndarray:
    """One label per user for ``column``: ``"age 25-34"``, ``"gender F"``; ``""`` if missing.

    Examples
    --------
    >>> users = pd.DataFrame({"age": [17, 30, None], "gender": ["F", "M", "F"]})
    >>> attribute_labels(users, "age").tolist(), attribute_labels(users, "gender").tolist()
    (['age <18', 'age 25-34', ''], ['gender F', 'gender M', 'gender F'])
    """
    bins = DEFAULT_BINS if bins is None else bins
    values = users[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        edges = bins.get(column)
        if edges is None:
            finite = values.dropna()
            edges = (
                tuple(np.unique(np.quantile(finite, [0.2, 0.4, 0.6, 0.8]))) if len(finite) else ()
            )
        return _bin_labels(column, values, edges)
    text = values.astype("string")
    return np.array(
        [f"{column} {v}" if not pd.isna(v) and str(v) != "" else "" for v in text], dtype=object
    )


class AttributeGroups:
    """Users' groups for combinations of attributes (e.g. age, gender, age x gender).

    Parameters
    ----------
    users : DataFrame or None
        The data set's user table, aligned with its user ids (``Dataset.users``).
    groups : sequence of sequences of str
        Each entry is a combination of attribute columns; a user's group for it joins
        their labels (``"age 25-34, gender M"``). Combinations naming a column the
        table lacks are left out with a :class:`~lmrec.errors.DataWarning`.
    n_users : int
        Users in the id map (rows of the codes).
    bins : mapping, optional
        Bin edges of numeric columns (default: MovieLens' age groups for ``age``).

    Attributes
    ----------
    codes : ndarray (n_users, n_groups) of int32
        Each user's group per combination (-1: a value is missing).
    vocabularies : list of list of str
        The labels of each combination's groups, indexed by code.
    """

    def __init__(
        self,
        users: pd.DataFrame | None,
        groups: Sequence[Sequence[str]],
        n_users: int,
        bins: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        self.combinations: list[tuple[str, ...]] = []
        columns: list[np.ndarray] = []
        self.vocabularies: list[list[str]] = []
        available = [] if users is None else list(users.columns)
        for combo in groups:
            combo = tuple(combo)
            missing = [c for c in combo if c not in available]
            if missing:
                if users is not None:
                    warnings.warn(
                        f"User attribute(s) {missing} are not in the users table (columns: "
                        f"{available}); the group {combo} is left out.",
                        DataWarning,
                        stacklevel=3,
                    )
                continue
            # No table: only the empty combination has nothing missing.
            parts = [] if users is None else [attribute_labels(users, c, bins) for c in combo]
            labels = np.array(
                [", ".join(p) if all(p) else "" for p in zip(*parts, strict=True)], dtype=object
            )
            vocab = sorted({v for v in labels if v})
            lookup = {v: i for i, v in enumerate(vocab)}
            columns.append(np.array([lookup.get(v, -1) for v in labels], dtype=np.int32))
            self.combinations.append(combo)
            self.vocabularies.append(vocab)
        self.codes = np.column_stack(columns) if columns else np.empty((n_users, 0), np.int32)

    @classmethod
    def from_state(
        cls, codes: np.ndarray, vocabularies: list[list[str]], combinations: list[list[str]]
    ) -> AttributeGroups:
        """Rebuild from saved codes, vocabularies and combinations."""
        self = cls.__new__(cls)
        self.codes = np.asarray(codes, dtype=np.int32)
        self.vocabularies = [list(v) for v in vocabularies]
        self.combinations = [tuple(c) for c in combinations]
        return self

    @property
    def n_features(self) -> int:
        """Columns of :meth:`one_hot`: one per group of every combination."""
        return sum(len(v) for v in self.vocabularies)

    def one_hot(self, user_idx: np.ndarray) -> np.ndarray:
        """float32 (len(user_idx), n_features) indicators of the users' groups."""
        user_idx = np.asarray(user_idx, np.int64)
        out = np.zeros((len(user_idx), self.n_features), np.float32)
        offset = 0
        for k, vocab in enumerate(self.vocabularies):
            code = self.codes[user_idx, k]
            ok = code >= 0
            out[np.flatnonzero(ok), offset + code[ok]] = 1.0
            offset += len(vocab)
        return out

    def describe(self, user_idx: int) -> list[str]:
        """The user's group labels, one per combination (empty when missing)."""
        return [
            self.vocabularies[k][c] if c >= 0 else ""
            for k, c in enumerate(self.codes[int(user_idx)])
        ]
