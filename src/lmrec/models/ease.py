"""EASE: the closed-form shallow linear item-item autoencoder (Steck, WWW 2019).

EASE learns one item-item weight matrix ``B`` that reconstructs each user's row from
the *other* items of that row:

.. math::

    \\min_B \\lVert X - XB \\rVert_F^2 + \\lambda \\lVert B \\rVert_F^2
    \\quad \\text{s.t.} \\quad \\operatorname{diag}(B) = 0

whose solution (Steck 2019, eq. 8) is, with :math:`G = X^\\top X + \\lambda I` and
:math:`P = G^{-1}`,

.. math::

    B_{ij} = -P_{ij} / P_{jj} \\quad (i \\ne j), \\qquad B_{jj} = 0.

A user's scores are ``X_u B``; a new user given as an item list is folded in by the
same product with the history row, with no retraining.

Cost: ``G``, ``P`` and ``B`` are dense ``n_items x n_items`` float32 matrices, so
memory grows with the square of the catalog (~3 * n_items^2 * 4 bytes at the peak;
1.6 GB for 10,000 items) and time with its cube. :meth:`EASE.fit` estimates the peak
before allocating anything and refuses, with a :class:`~lmrec.errors.ConfigError`,
when it exceeds the memory available.

Implementation note: ``P`` is computed by a Cholesky factorisation of ``G`` (it is
symmetric positive definite for ``l2 > 0``) and ``cho_solve`` against the identity,
in float32. On MovieLens-100K (1,682 items, 2 cores) that is about 2x faster than
``np.linalg.inv`` (LU) and agrees with a float64 inverse to ~1e-9.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from lmrec.data.dataset import Dataset
from lmrec.errors import ConfigError
from lmrec.models.base import Recommender
from lmrec.models.capabilities import FitOptions, FoldInModel, PrivateModel, UnlearningModel
from lmrec.models.config import search
from lmrec.models.dp import GramDPConfig, check_dp_data, noisy_gram
from lmrec.models.explain import Attribution, exact, row_values
from lmrec.models.files import StateArrays
from lmrec.models.fitted import Fitted
from lmrec.models.unlearning import drop_users, keep_rows

#: Dense n_items x n_items float32 matrices alive at the peak of a fit (G, its factor, P/B).
_PEAK_MATRICES = 3


class EASEConfig(GramDPConfig):
    """Hyperparameters of :class:`EASE`."""

    l2: float = Field(default=500.0, gt=0, json_schema_extra=search("float_log", 10.0, 5000.0))
    """L2 penalty ``lambda`` added to the diagonal of ``X^T X``; larger means smoother ``B``.

    A few hundred is typical for MovieLens-100K-sized data; scale it up with the data."""
    implicit: bool = True
    """Binarise interaction weights (every observed pair counts 1); else use the weights."""


def available_memory() -> int:
    """Bytes of memory available to a new allocation (psutil if installed, else sysconf)."""
    try:
        import psutil
    except ModuleNotFoundError:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
    return int(psutil.virtual_memory().available)


def user_item_matrix(dataset: Dataset, implicit: bool) -> sp.csr_matrix:
    """The users x items float32 CSR training matrix, binarised when ``implicit``."""
    x = dataset.matrix.astype(np.float32, copy=True)
    if implicit:
        x.data[:] = 1.0
    return x


class EASE(Recommender, FoldInModel, UnlearningModel, PrivateModel):
    """Embarrassingly shallow autoencoder: closed-form item-item regression (Steck 2019).

    Strong on small and medium catalogs (tens of thousands of items at most); the fit
    is one dense ``n_items x n_items`` matrix inversion.

    Parameters
    ----------
    config : EASEConfig, optional
        Hyperparameters; or pass them as keywords (``EASE(l2=300.0)``).

    Examples
    --------
    >>> from lmrec.testing import checkerboard
    >>> model = EASE(l2=10.0).fit(checkerboard())
    >>> model.B_.shape
    (30, 30)
    >>> float(abs(model.B_.diagonal()).max())
    0.0
    """

    name = "ease"
    config_class = EASEConfig
    dp_mechanism = "gaussian on the item-item Gram matrix (user level)"
    config: EASEConfig
    #: The differential-privacy report of the fit (None without ``dp_epsilon``).
    privacy_: dict[str, Any] | None = None
    #: Item-item weights (float32, n_items x n_items, zero diagonal).
    B_: Fitted[np.ndarray] = Fitted()
    #: Training matrix the scores are computed from (binarised when ``implicit``).
    user_items_: Fitted[sp.csr_matrix] = Fitted()

    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        n = dataset.n_items
        need = _PEAK_MATRICES * n * n * 4
        have = available_memory()
        if need > have:
            raise ConfigError(
                f"EASE needs about {need / 2**30:.1f} GiB for {n:,} items "
                f"(3 dense {n:,} x {n:,} float32 matrices) but only {have / 2**30:.1f} GiB is "
                "available. Use itemknn or als for catalogs this large, or filter rare items "
                "out of the data first."
            )
        x = user_item_matrix(dataset, self.config.implicit)
        self.user_items_ = x
        self.privacy_ = None
        cfg = self.config
        if cfg.dp_epsilon is None:
            self.B_ = ease_weights(x, cfg.l2)
            return
        check_dp_data(cfg, dataset.n_users, "ease")
        gram, self.privacy_ = noisy_gram(
            x,
            epsilon=cfg.dp_epsilon,
            delta=cfg.dp_delta,
            clip=cfg.dp_clip,
            seed=cfg.dp_seed,
            denoise=cfg.dp_denoise,
            denoise_popular=cfg.dp_denoise_popular,
        )
        self.B_ = ease_weights_from_gram(gram, cfg.l2)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return np.asarray(self.user_items_[user_idx] @ self.B_, dtype=np.float32)

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        return np.asarray(history.astype(np.float32) @ self.B_, dtype=np.float32)

    def unlearning_blocker(self) -> str | None:
        """EASE keeps its training matrix, so it can re-solve without a user -- unless the
        fit was private: a second noisy release of the same users needs fresh noise."""
        if self.privacy_ is not None:
            return "the fit is differentially private; retrain it with fresh noise"
        return None

    def forget(self, user_idx: np.ndarray) -> None:
        """Drop the users' rows and re-solve: ``G' = X^T X - X_u^T X_u`` is the Gram matrix
        of the remaining rows, so ``B`` equals a fit without them."""
        if (why := self.unlearning_blocker()) is not None:
            raise ConfigError(f"Cannot forget exactly: {why}.")
        keep = drop_users(self, user_idx)
        self.user_items_ = keep_rows(self.user_items_, keep)
        self.B_ = ease_weights(self.user_items_, self.config.l2)

    def _attribute(self, item: int, history: np.ndarray, user_idx: int | None) -> Attribution:
        """Exact: the score is ``sum_j x_uj B[j, item]``, one term per history item."""
        weights = row_values(self.user_items_, user_idx, history)
        return exact(item, history, weights * self.B_[history, item])

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {"B": self.B_}
        if not self.config.implicit:
            # The binary pattern is saved with every model (seen_); only weights are extra.
            arrays["user_items.data"] = self.user_items_.data
            arrays["user_items.indices"] = self.user_items_.indices
            arrays["user_items.indptr"] = self.user_items_.indptr
        return arrays, ({} if self.privacy_ is None else {"privacy": self.privacy_})

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:
        shape = self._seen.shape
        self.B_ = np.ascontiguousarray(arrays.float("B", (shape[1], shape[1])))
        self.privacy_ = meta.get("privacy")
        if not self.config.implicit:
            self.user_items_ = arrays.csr("user_items", shape)
        else:
            self.user_items_ = self._seen.astype(np.float32, copy=True)


def ease_weights(x: sp.csr_matrix, l2: float) -> np.ndarray:
    """The EASE weight matrix ``B`` (float32, zero diagonal) of users x items matrix ``x``.

    Steck (2019), eq. 8: ``P = (X^T X + l2 I)^-1``, ``B = -P / diag(P)`` column-wise.
    """
    from scipy.linalg import LinAlgError, cho_factor, cho_solve

    gram = np.asarray((x.T @ x).toarray(), dtype=np.float32)
    gram[np.diag_indices_from(gram)] += np.float32(l2)
    try:
        factor = cho_factor(gram, lower=False, overwrite_a=True, check_finite=False)
    except LinAlgError as e:  # only possible with float32 round-off at a tiny l2
        raise ConfigError(
            f"EASE could not factor X^T X + l2*I with l2={l2}: the system is numerically "
            "singular in float32. Increase l2."
        ) from e
    del gram  # overwritten by the factor
    p = cho_solve(
        factor, np.eye(x.shape[1], dtype=np.float32), overwrite_b=True, check_finite=False
    )
    del factor
    diag = p.diagonal().copy()
    p /= -diag[np.newaxis, :]
    np.fill_diagonal(p, 0.0)
    return np.ascontiguousarray(p, dtype=np.float32)


def ease_weights_from_gram(gram: np.ndarray, l2: float) -> np.ndarray:
    """EASE weights from a symmetric (possibly noisy, indefinite) Gram matrix.

    A noisy Gram matrix (:func:`lmrec.models.dp.noisy_gram`) need not be positive
    semi-definite; its eigenvalues are floored at 0 (the nearest PSD matrix in Frobenius
    norm) before ``l2`` is added, so ``P = V diag(1 / (w + l2)) V^T`` always exists.
    """
    w, v = np.linalg.eigh(np.asarray(gram, dtype=np.float64))
    p = (v / (np.maximum(w, 0.0) + l2)) @ v.T
    p /= -p.diagonal()[np.newaxis, :]
    np.fill_diagonal(p, 0.0)
    return np.ascontiguousarray(p, dtype=np.float32)
