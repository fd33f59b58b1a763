"""The JSON API under ``/api/``: bearer session token in, JSON out.

Views parse (the typed models in :mod:`b24app.views.schemas`, through spectree, which also
writes the OpenAPI document from them), check the caller's rights, call a service and
return its answer. Every Bitrix24 call uses the acting user's own token chain.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import is_dataclass
from typing import Any, ParamSpec, TypeVar

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel
from spectree import Response as Answers
from spectree import SecurityScheme, SpecTree
from spectree.model_adapter.pydantic_adapter import PydanticModelAdapter
from spectree.models import SecureType, SecuritySchemeData
from werkzeug.exceptions import UnsupportedMediaType

from b24app.errors import AppError, Forbidden, InvalidInput
from b24app.jobs import service as jobs
from b24app.jobs.orders import OrderFilter
from b24app.models import Job
from b24app.security import (
    SessionContext,
    current_session,
    issue_oauth_state,
    portal_origin,
    require_session,
)
from b24app.services import bindings, history, pickers, undo
from b24app.services.catalog import catalog_for
from b24app.services.gateway import gateway
from b24app.services.history import Actor
from b24app.services.owners import OWNER_KINDS
from b24app.services.tokens import UserTokenSource, token_source
from b24app.views import schemas
from b24app.views.errors import message_of

bp = Blueprint("api", __name__, url_prefix="/api")

P = ParamSpec("P")
R = TypeVar("R")

_FIELD_CODES = {"missing": "missing_field", "extra_forbidden": "unknown_field"}


def _refuse_invalid(
    req: Any, resp: Any, error: Exception | None, instance: Any, adapter: Any
) -> None:
    """Turn a validation failure into the app's 400, naming the first field at fault."""
    if error is None:
        return
    problems = error.errors() if hasattr(error, "errors") else []
    first = problems[0] if problems else {}
    location = [str(part) for part in first.get("loc", ()) if not isinstance(part, int)]
    field = ".".join(location) or _whole_subject()
    code = _FIELD_CODES.get(str(first.get("type", "")), "invalid_field")
    raise InvalidInput(code, field, str(first.get("msg", "")))


def _whole_subject() -> str:
    """Name what a model-level failure is about: the body, or the query string."""
    return "body" if request.method in {"POST", "PUT", "PATCH"} else "query"


class PlainAnswers(PydanticModelAdapter):
    """Pydantic validation for views that answer plain JSON data, never a model instance.

    Spectree looks for model instances nested anywhere in every answer (to serialise them)
    by walking each value, about half a millisecond of CPU for a picker page of 50 rows;
    these views return dicts, lists and scalars only, so the top level is all to look at.
    """

    def is_partial_model_instance(self, value: Any) -> bool:
        """Tell whether the answer itself is a model (nested ones never occur here)."""
        return isinstance(value, BaseModel) or is_dataclass(value)


spec = SpecTree(
    "flask",
    # Spectree types its protocol more loosely than its own pydantic adapter.
    model_adapter=PlainAnswers(),  # type: ignore[arg-type]
    mode="strict",
    title="Order binding API",
    version="1",
    description=(
        "The app's JSON API, called by its pages inside the Bitrix24 iframe with the session"
        ' token the page carries. Errors are always `{"error": {"code", "message"}}`.'
    ),
    path="api/docs",
    security_schemes=[
        SecurityScheme(
            name="session",
            data=SecuritySchemeData(
                type=SecureType.HTTP,
                scheme="bearer",
                bearer_format="JWT",
                description="The session token the app page carries (15 minutes).",
            ),
        )
    ],
    security={"session": []},
    before=_refuse_invalid,
    annotations=False,
    # Invalid requests answer 400 in the app's error shape (the endpoints declare it).
    validation_error_status=400,
    # Schema names as the models are named (they are unique in b24app.views.schemas).
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda parent, child: child,
)

_COMMON_ERRORS = {
    "HTTP_400": schemas.ErrorAnswer,
    "HTTP_401": schemas.ErrorAnswer,
    "HTTP_403": schemas.ErrorAnswer,
    "HTTP_502": schemas.ErrorAnswer,
    "HTTP_503": schemas.ErrorAnswer,
}


def answers(ok: type, *extra: int, status: int = 200) -> Answers:
    """Describe an endpoint's answers: ``ok`` and the error shape for each error status."""
    errors = dict(_COMMON_ERRORS)
    errors.update({f"HTTP_{code}": schemas.ErrorAnswer for code in extra})
    return Answers(**{f"HTTP_{status}": ok}, **errors)


def json_body(view: Callable[P, R]) -> Callable[P, R]:
    """Refuse a body that is not JSON (415) before it is validated."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        """Check the content type, then call the view."""
        if request.mimetype != "application/json":
            raise UnsupportedMediaType()
        # Malformed JSON is a 400 here, not an empty body for the validator.
        request.get_json()
        return view(*args, **kwargs)

    return wrapper


def _session() -> SessionContext:
    """Return the caller, refusing users without any store access."""
    session = current_session()
    if not session.rights.can_view:
        raise Forbidden("no_store_access")
    return session


def _writer() -> SessionContext:
    """Return the caller, refusing everyone but store administrators (before any call)."""
    session = _session()
    if not session.rights.can_bind:
        raise Forbidden("permission_denied")
    return session


def _tokens(session: SessionContext) -> UserTokenSource:
    """Return the acting user's own token chain."""
    return token_source(session.portal.id, session.user_id)


def _actor(session: SessionContext) -> Actor:
    """Return who acts, for the history."""
    return Actor(session.portal.id, session.user_id, session.user_name)


def _query() -> Any:
    """Return the validated query of this request."""
    return request.context.query  # type: ignore[attr-defined]


def _body() -> Any:
    """Return the validated JSON body of this request."""
    return request.context.json  # type: ignore[attr-defined]


def _check_id(name: str, value: int) -> int:
    """Refuse a path id that is not a positive 32-bit integer."""
    if not 1 <= value <= schemas.MAX_ID:
        raise InvalidInput("invalid_field", name, "out of range")
    return value


@bp.get("/me")
@require_session
@spec.validate(resp=answers(schemas.MeAnswer), tags=["session"])
def me() -> Response:
    """Describe the caller: portal, user, rights and the owner types the portal offers.

    A dead token chain does not hide who the caller is: ``bitrix_auth`` then says
    ``reauth_required`` and ``reconnect_url`` offers the way back.
    """
    session = current_session()
    portal = session.portal
    bitrix_auth = "ok"
    try:
        types = catalog_for(portal.id, session.lang, _tokens(session)).owner_types
    except AppError as error:
        if error.code != "reauth_required":
            raise
        types, bitrix_auth = [], "reauth_required"
    reconnect = gateway().oauth.authorization_url(
        portal_origin(portal.client_endpoint), issue_oauth_state(portal.member_id, session.user_id)
    )
    return jsonify(
        {
            "portal": {"id": portal.id, "domain": portal.domain, "member_id": portal.member_id},
            "user": {"id": session.user_id, "name": session.user_name},
            "rights": session.rights.as_dict(),
            "owner_types": types,
            "bitrix_auth": bitrix_auth,
            "session": {"expires_at": session.expires_at, "lang": session.lang},
            "reconnect_url": reconnect,
        }
    )


@bp.get("/orders")
@require_session
@spec.validate(query=schemas.OrdersQuery, resp=answers(schemas.OrderPage), tags=["pickers"])
def orders() -> dict[str, Any]:
    """Orders for the picker: newest first, 50 a page; ``q`` matches id or account number."""
    session = _session()
    query = _query()
    page = pickers.order_page(
        _tokens(session), session.portal.id, session.lang, query.q, query.cursor
    )
    return {"items": page.items, "nextCursor": page.next_cursor}


@bp.get("/owners")
@require_session
@spec.validate(query=schemas.OwnersQuery, resp=answers(schemas.OwnerPage), tags=["pickers"])
def owners() -> dict[str, Any]:
    """Deals or invoices for the picker (only the types the portal offers); ``q``: title or id."""
    session = _session()
    query = _query()
    page = pickers.owner_page(
        _tokens(session), session.portal.id, session.lang, query.type, query.q, query.cursor
    )
    return {"items": page.items, "nextCursor": page.next_cursor}


@bp.get("/bindings")
@require_session
@spec.validate(
    query=schemas.BindingsQuery,
    resp=answers(schemas.BindingsAnswer),
    tags=["bindings"],
)
def list_bindings() -> dict[str, Any]:
    """With ``orderId``: the order and its owner. With an owner: the orders bound to it."""
    session = _session()
    query = _query()
    tokens = _tokens(session)
    if query.orderId is not None:
        return bindings.order_binding(tokens, session.portal.id, session.lang, query.orderId)
    return bindings.owner_orders(
        tokens, session.portal.id, session.lang, query.ownerTypeId, query.ownerId, query.cursor
    )


@bp.post("/bindings")
@require_session
@json_body
@spec.validate(
    json=schemas.BindBody, resp=answers(schemas.BindAnswer, 404, 413, 415), tags=["bindings"]
)
def create_binding() -> dict[str, Any]:
    """Bind an order to a deal or invoice (replacing its owner) in one Bitrix24 batch."""
    session = _writer()
    body = _body()
    seen: bindings.Triple | None | bindings.Unseen = bindings.UNSEEN
    if "seenOwner" in body.model_fields_set:
        owner = body.seenOwner
        seen = (
            None
            if owner is None
            else bindings.Triple(body.orderId, owner.ownerTypeId, owner.ownerId)
        )
    result = bindings.bind(
        _tokens(session),
        _actor(session),
        session.lang,
        bindings.Triple(body.orderId, body.ownerTypeId, body.ownerId),
        seen=seen,
    )
    return {
        "binding": result.binding,
        "replaced": result.replaced,
        "outcome": result.outcome,
        "historyId": result.history_id,
    }


@bp.delete("/bindings/<int:order_id>")
@require_session
@spec.validate(
    query=schemas.OwnerQuery, resp=answers(schemas.UnbindAnswer, 404, 409), tags=["bindings"]
)
def delete_binding(order_id: int) -> dict[str, Any]:
    """Unbind the order from the owner the user saw; 409 when its owner changed meanwhile."""
    session = _writer()
    query = _query()
    triple = bindings.Triple(_check_id("orderId", order_id), query.ownerTypeId, query.ownerId)
    result = bindings.unbind(_tokens(session), _actor(session), triple)
    return {"removed": result.removed, "historyId": result.history_id}


@bp.get("/history")
@require_session
@spec.validate(query=schemas.HistoryQuery, resp=answers(schemas.HistoryPage), tags=["history"])
def list_history() -> dict[str, Any]:
    """The portal's bind, rebind and unbind attempts, newest first, 50 a page."""
    session = _session()
    query = _query()
    records, next_cursor = history.history_page(session.portal.id, query.cursor)
    items = [
        history.entry_view(
            record,
            can_undo=session.rights.can_bind,
            reason=_reason(record.error_code, session.lang),
        )
        for record in records
    ]
    return {"items": items, "nextCursor": str(next_cursor) if next_cursor else None}


def _reason(code: str | None, lang: str) -> str | None:
    """Return why an attempt failed, in the user's language."""
    return message_of(AppError(code), lang) if code else None


@bp.post("/history/<int:record_id>/undo")
@require_session
@spec.validate(resp=answers(schemas.UndoAnswer, 404, 409), tags=["history"])
def undo_attempt(record_id: int) -> dict[str, Any]:
    """Undo a successful attempt; 409 when the order's owner changed since."""
    session = _writer()
    result = undo.undo(_tokens(session), _actor(session), session.lang, _check_id("id", record_id))
    return {"undone": record_id, **result.answer}


@bp.get("/openapi.json")
def openapi() -> Response:
    """Serve the OpenAPI 3.1 document generated from the models that validate requests."""
    return jsonify(openapi_document())


def openapi_document() -> dict[str, Any]:
    """Return the API's OpenAPI document (needs an app context)."""
    document: dict[str, Any] = spec.spec
    return document


# -- bulk jobs ------------------------------------------------------------------------------


def _job_request(body: schemas.JobBody) -> jobs.JobRequest:
    """Turn a validated job body into the service's request."""
    return jobs.JobRequest(
        owner_type_id=body.ownerTypeId,
        owner_id=body.ownerId,
        order_ids=list(body.orderIds) if body.orderIds is not None else None,
        order_filter=(
            OrderFilter.from_json(body.filter.model_dump()) if body.filter is not None else None
        ),
    )


def _job(
    job: Job, session: SessionContext, by_state: dict[str, int] | None = None
) -> dict[str, Any]:
    """Return a job as the API shows it to this caller."""
    reason = _reason(job.paused_reason, session.lang) if job.paused_reason else None
    return jobs.job_view(job, can_write=session.rights.can_bind, reason=reason, by_state=by_state)


@bp.post("/jobs/preview")
@require_session
@json_body
@spec.validate(json=schemas.JobBody, resp=answers(schemas.JobPreview, 404, 413, 415), tags=["jobs"])
def preview_job() -> dict[str, Any]:
    """Say what a bulk job would do: orders matched, how many get replaced, the target."""
    session = _writer()
    return jobs.preview(_tokens(session), _actor(session), session.lang, _job_request(_body()))


@bp.post("/jobs/bind")
@require_session
@json_body
@spec.validate(
    json=schemas.JobBody,
    resp=answers(schemas.JobAnswer, 404, 413, 415, status=202),
    tags=["jobs"],
)
def start_job() -> tuple[dict[str, Any], int]:
    """Start binding many orders (up to 10,000) to one owner in the background."""
    session = _writer()
    job = jobs.start(_tokens(session), _actor(session), session.lang, _job_request(_body()))
    return {"job": _job(job, session)}, 202


@bp.get("/jobs")
@require_session
@spec.validate(query=schemas.JobsQuery, resp=answers(schemas.JobPage), tags=["jobs"])
def list_jobs() -> dict[str, Any]:
    """The portal's bulk jobs, newest first."""
    session = _session()
    query = _query()
    found, next_cursor = jobs.job_page(session.portal.id, query.cursor)
    by_job = jobs.counts([job.id for job in found])
    return {
        "items": [_job(job, session, by_job[job.id]) for job in found],
        "nextCursor": str(next_cursor) if next_cursor else None,
    }


@bp.get("/jobs/<int:job_id>")
@require_session
@spec.validate(resp=answers(schemas.JobAnswer, 404), tags=["jobs"])
def show_job(job_id: int) -> dict[str, Any]:
    """One job: state, counts, times and the estimated time left."""
    session = _session()
    return {"job": _job(jobs.find_job(session.portal.id, _check_id("id", job_id)), session)}


@bp.get("/jobs/<int:job_id>/items")
@require_session
@spec.validate(query=schemas.JobsQuery, resp=answers(schemas.JobItemPage, 404), tags=["jobs"])
def job_items(job_id: int) -> dict[str, Any]:
    """A job's orders and how each ended."""
    session = _session()
    job = jobs.find_job(session.portal.id, _check_id("id", job_id))
    query = _query()
    found, next_cursor = jobs.item_page(job.id, query.cursor)
    # Replaced items name the owner they had; restored items (an undo) the owner they got back.
    earlier = {
        (item.previous_owner_type_id, item.previous_owner_id)
        for item in found
        if item.state in ("replaced", "restored")
        and item.previous_owner_type_id
        and item.previous_owner_id
    }
    titles = (
        jobs.owner_titles(_tokens(session), session.portal.id, session.lang, earlier)
        if earlier
        else {}
    )
    items = []
    for item in found:
        replaced = None
        pair = (item.previous_owner_type_id, item.previous_owner_id)
        if pair in earlier:
            kind = OWNER_KINDS.get(item.previous_owner_type_id or 0)
            replaced = {
                "ownerTypeId": item.previous_owner_type_id,
                "ownerId": item.previous_owner_id,
                "title": titles.get(pair),
                "path": kind.path(item.previous_owner_id or 0) if kind else None,
            }
        items.append(
            {
                "orderId": item.order_id,
                "orderAccountNumber": item.order_number,
                "state": item.state,
                "replaced": replaced,
                "errorCode": item.error_code,
                "reason": _reason(item.error_code, session.lang),
            }
        )
    return {"items": items, "nextCursor": str(next_cursor) if next_cursor else None}


@bp.post("/jobs/<int:job_id>/cancel")
@require_session
@spec.validate(resp=answers(schemas.JobAnswer, 404, 409), tags=["jobs"])
def cancel_job(job_id: int) -> dict[str, Any]:
    """Stop a job at its next batch boundary."""
    session = _writer()
    return {"job": _job(jobs.cancel(session.portal.id, _check_id("id", job_id)), session)}


@bp.post("/jobs/<int:job_id>/retry-failed")
@require_session
@spec.validate(resp=answers(schemas.JobAnswer, 404, 409, status=202), tags=["jobs"])
def retry_job(job_id: int) -> tuple[dict[str, Any], int]:
    """Queue a finished job's failed orders again."""
    session = _writer()
    job = jobs.retry_failed(session.portal.id, _check_id("id", job_id))
    return {"job": _job(job, session)}, 202


@bp.post("/jobs/<int:job_id>/undo")
@require_session
@spec.validate(resp=answers(schemas.JobAnswer, 404, 409, status=202), tags=["jobs"])
def undo_job(job_id: int) -> tuple[dict[str, Any], int]:
    """Undo a finished job: restore every replaced owner and unbind the rest."""
    session = _writer()
    job = jobs.undo(_actor(session), _check_id("id", job_id))
    return {"job": _job(job, session)}, 202
