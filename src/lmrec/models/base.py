"""The one recommender protocol every lmrec model implements.

A model subclasses :class:`Recommender`, declares its hyperparameters as a
:class:`~lmrec.models.config.ModelConfig`, and implements three hooks:

- ``_fit(dataset, valid=..., options=...)`` -- learn from the training data set;
- ``_score(user_idx)`` -- a dense (n_users, n_items) score block for known users;
- ``_get_state()`` / ``_set_state(arrays, meta)`` -- the fitted arrays, for save/load.

Everything else -- external ids, unknown-id policy, exclusion of seen items,
candidate filters, batching, top-k, save/load with checksums -- lives here once,
so the CLI, the evaluator, the tuner and the service never special-case a model.
Optional abilities (folding in a history given at request time, inner-product scores,
checkpoints, distributed training, ...) are the protocols of
:mod:`lmrec.models.capabilities`, declared as base classes.

Explanations are part of the protocol. ``explain(item, user=... | items=...)`` (ids) and
``attribute(item_idx, history | user_idx)`` (dense indices) say how much each history
item contributes to an item's score, in the model's own units. The default
``_attribute`` is exact occlusion through :meth:`Recommender.score_histories` -- the
score drop when one history item is left out -- so every model that declares
:class:`~lmrec.models.capabilities.FoldInModel` or
:class:`~lmrec.models.capabilities.SequenceModel` is explainable with no extra code;
linear models override it with their exact decomposition, and models that score known
users from more than their items (a prompt with attributes) override it to stay
faithful. ``user_history(user_idx)`` is the history a known user is scored from (in the
order the model reads it). See :mod:`lmrec.models.explain`.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lmrec._checks import check_k
from lmrec.data.dataset import Dataset
from lmrec.data.idmap import IdMap, OnUnknown, as_id_array
from lmrec.errors import ConfigError, ModelFileError, NonFiniteModelError, NotFittedError
from lmrec.models.capabilities import (
    CheckpointedModel,
    DotProductModel,
    FitOptions,
    FoldInModel,
    HardNegativeModel,
    SequenceModel,
    declares,
    supports,
)
from lmrec.models.config import ModelConfig, build_config
from lmrec.models.explain import (
    Attribution,
    Catalog,
    Explanation,
    check_attribution,
    explain_ids,
    occlusion,
)
from lmrec.models.files import ModelFiles, StateArrays, read_model_files, write_model_files
from lmrec.models.fitted import Fitted
from lmrec.ops.topk import dot_topk, mask_rows, topk

RECOMMENDATION_COLUMNS = ["user", "item", "rank", "score"]

__all__ = ["RECOMMENDATION_COLUMNS", "Recommender", "check_k", "history_matrix"]


class Recommender(ABC):
    """Base class of all recommenders: ``fit``, ``score``, ``recommend``, ``save``, ``load``.

    Parameters
    ----------
    config : ModelConfig, optional
        The model's hyperparameters. Pass either a config object or keyword
        arguments, not both.
    **params
        Hyperparameters as keywords, validated against the model's config class.
    """

    #: Registry name, set by :func:`lmrec.models.registry.register_model`.
    name: ClassVar[str] = ""
    #: The pydantic config class holding this model's hyperparameters.
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    #: Most rows of users scored per block in ``recommend``.
    score_block_size: ClassVar[int] = 1024
    #: Score cells per block: blocks shrink for large catalogs to stay cache- and memory-friendly.
    score_block_cells: ClassVar[int] = 1 << 23

    # Fitted state, set by fit() or load().
    user_ids_: Fitted[IdMap] = Fitted()
    item_ids_: Fitted[IdMap] = Fitted()
    seen_: Fitted[sp.csr_matrix] = Fitted()

    def __init__(self, config: ModelConfig | None = None, **params: Any) -> None:
        if config is not None and params:
            raise ConfigError(
                f"Pass {type(self).__name__} either a config object or keyword parameters, not both."
            )
        if config is None:
            config = build_config(self.config_class, params)
        elif not isinstance(config, self.config_class):
            raise ConfigError(
                f"{type(self).__name__} takes a {self.config_class.__name__}; "
                f"got {type(config).__name__}."
            )
        self.config = config
        self._derived: dict[str, Any] = {}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items())
        return f"{type(self).__name__}({params})"

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        dataset: Dataset,
        *,
        valid: Dataset | None = None,
        options: FitOptions | None = None,
    ) -> Self:
        """Learn from ``dataset`` (a refit starts over); returns the fitted model.

        Parameters
        ----------
        dataset : Dataset
            The training interactions; they are also the items excluded at recommendation.
        valid : Dataset, optional
            Held-out interactions for model selection (early stopping, a weight search)
            by models that declare :class:`~lmrec.models.capabilities.ValidatedModel`;
            never trained on. Other models ignore it.
        options : FitOptions, optional
            Checkpoints, hard negatives, progress bars (see
            :class:`~lmrec.models.capabilities.FitOptions`).

        Raises
        ------
        ConfigError
            An option the model does not support (e.g. checkpoints for EASE), or an
            empty data set.
        NonFiniteModelError
            The fitted parameters are not finite (e.g. from extreme weights in the data).
        """
        if not isinstance(dataset, Dataset):
            raise TypeError(
                f"fit expects an lmrec.data.Dataset; got {type(dataset).__name__}. "
                "Build one with lmrec.data.load_dataset or Dataset.from_frame."
            )
        if valid is not None and not isinstance(valid, Dataset):
            raise TypeError(f"valid must be an lmrec.data.Dataset; got {type(valid).__name__}.")
        options = FitOptions() if options is None else options
        self._check_options(options)
        if dataset.n_interactions == 0:
            raise ConfigError(f"Cannot fit {type(self).__name__} on an empty data set.")
        self.user_ids_ = dataset.user_ids
        self.item_ids_ = dataset.item_ids
        # The binary training pattern, sharing the (immutable) data set's arrays where it can.
        m = dataset.matrix
        ones = m.data if bool((m.data == 1).all()) else np.ones(m.nnz, np.float32)
        self.seen_ = sp.csr_matrix((ones, m.indices, m.indptr), shape=m.shape)
        self._derived = {}
        self._fit(dataset, valid=valid, options=options)
        self._derived = {}
        self._check_finite(dataset)
        return self

    def _check_options(self, options: FitOptions) -> None:
        """Refuse run options this model does not declare it supports."""
        label = self.name or type(self).__name__
        if options.checkpoint_dir is not None and not supports(self, CheckpointedModel):
            raise ConfigError(f"Model {label!r} does not write checkpoints; drop checkpoint_dir.")
        if options.checkpoint_every is not None and not (
            declares(self, CheckpointedModel) and self.checkpoint_steps
        ):
            raise ConfigError(
                f"Model {label!r} sets its checkpoint interval in its config, not with "
                "checkpoint_every."
            )
        if options.hard_negatives is not None and not supports(self, HardNegativeModel):
            raise ConfigError(f"Model {label!r} does not sample hard negatives.")

    def _check_finite(self, dataset: Dataset) -> None:
        """Fail loudly when fitting produced NaN or infinite parameters."""
        arrays, _ = self._get_state()
        bad = [
            k
            for k, v in arrays.items()
            if np.issubdtype(np.asarray(v).dtype, np.floating) and not np.isfinite(v).all()
        ]
        if not bad:
            return
        w = dataset.matrix.data
        largest = float(np.abs(w).max()) if len(w) else 0.0
        raise NonFiniteModelError(
            f"Fitting {self.name or type(self).__name__} gave non-finite values in "
            f"{', '.join(sorted(bad))}. The largest |weight| in the training data is "
            f"{largest:.4g}; rescale extreme weights, lower the learning rate, or raise "
            "the regularization."
        )

    @abstractmethod
    def _fit(self, dataset: Dataset, *, valid: Dataset | None, options: FitOptions) -> None:
        """Learn model parameters from ``dataset`` (``valid`` and ``options`` as in :meth:`fit`)."""

    @abstractmethod
    def _score(self, user_idx: np.ndarray) -> np.ndarray:
        """Scores (float32, shape (len(user_idx), n_items)) of all items for known users."""

    def _memo(self, key: str, build: Any) -> Any:
        """A value derived from the fitted state, built once per fit or load."""
        derived = self.__dict__.setdefault("_derived", {})
        if key not in derived:
            derived[key] = build()
        return derived[key]

    @property
    def is_fitted(self) -> bool:
        """Whether the model has been fitted or loaded."""
        return Recommender.item_ids_.is_set(self)

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise self._not_fitted()

    def _not_fitted(self) -> NotFittedError:
        return NotFittedError(
            f"{type(self).__name__} is not fitted; call .fit(data) first (or Model.load(dir))."
        )

    # Short names of the fitted state above, kept for the code that reads them.
    @property
    def _user_ids(self) -> IdMap:
        return self.user_ids_

    @property
    def _item_ids(self) -> IdMap:
        return self.item_ids_

    @property
    def _seen(self) -> sp.csr_matrix:
        return self.seen_

    @property
    def n_items(self) -> int:
        """Size of the item universe the model ranks over."""
        return len(self._item_ids)

    # ------------------------------------------------------------------ scoring
    def score(
        self,
        users: Iterable[object] | object,
        items: Iterable[object] | None = None,
        *,
        on_unknown: OnUnknown = "raise",
    ) -> np.ndarray:
        """Raw scores of ``items`` (default: all, in id-map order) for known ``users``.

        Returns a float32 array (n_users, n_items); rows of unknown users (when
        ``on_unknown`` is not ``"raise"``) are NaN.
        """
        self._check_fitted()
        uidx = self._user_ids.index(users, on_unknown=on_unknown, kind="user")
        iidx = None
        if items is not None:
            iidx = self._item_ids.index(items, on_unknown="raise", kind="item")
        n_cols = self.n_items if iidx is None else len(iidx)
        out = np.full((len(uidx), n_cols), np.nan, np.float32)
        known = np.flatnonzero(uidx >= 0)
        for start in range(0, len(known), self.score_block_size):
            rows = known[start : start + self.score_block_size]
            block = self._score(uidx[rows])
            out[rows] = block if iidx is None else block[:, iidx]
        return out

    def recommend_indices(
        self,
        user_idx: np.ndarray,
        k: int,
        *,
        exclude_seen: bool = True,
        candidates: np.ndarray | None = None,
        exclude: sp.csr_matrix | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` dense item indices and scores for dense ``user_idx`` (the fast path).

        ``candidates`` (dense item indices) restricts the ranking; ``exclude`` is an
        extra (n_users_total, n_items) matrix of items to drop per user.
        Returns ``items`` (int64, -1 padded) and ``scores`` (float32), both (n, k).
        """
        self._check_fitted()
        k = check_k(k)
        user_idx = np.asarray(user_idx, dtype=np.int64)
        if candidates is None and declares(self, DotProductModel):
            users = self.user_vectors(user_idx)
            if np.isfinite(users).all():  # else the generic path turns NaN scores into -inf
                ex = self.exclusion(user_idx, exclude_seen, exclude)
                return dot_topk(users, self.item_vectors(), k, exclude=ex)
        items = np.empty((len(user_idx), k), np.int64)
        scores = np.empty((len(user_idx), k), np.float32)
        keep = None
        if candidates is not None:
            keep = np.zeros(self.n_items, bool)
            keep[np.asarray(candidates, dtype=np.int64)] = True
        step = self._block_rows()
        for start in range(0, len(user_idx), step):
            rows = user_idx[start : start + step]
            block = np.array(self._score(rows), dtype=np.float32, copy=True)
            self._apply_filters(block, rows, exclude_seen, exclude, keep)
            items[start : start + len(rows)], scores[start : start + len(rows)] = topk(block, k)
        return items, scores

    def exclusion(
        self, user_idx: np.ndarray, exclude_seen: bool, exclude: sp.csr_matrix | None
    ) -> sp.csr_matrix | None:
        """Row-aligned CSR of the items to drop for ``user_idx``: training items and/or ``exclude``.

        Every stored entry counts, whatever its value (as in :func:`~lmrec.ops.topk.mask_rows`):
        the union is taken on the patterns, so a stored zero still excludes.
        """
        parts = []
        if exclude_seen:
            parts.append(sp.csr_matrix(self._seen[user_idx]))
        if exclude is not None:
            parts.append(sp.csr_matrix(sp.csr_matrix(exclude)[user_idx]))
        if len(parts) < 2:
            return parts[0] if parts else None
        a, b = (
            sp.csr_matrix((np.ones(m.nnz, np.float32), m.indices, m.indptr), shape=m.shape)
            for m in parts
        )
        return sp.csr_matrix(a + b)

    def _block_rows(self) -> int:
        """Users per scoring block: at most ``score_block_size``, fewer for big catalogs."""
        return max(1, min(self.score_block_size, self.score_block_cells // max(1, self.n_items)))

    def _apply_filters(
        self,
        block: np.ndarray,
        rows: np.ndarray,
        exclude_seen: bool,
        exclude: sp.csr_matrix | None,
        keep: np.ndarray | None,
    ) -> None:
        block[~np.isfinite(block)] = -np.inf
        if exclude_seen:
            mask_rows(block, self._seen[rows])
        if exclude is not None:
            mask_rows(block, exclude[rows])
        if keep is not None:
            block[:, ~keep] = -np.inf

    def recommend(
        self,
        users: Iterable[object] | object,
        *,
        k: int = 10,
        exclude_seen: bool = True,
        candidates: Iterable[object] | None = None,
        on_unknown: OnUnknown = "raise",
    ) -> pd.DataFrame:
        """Top-``k`` items for each of ``users`` (external ids in, external ids out).

        Parameters
        ----------
        users : id or iterable of ids
            Users seen at training time. Unknown users raise
            :class:`~lmrec.errors.UnknownIdError` unless ``on_unknown`` is
            ``"warn"`` or ``"ignore"`` (they are then left out of the result).
        k : int
            List length, >= 1.
        exclude_seen : bool
            Drop the items each user interacted with in the training data.
        candidates : iterable of item ids, optional
            Rank only these items (unknown item ids raise).

        Returns
        -------
        DataFrame
            Columns ``user, item, rank, score``; ``rank`` starts at 1. A user gets
            fewer than ``k`` rows when fewer items remain after exclusion.
        """
        self._check_fitted()
        k = check_k(k)
        uidx = self._user_ids.index(users, on_unknown=on_unknown, kind="user")
        uidx = uidx[uidx >= 0]
        cand = None
        if candidates is not None:
            cand = self._item_ids.index(candidates, kind="item")
        items, scores = self.recommend_indices(uidx, k, exclude_seen=exclude_seen, candidates=cand)
        return self._to_frame(self._user_ids.lookup(uidx), items, scores)

    def recommend_for_items(
        self,
        histories: Sequence[Iterable[object]] | Iterable[object],
        *,
        k: int = 10,
        exclude_seen: bool = True,
        candidates: Iterable[object] | None = None,
        on_unknown: OnUnknown = "ignore",
        session_ids: Sequence[object] | None = None,
    ) -> pd.DataFrame:
        """Recommend for new users described only by the items they interacted with.

        ``histories`` is one list of external item ids, or a list of such lists (one
        per anonymous user). No retraining: models fold the history in (closed form for
        ALS, directly for EASE and kNN); sequence models read each list as a session in
        the order given, oldest first. Unknown items are ignored by default. Models that
        declare neither :class:`~lmrec.models.capabilities.FoldInModel` nor
        :class:`~lmrec.models.capabilities.SequenceModel` raise ConfigError.
        The ``user`` column of the result holds ``session_ids`` (default ``0, 1, ...``).
        """
        self._check_fitted()
        k = check_k(k)
        self._check_new_users()
        sequences = []
        for hist in _as_history_list(histories):
            idx = self._item_ids.index(hist, on_unknown=on_unknown, kind="item")
            sequences.append(idx[idx >= 0])
        history = history_matrix(sequences, self.n_items)
        keep = None
        if candidates is None:
            scores_full = self.score_histories(sequences)
        else:  # score the candidates only (models that score item by item gain from it)
            cand = np.unique(self._item_ids.index(candidates, kind="item"))
            keep = np.zeros(self.n_items, bool)
            keep[cand] = True
            scores_full = np.full((len(sequences), self.n_items), -np.inf, np.float32)
            scores_full[:, cand] = self.score_histories(sequences, items=cand)
        scores_full[~np.isfinite(scores_full)] = -np.inf
        if exclude_seen:
            mask_rows(scores_full, history)
        if keep is not None:
            scores_full[:, ~keep] = -np.inf
        items, scores = topk(scores_full, k)
        hist_list = sequences
        ids = np.asarray(
            list(session_ids) if session_ids is not None else range(len(hist_list)), dtype=object
        )
        if len(ids) != len(hist_list):
            raise ConfigError("session_ids must have one id per history.")
        return self._to_frame(ids.astype(str), items, scores)

    def _check_new_users(self) -> None:
        """ConfigError unless the model scores histories given at request time."""
        if not (supports(self, SequenceModel) or supports(self, FoldInModel)):
            raise self._no_new_users()

    def _no_new_users(self) -> ConfigError:
        return ConfigError(
            f"Model {self.name or type(self).__name__!r} cannot recommend from an item list "
            "given at request time; use a model that folds in new users (e.g. ease, "
            "itemknn, als)."
        )

    def score_histories(
        self, histories: Sequence[np.ndarray], *, items: np.ndarray | None = None
    ) -> np.ndarray:
        """Scores (float32, writable, (len(histories), n_items)) of users known only by items.

        Each history is an array of dense item indices, oldest first. A
        :class:`~lmrec.models.capabilities.SequenceModel` reads the order
        (``score_sequences``), a :class:`~lmrec.models.capabilities.FoldInModel` the set
        (``score_history``); other models raise ConfigError. ``recommend_for_items``,
        explanations and the service all score new users through this one method.
        ``items`` (dense indices) keeps only those columns; models that score item by
        item (the LM ranker) then score only them.
        """
        self._check_fitted()
        self._check_new_users()
        sequences = [np.asarray(h, dtype=np.int64) for h in histories]
        if declares(self, SequenceModel):  # order matters: the list is a session, oldest first
            raw = self.score_sequences(sequences)
        elif declares(self, FoldInModel):
            raw = self.score_history(history_matrix(sequences, self.n_items))
        else:
            raise self._no_new_users()
        if items is not None:
            return np.array(np.asarray(raw)[:, np.asarray(items, dtype=np.int64)], dtype=np.float32)
        return np.array(raw, dtype=np.float32, copy=True)

    # ------------------------------------------------------------------ explanations
    def user_history(self, user_idx: int) -> np.ndarray:
        """Dense item indices a known user is scored from, in the order the model reads them.

        The default is the user's training items (by index); a
        :class:`~lmrec.models.capabilities.SequenceModel` reads its ``user_sequence``
        (oldest first), so sequence models are explained in their own order.
        """
        self._check_fitted()
        if declares(self, SequenceModel):
            return np.asarray(self.user_sequence(int(user_idx)), dtype=np.int64)
        seen = self._seen
        u = int(user_idx)
        return np.asarray(seen.indices[seen.indptr[u] : seen.indptr[u + 1]], dtype=np.int64)

    def attribute(
        self, item_idx: int, history: np.ndarray | None = None, *, user_idx: int | None = None
    ) -> Attribution:
        """How much each history item contributes to ``item_idx``'s score (dense indices).

        Give either ``history`` (a new user's dense item indices, oldest first) or
        ``user_idx`` (a known user: their :meth:`user_history`, scored the way the model
        scores that user). Linear models decompose their score exactly; the others use
        occlusion through :meth:`score_histories` (see :mod:`lmrec.models.explain`).

        Raises
        ------
        ConfigError
            Both or neither of ``history`` and ``user_idx``; an index out of range; an
            item already in the history; a model that cannot score histories.
        """
        self._check_fitted()
        scores_histories = supports(self, SequenceModel) or supports(self, FoldInModel)
        item, history, user_idx = check_attribution(
            self, scores_histories, item_idx, history, user_idx
        )
        return self._attribute(item, history, user_idx)

    def _attribute(self, item: int, history: np.ndarray, user_idx: int | None) -> Attribution:
        """Attribution of ``item``'s score to ``history`` (checked); occlusion by default.

        Linear models override this with their exact decomposition; models whose known
        users are scored from more than their items (attributes, a prompt) use
        ``user_idx`` to stay faithful to that scoring.
        """
        score, contributions = occlusion(
            lambda rows: self.score_histories(rows, items=np.array([item]))[:, 0], history
        )
        return Attribution(item, history, contributions, score, "occlusion")

    def explain(
        self,
        item: object,
        *,
        user: object | None = None,
        items: Iterable[object] | None = None,
        n: int = 5,
        catalog: pd.DataFrame | Catalog | None = None,
        on_unknown: OnUnknown = "ignore",
    ) -> Explanation:
        """Why ``item`` is recommended to ``user`` (or to a new user who has ``items``).

        Parameters
        ----------
        item : id
            The recommended item (external id).
        user : id, optional
            A known user; or
        items : iterable of ids, optional
            A new user's history, oldest first (unknown ids follow ``on_unknown``).
        n : int
            Most contributing history items to report.
        catalog : DataFrame or Catalog, optional
            Item attributes (``title``, genres, year, ...): titles in the text instead of
            ids, and reasons naming what the item shares with the contributing items.

        Returns
        -------
        Explanation
            Contributions in the model's score units (see :mod:`lmrec.models.explain`).

        Raises
        ------
        UnknownIdError
            An unknown ``user`` or ``item``.
        ConfigError
            Both or neither of ``user`` and ``items``; ``item`` already in the history; a
            model that cannot score histories.
        """
        self._check_fitted()
        return explain_ids(
            self, item, user=user, items=items, n=n, catalog=catalog, on_unknown=on_unknown
        )

    def _to_frame(
        self, user_ext: np.ndarray, items: np.ndarray, scores: np.ndarray
    ) -> pd.DataFrame:
        k = items.shape[1]
        valid = items >= 0
        n_valid = valid.sum(axis=1)
        return pd.DataFrame(
            {
                "user": np.repeat(np.asarray(user_ext, dtype=object), n_valid),
                "item": self._item_ids.lookup(items[valid]),
                "rank": np.broadcast_to(np.arange(1, k + 1), items.shape)[valid],
                "score": scores[valid],
            },
            columns=RECOMMENDATION_COLUMNS,
        )

    # ------------------------------------------------------------------ persistence
    #: Whether loading scores two users (and folds in one item) to prove the arrays fit
    #: together; off for models whose every score is a language-model forward pass.
    smoke_check_on_load: ClassVar[bool] = True

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Fitted arrays (saved as safetensors) and JSON-able metadata of the model."""
        return {}, {}

    def _set_state(self, arrays: StateArrays, meta: dict[str, Any]) -> None:  # noqa: B027
        """Restore what :meth:`_get_state` returned, reading each array through the checked
        accessors of ``arrays`` (models without fitted arrays keep this)."""

    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Write the fitted model to directory ``path`` atomically and durably (no pickle)."""
        self._check_fitted()
        if not self.name:
            raise ConfigError(
                f"{type(self).__name__} is not registered; register_model(name, cls) before saving."
            )
        arrays, meta = self._get_state()
        return write_model_files(
            path,
            name=self.name,
            params=self.config.model_dump(mode="json"),
            meta=meta,
            arrays=arrays,
            user_ids=self._user_ids,
            item_ids=self._item_ids,
            seen=self._seen,
            overwrite=overwrite,
        )

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Load a model directory saved by this class, verifying every file.

        ``lmrec.models.load_model(path)`` loads a directory of any model.
        """
        files = read_model_files(path)
        if cls is Recommender or files.name != cls.name:
            raise ConfigError(
                f"{path} holds a {files.name!r} model; load it with lmrec.models.load_model, "
                f"or with the class registered as {files.name!r}."
            )
        return cls.from_files(files)

    @classmethod
    def from_files(cls, files: ModelFiles) -> Self:
        """Build a fitted model from validated directory contents (see :mod:`lmrec.models.files`)."""
        where = files.path / "arrays.safetensors"
        params = dict(files.params)
        unknown = set(params) - set(cls.config_class.model_fields)
        if unknown:
            warnings.warn(
                f"{files.path}: ignoring unknown {files.name} parameters {sorted(unknown)} "
                "(written by a newer lmrec?).",
                UserWarning,
                stacklevel=3,
            )
            params = {k: v for k, v in params.items() if k not in unknown}
        try:
            model = cls(build_config(cls.config_class, params))
        except ConfigError as e:
            raise ModelFileError(f"{files.path / 'config.json'}: {e}") from e
        model.user_ids_, model.item_ids_, model.seen_ = files.user_ids, files.item_ids, files.seen
        state = StateArrays(files.arrays, str(where))
        try:
            model._set_state(state, files.meta)
            if state.unread():
                raise ModelFileError(
                    f"{where} holds arrays a {files.name} model does not have: "
                    f"{', '.join(state.unread()[:10])}."
                )
            if cls.smoke_check_on_load:
                model._smoke_check()
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, ArithmeticError) as e:
            raise ModelFileError(
                f"{files.path} is not a valid {files.name} model: {type(e).__name__}: {e}"
            ) from e
        return model

    def _smoke_check(self) -> None:
        """Score the first and last user (and fold in one item) to prove the arrays fit together."""
        n_users = self._seen.shape[0]
        checks = []
        if n_users:
            checks.append(("scores", self._score(np.unique([0, n_users - 1]))))
        if declares(self, FoldInModel) and self.n_items:
            checks.append(
                ("fold-in", self.score_history(history_matrix([np.array([0])], self.n_items)))
            )
        for what, out in checks:
            out = np.asarray(out)
            if out.ndim != 2 or out.shape[1] != self.n_items or np.isnan(out).any():
                raise ModelFileError(
                    f"The saved {self.name} model gives invalid {what} (shape {out.shape}, "
                    "or NaN values); the model files are inconsistent."
                )


def history_matrix(rows: Sequence[np.ndarray], n_items: int) -> sp.csr_matrix:
    """A binary (len(rows), n_items) float32 CSR matrix with row ``i`` holding items ``rows[i]``.

    Repeated items count once, so the matrix is the *set* of items of each history.
    """
    indptr = np.zeros(len(rows) + 1, np.int64)
    uniq = [np.unique(np.asarray(r, dtype=np.int64)) for r in rows]
    indptr[1:] = np.cumsum([len(r) for r in uniq])
    indices = np.concatenate(uniq).astype(np.int32) if uniq else np.empty(0, np.int32)
    return sp.csr_matrix(
        (np.ones(len(indices), np.float32), indices, indptr), shape=(len(rows), n_items)
    )


def _as_history_list(histories: Sequence[Iterable[object]] | Iterable[object]) -> list[np.ndarray]:
    """Accept one history (flat list of ids) or many (list of lists)."""
    items = list(histories)
    nested = [h for h in items if isinstance(h, Iterable) and not isinstance(h, (str, bytes))]
    if items and len(nested) == len(items):
        return [as_id_array(list(h)) for h in nested]
    return [as_id_array(items)]
