"""Text-EASE: EASE whose Gram matrix also counts item-text similarity ("collective" EASE).

EASE (:mod:`lmrec.models.ease`) solves for ``B`` from the Gram matrix ``X^T X``. Here
every item's feature vector ``f_i`` (:func:`lmrec.models.text2cf.item_features`: the
centred sentence embedding of its text plus its one-hot attributes) is added as
``d`` extra pseudo-users, each weighted ``sqrt(beta)``::

    G = X^T X + beta F F^T + l2 I,   P = G^-1,   B_ij = -P_ij / P_jj,  B_jj = 0

so two items co-occur a little for every user *and* for every text dimension they
share (``side="features"``). With ``side="neighbours"`` each item instead adds one
pseudo-user who interacted with the item and its ``n_neighbours`` nearest items by
cosine of ``f`` (a binary matrix ``T``), and ``G = X^T X + beta T^T T + l2 I``: text
neighbours count as co-occurrences, on the same scale as real ones.

This is the side-information EASE of collective linear autoencoders (e.g.
Jeunen et al., 2020, "Closed-form models for collaborative filtering with side
information"). ``beta = 0`` is plain EASE. Items without interactions get weights
from their text alone, so they can be recommended too. Scores are ``x_u B`` and new
users fold in from a history row, as in EASE.

Cost: as EASE (a dense ``n_items x n_items`` inverse), plus ``F F^T``.

Stability: experimental. .. versionadded:: 0.1.0
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from lmrec.data.dataset import Dataset
from lmrec.models.base import Recommender
from lmrec.models.capabilities import FitOptions, FoldInModel
from lmrec.models.config import search
from lmrec.models.files import StateArrays
from lmrec.models.fitted import Fitted
from lmrec.models.text2cf import ItemFeatureConfig, item_features


class TextEASEConfig(ItemFeatureConfig):
    """Hyperparameters of :class:`TextEASE`.

    Defaults: the best of ``benchmarks/hybrid.py``'s grid on MovieLens-100K valid
    (NDCG@10 0.2796 vs 0.2740 for EASE; ``side="features", l2=300, beta=10``: 0.2767).
    """

    l2: float = Field(default=500.0, gt=0, json_schema_extra=search("float_log", 10.0, 5000.0))
    """L2 penalty ``lambda`` on the diagonal of the Gram matrix (as EASE's ``l2``)."""
    beta: float = Field(default=3.0, ge=0, json_schema_extra=search("float", 0.0, 20.0))
    """Weight of the side-information Gram (``F F^T`` or ``T^T T``; 0: plain EASE)."""
    side: Literal["features", "neighbours"] = Field(
        default="neighbours",
        json_schema_extra=search("categorical", ["features", "neighbours"]),
    )
    """Side information: the item features themselves, or pseudo-users from text neighbours."""
    n_neighbours: int = Field(
        default=10, ge=1, json_schema_extra=search("int_log", 2, 50, {"side": "neighbours"})
    )
    """``side="neighbours"``: nearest items (by feature cosine) each pseudo-user holds."""


def _side_gram(feats: np.ndarray, side: str, n_neighbours: int) -> np.ndarray:
    """``F F^T``, or ``T^T T`` for the item + text-neighbour pseudo-users ``T``."""
    if side == "features":
        return feats @ feats.T
    unit = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    n = len(feats)
    k = min(n_neighbours, n - 1)
    pseudo = np.eye(n)
    if k > 0:
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        np.put_along_axis(pseudo, top, 1.0, axis=1)
    return pseudo.T @ pseudo


class TextEASE(Recommender, FoldInModel):
    """EASE with item text as pseudo-users: ``G = X^T X + beta F F^T + l2 I``.

    Parameters
    ----------
    config : TextEASEConfig, optional
        Hyperparameters; or pass them as keywords (``TextEASE(beta=3.0)``).
    """

    name = "text_ease"
    config_class = TextEASEConfig
    config: TextEASEConfig
    #: Item-item weights (float32, n_items x n_items, zero diagonal).
    B_: Fitted[np.ndarray] = Fitted()
    #: The encoder's cache id (which model the text vectors come from).
    encoder_id_: Fitted[str | None] = Fitted()

    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        from scipy.linalg import cho_factor, cho_solve

        cfg = self.config
        feats, self.encoder_id_ = item_features(dataset, cfg)
        x = dataset.matrix.astype(np.float64, copy=True)
        x.data[:] = 1.0
        gram = np.asarray((x.T @ x).toarray())
        gram += cfg.beta * _side_gram(feats, cfg.side, cfg.n_neighbours)
        gram[np.diag_indices_from(gram)] += cfg.l2
        p = cho_solve(
            cho_factor(gram, overwrite_a=True, check_finite=False),
            np.eye(dataset.n_items),
            overwrite_b=True,
            check_finite=False,
        )
        p /= -p.diagonal()[np.newaxis, :]
        np.fill_diagonal(p, 0.0)
        self.B_ = np.ascontiguousarray(p, dtype=np.float32)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self.score_history(self._seen[user_idx])

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        h = sp.csr_matrix(history, dtype=np.float32, copy=True)
        h.data[:] = 1.0
        return np.asarray(h @ self.B_, dtype=np.float32)

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"B": self.B_}, {"encoder_id": self.encoder_id_}

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:
        n_items = self._seen.shape[1]
        self.B_ = np.ascontiguousarray(arrays.float("B", (n_items, n_items)))
        self.encoder_id_ = meta.get("encoder_id")
