"""Models whose scores are inner products: their user and item vectors, checked.

Factor and embedding models score ``user . item`` (plus, for some, a per-item bias).
:func:`dot_form` finds the vectors by duck typing on fitted attributes and then
*checks* them against the model's own ``_score`` on a few users, so a model that
happens to carry such attributes but scores differently is never served from them.
The exact fused top-k (:func:`lmrec.ops.topk.dot_topk`) and the ANN indexes use
these vectors.

Attribute pairs tried, in order (an ``item_bias_`` is appended to the items as one
more dimension, with a constant 1 on the users):

- ``user_factors_`` + ``item_factors_`` (ALS, BPR);
- ``user_vectors_`` + ``item_vectors_`` (two-tower);
- ``user_repr_`` + ``item_repr_`` (factorization machine);
- ``item_factors_`` + ``user_items_`` (PureSVD: ``score = (h V) V^T`` with ``h`` the
  binarised history, so the user vector is ``h V``).

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from lmrec.errors import NotFittedError

__all__ = ["DotForm", "dot_form", "recommend_by_dot"]

_PAIRS = (
    ("user_factors_", "item_factors_"),
    ("user_vectors_", "item_vectors_"),
    ("user_repr_", "item_repr_"),
)
_CHECK_USERS = 3
# model -> (the item array the check ran on, its DotForm or None); a refit replaces the array.
_CHECKED: weakref.WeakKeyDictionary[Any, tuple[Any, DotForm | None]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class DotForm:
    """How a model's scores factor: ``score(u, i) = users(u) . items[i]``."""

    items: np.ndarray  # float32 (n_items, dim), C-contiguous
    user_attr: str | None  # dense user vectors attribute, or None (history times items)
    history_attr: str | None
    bias: bool

    @property
    def dim(self) -> int:
        """Vector dimension (bias included)."""
        return self.items.shape[1]

    def users(self, model: Any, user_idx: np.ndarray) -> np.ndarray:
        """float32 (len(user_idx), dim) user vectors of dense user indices."""
        user_idx = np.asarray(user_idx, dtype=np.int64)
        if self.user_attr is not None:
            u = np.asarray(getattr(model, self.user_attr)[user_idx], dtype=np.float32)
        else:
            hist = sp.csr_matrix(getattr(model, self.history_attr)[user_idx], dtype=np.float32)
            hist.data[:] = 1.0
            u = np.asarray(hist @ np.asarray(model.item_factors_, np.float32), np.float32)
        if self.bias:
            u = np.hstack([u, np.ones((len(u), 1), np.float32)])
        return np.ascontiguousarray(u)


def _candidate(model: Any) -> DotForm | None:
    """The vectors the attributes suggest, unchecked (None when none fit)."""
    bias = getattr(model, "item_bias_", None)
    for user_attr, item_attr in _PAIRS:
        users, items = getattr(model, user_attr, None), getattr(model, item_attr, None)
        if isinstance(users, np.ndarray) and isinstance(items, np.ndarray) and items.ndim == 2:
            y = np.asarray(items, np.float32)
            if bias is not None:
                y = np.hstack([y, np.asarray(bias, np.float32).reshape(-1, 1)])
            return DotForm(np.ascontiguousarray(y), user_attr, None, bias is not None)
    items, hist = getattr(model, "item_factors_", None), getattr(model, "user_items_", None)
    if isinstance(items, np.ndarray) and hist is not None and bias is None:
        return DotForm(np.ascontiguousarray(items, dtype=np.float32), None, "user_items_", False)
    return None


def dot_form(model: Any) -> DotForm | None:
    """The checked inner-product form of a fitted model's scores, or None.

    None means the model is not a factor/embedding model (or its attributes do not
    reproduce its scores, or hold non-finite values): callers then score it the
    generic way. The check (``_score`` of up to 3 users against the dot products,
    relative tolerance 1e-3) runs once per fitted state and is cached.
    """
    if not any(hasattr(model, a) for a in ("item_factors_", "item_vectors_", "item_repr_")):
        return None
    if not getattr(model, "is_fitted", False):
        raise NotFittedError(f"{type(model).__name__} is not fitted; call .fit(data) first")
    anchor = next(
        (getattr(model, a) for a in ("item_factors_", "item_vectors_", "item_repr_")
         if isinstance(getattr(model, a, None), np.ndarray)),
        None,
    )  # fmt: skip
    if anchor is None:
        return None
    try:
        cached = _CHECKED.get(model)
    except TypeError:  # not weak-referenceable
        cached = None
    if cached is not None and cached[0] is anchor:
        return cached[1]
    form = _candidate(model)
    if form is not None and not _verified(model, form):
        form = None
    try:
        _CHECKED[model] = (anchor, form)
    except TypeError:
        pass
    return form


def _verified(model: Any, form: DotForm) -> bool:
    if len(form.items) != model.n_items or not np.isfinite(form.items).all():
        return False
    n_users = model.seen_.shape[0]
    if n_users == 0:
        return True
    rows = np.unique(np.linspace(0, n_users - 1, min(_CHECK_USERS, n_users)).astype(np.int64))
    users = form.users(model, rows)
    if not np.isfinite(users).all():
        return False
    want = np.asarray(model._score(rows), dtype=np.float32)
    got = users @ form.items.T
    scale = max(1.0, float(np.abs(want).max()) if want.size else 1.0)
    return want.shape == got.shape and bool(np.all(np.abs(want - got) <= 1e-3 * scale))


def exclusion(
    model: Any, user_idx: np.ndarray, exclude_seen: bool, exclude: sp.csr_matrix | None
) -> sp.csr_matrix | None:
    """Row-aligned CSR of the items to drop for ``user_idx``: training items and/or ``exclude``.

    Every stored entry counts, whatever its value (as in :func:`~lmrec.ops.topk.mask_rows`):
    the union is taken on the patterns, so a stored zero or values that cancel in a sum
    still exclude.
    """
    parts = []
    if exclude_seen:
        parts.append(model.seen_[user_idx])
    if exclude is not None:
        parts.append(sp.csr_matrix(exclude)[user_idx])
    if not parts:
        return None
    if len(parts) == 1:
        return sp.csr_matrix(parts[0])
    a, b = (sp.csr_matrix(p) for p in parts)
    ones = [sp.csr_matrix((np.ones(m.nnz, np.float32), m.indices, m.indptr), shape=m.shape)
            for m in (a, b)]  # fmt: skip
    return sp.csr_matrix(ones[0] + ones[1])


def recommend_by_dot(
    model: Any,
    user_idx: np.ndarray,
    k: int,
    *,
    exclude_seen: bool = True,
    exclude: sp.csr_matrix | None = None,
    n_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Exact top-``k`` through :func:`~lmrec.ops.topk.dot_topk`, or None if not a dot model.

    Same result as :meth:`Recommender.recommend_indices` (without candidates) for
    factor models, but scored in fused multi-threaded blocks without the generic path's
    extra copies and full-row partitions. None also when a requested user's vector is
    not finite (a diverged fit): the generic path then handles those scores.
    """
    from lmrec.ops.topk import dot_topk

    form = dot_form(model)
    if form is None:
        return None
    user_idx = np.asarray(user_idx, dtype=np.int64)
    users = form.users(model, user_idx)
    if not np.isfinite(users).all():  # the generic path turns non-finite scores into -inf
        return None
    ex = exclusion(model, user_idx, exclude_seen, exclude)
    return dot_topk(users, form.items, k, exclude=ex, n_threads=n_threads)
