"""The served model: loaded, precomputed, validated, and swapped atomically on reload.

A :class:`LoadedModel` is immutable once built: the model, its version, the top-k lists
precomputed for every known user, the popularity fallback and the co-occurrence
fallback -- except that a deleted user leaves its ``user_index`` at once (see
:meth:`ModelStore.hide_user`), so no request finds their precomputed list, model row or
history any more. :class:`ModelStore` holds a reference to the current one (and the previous
one, for rollback). A request reads ``store.current`` once and uses that object to the
end, so a reload that swaps the reference never changes a request in flight; the old
model is freed when its last request finishes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lmrec.errors import ConfigError, LmrecError, ModelFileError
from lmrec.models.base import Recommender
from lmrec.serve.scoring import Cooccurrence, supports_fold_in

log = logging.getLogger("lmrec.serve")


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """One model version, ready to serve (never mutated after :meth:`build`)."""

    model: Recommender
    name: str
    version: str
    path: Path
    loaded_at: float
    load_seconds: float
    fold_in: bool
    top_items: np.ndarray | None  # int32 (n_users, precompute_k), -1 padded
    top_scores: np.ndarray | None  # float32 (n_users, precompute_k)
    popularity: np.ndarray  # float32 (n_items,): training interaction counts
    popular_order: np.ndarray  # int64: items by decreasing popularity
    cooc: Cooccurrence = field(repr=False)
    user_index: dict[str, int] = field(repr=False, default_factory=dict)
    item_index: dict[str, int] = field(repr=False, default_factory=dict)
    item_ids: list[str] = field(repr=False, default_factory=list)
    ann: Any = field(repr=False, default=None)  # FaissIndex from MODEL_DIR/index, or None
    # users deleted over HTTP that this version still holds (id -> row), never served
    hidden_index: dict[str, int] = field(repr=False, default_factory=dict)

    @property
    def n_users(self) -> int:
        """Users this version serves: its training users less those deleted over HTTP."""
        return len(self.model.user_ids_) - len(self.hidden_index)

    @property
    def n_items(self) -> int:
        return self.model.n_items

    @classmethod
    def build(
        cls,
        path: str | Path,
        *,
        precompute_k: int,
        precompute_max_users: int,
        ann_min_items: int | None = None,
    ) -> LoadedModel:
        """Load ``path``, precompute, and smoke-test; any failure raises :class:`ModelFileError`.

        With ``ann_min_items`` set, a model whose catalog has at least that many items
        and whose directory holds an ANN index (``lmrec index build``) is served from
        the index: the precomputed lists and the per-request model path use it.
        """
        from lmrec.models.persist import load_model

        start = time.perf_counter()
        path = Path(path).resolve()
        try:
            model = load_model(path)
            version = _version(path, model.name)
            seen = model.seen_
            n_users, n_items = seen.shape
            fold_in = supports_fold_in(model)
            top_items = top_scores = None
            ann = None
            if ann_min_items is not None and n_items >= ann_min_items:
                from lmrec.retrieval.attached import has_model_index, load_model_index

                if has_model_index(path) and importlib.util.find_spec("faiss") is None:
                    log.warning(
                        "%s has an ANN index but faiss is not installed; serving exact "
                        "top-k (pip install 'lmrec[ann]' to use the index, or set "
                        "ann = false in the serve config to silence this)",
                        path,
                    )
                else:
                    ann = load_model_index(path, model)
            if 0 < n_users <= precompute_max_users:
                k = min(precompute_k, n_items)
                items, scores = _top(model, ann, np.arange(n_users), k)
                top_items, top_scores = items.astype(np.int32), scores
                _check_finite_or_excluded(top_items, top_scores, path)
            popularity = np.bincount(seen.indices, minlength=n_items).astype(np.float32)
            popular_order = np.argsort(-popularity, kind="stable")
            cooc = Cooccurrence.from_seen(seen)
            _smoke(model, fold_in, n_users, path)
            user_ids = [str(u) for u in model.user_ids_.ids]
            item_ids = [str(i) for i in model.item_ids_.ids]
        except ModelFileError:
            raise
        except (
            LmrecError,
            OSError,
            ValueError,
            KeyError,
            IndexError,
            TypeError,
            MemoryError,
            AttributeError,
        ) as e:
            raise ModelFileError(f"{path}: the model could not be loaded and served: {e}") from e
        took = time.perf_counter() - start
        log.info("loaded model %s (%s) from %s in %.2fs", model.name, version, path, took)
        return cls(
            model=model,
            name=model.name,
            version=version,
            path=path,
            loaded_at=time.time(),
            load_seconds=took,
            fold_in=fold_in,
            top_items=top_items,
            top_scores=top_scores,
            popularity=popularity,
            popular_order=popular_order,
            cooc=cooc,
            user_index={u: i for i, u in enumerate(user_ids)},
            item_index={it: i for i, it in enumerate(item_ids)},
            item_ids=item_ids,
            ann=ann,
        )

    def hide(self, user: str) -> bool:
        """Serve ``user`` as an unknown user from now on; whether this version holds them."""
        idx = self.user_index.pop(user, None)
        if idx is not None:
            self.hidden_index[user] = idx
        return user in self.hidden_index

    def recommend_indices(
        self, user_idx: np.ndarray, k: int, *, exclude_seen: bool, candidates: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` for known users: through the ANN index when there is one and no
        candidate filter (an index cannot restrict to candidates), else the model's exact path."""
        if self.ann is not None and candidates is None:
            from lmrec.retrieval.attached import ann_recommend_indices

            return ann_recommend_indices(
                self.model, self.ann, user_idx, k, exclude_seen=exclude_seen
            )
        return self.model.recommend_indices(
            user_idx, k, exclude_seen=exclude_seen, candidates=candidates
        )


def _top(model: Recommender, ann: Any, users: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Precomputed lists: from the ANN index when there is one, else exact."""
    if ann is None:
        return model.recommend_indices(users, k, exclude_seen=True)
    from lmrec.retrieval.attached import ann_recommend_indices

    return ann_recommend_indices(model, ann, users, k, exclude_seen=True)


def _version(path: Path, name: str) -> str:
    """``name-<12 hex>``: a digest of the manifest, which lists the sha256 of every file."""
    digest = hashlib.sha256((path / "manifest.json").read_bytes()).hexdigest()[:12]
    return f"{name}-{digest}"


def _check_finite_or_excluded(items: np.ndarray, scores: np.ndarray, path: Path) -> None:
    valid = items >= 0
    if np.isnan(scores[valid]).any():
        raise ModelFileError(f"{path}: the model produces NaN scores; refusing to serve it.")


def _smoke(model: Recommender, fold_in: bool, n_users: int, path: Path) -> None:
    """One real recommendation through each path the service uses."""
    k = min(10, model.n_items)
    if n_users:
        items, _ = model.recommend_indices(np.array([0]), k, exclude_seen=False)
        if items.shape != (1, k):
            raise ModelFileError(f"{path}: smoke recommendation returned shape {items.shape}.")
    if fold_in:
        out = model.score_histories([np.array([0])])
        if out.shape != (1, model.n_items) or np.isnan(out).any():
            raise ModelFileError(f"{path}: fold-in smoke test returned bad scores.")


class ModelStore:
    """Holds the current :class:`LoadedModel` and swaps it atomically.

    Parameters
    ----------
    loaded : LoadedModel
        The model served at startup.
    precompute_k, precompute_max_users : int
        Passed to :meth:`LoadedModel.build` on reload.
    allowed_root : Path, optional
        Reloads must name a directory under this one.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        precompute_k: int = 100,
        precompute_max_users: int = 2_000_000,
        allowed_root: Path | None = None,
        ann_min_items: int | None = None,
    ) -> None:
        self._current = loaded
        self._previous: LoadedModel | None = None
        self._lock = threading.Lock()  # one reload at a time; readers never take it
        self.precompute_k = precompute_k
        self.precompute_max_users = precompute_max_users
        self.ann_min_items = ann_min_items
        self.allowed_root = allowed_root.resolve() if allowed_root is not None else None
        self.startup_seconds = loaded.load_seconds
        #: Users deleted over HTTP that a loaded version still holds: hidden from every
        #: version this store serves, until no loaded version holds them (in memory only).
        self.hidden: set[str] = set()

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        precompute_k: int = 100,
        precompute_max_users: int = 2_000_000,
        allowed_root: Path | None = None,
        ann_min_items: int | None = None,
    ) -> ModelStore:
        """Load ``path`` and hold it as the current model (``ann_min_items``: see
        :meth:`LoadedModel.build`; None never uses an ANN index)."""
        loaded = LoadedModel.build(
            path,
            precompute_k=precompute_k,
            precompute_max_users=precompute_max_users,
            ann_min_items=ann_min_items,
        )
        return cls(
            loaded,
            precompute_k=precompute_k,
            precompute_max_users=precompute_max_users,
            allowed_root=allowed_root,
            ann_min_items=ann_min_items,
        )

    @property
    def current(self) -> LoadedModel:
        """The model to serve the next request (reading a reference is atomic)."""
        return self._current

    @property
    def previous(self) -> LoadedModel | None:
        """The model replaced by the last reload, kept for :meth:`rollback`."""
        return self._previous

    def resolve(self, path: str | Path | None) -> Path:
        """The directory a reload would load (default: the current one), checked against root."""
        if path is None:
            target = self._current.path
        else:
            try:
                target = Path(path).resolve()
            except (ValueError, OSError) as e:  # NUL bytes, loops, names too long
                raise ConfigError(
                    f"The reload path {str(path)!r} is not a usable path: {e}."
                ) from e
        if self.allowed_root is not None and not target.is_relative_to(self.allowed_root):
            raise ConfigError(
                f"Reload path must lie under {self.allowed_root} (the server's reload_root)."
            )
        return target

    def reload(self, path: str | Path | None = None) -> LoadedModel:
        """Load ``path`` beside the current model, validate it, then swap.

        Blocking: call it from a worker thread. A broken directory raises
        :class:`ModelFileError` and the current model keeps serving.
        """
        target = self.resolve(path)
        with self._lock:
            new = LoadedModel.build(
                target,
                precompute_k=self.precompute_k,
                precompute_max_users=self.precompute_max_users,
                ann_min_items=self.ann_min_items,
            )
            self._hide_in(new)
            self._previous, self._current = self._current, new
            self._hide_in(new)  # a deletion may have come during the build
            self._prune_hidden()
        return new

    # ------------------------------------------------------------------ deletion
    def hide_user(self, user: str) -> bool:
        """Stop serving ``user`` from every loaded version at once (they are served as an
        unknown user); returns whether the current or previous version holds them."""
        self.hidden.add(user)
        found = False
        for lm in (self._current, self._previous):
            if lm is not None and lm.hide(user):
                found = True
        if not found:
            self.hidden.discard(user)
        return found

    def replace_current(
        self, make: Callable[[LoadedModel], Recommender | None]
    ) -> LoadedModel | None:
        """Replace the served version by ``make(current)``, written over its directory.

        For deletions: the new model is saved atomically over the current directory (so
        a restart or a reload of that path serves it too), loaded, and swapped in; the
        previous version is dropped, because rolling back to it would serve the deleted
        users again. ``make`` returning None changes nothing (and returns None). Blocking,
        under the reload lock. A failure raises, and the current version keeps serving.
        """
        with self._lock:
            cur = self._current
            model = make(cur)
            if model is None:
                return None
            model.save(cur.path, overwrite=True)
            new = LoadedModel.build(
                cur.path,
                precompute_k=self.precompute_k,
                precompute_max_users=self.precompute_max_users,
                ann_min_items=self.ann_min_items,
            )
            self._hide_in(new)
            self._previous, self._current = None, new
            self._hide_in(new)
            self._prune_hidden()
        return new

    def drop_previous_holding(self, user: str) -> bool:
        """Stop keeping the previous version for rollback if it holds (hidden) ``user``;
        returns whether it did."""
        with self._lock:
            prev = self._previous
            if prev is None or user not in prev.hidden_index:
                return False
            self._previous = None
            self._prune_hidden()
        return True

    def _hide_in(self, lm: LoadedModel) -> None:
        for user in list(self.hidden):
            lm.hide(user)

    def _prune_hidden(self) -> None:
        """Forget hidden ids that no loaded version holds any more."""
        held = set(self._current.hidden_index)
        if self._previous is not None:
            held |= set(self._previous.hidden_index)
        self.hidden &= held

    def rollback(self) -> LoadedModel:
        """Swap back to the model served before the last reload."""
        with self._lock:
            if self._previous is None:
                raise ConfigError("There is no previous model version to roll back to.")
            self._previous, self._current = self._current, self._previous
            return self._current
