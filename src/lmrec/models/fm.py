"""A LightFM-style hybrid factorization machine for implicit feedback, in PyTorch.

Users and items are each represented by the sum of the embeddings of their id and
of their attribute tokens (Kula, 2015, "Metadata Embeddings for User and Item
Cold-start Recommendations"); the score is the dot product plus an item bias, which
is itself a sum of per-token biases:

.. math::

    q_i = \\sum_{t \\in \\phi(i)} w_{it} E_t, \\quad p_u = \\sum_{t \\in \\psi(u)} w_{ut} E'_t,
    \\quad x_{ui} = p_u \\cdot q_i + \\sum_{t \\in \\phi(i)} w_{it} \\beta_t .

Attribute tokens come from the data set's ``items`` / ``users`` tables:

- numeric columns (e.g. ``age``, ``year``) are cut into quantile buckets;
- string columns holding ``|``-separated lists (e.g. ``genres``) give one token per entry;
- other string columns are one-hot.

Each id has weight 1 and each attribute column a total weight of 1, shared evenly by its
tokens (so a movie with three genres is not three times as "genre-heavy" as one with one).
The vocabularies (columns, kinds, values, bucket edges) are built in ``fit`` and saved as
JSON, so a loaded model encodes new attribute rows exactly as the trained one did.

Cold start: an item with attributes but no training interaction is scored through its
attribute tokens alone. Its id embedding (and any token seen on no training item) is
initialised to zero rather than at random, and negatives are drawn only from items with
training interactions, so those rows never receive a gradient: random or pushed-down
values would only add noise to its score.

Losses: ``bpr`` (mean pairwise logistic loss over ``n_negatives`` uniform negatives) or
``warp``, a batched approximation of WARP (Weston et al., 2011; LightFM's variant):
instead of sampling negatives one by one until one violates the margin, each positive
draws ``n_negatives`` negatives at once; the ones with ``x_uj > x_ui - 1`` are the
violators, the rank of the positive is estimated as ``floor((N - 1) * v / K)`` (``N``
items with training interactions)
(``v`` violators out of ``K`` draws), and the logistic loss on the *hardest* negative
is weighted by ``log(1 + rank)``. Positives with no violator contribute nothing.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pandas.api.types import is_bool_dtype, is_numeric_dtype
from pydantic import Field, model_validator

from lmrec._optional import require
from lmrec.data.dataset import Dataset
from lmrec.errors import ConfigError
from lmrec.models.base import Recommender
from lmrec.models.capabilities import (
    CheckpointedModel,
    DistributedModel,
    DotProductModel,
    FitOptions,
    FoldInModel,
    dot_item_vectors,
    dot_user_vectors,
)
from lmrec.models.config import TorchConfig, search
from lmrec.models.files import StateArrays
from lmrec.models.fitted import Fitted
from lmrec.models.foldin import fold_in_ridge
from lmrec.ops.sparse import empty_csr
from lmrec.train.distributed import DistInfo, broadcast_, setup_distributed
from lmrec.train.pairs import NegativeSampler, ShardedPairTrainer, to_numpy
from lmrec.train.torch_utils import (
    draw_seed,
    resolve_device,
    shared_seed,
    torch_generator,
    torch_threads,
)

#: Separator of multi-valued string attributes such as MovieLens ``genres``.
MULTI_SEP = "|"


class FMConfig(TorchConfig):
    """Hyperparameters of :class:`FactorizationMachine`."""

    renamed: ClassVar[dict[str, str]] = {
        "reg": "l2",
        "fold_in_reg": "fold_in_l2",
        "torch_threads": "n_threads",
    }

    item_features: list[str] = Field(default_factory=lambda: ["genres"])
    """Columns of ``dataset.items`` turned into item tokens."""
    user_features: list[str] = Field(default_factory=list)
    """Columns of ``dataset.users`` turned into user tokens (for ML-100K e.g. age, gender,
    occupation)."""
    use_item_ids: bool = True
    """Give every item its own id embedding (off: items are only their features)."""
    use_user_ids: bool = True
    """Give every user its own id embedding (off: users are only their features)."""
    loss: Literal["bpr", "warp"] = Field(
        default="bpr", json_schema_extra=search("categorical", ["bpr", "warp"])
    )
    """Pairwise logistic loss (``bpr``) or the batched WARP approximation (``warp``)."""
    n_negatives: int = Field(
        default=1, ge=1, json_schema_extra=search("int_log", 2, 20, {"loss": "warp"})
    )
    """Uniform negatives per positive: BPR averages over them, WARP uses the hardest
    violator (use several, e.g. 10, with ``warp``)."""
    n_buckets: int = Field(default=10, ge=1)
    """Quantile buckets of numeric attribute columns."""
    factors: int = Field(default=64, ge=1, json_schema_extra=search("int_log", 16, 256))
    """Dimension of the embeddings."""
    epochs: int = Field(default=20, ge=1, json_schema_extra=search("int", 5, 50))
    """Passes over the training interactions."""
    batch_size: int = Field(default=4096, ge=1)
    """Positive (user, item) pairs per mini-batch."""
    lr: float = Field(default=0.01, gt=0, json_schema_extra=search("float_log", 1e-3, 0.1))
    """Learning rate of the optimizer."""
    l2: float = Field(default=1e-2, ge=0, json_schema_extra=search("float_log", 1e-6, 1e-1))
    """L2 penalty on the user and item representations used in each batch (per pair)."""
    optimizer: Literal["adam", "sgd"] = "adam"
    """Adam (default) or plain SGD."""
    init_std: float = Field(default=0.1, gt=0)
    """Standard deviation of the normal initialisation of the embeddings."""
    fold_in_l2: float = Field(default=1.0, ge=0)
    """Ridge penalty of the closed-form fold-in of histories given at request time."""
    fold_in_alpha: float = Field(default=10.0, ge=0)
    """Implicit-ALS confidence of history items in the fold-in (weight ``1 + alpha``)."""
    bf16: bool = False
    """Run the dot products under bfloat16 autocast (also on CPU); parameters stay float32."""

    @model_validator(mode="after")
    def _check_sides(self) -> Self:
        for side in ("item", "user"):
            feats = getattr(self, f"{side}_features")
            if not getattr(self, f"use_{side}_ids") and not feats:
                raise ValueError(
                    f"use_{side}_ids=False needs at least one {side}_features column; "
                    f"otherwise {side}s have no representation"
                )
            if len(set(feats)) != len(feats):
                raise ValueError(f"{side}_features lists a column twice: {feats}")
        return self


# ---------------------------------------------------------------------- feature encoding
def build_encoders(
    table: pd.DataFrame | None, columns: list[str], n_buckets: int, side: str
) -> list[dict[str, Any]]:
    """JSON-able encoders (one per column) learned from an attribute table.

    Each is ``{"column", "kind", "values"}`` with ``kind`` one of ``bucket`` (``values``
    are the inner quantile edges), ``multi`` (``|``-separated tokens) or ``onehot``.
    """
    if not columns:
        return []
    if table is None:
        raise ConfigError(
            f"{side}_features={columns} but the data set has no {side} attribute table; "
            f"pass {side}_features=[] or attach a {side}s table to the Dataset."
        )
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ConfigError(
            f"Unknown {side}_features column(s) {missing}; the {side}s table has "
            f"{list(table.columns)}."
        )
    encoders = []
    for col in columns:
        s = table[col]
        if is_numeric_dtype(s) and not is_bool_dtype(s):
            vals = s.to_numpy(dtype=np.float64, na_value=np.nan)
            vals = vals[np.isfinite(vals)]
            qs = np.linspace(0, 1, n_buckets + 1)[1:-1]
            edges = np.unique(np.quantile(vals, qs)).tolist() if len(vals) and len(qs) else []
            encoders.append({"column": col, "kind": "bucket", "values": edges})
            continue
        strs = s.dropna().astype(str)
        multi = bool(strs.str.contains(MULTI_SEP, regex=False).any())
        tokens = strs.str.split(MULTI_SEP).explode().str.strip() if multi else strs
        values = sorted(set(tokens[tokens != ""]))
        encoders.append({"column": col, "kind": "multi" if multi else "onehot", "values": values})
    return encoders


def n_tokens(encoder: dict[str, Any]) -> int:
    """Size of one encoder's vocabulary (buckets are one more than the edges)."""
    return len(encoder["values"]) + (1 if encoder["kind"] == "bucket" else 0)


def encode(table: pd.DataFrame, encoders: list[dict[str, Any]]) -> sp.csr_matrix:
    """Attribute rows as a CSR matrix (n_rows, total tokens); each column's weights sum to 1.

    Missing values and values unseen in ``fit`` give no token for that column.
    """
    n = len(table)
    blocks = []
    for enc in encoders:
        s = table[enc["column"]].reset_index(drop=True)
        if enc["kind"] == "bucket":
            vals = s.to_numpy(dtype=np.float64, na_value=np.nan)
            ok = np.flatnonzero(np.isfinite(vals))
            edges = np.asarray(enc["values"], np.float64)
            rows, cols = ok, np.searchsorted(edges, vals[ok], side="right")
        else:
            strs = s.dropna().astype(str)
            if enc["kind"] == "multi":
                strs = strs.str.split(MULTI_SEP).explode().str.strip()
            lookup = {v: k for k, v in enumerate(enc["values"])}
            codes = strs.map(lookup)
            codes = codes[codes.notna()]
            pairs = (
                np.unique(
                    np.column_stack([codes.index.to_numpy(np.int64), codes.to_numpy(np.int64)]),
                    axis=0,
                )
                if len(codes)
                else np.empty((0, 2), np.int64)
            )
            rows, cols = pairs[:, 0], pairs[:, 1]
        counts = np.bincount(rows, minlength=n)
        weights = 1.0 / counts[rows]
        blocks.append(sp.csr_matrix((weights, (rows, cols)), shape=(n, n_tokens(enc))))
    if not blocks:
        return empty_csr(n, 0)
    return sp.csr_matrix(sp.hstack(blocks, format="csr"), dtype=np.float32)


def design(n: int, use_ids: bool, features: sp.csr_matrix) -> sp.csr_matrix:
    """``[I | features]`` (ids first, weight 1) or just ``features``, as sorted CSR."""
    x = (
        sp.hstack([sp.identity(n, np.float32, format="csr"), features], format="csr")
        if use_ids
        else features
    )
    x = sp.csr_matrix(x, dtype=np.float32)
    x.sort_indices()
    return x


class _Bags:
    """Rows of a CSR design matrix fed to ``embedding_bag`` (sum of weighted embeddings)."""

    def __init__(self, torch: Any, x: sp.csr_matrix, device: Any) -> None:
        self.torch, self.device = torch, device
        self.indptr = x.indptr.astype(np.int64)
        self.indices = x.indices.astype(np.int64)
        self.data = x.data.astype(np.float32)

    def __call__(self, table: Any, rows: Any) -> Any:
        """Representations (len(rows), dim) of the given rows, from an embedding ``table``."""
        rows_np = rows.cpu().numpy()
        starts = self.indptr[rows_np]
        lens = self.indptr[rows_np + 1] - starts
        offsets = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
        pos = np.repeat(starts - offsets, lens) + np.arange(int(lens.sum()))
        t = self.torch
        return t.nn.functional.embedding_bag(
            t.from_numpy(self.indices[pos]).to(self.device),
            table,
            t.from_numpy(offsets).to(self.device),
            mode="sum",
            per_sample_weights=t.from_numpy(self.data[pos]).to(self.device),
        )


# ---------------------------------------------------------------------- model
class FactorizationMachine(
    Recommender, FoldInModel, DotProductModel, CheckpointedModel, DistributedModel
):
    """Hybrid matrix factorization with id and attribute embeddings (LightFM-style).

    See the module docstring for the representation, the feature encoding, the cold-start
    behaviour and the WARP approximation. Training is deterministic for a given seed on
    CPU (same torch version and thread count).

    Parameters
    ----------
    config : FMConfig, optional
        Or the same fields as keywords, e.g. ``FactorizationMachine(item_features=["genres"])``.

    Examples
    --------
    >>> from lmrec.testing import checkerboard
    >>> fm = FactorizationMachine(factors=8, epochs=20, batch_size=64).fit(checkerboard())
    >>> fm.recommend(["u1"], k=2)["item"].str[1:].astype(int).mod(2).tolist()
    [1, 1]
    """

    name = "fm"
    config_class = FMConfig
    config: FMConfig

    #: Final representations: users (n_users, factors), items (n_items, factors), item bias.
    user_repr_: Fitted[np.ndarray] = Fitted()
    item_repr_: Fitted[np.ndarray] = Fitted()
    item_bias_: Fitted[np.ndarray] = Fitted()
    #: Embedding tables: rows are ids (when used) then attribute tokens, in encoder order.
    user_embeddings_: Fitted[np.ndarray] = Fitted()
    item_embeddings_: Fitted[np.ndarray] = Fitted()
    item_token_bias_: Fitted[np.ndarray] = Fitted()
    #: Attribute encoders built in fit (JSON-able; saved with the model).
    item_encoders_: Fitted[list[dict[str, Any]]] = Fitted()
    user_encoders_: Fitted[list[dict[str, Any]]] = Fitted()
    history_: Fitted[list[dict[str, float]] | None] = Fitted()
    seed_: Fitted[int | None] = Fitted()

    # ------------------------------------------------------------------ training
    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        torch = require("torch", "torch")
        cfg = self.config
        dist = setup_distributed() if cfg.distributed else DistInfo()
        n_buckets = cfg.n_buckets
        self.item_encoders_ = build_encoders(dataset.items, cfg.item_features, n_buckets, "item")
        self.user_encoders_ = build_encoders(dataset.users, cfg.user_features, n_buckets, "user")
        x_item = design(dataset.n_items, cfg.use_item_ids, self._features(dataset.items, "item"))
        x_user = design(dataset.n_users, cfg.use_user_ids, self._features(dataset.users, "user"))
        device = resolve_device(torch, cfg.device)
        self.seed_ = shared_seed(torch, draw_seed(cfg.seed), dist)
        rng = np.random.default_rng(self.seed_)
        gen = torch_generator(torch, self.seed_)
        users = dataset.column("user_idx").astype(np.int64)
        items = dataset.column("item_idx").astype(np.int64)

        def init(x: sp.csr_matrix, active_rows: np.ndarray) -> Any:
            # Tokens used by no row with training interactions never get a gradient:
            # keep them at zero (see the module docstring on cold start).
            active = np.asarray(x[np.unique(active_rows)].sum(axis=0)).ravel() > 0
            w = torch.randn(x.shape[1], cfg.factors, generator=gen) * cfg.init_std
            w[torch.from_numpy(~active)] = 0.0
            return w.to(device).requires_grad_(True)

        self._params = {
            "user": init(x_user, users),
            "item": init(x_item, items),
            "bias": torch.zeros(x_item.shape[1], 1, device=device, requires_grad=True),
        }
        if dist.is_distributed:  # identical by seed already; the broadcast makes sure
            broadcast_(torch, list(self._params.values()))
        self._bags = {"user": _Bags(torch, x_user, device), "item": _Bags(torch, x_item, device)}
        # Negatives come from items with training interactions only: a catalog-only item
        # drawn as a negative would have its (zero) id embedding pushed down, and its
        # cold-start score would no longer come from its attributes alone.
        sampler = NegativeSampler(users, items, dataset.n_items, rng, candidates=np.unique(items))
        self._n_candidates = sampler.n_candidates
        trainer = ShardedPairTrainer(
            torch,
            self._loss,
            list(self._params.values()),
            users,
            items,
            sampler=sampler,
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
        self._trainer = trainer
        try:
            with torch_threads(torch, cfg.n_threads):
                self.history_ = trainer.fit(cfg.epochs, desc="fm")
            self.user_embeddings_ = to_numpy(self._params["user"])
            self.item_embeddings_ = to_numpy(self._params["item"])
            self.item_token_bias_ = to_numpy(self._params["bias"])[:, 0].copy()
        finally:  # the torch state is only needed while training
            del self._params, self._bags, self._trainer, self._n_candidates
        self.user_repr_ = np.asarray(x_user @ self.user_embeddings_, np.float32)
        self.item_repr_ = np.asarray(x_item @ self.item_embeddings_, np.float32)
        self.item_bias_ = np.asarray(x_item @ self.item_token_bias_, np.float32)

    def _features(self, table: pd.DataFrame | None, side: str) -> sp.csr_matrix:
        encoders = self.item_encoders_ if side == "item" else self.user_encoders_
        n = self.n_items if side == "item" else len(self._user_ids)
        if not encoders or table is None:
            return empty_csr(n, 0)
        return encode(table, encoders)

    def _train_epoch(self) -> dict[str, float]:
        """One pass over the training pairs (available while ``fit`` runs)."""
        return self._trainer._train_epoch()

    def _loss(self, torch: Any, u: Any, i: Any, j: Any) -> Any:
        """Ranking loss of a batch (BPR or WARP, see the module docstring) and its L2 penalty."""
        f = torch.nn.functional
        p, bags = self._params, self._bags
        b, k = j.shape
        pu = bags["user"](p["user"], u)  # (B, F)
        qi = bags["item"](p["item"], i)  # (B, F)
        qj = bags["item"](p["item"], j.reshape(-1)).reshape(b, k, -1)  # (B, K, F)
        bi = bags["item"](p["bias"], i)[:, 0]
        bj = bags["item"](p["bias"], j.reshape(-1)).reshape(b, k)
        x_ui = torch.einsum("bf,bf->b", pu, qi).float() + bi
        x_uj = torch.einsum("bf,bkf->bk", pu, qj).float() + bj
        diff = x_ui[:, None] - x_uj  # (B, K)
        if self.config.loss == "bpr":
            loss = -f.logsigmoid(diff).mean()
        else:
            with torch.no_grad():
                n_violators = (diff < 1.0).sum(dim=1)
                rank = torch.floor((self._n_candidates - 1) * n_violators / k)
                weight = torch.log1p(rank)  # 0 when nothing violates the margin
                hardest = x_uj.argmax(dim=1, keepdim=True)
            loss = (weight * -f.logsigmoid(diff.gather(1, hardest)[:, 0])).mean()
        l2 = (pu.square().sum() + qi.square().sum() + qj.square().sum() / k) / b
        return loss, self.config.l2 * l2

    # ------------------------------------------------------------------ inference
    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self.user_repr_[user_idx] @ self.item_repr_.T + self.item_bias_

    def item_vectors(self) -> np.ndarray:
        """Item vectors with the item bias as a last column (float32, C-contiguous)."""
        return self._memo(
            "item_vectors",
            lambda: dot_item_vectors(self.item_repr_, self.item_bias_),
        )

    def user_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        """User vectors of known users with a column of ones (for the item bias)."""
        return dot_user_vectors(self.user_repr_[user_idx], bias=True)

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        """Fold in a new user by the implicit-ALS ridge solve against the item representations.

        The user vector is regressed so that ``p @ q_i`` approaches 1 on history items and
        0 elsewhere (see :func:`lmrec.models.bpr.fold_in_ridge`); attribute-only (cold)
        items take part through their feature-based representations.
        """
        return fold_in_ridge(
            self.item_repr_,
            self.item_bias_,
            history,
            reg=self.config.fold_in_l2,
            alpha=self.config.fold_in_alpha,
        )

    def represent_items(self, items: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Representations and biases of (new) items from their attributes alone.

        ``items`` has the trained ``item_features`` columns; rows are encoded with the
        vocabularies learned in ``fit`` (unseen values give no token). Returns ``repr``
        (n, factors) float32 and ``bias`` (n,) float32, scored against users as
        ``user_repr_ @ repr.T + bias``.
        """
        self._check_fitted()
        missing = [c for c in self.config.item_features if c not in items.columns]
        if missing:
            raise ConfigError(f"represent_items needs the item_features columns {missing}.")
        x = encode(items, self.item_encoders_)
        offset = self.n_items if self.config.use_item_ids else 0
        emb = self.item_embeddings_[offset:]
        bias = self.item_token_bias_[offset:]
        return np.asarray(x @ emb, np.float32), np.asarray(x @ bias, np.float32)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {
            "user_repr": self.user_repr_,
            "item_repr": self.item_repr_,
            "item_bias": self.item_bias_,
            "user_embeddings": self.user_embeddings_,
            "item_embeddings": self.item_embeddings_,
            "item_token_bias": self.item_token_bias_,
        }
        meta = {
            "item_encoders": self.item_encoders_,
            "user_encoders": self.user_encoders_,
            "history": self.history_,
            "seed": self.seed_,
        }
        return arrays, meta

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:
        n_users, n_items = self._seen.shape
        self.user_repr_ = arrays.float("user_repr", (n_users, None))
        dim = self.user_repr_.shape[1]
        self.item_repr_ = arrays.float("item_repr", (n_items, dim))
        self.item_bias_ = arrays.float("item_bias", (n_items,))
        self.user_embeddings_ = arrays.float("user_embeddings", (None, self.config.factors))
        self.item_embeddings_ = arrays.float("item_embeddings", (None, self.config.factors))
        self.item_token_bias_ = arrays.float("item_token_bias", (len(self.item_embeddings_),))
        self.item_encoders_ = meta.get("item_encoders") or []
        self.user_encoders_ = meta.get("user_encoders") or []
        self.history_ = meta.get("history")
        self.seed_ = meta.get("seed")
