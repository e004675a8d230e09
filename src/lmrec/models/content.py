"""Content-based recommender: items and users meet in a sentence encoder's vector space.

Every item in the catalog -- including items nobody has interacted with yet, the
cold-start case -- is embedded from its text (:func:`lmrec.text.item_texts`, e.g.
``"Toy Story (1995). Genres: Animation, Children's, Comedy"``) by a
:class:`~lmrec.text.TextEncoder`. A user's *profile* is built from the vectors of
the items in their history, and items are scored by cosine similarity to it:

``mean``
    :math:`p_u = \\operatorname{normalise}(\\sum_{i \\in I_u} w_{ui} e_i)`, with
    :math:`w_{ui} = 1` (or the rating, with ``use_ratings``).
``recency``
    the same sum with :math:`w_{ui} \\cdot 0.5^{(t_u^{\\max} - t_{ui}) / h}` for a
    half-life :math:`h` in days, so recent tastes dominate (needs timestamps).
``multi``
    a weighted spherical k-means with ``n_interests`` centroids over the user's item
    vectors (k-means++ start, seeded); the score of an item is its best cosine over
    the centroids, so a user who likes both horror and cartoons is not summarised
    by an average that matches neither (a multi-interest profile in the spirit of
    MIND, Li et al. 2019, without training).

Persistence: the saved model holds the item embeddings in ``precision`` (float32,
float16 or int8 with per-vector scales) and the user profiles (float32); the
language model itself is referenced by name in the config, never copied, and a
loaded model scores and recommends without it. Scores are always computed from the
stored precision, so a model scores the same before and after a save/load.

Stability: caller. .. versionadded:: 0.1.0
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from lmrec.data.dataset import Dataset
from lmrec.data.idmap import OnUnknown
from lmrec.errors import ConfigError
from lmrec.models.base import Recommender, check_k
from lmrec.models.capabilities import FitOptions, FoldInModel, UnlearningModel
from lmrec.models.config import ModelConfig, search
from lmrec.models.files import StateArrays
from lmrec.models.fitted import Fitted
from lmrec.models.unlearning import drop_users
from lmrec.ops.topk import topk

_KMEANS_ITERATIONS = 15


class ContentConfig(ModelConfig):
    """Hyperparameters of :class:`ContentModel`."""

    encoder: str = "all-MiniLM-L6-v2"
    """Sentence encoder: the bundled default, a local model directory or a Hugging Face id."""
    text_template: str | None = None
    """Item text template over item columns, e.g. ``"{title} ({year}). Genres: {genres}"``;
    default: MovieLens-style when the items have title and genres, else every string column."""
    profile: Literal["mean", "recency", "multi"] = Field(
        default="mean", json_schema_extra=search("categorical", ["mean", "recency", "multi"])
    )
    """How a user's item vectors become a profile: mean, recency-weighted mean, or
    several k-means centroids (score = best centroid)."""
    half_life_days: float = Field(
        default=30.0,
        gt=0,
        json_schema_extra=search("float_log", 1.0, 365.0, {"profile": "recency"}),
    )
    """Recency profile: an interaction this many days older than the user's latest counts half."""
    n_interests: int = Field(
        default=3, ge=1, le=64, json_schema_extra=search("int", 2, 8, {"profile": "multi"})
    )
    """Multi profile: centroids per user (users with fewer items keep one per item)."""
    center: bool = Field(default=True, json_schema_extra=search("categorical", [True, False]))
    """Subtract the mean item vector before comparing (removes what every item text shares,
    such as the template's wording, so cosines reflect what sets items apart)."""
    use_ratings: bool = False
    """Weight each history item by its rating (when the data has ratings) instead of 1."""
    precision: Literal["float32", "float16", "int8"] = "float32"
    """Storage precision of the item embeddings (scores are computed from what is stored)."""
    batch_size: int = Field(default=64, ge=1)
    """Texts per encoder forward pass."""
    device: str = "cpu"
    """Torch device of the encoder during fit (``"cuda"`` on a GPU machine)."""
    seed: int = Field(default=0, ge=0)
    """Seed of the multi-interest k-means."""


def _normalise_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _spherical_kmeans(
    vecs: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray:
    """``k`` unit centroids of unit vectors ``vecs`` (weighted), k-means++ start."""
    n = len(vecs)
    if n <= k:
        return vecs.copy()
    centres = [int(rng.choice(n, p=weights / weights.sum()))]
    dist = 1.0 - vecs @ vecs[centres[0]]
    for _ in range(1, k):
        p = np.maximum(dist, 0.0) * weights
        total = p.sum()
        nxt = int(rng.choice(n, p=p / total)) if total > 0 else int(rng.integers(n))
        centres.append(nxt)
        dist = np.minimum(dist, 1.0 - vecs @ vecs[nxt])
    cent = vecs[centres].copy()
    assign = np.full(n, -1)
    for _ in range(_KMEANS_ITERATIONS):
        new = np.argmax(vecs @ cent.T, axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
        for c in range(k):
            members = assign == c
            if members.any():
                cent[c] = (weights[members, None] * vecs[members]).sum(axis=0)
        cent = _normalise_rows(cent)
    return cent


class ContentModel(Recommender, FoldInModel, UnlearningModel):
    """Recommend items whose text is close to the text of the items a user liked.

    Works for items with no interactions at all (they are embedded from the
    catalog), needs an item table (``--items items.csv``), and folds in new users
    from an item list without refitting.

    Parameters
    ----------
    config : ContentConfig, optional
        Hyperparameters; or pass them as keywords (``ContentModel(profile="multi")``).

    Examples
    --------
    >>> from lmrec.testing import checkerboard
    >>> model = ContentModel().fit(checkerboard())          # doctest: +SKIP
    >>> model.similar_items(["i0"], k=2)["similar_item"].str[1:].astype(int).mod(2).tolist()
    ... # doctest: +SKIP
    [0, 0]
    """

    name = "content"
    config_class = ContentConfig
    config: ContentConfig
    #: Item embeddings as stored (float32/float16 values, or int8 plus ``item_scale_``).
    item_values_: Fitted[np.ndarray] = Fitted()
    item_scale_: np.ndarray | None = None
    #: Unit item vectors the scores use (float32, n_items x d), from the stored values.
    item_vectors_: Fitted[np.ndarray] = Fitted()
    #: User profiles: (n_users, n_profiles, d) unit vectors (n_profiles = 1 unless multi).
    profiles_: Fitted[np.ndarray] = Fitted()
    #: The encoder's cache id (which model the vectors come from).
    encoder_id_: Fitted[str | None] = Fitted()

    # ------------------------------------------------------------------ fitting
    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        from lmrec.text.encoder import TextEncoder
        from lmrec.text.templates import item_texts

        cfg = self.config
        if dataset.items is None:
            raise ConfigError(
                "content needs item text: pass --items items.csv (or Dataset.from_frame(..., "
                "items=frame)) with a title, description or other text columns."
            )
        if cfg.profile == "recency" and not dataset.has_timestamps:
            raise ConfigError(
                "profile='recency' needs interaction timestamps; the data set has none. "
                "Use profile='mean' or 'multi', or read the data with a timestamp column."
            )
        texts = item_texts(dataset, cfg.text_template)
        encoder = TextEncoder(cfg.encoder, batch_size=cfg.batch_size, device=cfg.device)
        self.encoder_id_ = encoder.model_id
        self._store_items(encoder.encode(texts))
        weights = self._history_weights(dataset)
        self.profiles_ = self._profiles(weights, np.random.default_rng(cfg.seed))

    def _store_items(self, emb: np.ndarray) -> None:
        from lmrec.text.quantize import dequantize, quantize

        self.item_values_, self.item_scale_ = quantize(emb, self.config.precision)
        self.item_vectors_ = self._comparable(dequantize(self.item_values_, self.item_scale_))

    def _comparable(self, emb: np.ndarray) -> np.ndarray:
        """Unit vectors the scores use: optionally mean-centred, then re-normalised."""
        emb = _normalise_rows(emb)
        if self.config.center and len(emb) > 1:
            emb = _normalise_rows(emb - emb.mean(axis=0, dtype=np.float64).astype(np.float32))
        return emb

    def _history_weights(self, dataset: Dataset) -> sp.csr_matrix:
        """Users x items CSR of profile weights (1, the rating, times a recency decay)."""
        cfg = self.config
        users = dataset.column("user_idx")
        w = np.ones(dataset.n_interactions, np.float64)
        if cfg.use_ratings and dataset.has_ratings:
            w = np.nan_to_num(dataset.column("rating").astype(np.float64), nan=1.0)
            w = np.maximum(w, 0.0)
        if cfg.profile == "recency":
            ts = dataset.column("timestamp").astype(np.float64)
            latest = np.full(dataset.n_users, -np.inf)
            np.maximum.at(latest, users, ts)
            age_days = (latest[users] - ts) / 86400.0
            w = w * np.power(0.5, age_days / cfg.half_life_days)
        m = sp.csr_matrix(
            (w, (users, dataset.column("item_idx"))), shape=(dataset.n_users, dataset.n_items)
        )
        m.sum_duplicates()
        return m

    def _profiles(self, weights: sp.csr_matrix, rng: np.random.Generator) -> np.ndarray:
        """Unit profile vectors (n, n_profiles, d) of the rows of a weights matrix."""
        e = self.item_vectors_
        if self.config.profile != "multi":
            return _normalise_rows(np.asarray(weights @ e, dtype=np.float32))[:, None, :]
        k = self.config.n_interests
        out = np.zeros((weights.shape[0], k, e.shape[1]), np.float32)
        for u in range(weights.shape[0]):
            lo, hi = weights.indptr[u], weights.indptr[u + 1]
            w = weights.data[lo:hi]
            keep = w > 0
            if not keep.any():
                continue
            cent = _spherical_kmeans(e[weights.indices[lo:hi][keep]], w[keep], k, rng)
            out[u, : len(cent)] = cent
            out[u, len(cent) :] = cent[0]  # unused slots repeat a centroid: the max is unchanged
        return out

    # ------------------------------------------------------------------ scoring
    def _scores_of(self, profiles: np.ndarray) -> np.ndarray:
        e = self.item_vectors_
        if profiles.shape[1] == 1:
            return profiles[:, 0, :] @ e.T
        return np.max(profiles @ e.T[None, :, :], axis=1)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._scores_of(self.profiles_[user_idx]).astype(np.float32, copy=False)

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        # A history given at request time has no ratings or timestamps: equal weights.
        weights = sp.csr_matrix(history, dtype=np.float64, copy=True)
        weights.data[:] = 1.0
        rng = np.random.default_rng(self.config.seed)
        return self._scores_of(self._profiles(weights, rng)).astype(np.float32, copy=False)

    def item_embeddings(self, items: Iterable[object] | None = None) -> np.ndarray:
        """Unit float32 item vectors (all items in id-map order, or ``items``), as stored."""
        self._check_fitted()
        if items is None:
            return self.item_vectors_.copy()
        return self.item_vectors_[self._item_ids.index(items, kind="item")]

    def similar_items(
        self,
        items: Iterable[object] | object,
        k: int = 10,
        *,
        on_unknown: OnUnknown = "raise",
    ) -> pd.DataFrame:
        """The ``k`` items whose text is closest (cosine) to each of ``items``, self excluded.

        Works for catalog-only items with no interactions.

        Returns
        -------
        DataFrame
            Columns ``item, similar_item, rank, score``; ``rank`` starts at 1.
        """
        self._check_fitted()
        k = check_k(k, "similar_items")
        idx = self._item_ids.index(items, on_unknown=on_unknown, kind="item")
        idx = idx[idx >= 0]
        sims = self.item_vectors_[idx] @ self.item_vectors_.T
        sims[np.arange(len(idx)), idx] = -np.inf
        top, scores = topk(sims.astype(np.float32, copy=False), min(k, self.n_items - 1) or 1)
        valid = top >= 0
        n_valid = valid.sum(axis=1)
        return pd.DataFrame(
            {
                "item": np.repeat(self._item_ids.lookup(idx), n_valid),
                "similar_item": self._item_ids.lookup(top[valid]),
                "rank": np.broadcast_to(np.arange(1, top.shape[1] + 1), top.shape)[valid],
                "score": scores[valid],
            }
        )

    # ------------------------------------------------------------------ unlearning
    def unlearning_blocker(self) -> str | None:
        """The item side is text alone; each profile is its own user's, except that the
        ``multi`` profiles share one random stream (a user's data shifts later draws)."""
        if self.config.profile == "multi":
            return (
                "content with profile='multi' draws every user's k-means from one random "
                "stream, so a user shifts the others' profiles; retrain it without the users"
            )
        return None

    def forget(self, user_idx: np.ndarray) -> None:
        """Drop the users' ids, training rows and profiles (nothing else depends on them)."""
        if (why := self.unlearning_blocker()) is not None:
            raise ConfigError(f"Cannot forget exactly: {why}.")
        keep = drop_users(self, user_idx)
        self.profiles_ = np.ascontiguousarray(self.profiles_[keep])

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {"item_values": self.item_values_, "profiles": self.profiles_}
        if self.item_scale_ is not None:
            arrays["item_scale"] = self.item_scale_
        return arrays, {"encoder_id": self.encoder_id_}

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:
        from lmrec.text.quantize import dequantize

        n_users, n_items = self._seen.shape
        self.item_values_ = (
            arrays.float("item_values", (n_items, None), dtypes=(np.float32, np.float16))
            if "item_scale" not in arrays
            else arrays.int("item_values", (n_items, None), dtypes=(np.int8,))
        )
        self.item_scale_ = (
            arrays.float("item_scale", (n_items,)) if "item_scale" in arrays else None
        )
        self.item_vectors_ = self._comparable(dequantize(self.item_values_, self.item_scale_))
        dim = self.item_vectors_.shape[1]
        self.profiles_ = np.ascontiguousarray(arrays.float("profiles", (n_users, None, dim)))
        self.encoder_id_ = meta.get("encoder_id")
