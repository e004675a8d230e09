"""Are explanations true to the model? The deletion test.

For a history ``h`` and an explained item ``i``, remove the ``m`` history items with the
largest attributed contributions (:meth:`~lmrec.models.base.Recommender.attribute`) and
re-score ``i`` with the model's own request-time scoring
(:meth:`~lmrec.models.base.Recommender.score_histories`); compare with removing ``m``
history items drawn at random. A faithful attribution makes the score fall more.

The **deletion curve** of a pair is the score drop ``s(h) - s(h minus m items)`` for
``m = 1..max_removed``; its **area** is the mean drop over ``m`` (model score units).
:func:`deletion_test` reports, over many pairs, the mean area for attributed and for
random removal, their ratio (scale-free, comparable across models) and the share of
pairs where attributed removal beats random removal.

Rating models (``biasedmf``, ``knnbaseline``) score a user's ratings, not an item list:
:func:`rating_deletion_test` removes rated items from a known user's ratings and re-scores
with :meth:`~lmrec.models.ratings.BiasedMF.score_ratings`.

An item that leaves the model's candidate list (``-inf``, e.g. the pipeline's retriever
no longer proposes it) counts as the lowest finite score of that history.

Stability: experimental. .. versionadded:: 0.3.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from lmrec._checks import check_int
from lmrec.errors import ConfigError

if TYPE_CHECKING:  # the metrics layer sits below models: for annotations only
    from lmrec.models.base import Recommender
    from lmrec.models.explain import Attribution

__all__ = ["DeletionResult", "deletion_test", "rating_deletion_test"]


class RatingExplainer(Protocol):
    """What :func:`rating_deletion_test` needs: a fitted rating model (``RatingModel``)."""

    def known_ratings(self, user_idx: int) -> tuple[np.ndarray, np.ndarray]: ...

    def score_ratings(
        self, items: np.ndarray, ratings: np.ndarray, targets: np.ndarray
    ) -> np.ndarray: ...

    def attribute(
        self, item_idx: int, history: np.ndarray | None = None, *, user_idx: int | None = None
    ) -> Attribution: ...


@dataclass(frozen=True)
class DeletionResult:
    """Deletion curves of many (history, item) pairs.

    Attributes
    ----------
    removed : ndarray of int
        The values of ``m`` (1..max_removed).
    attributed, random : ndarray (n_pairs, len(removed))
        Score drops after removing the top-``m`` attributed / ``m`` random items (random:
        the mean over the draws).
    """

    removed: np.ndarray
    attributed: np.ndarray
    random: np.ndarray

    @property
    def area_attributed(self) -> float:
        """Mean deletion-curve area with attributed removal (model score units)."""
        return float(self.attributed.mean())

    @property
    def area_random(self) -> float:
        """Mean deletion-curve area with random removal (model score units)."""
        return float(self.random.mean())

    @property
    def ratio(self) -> float:
        """``area_attributed / area_random`` (> 1: the attribution finds what matters)."""
        return self.area_attributed / self.area_random if self.area_random else float("nan")

    @property
    def win_rate(self) -> float:
        """Share of pairs whose attributed area exceeds the random one (ties count half)."""
        a, r = self.attributed.mean(1), self.random.mean(1)
        return float(((a > r) + 0.5 * (a == r)).mean())

    def summary(self) -> dict[str, float]:
        """Areas, ratio and win rate as one dict."""
        return {
            "area_attributed": self.area_attributed,
            "area_random": self.area_random,
            "ratio": self.ratio,
            "win_rate": self.win_rate,
            "n_pairs": float(len(self.attributed)),
        }


def _item_scores(model: Recommender, rows: list[np.ndarray], item: int) -> np.ndarray:
    """The item's score after each history; ``-inf`` becomes the row's lowest finite score."""
    s = model.score_histories(rows, items=np.array([item]))[:, 0].astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(s))
    if len(bad):
        full = model.score_histories([rows[j] for j in bad])
        full[~np.isfinite(full)] = np.inf
        s[bad] = full.min(axis=1)
    return s


#: One pair of the test, prepared: the attributed order of the history's positions, the
#: history's length, and a function that re-scores the explained item after each removal
#: (its first value is the score with nothing removed).
_Pair = tuple[np.ndarray, int, Callable[[list[np.ndarray]], np.ndarray]]


def _checked_sizes(
    where: str, max_removed: int, n_random: int, n_cases: int, n_items: int, case: str
) -> tuple[int, int]:
    """``max_removed`` and ``n_random`` checked, and one explained item per case."""
    max_removed = check_int(max_removed, "max_removed", where=where)
    n_random = check_int(n_random, "n_random", where=where)
    if n_cases != n_items:
        raise ConfigError(f"{where} needs one explained item per {case}.")
    return max_removed, n_random


def _deletion_curves(
    n_pairs: int, max_removed: int, n_random: int, seed: int, pair: Callable[[int], _Pair]
) -> DeletionResult:
    """Remove the top-``m`` attributed, then ``n_random`` random ``m``-sets, per pair.

    Shared by both tests so that history and rating models are measured the same way.
    """
    rng = np.random.default_rng(seed)
    ms = np.arange(1, max_removed + 1)
    attributed = np.empty((n_pairs, len(ms)))
    rand = np.empty((n_pairs, len(ms)))
    for p in range(n_pairs):
        order, size, rescore = pair(p)
        drops = [order[:m] for m in ms]
        drops += [rng.choice(size, m, replace=False) for m in ms for _ in range(n_random)]
        s = rescore(drops)
        attributed[p] = s[0] - s[1 : 1 + len(ms)]
        rand[p] = (s[0] - s[1 + len(ms) :]).reshape(len(ms), n_random).mean(1)
    return DeletionResult(ms, attributed, rand)


def deletion_test(
    model: Recommender,
    histories: Sequence[np.ndarray],
    items: Sequence[int],
    *,
    max_removed: int = 5,
    n_random: int = 10,
    seed: int = 0,
) -> DeletionResult:
    """Deletion curves of ``model``'s attributions for (history, item) pairs.

    Parameters
    ----------
    model : Recommender
        A fitted model that scores histories (FoldInModel or SequenceModel).
    histories : sequence of ndarray of int
        Dense item indices, oldest first; each needs more than ``max_removed`` items.
    items : sequence of int
        The explained item of each history (not in it), e.g. its top recommendation.
    max_removed : int
        Largest ``m``.
    n_random : int
        Random removals drawn per ``m``.
    seed : int
        Seed of the random removals.

    Returns
    -------
    DeletionResult

    Raises
    ------
    ConfigError
        Mismatched lengths, or a history with at most ``max_removed`` items.
    """
    max_removed, n_random = _checked_sizes(
        "deletion_test", max_removed, n_random, len(histories), len(items), "history"
    )

    def pair(p: int) -> _Pair:
        hist, item = np.asarray(histories[p], np.int64), int(items[p])
        if len(hist) <= max_removed:
            raise ConfigError(
                f"deletion_test: history {p} has {len(hist)} items; it needs more than "
                f"max_removed={max_removed}."
            )

        def rescore(drops: list[np.ndarray]) -> np.ndarray:
            return _item_scores(model, [hist] + [np.delete(hist, d) for d in drops], item)

        return model.attribute(item, hist).ranking(), len(hist), rescore

    return _deletion_curves(len(histories), max_removed, n_random, seed, pair)


def rating_deletion_test(
    model: RatingExplainer,
    users: Sequence[int],
    items: Sequence[int],
    *,
    max_removed: int = 5,
    n_random: int = 10,
    seed: int = 0,
) -> DeletionResult:
    """Deletion curves of a rating model's attributions for known users.

    As :func:`deletion_test`, with each user's training ratings in place of a history:
    the ``m`` rated items with the largest contributions to ``items[p]`` (or ``m`` random
    ones) leave the user's ratings, and the item is re-scored from the rest
    (``score_ratings``), in rating units.

    Raises
    ------
    ConfigError
        Mismatched lengths, or a user with at most ``max_removed`` ratings.
    """
    max_removed, n_random = _checked_sizes(
        "rating_deletion_test", max_removed, n_random, len(users), len(items), "user"
    )

    def pair(p: int) -> _Pair:
        user, target = int(users[p]), np.array([int(items[p])])
        rated, values = model.known_ratings(user)
        if len(rated) <= max_removed:
            raise ConfigError(
                f"rating_deletion_test: user {user} has {len(rated)} ratings; it needs more "
                f"than max_removed={max_removed}."
            )
        att = model.attribute(int(target[0]), user_idx=user)
        position = {j: k for k, j in enumerate(rated.tolist())}
        order = np.array([position[j] for j in att.top(len(att.history)).tolist()])

        def rescore(drops: list[np.ndarray]) -> np.ndarray:
            kept = [np.delete(np.arange(len(rated)), d) for d in drops]
            return np.array(
                [model.score_ratings(rated, values, target)[0]]
                + [model.score_ratings(rated[k], values[k], target)[0] for k in kept]
            )

        return order, len(rated), rescore

    return _deletion_curves(len(users), max_removed, n_random, seed, pair)
