"""Prompts for the cross-encoder ranker: a user's recent history + one candidate item.

A prompt is a *pair* of texts for a cross-encoder (``[CLS] context [SEP] candidate
[SEP]``):

- the **context** renders :attr:`PromptBuilder.template` with ``{user}`` (the user's
  attributes, e.g. "A 24-year-old man technician.", empty when there are none) and
  ``{history}`` (the most recent ``n_history`` items, *most recent first*, each marked
  "(liked)" / "(disliked)" when ratings exist: rating > ``like_threshold`` is liked);
- the **candidate** is the item's text (title, year, genres).

Truncation keeps the most recent history: the history is cut by count to the last
``n_history`` interactions by timestamp, and it is written newest first, so that when
the tokenizer cuts the context at ``max_length`` tokens (from the right) the oldest
items are the ones dropped.

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lmrec.data.dataset import Dataset
from lmrec.errors import ConfigError
from lmrec.text.templates import template_fields

__all__ = ["DEFAULT_TEMPLATE", "PromptBuilder", "render_history"]

#: Default context template; fields ``{user}`` and ``{history}``.
DEFAULT_TEMPLATE = "{user} Recently watched, most recent first: {history}"

_LIKE_MARKS = {1: " (liked)", 0: " (disliked)", -1: ""}


def render_history(titles: Sequence[str], liked: Sequence[int] | np.ndarray | None = None) -> str:
    """``"A (liked); B (disliked)"`` from titles in display order and like marks (1/0/-1).

    Examples
    --------
    >>> render_history(["Heat", "Up"], [1, 0])
    'Heat (liked); Up (disliked)'
    >>> render_history([])
    'nothing yet'
    """
    if not titles:
        return "nothing yet"
    marks = liked if liked is not None else [-1] * len(titles)
    return "; ".join(f"{t}{_LIKE_MARKS[int(m)]}" for t, m in zip(titles, marks, strict=True))


def check_template(template: str) -> str:
    """Validate a context template: only the fields ``{user}`` and ``{history}``."""
    fields = set(template_fields(template))
    unknown = fields - {"user", "history"}
    if unknown:
        raise ConfigError(
            f"Ranker prompt template {template!r} has unknown field(s) {sorted(unknown)}; "
            "valid fields are {user} and {history}."
        )
    if "history" not in fields:
        raise ConfigError(f"Ranker prompt template {template!r} must contain {{history}}.")
    return template


@dataclass
class PromptBuilder:
    """Builds (context, candidate) text pairs from per-user, time-ordered histories.

    Build one with :meth:`from_dataset` (or directly from arrays, as ``load`` does).

    Parameters
    ----------
    item_texts : list of str
        One text per item, in item-index order (the candidate side).
    item_titles : list of str
        Short item names used inside the history.
    user_texts : list of str
        One attribute text per user (``""`` when there are none).
    indptr, items, liked : ndarray
        CSR-style histories: user ``u``'s items, oldest first, are
        ``items[indptr[u]:indptr[u+1]]``; ``liked`` is 1 / 0 / -1 (no rating).
    template : str
        The context template (fields ``{user}``, ``{history}``).
    n_history : int
        Most recent interactions shown.

    Examples
    --------
    >>> import numpy as np
    >>> b = PromptBuilder(["Heat (1995)", "Up (2009)", "Jaws (1975)"], ["Heat", "Up", "Jaws"],
    ...                   ["A 30-year-old woman."], np.array([0, 2]), np.array([2, 0]),
    ...                   np.array([1, 0]), n_history=5)
    >>> b.pairs(np.array([0]), np.array([1]))
    (['A 30-year-old woman. Recently watched, most recent first: Heat (disliked); Jaws (liked)'], ['Up (2009)'])
    """

    item_texts: list[str]
    item_titles: list[str]
    user_texts: list[str]
    indptr: np.ndarray
    items: np.ndarray
    liked: np.ndarray
    template: str = DEFAULT_TEMPLATE
    n_history: int = 10
    _cache: dict[int, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dataset(
        cls,
        dataset: Dataset,
        *,
        template: str = DEFAULT_TEMPLATE,
        n_history: int = 10,
        like_threshold: float = 3.0,
    ) -> PromptBuilder:
        """Histories (sorted by timestamp when there is one) and texts of ``dataset``."""
        from lmrec.text.templates import item_texts, user_texts

        check_template(template)
        if dataset.items is not None:
            texts = item_texts(dataset)
            titles = (
                [
                    str(t) if isinstance(t, str) and t else str(i)
                    for t, i in zip(
                        dataset.items["title"].tolist(), dataset.item_ids.ids, strict=True
                    )
                ]
                if "title" in dataset.items.columns
                else texts
            )
        else:
            texts = titles = [f"item {i}" for i in dataset.item_ids.ids]
        users = [""] * dataset.n_users
        if dataset.users is not None:
            users = user_texts(dataset)
        uidx = np.asarray(dataset.column("user_idx"), np.int64)
        iidx = np.asarray(dataset.column("item_idx"), np.int64)
        ts = dataset.column("timestamp") if dataset.has_timestamps else np.zeros(len(uidx))
        order = np.lexsort((np.arange(len(uidx)), ts, uidx))  # by user, then time (stable)
        liked = np.full(len(uidx), -1, np.int8)
        if dataset.has_ratings:
            r = dataset.column("rating")
            liked = np.where(np.isnan(r), -1, (r > like_threshold).astype(np.int8)).astype(np.int8)
        indptr = np.zeros(dataset.n_users + 1, np.int64)
        np.cumsum(np.bincount(uidx, minlength=dataset.n_users), out=indptr[1:])
        return cls(
            list(texts),
            list(titles),
            list(users),
            indptr,
            iidx[order],
            liked[order],
            template=template,
            n_history=n_history,
        )

    def context(self, user_idx: int, end: int | None = None) -> str:
        """The context text of ``user_idx`` from the interactions before position ``end``.

        ``end`` counts within the user's time-ordered history (default: all of it),
        so the prompt of a training positive at position ``p`` shows only its past.
        """
        start, stop = int(self.indptr[user_idx]), int(self.indptr[user_idx + 1])
        if end is not None:
            stop = start + min(int(end), stop - start)
        key = user_idx * (1 << 32) + stop
        if key not in self._cache:
            lo = max(start, stop - self.n_history)
            sel = slice(lo, stop)
            titles = [self.item_titles[i] for i in self.items[sel][::-1]]
            text = self.template.format(
                user=self.user_texts[user_idx],
                history=render_history(titles, self.liked[sel][::-1]),
            )
            self._cache[key] = text.strip()
        return self._cache[key]

    def render(
        self, items: np.ndarray, liked: np.ndarray | None = None, user_text: str = ""
    ) -> str:
        """The context of a history given as item indices, oldest first (a new user, or an
        edited history): the last ``n_history`` items, newest first, as :meth:`context`."""
        items = np.asarray(items, np.int64)
        marks = np.full(len(items), -1, np.int8) if liked is None else np.asarray(liked, np.int8)
        lo = max(0, len(items) - self.n_history)
        titles = [self.item_titles[i] for i in items[lo:][::-1]]
        text = self.template.format(
            user=user_text, history=render_history(titles, marks[lo:][::-1])
        )
        return text.strip()

    def pairs(
        self, user_idx: np.ndarray, item_idx: np.ndarray, end: np.ndarray | None = None
    ) -> tuple[list[str], list[str]]:
        """Context and candidate texts for aligned arrays of users and items."""
        ends = [None] * len(user_idx) if end is None else list(end)
        ctx = [self.context(int(u), e) for u, e in zip(user_idx, ends, strict=True)]
        return ctx, [self.item_texts[int(i)] for i in item_idx]

    def positions(self, user_idx: int) -> np.ndarray:
        """Item indices of ``user_idx``'s history, oldest first."""
        return self.items[self.indptr[user_idx] : self.indptr[user_idx + 1]]
