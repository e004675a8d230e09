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
    in: scores of the history (training row + new items) through ``score_history``.
``co-occurrence`` (fallback)
    The same, for models that cannot fold in: summed cosine similarity of item columns.
``popularity`` (fallback)
    Unknown users with no usable history: training interaction counts.

Everything but ``precomputed`` is memoised in an LRU cache keyed by the model version
and the user's feedback generation, so new feedback or a reload can never serve a
stale list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmrec.serve.model_store import LoadedModel
from lmrec.serve.online import LRUCache, OnlineOverlay
from lmrec.serve.scoring import history_matrix, leave_one_out, score_history, top_from_scores


@dataclass(frozen=True)
class RecList:
    """A ranked list of dense item indices with scores and how it was produced."""

    items: np.ndarray
    scores: np.ndarray
    strategy: str
    fallback: bool


@dataclass(frozen=True)
class Contribution:
    """One history item's share in an item's score."""

    item: str
    weight: float


@dataclass(frozen=True)
class Explanation:
    item: str
    score: float | None
    contributions: list[Contribution]
    method: str
    fallback: bool


class Engine:
    """Recommendation, similarity and explanation over a :class:`LoadedModel`."""

    def __init__(self, overlay: OnlineOverlay, cache: LRUCache) -> None:
        self.overlay = overlay
        self.cache = cache

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
            scores = score_history(lm.model, history_matrix([hist], lm.n_items))[0]
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
            seen_row = lm.model.seen_.indices[  # type: ignore[union-attr]
                lm.model.seen_.indptr[uidx] : lm.model.seen_.indptr[
                    uidx + 1
                ]  # type: ignore[union-attr]
            ]
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
            fb.generation,
            k,
            excl.tobytes(),
            None if cand is None else cand.tobytes(),
            exclude_seen,
        )
        cached = self.cache.get(key)
        if cached is not None:
            return cached  # type: ignore[return-value]
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
            hist = new_pos if seen_row is None else np.union1d(seen_row, new_pos)
            drop = np.union1d(excl, hist) if exclude_seen else excl
            items, vals, strategy, fallback = self._scored(lm, hist, k, drop, cand)
            result = RecList(items, vals, strategy, fallback)
        else:
            result = self._popular(lm, k, excl, cand)
        self.cache.put(key, result)
        return result

    @staticmethod
    def _from_precomputed(lm: LoadedModel, uidx: int, k: int, excl: np.ndarray) -> RecList | None:
        if lm.top_items is None:
            return None
        row = lm.top_items[uidx]
        valid = row >= 0
        full = bool(valid.all())  # a padded row already holds every remaining item
        ok = valid & ~np.isin(row, excl) if len(excl) else valid
        if ok.sum() < k and full and len(row) < lm.n_items:
            return None  # not enough left after exclusions: compute properly
        return RecList(
            row[ok][:k].astype(np.int64), lm.top_scores[uidx][ok][:k], "precomputed", False
        )  # type: ignore[index]

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
        hist = np.unique(self.indices(lm, item_ids))
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
            return cached  # type: ignore[return-value]
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
            return cached  # type: ignore[return-value]
        hist = np.array([item], np.int64)
        items, vals, strategy, fallback = self._scored(lm, hist, k, hist, None)
        result = RecList(items, vals, "item-item" if strategy == "fold-in" else strategy, fallback)
        self.cache.put(key, result)
        return result

    # ------------------------------------------------------------------ explain
    def history(self, lm: LoadedModel, user: str | None, item_ids: list[str] | None) -> np.ndarray:
        """Dense history of a user (training row + positive feedback) or of a session."""
        if user is None:
            return np.unique(self.indices(lm, item_ids))
        fb = self.overlay.get(user)
        hist = self.indices(lm, fb.positive) if fb.items else np.empty(0, np.int64)
        uidx = lm.user_index.get(user)
        if uidx is not None:
            seen = lm.model.seen_
            hist = np.union1d(seen.indices[seen.indptr[uidx] : seen.indptr[uidx + 1]], hist)  # type: ignore[union-attr]
        return np.unique(hist)

    def explain(self, lm: LoadedModel, hist: np.ndarray, item: int, n: int) -> Explanation:
        """The ``n`` history items that contributed most to ``item``'s score."""
        item_id = lm.item_ids[item]
        if not len(hist):
            return Explanation(item_id, None, [], "popularity", True)
        if lm.fold_in:
            weights = leave_one_out(lm.model, hist, item)
            score = float(score_history(lm.model, history_matrix([hist], lm.n_items))[0, item])
            method = "leave-one-out"
        else:
            weights = lm.cooc.similarity(np.array([item]))[0, hist]
            score = float(weights.sum())
            method = "co-occurrence"
        order = np.argsort(-weights, kind="stable")[:n]
        contribs = [
            Contribution(lm.item_ids[hist[j]], float(weights[j])) for j in order if weights[j] > 0
        ]
        return Explanation(item_id, score, contribs, method, not lm.fold_in)


def sentences(expl: Explanation, title: dict[str, str]) -> list[str]:
    """Plain-language sentences for an explanation ("You interacted with X, which ...")."""

    def name(i: str) -> str:
        return f"'{title[i]}'" if i in title else f"item {i}"

    target = name(expl.item)
    if not expl.contributions:
        if expl.method == "popularity":
            return [f"We have no history for you yet; {target} is recommended for its popularity."]
        return [f"None of your history points to {target} in particular."]
    top = max(c.weight for c in expl.contributions)
    out = []
    for c in expl.contributions:
        ratio = c.weight / top if top > 0 else 0.0
        verb = (
            "strongly suggests"
            if ratio >= 0.66
            else "suggests"
            if ratio >= 0.33
            else "slightly suggests"
        )
        out.append(f"You interacted with {name(c.item)}, which {verb} {target}.")
    return out
