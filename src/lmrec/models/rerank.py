"""Re-ranking wrapper: calibrated (Steck), MMR diversity, or exposure for a protected item group.

:class:`Rerank` fits any registered model (``base_model`` with ``base_params``, both
validated when the config is built) and re-orders each user's top ``n_candidates``
unseen items greedily. Every method trades the base model's relevance against one
list-level goal through one parameter, ``trade_off`` (``λ``, 0 = the base model's order):

``calibrated`` (Steck, RecSys 2018)
    the set ``S`` of ``depth`` items maximising ``(1 − λ) Σ_{i∈S} r(i) − λ C_KL(p_u, q(S))``:
    the list's attribute mix (genres) should match the user's history; ``C_KL`` is the
    miscalibration of :class:`lmrec.eval.bias.Miscalibration` (``alpha`` smoothing,
    natural log). Steck builds ``S`` greedily; lmrec starts from the ``depth`` most
    relevant candidates and makes the best improving swap until none is left, which
    keeps far more relevance for the same calibration (the greedy first picks are
    driven by the divergence of one- and two-item lists), and shows ``S`` in the base
    order.
``mmr`` (Carbonell & Goldstein, 1998)
    ``gain(i | S) = (1 − λ) r(i) − λ max_{j ∈ S} sim(i, j)``: penalise items similar to
    those already chosen; ``sim`` is the cosine of the items' attribute rows
    (``similarity="attribute"``) or of their interaction columns
    (``"interactions"``, projected on the top ``n_factors`` singular vectors).
``exposure``
    ``gain(i | S) = (1 − λ) r(i) + λ [i ∈ P] (1 − |S ∩ P| / |S|)``: items of the
    protected group ``P`` get a bonus that shrinks as their share of the list so far
    grows (1 while the list has none). ``P`` is a popularity tier
    (``protected_attribute="popularity"``, ``protected_group="tail"``) or a catalog
    attribute value (``protected_attribute="genres"``, ``protected_group="Documentary"``).

``r(i)`` is the base score min-max scaled to [0, 1] over the user's candidates, so ``λ``
means the same for every base model. ``depth`` is the length of the re-ranked list (set
it to the ``k`` you show); the remaining items follow in the base order. Scores do not
depend on the ``k`` asked for, so the top-``k`` list is a prefix of the top-``(k + m)``. Scores returned by :meth:`score` encode the new order: the
re-ranked candidates first (scores in (2, 3]), then every other item in the base order
(scores in (0, 1]); they are ranks, not relevance estimates.

Users and histories fold in (:class:`~lmrec.models.capabilities.FoldInModel`) when the
base model does: the history given at request time is both the exclusion set and the
calibration target.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field, model_validator

from lmrec.data.dataset import Dataset
from lmrec.errors import ConfigError
from lmrec.eval.bias import attribute_distributions, calibration_kl
from lmrec.eval.groups import ItemGroups
from lmrec.models.base import Recommender
from lmrec.models.capabilities import FitOptions, FoldInModel, declares
from lmrec.models.composite import components_state, restore_components
from lmrec.models.config import ModelConfig, search
from lmrec.models.files import StateArrays
from lmrec.models.fitted import Fitted
from lmrec.models.registry import (
    component_params,
    create_model,
    get_model_class,
    models_supporting,
)

Method = Literal["calibrated", "mmr", "exposure"]
#: Users re-ranked per vectorised block (bounds the (users, candidates, candidates) arrays).
_USER_BLOCK = 256
_T = TypeVar("_T")


class RerankConfig(ModelConfig):
    """Hyperparameters of :class:`Rerank`."""

    base_model: str = "ease"
    """Registered name of the model whose candidates are re-ranked."""
    base_params: dict[str, Any] = Field(default_factory=dict)
    """Hyperparameters of the base model (validated by its own config)."""
    method: Method = "calibrated"
    """``calibrated`` (Steck), ``mmr`` (diversity) or ``exposure`` (protected item group)."""
    trade_off: float = Field(default=0.5, ge=0, lt=1, json_schema_extra=search("float", 0.0, 0.95))
    """λ: weight of the list-level goal against relevance (0 = the base model's order)."""
    n_candidates: int = Field(
        default=100, ge=2, le=2000, json_schema_extra=search("int_log", 20, 500)
    )
    """Top unseen items of the base model that are re-ranked, per user."""
    depth: int = Field(default=10, ge=1, le=2000)
    """Length of the re-ranked list (the ``k`` you show); later candidates keep the base order."""
    attribute: str = "genres"
    """Catalog column of the attribute: calibration target, or MMR similarity with
    ``similarity="attribute"``."""
    separator: str | None = "|"
    """Separator of multi-valued attribute values (``Action|Comedy``); None: single-valued."""
    alpha: float = Field(default=0.01, gt=0, lt=1)
    """Calibrated only: smoothing of the list distribution (as in the metric)."""
    similarity: Literal["interactions", "attribute"] = "interactions"
    """MMR only: cosine of interaction columns (any data set) or of attribute rows."""
    n_factors: int = Field(default=64, ge=1)
    """MMR with ``similarity="interactions"``: singular vectors kept for the cosine."""
    protected_attribute: str = "popularity"
    """Exposure only: ``popularity`` (head/mid/tail tiers) or a catalog column."""
    protected_group: str = "tail"
    """Exposure only: the group of ``protected_attribute`` that gets the bonus."""
    seed: int = Field(default=0, ge=0)
    """Seed of the truncated SVD (MMR with interaction similarity)."""

    @model_validator(mode="after")
    def _check_base(self) -> RerankConfig:
        """The base model exists, is not a re-ranker, and its parameters are valid (frozen)."""
        checked = component_params(self.base_model, self.base_params, "base_params")
        if get_model_class(self.base_model).config_class is RerankConfig:
            raise ValueError("base_model cannot be 'rerank' itself; re-rank a scoring model")
        object.__setattr__(self, "base_params", checked)  # the config is frozen: set it once here
        return self


class Rerank(Recommender, FoldInModel):
    """Re-rank any registered model's candidates for calibration, diversity or exposure.

    See the module docstring for the three objectives.

    Examples
    --------
    >>> from lmrec.testing import checkerboard
    >>> model = Rerank(base_model="ease", base_params={"l2": 10.0}, trade_off=0.3).fit(checkerboard())
    >>> model.recommend(["u0"], k=3)["item"].tolist()
    ['i20', 'i10', 'i14']
    """

    name = "rerank"
    config_class = RerankConfig
    config: RerankConfig

    #: The fitted base model.
    base_: Fitted[Recommender] = Fitted()
    #: Calibrated / MMR-attribute: ``p(g|i)`` rows (n_items, n_values), CSR.
    attributes_: sp.csr_matrix | None = None
    #: MMR: unit item vectors whose dot products are the similarities (n_items, d).
    item_vectors_: np.ndarray | None = None
    #: Exposure: whether each item is in the protected group (n_items,).
    protected_: np.ndarray | None = None

    # ------------------------------------------------------------------ fitting
    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        cfg = self.config
        self.attributes_ = self.item_vectors_ = self.protected_ = None
        if cfg.method == "calibrated" or (cfg.method == "mmr" and cfg.similarity == "attribute"):
            self.attributes_ = attribute_distributions(
                _attribute_groups(dataset, cfg.attribute, cfg.separator).membership
            )
        if cfg.method == "mmr":
            self.item_vectors_ = (
                _unit_rows(self._method_state(self.attributes_).toarray())
                if cfg.similarity == "attribute"
                else _interaction_vectors(dataset.matrix, cfg.n_factors, cfg.seed)
            )
        if cfg.method == "exposure":
            self.protected_ = _protected(
                dataset, cfg.protected_attribute, cfg.protected_group, cfg.separator
            )
        base = create_model(cfg.base_model, cfg.base_params)
        self.base_ = base.fit(dataset, valid=valid, options=options)

    # ------------------------------------------------------------------ scoring
    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        history = sp.csr_matrix(self._seen[user_idx])
        return self._rerank(np.asarray(self.base_._score(user_idx), np.float32), history)

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        """Re-rank the base model's fold-in scores for users given only their items."""
        base = self.base_
        if not declares(base, FoldInModel):
            raise ConfigError(
                f"rerank folds in new users through its base model, and "
                f"{self.config.base_model!r} cannot; use one of "
                f"{', '.join(models_supporting(FoldInModel))}."
            )
        hist = sp.csr_matrix(history, dtype=np.float32)
        return self._rerank(np.asarray(base.score_history(hist), np.float32), hist)

    def _rerank(self, base: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """Scores whose order is: re-ranked candidates, then every other item in base order."""
        n_users, n_items = base.shape
        clean = np.where(np.isfinite(base), base, -np.inf).astype(np.float32)
        # Base order of every item -> (0, 1], higher first; ties by item index.
        order = np.argsort(-clean, axis=1, kind="stable")
        out = np.empty_like(clean)
        np.put_along_axis(out, order, 1.0 - np.arange(n_items, dtype=np.float32) / n_items, axis=1)
        masked = clean.copy()
        rows = np.repeat(np.arange(n_users), np.diff(history.indptr))
        masked[rows, history.indices] = -np.inf
        n_cand = min(self.config.n_candidates, n_items)
        for start in range(0, n_users, _USER_BLOCK):
            stop = min(start + _USER_BLOCK, n_users)
            block = masked[start:stop]
            cand = np.argsort(-block, axis=1, kind="stable")[:, :n_cand]
            rel = np.take_along_axis(block, cand, axis=1).astype(np.float64)
            valid = np.isfinite(rel)
            rel = _minmax(rel, valid)
            if self.config.method == "calibrated":
                picked = self._calibrated_set(cand, rel, valid, history[start:stop])
            else:
                picked = self._greedy(cand, rel, valid, history[start:stop])
            n_pick = picked.shape[1]
            scores = (2.0 + (n_pick - np.arange(n_pick)) / n_pick).astype(np.float32)
            ok = picked >= 0
            sub = out[start:stop]
            sub[np.nonzero(ok)[0], picked[ok]] = np.broadcast_to(scores, picked.shape)[ok]
        return out

    def _method_state(self, value: _T | None) -> _T:
        """One of ``attributes_``, ``item_vectors_``, ``protected_``: each is set by a fit
        whose method reads it (None otherwise)."""
        if value is None:
            raise self._not_fitted()
        return value

    def _calibrated_set(
        self, cand: np.ndarray, rel: np.ndarray, valid: np.ndarray, history: sp.csr_matrix
    ) -> np.ndarray:
        """Steck's objective over a set of ``depth`` items, by best-swap local search.

        Start from the ``depth`` most relevant candidates; while some swap of a chosen item
        for an unchosen candidate raises ``(1 - λ) Σ r − λ C_KL(p, q(S))``, make the best
        one (at most ``4 * depth`` swaps per user). The set is returned in the base order
        (best-first by relevance), so calibration costs no ranking quality within the list.
        """
        lam, alpha = self.config.trade_off, self.config.alpha
        b, n = cand.shape
        depth = min(self.config.depth, n)
        rows = np.arange(b)
        attributes = self._method_state(self.attributes_)
        dist = _dense_rows(attributes, cand)
        p = np.asarray((history.astype(np.float64) @ attributes).todense())
        chosen = np.zeros((b, n), bool)
        chosen[:, :depth] = True
        chosen &= valid
        mass = np.einsum("bn,bng->bg", chosen.astype(np.float64), dist)
        has_p = p.sum(axis=1) > 0

        active = has_p & (lam > 0)
        for _ in range(4 * depth):
            if not active.any():
                break
            idx = np.flatnonzero(active)
            inside = np.argsort(~chosen[idx], axis=1, kind="stable")[:, :depth]  # chosen slots
            out_d = dist[idx[:, None], inside]  # (a, depth, g)
            trial = mass[idx][:, None, None, :] - out_d[:, :, None, :] + dist[idx][:, None, :, :]
            new_kl = _list_kl(p[idx], trial, alpha)
            cur_kl = _list_kl(p[idx], mass[idx], alpha)
            r_in = np.take_along_axis(rel[idx], inside, axis=1)
            delta = (1.0 - lam) * (rel[idx][:, None, :] - r_in[:, :, None]) - lam * (
                new_kl - cur_kl[:, None, None]
            )
            blocked = chosen[idx] | ~valid[idx]
            delta[np.broadcast_to(blocked[:, None, :], delta.shape)] = -np.inf
            slot_ok = np.take_along_axis(chosen[idx], inside, axis=1)  # short lists: real slots
            delta[~slot_ok] = -np.inf
            flat = delta.reshape(len(idx), -1)
            best = np.argmax(flat, axis=1)
            gain = flat[np.arange(len(idx)), best]
            improve = gain > 1e-12
            if not improve.any():
                break
            u = idx[improve]
            slot, add = np.divmod(best[improve], n)
            drop = inside[improve, slot]
            chosen[u, drop] = False
            chosen[u, add] = True
            mass[u] += dist[u, add] - dist[u, drop]
            active[idx[~improve]] = False
        picked = np.full((b, depth), -1, np.int64)
        order = np.argsort(~chosen, axis=1, kind="stable")[:, :depth]  # chosen, in base order
        ok = np.take_along_axis(chosen, order, axis=1)
        picked[ok] = cand[rows[:, None].repeat(depth, axis=1)[ok], order[ok]]
        return picked

    def _greedy(
        self, cand: np.ndarray, rel: np.ndarray, valid: np.ndarray, history: sp.csr_matrix
    ) -> np.ndarray:
        """Greedy selection order of the candidates (item indices; -1 past the valid ones)."""
        lam = self.config.trade_off
        b, n = cand.shape
        rows = np.arange(b)
        taken = ~valid
        depth = min(self.config.depth, n)
        picked = np.full((b, depth), -1, np.int64)
        state = self._start_state(cand, history)
        for step in range(depth):
            gain = (1.0 - lam) * rel - lam * self._penalty(state, step)
            gain[taken] = -np.inf
            best = np.argmax(gain, axis=1)  # first on ties: the better base rank
            live = ~taken[rows, best]
            picked[live, step] = cand[live, best[live]]
            taken[rows[live], best[live]] = True
            self._update(state, best, live)
            if not live.any():
                break
        return picked

    # Each method keeps a small per-block state: what the list so far looks like.
    def _start_state(self, cand: np.ndarray, history: sp.csr_matrix) -> dict[str, Any]:
        method = self.config.method
        if method == "calibrated":
            dist = self._method_state(self.attributes_)
            target = np.asarray((history.astype(np.float64) @ dist).todense())
            return {
                "p": target,
                "items": _dense_rows(dist, cand),
                "mass": np.zeros_like(target),
            }
        if method == "mmr":
            vec = self._method_state(self.item_vectors_)[cand]
            return {"sim": np.einsum("bid,bjd->bij", vec, vec), "max": np.zeros(cand.shape)}
        protected = self._method_state(self.protected_)
        return {"prot": protected[cand].astype(np.float64), "n_prot": np.zeros(len(cand))}

    def _penalty(self, state: dict[str, Any], step: int) -> np.ndarray:
        method = self.config.method
        if method == "calibrated":
            p, items, mass = state["p"], state["items"], state["mass"]
            b, n, g = items.shape
            kl = calibration_kl(
                np.repeat(p, n, axis=0),
                (mass[:, None, :] + items).reshape(b * n, g),
                self.config.alpha,
            ).reshape(b, n)
            # No attribute mass in the list (yet): the worst case, q~ = alpha p. No history: 0.
            has_p = p.sum(axis=1) > 0
            kl = np.where(
                np.isnan(kl), np.where(has_p[:, None], -np.log(self.config.alpha), 0.0), kl
            )
            return kl
        if method == "mmr":
            return state["max"] if step else np.zeros_like(state["max"])
        share = state["n_prot"] / step if step else np.zeros_like(state["n_prot"])
        return -state["prot"] * (1.0 - share)[:, None]

    def _update(self, state: dict[str, Any], best: np.ndarray, live: np.ndarray) -> None:
        rows = np.arange(len(best))
        method = self.config.method
        if method == "calibrated":
            state["mass"] += np.where(live[:, None], state["items"][rows, best], 0.0)
        elif method == "mmr":
            state["max"] = np.maximum(
                state["max"], np.where(live[:, None], state["sim"][rows, best], 0.0)
            )
        else:
            state["n_prot"] += np.where(live, state["prot"][rows, best], 0.0)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        assert self.base_ is not None  # fitted (checked by save)
        arrays, components = components_state({"base": self.base_})
        if self.attributes_ is not None:
            arrays["attributes"] = self.attributes_.toarray().astype(np.float32)
        if self.item_vectors_ is not None:
            arrays["item_vectors"] = self.item_vectors_
        if self.protected_ is not None:
            arrays["protected"] = self.protected_.astype(np.uint8)
        return arrays, components

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:
        cfg = self.config
        base = create_model(cfg.base_model, cfg.base_params)
        restore_components(self, {"base": base}, arrays, meta, "re-ranker")
        self.base_ = base
        n = self.n_items
        self.attributes_ = self.item_vectors_ = self.protected_ = None
        if cfg.method == "calibrated" or (cfg.method == "mmr" and cfg.similarity == "attribute"):
            self.attributes_ = sp.csr_matrix(
                arrays.float("attributes", (n, None)), dtype=np.float64
            )
        if cfg.method == "mmr":
            self.item_vectors_ = arrays.float("item_vectors", (n, None))
        if cfg.method == "exposure":
            self.protected_ = arrays.flags("protected", (n,))


# ---------------------------------------------------------------------------- helpers


def _attribute_groups(dataset: Dataset, column: str, separator: str | None) -> ItemGroups:
    """The catalog column ``column`` as item groups, or a ConfigError naming the columns."""
    items = dataset.items
    have = [] if items is None else [str(c) for c in items.columns]
    if items is None or column not in items.columns:
        raise ConfigError(
            f"rerank needs the item attribute {column!r} in the catalog; the data set has "
            f"{'no catalog' if items is None else 'columns ' + ', '.join(have)}. Pass a catalog "
            "with that column (--items) or set 'attribute' to one of its columns."
        )
    values = items[column].reindex(pd.Index(dataset.item_ids.lookup(np.arange(dataset.n_items))))
    return ItemGroups.from_labels(values, separator=separator, attribute=column)


def _protected(dataset: Dataset, attribute: str, group: str, separator: str | None) -> np.ndarray:
    if attribute == "popularity":
        groups = ItemGroups.popularity_tiers(dataset.matrix)
    else:
        groups = _attribute_groups(dataset, attribute, separator)
    if group not in groups.names:
        raise ConfigError(
            f"protected_group {group!r} is not a value of {attribute!r}; values are "
            f"{', '.join(groups.names[:30])}."
        )
    return np.asarray(groups.membership[:, groups.names.index(group)].todense()).ravel() > 0


def _list_kl(p: np.ndarray, mass: np.ndarray, alpha: float) -> np.ndarray:
    """Miscalibration of lists with attribute ``mass`` (shape ``(a, ..., g)``) for histories
    ``p`` (``(a, g)``); a list with no attribute mass gets the worst value ``ln(1/alpha)``."""
    target = np.broadcast_to(
        p.reshape((p.shape[0],) + (1,) * (mass.ndim - 2) + p.shape[1:]), mass.shape
    )
    flat = calibration_kl(target.reshape(-1, p.shape[1]), mass.reshape(-1, p.shape[1]), alpha)
    return np.where(np.isnan(flat), -np.log(alpha), flat).reshape(mass.shape[:-1])


def _dense_rows(matrix: sp.csr_matrix, idx: np.ndarray) -> np.ndarray:
    """``matrix[idx]`` as a dense array of shape ``idx.shape + (n_cols,)``."""
    return np.asarray(matrix[idx.ravel()].todense()).reshape(*idx.shape, matrix.shape[1])


def _minmax(rel: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Each row scaled to [0, 1] over its valid entries (a constant row becomes all 1)."""
    lo = np.min(np.where(valid, rel, np.inf), axis=1, keepdims=True)
    hi = np.max(np.where(valid, rel, -np.inf), axis=1, keepdims=True)
    span = np.where(np.isfinite(hi - lo) & (hi > lo), hi - lo, 1.0)
    lo = np.where(np.isfinite(lo), lo, 0.0)
    out = np.where(valid, (rel - lo) / span, 0.0)
    return np.where(valid & ~(hi > lo), 1.0, out)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(
        np.where(norms > 0, x / np.where(norms > 0, norms, 1.0), 0.0), dtype=np.float32
    )


def _interaction_vectors(matrix: sp.csr_matrix, n_factors: int, seed: int) -> np.ndarray:
    """Unit item vectors whose dot products approximate the cosine of interaction columns.

    Columns are scaled to unit norm, then projected on the top ``n_factors`` right singular
    vectors; the projection is renormalised so an item's similarity to itself is 1.
    """
    from scipy.sparse.linalg import svds

    binary = sp.csc_matrix(matrix, dtype=np.float64)
    binary.data = np.ones_like(binary.data)
    norms = np.sqrt(np.asarray(binary.multiply(binary).sum(axis=0)).ravel())
    x = sp.csr_matrix(
        binary @ sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0))
    )
    d = min(n_factors, min(x.shape) - 1)
    if d < 1:
        return _unit_rows(x.T.toarray())
    rng = np.random.default_rng(seed)
    _, s, vt = svds(x, k=d, v0=rng.standard_normal(min(x.shape)))
    return _unit_rows((vt.T * s).astype(np.float64))
