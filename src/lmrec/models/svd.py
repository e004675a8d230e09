"""PureSVD: truncated SVD of the binarised user-item matrix (Cremonesi, Koren & Turrin 2010).

With the rank-``f`` truncated SVD ``X ~ U S V^T`` of the users x items matrix (every
observed pair is 1, every missing pair 0), a user's scores are the projection of
their row onto the top item factors:

.. math::

    \\hat{x}_u = X_u V V^\\top

which equals ``U_u S V^T`` for a training user, and needs nothing but the history
row for a new one -- so fold-in is the same formula, with no retraining.

Determinism
-----------
``svds`` (ARPACK) starts from a vector drawn with ``np.random.default_rng(seed)``, so
the same seed gives the same factors. Singular vectors are defined only up to sign;
each column of ``V`` is flipped so that its entry of largest magnitude is positive,
which makes the stored factors unique (the scores ``X V V^T`` never depend on signs).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from lmrec.data.dataset import Dataset
from lmrec.errors import DataWarning
from lmrec.models.base import Recommender
from lmrec.models.capabilities import (
    DotProductModel,
    FitOptions,
    FoldInModel,
    UnlearningModel,
    dot_item_vectors,
    dot_user_vectors,
)
from lmrec.models.config import ModelConfig, search
from lmrec.models.explain import Attribution, exact
from lmrec.models.files import StateArrays
from lmrec.models.fitted import Fitted
from lmrec.models.unlearning import drop_users, keep_rows


class PureSVDConfig(ModelConfig):
    """Hyperparameters of :class:`PureSVD`."""

    factors: int = Field(default=64, ge=1, json_schema_extra=search("int_log", 8, 512))
    """Rank ``f`` of the truncated SVD (data with fewer users or items keeps all factors)."""
    seed: int = Field(default=0, ge=0)
    """Seed of ARPACK's start vector; the same seed gives the same model."""


class PureSVD(Recommender, FoldInModel, DotProductModel, UnlearningModel):
    """Truncated-SVD recommender: scores ``X_u V V^T`` with the top item singular vectors.

    Parameters
    ----------
    config : PureSVDConfig, optional
        Hyperparameters; or pass them as keywords (``PureSVD(factors=32)``).

    Examples
    --------
    >>> from lmrec.testing import checkerboard
    >>> model = PureSVD(factors=4).fit(checkerboard())
    >>> model.item_factors_.shape
    (30, 4)
    """

    name = "svd"
    config_class = PureSVDConfig
    config: PureSVDConfig
    #: Item factors ``V`` (float32, n_items x factors, orthonormal columns).
    item_factors_: Fitted[np.ndarray] = Fitted()
    #: Binarised training matrix, float32 CSR.
    user_items_: Fitted[sp.csr_matrix] = Fitted()

    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        x = dataset.matrix.astype(np.float32, copy=True)
        x.data[:] = 1.0
        self._factorize(x)

    def _factorize(self, x: sp.csr_matrix) -> None:
        """Item factors of the binary training matrix ``x`` (the fit, and after forgetting)."""
        from scipy.sparse.linalg import svds

        f = self.config.factors
        n_users, n_items = x.shape
        limit = min(n_users, n_items)
        if f >= limit:
            # svds needs k < min(shape). A rank-f SVD of a matrix of rank <= limit keeps
            # every factor there is, so take the exact dense SVD (the data is tiny).
            warnings.warn(
                f"PureSVD(factors={f}) on data with only {n_users} users x "
                f"{n_items} items: keeping all {limit} factors of an exact SVD.",
                DataWarning,
                stacklevel=3,
            )
            _, s, vt = np.linalg.svd(x.toarray().astype(np.float64), full_matrices=False)
        else:
            rng = np.random.default_rng(self.config.seed)
            v0 = rng.uniform(-1.0, 1.0, size=limit)
            _, s, vt = svds(x.astype(np.float64), k=f, v0=v0, solver="arpack")
        order = np.argsort(-s, kind="stable")
        v = vt[order].T
        # Sign convention: the largest-magnitude entry of every factor is positive.
        pivot = np.abs(v).argmax(axis=0)
        v *= np.sign(v[pivot, np.arange(v.shape[1])])
        self.item_factors_ = np.ascontiguousarray(v, dtype=np.float32)
        self.user_items_ = x

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self.score_history(self.user_items_[user_idx])

    def item_vectors(self) -> np.ndarray:
        """The item factors ``V``: a user's vector is ``h V`` for the binary history ``h``."""
        return self._memo("item_vectors", lambda: dot_item_vectors(self.item_factors_))

    def user_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        """``h V`` for the binary training history ``h`` of each known user."""
        hist = sp.csr_matrix(self.user_items_[user_idx], dtype=np.float32)
        hist.data[:] = 1.0
        return dot_user_vectors(hist @ self.item_vectors())

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        v = self.item_factors_
        hist = history.astype(np.float32, copy=True)
        hist.data[:] = 1.0
        return np.asarray((hist @ v) @ v.T, dtype=np.float32)

    def unlearning_blocker(self) -> str | None:
        """PureSVD keeps its training matrix, so it can always refactorize without a user."""
        return None

    def forget(self, user_idx: np.ndarray) -> None:
        """Drop the users' rows and recompute the SVD of the remaining ones."""
        keep = drop_users(self, user_idx)
        self._factorize(keep_rows(self.user_items_, keep))

    def _attribute(self, item: int, history: np.ndarray, user_idx: int | None) -> Attribution:
        """Exact: the score is ``sum_j V_j . V_item`` over the (binary) history."""
        v = self.item_factors_
        return exact(item, history, v[history] @ v[item])

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"item_factors": self.item_factors_}, {}

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:
        n_items = self._seen.shape[1]
        self.item_factors_ = np.ascontiguousarray(arrays.float("item_factors", (n_items, None)))
        self.user_items_ = self._seen.astype(np.float32, copy=True)
