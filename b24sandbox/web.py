"""The portal's web pages: they host the app in an iframe the way Bitrix24 does.

Every page takes ``?user=N`` (default 1), the sandbox's stand-in for a login, and
``?lang=en|ru`` (default ``en``), the user's interface language, which the app frame gets as
``LANG``; links between pages keep both. The app is
framed with a cross-site form POST (see :mod:`b24sandbox.bx24`); the page script answers the
frame's BX24.js over postMessage and calls the two JSON endpoints below for installFinish
and refreshAuth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
    send_from_directory,
    url_for,
)

from b24sandbox import data
from b24sandbox.bx24 import (
    DEFAULT_PLACEMENT,
    LANG,
    LANGS,
    FrameLaunch,
    LaunchRegistry,
    detail_tab_options,
    launch_frame,
)
from b24sandbox.bx24 import refreshed_auth as refreshed_frame_auth
from b24sandbox.methods.system import APP_ID
from b24sandbox.state import Portal, Sandbox, current_portal, current_sandbox
from b24sandbox.users import USERS, User

bp = Blueprint(
    "portal_web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/_portal/static",
)

RECENT_ROWS = 8
NOT_FULLY_INSTALLED = (
    "The application is not fully installed yet. Please contact your Bitrix24 administrator "
    "to complete the installation."
)
ONLY_ADMIN_INSTALLS = (
    "Only a Bitrix24 administrator can install applications. Please contact your administrator."
)


@dataclass(frozen=True)
class CardKind:
    """A detail card the portal shows, and the app placement that adds tabs to it."""

    name: str
    title: str
    placement: str
    endpoint: str
    owner_type_id: int | None


DEAL_CARD = CardKind("deal", "Deal", "CRM_DEAL_DETAIL_TAB", "portal_web.deal_card", 2)
ORDER_CARD = CardKind("order", "Order", "CRM_ORDER_DETAIL_TAB", "portal_web.order_card", None)
INVOICE_CARD = CardKind(
    "invoice", "Invoice", "CRM_SMART_INVOICE_DETAIL_TAB", "portal_web.invoice_card", 31
)


# -- request context ------------------------------------------------------------------------


def launches() -> LaunchRegistry:
    """Return this portal's registry of rendered app frames."""
    return current_app.extensions.setdefault("b24sandbox.launches", LaunchRegistry())


def current_user() -> User:
    """Return the user named by ``?user=N`` (1 when absent); unknown users are a 404."""
    raw = request.args.get("user", "1")
    user = USERS.get(int(raw)) if raw.isdigit() else None
    if user is None:
        abort(404, description=f"There is no user {raw} on this portal.")
    return user


def requested_user_or_admin() -> User:
    """Return the ``?user=N`` user when valid, else the admin (for error pages)."""
    raw = request.args.get("user", "1")
    return (USERS.get(int(raw)) if raw.isdigit() else None) or USERS[1]


def current_lang() -> str:
    """Return the interface language named by ``?lang=`` (``en`` when absent or unknown)."""
    raw = request.args.get("lang", LANG).lower()
    return raw if raw in LANGS else LANG


def portal_url(endpoint: str, **values: Any) -> str:
    """Build a portal URL that keeps the current user and language (and the slider mode)."""
    # Error pages may render for an unknown ?user=: their links then act as the admin.
    values.setdefault("user", requested_user_or_admin().id)
    if current_lang() != LANG:
        values.setdefault("lang", current_lang())
    # A page inside the slider (BX24.openPath) links to pages that stay in the slider.
    if request.args.get("IFRAME") == "Y":
        values.setdefault("IFRAME", "Y")
        values.setdefault("IFRAME_TYPE", request.args.get("IFRAME_TYPE", "SIDE_SLIDER"))
    return url_for(endpoint, **values)


def this_page_url(**changes: str) -> str:
    """Return the current page's URL with some query values changed (the others kept)."""
    values: dict[str, Any] = {**(request.view_args or {}), **request.args.to_dict()}
    values.update(changes)
    return url_for(request.endpoint or "portal_web.home", **values)


def switch_user_url(user_id: int) -> str:
    """Return the current page's URL as another user (other query values kept)."""
    return this_page_url(user=str(user_id))


def switch_lang_url(lang: str) -> str:
    """Return the current page's URL in another interface language (other values kept)."""
    return this_page_url(lang=lang)


@bp.context_processor
def portal_globals() -> dict[str, Any]:
    """Give every portal template the portal, the users and URL helpers."""
    return {
        "portal": current_portal(),
        "users": USERS,
        "langs": LANGS,
        "lang": current_lang(),
        "app_id": APP_ID,
        "portal_url": portal_url,
        "switch_user_url": switch_user_url,
        "switch_lang_url": switch_lang_url,
    }


# -- install state --------------------------------------------------------------------------


def install_state(sandbox: Sandbox, portal: Portal) -> str:
    """Return ``"installed"``, ``"unfinished"`` (installFinish pending) or ``"absent"``."""
    installation = sandbox.installation(portal)
    if installation is None:
        return "absent"
    return "installed" if installation.installed else "unfinished"


def app_handler() -> str:
    """Return the app's main handler URL (the left-menu page and default placement)."""
    return current_sandbox().config.app_url.rstrip("/") + "/app"


def app_install_url() -> str:
    """Return the app's installer URL."""
    return current_sandbox().config.app_url.rstrip("/") + "/install"


def frame(
    user: User,
    handler: str,
    placement: str = DEFAULT_PLACEMENT,
    options: dict[str, str] | None = None,
    install: bool = False,
) -> FrameLaunch:
    """Launch an app frame for ``user`` in the page's language and remember it by APP_SID."""
    launch = launch_frame(
        current_sandbox(),
        current_portal(),
        user_id=user.id,
        is_admin=user.admin,
        handler=handler,
        placement=placement,
        options=options,
        install=install,
        lang=current_lang(),
    )
    launches().remember(launch)
    return launch


def message_page(
    title: str,
    text: str,
    status: int,
    user: User | None = None,
    action: tuple[str, str] | None = None,
) -> Response:
    """Render a plain portal message (not found, access denied, not installed)."""
    body = render_template(
        "portal/message.html",
        title=title,
        text=text,
        user=user or requested_user_or_admin(),
        action=action,
    )
    return Response(body, status=status)


@bp.errorhandler(404)
def not_found(error: Any) -> Response:
    """Show the portal's not-found page."""
    description = getattr(error, "description", "") or "The page was not found."
    return message_page("Page not found", description, 404)


# -- pages ----------------------------------------------------------------------------------


@bp.get("/")
def home() -> str:
    """Show the portal's start page: the app, its install state and recent CRM data."""
    user = current_user()
    sandbox, portal = current_sandbox(), current_portal()
    recent = {
        "orders": data.recent(sandbox.db, portal.id, "order", RECENT_ROWS)
        if user.can_read_store
        else [],
        "deals": data.recent(sandbox.db, portal.id, "deal", RECENT_ROWS),
        "invoices": data.recent(sandbox.db, portal.id, "invoice", RECENT_ROWS),
    }
    return render_template(
        "portal/home.html",
        user=user,
        state=install_state(sandbox, portal),
        recent=recent,
        placements=sandbox.placements(portal),
    )


@bp.get("/marketplace/app/")
def app_page() -> Response | str:
    """Open the app's left-menu page (placement DEFAULT)."""
    user = current_user()
    state = install_state(current_sandbox(), current_portal())
    if state == "absent":
        return message_page(
            "Application not installed",
            "The application is not installed on this Bitrix24.",
            404,
            user,
            action=("Install", portal_url("portal_web.install_page")) if user.admin else None,
        )
    if state == "unfinished":
        if not user.admin:
            return message_page("Application", NOT_FULLY_INSTALLED, 403, user)
        # Bitrix24 shows the administrator the installer until installFinish is called.
        launch = frame(user, app_install_url(), install=True)
        return render_template("portal/app.html", user=user, launch=launch, installing=True)
    return render_template(
        "portal/app.html", user=user, launch=frame(user, app_handler()), installing=False
    )


@bp.route("/marketplace/install/", methods=["GET", "POST"])
def install_page() -> Response | str:
    """Install the app: confirm, then frame its installer in install mode."""
    user = current_user()
    if not user.admin:
        return message_page("Application installation", ONLY_ADMIN_INSTALLS, 403, user)
    sandbox, portal = current_sandbox(), current_portal()
    launch = None
    if request.method == "POST":
        sandbox.begin_install(portal)
        launch = frame(user, app_install_url(), install=True)
    return render_template(
        "portal/install.html",
        user=user,
        state=install_state(sandbox, portal),
        launch=launch,
        app_url=sandbox.config.app_url,
    )


def card_page(
    kind: CardKind, entity_id: int, load: Callable[[Any, int, int], dict[str, Any] | None]
) -> Response | str:
    """Render a detail card with its General tab and one tab per bound app handler."""
    user = current_user()
    sandbox, portal = current_sandbox(), current_portal()
    entity = load(sandbox.db, portal.id, entity_id)
    if entity is None:
        abort(404, description=f"{kind.title} {entity_id} was not found.")
    # Widgets stay hidden until the installer calls installFinish, for everyone.
    bound = []
    if install_state(sandbox, portal) == "installed":
        bound = [p for p in sandbox.placements(portal) if p["placement"] == kind.placement]
    tabs = [
        {"key": f"app-{index}", "title": tab_title(placement, current_lang())}
        for index, placement in enumerate(bound, start=1)
    ]
    active = request.args.get("tab", "general")
    launch = None
    if active != "general":
        chosen = next((i for i, t in enumerate(tabs) if t["key"] == active), None)
        if chosen is None:
            abort(404, description="This card has no such tab.")
        # The page is always opened by a link, so the browser sends a Referer and the
        # options carry the card's URI, as the slider opens it.
        launch = frame(
            user,
            bound[chosen]["handler"],
            placement=kind.placement,
            options=detail_tab_options(kind.placement, entity_id),
        )
    bound_orders: list[dict[str, Any]] = []
    owner = None
    if kind.owner_type_id is not None:
        bound_orders = data.orders_of_owner(sandbox.db, portal.id, kind.owner_type_id, entity_id)
    else:
        owner = data.order_owner(sandbox.db, portal.id, entity_id)
    return render_template(
        "portal/card.html",
        user=user,
        kind=kind,
        entity_id=entity_id,
        entity=entity,
        bound_orders=bound_orders,
        owner=owner,
        tabs=tabs,
        active=active,
        launch=launch,
    )


def tab_title(placement: dict[str, Any], lang: str = LANG) -> str:
    """Return a tab's caption: its LANG_ALL title in ``lang``, else TITLE, else a fallback."""
    lang_all = placement.get("langAll") or {}
    localized = lang_all.get(lang) if isinstance(lang_all, dict) else None
    if isinstance(localized, dict) and localized.get("TITLE"):
        return str(localized["TITLE"])
    return str(placement.get("title") or "Application")


@bp.get("/crm/deal/details/<int:entity_id>/")
def deal_card(entity_id: int) -> Response | str:
    """Show a deal card."""
    return card_page(DEAL_CARD, entity_id, data.get_deal)


@bp.get("/shop/orders/details/<int:entity_id>/")
def order_card(entity_id: int) -> Response | str:
    """Show an online store order card (store access needed, as in Bitrix24)."""
    if not current_user().can_read_store:
        return message_page("Access denied", "You have no access to online store orders.", 403)
    return card_page(ORDER_CARD, entity_id, data.get_order)


@bp.get("/crm/type/31/details/<int:entity_id>/")
def invoice_card(entity_id: int) -> Response | str:
    """Show a smart invoice card."""
    return card_page(INVOICE_CARD, entity_id, data.get_invoice)


# -- endpoints the page script calls for its frames ------------------------------------------


def launch_from_request() -> FrameLaunch:
    """Return the launch named by the JSON body's APP_SID, or answer 403."""
    # Requiring a JSON body makes a cross-site caller need a CORS preflight, which we refuse.
    body = request.get_json(silent=True) if request.is_json else None
    app_sid = body.get("APP_SID") if isinstance(body, dict) else None
    launch = launches().find(app_sid) if isinstance(app_sid, str) else None
    if launch is None or launch.portal_id != current_portal().id:
        abort(403)
    # A frame belongs to one installation: after an uninstall its page can do nothing.
    installation = current_sandbox().installation(current_portal())
    if installation is None or installation.application_token != launch.application_token:
        abort(403)
    return launch


@bp.post("/marketplace/install/finish/")
def install_finish() -> Response:
    """Complete the installation when the installer frame calls BX24.installFinish()."""
    launch = launch_from_request()
    if not (launch.install and launch.is_admin):
        return error_json("ACCESS_DENIED", "The frame is not an installer.", 403)
    current_sandbox().finish_install(current_portal())
    return jsonify({"result": True, "installed": True})


@bp.post("/marketplace/frame/refresh/")
def refresh_auth() -> Response:
    """Issue a fresh token set for the frame's user (BX24.refreshAuth)."""
    launch = launch_from_request()
    return jsonify(refreshed_frame_auth(current_sandbox(), current_portal(), launch))


@bp.errorhandler(403)
def forbidden(error: Any) -> Response:
    """Answer the page script's JSON endpoints with a JSON 403."""
    return error_json("ACCESS_DENIED", "Unknown application frame.", 403)


def error_json(code: str, description: str, status: int) -> Response:
    """Return a Bitrix24-shaped JSON error."""
    response = jsonify({"error": code, "error_description": description})
    response.status_code = status
    return response


# -- the BX24.js stand-in -------------------------------------------------------------------


@bp.get("/api/v1/")
@bp.get("/bx24.js")
def bx24_script() -> Response:
    """Serve the BX24.js stand-in (what ``B24_JS_URL`` points at)."""
    response = send_from_directory(bp.static_folder or "", "bx24.js", max_age=60)
    response.headers["Content-Type"] = "text/javascript; charset=utf-8"
    return response


# How long a browser may keep the answer to a REST preflight.
PREFLIGHT_MAX_AGE = "600"


@bp.after_app_request
def allow_frame_rest_calls(response: Response) -> Response:
    """Let JS in the app's frame, on another origin, call REST and read the answers.

    BX24.callMethod posts a form, which needs no preflight; b24jssdk posts JSON, so the
    browser first asks with OPTIONS whether ``Content-Type`` (and the SDK's other headers)
    may be sent. The preflight is answered for the methods and headers it asks about.
    """
    if request.path.startswith("/rest/"):
        response.headers.setdefault("Access-Control-Allow-Origin", "*")
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            asked = request.headers.get("Access-Control-Request-Headers")
            if asked:
                response.headers["Access-Control-Allow-Headers"] = asked
            response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
    return response
