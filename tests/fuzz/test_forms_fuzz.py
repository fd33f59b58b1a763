"""Hypothesis against the form-encoded surfaces Bitrix24 posts to: install, app, events, OAuth.

Each case starts from what a real portal sends (real tokens of the sandbox's users, the
frame POST fields, the event fields with ``auth[...]``, a real authorization code and
state) and drops, replaces or adds fields with hostile values: markup, RTL overrides,
10,000 characters, private and metadata addresses, other portals' ids. Every answer must
be a 2xx-4xx (or the documented 502/503), carry the framing headers, keep JSON errors in
the error shape, put no token on a refusal page, never redirect anywhere, and a refused
request must leave the portal, and the app's record of the installation, as they were.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from hypothesis import given
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from b24app.extensions import db
from b24app.models import Portal
from b24app.security import issue_oauth_state
from b24sandbox.bx24 import detail_tab_options, frame_post_fields
from tests.fuzz.conftest import (
    FuzzTarget,
    assert_error_shape,
    assert_no_server_error,
    fuzz_settings,
)

HOSTILE_TEXT = [
    "",
    " ",
    "0",
    "-1",
    "99999999999999999999999",
    "null",
    "[]",
    '{"ID": "1"}',
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "\u202eexe.gnp",
    "\u200f\u0645\u0631\u062d\u0628\u0627",
    "' OR 1=1 --",
    "../../../etc/passwd",
    "%00",
    "\x00",
    "127.0.0.1",
    "127.0.0.1:9",
    "169.254.169.254",
    "10.0.0.1:8080",
    "[::1]",
    "localhost",
    "evil.example",
    "evil.example; script-src *",
    "https://evil.example/",
    "//evil.example",
    "javascript:alert(1)",
    "x" * 10_000,
]
HOSTILE = st.one_of(
    st.sampled_from(HOSTILE_TEXT),
    st.text(max_size=40),
    st.integers().map(str),
)
FIELD_NAME = st.one_of(
    st.sampled_from(["auth[]", "auth[x][y]", "data", "a[b]junk", "[x]", "PLACEMENT_OPTIONS[ID]"]),
    st.text(min_size=1, max_size=20),
)
PLACEMENTS = [
    "DEFAULT",
    "CRM_DEAL_DETAIL_TAB",
    "CRM_ORDER_DETAIL_TAB",
    "CRM_SMART_INVOICE_DETAIL_TAB",
    "CRM_LEAD_DETAIL_TAB",
]


def check_framing(response: TestResponse, what: str) -> None:
    """CSP with one frame-ancestors source (no injected directive), nosniff, a referrer policy."""
    csp = response.headers.get("Content-Security-Policy", "")
    ancestors = re.findall(r"frame-ancestors ([^;]*)", csp)
    assert len(ancestors) == 1, f"{what}: {csp!r}"
    sources = ancestors[0].split()
    assert len(sources) == 1, f"{what}: {csp!r}"
    assert sources[0] == "'none'" or re.fullmatch(r"https?://[a-z0-9.-]+(:\d+)?", sources[0]), (
        f"{what}: {csp!r}"
    )
    assert response.headers.get("X-Content-Type-Options") == "nosniff", what
    assert response.headers.get("Referrer-Policy"), what
    assert "Location" not in response.headers, f"{what}: redirects to {response.location}"


class FormRunner:
    """Sends form cases through the app (in-process) and checks answer and portal."""

    def __init__(self, target: FuzzTarget) -> None:
        self.target = target
        self.client = target.app.test_client()
        self.last = target.watch.fingerprint()
        self.statuses: dict[int, int] = {}

    def send(self, method: str, path: str, query: dict, form: list | None, what: str) -> Any:
        """Send one case; return the response after the common checks."""
        url = f"{path}?{urlencode(query)}" if query else path
        if form is None:
            response = self.client.open(url, method=method)
        else:
            response = self.client.open(
                url,
                method=method,
                data=urlencode(form),
                content_type="application/x-www-form-urlencoded",
            )
        status = response.status_code
        self.statuses[status] = self.statuses.get(status, 0) + 1
        before, self.last = self.last, self.target.watch.fingerprint()
        assert_no_server_error(status, what)
        assert 200 <= status < 600 and not 300 <= status < 400, f"{what}: {status}"
        check_framing(response, what)
        if status >= 400:
            if response.mimetype == "application/json":
                assert_error_shape(status, response.get_json(), what)
            else:
                assert response.mimetype == "text/html", f"{what}: {response.mimetype}"
                assert "data-session" not in response.get_data(as_text=True), what
            self.target.watch.assert_same(before, self.last, what)
        return response

    def resync(self) -> None:
        """Take the portal's fingerprint again (after a test changed it on purpose)."""
        self.last = self.target.watch.fingerprint()

    def describe(self) -> str:
        """The statuses seen."""
        return ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))


@st.composite
def mutated(draw: st.DrawFn, fields: dict[str, str]) -> list[tuple[str, str]]:
    """Keep, drop or replace each field with a hostile value, and maybe add some."""
    pairs: list[tuple[str, str]] = []
    for name, value in fields.items():
        action = draw(st.sampled_from(["keep", "keep", "keep", "drop", "replace", "twice"]))
        if action == "keep":
            pairs.append((name, value))
        elif action == "replace":
            pairs.append((name, draw(HOSTILE)))
        elif action == "twice":
            pairs.extend([(name, draw(HOSTILE)), (name, value)])
    pairs.extend(draw(st.lists(st.tuples(FIELD_NAME, HOSTILE), max_size=3)))
    return pairs


def installed_in_app(target: FuzzTarget) -> dict[str, bool]:
    """Which portals the app holds as installed, by member_id."""
    with target.app.app_context():
        return {p.member_id: p.is_installed for p in db.session.scalars(db.select(Portal))}


class Tokens:
    """Token sets of the sandbox's users on both portals, issued once per test."""

    def __init__(self, target: FuzzTarget) -> None:
        self.sets = {
            (portal, user): target.portal24.token(user, portal=portal)
            for portal in (1, 2)
            for user in (1, 2, 3)
        }


def frame_case(
    target: FuzzTarget, tokens: Tokens
) -> st.SearchStrategy[tuple[dict[str, str], list[tuple[str, str]]]]:
    """A frame POST as some portal would send it, then mutated."""

    @st.composite
    def build(draw: st.DrawFn) -> tuple[dict[str, str], list[tuple[str, str]]]:
        portal, user = draw(st.sampled_from(sorted(tokens.sets)))
        placement = draw(st.sampled_from(PLACEMENTS))
        options: dict[str, str] | None = None
        if placement != "DEFAULT" and placement in {
            "CRM_DEAL_DETAIL_TAB",
            "CRM_ORDER_DETAIL_TAB",
            "CRM_SMART_INVOICE_DETAIL_TAB",
        }:
            options = detail_tab_options(placement, draw(st.integers(1, 12)))
        elif placement != "DEFAULT":
            options = {"ID": draw(HOSTILE)}
        domain = target.portal24.sandbox.portal_url(portal - 1)[7:]
        query, form = frame_post_fields(
            tokens.sets[(portal, user)], domain=domain, placement=placement, options=options
        )
        query_pairs = draw(mutated(query))
        return dict(query_pairs), draw(mutated(form))

    return build()


def test_install_page(fuzz_target: FuzzTarget) -> None:
    runner = FormRunner(fuzz_target)
    tokens = Tokens(fuzz_target)
    runner.resync()

    @fuzz_settings()
    @given(case=frame_case(fuzz_target, tokens))
    def fuzz(case: tuple[dict[str, str], list[tuple[str, str]]]) -> None:
        query, form = case
        response = runner.send("POST", "/install", query, form, "POST /install")
        if response.status_code == 200 and response.mimetype == "text/html":
            # The install page, whose script calls BX24.installFinish().
            assert "/static/js/install.js" in response.get_data(as_text=True)

    fuzz()
    print(f"POST /install: {sum(runner.statuses.values())} cases, {runner.describe()}")
    assert set(runner.statuses) & {400, 401, 403}


def test_app_page(fuzz_target: FuzzTarget) -> None:
    runner = FormRunner(fuzz_target)
    tokens = Tokens(fuzz_target)
    runner.resync()

    @fuzz_settings()
    @given(case=frame_case(fuzz_target, tokens))
    def fuzz(case: tuple[dict[str, str], list[tuple[str, str]]]) -> None:
        query, form = case
        runner.send("POST", "/app", query, form, "POST /app")

    fuzz()
    print(f"POST /app: {sum(runner.statuses.values())} cases, {runner.describe()}")
    assert 200 in runner.statuses and set(runner.statuses) & {400, 401, 403}


EVENTS = ["ONAPPUNINSTALL", "ONAPPINSTALL", "onappuninstall", "ONCRMDEALADD", "ONAPPUPDATE"]


def test_events(fuzz_target: FuzzTarget) -> None:
    runner = FormRunner(fuzz_target)
    tokens = Tokens(fuzz_target)
    state = fuzz_target.portal24.state(1)
    other = fuzz_target.portal24.state(2)
    good_token = str(state["application_token"])
    member_id = str(state["member_id"])
    admin = tokens.sets[(1, 1)]
    runner.resync()
    uninstalls = {"accepted": 0}

    @st.composite
    def event_case(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
        path = draw(st.sampled_from(["/events", "/install"]))
        fields = {
            "event": draw(st.sampled_from(EVENTS)),
            "data[VERSION]": "1",
            "data[LANGUAGE_ID]": draw(st.sampled_from(["en", "ru", "de"])),
            "data[CLEAN]": draw(st.sampled_from(["0", "1"])),
            "ts": "1767225600",
            "auth[access_token]": str(admin["access_token"]),
            "auth[refresh_token]": str(admin["refresh_token"]),
            "auth[expires_in]": "3600",
            "auth[application_token]": draw(
                st.sampled_from(
                    [good_token, good_token[:-1] + "0", good_token.upper(), "", "x" * 32]
                )
            ),
            "auth[member_id]": draw(
                st.sampled_from([member_id, str(other["member_id"]), "0" * 32, ""])
            ),
            "auth[domain]": str(state["domain"]),
            "auth[client_endpoint]": str(state["client_endpoint"]),
            "auth[server_endpoint]": fuzz_target.portal24.sandbox.oauth_url + "/rest/",
            "auth[status]": "L",
            "auth[scope]": "crm,sale,placement",
        }
        return path, draw(mutated(fields))

    @fuzz_settings()
    @given(case=event_case())
    def fuzz(case: tuple[str, list[tuple[str, str]]]) -> None:
        path, form = case
        before = installed_in_app(fuzz_target)
        response = runner.send("POST", path, {}, form, f"POST {path} event")
        after = installed_in_app(fuzz_target)
        values = dict(form)
        legit_uninstall = (
            values.get("event", "").strip().upper() == "ONAPPUNINSTALL"
            and values.get("auth[application_token]", "").strip() == good_token
            and values.get("auth[member_id]", "").strip() == member_id
        )
        for key, was in before.items():
            # Only an accepted uninstall with that portal's application token uninstalls it.
            may_go = legit_uninstall and key == member_id and response.status_code < 400
            if was and not may_go:
                assert after.get(key), f"{path}: {form!r} uninstalled {key}"
        if not after.get(member_id, True):
            # A genuine uninstall: install again so the next cases meet an installed app.
            uninstalls["accepted"] += 1
            fuzz_target.portal24.install()
            runner.resync()

    fuzz()
    print(
        f"POST /events: {sum(runner.statuses.values())} cases, {runner.describe()},"
        f" genuine uninstalls {uninstalls['accepted']}"
    )
    assert set(runner.statuses) & {400, 403}


REDIRECT_PARAMS = ["redirect", "redirect_uri", "next", "return", "returnUrl", "url", "back"]
OFF_SITE = ["https://evil.example/", "//evil.example", "/\\evil.example", "javascript:alert(1)"]


def authorization_code(target: FuzzTarget, state: str, user: int) -> dict[str, str]:
    """Let ``user`` approve on the sandbox and return the callback's query."""
    sandbox = target.portal24.sandbox
    answer = sandbox.http.get(
        f"{sandbox.oauth_url}/oauth/authorize/",
        params={"client_id": sandbox.client_id, "state": state, "user": user},
    )
    assert answer.status_code == 302
    query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}
    target.portal24.seen.add(query.get("code"))
    return query


def test_oauth_callback(fuzz_target: FuzzTarget) -> None:
    runner = FormRunner(fuzz_target)
    member_id = str(fuzz_target.portal24.state(1)["member_id"])
    with fuzz_target.app.test_request_context():
        good_state = issue_oauth_state(member_id, 2)
    fuzz_target.portal24.seen.add(good_state)

    @st.composite
    def callback_case(draw: st.DrawFn) -> tuple[bool, int, list[tuple[str, str]]]:
        real_code = draw(st.booleans())
        user = draw(st.sampled_from([2, 2, 1, 3]))
        fields = {
            "code": draw(HOSTILE),  # replaced by a real code in half the cases
            "state": draw(
                st.sampled_from([good_state, good_state, good_state[:-2] + "xx", "", "e30.e30."])
            ),
            "member_id": draw(st.sampled_from([member_id, "0" * 32])),
            "domain": draw(HOSTILE),
            "scope": "crm,sale",
        }
        pairs = draw(mutated(fields))
        pairs += [(draw(st.sampled_from(REDIRECT_PARAMS)), draw(st.sampled_from(OFF_SITE)))]
        return real_code, user, pairs

    @fuzz_settings()
    @given(case=callback_case())
    def fuzz(case: tuple[bool, int, list[tuple[str, str]]]) -> None:
        real_code, user, pairs = case
        if real_code:
            issued = authorization_code(fuzz_target, good_state, user)
            pairs = [(k, v) for k, v in pairs if k != "code"] + [("code", issued["code"])]
        response = runner.send("GET", "/oauth/callback", dict(pairs), None, "GET /oauth/callback")
        text = response.get_data(as_text=True)
        assert "evil.example" not in text and "javascript:" not in text

    fuzz()
    print(f"GET /oauth/callback: {sum(runner.statuses.values())} cases, {runner.describe()}")
    assert set(runner.statuses) & {400, 403}
