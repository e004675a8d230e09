"""User-level DP-SGD for :class:`~lmrec.models.twotower.TwoTower` (``dp_epsilon``).

The unit of privacy is one user: each step samples users by Poisson sampling (expected
``batch_size`` per step), each sampled user's whole contribution -- their history, the
items hidden from the user tower that step, their attribute text -- gives one gradient
over *every* tower weight (id embeddings, text projections, biases, the user-attribute
projection, and the user id embedding when enabled), clipped to ``dp_clip``; Gaussian
noise is added to the sum (:func:`lmrec.train.dpsgd.train_per_user`, Opacus).

What is protected: the trained weights, hence the item vectors, the item biases and the
user tower that scores any history given at request time, are (epsilon, delta)-DP with
respect to one user's whole data. The stored ``user_vectors_`` of training users are
the (private) user tower applied to each user's own history: a user's recommendations
use their own data, as any personal recommendation must (joint DP, as for BPR).
Whether an item had interactions is not released either: under DP every catalog item
uses its id embedding (``item_known_`` is all true).

Not supported with ``dp_epsilon`` (a clear ConfigError): ``distributed``, ``bf16``,
``loss="bpr"`` (its per-positive negatives do not split per user as the softmax does).

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lmrec.models.capabilities import FitOptions
from lmrec.models.dp import check_dp_data, dpsgd_settings, refuse_options

if TYPE_CHECKING:
    from lmrec.data.dataset import Dataset
    from lmrec.models.twotower import TwoTower, TwoTowerConfig

__all__ = ["check_private", "train_private"]


def check_private(cfg: TwoTowerConfig, dataset: Dataset, options: FitOptions) -> None:
    """Refuse the options a DP-SGD fit cannot honour, saying what to change."""
    refuse_options(
        "twotower",
        [
            (cfg.distributed, "distributed=True (DP-SGD trains in one process)"),
            (cfg.bf16, "bf16=True (per-user gradients are computed in float32)"),
            (cfg.loss != "softmax", f"loss={cfg.loss!r} (use loss='softmax')"),
        ],
    )
    check_dp_data(cfg, dataset.n_users, "twotower")


def train_private(model: TwoTower, n_users: int) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """Train ``model``'s tower weights (set up by ``TwoTower._fit``) by user-level DP-SGD.

    Returns the per-epoch history and the privacy report (``privacy_``).
    """
    from lmrec.train.dpsgd import train_per_user

    torch, cfg, device = model._torch, model.config, model._device
    settings = dpsgd_settings(cfg)
    rng = np.random.default_rng(settings["seed"] + 2)

    def draw(uidx: np.ndarray) -> tuple[Any, ...]:
        rows, hide, keep, _ = model._draw_batch(rng, uidx)
        if keep is None:
            keep = np.ones(rows.shape[1], dtype=bool)
        on = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
        return (
            on((rows * ~hide).astype(np.float32)),
            on(hide.astype(np.float32)),
            on(np.broadcast_to(keep.astype(np.float32), rows.shape)),
            on(uidx.astype(np.int64)),
        )

    def user_loss(p: dict[str, Any], visible: Any, target: Any, keep: Any, uid: Any) -> Any:
        h, v, bias = model._item_side(model._tensors["known"] * keep[0], p)
        u = model._pool(torch, visible, h, uid, p)
        return model._loss(torch, (u @ v.T).float() + bias, target, 1)

    return train_per_user(
        torch,
        model._params,
        user_loss,
        draw,
        n_users=n_users,
        mechanism="DP-SGD (Opacus) on every tower weight; user vectors from own history (joint DP)",
        desc="twotower",
        **settings,
    )
