"""Matrix factorization trained with Bayesian Personalized Ranking, in PyTorch.

BPR (Rendle et al., 2009, "BPR: Bayesian Personalized Ranking from Implicit
Feedback") learns user factors ``U``, item factors ``V`` and item biases ``b`` so that
an item a user interacted with scores above an item drawn uniformly at random:

.. math::

    \\min_\\Theta \\sum_{(u, i, j)} -\\ln \\sigma(x_{ui} - x_{uj})
    + \\lambda \\lVert\\Theta\\rVert^2,
    \\qquad x_{ui} = U_u \\cdot V_i + b_i .

Training uses large shuffled mini-batches of positives with vectorized uniform
negative sampling and Adam (or SGD). After ``fit`` the factors are kept as float32
NumPy arrays, so scoring, saving and loading never need torch.

``distributed=True`` trains data-parallel across the ranks of a ``torchrun`` launch
(:class:`ShardedPairTrainer`, :mod:`lmrec.train.distributed`), and
``fit(data, checkpoint_dir=..., checkpoint_every=...)`` saves checkpoints after every
epoch (and every ``checkpoint_every`` steps) and resumes from them exactly, mid-epoch
and with any number of ranks.

torch is imported only inside functions (``import lmrec.models.bpr`` stays cheap), and
the helpers here (:func:`resolve_device`, :class:`NegativeSampler`,
:func:`fold_in_ridge`) are shared with :mod:`lmrec.models.fm`.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from lmrec._optional import require
from lmrec.data.dataset import Dataset
from lmrec.models.base import Recommender
from lmrec.models.capabilities import (
    CheckpointedModel,
    DistributedModel,
    DotProductModel,
    FitOptions,
    FoldInModel,
    PrivateModel,
    dot_item_vectors,
    dot_user_vectors,
)
from lmrec.models.config import TorchConfig, search
from lmrec.models.dp import DPConfig
from lmrec.models.files import StateArrays
from lmrec.models.fitted import Fitted
from lmrec.models.foldin import fold_in_ridge
from lmrec.train.distributed import (
    DistInfo,
    broadcast_,
    setup_distributed,
)
from lmrec.train.pairs import NegativeSampler, ShardedPairTrainer, to_numpy
from lmrec.train.torch_utils import (
    draw_seed,
    resolve_device,
    shared_seed,
    torch_generator,
    torch_threads,
)

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------- model
class BPRConfig(TorchConfig, DPConfig):
    """Hyperparameters of :class:`BPR`."""

    renamed: ClassVar[dict[str, str]] = {
        "reg": "l2",
        "fold_in_reg": "fold_in_l2",
        "torch_threads": "n_threads",
    }

    factors: int = Field(default=64, ge=1, json_schema_extra=search("int_log", 16, 256))
    """Dimension of the user and item factors."""
    epochs: int = Field(default=20, ge=1, json_schema_extra=search("int", 10, 100))
    """Passes over the training interactions."""
    batch_size: int = Field(default=4096, ge=1)
    """Positive (user, item) pairs per mini-batch."""
    lr: float = Field(default=0.01, gt=0, json_schema_extra=search("float_log", 1e-3, 0.1))
    """Learning rate of the optimizer."""
    l2: float = Field(default=1e-2, ge=0, json_schema_extra=search("float_log", 1e-6, 1e-2))
    """L2 penalty on the factors and biases used in each batch (per pair)."""
    n_negatives: int = Field(default=1, ge=1)
    """Uniform negatives per positive; the loss averages over them."""
    optimizer: Literal["adam", "sgd"] = "adam"
    """Adam (default, robust) or plain SGD (needs a larger ``lr``)."""
    init_std: float = Field(default=0.1, gt=0)
    """Standard deviation of the normal initialisation of the factors."""
    fold_in_l2: float = Field(default=1.0, ge=0)
    """Ridge penalty of the closed-form fold-in of histories given at request time."""
    fold_in_alpha: float = Field(default=10.0, ge=0)
    """Implicit-ALS confidence of history items in the fold-in (weight ``1 + alpha``)."""
    bf16: bool = False
    """Run the dot products under bfloat16 autocast (also on CPU); parameters stay float32."""
    dp_clip: float = 0.1
    """With ``dp_epsilon``: bound on the L2 norm of one user's gradient on the item side.
    At or below the users' gradient norms (MovieLens-100K: 0.1 clips every user), Adam
    makes its exact value irrelevant; a larger bound lets the noise drown the unclipped."""
    dp_users_per_step: int = Field(default=128, ge=1)
    """With ``dp_epsilon``: users sampled per DP-SGD step on average (Poisson sampling);
    each sampled user contributes all their items, each with a uniform negative."""


class BPR(
    Recommender, FoldInModel, DotProductModel, CheckpointedModel, DistributedModel, PrivateModel
):
    """Matrix factorization with the BPR pairwise ranking loss (Rendle et al., 2009).

    Scores are ``U[u] @ V.T + b``. Training is deterministic for a given ``seed`` on
    CPU (same torch version and thread count); CUDA embedding gradients use atomics,
    so GPU runs may differ in the last bits.

    Parameters
    ----------
    config : BPRConfig, optional
        Or the same fields as keywords, e.g. ``BPR(factors=32, epochs=10)``.

    Examples
    --------
    >>> from lmrec.testing import checkerboard
    >>> model = BPR(factors=8, epochs=20, batch_size=64, seed=0).fit(checkerboard())
    >>> model.recommend(["u0"], k=2)["item"].str[1:].astype(int).mod(2).tolist()
    [0, 0]
    """

    name = "bpr"
    config_class = BPRConfig
    #: Checkpoints after every epoch and, with ``FitOptions.checkpoint_every``, every N steps:
    #: saved atomically by rank 0 (parameters, Adam state, epoch, batch, seed); a fit
    #: resumes from ``FitOptions.checkpoint_dir`` with any number of ranks.
    checkpoint_steps = True
    config: BPRConfig

    user_factors_: Fitted[np.ndarray] = Fitted()
    item_factors_: Fitted[np.ndarray] = Fitted()
    item_bias_: Fitted[np.ndarray] = Fitted()
    #: Per-epoch training statistics (``{"epoch": ..., "loss": ...}``) of the last fit.
    history_: Fitted[list[dict[str, float]] | None] = Fitted()
    #: The seed actually used (the config seed, or the drawn one when it is ``None``).
    seed_: Fitted[int | None] = Fitted()
    #: With ``dp_epsilon``: user-level DP-SGD (Opacus) on the item side, users folded in;
    #: see lmrec.models.bpr_dp.
    dp_mechanism = "DP-SGD (Opacus, RDP accountant), user level, item side, joint DP"
    #: The differential-privacy report of the fit (None without ``dp_epsilon``).
    privacy_: dict[str, Any] | None = None

    # ------------------------------------------------------------------ training
    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        self.privacy_ = None
        if self.config.dp_epsilon is not None:
            self._fit_private(dataset, options)
            return
        torch = require("torch", "torch")
        cfg = self.config
        dist = setup_distributed() if cfg.distributed else DistInfo()
        device = resolve_device(torch, cfg.device)
        self.seed_ = shared_seed(torch, draw_seed(cfg.seed), dist)
        rng = np.random.default_rng(self.seed_)
        gen = torch_generator(torch, self.seed_)

        def init(n: int, f: int) -> Any:
            w = torch.randn(n, f, generator=gen) * cfg.init_std
            return w.to(device).requires_grad_(True)

        self._params = {
            "user": init(dataset.n_users, cfg.factors),
            "item": init(dataset.n_items, cfg.factors),
            "bias": torch.zeros(dataset.n_items, device=device, requires_grad=True),
        }
        users = dataset.column("user_idx").astype(np.int64)
        items = dataset.column("item_idx").astype(np.int64)
        if dist.is_distributed:  # identical by seed already; the broadcast makes sure
            broadcast_(torch, list(self._params.values()))
        self._trainer = ShardedPairTrainer(
            torch,
            self._loss,
            list(self._params.values()),
            users,
            items,
            sampler=NegativeSampler(users, items, dataset.n_items, rng),
            rng=rng,
            device=device,
            batch_size=cfg.batch_size,
            n_negatives=cfg.n_negatives,
            lr=cfg.lr,
            optimizer=cfg.optimizer,
            bf16=cfg.bf16,
            seed=self.seed_,
            dist=dist,
            names=list(self._params),
            checkpoint_dir=options.checkpoint_dir,
            checkpoint_every=options.checkpoint_every,
        )
        try:
            with torch_threads(torch, cfg.n_threads):
                self.history_ = self._trainer.fit(cfg.epochs, desc="bpr")
            self.user_factors_ = to_numpy(self._params["user"])
            self.item_factors_ = to_numpy(self._params["item"])
            self.item_bias_ = to_numpy(self._params["bias"])
        finally:  # the torch state is only needed while training
            del self._params, self._trainer

    def _fit_private(self, dataset: Dataset, options: FitOptions) -> None:
        """User-level DP-SGD of the item side, users folded in (:mod:`lmrec.models.bpr_dp`)."""
        from lmrec.models.bpr_dp import check_private, train_private

        cfg = self.config
        check_private(cfg, dataset, options)
        torch = require("torch", "torch")
        self.seed_ = draw_seed(cfg.seed)
        with torch_threads(torch, cfg.n_threads):
            arrays, self.history_, self.privacy_ = train_private(
                torch, cfg, dataset.matrix.tocsr(), resolve_device(torch, cfg.device)
            )
        self.user_factors_ = arrays["user_factors"]
        self.item_factors_ = arrays["item_factors"]
        self.item_bias_ = arrays["item_bias"]

    def _train_epoch(self) -> dict[str, float]:
        """One pass over the training pairs (available while ``fit`` runs)."""
        return self._trainer._train_epoch()

    def _loss(self, torch: Any, u: Any, i: Any, j: Any) -> Any:
        """Mean BPR loss of a batch plus the L2 penalty of the parameters it touches."""
        f = torch.nn.functional
        p = self._params
        pu = f.embedding(u, p["user"])  # (B, F)
        qi = f.embedding(i, p["item"])  # (B, F)
        qj = f.embedding(j, p["item"])  # (B, K, F)
        bi, bj = p["bias"][i], p["bias"][j]
        x_ui = torch.einsum("bf,bf->b", pu, qi).float() + bi
        x_uj = torch.einsum("bf,bkf->bk", pu, qj).float() + bj
        loss = -f.logsigmoid(x_ui[:, None] - x_uj).mean()
        n = u.shape[0]
        l2 = (
            pu.square().sum()
            + qi.square().sum()
            + qj.square().sum() / j.shape[1]
            + bi.square().sum()
            + bj.square().sum() / j.shape[1]
        ) / n
        return loss, self.config.l2 * l2

    # ------------------------------------------------------------------ inference
    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self.user_factors_[user_idx] @ self.item_factors_.T + self.item_bias_

    def item_vectors(self) -> np.ndarray:
        """Item vectors with the item bias as a last column (float32, C-contiguous)."""
        return self._memo(
            "item_vectors",
            lambda: dot_item_vectors(self.item_factors_, self.item_bias_),
        )

    def user_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        """User vectors of known users with a column of ones (for the item bias)."""
        return dot_user_vectors(self.user_factors_[user_idx], bias=True)

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        """Fold in new users with one implicit-ALS ridge solve (see :func:`fold_in_ridge`)."""
        return fold_in_ridge(
            self.item_factors_,
            self.item_bias_,
            history,
            reg=self.config.fold_in_l2,
            alpha=self.config.fold_in_alpha,
        )

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {
            "user_factors": self.user_factors_,
            "item_factors": self.item_factors_,
            "item_bias": self.item_bias_,
        }
        meta: dict[str, Any] = {"history": self.history_, "seed": self.seed_}
        if self.privacy_ is not None:
            meta["privacy"] = self.privacy_
        return arrays, meta

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:
        (n_users, n_items), f = self._seen.shape, self.config.factors
        self.user_factors_ = arrays.float("user_factors", (n_users, f))
        self.item_factors_ = arrays.float("item_factors", (n_items, f))
        self.item_bias_ = arrays.float("item_bias", (n_items,))
        self.history_ = meta.get("history")
        self.seed_ = meta.get("seed")
        self.privacy_ = meta.get("privacy")


# ---------------------------------------------------------------------- training loop
