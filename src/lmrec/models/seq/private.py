"""User-level DP-SGD for the sequence models (SASRec, GRU4Rec) with ``dp_epsilon``.

One user is one sequence, and one sequence is the unit of privacy: each step samples
users by Poisson sampling (expected ``batch_size`` users per step, not windows), takes
one window of up to ``max_len`` consecutive transitions at a random place in each
sampled user's history, and the user's loss (mean cross-entropy of the window's next
items over the whole catalog) gives one gradient over *every* weight of the net (item
table or text adaptor, position embeddings, attention or GRU layers), clipped to
``dp_clip``; Gaussian noise is added to the sum (:func:`lmrec.train.dpsgd.train_per_user`,
Opacus: Poisson sampling, ``DPOptimizer``, RDP accountant). Since only the sampled
users' windows enter a step and each user's whole gradient is clipped as one, this is
user-level accounting however long a history is.

What is protected: the weights (item vectors, encoder) -- and with them every list
computed for a session given at request time -- are (epsilon, delta)-DP with respect to
one user's whole sequence. The stored ``user_vectors_`` and ``sequences_`` of training
users are the private encoder applied to each user's own recent items: their own
recommendations use their own data (joint DP, as for BPR and the two-tower model).
Which items had interactions is not released (every item uses its id vector).

Not supported with ``dp_epsilon`` (ConfigError): ``distributed``, checkpoints, ``valid``
(early stopping would choose the epoch from the data outside the budget; a DP fit trains
exactly ``epochs``), ``precision="mixed"``, and losses other than ``ce``. Dropout is off
(per-user gradients are computed with ``torch.func.vmap``, without random masks; the
DP noise regularises).

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lmrec.data.sequences import Sequences
from lmrec.models.capabilities import FitOptions
from lmrec.models.dp import check_dp_data, dpsgd_settings, refuse_options

if TYPE_CHECKING:
    from lmrec.data.dataset import Dataset
    from lmrec.models.seq.config import SequenceConfig

__all__ = ["check_private", "train_private"]


def check_private(
    cfg: SequenceConfig, dataset: Dataset, valid: Dataset | None, options: FitOptions, name: str
) -> None:
    """Refuse the options a DP-SGD fit cannot honour, saying what to change."""
    refuse_options(
        name,
        [
            (cfg.distributed, "distributed=True (DP-SGD trains in one process)"),
            (options.checkpoint_dir is not None, "checkpoints (drop checkpoint_dir)"),
            (valid is not None, "validation data (drop valid: a DP fit trains exactly `epochs`)"),
            (cfg.precision == "mixed", "precision='mixed' (use precision='fp32' or 'auto')"),
            (cfg.loss != "ce", f"loss={cfg.loss!r} (use loss='ce')"),
        ],
    )
    check_dp_data(cfg, dataset.n_users, name)


def train_private(
    torch: Any, net: Any, seqs: Sequences, cfg: SequenceConfig, device: Any, name: str
) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """Train every weight of ``net`` by user-level DP-SGD on the users' sequences ``seqs``.

    Returns the per-epoch history and the privacy report (``privacy_``).
    """
    from lmrec.models.seq.trainer import make_windows
    from lmrec.train.dpsgd import train_per_user

    settings = dpsgd_settings(cfg)
    rng = np.random.default_rng(settings["seed"] + 2)
    inputs, targets = make_windows(seqs, cfg.max_len)
    n_win = -(-np.maximum(seqs.lengths() - 1, 0) // cfg.max_len)  # windows per user
    first = np.concatenate([[0], np.cumsum(n_win)[:-1]])
    inputs = np.vstack([inputs, np.zeros((1, cfg.max_len), inputs.dtype)])  # row -1: empty
    targets = np.vstack([targets, np.zeros((1, cfg.max_len), targets.dtype)])
    drop = cfg.item_repr == "id+text" and cfg.id_dropout > 0
    n_items = net.tower.n_items
    params = {k: p for k, p in net.named_parameters() if p.requires_grad}
    tower_prefix = "tower."

    def draw(uidx: np.ndarray) -> tuple[Any, ...]:
        pick = first[uidx] + (rng.random(len(uidx)) * n_win[uidx]).astype(np.int64)
        rows = np.where(n_win[uidx] > 0, pick, -1)
        keep = np.ones(n_items, np.float32)
        if drop:
            keep = (rng.random(n_items) >= cfg.id_dropout).astype(np.float32)
        on = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
        return (
            on(inputs[rows].astype(np.int64)),
            on(targets[rows].astype(np.int64)),
            on(np.broadcast_to(keep, (len(uidx), n_items))),
        )

    def user_loss(p: dict[str, Any], x: Any, y: Any, keep: Any) -> Any:
        call = torch.func.functional_call
        tower = {k[len(tower_prefix) :]: v for k, v in p.items() if k.startswith(tower_prefix)}
        table = call(net.tower, tower, (None, keep[0] if drop else None))
        h = call(net, p, (x, table))[0]  # (L, d)
        mask = (y[0] > 0).float()
        ce = torch.nn.functional.cross_entropy(
            (h @ table[1:].T).float(), (y[0] - 1).clamp(min=0), reduction="none"
        )
        return (ce * mask).sum() / mask.sum().clamp(min=1.0)

    net.train()
    return train_per_user(
        torch,
        params,
        user_loss,
        draw,
        n_users=len(seqs),
        mechanism=(
            "DP-SGD (Opacus) on every weight, one sequence per user; "
            "user vectors from own history (joint DP)"
        ),
        desc=name,
        # nn.GRU has no batching rule under vmap: its users are taken one by one
        vectorize=not any(isinstance(m, torch.nn.RNNBase) for m in net.modules()),
        **settings,
    )
