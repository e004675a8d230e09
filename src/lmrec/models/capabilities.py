"""What a model can do beyond the core protocol, declared, never guessed.

Every model implements :class:`~lmrec.models.base.Recommender` (``fit``, ``score``,
``recommend``, ``save``, ``load``). Optional abilities are the protocols below. A model
*declares* an ability by listing the protocol among its base classes::

    class EASE(Recommender, FoldInModel):
        def score_history(self, history): ...

and every caller (the CLI, the tuner, the service, retrieval) asks
:func:`supports` -- never a model's name, its ``fit`` signature, its attribute names, or
whether a private method raises. The protocols are also ``typing`` protocols, so a type
checker sees the methods a capability brings.

Run options that are not hyperparameters (checkpoints, hard negatives, progress bars)
travel in :class:`FitOptions`, so every model has the one signature
``fit(dataset, *, valid=None, options=None)``.

Stability: experimental. .. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

import numpy as np
import scipy.sparse as sp

from lmrec._checks import check_int
from lmrec.errors import ConfigError

if TYPE_CHECKING:
    from typing_extensions import TypeIs  # typing.TypeIs is Python 3.13+

    from lmrec.models.config import ModelConfig

T = TypeVar("T")

__all__ = [
    "CheckpointedModel",
    "DistributedModel",
    "DotProductModel",
    "FitOptions",
    "FoldInModel",
    "HardNegativeModel",
    "PrivateModel",
    "RatingModel",
    "SequenceModel",
    "SparkEngineModel",
    "UnlearningModel",
    "ValidatedModel",
    "declares",
    "supports",
]


@dataclass(frozen=True)
class FitOptions:
    """How to run a fit (not what to learn: hyperparameters live in the model's config).

    Parameters
    ----------
    checkpoint_dir : Path, optional
        Write resumable checkpoints here and resume from the newest one found
        (models declaring :class:`CheckpointedModel`).
    checkpoint_every : int, optional
        Also checkpoint every this many optimizer steps inside an epoch (models whose
        ``checkpoint_steps`` is true); needs ``checkpoint_dir``.
    hard_negatives : ndarray (n_users, N) of int, optional
        A retriever's top-N item indices per user (-1 padded), for models that draw
        some negatives from them (:class:`HardNegativeModel`).
    show_progress : bool, optional
        Progress bars: ``None`` shows them on a terminal only.
    """

    checkpoint_dir: Path | None = None
    checkpoint_every: int | None = None
    hard_negatives: np.ndarray | None = None
    show_progress: bool | None = None

    def __post_init__(self) -> None:
        if self.checkpoint_dir is not None and not isinstance(self.checkpoint_dir, Path):
            object.__setattr__(self, "checkpoint_dir", Path(self.checkpoint_dir))
        if self.checkpoint_every is not None:
            check_int(self.checkpoint_every, "checkpoint_every", where="FitOptions")
            if self.checkpoint_dir is None:
                raise ConfigError("checkpoint_every needs a checkpoint_dir to write to.")


@runtime_checkable
class FoldInModel(Protocol):
    """Scores users described only by a history given at request time (new users, sessions).

    ``recommend_for_items`` and the service's fold-in of fresh feedback use it.
    """

    def score_history(self, history: sp.csr_matrix) -> np.ndarray:
        """Scores (float32, (n, n_items)) of users whose histories are the rows of ``history``."""
        ...


@runtime_checkable
class SequenceModel(Protocol):
    """Scores users from the *order* of their items (next-item models, anonymous sessions).

    A sequence model's ``recommend_for_items`` keeps the order of the items it is given.
    """

    def score_sequences(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """Scores (float32, (len(sequences), n_items)) after each sequence of item indices,
        oldest first."""
        ...

    def user_sequence(self, user_idx: int) -> np.ndarray:
        """A known user's training items as the model reads them, oldest first (what fresh
        feedback extends: ``score_sequences([concat(user_sequence(u), new_items)])``)."""
        ...


@runtime_checkable
class RatingModel(Protocol):
    """Predicts explicit ratings on the training data's scale (issue 22.6).

    ``score`` still ranks items; ``predict_ratings`` is the rating estimate of given
    (user, item) pairs, clipped to the training ratings' range, for RMSE and MAE.
    ``score_ratings`` folds in a user given as ratings (a list of items carries no
    ratings), and explanations of known users decompose it exactly.
    """

    def predict_ratings(self, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """float64 predicted ratings of the pairs ``(user_idx[n], item_idx[n])`` (dense indices)."""
        ...

    def score_ratings(
        self, items: np.ndarray, ratings: np.ndarray, targets: np.ndarray
    ) -> np.ndarray:
        """float64 unclipped scores of ``targets`` for a user who gave ``ratings`` to
        ``items`` (dense indices): a new user's ratings, or a known user's edited ones."""
        ...

    def known_ratings(self, user_idx: int) -> tuple[np.ndarray, np.ndarray]:
        """``(items, ratings)`` a known user gave in training (dense indices, float64)."""
        ...


@runtime_checkable
class DotProductModel(Protocol):
    """Scores are inner products: ``score(u, i) == user_vectors([u]) @ item_vectors()[i]``.

    Exact fused top-k (:func:`lmrec.ops.topk.dot_topk`) and the ANN indexes use the
    vectors; a per-item bias is folded in as one more dimension (1 on the user side).
    """

    def item_vectors(self) -> np.ndarray:
        """float32 (n_items, dim), C-contiguous; the same array on every call until a refit."""
        ...

    def user_vectors(self, user_idx: np.ndarray) -> np.ndarray:
        """float32 (len(user_idx), dim) vectors of known users (dense indices)."""
        ...


@runtime_checkable
class CheckpointedModel(Protocol):
    """``fit`` writes resumable checkpoints to ``FitOptions.checkpoint_dir`` and resumes
    from them; ``checkpoint_steps`` says whether ``FitOptions.checkpoint_every`` (a step
    interval inside an epoch) is honoured too."""

    checkpoint_steps: ClassVar[bool] = False


@runtime_checkable
class DistributedModel(Protocol):
    """Trains with torch: the config has ``device`` (cpu, cuda, auto) and ``distributed``
    (data-parallel under torchrun)."""

    distributed_training: ClassVar[bool] = True


@runtime_checkable
class ValidatedModel(Protocol):
    """``fit`` uses ``valid`` (early stopping, a weight search); other models ignore it."""

    uses_validation: ClassVar[bool] = True


@runtime_checkable
class HardNegativeModel(Protocol):
    """``fit`` draws part of its negatives from ``FitOptions.hard_negatives``."""

    uses_hard_negatives: ClassVar[bool] = True


@runtime_checkable
class SparkEngineModel(Protocol):
    """Can be fitted by Apache Spark (``lmrec train --engine spark``).

    ``spark_estimator`` names the MLlib estimator :mod:`lmrec.spark` runs for it;
    ``spark_params(config)`` maps the model's config onto that estimator's settings.
    """

    spark_estimator: ClassVar[str]

    @classmethod
    def spark_params(cls, config: ModelConfig) -> dict[str, Any]:
        """The estimator's settings for ``config``; raises ConfigError for settings Spark lacks."""
        ...


@runtime_checkable
class UnlearningModel(Protocol):
    """Forgets training users *exactly*: after ``forget(user_idx)`` the model equals a fit on
    the data without those users (the right to erasure without retraining).

    The model keeps no trace of them: their ids, rows of the training pattern and every
    per-user array are dropped, and the item-side statistics they contributed to are
    recomputed (:mod:`lmrec.privacy.forget` retrains the models that lack this ability).
    A configuration that cannot be unlearned exactly (e.g. popularity weighted by
    timestamps it does not keep) says why in :meth:`unlearning_blocker`.
    """

    def unlearning_blocker(self) -> str | None:
        """Why this fitted model cannot forget exactly, or ``None`` when it can."""
        ...

    def forget(self, user_idx: np.ndarray) -> None:
        """Remove the users at dense indices ``user_idx`` and everything they contributed."""
        ...


@runtime_checkable
class PrivateModel(Protocol):
    """Can be fitted with differential privacy: the config has ``dp_epsilon``, ``dp_delta``
    and ``dp_clip`` (see :class:`lmrec.models.dp.DPConfig`).

    With ``dp_epsilon`` set, the item-side parameters (what other users' recommendations
    and the public lists reveal; for the two-tower and sequence models every weight) are
    (epsilon, delta)-differentially private with respect to one user's whole history; ``privacy_`` (also saved in the model's ``config.json``
    under ``meta.privacy``) states the mechanism, the unit and the epsilon spent.
    """

    dp_mechanism: ClassVar[str]
    #: The report of the last fit (``mechanism``, ``unit``, ``epsilon``, ``delta``, ...), or None.
    privacy_: dict[str, Any] | None


def supports(model: Any, capability: type) -> bool:
    """Whether ``model`` (an instance or a class) declares ``capability``.

    Declared means listed among the class's bases: structural look-alikes do not count,
    so a model never gains an ability by an accident of naming.

    >>> from lmrec.models.ease import EASE
    >>> supports(EASE, FoldInModel), supports(EASE(), DotProductModel)
    (True, False)
    """
    cls = model if isinstance(model, type) else type(model)
    return capability in cls.__mro__


def declares(model: object, capability: type[T]) -> TypeIs[T]:
    """:func:`supports` for an instance, as a type guard: inside ``if declares(model, P):``
    the type checker knows that ``model`` has ``P``'s members."""
    return supports(model, capability)


def dot_item_vectors(items: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """Item side of a :class:`DotProductModel`: float32 C-contiguous, ``bias`` as a last column."""
    y = np.asarray(items, np.float32)
    if bias is not None:
        y = np.hstack([y, np.asarray(bias, np.float32).reshape(-1, 1)])
    return np.ascontiguousarray(y)


def dot_user_vectors(users: np.ndarray, bias: bool = False) -> np.ndarray:
    """User side of a :class:`DotProductModel`: float32 C-contiguous, a column of ones when
    the items carry a bias column."""
    u = np.asarray(users, np.float32)
    if bias:
        u = np.hstack([u, np.ones((len(u), 1), np.float32)])
    return np.ascontiguousarray(u)
