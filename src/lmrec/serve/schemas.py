"""Request and response bodies of the HTTP API (separate from the internal types).

Response models are plain module-level classes. Request models carry limits from the
server's settings (largest ``k``, list sizes, id length), so they are built per app by
:func:`request_models`; the OpenAPI schema then states the real limits.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetPydanticSchema,
    StringConstraints,
    model_validator,
)
from pydantic.config import JsonDict

from lmrec.serve.settings import ServeSettings

EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
#: A file system path: no NUL or other control characters (they cannot name a directory).
PATH_PATTERN = r"^[^\x00-\x1f\x7f]+$"
#: Timestamps are seconds since the epoch; this bound is the year 5138.
MAX_TIMESTAMP = 1e11


def _integral(value: object) -> object:
    """JSON Schema counts ``10.0`` as an integer; accept it as 10 (``10.5`` stays a 422)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: An integer field of a strict model that also takes integral JSON numbers like ``10.0``.
JsonInt = Annotated[int, BeforeValidator(_integral)]


class _Strict(BaseModel):
    # strict: no silent coercion (``"timestamp": false`` or ``"k": "10"`` is a 422)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


# ---------------------------------------------------------------------- responses
class RecommendResponse(BaseModel):
    """A ranked list; ``fallback`` is true when the model could not personalise it."""

    user: str | None = Field(description="The user id asked for (null for a session).")
    items: list[str] = Field(description="Item ids, best first.")
    scores: list[float] = Field(description="Scores of ``items`` (model-specific scale).")
    model_version: str
    fallback: bool = Field(description="True when a non-personalised fallback was used.")
    strategy: str = Field(
        description="precomputed | model | ann | fold-in | co-occurrence | popularity"
    )


class SimilarResponse(BaseModel):
    item: str
    items: list[str]
    scores: list[float]
    model_version: str
    fallback: bool
    strategy: str


class ContributionOut(BaseModel):
    item: str = Field(description="A history item.")
    title: str | None = Field(default=None, description="Its title (with a catalog).")
    weight: float = Field(
        description="Its contribution to the item's score, in the model's score units "
        "(exact terms for linear models, the score drop when it is left out otherwise)."
    )


class ExplainResponse(BaseModel):
    user: str | None
    item: str
    title: str | None = Field(default=None, description="The item's title (with a catalog).")
    score: float | None = Field(description="The item's score for the explained history.")
    contributions: list[ContributionOut]
    reasons: list[str] = Field(
        default_factory=list,
        description="What the item shares with the contributing items in the catalog.",
    )
    explanation: list[str] = Field(description="The contributions and reasons in plain words.")
    method: str = Field(description="exact | occlusion")
    fallback: bool = Field(description="Always false: every model explains its own score.")
    model_version: str


class FeedbackResponse(BaseModel):
    accepted: int = Field(description="Events stored now.")
    duplicates: int = Field(description="Events whose idempotency key was already stored.")


class PrivacyInfo(BaseModel):
    mechanism: str = Field(description="How the model was made differentially private.")
    unit: str = Field(description="What one protected unit is (user: one user's whole data).")
    epsilon: float = Field(description="The privacy budget epsilon spent by the fit.")
    delta: float = Field(description="The probability delta that the epsilon bound fails.")


class ModelInfo(BaseModel):
    name: str
    version: str
    n_users: int
    n_items: int
    fold_in: bool = Field(description="Whether the model rescores histories given at request time.")
    precomputed: bool = Field(description="Whether top-k lists are precomputed for known users.")
    ann: str | None = Field(
        default=None,
        description="Kind of the ANN index serving known users (hnsw, ivfpq), or null.",
    )
    loaded_at: float
    load_seconds: float
    current: bool
    privacy: PrivacyInfo | None = Field(
        default=None,
        description="The (epsilon, delta) differential-privacy guarantee of a model fitted "
        "with dp_epsilon (see docs/privacy.md), or null.",
    )
    workers: int | None = Field(
        default=None,
        description="After a reload or rollback of clustered workers: how many serve "
        "this version now (all live workers unless the wait timed out).",
    )


class ErasedModel(BaseModel):
    status: str = Field(
        description="unchanged (no loaded version held the user) | forgotten (the served "
        "version is one without them) | pending (the model needs retraining; see detail)."
    )
    method: str | None = Field(
        description="exact when this deletion made the served version (exact unlearning)."
    )
    version: str = Field(description="The model version served after the deletion.")
    n_interactions: int = Field(description="The user's training interactions removed.")
    detail: str = Field(description="What was done, or what is left to do, in words.")


class EraseResponse(BaseModel):
    user: str = Field(description="The user id asked for (nothing else of theirs is returned).")
    found: bool = Field(
        description="Whether the service held anything of the user; false for an unknown "
        "or already deleted user (the answer is still 200: deleting is idempotent)."
    )
    request_id: str = Field(description="Id of this deletion in the store's audit table.")
    events_deleted: int = Field(description="Events deleted from the event store.")
    feedback_cleared: int = Field(description="Items of online feedback dropped from memory.")
    cached_lists_cleared: int = Field(description="Cached recommendation lists dropped.")
    precomputed_cleared: bool = Field(
        description="Whether a precomputed top-k list of the user stopped being served."
    )
    model: ErasedModel
    workers: int | None = Field(
        default=None,
        description="With clustered workers and a new version: how many serve it now.",
    )


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
    startup_seconds: float


class StatusResponse(BaseModel):
    status: str


class ErrorResponse(BaseModel):
    detail: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorResponse(BaseModel):
    detail: str = Field(description="Every problem, in one readable line.")
    errors: list[FieldError] = Field(default_factory=list, description="Per-field problems.")


# ---------------------------------------------------------------------- requests
# What the routes read of each request body. The classes themselves are built per app by
# request_models (their limits come from the settings), so a route's annotation names the
# class for FastAPI and one of these protocols for the type checker.
class RecommendBody(Protocol):
    user: str | None
    items: list[str] | None
    k: int
    exclude: list[str]
    candidates: list[str] | None
    exclude_seen: bool
    model: str | None


class ExplainBody(Protocol):
    user: str | None
    items: list[str] | None
    item: str
    n: int


class FeedbackEventBody(Protocol):
    user: str
    item: str
    type: str
    weight: float
    timestamp: float | None
    idempotency_key: str


class FeedbackBody(Protocol):
    @property
    def events(self) -> Sequence[FeedbackEventBody]: ...


class ReloadBody(Protocol):
    path: str | None


@dataclass(frozen=True)
class RequestModels:
    """The request body classes of one app."""

    Id: object
    RecommendRequest: type[RecommendBody]
    ExplainRequest: type[ExplainBody]
    FeedbackEvent: type[FeedbackEventBody]
    FeedbackRequest: type[FeedbackBody]
    ReloadRequest: type[ReloadBody]


#: JSON schema of "exactly one of user / items" (pydantic cannot derive it).
_ONE_OF_USER_ITEMS: JsonDict = {
    "oneOf": [
        {"required": ["user"], "not": {"required": ["items"]}},
        {"required": ["items"], "not": {"required": ["user"]}},
    ]
}


def _never_null(validated_as: Any) -> GetPydanticSchema:
    """For a field that may be left out but not sent as null: validated (and documented
    in the schema) as ``validated_as``, while the attribute is ``None`` when it was absent."""
    return GetPydanticSchema(lambda _source, handler: handler(validated_as))


def _one_of_user_items(user: object, items: object, what: str) -> None:
    if (user is None) == (items is None):
        raise ValueError(
            f"{what} needs exactly one of 'user' (a user id) or 'items' "
            "(the item ids of an anonymous session)"
        )


def request_models(settings: ServeSettings) -> RequestModels:
    """Request body classes with the limits of ``settings``."""
    Id = Annotated[str, StringConstraints(min_length=1, max_length=settings.max_id_length)]
    max_list = settings.max_list

    class RecommendRequest(_Strict):
        """Recommend for a user id, or for an anonymous session given as item ids."""

        model_config = ConfigDict(json_schema_extra=_ONE_OF_USER_ITEMS)

        # ``user`` and ``items`` are optional but never null: exactly one of them is sent.
        user: Annotated[str | None, _never_null(Id)] = Field(default=None, description="A user id.")
        items: Annotated[list[str] | None, _never_null(list[Id])] = Field(
            default=None, max_length=max_list, description="Item ids of an anonymous session."
        )
        k: JsonInt = Field(default=10, ge=1, le=settings.max_k, description="List length.")
        exclude: list[Id] = Field(
            default_factory=list, max_length=max_list, description="Item ids never to recommend."
        )
        candidates: list[Id] | None = Field(
            default=None, max_length=max_list, description="Rank only these item ids."
        )
        exclude_seen: bool = Field(
            default=True, description="Drop items the user or session already has."
        )
        model: str | None = Field(
            default=None,
            max_length=128,
            description="Expected model name or version (404 if not served).",
        )

        @model_validator(mode="after")
        def _one_of(self) -> Self:
            _one_of_user_items(self.user, self.items, "recommend")
            return self

    class ExplainRequest(_Strict):
        """Why ``item`` is recommended to ``user`` (or to a session of ``items``)."""

        model_config = ConfigDict(json_schema_extra=_ONE_OF_USER_ITEMS)

        user: Annotated[str | None, _never_null(Id)] = Field(default=None, description="A user id.")
        items: Annotated[list[str] | None, _never_null(list[Id])] = Field(
            default=None, max_length=max_list, description="Session item ids."
        )
        item: Id
        n: JsonInt = Field(default=3, ge=1, le=20, description="History items to name.")

        @model_validator(mode="after")
        def _one_of(self) -> Self:
            _one_of_user_items(self.user, self.items, "explain")
            return self

    class FeedbackEvent(_Strict):
        """One interaction event."""

        user: Id
        item: Id
        type: str = Field(
            default="interaction",
            pattern=EVENT_TYPE_PATTERN,
            description="click, view, purchase, rating, dislike, ...",
        )
        weight: float = Field(
            default=1.0,
            ge=-1e6,
            le=1e6,
            description="> 0 adds the item to the user's history; <= 0 only excludes it.",
        )
        timestamp: float | None = Field(
            default=None,
            ge=0,
            le=MAX_TIMESTAMP,
            description="Seconds since the epoch (default: now).",
        )
        idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
            description="A client-chosen unique key; a repeated key is a no-op."
        )

    class FeedbackRequest(_Strict):
        events: list[FeedbackEvent] = Field(min_length=1, max_length=max_list)

    class ReloadRequest(_Strict):
        path: str | None = Field(
            default=None,
            min_length=1,
            max_length=4096,
            pattern=PATH_PATTERN,
            description="Model directory (default: the current one), no control characters.",
        )

    return RequestModels(
        Id, RecommendRequest, ExplainRequest, FeedbackEvent, FeedbackRequest, ReloadRequest
    )


def finite(values: list[float]) -> list[float]:
    """Scores as JSON-safe floats (non-finite values cannot occur after top-k; be safe)."""
    return [v if math.isfinite(v) else 0.0 for v in values]
