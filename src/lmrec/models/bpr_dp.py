"""User-level DP-SGD for :class:`~lmrec.models.bpr.BPR` (``dp_epsilon``).

The unit of privacy is one user. Each step samples users by Poisson sampling (expected
``dp_users_per_step`` per step); a sampled user's whole contribution -- every training
item of theirs, each paired with a uniform negative drawn that step -- gives *one*
gradient over the item side (item factors ``V`` and biases ``b``), clipped to
``dp_clip``, and Gaussian noise is added to the sum
(:func:`lmrec.train.dpsgd.train_per_user`: ``torch.func`` per-user gradients, Opacus
sampling, clipping, noise and RDP accountant, Adam).

User factors are not trainable parameters under DP: a user's vector is the closed-form
implicit-ALS fold-in of their own history on the current item side,
``[u, c] = (A^T A + alpha A_h^T A_h + l I)^{-1} (1 + alpha) A_h^T 1`` with ``A = [V, 1]``
(:func:`lmrec.models.foldin.fold_in_ridge`, ``fold_in_l2`` and ``fold_in_alpha``), and
the user's BPR loss ``-ln sigma(x_ui - x_uj)`` is differentiated through that solve. The
model trains exactly the way it later scores histories given at request time
(``score_history``), and no per-user state has to be kept out of the private update.

What is protected: the item factors and biases, hence every fold-in score, are
(epsilon, delta)-DP with respect to one user's whole data. The stored ``user_factors_``
of training users are the fold-ins of each user's own history on the private item
side: a user's recommendations use their own data, as any personal recommendation must
(joint DP, the "billboard" model of Kearns et al. 2014).

Not supported with ``dp_epsilon`` (a clear ConfigError): ``distributed``, ``bf16``,
checkpoints.

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lmrec.models.capabilities import FitOptions
from lmrec.models.dp import check_dp_data, dpsgd_settings, refuse_options

if TYPE_CHECKING:
    import scipy.sparse as sp

    from lmrec.data.dataset import Dataset
    from lmrec.models.bpr import BPRConfig

__all__ = ["HIDDEN", "MECHANISM", "check_private", "train_private"]

#: Share of a sampled user's items hidden from their fold-in in a step, as the targets of
#: the BPR loss (fitting the items the fold-in already saw would reward memorising them).
HIDDEN = 0.5

MECHANISM = (
    "DP-SGD (Opacus) on item factors and biases, one gradient per user over all their "
    "items; user vectors folded in from own history (joint DP)"
)


def check_private(cfg: BPRConfig, dataset: Dataset, options: FitOptions) -> None:
    """Refuse the options a DP-SGD fit cannot honour, saying what to change."""
    refuse_options(
        "bpr",
        [
            (cfg.distributed, "distributed=True (DP-SGD trains in one process)"),
            (cfg.bf16, "bf16=True (per-user gradients are computed in float32)"),
            (
                options.checkpoint_dir is not None,
                "checkpoint_dir (a DP-SGD fit runs without checkpoints)",
            ),
        ],
    )
    check_dp_data(cfg, dataset.n_users, "bpr")


def train_private(
    torch: Any, cfg: BPRConfig, x: sp.csr_matrix, device: Any
) -> tuple[dict[str, np.ndarray], list[dict[str, float]], dict[str, Any]]:
    """Train BPR's item side by user-level DP-SGD on the users x items matrix ``x``.

    Returns the arrays (``user_factors``, ``item_factors``, ``item_bias``), the
    per-epoch history and the privacy report.
    """
    from lmrec.train.dpsgd import train_per_user
    from lmrec.train.pairs import to_numpy

    settings = dpsgd_settings(cfg, users_per_step=cfg.dp_users_per_step, weight_decay=0.0)
    seed = settings["seed"]
    n_users, n_items = x.shape
    gen = torch.Generator().manual_seed(seed)
    params = {
        "item": (torch.randn(n_items, cfg.factors, generator=gen) * cfg.init_std).to(device),
        "bias": torch.zeros(n_items).to(device),
    }
    for v in params.values():
        v.requires_grad_(True)
    rng = np.random.default_rng(seed + 2)
    indptr, indices = x.indptr, x.indices
    counts = np.diff(indptr)

    def on(a: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    def padded(uidx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The users' items, padded to the longest history, and which of them are real."""
        width = max(1, int(counts[uidx].max()))
        pos = np.zeros((len(uidx), width), np.int64)
        real = np.zeros((len(uidx), width), np.float32)
        for r, u in enumerate(uidx):
            pos[r, : counts[u]] = indices[indptr[u] : indptr[u + 1]]
            real[r, : counts[u]] = 1.0
        return pos, real

    def draw(uidx: np.ndarray) -> tuple[Any, ...]:
        """Each sampled user's items (padded), a uniform negative for each, which of them
        are shown to the fold-in, and which are hidden from it (the targets)."""
        pos, real = padded(uidx)
        hide = real * (rng.random(pos.shape) < HIDDEN)
        neg = rng.integers(0, n_items, size=pos.shape)
        return on(pos), on(neg), on(real - hide), on(hide.astype(np.float32))

    def user_loss(p: dict[str, Any], pos: Any, neg: Any, shown: Any, hidden: Any) -> Any:
        """One user's mean BPR loss on the items hidden from their fold-in, plus the L2
        penalty of the items used."""
        v, b, pos, neg, m = p["item"], p["bias"], pos[0], neg[0], hidden[0]
        u = fold_in(torch, v, pos, shown[0], cfg.fold_in_l2, cfg.fold_in_alpha)
        qi, qj = v[pos], v[neg]
        x_uij = (qi - qj) @ u + b[pos] - b[neg]
        l2 = qi.square().sum(-1) + qj.square().sum(-1) + b[pos].square() + b[neg].square()
        per_pair = -torch.nn.functional.logsigmoid(x_uij) + cfg.l2 * l2
        return (per_pair * m).sum() / m.sum().clamp(min=1.0)

    history, report = train_per_user(
        torch,
        params,
        user_loss,
        draw,
        n_users=n_users,
        mechanism=MECHANISM,
        desc="bpr",
        **settings,
    )
    with torch.no_grad():  # every user's vector: the fold-in of their whole history
        v = params["item"].detach()
        batched = torch.func.vmap(
            lambda p, m: fold_in(torch, v, p, m, cfg.fold_in_l2, cfg.fold_in_alpha)
        )
        users = np.zeros((n_users, cfg.factors), np.float32)
        for start in range(0, n_users, 256):
            uidx = np.arange(start, min(start + 256, n_users))
            pos, real = padded(uidx)
            users[uidx] = batched(on(pos), on(real)).float().cpu().numpy()
    arrays = {
        "user_factors": users,
        "item_factors": to_numpy(params["item"]),
        "item_bias": to_numpy(params["bias"]),
    }
    return arrays, history, report


def fold_in(torch: Any, v: Any, pos: Any, mask: Any, reg: float, alpha: float) -> Any:
    """The implicit-ALS fold-in of one history (item indices ``pos``, real where ``mask``)
    on item factors ``v``: the user vector of :func:`lmrec.models.foldin.fold_in_ridge`
    (its intercept dropped: it shifts every item's score alike), differentiable in ``v``."""
    a = torch.cat([v, torch.ones_like(v[:, :1])], dim=1)
    eye = torch.eye(a.shape[1], dtype=a.dtype, device=a.device)
    ah = a[pos] * mask[:, None]
    lhs = a.T @ a + reg * eye + alpha * ah.T @ ah
    w = torch.linalg.solve(lhs, (1.0 + alpha) * ah.sum(0))
    return w[:-1]
