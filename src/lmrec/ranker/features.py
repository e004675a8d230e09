"""Numeric side features for the ranker's wide part (a "wide and deep" cross-encoder).

A small cross-encoder reading titles cannot learn, from a few hundred examples, what
the training interactions say directly: how often a candidate is liked, how popular
it is, and how easily this user likes things. With ``side_features=True`` the ranker's
logit is ``head(encoder(prompt)) + wide(x)`` where ``x`` holds, for each (user,
candidate, history end) triple, the :data:`FEATURE_NAMES`:

- ``history_like_share``: liked share of the user's last ``n_history`` rated items
  before the candidate (the items the prompt shows);
- ``user_like_share``: liked share of all the user's rated items before it;
- ``item_like_rate``: the candidate's liked share among the training interactions,
  shrunk towards the global rate with ``smoothing`` pseudo-counts;
- ``item_log_count``: ``log(1 + interactions with the candidate)`` (popularity).

Item statistics come from training data only (:class:`ItemStats`); user shares use
only the history before the candidate, as the prompt does. Without ratings the like
features are constant (the prior) and only popularity informs.

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmrec.ranker.prompts import PromptBuilder

__all__ = ["FEATURE_NAMES", "ItemStats", "fit_logistic", "history_features", "side_features"]

#: Column order of :func:`side_features`.
FEATURE_NAMES = ("history_like_share", "user_like_share", "item_like_rate", "item_log_count")


@dataclass
class ItemStats:
    """Per-item training statistics: interactions, rated interactions and likes.

    Examples
    --------
    >>> s = ItemStats.from_labels(np.array([0, 0, 1]), np.array([1.0, 0.0, 1.0]), 3)
    >>> s.like_rate().round(3).tolist(), s.count.tolist()
    ([0.619, 0.722, 0.667], [2.0, 1.0, 0.0])
    """

    count: np.ndarray
    rated: np.ndarray
    likes: np.ndarray
    smoothing: float = 5.0

    @classmethod
    def from_labels(
        cls, items: np.ndarray, labels: np.ndarray, n_items: int, smoothing: float = 5.0
    ) -> ItemStats:
        """Statistics of labelled (item, liked 0/1) samples, e.g. a CTR training set."""
        items = np.asarray(items, np.int64)
        count = np.bincount(items, minlength=n_items).astype(np.float64)
        likes = np.bincount(items, weights=np.asarray(labels, np.float64), minlength=n_items)
        return cls(count, count.copy(), likes, smoothing)

    @classmethod
    def from_prompts(
        cls, prompts: PromptBuilder, n_items: int, smoothing: float = 5.0
    ) -> ItemStats:
        """Statistics of every interaction held by ``prompts`` (liked = 1, disliked = 0)."""
        items, liked = prompts.items, prompts.liked
        rated = liked >= 0
        return cls(
            np.bincount(items, minlength=n_items).astype(np.float64),
            np.bincount(items[rated], minlength=n_items).astype(np.float64),
            np.bincount(items[liked == 1], minlength=n_items).astype(np.float64),
            smoothing,
        )

    @property
    def prior(self) -> float:
        """Global liked share of the rated interactions (0.5 when nothing is rated)."""
        total = float(self.rated.sum())
        return float(self.likes.sum()) / total if total else 0.5

    def like_rate(self) -> np.ndarray:
        """Smoothed liked share per item."""
        return (self.likes + self.smoothing * self.prior) / (self.rated + self.smoothing)


def side_features(
    prompts: PromptBuilder,
    stats: ItemStats,
    users: np.ndarray,
    items: np.ndarray,
    ends: np.ndarray | None = None,
) -> np.ndarray:
    """The (n, 4) float32 :data:`FEATURE_NAMES` of aligned users, items and history ends.

    ``ends`` is the position within each user's time-ordered history where the
    candidate sits (default: after all of it), as in :meth:`PromptBuilder.pairs`.
    """
    users = np.asarray(users, np.int64)
    items = np.asarray(items, np.int64)
    start = prompts.indptr[users]
    n_user = prompts.indptr[users + 1] - start
    stop = start + (n_user if ends is None else np.minimum(np.asarray(ends, np.int64), n_user))
    liked = prompts.liked
    cum_like = np.concatenate([[0], np.cumsum(liked == 1)])
    cum_rated = np.concatenate([[0], np.cumsum(liked >= 0)])
    prior = stats.prior

    def share(lo: np.ndarray) -> np.ndarray:
        rated = cum_rated[stop] - cum_rated[lo]
        likes = cum_like[stop] - cum_like[lo]
        return np.where(rated > 0, likes / np.maximum(rated, 1), prior)

    recent = share(np.maximum(start, stop - prompts.n_history))
    overall = share(start)
    return np.column_stack(
        [recent, overall, stats.like_rate()[items], np.log1p(stats.count[items])]
    ).astype(np.float32)


def history_features(
    stats: ItemStats, liked: np.ndarray, n_history: int, items: np.ndarray
) -> np.ndarray:
    """:func:`side_features` of one history given as like marks (1 / 0 / -1, oldest first)
    against candidate ``items``: a new user's history (no ratings: the like shares are
    the prior) or an edited one."""
    liked = np.asarray(liked, np.int8)
    prior = stats.prior

    def share(marks: np.ndarray) -> float:
        rated = int((marks >= 0).sum())
        return float((marks == 1).sum()) / rated if rated else prior

    recent = share(liked[max(0, len(liked) - n_history) :])
    items = np.asarray(items, np.int64)
    return np.column_stack(
        [
            np.full(len(items), recent),
            np.full(len(items), share(liked)),
            stats.like_rate()[items],
            np.log1p(stats.count[items]),
        ]
    ).astype(np.float32)


def fit_logistic(
    x: np.ndarray, y: np.ndarray, *, l2: float = 1.0, n_iter: int = 25
) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method: ``(weights, bias)``.

    Used to start the ranker's wide part at the classic baseline, so that fine-tuning
    the language model only has to explain what the statistics do not. Features are
    standardised internally; the returned weights apply to the raw features. The bias
    is not penalised.

    Examples
    --------
    >>> x = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> w, b = fit_logistic(x, np.array([0.0, 0.0, 1.0, 1.0]))
    >>> bool(w[0] > 0 and -b / w[0] > 1 and -b / w[0] < 2)
    True
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    mean, std = x.mean(0), x.std(0)
    std[std == 0] = 1.0
    z = np.column_stack([(x - mean) / std, np.ones(len(x))])
    beta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(n_iter):
        p = 1.0 / (1.0 + np.exp(-(z @ beta)))
        grad = z.T @ (p - y) + penalty * beta
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty) + 1e-9 * np.eye(len(beta))
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    w = beta[:-1] / std
    return w, float(beta[-1] - (w * mean).sum())
