"""Request-time recommendation logic of the service, independent of HTTP.

Paths, fastest first:

``precomputed``
    A known user with no new feedback, no candidate filter: a slice of the top-k list
    computed at load time (minus request exclusions).
``model`` / ``ann``
    A known user with a candidate filter or more exclusions than the precomputed list
    can absorb: ``recommend_indices`` on that user (``ann``: through the model's ANN
    index, used for large catalogs when no candidate filter is given).
``fold-in``
    A user with new positive feedback, or an anonymous session, on a model that folds
    in or reads sequences: scores of the history (training history in the order the
    model reads it, then the new items) through ``score_histories``.
``co-occurrence`` (fallback)
    The same, for (plugin) models that cannot fold in: summed cosine similarity of item
    columns.
``popularity`` (fallback)
    Unknown users with no usable history: training interaction counts.

Explanations are the library's own (:meth:`Recommender.explain
<lmrec.models.base.Recommender.explain>`), so ``/v1/explain`` and ``lmrec explain`` give
the same answer for the same model, user and item.

Everything but ``precomputed`` is memoised in an LRU cache keyed by the model version
and the user's feedback generation, so new feedback or a reload can never serve a
stale list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmrec.models.explain import Catalog, Explanation
from lmrec.serve.model_store import LoadedModel
from lmrec.serve.online import LRUCache, OnlineOverlay
from lmrec.serve.scoring import top_from_scores


@dataclass(frozen=True)
class RecList:
    """A ranked list of dense item indices with scores and how it was produced."""

    items: np.ndarray
    scores: np.ndarray
    strategy: str
    fallback: bool


class Engine:
    """Recommendation, similarity and explanation over a :class:`LoadedModel`."""

    def __init__(self, overlay: OnlineOverlay, cache: LRUCache[RecList]) -> None:
        self.overlay = overlay
        self.cache = cache

    def forget_cached(self, user: str) -> int:
        """Drop every cached list of ``user`` (a deletion); returns how many went."""
        return self.cache.discard(lambda key: isinstance(key, tuple) and key[1:3] == ("u", user))

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def indices(lm: LoadedModel, ids: list[str] | None) -> np.ndarray:
        """Dense indices of the known ``ids`` (unknown ones are dropped)."""
        if not ids:
            return np.empty(0, np.int64)
        get = lm.item_index.get
        return np.fromiter((i for i in (get(x) for x in ids) if i is not None), np.int64)

    @staticmethod
    def _keep(lm: LoadedModel, cand: np.ndarray | None) -> np.ndarray | None:
        if cand is None:
            return None
        keep = np.zeros(lm.n_items, bool)
        keep[cand] = True
        return keep

    def _scored(
        self,
        lm: LoadedModel,
        hist: np.ndarray,
        k: int,
        exclude: np.ndarray,
        cand: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, str, bool]:
        """Fold-in (or co-occurrence) scores of one history, top-k after exclusion."""
        if lm.fold_in:
            scores = lm.model.score_histories([hist])[0]
            strategy, fallback = "fold-in", False
        else:
            scores = lm.cooc.similarity(hist).sum(axis=0)
            strategy, fallback = "co-occurrence", True
        items, vals = top_from_scores(scores, k, exclude=exclude, keep=self._keep(lm, cand))
        return items, vals, strategy, fallback

    def _popular(
        self, lm: LoadedModel, k: int, exclude: np.ndarray, cand: np.ndarray | None
    ) -> RecList:
        items, vals = top_from_scores(lm.popularity, k, exclude=exclude, keep=self._keep(lm, cand))
        return RecList(items, vals, "popularity", True)

    # ------------------------------------------------------------------ recommend
    def for_user(
        self,
        lm: LoadedModel,
        user: str,
        k: int,
        exclude_ids: list[str],
        candidate_ids: list[str] | None,
        exclude_seen: bool,
    ) -> RecList:
        """Top-``k`` for a user id (known, known with new feedback, or unknown)."""
        fb = self.overlay.get(user)
        uidx = lm.user_index.get(user)
        excl = self.indices(lm, exclude_ids)
        if fb.items:
            excl = np.union1d(excl, self.indices(lm, list(fb.items)))
        new_pos = self.indices(lm, fb.positive) if fb.items else np.empty(0, np.int64)
        seen_row = None
        if uidx is not None:
            seen_row = lm.model.user_history(uidx)  # in the order the model reads it
            if len(new_pos):
                new_pos = new_pos[~np.isin(new_pos, seen_row)]
            if not lm.fold_in:  # cannot rescore: the model's list minus the feedback items
                new_pos = np.empty(0, np.int64)
            if not len(new_pos) and candidate_ids is None and exclude_seen:
                hit = self._from_precomputed(lm, uidx, k, excl)
                if hit is not None:
                    return hit
        cand = None if candidate_ids is None else self.indices(lm, candidate_ids)
        key = (
            lm.version,
            "u",
            user,
            uidx,  # None once the user is deleted: a list computed before never matches
            fb.generation,
            k,
            excl.tobytes(),
            None if cand is None else cand.tobytes(),
            exclude_seen,
        )
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        if uidx is not None and not len(new_pos):
            items, vals = lm.recommend_indices(
                np.array([uidx]),
                min(k + len(excl), lm.n_items),
                exclude_seen=exclude_seen,
                candidates=cand,
            )
            items, vals = items[0], vals[0]
            ok = (items >= 0) & ~np.isin(items, excl)
            strategy = "ann" if lm.ann is not None and cand is None else "model"
            result = RecList(items[ok][:k], vals[ok][:k], strategy, False)
        elif len(new_pos) or seen_row is not None:
            hist = new_pos if seen_row is None else np.concatenate([seen_row, new_pos])
            drop = np.union1d(excl, hist) if exclude_seen else excl
            items, vals, strategy, fallback = self._scored(lm, hist, k, drop, cand)
            result = RecList(items, vals, strategy, fallback)
        else:
            result = self._popular(lm, k, excl, cand)
        self.cache.put(key, result)
        return result

    @staticmethod
    def _from_precomputed(lm: LoadedModel, uidx: int, k: int, excl: np.ndarray) -> RecList | None:
        if lm.top_items is None or lm.top_scores is None:  # both are set, or neither
            return None
        row = lm.top_items[uidx]
        valid = row >= 0
        full = bool(valid.all())  # a padded row already holds every remaining item
        ok = valid & ~np.isin(row, excl) if len(excl) else valid
        if ok.sum() < k and full and len(row) < lm.n_items:
            return None  # not enough left after exclusions: compute properly
        return RecList(
            row[ok][:k].astype(np.int64), lm.top_scores[uidx][ok][:k], "precomputed", False
        )

    def for_session(
        self,
        lm: LoadedModel,
        item_ids: list[str],
        k: int,
        exclude_ids: list[str],
        candidate_ids: list[str] | None,
        exclude_seen: bool,
    ) -> RecList:
        """Top-``k`` for an anonymous session given as a list of item ids."""
        hist = _in_order(self.indices(lm, item_ids))
        excl = self.indices(lm, exclude_ids)
        cand = None if candidate_ids is None else self.indices(lm, candidate_ids)
        key = (
            lm.version,
            "s",
            hist.tobytes(),
            k,
            excl.tobytes(),
            None if cand is None else cand.tobytes(),
            exclude_seen,
        )
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        drop = np.union1d(excl, hist) if exclude_seen else excl
        if len(hist):
            items, vals, strategy, fallback = self._scored(lm, hist, k, drop, cand)
            result = RecList(items, vals, strategy, fallback)
        else:
            result = self._popular(lm, k, drop, cand)
        self.cache.put(key, result)
        return result

    # ------------------------------------------------------------------ similar
    def similar(self, lm: LoadedModel, item: int, k: int) -> RecList:
        """Items most similar to dense item ``item`` (itself excluded)."""
        key = (lm.version, "sim", item, k)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        hist = np.array([item], np.int64)
        items, vals, strategy, fallback = self._scored(lm, hist, k, hist, None)
        result = RecList(items, vals, "item-item" if strategy == "fold-in" else strategy, fallback)
        self.cache.put(key, result)
        return result

    # ------------------------------------------------------------------ explain
    def explain(
        self,
        lm: LoadedModel,
        user: str | None,
        item_ids: list[str] | None,
        item: str,
        n: int,
        catalog: Catalog | None,
    ) -> Explanation:
        """The model's explanation of ``item`` for ``user`` or a session of ``item_ids``.

        A known user without new feedback is explained as the library explains them
        (``model.explain(item, user=...)``, the answer of ``lmrec explain``); a user with
        new positive feedback, or an unknown one, by their history (training history
        then the new items) given as items; a session by its items (unknown ids dropped).
        """
        model = lm.model
        if user is not None:
            fb = self.overlay.get(user)
            uidx = lm.user_index.get(user)
            new = self.indices(lm, fb.positive) if fb.items else np.empty(0, np.int64)
            if uidx is not None:
                own = model.user_history(uidx)
                new = new[~np.isin(new, own)]
                if not len(new):
                    return model.explain(item, user=user, n=n, catalog=catalog)
                hist = np.concatenate([own, new])
            else:
                hist = _in_order(new)
        else:
            hist = _in_order(self.indices(lm, item_ids))
        ids = [lm.item_ids[i] for i in hist.tolist()]
        return model.explain(item, items=ids, n=n, catalog=catalog)


def _in_order(items: np.ndarray) -> np.ndarray:
    """``items`` without repeats, first occurrences kept in order (a session's order)."""
    _, first = np.unique(items, return_index=True)
    return np.asarray(items, np.int64)[np.sort(first)]
