"""Text-to-CF: a ridge map from item text (and attributes) to collaborative item weights.

A content model that scores items the way a collaborative model would, so it ranks
items nobody has interacted with yet (the cold-start case) from their text alone.

1. Every item ``i`` gets a feature vector ``f_i``: its sentence embedding ``e_i``
   (:class:`~lmrec.text.TextEncoder` of :func:`lmrec.text.item_texts`, unit length,
   mean-centred, re-normalised) followed by ``attribute_weight`` times its centred
   one-hot item attributes (``|``-separated string columns with at most
   ``max_categories`` distinct values, e.g. genres; numeric columns cut into
   ``n_bins`` quantile bins, e.g. year).
2. EASE (:func:`lmrec.models.ease.ease_weights`, penalty ``cf_l2``) is fitted on the
   *warm* items (those with training interactions), giving ``B`` (n_warm x n_warm).
3. Each column of ``B`` -- how much every warm item votes for item ``j`` -- is
   regressed on ``f_j`` by ridge regression (penalty ``l2``), in closed form::

       M = B F_w (F_w^T F_w + l2 I)^-1          (n_warm x d)

   so ``B[:, j] ~ M f_j`` and for *any* item ``i`` the predicted EASE column is
   ``M f_i``.
4. ``score(u, i) = x_u M f_i`` with ``x_u`` the user's binary history: a user vector
   ``x_u M`` in feature space dotted with the item features. New users fold in the
   same way from a history row.

This is the "map content to the CF space" recipe of CB2CF (Barkan et al., 2019) and
DropoutNet-style cold-start models, here with EASE as the CF target and a closed-form
linear map. On MovieLens-100K cold-start items it clearly beats plain text similarity
(:class:`~lmrec.models.content.ContentModel`); see ``benchmarks/results/text.md``.
Warm items are scored by the same map (use :class:`~lmrec.models.blend.BlendModel`
with EASE to rank warm items).

Persistence: the feature matrix and the map are saved (float32); the language model is
referenced by name and not needed to score a loaded model.

Stability: experimental. .. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from lmrec.data.dataset import Dataset
from lmrec.errors import ConfigError
from lmrec.models.base import Recommender
from lmrec.models.capabilities import FitOptions, FoldInModel, UnlearningModel
from lmrec.models.config import ModelConfig, search
from lmrec.models.files import StateArrays
from lmrec.models.fitted import Fitted
from lmrec.models.unlearning import drop_users


class ItemFeatureConfig(ModelConfig):
    """Fields that describe item features (text embedding + attributes), shared by text models."""

    encoder: str = "all-MiniLM-L6-v2"
    """Sentence encoder: the bundled default, a local model directory or a Hugging Face id."""
    text_template: str | None = None
    """Item text template over item columns (default: as :class:`ContentModel`)."""
    attribute_weight: float = Field(default=0.5, ge=0, json_schema_extra=search("float", 0.0, 2.0))
    """Scale of the one-hot item attributes appended to the text embedding (0: text only)."""
    n_bins: int = Field(default=10, ge=2, le=100)
    """Quantile bins of each numeric item column (e.g. year)."""
    max_categories: int = Field(default=200, ge=1)
    """A string column becomes one-hot attributes when it has at most this many distinct
    ``|``-separated values (genres do; titles do not)."""
    batch_size: int = Field(default=64, ge=1)
    """Texts per encoder forward pass."""
    device: str = "cpu"
    """Torch device of the encoder during fit."""


class Text2CFConfig(ItemFeatureConfig):
    """Hyperparameters of :class:`Text2CF` (defaults chosen on a cold-item validation split)."""

    cf_l2: float = Field(default=500.0, gt=0, json_schema_extra=search("float_log", 10.0, 5000.0))
    """L2 penalty of the EASE model fitted on the warm items (the regression target)."""
    l2: float = Field(default=10.0, gt=0, json_schema_extra=search("float_log", 0.1, 1000.0))
    """Ridge penalty of the map from item features to EASE columns."""


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def item_attributes(
    items: pd.DataFrame, *, n_bins: int = 10, max_categories: int = 200
) -> np.ndarray:
    """One-hot attribute matrix (float64, n_items x n_attributes) of an item table.

    Numeric columns are cut into ``n_bins`` quantile bins (missing values: no bin);
    string columns with at most ``max_categories`` distinct ``|``-separated values, at
    least one of them shared by two items, become one indicator per value; other columns
    are ignored (a column of distinct values, such as the titles of a small catalog,
    names items rather than grouping them).
    """
    blocks: list[np.ndarray] = []
    for col in items.columns:
        values = items[col]
        if pd.api.types.is_bool_dtype(values):
            continue
        if pd.api.types.is_numeric_dtype(values):
            v = values.to_numpy(dtype=np.float64)
            ok = np.isfinite(v)
            if ok.sum() < 2:
                continue
            edges = np.unique(np.quantile(v[ok], np.linspace(0, 1, n_bins + 1)[1:-1]))
            codes = np.searchsorted(edges, np.where(ok, v, 0.0), side="right")
            block = np.zeros((len(v), len(edges) + 1))
            block[np.flatnonzero(ok), codes[ok]] = 1.0
            blocks.append(block)
            continue
        lists = [
            [t.strip() for t in v.split("|") if t.strip()] if isinstance(v, str) else []
            for v in values.tolist()
        ]
        tokens = [t for ts in lists for t in set(ts)]
        vocab = sorted(set(tokens))
        if not vocab or len(vocab) > max_categories or len(vocab) == len(tokens):
            continue
        pos = {t: j for j, t in enumerate(vocab)}
        block = np.zeros((len(lists), len(vocab)))
        for i, ts in enumerate(lists):
            block[i, [pos[t] for t in ts]] = 1.0
        blocks.append(block)
    return np.hstack(blocks) if blocks else np.zeros((len(items), 0))


def with_attributes(
    vectors: np.ndarray,
    items: pd.DataFrame,
    weight: float,
    *,
    n_bins: int = 10,
    max_categories: int = 200,
) -> np.ndarray:
    """``[vectors, weight * (a - mean(a))]``: item vectors followed by the items' centred
    one-hot attributes (:func:`item_attributes`) times ``weight``; ``vectors`` unchanged
    when the weight is 0 or the table has no attribute column."""
    if weight <= 0:
        return vectors
    attrs = item_attributes(items, n_bins=n_bins, max_categories=max_categories)
    if not attrs.shape[1]:
        return vectors
    return np.hstack([vectors, weight * (attrs - attrs.mean(axis=0))])


def item_features(dataset: Dataset, cfg: ItemFeatureConfig) -> tuple[np.ndarray, str]:
    """Item feature matrix ``F`` (float64, n_items x d) and the encoder's id.

    ``F = [e, attribute_weight * (a - mean(a))]``: the unit, mean-centred and
    re-normalised sentence embedding of each item's text, then its centred one-hot
    attributes (:func:`item_attributes`).
    """
    from lmrec.text.encoder import TextEncoder
    from lmrec.text.templates import item_texts

    if dataset.items is None:
        raise ConfigError(
            "This model needs item text: pass --items items.csv (or Dataset.from_frame(..., "
            "items=frame)) with a title, description or other text columns."
        )
    encoder = TextEncoder(cfg.encoder, batch_size=cfg.batch_size, device=cfg.device)
    emb = _unit(np.asarray(encoder.encode(item_texts(dataset, cfg.text_template)), np.float64))
    if len(emb) > 1:
        emb = _unit(emb - emb.mean(axis=0))
    emb = with_attributes(
        emb,
        dataset.items,
        cfg.attribute_weight,
        n_bins=cfg.n_bins,
        max_categories=cfg.max_categories,
    )
    return emb, encoder.model_id


class Text2CF(Recommender, FoldInModel, UnlearningModel):
    """Score items by an EASE model predicted from their text: ``x_u M f_i``.

    See the module docstring for the method. Needs an item table; ranks items with no
    interactions (cold start) and folds in new users from an item list.

    Parameters
    ----------
    config : Text2CFConfig, optional
        Hyperparameters; or pass them as keywords (``Text2CF(l2=10.0)``).
    """

    name = "text2cf"
    config_class = Text2CFConfig
    config: Text2CFConfig
    #: Item features ``f_i`` (float32, n_items x d): centred text embedding + attributes.
    features_: Fitted[np.ndarray] = Fitted()
    #: The map ``M`` (float32, n_items x d); rows of items without interactions are 0.
    mapping_: Fitted[np.ndarray] = Fitted()
    #: The encoder's cache id (which model the text vectors come from).
    encoder_id_: Fitted[str | None] = Fitted()

    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        feats, self.encoder_id_ = item_features(dataset, self.config)
        # The saved (float32) features, so that forget() recomputes M from the same numbers.
        feats = feats.astype(np.float32).astype(np.float64)
        x = dataset.matrix.astype(np.float32, copy=True)
        x.data[:] = 1.0
        self._map(x, feats)

    def _map(self, x: sp.csr_matrix, feats: np.ndarray) -> None:
        """The map ``M`` from the binary matrix ``x`` and the item features (fit, forget)."""
        from lmrec.models.ease import ease_weights

        cfg = self.config
        warm = np.flatnonzero(np.diff(x.tocsc().indptr) > 0)
        b = ease_weights(sp.csr_matrix(x[:, warm]), cfg.cf_l2).astype(np.float64)
        fw = feats[warm]
        gram = fw.T @ fw
        gram[np.diag_indices_from(gram)] += cfg.l2
        mapping = np.zeros((x.shape[1], feats.shape[1]))
        mapping[warm] = np.linalg.solve(gram, (b @ fw).T).T  # symmetric gram: M = B F_w G^-1
        self.features_ = np.ascontiguousarray(feats, dtype=np.float32)
        self.mapping_ = np.ascontiguousarray(mapping, dtype=np.float32)

    def _scores_of(self, history: sp.csr_matrix) -> np.ndarray:
        h = sp.csr_matrix(history, dtype=np.float32, copy=True)
        h.data[:] = 1.0
        users = np.asarray(h @ self.mapping_, dtype=np.float32)
        return users @ self.features_.T

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._scores_of(self._seen[user_idx])

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        return self._scores_of(history)

    def unlearning_blocker(self) -> str | None:
        """The features are the items' text; the map is recomputed from the kept rows."""
        return None

    def forget(self, user_idx: np.ndarray) -> None:
        """Drop the users' rows and recompute the map ``M`` from the remaining ones."""
        drop_users(self, user_idx)
        x = self._seen.astype(np.float32, copy=True)
        x.data[:] = 1.0
        self._map(x, self.features_.astype(np.float64))

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return (
            {"features": self.features_, "mapping": self.mapping_},
            {"encoder_id": self.encoder_id_},
        )

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:
        n_items = self._seen.shape[1]
        self.features_ = np.ascontiguousarray(arrays.float("features", (n_items, None)))
        dim = self.features_.shape[1]
        self.mapping_ = np.ascontiguousarray(arrays.float("mapping", (n_items, dim)))
        self.encoder_id_ = meta.get("encoder_id")
