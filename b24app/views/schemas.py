"""The JSON API's typed shapes: they validate requests and generate the OpenAPI document.

Request models are strict about what they accept (unknown fields are refused, bodies take
JSON numbers only); ids are Bitrix24 table ids, positive 32-bit integers.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator, model_validator

# Bitrix24 keeps these ids in signed 32-bit integer columns.
MAX_ID = 2_147_483_647

Id = Annotated[int, Field(ge=1, le=MAX_ID, description="A Bitrix24 id (positive).")]
OwnerTypeId = Annotated[
    int, Field(ge=1, le=MAX_ID, description="CRM entity type: 2 deal, 31 invoice, 5 old invoice.")
]
Cursor = Annotated[
    str,
    Field(
        pattern=r"^[1-9][0-9]{0,9}$",
        description="The `nextCursor` of the previous page.",
    ),
]
# The app's own lists (history, jobs, a job's items) page by row id: ids are 32-bit.
RowCursor = Annotated[
    int,
    Field(ge=1, le=MAX_ID, description="The `nextCursor` of the previous page."),
]
Search = Annotated[str, Field(max_length=100, description="Search text.")]


class _Query(BaseModel):
    """Query strings: unknown parameters are refused."""

    model_config = ConfigDict(extra="forbid")


class _Body(BaseModel):
    """JSON bodies: unknown fields are refused and values are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class OrdersQuery(_Query):
    """``GET /api/orders``."""

    q: Search = ""
    cursor: Cursor | None = None


class OwnersQuery(_Query):
    """``GET /api/owners``."""

    type: OwnerTypeId
    q: Search = ""
    cursor: Cursor | None = None


class BindingsQuery(_Query):
    """``GET /api/bindings``: one order's owner, or the orders bound to one owner."""

    orderId: Id | None = None
    ownerTypeId: OwnerTypeId | None = None
    ownerId: Id | None = None
    cursor: Cursor | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> BindingsQuery:
        """Require either ``orderId`` or both ``ownerTypeId`` and ``ownerId``."""
        by_owner = self.ownerTypeId is not None or self.ownerId is not None
        if self.orderId is not None and by_owner:
            raise ValueError("orderId cannot be combined with ownerTypeId/ownerId")
        if self.orderId is None and (self.ownerTypeId is None or self.ownerId is None):
            raise ValueError("give orderId, or ownerTypeId and ownerId")
        return self


class OwnerQuery(_Query):
    """``DELETE /api/bindings/<orderId>``: the owner the user saw."""

    ownerTypeId: OwnerTypeId
    ownerId: Id


class HistoryQuery(_Query):
    """``GET /api/history``."""

    cursor: RowCursor | None = None


class SeenOwner(_Body):
    """The owner the user saw the order bound to."""

    ownerTypeId: OwnerTypeId
    ownerId: Id


class BindBody(_Body):
    """``POST /api/bindings``."""

    orderId: Id
    ownerTypeId: OwnerTypeId
    ownerId: Id
    seenOwner: SeenOwner | None = Field(
        None,
        description=(
            "The owner the user saw the order bound to when asking (null: seen unbound;"
            " leave it out when not known). Names what the bind replaced if Bitrix24's"
            " first answer was lost and the repeat finds the order already bound."
        ),
    )


# -- answers ------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    """What went wrong, in the user's language."""

    code: str = Field(description="Stable error code.")
    message: str = Field(description="The message for the user, in the user's language.")
    field: str | None = Field(None, description="The request field at fault, for 400s.")
    retryAfter: int | None = Field(None, description="Seconds to wait, for 503s.")


class ErrorAnswer(BaseModel):
    """Every error answer."""

    error: ErrorDetail


class Order(BaseModel):
    """An online-store order as the pickers show it."""

    id: int
    accountNumber: str
    date: str = Field(description="When the order was placed (ISO 8601 with offset).")
    amount: float
    currency: str
    statusId: str
    statusName: str
    paid: bool
    cancelled: bool


class Owner(BaseModel):
    """A deal or invoice as the pickers show it."""

    ownerTypeId: int
    id: int
    title: str
    accountNumber: str | None = None
    amount: float | None = None
    currency: str | None = None
    stageId: str | None = None
    stageName: str | None = None
    path: str | None = Field(None, description="Slider path for BX24.openPath, when allowed.")


class Binding(BaseModel):
    """An order's binding to its owner."""

    orderId: int
    ownerTypeId: int
    ownerId: int
    owner: Owner | None = Field(None, description="The owner, when it could be read.")


class OrderPage(BaseModel):
    """A page of orders."""

    items: list[Order]
    nextCursor: str | None


class OwnerPage(BaseModel):
    """A page of deals or invoices."""

    items: list[Owner]
    nextCursor: str | None


class OrderBinding(BaseModel):
    """An order and its binding (each may be missing)."""

    order: Order | None
    binding: Binding | None


class BoundOrder(BaseModel):
    """An order bound to the owner asked about."""

    order: Order | None
    binding: Binding


class BoundOrderPage(BaseModel):
    """A page of the orders bound to one owner, and that owner (None when not found)."""

    owner: Owner | None
    items: list[BoundOrder]
    nextCursor: str | None


class BindingsAnswer(RootModel[OrderBinding | BoundOrderPage]):
    """``GET /api/bindings``: an order and its owner, or a page of an owner's orders."""


class BindAnswer(BaseModel):
    """What a bind (or an undo that binds) did."""

    binding: Binding
    replaced: Binding | None
    outcome: Literal["bound", "already_bound", "replaced"]
    historyId: int


class UnbindAnswer(BaseModel):
    """What an unbind (or an undo that unbinds) removed."""

    removed: Binding
    historyId: int


class UndoAnswer(BaseModel):
    """What an undo did: a bind's or an unbind's answer, and the entry it undid."""

    undone: int
    historyId: int
    binding: Binding | None = None
    replaced: Binding | None = None
    outcome: Literal["bound", "already_bound", "replaced"] | None = None
    removed: Binding | None = None


class OwnerRef(BaseModel):
    """An owner as the history remembers it."""

    ownerTypeId: int
    ownerId: int
    title: str | None
    path: str | None


class HistoryUser(BaseModel):
    """Who acted."""

    id: int
    name: str


class HistoryEntry(BaseModel):
    """One bind, rebind or unbind attempt."""

    id: int
    createdAt: str
    user: HistoryUser
    action: Literal["bind", "unbind"]
    orderId: int
    orderAccountNumber: str | None = Field(description="The order's number, when known.")
    owner: OwnerRef | None
    replaced: OwnerRef | None
    outcome: Literal["bound", "already_bound", "replaced", "unbound", "failed"]
    errorCode: str | None
    reason: str | None = Field(description="Why it failed, in the user's language.")
    undoOf: int | None
    undoneBy: int | None
    jobId: int | None = Field(None, description="The bulk job the attempt belonged to.")
    undoable: bool = Field(description="Whether this user may undo it now.")


class HistoryPage(BaseModel):
    """A page of the history."""

    items: list[HistoryEntry]
    nextCursor: str | None


class OwnerType(BaseModel):
    """An owner type the portal offers."""

    id: int
    name: str
    code: str


class MeAnswer(BaseModel):
    """The caller: portal, user, rights, owner types."""

    model_config = ConfigDict(extra="allow")

    portal: dict[str, object]
    user: dict[str, object]
    rights: dict[str, object]
    owner_types: list[OwnerType]
    bitrix_auth: Literal["ok", "reauth_required"]
    session: dict[str, object]
    reconnect_url: str


# -- bulk jobs ------------------------------------------------------------------------------

Day = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="A date, YYYY-MM-DD.")]


class JobFilter(_Body):
    """Which orders a job binds, when they are chosen by a filter (every key optional)."""

    createdFrom: Day | None = None
    createdTo: Day | None = None
    statusId: Annotated[str, Field(min_length=1, max_length=20)] | None = None
    paid: bool | None = None
    unboundOnly: bool = False
    accountNumber: Annotated[str, Field(min_length=1, max_length=100)] | None = None

    @field_validator("createdFrom", "createdTo")
    @classmethod
    def _real_day(cls, value: str | None) -> str | None:
        """Refuse dates that do not exist (2026-02-30)."""
        if value is not None:
            date.fromisoformat(value)
        return value


class JobBody(_Body):
    """``POST /api/jobs/bind`` and ``/api/jobs/preview``: the orders, and the owner."""

    orderIds: Annotated[list[Id], Field(min_length=1)] | None = Field(
        None, description="The orders to bind (at most 10,000)."
    )
    filter: JobFilter | None = None
    ownerTypeId: OwnerTypeId
    ownerId: Id

    @model_validator(mode="after")
    def _one_choice(self) -> JobBody:
        """Require exactly one of ``orderIds`` and ``filter``."""
        if (self.orderIds is None) == (self.filter is None):
            raise ValueError("give either orderIds or filter")
        return self


class JobsQuery(_Query):
    """``GET /api/jobs`` and ``/api/jobs/<id>/items``."""

    cursor: RowCursor | None = None


class JobCounts(BaseModel):
    """How far a job got."""

    total: int
    bound: int
    alreadyBound: int
    replaced: int
    unbound: int
    failed: int
    remaining: int | None = Field(description="None until the filter is read.")


class JobModel(BaseModel):
    """A bulk job."""

    id: int
    kind: Literal["bind", "undo"]
    state: Literal["queued", "running", "paused", "cancelled", "done"]
    pausedReason: str | None
    owner: OwnerRef
    user: HistoryUser
    counts: JobCounts
    createdAt: str
    startedAt: str | None
    finishedAt: str | None
    etaSeconds: int | None
    undoOf: int | None
    undoneBy: int | None
    undoable: bool
    retryable: bool


class JobAnswer(BaseModel):
    """One job."""

    job: JobModel


class JobPage(BaseModel):
    """A page of the portal's jobs."""

    items: list[JobModel]
    nextCursor: str | None


class JobItemModel(BaseModel):
    """One order of a job."""

    orderId: int
    orderAccountNumber: str | None
    state: Literal["pending", "bound", "already_bound", "replaced", "failed", "unbound", "restored"]
    replaced: OwnerRef | None
    errorCode: str | None
    reason: str | None


class JobItemPage(BaseModel):
    """A page of a job's orders."""

    items: list[JobItemModel]
    nextCursor: str | None


class JobPreview(BaseModel):
    """What a job would do."""

    matched: int
    replacing: int
    alreadyThere: int
    owner: Owner
    limit: int
