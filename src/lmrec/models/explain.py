"""Why a model recommends an item: history attributions in the model's own score units.

Every model explains through the one protocol of :class:`~lmrec.models.base.Recommender`:

- :meth:`~lmrec.models.base.Recommender.attribute` (dense indices, the fast path) returns
  an :class:`Attribution`: the score of the item for a history, and how much each
  history item contributes to it, computed the way the model really scores;
- :meth:`~lmrec.models.base.Recommender.explain` (external ids) wraps it in an
  :class:`Explanation` with titles and text reasons from an item catalog.

How contributions are computed (the ``method`` of an attribution):

``"exact"``
    Linear models decompose their score exactly, ``score = sum of contributions``:
    EASE (``x_uj * B[j, i]``), item-kNN (``x_uj * S[j, i]``), PureSVD
    (``V_j . V_i``) and ALS, as in implicit's ``explain`` (Hu, Koren and Volinsky 2008,
    section 5: ``c_uj * y_i^T W_u y_j`` with ``W_u`` the inverse of the user's fold-in
    system).
``"occlusion"``
    Every other model: the drop of the item's score when one history item is left out,
    ``score(h) - score(h without j)`` (:func:`occlusion`), through the model's own
    request-time scoring -- ``score_history`` for a
    :class:`~lmrec.models.capabilities.FoldInModel`, ``score_sequences`` (order kept)
    for a :class:`~lmrec.models.capabilities.SequenceModel`, the prompt of the LM ranker.
    For a linear model it equals the exact contribution.

Text reasons (:func:`catalog_reasons`) name what the recommended item shares with the
items that contributed most: genres and other attributes, the year, title words.

Stability: experimental. .. versionadded:: 0.3.0
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lmrec._checks import check_int
from lmrec.data.idmap import as_id_array
from lmrec.errors import ConfigError

__all__ = [
    "Attribution",
    "Catalog",
    "Contribution",
    "Explanation",
    "catalog_reasons",
    "contribution_sentences",
    "exact",
    "occlusion",
]

#: Histories scored per call when occluding (bounds memory to block x n_items scores).
OCCLUSION_BLOCK = 256


@dataclass(frozen=True)
class Attribution:
    """The score of one item for one history and each history item's part in it.

    Attributes
    ----------
    item : int
        Dense index of the explained item.
    history : ndarray of int64
        Dense indices of the history, in the order the model reads it.
    contributions : ndarray of float32
        One value per history item, in the model's score units (higher: pushed the
        item up more).
    score : float
        The item's score for the whole history, as the attribution sees it.
    method : str
        ``"exact"`` (the contributions are the model's own additive terms) or
        ``"occlusion"`` (score drop when the item is left out).
    """

    item: int
    history: np.ndarray
    contributions: np.ndarray
    score: float
    method: str

    def ranking(self) -> np.ndarray:
        """Positions in ``history`` by contribution, largest first (ties: history order)."""
        return np.argsort(-self.contributions, kind="stable")

    def top(self, m: int) -> np.ndarray:
        """Dense item indices of the ``m`` largest contributions."""
        return self.history[self.ranking()[:m]]


def exact(item: int, history: np.ndarray, terms: np.ndarray) -> Attribution:
    """The attribution of a linear model: ``terms`` are the additive parts of the score."""
    terms = np.asarray(terms, dtype=np.float32).reshape(-1)
    return Attribution(item, history, terms, float(terms.astype(np.float64).sum()), "exact")


def row_values(matrix: sp.csr_matrix | None, row: int | None, columns: np.ndarray) -> np.ndarray:
    """``matrix[row, columns]`` as float32: a known user's interaction weights for the
    history items; all ones when ``row`` is None (a history given as items is binary)."""
    columns = np.asarray(columns, dtype=np.int64)
    if row is None or matrix is None:
        return np.ones(len(columns), np.float32)
    r = sp.csr_matrix(matrix[int(row)])
    return np.asarray(r[:, columns].toarray(), dtype=np.float32).reshape(-1)


def column_values(matrix: sp.csr_matrix | np.ndarray, rows: np.ndarray, column: int) -> np.ndarray:
    """``matrix[rows, column]`` as a float32 vector, for a dense or sparse ``matrix``."""
    rows = np.asarray(rows, dtype=np.int64)
    if isinstance(matrix, np.ndarray):
        return np.asarray(matrix[rows, int(column)], dtype=np.float32)
    block = sp.csc_matrix(matrix[:, [int(column)]])
    return np.asarray(block[rows].toarray(), dtype=np.float32).reshape(-1)


def occlusion(
    score: Callable[[list[np.ndarray]], np.ndarray],
    history: np.ndarray,
    *,
    block: int = OCCLUSION_BLOCK,
) -> tuple[float, np.ndarray]:
    """Leave-one-out attribution: ``score(h) - score(h without h[j])`` for every j.

    Parameters
    ----------
    score : callable
        The explained item's score (shape ``(len(rows),)``) after each of a list of
        histories (dense item index arrays, in the order the model reads them), e.g.
        ``lambda rows: model.score_histories(rows, items=[item])[:, 0]``.
    history : ndarray of int
        The history to explain.
    block : int
        Histories per ``score`` call.

    Returns
    -------
    (float, ndarray)
        The item's score for the whole history and the float32 contributions.

    Examples
    --------
    >>> w = np.array([1.0, 2.0, 4.0])
    >>> occlusion(lambda rows: np.array([w[r].sum() for r in rows]), np.array([0, 2]))
    (5.0, array([1., 4.], dtype=float32))
    """
    history = np.asarray(history, dtype=np.int64)
    rows = [history] + [np.delete(history, j) for j in range(len(history))]
    scores = np.empty(len(rows), np.float64)
    for start in range(0, len(rows), block):
        part = rows[start : start + block]
        scores[start : start + len(part)] = np.asarray(score(part)).reshape(-1)
    full = float(scores[0])
    return full, (full - scores[1:]).astype(np.float32)


# ---------------------------------------------------------------------- catalog and text
_STOPWORDS = frozenset(
    "a an and at by de del der des die du el en for from in into is it la le les of on "
    "or part the to with vs".split()
)
_TITLE_WORD = re.compile(r"[^\W\d_][\w'-]*", re.UNICODE)
_YEAR_SUFFIX = re.compile(r"\s*\(\d{4}\)\s*$")


class Catalog:
    """Item attributes for explanations: titles, and what items share.

    Parameters
    ----------
    items : DataFrame
        Indexed by external item id (as :func:`lmrec.data.read_items` returns, or a data
        set's ``items``). A ``title`` column names items; string columns whose values
        hold ``|``-separated lists (genres, tags) and short categorical strings are
        compared value by value; whole-number columns (e.g. ``year``) by equality. Longer
        text columns (descriptions) are left out of the comparisons.

    Examples
    --------
    >>> c = Catalog(pd.DataFrame({"title": ["Heat", "Casino"], "year": [1995, 1995],
    ...                           "genres": ["Action|Crime", "Crime|Drama"]},
    ...                          index=pd.Index(["1", "2"], name="item")))
    >>> c.label("2"), c.label("9")
    ("'Casino' (1995)", 'item 9')
    >>> catalog_reasons(c, "2", ["1"])
    ["Same genre as 'Heat' (1995): Crime.", "From 1995, like 'Heat' (1995)."]
    """

    #: Longest mean length of a string column still compared as categorical values.
    max_category_length: int = 40

    def __init__(self, items: pd.DataFrame) -> None:
        if not isinstance(items, pd.DataFrame):
            raise ConfigError(
                f"An explanation catalog is a DataFrame indexed by item id; got "
                f"{type(items).__name__}. Read one with lmrec.data.read_items."
            )
        frame = items.copy()
        frame.index = frame.index.astype(str)
        self.frame = frame
        self.titles: dict[str, str] = {}
        if "title" in frame.columns:
            col = frame["title"]
            self.titles = {
                i: str(t)
                for i, t in zip(frame.index, col, strict=True)
                if isinstance(t, str) and t.strip()
            }
        self.columns: dict[str, str] = {}  # column -> "set" | "value"
        for name in frame.columns:
            if name == "title":
                continue
            col = frame[name]
            if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
                values = col.dropna()
                if len(values) and bool((values == values.round()).all()):  # years, counts
                    self.columns[name] = "value"
            elif pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col):
                text = col.dropna().astype(str)
                if len(text) and text.str.len().mean() <= self.max_category_length:
                    self.columns[name] = "set"

    def __contains__(self, item: object) -> bool:
        return str(item) in self.frame.index

    def title(self, item: str) -> str | None:
        """The item's title, or None when the catalog has none for it."""
        return self.titles.get(str(item))

    def label(self, item: str) -> str:
        """How text names an item: ``'Title' (year)`` with a catalog title, else ``item <id>``."""
        title = self.title(item)
        if title is None:
            return f"item {item}"
        year = self.value(item, "year") if self.columns.get("year") == "value" else None
        if year is not None and _YEAR_SUFFIX.search(title) is None:
            return f"'{title}' ({year})"
        return f"'{title}'"

    def value(self, item: str, column: str) -> Any:
        """One attribute value of an item (None when missing)."""
        if item not in self.frame.index:
            return None
        v: Any = self.frame.at[item, column]  # any cell of the attribute table
        if pd.isna(v):
            return None
        return int(v) if self.columns.get(column) == "value" else v

    def values(self, item: str, column: str) -> set[str]:
        """The set of values of a list or categorical attribute (``"A|B"`` gives A and B)."""
        v = self.value(item, column)
        if v is None:
            return set()
        return {p.strip() for p in str(v).split("|") if p.strip()}

    def title_words(self, item: str) -> set[str]:
        """Content words of the title (lowercase, without the year and stop words)."""
        title = self.title(item)
        if title is None:
            return set()
        words = _TITLE_WORD.findall(_YEAR_SUFFIX.sub("", title).lower())
        return {w for w in words if len(w) >= 3 and w not in _STOPWORDS}


def _names(labels: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    labels = list(labels)
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"


def catalog_reasons(catalog: Catalog, item: str, contributors: Sequence[str]) -> list[str]:
    """Sentences naming what ``item`` shares with ``contributors`` (external ids, best first).

    One sentence per attribute column with shared values (genres, tags, ...), then one
    per whole-number attribute with the same value (the year), then one for shared title
    words. Empty when the catalog does not know the item or nothing is shared.
    """
    item = str(item)
    if item not in catalog:
        return []
    others = [str(c) for c in contributors if str(c) in catalog]
    out = []
    by_kind = sorted(catalog.columns.items(), key=lambda kv: kv[1] != "set")  # lists first
    for column, kind in by_kind:
        if kind == "set":
            mine = catalog.values(item, column)
            shared: list[str] = []
            with_whom = []
            for other in others:
                common = catalog.values(other, column) & mine
                if common:
                    with_whom.append(catalog.label(other))
                    shared += [v for v in sorted(common) if v not in shared]
            if shared:
                noun = column if len(shared) > 1 else column.rstrip("s")
                out.append(f"Same {noun} as {_names(with_whom)}: {', '.join(shared)}.")
        else:
            mine_v = catalog.value(item, column)
            same = [
                catalog.label(o)
                for o in others
                if mine_v is not None and catalog.value(o, column) == mine_v
            ]
            if same:
                what = f"From {mine_v}" if column == "year" else f"{column} {mine_v}"
                out.append(f"{what}, like {_names(same)}.")
    words = catalog.title_words(item)
    pairs = [(catalog.label(o), sorted(catalog.title_words(o) & words)) for o in others]
    pairs = [(label, common) for label, common in pairs if common]
    if pairs:
        terms = sorted({w for _, common in pairs for w in common})
        out.append(
            f"Its title shares {', '.join(repr(w) for w in terms)} with "
            f"{_names([label for label, _ in pairs])}."
        )
    return out


@dataclass(frozen=True)
class Contribution:
    """One history item's part in an item's score (external id, model score units)."""

    item: str
    contribution: float
    title: str | None = None


@dataclass(frozen=True)
class Explanation:
    """Why ``item`` gets its score for ``user`` (or for a list of items given at request time).

    Attributes
    ----------
    model : str
        Registered name of the model.
    user : str or None
        The known user explained, or None for a history given as items.
    item, title : str
        The explained item and its catalog title (None without a catalog).
    score : float
        The item's score for the history, in the model's units.
    method : str
        ``"exact"`` or ``"occlusion"`` (see :mod:`lmrec.models.explain`).
    n_history : int
        Items in the history that was explained.
    contributions : tuple of Contribution
        The history items that raised the score most, largest first (at most ``n``;
        only positive contributions).
    reasons : tuple of str
        What the item shares with those items in the catalog (empty without one).
    sentences : tuple of str
        The contributions and reasons in plain words.
    """

    model: str
    user: str | None
    item: str
    title: str | None
    score: float
    method: str
    n_history: int
    contributions: tuple[Contribution, ...]
    reasons: tuple[str, ...] = ()
    sentences: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the body of ``lmrec explain`` and ``/v1/explain``)."""
        return {
            "model": self.model,
            "user": self.user,
            "item": self.item,
            "title": self.title,
            "score": self.score,
            "method": self.method,
            "n_history": self.n_history,
            "contributions": [
                {"item": c.item, "title": c.title, "contribution": c.contribution}
                for c in self.contributions
            ],
            "reasons": list(self.reasons),
            "explanation": list(self.sentences),
        }


def contribution_sentences(
    item_label: str, contributions: Sequence[tuple[str, float]], n_history: int
) -> list[str]:
    """Plain words for the contributions: ``(label, value)`` pairs, largest first."""
    if n_history == 0:
        return [
            f"There is no history yet; {item_label} comes from what the model "
            "knows without one (e.g. its popularity or the user's attributes)."
        ]
    if not contributions:
        return [f"None of the {n_history} history items raises the score of {item_label}."]
    out = []
    for label, value in contributions:
        out.append(
            f"You interacted with {label}, which adds {value:+.4g} to the score of {item_label}."
        )
    return out


def check_attribution(
    model: Any,
    scores_histories: bool,
    item_idx: int,
    history: np.ndarray | None,
    user_idx: int | None,
) -> tuple[int, np.ndarray, int | None]:
    """Validate :meth:`Recommender.attribute <lmrec.models.base.Recommender.attribute>`'s
    arguments: ``(item, history, user_idx)``, the history of a known user filled in."""
    if not scores_histories:
        raise ConfigError(
            f"Model {model.name or type(model).__name__!r} cannot explain its scores: it "
            "scores no history given at request time, so no history item can be left "
            "out (models declaring FoldInModel or SequenceModel can)."
        )
    if (history is None) == (user_idx is None):
        raise ConfigError("attribute needs exactly one of history= or user_idx=.")
    item = int(item_idx)
    if not 0 <= item < model.n_items:
        raise ConfigError(f"Item index {item} is out of range [0, {model.n_items}).")
    if user_idx is not None:
        user_idx = int(user_idx)
        if not 0 <= user_idx < len(model.user_ids_):
            raise ConfigError(f"User index {user_idx} is out of range [0, {len(model.user_ids_)}).")
        history = model.user_history(user_idx)
    history = np.asarray(history, dtype=np.int64)
    if len(history) and (history.min() < 0 or history.max() >= model.n_items):
        raise ConfigError(f"History item indices must lie in [0, {model.n_items}).")
    if item in history:
        item_id = model.item_ids_.lookup([item])[0]
        whose = (
            f"user {model.user_ids_.lookup([user_idx])[0]!r}"
            if user_idx is not None
            else "the given history"
        )
        raise ConfigError(
            f"Item {item_id!r} is already in {whose}; explanations are for recommended "
            "items, which the user has not interacted with yet. Pick another item."
        )
    return item, history, user_idx


def explain_ids(
    model: Any,
    item: object,
    *,
    user: object | None,
    items: Iterable[object] | None,
    n: int,
    catalog: pd.DataFrame | Catalog | None,
    on_unknown: str,
) -> Explanation:
    """:meth:`Recommender.explain <lmrec.models.base.Recommender.explain>` on external ids:
    validate, map ids to indices, attribute, and build the explanation."""
    n = check_int(n, "n", where="explain")
    if (user is None) == (items is None):
        raise ConfigError(
            "explain needs exactly one of user= (a known user id) or items= (the item ids "
            "of a new user's history)."
        )
    if isinstance(items, str | bytes):
        raise ConfigError("explain's items= is a list of item ids, not one string.")
    if catalog is not None and not isinstance(catalog, Catalog):
        catalog = Catalog(catalog)
    item_idx = int(model.item_ids_.index([item], kind="item")[0])
    if items is None:  # a known user (exactly one of user and items is given)
        user_idx = int(model.user_ids_.index([user], kind="user")[0])
        attribution = model.attribute(item_idx, user_idx=user_idx)
    else:
        ids = list(items)
        hist = model.item_ids_.index(as_id_array(ids), on_unknown=on_unknown, kind="item")
        attribution = model.attribute(item_idx, hist[hist >= 0])
    return build_explanation(
        attribution,
        model=model.name or type(model).__name__,
        user=None if user is None else str(user),
        item_ids=model.item_ids_.lookup,
        n=n,
        catalog=catalog,
    )


def build_explanation(
    attribution: Attribution,
    *,
    model: str,
    user: str | None,
    item_ids: Callable[[np.ndarray], np.ndarray],
    n: int,
    catalog: Catalog | None,
) -> Explanation:
    """Turn an :class:`Attribution` into an :class:`Explanation` (ids, titles, reasons)."""
    order = attribution.ranking()
    order = order[attribution.contributions[order] > 0][:n]
    top_ids = [str(i) for i in item_ids(attribution.history[order])]
    item = str(item_ids(np.array([attribution.item]))[0])

    def label(i: str) -> str:
        return catalog.label(i) if catalog is not None else f"item {i}"

    def title(i: str) -> str | None:
        return catalog.title(i) if catalog is not None else None

    contribs = tuple(
        Contribution(i, float(attribution.contributions[j]), title(i))
        for i, j in zip(top_ids, order, strict=True)
    )
    reasons = tuple(catalog_reasons(catalog, item, top_ids)) if catalog is not None else ()
    sentences = contribution_sentences(
        label(item), [(label(c.item), c.contribution) for c in contribs], len(attribution.history)
    )
    return Explanation(
        model=model,
        user=user,
        item=item,
        title=title(item),
        score=float(attribution.score),
        method=attribution.method,
        n_history=len(attribution.history),
        contributions=contribs,
        reasons=reasons,
        sentences=(*sentences, *reasons),
    )
