"""The LM ranker and the pipeline on histories given as items: new users and explanations.

A known user's prompt shows their attributes and the last ``n_history`` items of their
time-ordered history with like marks. A history given at request time (a new user, an
anonymous session) is rendered the same way, without attributes or marks
(:meth:`~lmrec.ranker.prompts.PromptBuilder.render`); so the ranker is a
:class:`~lmrec.models.capabilities.SequenceModel`, and the pipeline too (its retriever
folds the items in, the ranker reads their order).

Explanations occlude history items *in the prompt*: the contribution of an item is the
drop of the candidate's logit when the item is removed from the history (the next
older item then enters the window, as it would if the user had never interacted with
it). Items outside the window do not change the prompt, so they contribute exactly 0.

Stability: experimental. .. versionadded:: 0.3.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmrec.errors import ConfigError
from lmrec.models.explain import Attribution
from lmrec.ranker.features import history_features


@dataclass(frozen=True)
class History:
    """A history as the ranker reads it: items and like marks (oldest first) and the
    user's attribute text."""

    items: np.ndarray
    liked: np.ndarray
    user_text: str = ""

    @classmethod
    def of_items(cls, items: np.ndarray) -> History:
        """A history given as items: no like marks, no attributes."""
        items = np.asarray(items, np.int64)
        return cls(items, np.full(len(items), -1, np.int8))

    @classmethod
    def of_user(cls, ranker: Any, user_idx: int) -> History:
        """A known user's history, attributes and like marks, as the prompts show them."""
        p = ranker.prompts_
        lo, hi = int(p.indptr[user_idx]), int(p.indptr[user_idx + 1])
        return cls(p.items[lo:hi].astype(np.int64), p.liked[lo:hi], p.user_texts[user_idx])

    def without(self, position: int) -> History:
        """The history with the item at ``position`` removed."""
        return History(
            np.delete(self.items, position), np.delete(self.liked, position), self.user_text
        )


def candidate_logits(ranker: Any, histories: Sequence[History], item_idx: np.ndarray) -> np.ndarray:
    """Logits (float32, (n, c)) of candidate items (-1: ``-inf``) after each history.

    Identical prompt pairs (with identical side features) are scored once: occluding an
    item outside the prompt window leaves the prompt as it was.
    """
    ranker._check_fitted()
    ranker._check_module()
    item_idx = np.asarray(item_idx, np.int64)
    if item_idx.ndim != 2 or item_idx.shape[0] != len(histories):
        raise ConfigError(
            f"candidate_logits needs item_idx of shape (len(histories), c) = "
            f"({len(histories)}, c); got {item_idx.shape}."
        )
    prompts, stats = ranker.prompts_, ranker.item_stats_
    keys: dict[tuple[str, int, bytes], int] = {}
    contexts: list[str] = []
    candidates: list[str] = []
    feats: list[np.ndarray] = []
    slot: list[int] = []
    rows, cols = np.nonzero(item_idx >= 0)
    for r in np.unique(rows):
        h = histories[r]
        items = item_idx[r][item_idx[r] >= 0]
        context = prompts.render(h.items, h.liked, h.user_text)
        x = (
            history_features(stats, h.liked, prompts.n_history, items)
            if stats is not None
            else np.zeros((len(items), 0), np.float32)
        )
        for i, row in zip(items.tolist(), x, strict=True):
            key = (context, i, row.tobytes())
            if key not in keys:
                keys[key] = len(contexts)
                contexts.append(context)
                candidates.append(prompts.item_texts[i])
                feats.append(row)
            slot.append(keys[key])
    out = np.full(item_idx.shape, -np.inf, np.float32)
    if len(rows):
        features = np.stack(feats) if stats is not None else None
        out[rows, cols] = ranker._predict(contexts, candidates, features)[np.asarray(slot)]
    return out


def ranker_score_histories(
    ranker: Any, sequences: Sequence[np.ndarray], items: np.ndarray | None = None
) -> np.ndarray:
    """Logits after each sequence of every item (the ranker's full ranking of a new user,
    up to ``full_rank_limit`` items) or of ``items`` only (any catalog size)."""
    if items is None:
        if ranker.n_items > ranker.config.full_rank_limit:
            raise ConfigError(
                f"LMRanker is a cross-encoder and will not rank all {ranker.n_items:,} items "
                f"for a new user (full_rank_limit={ranker.config.full_rank_limit}). Use the "
                "'pipeline' model, whose retriever proposes the candidates."
            )
        items = np.arange(ranker.n_items)
    grid = np.broadcast_to(np.asarray(items, np.int64), (len(sequences), len(items)))
    return candidate_logits(ranker, [History.of_items(s) for s in sequences], grid)


def occlude(
    history: History, score: Callable[[list[History]], np.ndarray]
) -> tuple[float, np.ndarray]:
    """Score of ``history`` and the drop when each of its items is removed."""
    variants = [history] + [history.without(p) for p in range(len(history.items))]
    scores = np.asarray(score(variants), np.float64)
    return float(scores[0]), (scores[0] - scores[1:]).astype(np.float32)


def ranker_attribute(
    ranker: Any, item: int, history: np.ndarray, user_idx: int | None
) -> Attribution:
    """Occlusion of the history items in the ranker's prompt (see the module docstring)."""
    h = History.of_user(ranker, user_idx) if user_idx is not None else History.of_items(history)

    def score(variants: list[History]) -> np.ndarray:
        return candidate_logits(ranker, variants, np.full((len(variants), 1), item))[:, 0]

    full, contributions = occlude(h, score)
    return Attribution(item, h.items, contributions, full, "occlusion")
