"""Shared steps of exact unlearning (:class:`~lmrec.models.capabilities.UnlearningModel`).

A model that forgets users drops them from the state every model has -- the user id
map and the training pattern (``seen_``) -- with :func:`drop_users`, then drops its own
per-user arrays with the returned mask and recomputes the item-side statistics those
users contributed to. What is left is what a fit without them would have produced.

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from lmrec.data.idmap import IdMap
from lmrec.errors import ConfigError

__all__ = ["check_forget_indices", "drop_users", "keep_rows"]


def check_forget_indices(user_idx: Any, n_users: int) -> np.ndarray:
    """Dense user indices to forget as a sorted unique int64 array; refuses bad ones.

    >>> check_forget_indices([3, 1, 3], 5).tolist()
    [1, 3]
    """
    idx = np.unique(np.asarray(user_idx, dtype=np.int64).ravel())
    if len(idx) and (idx[0] < 0 or idx[-1] >= n_users):
        bad = idx[(idx < 0) | (idx >= n_users)][:5].tolist()
        raise ConfigError(
            f"Cannot forget user indices {bad}: the model has {n_users} users (0..{n_users - 1})."
        )
    return idx


def drop_users(model: Any, user_idx: Any) -> np.ndarray:
    """Remove users from ``model.user_ids_`` and ``model.seen_``; returns the keep mask.

    The mask (bool, one entry per user *before* the call) selects the rows every
    per-user array of the model must keep. Derived caches are cleared, so nothing
    computed from the old rows survives.
    """
    n_users = len(model.user_ids_)
    idx = check_forget_indices(user_idx, n_users)
    keep = np.ones(n_users, bool)
    keep[idx] = False
    model.user_ids_ = IdMap(model.user_ids_.ids[keep])
    model.seen_ = keep_rows(model.seen_, keep)
    model._derived = {}
    return keep


def keep_rows(m: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    """The rows of CSR ``m`` selected by bool mask ``keep``, as a fresh CSR copy."""
    out = sp.csr_matrix(m[np.flatnonzero(keep)], copy=True)
    out.sort_indices()
    return out
