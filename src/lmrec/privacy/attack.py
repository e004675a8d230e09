"""Privacy attacks used to *measure* leakage: membership inference and list differencing.

Membership inference (:func:`membership_auc`)
    The attacker knows a target person's items and can query the model with an item
    list (the fold-in of new users, or the service's ``/recommend`` for a history). A
    model that memorised the person ranks the rest of their items unusually high from
    part of them. For each target the history is split at random into a half shown to
    the model and a hidden half; the attack score is the mean percentile rank of the
    hidden items among all items not shown. The AUC of that score between two groups
    (members vs non-members, or forgotten vs never-seen users) is the attack's success:
    0.5 means it cannot tell them apart.

List differencing (:func:`similar_list_attack`)
    Calandrino et al. (IEEE S&P 2011): an attacker who watches a public "similar items"
    list before and after a person adds items, and knows some of that person's older
    items, guesses that items newly appearing in the lists of the known items are the
    person's new ones.

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmrec.errors import ConfigError
from lmrec.models.base import Recommender, history_matrix
from lmrec.models.capabilities import FoldInModel, SequenceModel, declares

__all__ = ["ListAttackResult", "auc", "membership_auc", "membership_scores", "similar_list_attack"]


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve of scores ``positive`` (should be high) vs ``negative``
    (the Mann-Whitney U statistic over both sizes; ties count one half).

    >>> auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])), auc(np.array([1.0]), np.array([1.0]))
    (1.0, 0.5)
    """
    from scipy.stats import rankdata

    pos, neg = np.asarray(positive, float), np.asarray(negative, float)
    if len(pos) == 0 or len(neg) == 0:
        raise ConfigError("auc needs at least one score in each group.")
    ranks = rankdata(np.concatenate([pos, neg]))
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def membership_scores(
    model: Recommender, histories: Sequence[np.ndarray], *, seed: int = 0
) -> np.ndarray:
    """The attack score of each history (dense item indices of the model): the mean
    percentile rank (1 = top) of a random hidden half given the other half.

    Histories with fewer than 2 items score NaN (nothing to hide). A sequence model
    (:class:`~lmrec.models.capabilities.SequenceModel`) is shown the half in the order of
    the history (give histories oldest first); other models get it as an item set.
    """
    sequential = declares(model, SequenceModel)
    if not sequential and not declares(model, FoldInModel):
        raise ConfigError(
            f"The membership attack queries a model with item lists; {model.name!r} cannot "
            "score a history given at query time."
        )
    rng = np.random.default_rng(seed)
    shown, hidden = [], []
    for given in histories:
        h = np.unique(np.asarray(given, np.int64))
        perm = rng.permutation(h)
        half = len(h) // 2
        shown.append(perm[half:])
        hidden.append(perm[:half])
        if sequential:  # the same items, in the history's order (first occurrences)
            order, first = np.unique(np.asarray(given, np.int64), return_index=True)
            keep = np.isin(order, shown[-1])
            shown[-1] = order[keep][np.argsort(first[keep], kind="stable")]
    out = np.full(len(histories), np.nan)
    n_items = model.n_items
    for start in range(0, len(histories), 256):
        block = range(start, min(start + 256, len(histories)))
        if sequential:
            raw = model.score_sequences([shown[i] for i in block])  # type: ignore[attr-defined]
        else:
            raw = model.score_history(history_matrix([shown[i] for i in block], n_items))  # type: ignore[attr-defined]
        scores = np.asarray(raw, dtype=np.float64)
        for r, i in enumerate(block):
            if len(hidden[i]) == 0:
                continue
            s = scores[r].copy()
            s[shown[i]] = np.nan
            s[~np.isfinite(s)] = np.nan
            valid = s[np.isfinite(s)]
            # percentile of each hidden item: share of the other candidates it beats
            below = np.searchsorted(np.sort(valid), s[hidden[i]], side="left")
            out[i] = float(np.nanmean(below / max(len(valid) - 1, 1)))
    return out


def membership_auc(
    model: Recommender,
    members: Sequence[np.ndarray],
    non_members: Sequence[np.ndarray],
    *,
    seed: int = 0,
) -> float:
    """AUC of :func:`membership_scores` telling ``members`` from ``non_members`` (0.5: no leak)."""
    a = membership_scores(model, members, seed=seed)
    b = membership_scores(model, non_members, seed=seed + 1)
    return auc(a[np.isfinite(a)], b[np.isfinite(b)])


@dataclass(frozen=True)
class ListAttackResult:
    """Outcome of :func:`similar_list_attack` over simulated users.

    Attributes
    ----------
    recovered : ndarray of int
        How many of the new items the attacker named correctly, per user.
    guessed : ndarray of int
        How many items the attacker named, per user.
    n_new : int
        New items each simulated user added.
    """

    recovered: np.ndarray
    guessed: np.ndarray
    n_new: int

    def share_at_most(self, n: int) -> float:
        """Share of users of whom at most ``n`` new items were recovered."""
        return float((self.recovered <= n).mean())

    def to_dict(self) -> dict[str, Any]:
        """Summary numbers (JSON-able)."""
        return {
            "users": len(self.recovered),
            "n_new": self.n_new,
            "mean_recovered": float(self.recovered.mean()),
            "share_at_most_1": self.share_at_most(1),
            "mean_guessed": float(self.guessed.mean()),
            "precision": float(self.recovered.sum() / max(self.guessed.sum(), 1)),
        }


def similar_list_attack(
    fit: Callable[[Any], Any],
    similar: Callable[[Any, np.ndarray], np.ndarray],
    base: Any,
    add_user: Callable[[Any, np.ndarray, np.ndarray], Any],
    users: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    min_votes: int = 1,
) -> ListAttackResult:
    """Calandrino-style differencing of public similar-item lists.

    Parameters
    ----------
    fit : callable(data) -> model
        Builds the model whose lists are public.
    similar : callable(model, items) -> ndarray (len(items), k)
        The public list of each item (dense indices, -1 padded).
    base : data set
        The data before the simulated person's new items.
    add_user : callable(base, known, new) -> data
        ``base`` plus one person holding ``known`` (older, known to the attacker) and
        ``new`` items.
    users : sequence of (known, new)
        Each simulated person's known and new items (dense indices).

    The model is refitted with the person holding only ``known`` (before) and with
    ``known`` and ``new`` (after); the attacker names every item, not already known, that
    entered the lists of at least ``min_votes`` known items (1: the most aggressive
    guess; more votes trade recall for precision).
    """
    recovered, guessed = [], []
    n_new = 0
    for known, new in users:
        n_new = len(new)
        before = similar(fit(add_user(base, known, np.empty(0, np.int64))), known)
        after = similar(fit(add_user(base, known, new)), known)
        votes: dict[int, int] = {}
        for b, a in zip(before, after, strict=True):
            for item in set(a[a >= 0].tolist()) - set(b[b >= 0].tolist()):
                votes[item] = votes.get(item, 0) + 1
        named = {i for i, v in votes.items() if v >= min_votes} - set(known.tolist())
        guessed.append(len(named))
        recovered.append(len(named & set(new.tolist())))
    return ListAttackResult(np.array(recovered), np.array(guessed), n_new)
