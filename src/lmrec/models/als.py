"""Implicit-feedback matrix factorisation by alternating least squares (Hu, Koren & Volinsky 2008).

Every observed (user, item) pair is a positive preference ``p = 1`` held with
confidence ``c = 1 + alpha * r``; every unobserved pair is ``p = 0`` with confidence
``c = 1``. ALS minimises

.. math::

    \\sum_{u,i} c_{ui} (p_{ui} - x_u^\\top y_i)^2
    + \\lambda \\Big(\\sum_u \\lVert x_u \\rVert^2 + \\sum_i \\lVert y_i \\rVert^2\\Big)

by solving for all user factors with the item factors fixed, then the reverse. The
fit is implicit's CPU conjugate-gradient iteration (Takács et al. 2011); lmrec adds
the id maps, exclusion, batching, save/load and a closed-form fold-in of new users.

Which code runs the iteration (``solver``): implicit's Cython CG (``"implicit"``),
or the same iteration compiled by numba, :func:`lmrec.models.als_cg.solve_rows`
(``"numba"``, the ``fast`` extra), which reads each row's fixed factor vectors from
memory once instead of once per CG step. Results agree to float32 rounding; a sweep
takes 2-3.5x less time (1M-100M interactions), and its time grows with the data as
N^1.03-1.06 against implicit's N^1.07-1.19 (several runs, ``benchmarks/RESULTS.md``).
``"auto"`` (the default) is ``"numba"`` when numba is installed, else ``"implicit"``.

With ``l2_scaling="count"`` each user's (item's) penalty is instead
``lambda * n_u`` (``lambda * n_i``), ``n`` its number of interactions: the
"weighted-lambda" objective of ALS-WR and of Spark MLlib's ALS. implicit cannot fit
it, so that mode solves the exact normal equations itself, batched in float64
(:mod:`lmrec.models.als_wr`); a model fitted this way matches Spark's
``ALS(implicitPrefs=True, regParam=lambda)`` on the same data.

How ``alpha`` maps onto implicit
--------------------------------
implicit 0.7 treats each stored matrix value *as the confidence itself*, not as
``r``: its solver adds ``(value - 1) * y_i y_i^T`` to ``Y^T Y`` and ``value * y_i``
to the right-hand side, and its ``fit`` only multiplies the matrix by its own
``alpha`` (when that is not 1). Fitting implicit on raw 0/1 data with ``alpha=1``
therefore gives observed pairs confidence 1 -- the same as unobserved ones -- which
is not the model of the paper. lmrec builds the confidence ``1 + alpha * r``
itself (``r`` = 1 when ``implicit=True``, else the interaction weight) and passes
it to implicit with implicit's ``alpha=1``; that is, ``ALS(alpha=a)`` equals
``implicit.cpu.als.AlternatingLeastSquares(alpha=1.0).fit(1 + a * R)`` exactly.

Determinism
-----------
The same ``seed`` gives the same initial factors (both solvers draw implicit's). With
``n_threads=1`` two fits are bitwise equal. With several threads implicit solves
users (and items) in parallel; each solve reads only the other side's factors, so
results are in practice equal too, but implicit and OpenMP make no such promise --
tests that need bitwise equality use ``n_threads=1``. The numba solver solves each
row on one thread, so its fits are bitwise equal for any number of threads.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from lmrec.data.dataset import Dataset
from lmrec.errors import ConfigError, DataError
from lmrec.models.base import Recommender
from lmrec.models.capabilities import (
    DotProductModel,
    FitOptions,
    FoldInModel,
    SparkEngineModel,
    dot_item_vectors,
    dot_user_vectors,
)
from lmrec.models.config import ModelConfig, search
from lmrec.models.explain import Attribution, exact
from lmrec.models.files import StateArrays
from lmrec.models.fitted import Fitted


class ALSConfig(ModelConfig):
    """Hyperparameters of :class:`ALS`."""

    renamed: ClassVar[dict[str, str]] = {
        "regularization": "l2",
        "regularization_scaling": "l2_scaling",
        "num_threads": "n_threads",
    }

    factors: int = Field(default=64, ge=1, json_schema_extra=search("int_log", 16, 256))
    """Number of latent factors per user and per item."""
    l2: float = Field(default=0.01, ge=0, json_schema_extra=search("float_log", 1e-3, 10.0))
    """L2 penalty ``lambda`` on every user and item factor vector (see l2_scaling)."""
    l2_scaling: Literal["none", "count"] = "none"
    """'none': the same ``lambda`` for every row (implicit's CG fit); 'count': ``lambda`` times
    the row's number of interactions, Spark MLlib's ALS-WR objective (exact batched solves)."""
    alpha: float = Field(default=1.0, ge=0, json_schema_extra=search("float_log", 1.0, 100.0))
    """Confidence scaling: an observed pair has confidence ``1 + alpha * r`` (HKV eq. 6)."""
    iterations: int = Field(default=15, ge=1, json_schema_extra=search("int", 5, 30))
    """Number of ALS sweeps (each solves all users, then all items)."""
    seed: int = Field(default=0, ge=0)
    """Seed of the random initial factors; the same seed gives the same model."""
    n_threads: int = Field(default=0, ge=0)
    """Threads for the fit; 0 uses the CPUs lmrec may use (affinity, cgroup quota, or
    ``LMREC_NUM_THREADS``). Use 1 for bitwise-reproducible fits."""
    implicit: bool = True
    """Binarise interaction weights (``r = 1``) before the confidence; else ``r = weight``."""
    solver: Literal["auto", "implicit", "numba"] = "auto"
    """CG code of the fit (``l2_scaling="none"``): 'implicit' (implicit's
    Cython); 'numba' (:mod:`lmrec.models.als_cg`, the same iteration 2-3.5x faster,
    needs the ``fast`` extra); 'auto' is 'numba' when numba is installed."""


class ALS(Recommender, FoldInModel, DotProductModel, SparkEngineModel):
    """Implicit-feedback ALS: implicit's conjugate-gradient fit, or exact ALS-WR solves.

    The default fits implicit's objective (one ``l2`` for all rows) with
    implicit's CG iteration (run by lmrec's numba kernel when the ``fast`` extra is
    installed); ``l2_scaling="count"`` fits Spark MLlib's objective
    (penalty times each row's interaction count) with lmrec's batched exact solves.

    Scores are dot products ``x_u . y_i`` of float32 user and item factors. New users
    given as item lists are folded in exactly (one small linear solve per user).

    Parameters
    ----------
    config : ALSConfig, optional
        Hyperparameters; or pass them as keywords (``ALS(factors=32)``).

    Examples
    --------
    >>> from lmrec.testing import checkerboard
    >>> model = ALS(factors=4, iterations=5, n_threads=1).fit(checkerboard())
    >>> model.user_factors_.shape, model.item_factors_.dtype
    ((40, 4), dtype('float32'))
    """

    name = "als"
    config_class = ALSConfig
    config: ALSConfig

    user_factors_: Fitted[np.ndarray] = Fitted()
    """User factors ``X``, float32 (n_users, factors)."""
    item_factors_: Fitted[np.ndarray] = Fitted()
    """Item factors ``Y``, float32 (n_items, factors)."""
    iteration_seconds_: list[float]
    """Wall time of each ALS sweep of the last fit (not saved with the model)."""
    solver_: str
    """How the last fit solved: 'implicit' (implicit's CG), 'numba' (the same CG by
    :mod:`lmrec.models.als_cg`) or 'exact' (ALS-WR); not saved with the model."""

    # ------------------------------------------------------------------ fitting
    def confidence(self, weights: sp.csr_matrix) -> sp.csr_matrix:
        """The confidence matrix ``1 + alpha * r`` on the pattern of ``weights`` (users x items).

        Shares the index arrays of ``weights`` when they are writable (implicit needs
        writable buffers); only the values are new.
        """
        cfg = self.config
        if cfg.implicit:
            data = np.full(weights.nnz, 1.0 + cfg.alpha, np.float32)
        else:
            if weights.nnz and weights.data.min() < 0:
                raise DataError(
                    "ALS with implicit=False needs non-negative interaction weights (they "
                    "scale the confidence 1 + alpha * weight); got negative weights."
                )
            data = (1.0 + cfg.alpha * weights.data.astype(np.float64)).astype(np.float32)
        # implicit's Cython kernels take writable buffers; a data set's arrays are read-only.
        indices, indptr = weights.indices, weights.indptr
        if not indices.flags.writeable:
            indices = indices.copy()
        if not indptr.flags.writeable:
            indptr = indptr.copy()
        out = sp.csr_matrix((data, indices, indptr), shape=weights.shape, copy=False)
        out.has_sorted_indices = weights.has_sorted_indices
        return out

    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        from threadpoolctl import threadpool_limits

        cfg = self.config
        self.iteration_seconds_ = []
        conf = self.confidence(dataset._native_matrix())  # writable buffers, no index copy
        self.solver_ = (
            "exact"
            if cfg.l2_scaling == "count"
            else ("numba" if self._uses_numba() else "implicit")
        )
        if cfg.l2_scaling == "count":
            from lmrec.models.als_wr import fit_als_wr

            # The batched solves are BLAS/LAPACK calls: num_threads caps BLAS (0 = all cores).
            with threadpool_limits(cfg.n_threads or None, "blas"):
                X, Y = fit_als_wr(
                    conf,
                    factors=cfg.factors,
                    regularization=cfg.l2,
                    iterations=cfg.iterations,
                    seed=cfg.seed,
                )
            self.user_factors_ = X.astype(np.float32)
            self.item_factors_ = Y.astype(np.float32)
            return
        if self.solver_ == "numba":
            with threadpool_limits(1, "blas"):
                self._fit_numba(conf)
            return
        from lmrec._optional import require
        from lmrec._threads import num_threads

        AlternatingLeastSquares = require("implicit.cpu.als").AlternatingLeastSquares
        # implicit runs its own OpenMP threads; a multithreaded BLAS underneath them
        # oversubscribes the cores and can make the fit ~10x slower (implicit's advice).
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=cfg.factors,
                regularization=cfg.l2,
                alpha=1.0,  # the confidence is already 1 + alpha * r; see the module docstring
                dtype=np.float32,
                use_cg=True,
                iterations=cfg.iterations,
                calculate_training_loss=False,
                num_threads=cfg.n_threads or num_threads(),
                random_state=cfg.seed,
            )
            model.fit(
                conf,
                show_progress=False,
                callback=lambda _it, seconds, _loss: self.iteration_seconds_.append(seconds),
            )
        self.user_factors_ = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)

    def _uses_numba(self) -> bool:
        """Whether this fit runs :mod:`lmrec.models.als_cg` (else implicit's CG)."""
        from lmrec.models import als_cg

        solver = self.config.solver
        if solver == "numba" and not als_cg.available():
            from lmrec.errors import MissingExtraError

            raise MissingExtraError(
                "ALS(solver='numba') needs numba. Install it with: pip install 'lmrec[fast]', "
                "or use solver='auto' (falls back to implicit)."
            )
        return solver == "numba" or (solver == "auto" and als_cg.available())

    def _fit_numba(self, conf: sp.csr_matrix) -> None:
        """implicit's CG iteration, each half-step by :func:`lmrec.models.als_cg.solve_rows`.

        Initial factors are implicit's for the same seed, and each sweep solves users,
        then items, as implicit's ``fit`` does.
        """
        from lmrec._optional import require
        from lmrec._progress import progress
        from lmrec.models.als_cg import solve_rows

        cfg = self.config
        n_users, n_items = conf.shape
        random = require("implicit.utils").check_random_state(cfg.seed)
        x = random.random((n_users, cfg.factors), dtype=np.float32) * 0.01
        y = random.random((n_items, cfg.factors), dtype=np.float32) * 0.01
        by_item = conf.T.tocsr()
        self.iteration_seconds_ = []
        with progress(total=cfg.iterations, desc="als", unit="it") as bar:
            for _ in range(cfg.iterations):
                started = time.perf_counter()
                solve_rows(conf, x, y, cfg.l2, num_threads=cfg.n_threads)
                solve_rows(by_item, y, x, cfg.l2, num_threads=cfg.n_threads)
                self.iteration_seconds_.append(time.perf_counter() - started)
                bar.update(1)
        self.user_factors_, self.item_factors_ = x, y

    # ------------------------------------------------------------------ scoring
    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self.user_factors_[user_idx] @ self.item_factors_.T

    #: Spark MLlib's ALS (implicit preferences) fits the count-scaled objective.
    spark_estimator = "als"

    @classmethod
    def spark_params(cls, config: ModelConfig) -> dict[str, Any]:
        """MLlib ALS settings (``rank``, ``regParam``, ``alpha``, ``maxIter``, ``seed``) for
        ``config``; Spark always scales the penalty by each row's interaction count."""
        cfg = ALSConfig.model_validate(config.model_dump())
        if cfg.l2_scaling != "count":
            raise ConfigError(
                "Spark's ALS always scales the penalty by each row's interaction count "
                "(l2_scaling=count); drop the parameter or use the local engine."
            )
        return {
            "rank": cfg.factors,
            "regParam": cfg.l2,
            "alpha": cfg.alpha,
            "maxIter": cfg.iterations,
            "seed": cfg.seed,
        }

    def item_vectors(self) -> np.ndarray:
        """The item factors (float32, C-contiguous): scores are ``user . item``."""
        return self._memo("item_vectors", lambda: dot_item_vectors(self.item_factors_))

    def user_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        """The factors of known users."""
        return dot_user_vectors(self.user_factors_[user_idx])

    def fold_in(self, history: sp.csr_matrix) -> np.ndarray:
        """User factors for histories given at request time, by the exact ALS user solve.

        For each row ``u`` of ``history`` (n, n_items) with confidences ``C_u`` and
        preferences ``p_u`` (1 on stored items),

        .. math:: x_u = (Y^T Y + Y^T (C_u - I) Y + \\lambda_u I)^{-1} Y^T C_u p_u

        solved in float64, where ``lambda_u`` is ``l2`` (times the number of
        items in the history when ``l2_scaling="count"``, as in the fit).
        ``Y^T Y`` is computed once per call; each user then costs O(n_u f^2 + f^3). An
        empty history gives a zero vector.

        Returns
        -------
        ndarray
            float32 (n, factors).
        """
        from lmrec.models.als_wr import solve_rows

        self._check_fitted()
        conf = self.confidence(sp.csr_matrix(history))
        penalty = np.full(conf.shape[0], self.config.l2, np.float64)
        if self.config.l2_scaling == "count":
            penalty *= np.diff(conf.indptr)
        return solve_rows(conf, self.item_factors_, penalty).astype(np.float32)

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        return self.fold_in(history) @ self.item_factors_.T

    def _attribute(self, item: int, history: np.ndarray, user_idx: int | None) -> Attribution:
        """Exact, as implicit's ``explain`` (Hu, Koren and Volinsky 2008, section 5).

        The fold-in factor is ``x_u = W_u Y^T C_u p_u`` with
        ``W_u = (Y^T Y + Y^T (C_u - I) Y + lambda_u I)^-1``, so the score
        ``y_i . x_u = sum_j c_uj (y_i^T W_u y_j)``: one term per history item, summing to
        the score of the user's history folded in (:meth:`fold_in`).
        """
        cfg = self.config
        y = np.asarray(self.item_factors_, dtype=np.float64)
        # The confidence of a (binary) history item, as confidence() gives it.
        conf = np.full(len(history), 1.0 + cfg.alpha, np.float64)
        penalty = cfg.l2 * (len(history) if cfg.l2_scaling == "count" else 1)
        yh = y[history]
        a = y.T @ y + (yh.T * (conf - 1.0)) @ yh + penalty * np.eye(y.shape[1])
        weighted_item = np.linalg.solve(a, y[item])
        return exact(item, history, conf * (yh @ weighted_item))

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}, {}

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:
        (n_users, n_items), f = self._seen.shape, self.config.factors
        self.user_factors_ = np.ascontiguousarray(arrays.float("user_factors", (n_users, f)))
        self.item_factors_ = np.ascontiguousarray(arrays.float("item_factors", (n_items, f)))
