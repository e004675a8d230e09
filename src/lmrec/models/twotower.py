"""A two-tower hybrid: learned item ids plus a projection of frozen language-model text.

Item tower
    Every item has two vectors of size ``factors``: a *target* vector ``v_i`` (what a
    user vector is matched against) and a *history* vector ``h_i`` (what a user's
    history is built from). Each is a learned id embedding plus a linear projection of
    the item's frozen sentence embedding ``e_i`` (:class:`lmrec.text.TextEncoder` of
    :func:`lmrec.text.templates.item_texts`)::

        v_i = m_i * id_out[i] + W_out e_i,      b_i = m_i * bias[i] + w_b . e_i
        h_i = m_i * id_in[i]  + W_in  e_i

    ``m_i`` is 1 for items with training interactions and 0 for the others, so an item
    nobody interacted with (a catalog-only item) is scored from its text alone. During
    training ``m_i`` is also set to 0 at random (``id_dropout``), which makes the text
    projection carry signal on its own instead of leaving everything to the ids.
User tower
    ``u = sum_{i in H} h_i / |H|^history_power`` over the user's history ``H``
    (``history_power`` 1 is the mean, 0.5 the attention-free "sqrt" weighting), plus
    optionally ``W_user t_u`` for the user's attribute text ``t_u``
    (:func:`lmrec.text.templates.user_texts`) and a user id embedding. The score is
    ``u . v_i + b_i``. Because the user vector is a function of the history, a history
    given at request time (a new user) is scored by the same tower: no fold-in solve.
Loss
    ``softmax`` (default): a mini-batch of *users*; each step hides a random
    ``history_dropout`` share of every user's history from the user tower and scores
    the full catalog; the loss is the multinomial log-likelihood of the hidden items
    (the Mult-DAE objective of Liang et al., 2018, restricted to the hidden items so
    the tower cannot learn to copy its input). A full softmax over the catalog is
    exact and cheap for catalogs of a few thousand items (MovieLens-100K: 1,682), so
    no sampling and no logQ correction are needed; it trained clearly better than BPR
    on MovieLens-100K. ``bpr``: the same user batches, with ``n_negatives`` uniform
    negatives per hidden positive and ``-log sigmoid(x_ui - x_uj)``.

Training uses the hand-written Adam of :mod:`lmrec.models.bpr` (``torch.optim`` imports
``torch._dynamo``, seconds per process) with decoupled weight decay (AdamW-style).
After ``fit`` the item matrix, item bias and user vectors are precomputed as float32
NumPy arrays; scoring is a dot product and never needs torch. The text embeddings are
saved with the model (they are data the item tower needs at inference), and so are
the tower weights (as NumPy arrays in safetensors), so ``score_history`` works after
a load.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from lmrec._optional import require
from lmrec._progress import progress
from lmrec.data.dataset import Dataset
from lmrec.models.base import Recommender
from lmrec.models.capabilities import (
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
from lmrec.train.distributed import (
    DistInfo,
    all_reduce_sum_,
    batch_rng,
    broadcast_,
    epoch_order,
    setup_distributed,
    shard_bounds,
)
from lmrec.train.pairs import Optimizer
from lmrec.train.torch_utils import (
    autocast,
    draw_seed,
    resolve_device,
    shared_seed,
    torch_generator,
    torch_threads,
)

logger = logging.getLogger(__name__)


class TwoTowerConfig(TorchConfig, DPConfig):
    """Hyperparameters of :class:`TwoTower`."""

    renamed: ClassVar[dict[str, str]] = {"torch_threads": "n_threads"}

    factors: int = Field(default=64, ge=1, json_schema_extra=search("int_log", 16, 128))
    """Dimension of the user and item vectors."""
    epochs: int = Field(default=60, ge=1, json_schema_extra=search("int", 20, 100))
    """Passes over the training users."""
    batch_size: int = Field(default=128, ge=1)
    """Users per mini-batch."""
    lr: float = Field(default=0.005, gt=0, json_schema_extra=search("float_log", 1e-3, 3e-2))
    """Adam learning rate."""
    weight_decay: float = Field(default=0.0, ge=0)
    """Decoupled (AdamW-style) weight decay of all tower weights, per step."""
    loss: Literal["softmax", "bpr"] = Field(
        default="softmax", json_schema_extra=search("categorical", ["softmax", "bpr"])
    )
    """``softmax``: full-catalog multinomial likelihood of the hidden items; ``bpr``: pairwise."""
    n_negatives: int = Field(default=8, ge=1)
    """Uniform negatives per hidden positive (``loss="bpr"`` only)."""
    history_dropout: float = Field(
        default=0.5, gt=0, lt=1, json_schema_extra=search("float", 0.2, 0.8)
    )
    """Share of each user's history hidden from the user tower per step (the targets)."""
    history_power: float = Field(default=0.5, ge=0, le=1)
    """Pool the history as ``sum / n ** history_power`` (1: mean, 0.5: sqrt weighting)."""
    id_dropout: float = Field(default=0.1, ge=0, lt=1)
    """Probability of zeroing an item's id embeddings in a step, so the text carries signal."""
    use_text: bool = True
    """Add the projection of the frozen LM item embedding; ``False`` is an id-only ablation."""
    user_features: bool = True
    """Add a projection of the user's attribute text when the data set has a users table."""
    user_id_embedding: bool = False
    """Add a learned user id embedding (not available to new users given as a history)."""
    init_std: float = Field(default=0.05, gt=0)
    """Standard deviation of the normal initialisation of the id embeddings."""
    encoder: str = "all-MiniLM-L6-v2"
    """Sentence-embedding model of :class:`lmrec.text.TextEncoder` (frozen)."""
    item_template: str | None = None
    """Template of the item texts (``None``: the default of :func:`lmrec.text.item_texts`)."""
    user_template: str | None = None
    """Template of the user texts (``None``: the default of :func:`lmrec.text.user_texts`)."""
    bf16: bool = False
    """Run the tower matmuls under bfloat16 autocast (also on CPU); weights stay float32."""
    dp_clip: float = 1.0
    """With ``dp_epsilon``: bound on the L2 norm of one user's gradient on all tower weights
    (a step samples ``batch_size`` users on average; see :mod:`lmrec.models.twotower_dp`)."""


def item_text_embeddings(dataset: Dataset, encoder: str, template: str | None) -> np.ndarray:
    """Frozen L2-normalised sentence embeddings (float32, n_items x dim) of the item texts."""
    from lmrec.text.encoder import TextEncoder
    from lmrec.text.templates import item_texts

    texts = item_texts(dataset) if template is None else item_texts(dataset, template=template)
    return np.ascontiguousarray(TextEncoder(model=encoder).encode(texts), dtype=np.float32)


def user_text_embeddings(dataset: Dataset, encoder: str, template: str | None) -> np.ndarray:
    """Frozen sentence embeddings (float32, n_users x dim) of the user attribute texts."""
    from lmrec.text.encoder import TextEncoder
    from lmrec.text.templates import user_texts

    texts = user_texts(dataset) if template is None else user_texts(dataset, template=template)
    return np.ascontiguousarray(TextEncoder(model=encoder).encode(texts), dtype=np.float32)


class TwoTower(Recommender, FoldInModel, DotProductModel, DistributedModel, PrivateModel):
    """Hybrid two-tower model: item = id embedding + projected frozen LM text embedding.

    See the module docstring for the towers and the losses. Items without training
    interactions are scored from their text alone; new users given as an item list are
    encoded by the user tower (no retraining).

    Parameters
    ----------
    config : TwoTowerConfig, optional
        Or the same fields as keywords, e.g. ``TwoTower(factors=32, epochs=20)``.

    Examples
    --------
    >>> from lmrec.testing import checkerboard
    >>> model = TwoTower(factors=8, epochs=30, batch_size=16).fit(checkerboard())  # doctest: +SKIP
    >>> model.item_vectors_.shape  # doctest: +SKIP
    (30, 8)
    """

    name = "twotower"
    config_class = TwoTowerConfig
    config: TwoTowerConfig

    #: Final item target vectors (float32, n_items x factors).
    item_vectors_: Fitted[np.ndarray] = Fitted()
    #: Final item biases (float32, n_items).
    item_bias_: Fitted[np.ndarray] = Fitted()
    #: Final item history vectors used by the user tower (float32, n_items x factors).
    history_vectors_: Fitted[np.ndarray] = Fitted()
    #: User vectors of the training users (float32, n_users x factors).
    user_vectors_: Fitted[np.ndarray] = Fitted()
    #: Frozen LM item embeddings (float32, n_items x dim), or None when ``use_text`` is off.
    item_text_: np.ndarray | None = None
    #: Whether each item had training interactions (its id embedding is used).
    item_known_: Fitted[np.ndarray] = Fitted()
    #: Tower weights as float32 NumPy arrays (id embeddings, projections, biases).
    weights_: Fitted[dict[str, np.ndarray]] = Fitted()
    #: Per-epoch training statistics of the last fit.
    history_: Fitted[list[dict[str, float]] | None] = Fitted()
    #: The seed actually used.
    seed_: Fitted[int | None] = Fitted()
    #: With ``dp_epsilon``: user-level DP-SGD (Opacus) on every tower weight; see
    #: :mod:`lmrec.models.twotower_dp`.
    dp_mechanism = "DP-SGD (Opacus, RDP accountant), user level, all tower weights"
    #: The differential-privacy report of the fit (None without ``dp_epsilon``).
    privacy_: dict[str, Any] | None = None

    # ------------------------------------------------------------------ training
    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        torch = require("torch", "torch")
        cfg = self.config
        self.privacy_ = None
        if cfg.dp_epsilon is not None:
            from lmrec.models.twotower_dp import check_private

            check_private(cfg, dataset, options)
        dist = setup_distributed() if cfg.distributed else DistInfo()
        device = resolve_device(torch, cfg.device)
        self.seed_ = self._seed = shared_seed(torch, draw_seed(cfg.seed), dist)
        gen = torch_generator(torch, self._seed)
        x = dataset.matrix.astype(np.float32, copy=True)
        x.data[:] = 1.0
        self._x = x
        self.item_known_ = np.asarray(x.sum(axis=0)).ravel() > 0
        if cfg.dp_epsilon is not None:  # which items were interacted with is not public
            self.item_known_ = np.ones(dataset.n_items, dtype=bool)
        self.item_text_ = (
            item_text_embeddings(dataset, cfg.encoder, cfg.item_template) if cfg.use_text else None
        )
        user_text = None
        if cfg.user_features and dataset.users is not None:
            user_text = user_text_embeddings(dataset, cfg.encoder, cfg.user_template)
        self._tensors = {
            "known": torch.from_numpy(self.item_known_.astype(np.float32)).to(device),
            "text": None if self.item_text_ is None else _on(torch, self.item_text_, device),
            "user_text": None if user_text is None else _on(torch, user_text, device),
        }
        self._params = self._init_params(torch, gen, dataset, device, user_text)
        if dist.is_distributed:  # identical by seed already; the broadcast makes sure
            broadcast_(torch, list(self._params.values()))
        self._opt = Optimizer(torch, list(self._params.values()), lr=cfg.lr, kind="adam")
        self._device, self._torch, self._dist, self._epoch = device, torch, dist, 0
        self._train_users = np.flatnonzero(np.diff(x.indptr) > 0)
        try:
            with torch_threads(torch, cfg.n_threads):
                if cfg.dp_epsilon is None:
                    self.history_ = self._train_epochs()
                else:
                    from lmrec.models.twotower_dp import train_private

                    self.history_, self.privacy_ = train_private(self, dataset.n_users)
            self.weights_ = {
                k: np.ascontiguousarray(v.detach().float().cpu().numpy(), dtype=np.float32)
                for k, v in self._params.items()
            }
        finally:  # the torch state is only needed while training
            del self._params, self._opt, self._tensors, self._device, self._torch, self._dist
            del self._epoch, self._seed
        self._precompute(user_text)
        self.user_vectors_ = self._user_vectors(x, np.arange(dataset.n_users), user_text)
        del self._x

    def _train_epochs(self) -> list[dict[str, float]]:
        """The (non-private) training loop: ``epochs`` passes of :meth:`_train_epoch`."""
        history = []
        with progress(total=self.config.epochs, desc="twotower", unit="epoch") as bar:
            for epoch in range(self.config.epochs):
                stats = {"epoch": float(epoch + 1), **self._train_epoch()}
                history.append(stats)
                logger.debug("twotower epoch %d: loss=%.5f", epoch + 1, stats["loss"])
                bar.set_postfix(loss=f"{stats['loss']:.4f}")
                bar.update(1)
        return history

    def _init_params(
        self, torch: Any, gen: Any, dataset: Dataset, device: Any, user_text: np.ndarray | None
    ) -> dict[str, Any]:
        cfg = self.config
        f = cfg.factors

        def normal(*shape: int, std: float = cfg.init_std) -> Any:
            return (torch.randn(*shape, generator=gen) * std).to(device).requires_grad_(True)

        params = {
            "id_in": normal(dataset.n_items, f),
            "id_out": normal(dataset.n_items, f),
            "bias": torch.zeros(dataset.n_items, device=device, requires_grad=True),
        }
        if self.item_text_ is not None:
            d = self.item_text_.shape[1]
            params["proj_in"] = normal(d, f, std=d**-0.5)
            params["proj_out"] = normal(d, f, std=d**-0.5)
            params["proj_bias"] = torch.zeros(d, device=device, requires_grad=True)
        if user_text is not None:
            params["proj_user"] = normal(user_text.shape[1], f, std=user_text.shape[1] ** -0.5)
        if cfg.user_id_embedding:
            params["user_id"] = normal(dataset.n_users, f)
        return params

    def _item_side(self, mask: Any, params: dict[str, Any] | None = None) -> tuple[Any, Any, Any]:
        """History vectors, target vectors, biases of all items (torch); ids gated by ``mask``.

        ``params``: the tower weights to use (default: the ones being trained).
        """
        p, t = self._params if params is None else params, self._tensors
        m = mask[:, None]
        h, v, b = p["id_in"] * m, p["id_out"] * m, p["bias"] * mask
        if t["text"] is not None:
            h = h + t["text"] @ p["proj_in"]
            v = v + t["text"] @ p["proj_out"]
            b = b + t["text"] @ p["proj_bias"]
        return h, v, b

    def _train_epoch(self) -> dict[str, float]:
        """One shuffled pass over the users with interactions; returns ``{"loss": mean loss}``.

        Available while ``fit`` runs. Each batch hides ``history_dropout`` of every user's
        items from the user tower and trains the tower to rank the hidden items first.
        Under ``distributed`` each rank takes its contiguous piece of every global batch of
        users; the masks (hidden items, id dropout) and BPR negatives are drawn for the
        whole global batch from :func:`~lmrec.train.distributed.batch_rng`, so they do not
        depend on the number of ranks, and the summed gradients equal the 1-rank ones.
        """
        torch, cfg, device, d = self._torch, self.config, self._device, self._dist
        order = epoch_order(len(self._train_users), self._seed, self._epoch)
        total, n_batches = 0.0, 0
        for b, start in enumerate(range(0, len(order), cfg.batch_size)):
            batch = self._train_users[order[start : start + cfg.batch_size]]
            rng = batch_rng(self._seed, self._epoch, b)
            rows, hide, keep, neg = self._draw_batch(rng, batch)
            lo, hi = shard_bounds(len(batch), d.rank, d.world_size)
            self._opt.zero_grad()
            local = torch.zeros((), dtype=torch.float32, device=device)
            if hi > lo:
                visible = torch.from_numpy(rows[lo:hi] * ~hide[lo:hi]).to(device)
                target = torch.from_numpy(hide[lo:hi].astype(np.float32)).to(device)
                mask = self._tensors["known"]
                if keep is not None:
                    mask = mask * torch.from_numpy(keep.astype(np.float32)).to(device)
                if neg is not None:  # this piece's positives, in row-major order
                    first = int(hide[:lo].sum())
                    neg = neg[first : first + int(hide[lo:hi].sum())]
                with autocast(torch, device, cfg.bf16):
                    h, v, bias = self._item_side(mask)
                    u = self._pool(torch, visible, h, batch[lo:hi])
                    scores = (u @ v.T).float() + bias
                    # max(1, .): a batch of one-item users hides no positive (loss 0, not NaN)
                    n_pos = max(1, int(hide.sum()))
                    denom = len(batch) if neg is None else n_pos * cfg.n_negatives
                    loss = self._loss(torch, scores, target, denom, neg)
                loss.backward()
                local = loss.detach().float()
            if d.is_distributed:
                for p in self._params.values():
                    if p.grad is None:  # an empty piece of a small last batch
                        p.grad = torch.zeros_like(p)
                all_reduce_sum_(torch, [p.grad for p in self._params.values()] + [local])
            if cfg.weight_decay > 0:
                with torch.no_grad():
                    for p in self._params.values():
                        p.mul_(1.0 - cfg.lr * cfg.weight_decay)
            self._opt.step()
            total += float(local)
            n_batches += 1
        self._epoch += 1
        return {"loss": total / max(n_batches, 1)}

    def _draw_batch(
        self, rng: np.random.Generator, batch: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """History rows, hidden-item mask, id-dropout keep mask and BPR negatives of a batch.

        Drawn for the whole global batch from its generator, the same on every rank.
        """
        cfg = self.config
        rows = self._x[batch].toarray()
        hide = (rng.random(rows.shape) < cfg.history_dropout) & (rows > 0)
        # Every user keeps at least one visible item and one hidden target.
        n = rows.sum(axis=1)
        for r in np.flatnonzero((hide.sum(axis=1) == 0) | (hide.sum(axis=1) == n)):
            items = np.flatnonzero(rows[r])
            hide[r] = False
            if len(items) > 1:
                hide[r, rng.choice(items)] = True
        keep = None
        if cfg.id_dropout > 0:
            keep = rng.random(rows.shape[1]) >= cfg.id_dropout
        neg = None
        if cfg.loss == "bpr":
            # Uniform negatives per hidden positive (collisions with other positives are
            # rare on sparse rows and left in).
            neg = rng.integers(0, rows.shape[1], size=(int(hide.sum()), cfg.n_negatives))
        return rows, hide, keep, neg

    def _pool(
        self, torch: Any, visible: Any, h: Any, batch: Any, params: dict[str, Any] | None = None
    ) -> Any:
        """User vectors (torch) from visible history rows, user attributes and ids.

        ``batch``: the users' indices (NumPy or a torch tensor); ``params`` as in
        :meth:`_item_side`.
        """
        p, t = self._params if params is None else params, self._tensors
        count = visible.sum(dim=1, keepdim=True).clamp(min=1.0)
        u = (visible @ h) / count.pow(self.config.history_power)
        idx = batch
        if isinstance(batch, np.ndarray):
            idx = torch.from_numpy(batch.astype(np.int64)).to(self._device)
        if t["user_text"] is not None:
            u = u + t["user_text"][idx] @ p["proj_user"]
        if "user_id" in p:
            u = u + p["user_id"][idx]
        return u

    def _loss(
        self, torch: Any, scores: Any, target: Any, denom: int, neg: np.ndarray | None = None
    ) -> Any:
        """Summed loss of a batch piece's hidden (target) items against the full catalog / denom.

        ``softmax``: per-user mean log-likelihood of the hidden items, summed over the
        piece's users; ``denom`` is the global batch's user count. ``bpr``: each hidden
        positive against its ``neg`` items, summed; ``denom`` is the global batch's
        positive count times ``n_negatives``. Dividing by the global count makes the
        ranks' losses add up to the mean over the whole batch.
        """
        f = torch.nn.functional
        if self.config.loss == "softmax":
            n_target = target.sum(dim=1).clamp(min=1.0)
            return (-(f.log_softmax(scores, dim=1) * target).sum(dim=1) / n_target).sum() / denom
        pos_r, pos_c = torch.nonzero(target, as_tuple=True)
        neg_c = torch.from_numpy(neg).to(scores.device)
        diff = scores[pos_r, pos_c][:, None] - scores[pos_r[:, None], neg_c]
        return -f.logsigmoid(diff).sum() / denom

    # ------------------------------------------------------------------ inference
    def _precompute(self, user_text: np.ndarray | None) -> None:
        """Final item vectors and biases from the trained weights (NumPy)."""
        w = self.weights_
        m = self.item_known_.astype(np.float32)
        h, v, b = w["id_in"] * m[:, None], w["id_out"] * m[:, None], w["bias"] * m
        if self.item_text_ is not None:
            h = h + self.item_text_ @ w["proj_in"]
            v = v + self.item_text_ @ w["proj_out"]
            b = b + self.item_text_ @ w["proj_bias"]
        self.history_vectors_ = np.ascontiguousarray(h, dtype=np.float32)
        self.item_vectors_ = np.ascontiguousarray(v, dtype=np.float32)
        self.item_bias_ = np.ascontiguousarray(b, dtype=np.float32)

    def _user_vectors(
        self, history: sp.csr_matrix, user_idx: np.ndarray | None, user_text: np.ndarray | None
    ) -> np.ndarray:
        """User tower in NumPy: pooled history (+ attribute text and id for known users)."""
        history = sp.csr_matrix(history, dtype=np.float32)
        count = np.maximum(np.asarray(history.sum(axis=1)).ravel(), 1.0)
        pooled = np.asarray(history @ self.history_vectors_)
        u = pooled / count[:, None] ** self.config.history_power
        w = self.weights_
        if user_idx is not None and user_text is not None and "proj_user" in w:
            u = u + user_text[user_idx] @ w["proj_user"]
        if user_idx is not None and "user_id" in w:
            u = u + w["user_id"][user_idx]
        return np.ascontiguousarray(u, dtype=np.float32)

    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        return self.user_vectors_[user_idx] @ self.item_vectors_.T + self.item_bias_

    def item_vectors(self) -> np.ndarray:
        """Item vectors with the item bias as a last column (float32, C-contiguous)."""
        return self._memo(
            "item_vectors",
            lambda: dot_item_vectors(self.item_vectors_, self.item_bias_),
        )

    def user_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        """User vectors of known users with a column of ones (for the item bias)."""
        return dot_user_vectors(self.user_vectors_[user_idx], bias=True)

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        """Encode each history row with the user tower (no attributes, no user id) and score."""
        u = self._user_vectors(history, None, None)
        return u @ self.item_vectors_.T + self.item_bias_

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {f"w.{k}": v for k, v in self.weights_.items()}
        arrays["user_vectors"] = self.user_vectors_
        arrays["item_known"] = self.item_known_.astype(np.uint8)
        if self.item_text_ is not None:
            arrays["item_text"] = self.item_text_
        meta: dict[str, Any] = {"history": self.history_, "seed": self.seed_}
        if self.privacy_ is not None:
            meta["privacy"] = self.privacy_
        return arrays, meta

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:
        n_users, n_items = self._seen.shape
        self.weights_ = {k[2:]: arrays.float(k) for k in arrays.keys("w.")}
        self.user_vectors_ = arrays.float("user_vectors", (n_users, None))
        self.item_known_ = arrays.flags("item_known", (n_items,))
        self.item_text_ = (
            arrays.float("item_text", (n_items, None)) if "item_text" in arrays else None
        )
        self.history_ = meta.get("history")
        self.seed_ = meta.get("seed")
        self.privacy_ = meta.get("privacy")
        self._precompute(None)


def _on(torch: Any, a: np.ndarray, device: Any) -> Any:
    return torch.from_numpy(a).to(device)
